/**
 * The rule for concurrent edits of one text field: what each writer meant,
 * whether their edits collide, and the value a single-line field settles on.
 *
 * Every text entry written since merges of text became visible carries the
 * whole text before (`p`) and after (`v`) its writer's own edit, as its
 * writer saw it (when both fit in {@link LONG_TEXT_VALUE_LIMIT} characters). A
 * side of a merge therefore has an *intended value* — the field with only
 * that writer's edit applied — and an *edit*: the one range of the common
 * base it replaced, and by what.
 *
 * Two edits of a multi-line field **collide** when they touch the same
 * characters of the base: their ranges overlap, or one inserts strictly
 * inside a range the other replaced or adds to a word at its edge (letters,
 * an accent or an emoji modifier with no space between: "fix" → "fixed"
 * against "fix" → "repair" would end "repaired"), or both insert at one place,
 * onto the word there, texts that would run together ("10" → "100" against
 * "10" → "105" would end "1050"). In a single-line field edits collide
 * also when they merely touch — an insertion at the edge of the other's
 * replacement, two insertions at the same place (two titles typed into an
 * empty field would otherwise be glued together): the CRDT would put the two
 * new texts side by side, in an order neither writer chose. Edits of parts
 * apart from each other never collide: the CRDT's character-level merge
 * already holds both.
 *
 * A single-line field whose merge collides settles on **the later change**
 * (the side whose tip was written last; ties by entry id), combined with
 * every other side's edit that collides with nothing chosen before it — a
 * value someone wrote, or a real combination of edits of different parts,
 * never an interleaving of two replacements, nor a word applied twice
 * (sides that hold the same changes collide, see {@link ruleValue}).
 * A multi-line field (a description) whose merge collides settles on **both
 * versions**: the whole lines the colliding edits touched, as each writer
 * left them, one after the other (earlier change first), with every edit of
 * other parts applied — the CRDT would interleave the two replacements'
 * characters, keeping neither writer's text. Edits of different parts keep
 * the CRDT's character-level merge, and the merge offers each writer's
 * version either way.
 *
 * All of this is for changes made apart. A merge whose every side was typed
 * together — typing bursts made while connected, each keystroke reaching the
 * others as it was made ({@link madeTogether}) — keeps the text the CRDT
 * merged, which is what its writers watched grow: no collision, nothing
 * settled.
 *
 * Everything here is a pure function of the entries, so every replica
 * derives the same outcome.
 *
 * @example
 *   const a = editOf('Login broken', 'Login broken', 'Login fails')
 *   const b = editOf('Login broken', 'Login broken', 'Signup fails')
 *   collide(a, b, true)                      // true: both replaced "broken"
 *   applyEdits('Login broken', [b])          // 'Signup fails'
 *
 * @module history/textMerge
 */
import { changedRange } from '../model/recordDoc.js'

/** Longest text (before and after) stored whole, both of them, in a text entry (`p` and `v`). */
export const TEXT_VALUE_LIMIT = 2_000

/**
 * Longest text an entry keeps whole at all. Between {@link TEXT_VALUE_LIMIT}
 * and this, an entry keeps the text after the edit (`v`) whole and the text
 * before it as the part of `v` it replaced (`pd`), so it costs one copy of
 * the text, not two. Longer texts keep only the truncated diff.
 */
export const LONG_TEXT_VALUE_LIMIT = 20_000

/** One writer's edit of a text, in the coordinates of a common base: `base.slice(start, end)` became `insert`. */
export interface TextEdit {
  start: number
  end: number
  insert: string
  /**
   * Others' typing without an entry yet that the writer saw right before
   * (`after`) or right after (`before`) this edit, and edited next to, not
   * in: the edit is laid at that typing's edge on the base. An insertion
   * there that begins (ends) with that text is the typing itself, and this
   * edit goes after (before) it — no collision.
   */
  after?: string
  before?: string
}

/**
 * Maps a position of `from` to the text `to`, where the two differ in one
 * changed block (common prefix / suffix): positions before the block stay,
 * positions after it shift, positions inside it clamp to its edges.
 */
const mapPosition = (pos: number, from: string, to: string, range = changedRange(to, from)): number => {
  // `range` describes to → from: to.slice(start, endPrev) became from.slice(start, endNext).
  if (pos <= range.start) return pos
  if (pos >= range.endNext) return pos - range.endNext + range.endPrev
  return pos - range.start < range.endNext - pos ? range.start : range.endPrev
}

/**
 * The edit that turned `before` into `after`, expressed on `base` (the
 * merge's common base; `before` is what the writer saw, which differs from
 * `base` when others' typing arrived during the writer's burst).
 */
export const editOf = (base: string, before: string, after: string): TextEdit => {
  const { start, endPrev, endNext } = changedRange(before, after)
  const insert = after.slice(start, endNext)
  if (before === base) return { start, end: endPrev, insert }
  const range = changedRange(base, before)
  const s = mapPosition(start, before, base, range)
  const e = Math.max(s, mapPosition(endPrev, before, base, range))
  return { start: s, end: e, insert }
}

/**
 * Whether `edit` was made next to the insertion `typed` (at the same place on
 * the base), its writer having seen that typing live: `'after'` or
 * `'before'` it (its `after` / `before`), else null.
 */
const nextToSeen = (edit: TextEdit, typed: TextEdit): 'after' | 'before' | null => {
  if (typed.start !== typed.end || typed.insert === '') return null
  if (edit.start === typed.start && edit.after !== undefined && edit.after !== '' && typed.insert.startsWith(edit.after)) return 'after'
  // Made right before that typing, which its writer may have gone on with at its end (or begun at its start).
  if (
    edit.end === typed.start &&
    edit.before !== undefined &&
    edit.before !== '' &&
    (typed.insert.startsWith(edit.before) || typed.insert.endsWith(edit.before))
  )
    return 'before'
  return null
}

/** Of two edits at the same place, which is applied first (right to left: the one that ends up later): -1 `x`, 1 `y`, 0 either. */
const seenOrder = (x: TextEdit, y: TextEdit): number => {
  const xy = nextToSeen(x, y)
  if (xy !== null) return xy === 'after' ? -1 : 1
  const yx = nextToSeen(y, x)
  if (yx !== null) return yx === 'after' ? 1 : -1
  return 0
}

/** Whether `first` followed by `second` runs their words together (no space nor line break between them). */
const glued = (first: string, second: string): boolean => /\S$/u.test(first) && /^\S/u.test(second)

/**
 * Whether the insertion `ins` adds to a word at an edge of the range `range`
 * replaced or deleted on `base`: letters, an accent or an emoji modifier
 * written onto the range's first or last word with no space between ("fix"
 * → "fixed", "done" → "undone", 👍 → 👍🏽). Applied beside the other's
 * replacement they would stick to its words ("repaired", "unfinished",
 * "bad 👎🏽").
 */
const addsToEdgeWord = (ins: TextEdit, range: TextEdit, base: string): boolean =>
  (ins.start === range.end && glued(base.slice(Math.max(range.start, range.end - 2), range.end), ins.insert)) ||
  (ins.start === range.start && glued(ins.insert, base.slice(range.start, Math.min(range.end, range.start + 2))))

/** Whether the insertion `ins` is written onto the word of `base` at its place, with no space between. */
const addsToWordAt = (ins: TextEdit, base: string): boolean =>
  glued(base.slice(Math.max(0, ins.start - 2), ins.start), ins.insert) || glued(ins.insert, base.slice(ins.start, ins.start + 2))

/**
 * Whether two edits of the same base collide (see the module documentation).
 * With `base`, a multi-line field's insertion that adds to a word the other
 * edit replaced ({@link addsToEdgeWord}) collides with it too, and so do two
 * insertions at one place that run together, one of them onto the word there
 * ({@link addsToWordAt}).
 */
export const collide = (a: TextEdit, b: TextEdit, singleLine: boolean, base?: string): boolean => {
  if (nextToSeen(a, b) !== null || nextToSeen(b, a) !== null) return false
  if (singleLine) return a.start <= b.end && b.start <= a.end
  const aInsertOnly = a.start === a.end
  const bInsertOnly = b.start === b.end
  // Two insertions at one place, one of them onto the word there, that run together in either order ("10" made "100"
  // and "105": "1050"). Insertions next to no word are laid word by word (an edge space may be on either side), so
  // only the base's word tells that they touch.
  if (aInsertOnly && bInsertOnly)
    return (
      base !== undefined &&
      a.start === b.start &&
      (addsToWordAt(a, base) || addsToWordAt(b, base)) &&
      (glued(a.insert, b.insert) || glued(b.insert, a.insert))
    )
  if (aInsertOnly) return (b.start < a.start && a.start < b.end) || (base !== undefined && addsToEdgeWord(a, b, base))
  if (bInsertOnly) return (a.start < b.start && b.start < a.end) || (base !== undefined && addsToEdgeWord(b, a, base))
  return a.start < b.end && b.start < a.end
}

/**
 * Applies edits that do not collide to `base` (right to left, so positions
 * stay valid). Insertions at the same place keep the given order, except
 * that an edit made after typing it saw there comes after that typing.
 */
export const applyEdits = (base: string, edits: readonly TextEdit[]): string => {
  const ordered = edits
    .map((edit, order) => ({ edit, order }))
    .sort((x, y) => y.edit.start - x.edit.start || y.edit.end - x.edit.end || seenOrder(x.edit, y.edit) || y.order - x.order)
  let out = base
  for (const { edit } of ordered) out = out.slice(0, edit.start) + edit.insert + out.slice(edit.end)
  return out
}

/**
 * The changed ranges of one entry on `base`: its stored hunks (`[start,
 * end, insert]` on its own "before" text, for typing bursts that changed
 * several places) or, without them, the one range between before and after.
 */
export const editsOf = (base: string, before: string, after: string, hunks?: unknown): TextEdit[] => {
  if (!Array.isArray(hunks) || hunks.length === 0) return [editOf(base, before, after)]
  const range = before === base ? null : changedRange(base, before)
  const out: TextEdit[] = []
  for (const h of hunks) {
    if (!Array.isArray(h) || typeof h[0] !== 'number' || typeof h[1] !== 'number' || typeof h[2] !== 'string')
      return [editOf(base, before, after)]
    const [start, end, insert] = h as [number, number, string]
    if (range === null) out.push({ start, end, insert })
    else {
      const s = mapPosition(start, before, base, range)
      out.push({ start: s, end: Math.max(s, mapPosition(end, before, base, range)), insert })
    }
  }
  return out
}

/** A side of a text merge as the rule sees it. */
export interface TextSideInput {
  /** The side's edit on the common base — one or more changed ranges, in order — or null when its entries lack whole values (long texts). */
  edit: readonly TextEdit[] | null
  /** When the side's tip was written, and its id (ties). */
  at: number
  id: string
  /**
   * Indices of other sides that hold some of the same changes (one's writers
   * saw the other, or both saw a third side): they collide whatever their
   * ranges, as combining them would apply those changes twice.
   */
  shares?: readonly number[]
  /** The side's value (its writer's text), when known. */
  value?: string
  /**
   * The side chose a version of an earlier merge (a restore). Two such sides
   * that touch are two choices between the same versions, made at once: they
   * collide as in a single-line field, and the later choice stands — a
   * multi-line field's "both versions" of two choices would hold neither
   * (each deleted the version the other kept).
   */
  pick?: boolean
}

/** What the rule says about one merge. */
export interface TextMergeOutcome {
  /** Whether any two sides' edits collide. */
  conflict: boolean
  /**
   * Single-line fields with a collision (and two choices of a version that
   * touch, in any field): the index of the side that won (the later change),
   * and the value the field settles on. Null otherwise, or when a side's edit
   * is unknown.
   */
  winner: number | null
  settled: string | null
  /** The merged value by the rule: `settled`, or (no collision) every side's edit applied; null when an edit is unknown. */
  value: string | null
}

/** Applies the rule to the sides of one merge of a field whose common base is `base`. */
export const textMergeOutcome = (base: string | null, sides: readonly TextSideInput[], singleLine: boolean): TextMergeOutcome => {
  const edits = sides.map((s) => s.edit)
  const picks = (i: number, j: number): boolean => sides[i]!.pick === true && sides[j]!.pick === true
  // An empty multi-line field both filled in: the CRDT puts the two texts side by side, and runs them together where
  // neither has a space or line break at that edge ("…is cold.Bob: steps…") — read from the sides' values, which
  // say where the spaces are (their edits are laid word by word).
  const filled = (i: number, j: number): boolean => {
    const x = sides[i]!.value
    const y = sides[j]!.value
    return !singleLine && base === '' && x !== undefined && y !== undefined && (glued(x, y) || glued(y, x))
  }
  const clash = (i: number, j: number): boolean => {
    const a = edits[i]
    const b = edits[j]
    if (filled(i, j)) return true
    return a != null && b != null && a.some((x) => b.some((y) => collide(x, y, singleLine || picks(i, j), base ?? undefined)))
  }
  const shared = (i: number, j: number): boolean => (sides[i]!.shares?.includes(j) ?? false) || (sides[j]!.shares?.includes(i) ?? false)
  let conflict = false
  // Two choices of a version that touch: the field settles as a single-line one does, on the later choice.
  let choices = false
  for (let i = 0; i < edits.length; i++) {
    for (let j = i + 1; j < edits.length; j++) {
      if (shared(i, j) || clash(i, j)) conflict = true
      if (picks(i, j) && clash(i, j)) choices = true
    }
  }
  const known = base !== null && edits.every((e) => e !== null)
  if (!conflict || !known) {
    return { conflict, winner: null, settled: null, value: known && !conflict ? applyEdits(base, (edits as TextEdit[][]).flat()) : null }
  }
  // Later change first; each further side joins when it collides with nothing chosen.
  const order = sides.map((_, i) => i).sort((x, y) => sides[y]!.at - sides[x]!.at || (sides[y]!.id > sides[x]!.id ? 1 : -1))
  if (!singleLine && !choices) {
    // Both versions, one after the other — unless sides hold the same changes (their versions would repeat them).
    const sharing = sides.some((_, i) => sides.some((__, j) => i !== j && shared(i, j)))
    const settled = sharing
      ? null
      : base === '' && sides.every((s) => s.value !== undefined)
        ? joinVersions([...order].reverse().map((i) => sides[i]!.value!))
        : bothVersions(base, edits as TextEdit[][], [...order].reverse())
    return { conflict, winner: null, settled, value: settled }
  }
  const chosen: number[] = []
  for (const i of order) {
    if (chosen.every((c) => !shared(c, i) && !clash(c, i))) chosen.push(i)
  }
  const settled = applyEdits(
    base,
    chosen.flatMap((c) => edits[c]!),
  )
  return { conflict, winner: order[0]!, settled, value: settled }
}

/**
 * A multi-line field's value when edits of the same part collide: every
 * side's version of the lines they touch, one after the other (`order`:
 * side indices, earlier change first), in place of those lines — never the
 * characters of two replacements interleaved. A region is the whole lines
 * of the base around colliding edits of different sides, grown by every
 * other edit it touches; a side's version of it is those lines with its
 * edits in them applied (a side that deleted them, or wrote the same text
 * as an earlier one, adds no version). Versions follow each other on new
 * lines, with an empty line between them when one spans several lines.
 * Edits outside every region are applied as they are.
 */
const bothVersions = (base: string, edits: ReadonlyArray<readonly TextEdit[]>, order: readonly number[]): string => {
  const all = edits.flatMap((list, side) => list.map((edit) => ({ edit, side })))
  const lineStart = (pos: number): number => base.lastIndexOf('\n', pos - 1) + 1
  const lineEnd = (pos: number): number => {
    const at = base.indexOf('\n', pos)
    return at === -1 ? base.length : at
  }
  // Insertions that collide with an edit (adding to a word it replaced, which may end its region's lines) are in
  // that region at its edges too.
  const colliding = new Set<TextEdit>()
  const inside = (edit: TextEdit, r: { start: number; end: number }): boolean =>
    edit.start === edit.end
      ? (r.start < edit.start && edit.start < r.end) || (colliding.has(edit) && r.start <= edit.start && edit.start <= r.end)
      : r.start <= edit.start && edit.end <= r.end
  let regions: Array<{ start: number; end: number }> = []
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const x = all[i]!
      const y = all[j]!
      if (x.side !== y.side && collide(x.edit, y.edit, false, base)) {
        regions.push({ start: Math.min(x.edit.start, y.edit.start), end: Math.max(x.edit.end, y.edit.end) })
        colliding.add(x.edit).add(y.edit)
      }
    }
  }
  for (let grown = true; grown;) {
    grown = false
    // Whole lines. A line break at an edge of a region (edits that joined lines, or deleted whole ones) belongs to
    // the line after (before) it: deleting "\nstep two" touches that line, not the one before.
    const lines = regions
      .map(({ start, end }) => {
        const first = start < end && base[start] === '\n' ? start + 1 : start
        const last = end > first && base[end - 1] === '\n' ? end - 1 : end
        return { start: Math.min(start, lineStart(first)), end: Math.max(end, lineEnd(Math.max(first, last))) }
      })
      .sort((a, b) => a.start - b.start)
    regions = []
    for (const r of lines) {
      const last = regions.at(-1)
      if (last !== undefined && r.start < last.end) last.end = Math.max(last.end, r.end)
      else regions.push({ ...r })
    }
    for (const { edit } of all) {
      const r = regions.find((r) => !inside(edit, r) && edit.start < r.end && r.start < edit.end)
      if (r === undefined) continue
      r.start = Math.min(r.start, edit.start)
      r.end = Math.max(r.end, edit.end)
      grown = true
    }
  }
  const out: TextEdit[] = all.filter(({ edit }) => !regions.some((r) => inside(edit, r))).map(({ edit }) => edit)
  for (const r of regions) {
    const lines = base.slice(r.start, r.end)
    const versions: string[] = []
    for (const side of order) {
      const own = all.filter((x) => x.side === side && inside(x.edit, r))
      if (own.length === 0) continue
      const version = applyEdits(
        lines,
        own.map(({ edit }) => ({ ...edit, start: edit.start - r.start, end: edit.end - r.start })),
      )
      if (version !== '' && !versions.includes(version)) versions.push(version)
    }
    out.push({ start: r.start, end: r.end, insert: joinVersions(versions) })
  }
  return applyEdits(base, out)
}

/**
 * Versions one after the other, each on lines of its own (empty and repeated
 * ones once or not at all); an empty line between them when one spans several
 * lines. Whole lines selected and written over end (begin) with their line
 * break in every version: it goes once after (before) them all, not between
 * them — else an empty line more between the versions.
 */
const joinVersions = (all: readonly string[]): string => {
  const versions = all.filter((v, k) => v !== '' && all.indexOf(v) === k)
  const tail = versions.length > 1 && versions.every((v) => v.endsWith('\n')) ? '\n' : ''
  const head = versions.length > 1 && versions.every((v) => v.startsWith('\n')) ? '\n' : ''
  const cores = versions.map((v) => v.slice(head.length, v.length - tail.length)).filter((v) => v !== '')
  return head + cores.join(cores.some((v) => v.includes('\n')) ? '\n\n' : '\n') + tail
}

/** An entry of a single-line text field, as {@link ruleValue} reads it. */
export interface RuleEntry {
  id: string
  base: string | null
  at: number
  /** Whole text before / after the writer's edit (undefined: not stored). */
  prev?: unknown
  value?: unknown
  /** Other tips the writer had seen besides its base (it wrote on top of a merge). */
  seen?: readonly string[]
  /** Changed ranges on `prev`, when the writer changed several places. */
  hunks?: unknown
  /** `auto`: a settlement (the rule's value written by a replica), which the rule sees through (see {@link ruleValue}). */
  mode?: 'auto' | 'keep'
  /** The entry chose this entry's value (a restore: "use this version"). */
  restoreOf?: string
  /** Set by the rule itself: the entry was written on top of a settlement and moved onto the settlement's base. */
  onSettlement?: boolean
  /** A typing burst made while connected: each keystroke reached everyone online as it was made ({@link madeTogether}). */
  live?: boolean
}

/**
 * The entries without settlements: a settlement only writes the rule's value
 * for what its writer had seen, so it is no change of its own. An entry
 * written on top of settlements is moved onto their base, and counts their
 * other tips as seen (its writer saw the settled text, which holds them).
 */
const withoutSettlements = (entries: readonly RuleEntry[]): readonly RuleEntry[] => {
  const settlements = new Map(entries.filter((e) => e.mode === 'auto').map((e) => [e.id, e]))
  if (settlements.size === 0) return entries
  /** The tips behind `id`: itself, or what the settlement `id` was based on and had seen. */
  const tipsBehind = (id: string, out: Set<string>, visited: Set<string>): void => {
    const settlement = settlements.get(id)
    if (settlement === undefined) {
      out.add(id)
      return
    }
    if (visited.has(id)) return
    visited.add(id)
    if (settlement.base !== null) tipsBehind(settlement.base, out, visited)
    for (const x of settlement.seen ?? []) tipsBehind(x, out, visited)
  }
  return entries
    .filter((e) => e.mode !== 'auto')
    .map((e) => {
      if ((e.base === null || !settlements.has(e.base)) && !(e.seen ?? []).some((x) => settlements.has(x))) return e
      // The base: the first ancestor that is no settlement (every settlement is based on a tip it had seen).
      const visited = new Set<string>()
      let base = e.base
      const seen = new Set<string>()
      while (base !== null && settlements.has(base) && !visited.has(base)) {
        visited.add(base)
        const settlement = settlements.get(base)!
        for (const x of settlement.seen ?? []) tipsBehind(x, seen, visited)
        base = settlement.base
      }
      for (const x of e.seen ?? []) tipsBehind(x, seen, visited)
      if (base !== null) seen.delete(base)
      return { ...e, base: base !== null && settlements.has(base) ? null : base, seen: [...seen].sort(), onSettlement: true }
    })
}

/**
 * The value a text field must have by the rule, read from its
 * whole history tree (entry → its base): every branch point is a merge of
 * its children's values, each child's value being that of its subtree; a
 * collision keeps the subtree whose writer had seen the other (a restore, an
 * edit made on top of the merge), else the one changed last (its newest
 * entry), plus edits of other parts. So once a restore is written the rule
 * yields its value, whatever the clocks say. Settlements (`mode: 'auto'`) are
 * seen through: a replica may settle on part of a merge, and were its
 * settlement a side of its own, two replicas that each settled on a different
 * part would each see the other's settlement as the later change and settle
 * back forever. Without them, every replica that has the same written
 * entries derives the same value, whatever settlements it has.
 * A writer who wrote on top of a merge holds in its value what it saw of
 * the other sides: a side it saw up to its last entries counts no more, and
 * sides holding some of the same changes (one saw part of the other, or both
 * saw a third) collide, so a word typed once is never applied twice.
 * A merge whose sides were all typed together ({@link madeTogether}) is no
 * collision and asks for no settlement; its value for a merge above it is
 * read by the rule.
 * A multi-line field ({@link RuleOptions.multiLine}) keeps both versions
 * where a single-line one keeps the later change.
 * Returns null when an entry lacks its whole text (long texts, old entries),
 * else the value and whether the field's text needs it written
 * ({@link RuleOutcome}).
 */
export const ruleValue = (written: readonly RuleEntry[], options: RuleOptions = {}): RuleOutcome | null => {
  const entries = withoutSettlements(written)
  if (entries.length === 0) return null
  const ids = new Set(entries.map((e) => e.id))
  const children = new Map<string | null, RuleEntry[]>()
  for (const e of entries) {
    const parent = e.base !== null && ids.has(e.base) ? e.base : null
    let list = children.get(parent)
    if (list === undefined) children.set(parent, (list = []))
    list.push(e)
  }
  let collided = false
  let combined = false
  const subtreeOf = (e: RuleEntry): RuleEntry[] => {
    const out: RuleEntry[] = []
    const stack = [e]
    while (stack.length > 0) {
      const x = stack.pop()!
      out.push(x)
      stack.push(...(children.get(x.id) ?? []))
    }
    return out
  }
  const combine = (base: string, kids: readonly RuleEntry[]): string | null => {
    const maybe = kids.map((kid) => valueOf(kid))
    if (maybe.length === 1) return maybe[0]!
    const trees = kids.map((kid) => subtreeOf(kid))
    const sideOf = new Map(trees.flatMap((tree, i) => tree.map((x) => [x.id, i] as const)))
    // What the writers of each side had seen: entries (ids) and the other sides they belong to.
    const seenIds = trees.map((tree) => new Set(tree.flatMap((x) => x.seen ?? [])))
    const sawSides = seenIds.map(
      (seen, i) => new Set([...seen].flatMap((id) => (sideOf.has(id) && sideOf.get(id) !== i ? [sideOf.get(id)!] : []))),
    )
    // A side whose every last entry a writer of another side had seen is in that side's value already (that
    // writer wrote on top of the merge): it adds nothing, and combining its edit again would double its words
    // whenever the two diffs place the same insertion differently (" t012" after "t004", or "12 t0" inside
    // "t009"), each settlement written on such a value adding the word once more.
    const kept = kids
      .map((_, j) => j)
      .filter((j) => !trees[j]!.every((x) => children.has(x.id) || seenIds.some((seen, i) => i !== j && seen.has(x.id))))
    if (kept.length === 1) return maybe[kept[0]!]!
    if (kept.some((i) => maybe[i] === null)) return null
    const values = maybe as string[]
    // Sides typed together — every change of every side a typing burst made while connected, each keystroke reaching
    // the others as it was typed: the text the CRDT merged keystroke by keystroke is what each of them watched
    // grow, every word in it. It stands: such a merge asks for no settlement of its own. (A merge made apart
    // above it settles on a value that reads this one by the rule.)
    const together = kept.every((i) => madeTogether(trees[i]!))
    // A side one of whose writers had seen another side comes after it: it is the later change, whatever the clocks say.
    const latest = trees.map((tree) => Math.max(...tree.map((x) => x.at)))
    const newestAt = Math.max(...latest)
    const shareChanges = (i: number, j: number): boolean =>
      sawSides[i]!.has(j) || sawSides[j]!.has(i) || [...sawSides[i]!].some((k) => sawSides[j]!.has(k))
    // Sides whose writers all began on one text other than the base — each wrote on top of the same settled value,
    // which holds changes from outside this merge that all of them had seen — combine on that text: diffed from the
    // base, each side would carry those changes, and the combination would hold them twice.
    const starts = kept.map((i) => kids[i]!.prev)
    const sameStart = typeof starts[0] === 'string' && starts[0] !== base && starts.every((p) => p === starts[0])
    // Writers who all wrote on top of the same merge (the same base and seen tips) while typing live began on that
    // merge's text, but one who began after another's first keystroke began on it too, before its entry: like the
    // first writers of a field, they combine on what the first of them began on, each side laid from what it saw.
    const liveOnMerge = !sameStart && options.multiLine !== true && onSameMerge(kept.map((i) => kids[i]!))
    const from: string = sameStart ? (starts[0] as string) : liveOnMerge ? (earliest(kept.map((i) => kids[i]!)).prev as string) : base
    // A side whose writers saw only it may have begun on others' typing that had no entry yet (live co-editing):
    // its edit is the diff against what it saw, laid entry by entry. Where a writer edited inside such typing, its
    // place on the base is a guess: the side then counts as a whole version (its edit is its whole difference from
    // the base) that collides with every other side — one writer's text, never words spliced at a guessed place.
    // A side holding a writer who saw other sides holds their changes too: its edit is its whole difference.
    const laid = kept.map((i) => {
      const kid = kids[i]!
      const tree = trees[i]!
      const multi = options.multiLine === true
      if (liveOnMerge) {
        // A side one of whose writers saw another side of this merge holds its changes: its whole difference.
        if (sawSides[i]!.size > 0) return { edit: [editOf(from, from, values[i]!)], guessed: false }
        return sideEdit(from, chainFrom(kid, tree.length), kid.prev as string, values[i]!, true, tree.length === 1 ? kid.hunks : undefined)
      }
      if (from !== base) {
        const hunks = tree.length === 1 ? kid.hunks : undefined
        if (!multi) return { edit: editsOf(from, from, values[i]!, hunks), guessed: false }
        // A multi-line side of several entries is laid entry by entry on that text too: read as one range from its
        // first change to its last, it would collide with everything typed in between, and both versions be written.
        const chain = chainFrom(kid, tree.length)
        if (chain === null) return { edit: editsOf(from, from, values[i]!, hunks), guessed: true }
        return sideEdit(from, chain, from, values[i]!, true, hunks)
      }
      // A multi-line field keeps both versions of what collides, so a side holding another side's changes has no
      // version of its own (they would be repeated); one whose writers saw only entries outside this merge (a merge
      // before it, which its base holds) is read as any side is.
      if (
        typeof kid.prev !== 'string' ||
        (tree.some((x) => x.seen !== undefined && x.seen.length > 0) && !(multi && sawSides[i]!.size === 0))
      )
        return { edit: [editOf(base, base, values[i]!)], guessed: multi }
      const chain = chainFrom(kid, tree.length)
      const laid = sideEdit(base, chain, kid.prev, values[i]!, true, tree.length === 1 ? kid.hunks : undefined)
      // Read as one range from a text other than the base (others' typing its writer saw without an entry), a side's
      // place on the base is a guess too: a multi-line field would write both versions around it.
      return multi && chain === null && kid.prev !== base ? { ...laid, guessed: true } : laid
    })
    const outcome = textMergeOutcome(
      from,
      kept.map((i, k) => ({
        edit: laid[k]!.edit,
        at: sawSides[i]!.size > 0 ? newestAt + 1 : latest[i]!,
        id: kids[i]!.id,
        value: values[i]!,
        pick: trees[i]!.some((x) => x.restoreOf !== undefined),
        shares: kept.flatMap((j, m) => (j !== i && (shareChanges(i, j) || laid[k]!.guessed || laid[m]!.guessed) ? [m] : [])),
      })),
      options.multiLine !== true,
    )
    if (together) return outcome.value
    if (outcome.conflict) collided = true
    // The text may not hold a combination: the CRDT orders insertions at one place by client id, and a side holding an
    // edit written on top of a settlement (seen through) has its whole value as its edit while the CRDT merged the
    // characters the settlement re-typed, which may include words another side replaced ("Login" after "t004").
    if (kept.length > 1 && !outcome.conflict) combined = true
    return outcome.value
  }
  /**
   * A side's entries from its first to its tip, each based on the one before, or null when the side forks: its
   * edit is then laid entry by entry (as the merge card reads it), so a range one entry replaced and the next
   * typed again counts as changed — the characters the CRDT merged were replaced there, whatever the net diff says.
   */
  const chainFrom = (kid: RuleEntry, size: number): RuleEntry[] | null => {
    const chain = [kid]
    for (let next = children.get(kid.id); next !== undefined; next = children.get(chain.at(-1)!.id)) {
      if (next.length !== 1) return null
      chain.push(next[0]!)
    }
    return chain.length === size ? chain : null
  }
  const memo = new Map<string, string | null>()
  const valueOf = (e: RuleEntry): string | null => {
    if (memo.has(e.id)) return memo.get(e.id)!
    let out: string | null
    if (typeof e.value !== 'string') out = null
    else {
      const kids = children.get(e.id)
      out = kids === undefined ? e.value : combine(e.value, kids)
    }
    memo.set(e.id, out)
    return out
  }
  const roots = children.get(null)!
  // Entries whose base was compacted away are roots too, each on a text the history no longer holds: what they
  // changed is unknown, and a multi-line field would write "both versions" of text nobody changed. It keeps the
  // CRDT's merge.
  if (options.multiLine === true && roots.length > 1 && roots.some((e) => e.base !== null)) return null
  // Several roots (writers who saw no entry): their common base is what the first of them began on — one that began
  // later may have begun on the others' typing, which had no entry yet.
  const first = roots.length === 1 ? roots[0]! : earliest(roots)
  const base =
    roots.length === 1 ? (typeof first.value === 'string' ? first.value : null) : typeof first.prev === 'string' ? first.prev : null
  if (base === null) return null
  const value = roots.length === 1 ? valueOf(first) : combine(base, roots)
  return value === null ? null : { value, collided, combined, held: heldBy(written, value, options.notHolding) }
}

/**
 * Whether a side of a text merge was typed together with the others: every
 * change of it (settlements and "keep" entries aside) is a typing burst made
 * while connected (`live`), so each keystroke reached everyone online as it
 * was made. Changes made apart — offline, or written whole (a `set`, a
 * restore) — are what the rule settles.
 */
export const madeTogether = (side: readonly Pick<RuleEntry, 'live' | 'mode'>[]): boolean => {
  const changes = side.filter((x) => x.mode === undefined)
  return changes.length > 0 && changes.every((x) => x.live === true)
}

/**
 * Whether two or more entries, each with its whole text before its edit, were
 * written on top of the same merge: each names tips it had seen besides its
 * base, and all name the same ones.
 */
export const onSameMerge = (entries: readonly Pick<RuleEntry, 'base' | 'seen' | 'prev'>[]): boolean => {
  if (entries.length < 2) return false
  const knew = (e: Pick<RuleEntry, 'base' | 'seen' | 'prev'>): string | null =>
    typeof e.prev !== 'string' || e.seen === undefined || e.seen.length === 0 ? null : [e.base, ...e.seen].sort().join(' ')
  const first = knew(entries[0]!)
  return first !== null && entries.every((e) => knew(e) === first)
}

/** The entry written first (its `at`; ties by id): of several first entries of a field, the one whose writer saw the least. */
export const earliest = <E extends { at: number; id: string }>(entries: readonly E[]): E =>
  entries.reduce((x, y) => (y.at < x.at || (y.at === x.at && y.id < x.id) ? y : x))

/** Options of {@link ruleValue}. */
export interface RuleOptions {
  /**
   * A multi-line field (a description): a collision keeps every side's
   * version of the lines it touched, one after the other, where a
   * single-line field keeps the later change. Sides that hold the same
   * changes, or were laid at a guessed place, have no such value: the rule
   * gives none (null) and the field keeps the CRDT's merge.
   */
  multiLine?: boolean
  /**
   * Entries whose value the text may not hold although their writer saw it
   * there — written on a settlement that turned out to duplicate another
   * (`history/textSettle`): their characters are gone with the duplicate's.
   * They never count as holding the rule's value ({@link RuleOutcome.held}).
   */
  notHolding?: ReadonlySet<string>
}

/** What {@link ruleValue} says about a single-line text field. */
export interface RuleOutcome {
  /** The value the field settles on. */
  value: string
  /** Whether any merge in the field's history collided (its sides' edits touch). */
  collided: boolean
  /**
   * Whether a merge combined the edits of several sides. The CRDT orders
   * insertions made at one place by client id and may put one writer's
   * word against another's ("t004t005"), where the rule joins whole edits;
   * and a side written on top of a settlement re-typed its value, which the
   * CRDT merged character by character ("Login" again before a word that
   * replaced it elsewhere): the text needs the rule's value then too.
   */
  combined: boolean
  /**
   * Whether an entry already wrote `value` knowing every other entry (a
   * settlement, a restore, an edit on top of the merge): the text was the
   * rule's value then, so a difference now is an edit made since whose entry
   * has not been written yet (someone typing) — writing the value again
   * would undo it.
   */
  held: boolean
}

/**
 * Whether an entry of `written` holds `value` and its writer had seen every
 * other entry: every entry no other one is based on or names as seen — the
 * tips, and settlements too (two settlements written without knowing each
 * other may have inserted their value twice).
 */
const heldBy = (written: readonly RuleEntry[], value: string, notHolding?: ReadonlySet<string>): boolean => {
  const candidates = written.filter((e) => e.value === value && notHolding?.has(e.id) !== true)
  if (candidates.length === 0) return false
  const referenced = new Set(written.flatMap((e) => [...(e.base === null ? [] : [e.base]), ...(e.seen ?? [])]))
  const leaves = written.filter((e) => !referenced.has(e.id))
  const byId = new Map(written.map((e) => [e.id, e]))
  /** Everything the writer of `e` had seen: itself, and what its base and the entries it names had seen, transitively. */
  const knownBy = (e: RuleEntry): Set<string> => {
    const known = new Set<string>()
    const stack = [e.id]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (known.has(id)) continue
      known.add(id)
      const x = byId.get(id)
      if (x === undefined) continue
      if (x.base !== null) stack.push(x.base)
      stack.push(...(x.seen ?? []))
    }
    return known
  }
  return candidates.some((e) => {
    const known = knownBy(e)
    return leaves.every((leaf) => known.has(leaf.id))
  })
}

/**
 * A text side's edit on `base`: laid entry by entry when its entries form a
 * chain ({@link sideEdits}), else the difference between `prev` and
 * `value`. A single-line side laid at a guessed place is its writer's whole
 * version (`guessed`: it collides with every other side).
 */
export const sideEdit = (
  base: string,
  chain: readonly ChainEntry[] | null,
  prev: string,
  value: string,
  singleLine: boolean,
  hunks?: unknown,
): { edit: TextEdit[]; guessed: boolean } => {
  const own = sideEdits(base, chain)
  if (own === null) return { edit: editsOf(base, prev, value, hunks), guessed: false }
  if (own.guessed && singleLine) return { edit: [editOf(base, base, value)], guessed: true }
  return { edit: own.edits, guessed: false }
}

/** An entry of a side's own chain, as {@link sideEdits} reads it. */
export interface ChainEntry {
  prev?: unknown
  value?: unknown
  /** Changed ranges on `prev`, when the writer changed several places. */
  hunks?: unknown
}

/**
 * A text side's changed ranges on the merge's common base, built burst by
 * burst: each entry's own hunks (or its one changed range) are laid on the
 * side's edit so far, so a side of several typing bursts in different places
 * is several small ranges — not one range from its first change to its last,
 * which would seem to collide with whatever others typed in between. A hunk
 * that touches text the side itself inserted or replaced grows that range.
 * Null when an entry lacks its whole texts. `guessed`: a hunk lay inside
 * others' typing its writer saw before that typing's entry was written (its
 * `prev` holds it, the side's text does not), so its place on the base is
 * the nearer edge of that typing — a guess.
 */
const sideEdits = (base: string, chain: readonly ChainEntry[] | null): { edits: TextEdit[]; guessed: boolean } | null => {
  if (chain === null) return null
  let edits: TextEdit[] = []
  let guessed = false
  for (const entry of chain) {
    const { prev, value } = entry
    if (typeof prev !== 'string' || typeof value !== 'string') return null
    // The side's text so far; the entry's writer may have seen others' typing that has no entry yet besides it.
    const current = applySorted(base, edits)
    const hunks = entryHunks(entry, prev, value)
    if (hunks === null) return null
    // Right to left: each hunk's positions on `prev` stay valid while those after it are laid.
    const foreign = prev === current ? null : changedRange(prev, current)
    const inside = (pos: number): boolean => foreign !== null && pos > foreign.start && pos < foreign.endPrev
    // That typing, when the writer saw some (it inserted or replaced text there).
    const seen = foreign === null ? '' : prev.slice(foreign.start, foreign.endPrev)
    for (const [start, end, insert] of [...hunks].sort((x, y) => y[0] - x[0])) {
      if (inside(start) || inside(end)) guessed = true
      const s = positionOn(start, prev, current)
      const e = Math.max(s, positionOn(end, prev, current))
      // Next to that typing, not in it: the edit goes after (before) it.
      const edge = seen === '' ? {} : start === foreign!.endPrev ? { after: seen } : end === foreign!.start ? { before: seen } : {}
      edits = layHunk(edits, applySorted(base, edits), s, e, insert, edge)
    }
  }
  return { edits, guessed }
}

/** An entry's changed ranges `[start, end, insert]` on its `prev`: its stored hunks, or the one range between `prev` and `value`. */
const entryHunks = (entry: ChainEntry, prev: string, value: string): Array<[number, number, string]> | null => {
  const { hunks } = entry
  if (hunks === undefined) {
    const { start, endPrev, endNext } = changedRange(prev, value)
    return start === endPrev && start === endNext ? [] : [[start, endPrev, value.slice(start, endNext)]]
  }
  if (!Array.isArray(hunks)) return null
  const valid = hunks.every((h) => Array.isArray(h) && typeof h[0] === 'number' && typeof h[1] === 'number' && typeof h[2] === 'string')
  return valid ? (hunks as Array<[number, number, string]>) : null
}

/** Maps a position of `from` to `to`, which differ in one changed block: positions inside it go to its nearer edge. */
const positionOn = (pos: number, from: string, to: string): number => {
  if (from === to) return pos
  const { start, endPrev, endNext } = changedRange(from, to)
  if (pos <= start) return pos
  if (pos >= endPrev) return pos - endPrev + endNext
  return pos - start < endPrev - pos ? start : endNext
}

/** Applies edits sorted by position that do not overlap. */
const applySorted = (base: string, edits: readonly TextEdit[]): string => {
  let out = ''
  let at = 0
  for (const edit of edits) {
    out += base.slice(at, edit.start) + edit.insert
    at = edit.end
  }
  return out + base.slice(at)
}

/**
 * Lays a hunk — `current.slice(start, end)` became `insert`, where `current`
 * is `base` with `edits` applied — on those edits, giving edits on `base`
 * again (sorted, not overlapping). Edits whose text the hunk touches merge
 * with it into one.
 */
const layHunk = (
  edits: readonly TextEdit[],
  current: string,
  start: number,
  end: number,
  insert: string,
  edge: Pick<TextEdit, 'after' | 'before'> = {},
): TextEdit[] => {
  // Each edit's place in `current`, and the shift of `base` positions after it.
  let shift = 0
  const placed = edits.map((edit) => {
    const from = edit.start + shift
    shift += edit.insert.length - (edit.end - edit.start)
    return { edit, from, to: from + edit.insert.length, shiftAfter: shift }
  })
  const touched = placed.filter((p) => p.from <= end && start <= p.to)
  const before = placed.filter((p) => p.to < start)
  const shiftBefore = before.length === 0 ? 0 : before.at(-1)!.shiftAfter
  if (touched.length === 0) {
    const added = { start: start - shiftBefore, end: end - shiftBefore, insert, ...edge }
    return [...before.map((p) => p.edit), added, ...placed.filter((p) => p.from > end).map((p) => p.edit)]
  }
  const first = touched[0]!
  const last = touched.at(-1)!
  const from = Math.min(start, first.from)
  const to = Math.max(end, last.to)
  const merged: TextEdit = {
    start: start < first.from ? start - shiftBefore : first.edit.start,
    end: end > last.to ? end - last.shiftAfter : last.edit.end,
    insert: current.slice(from, start) + insert + current.slice(end, to),
  }
  return [...before.map((p) => p.edit), merged, ...placed.filter((p) => p.from > end).map((p) => p.edit)]
}
