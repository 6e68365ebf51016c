/**
 * The read side of field-level history: entries with their authors, and the
 * merges hidden in them. Everything here is a pure function of the doc and
 * the author bindings, so every replica that has the same updates and
 * bindings derives the same history.
 *
 * Model: each field's entries form a tree — an entry's parent is its base
 * `b`, the head of the field its writer had seen. Entries with the same base
 * are siblings: none of their writers saw the others (a writer that had seen
 * one of them would have based on it or its descendants). A base with two or
 * more children is a **merge**; each child starts a *side*, whose value is
 * that of the side's last entry (its tip). For a list field the CRDT kept
 * one side's value (the current value tells which); a scalar field settles
 * on the later change (`history/scalarMerge`); for a text field both
 * contributions are in the text.
 *
 * @example
 *   const history = readHistory(doc, handle.sync.authors, { fields: { status: 'done' } })
 *   for (const m of history.merges) console.log(m.field, m.sides.map((s) => [s.author?.name, s.value]), 'kept', m.kept)
 *
 * @module history/readHistory
 */
import type * as Y from 'yjs'
import type { AuthorInfo } from '../protocol/messages.js'
import {
  compactedTotals,
  entryPrev,
  locatedEntries,
  sameValue,
  writerClient,
  type LocatedEntry,
  type StoredCompactedEntry,
  type StoredFieldEntry,
} from './historyLog.js'
import { laterChange } from './scalarMerge.js'
import { earliest, madeTogether, onSameMerge, ruleValue, sideEdit, textMergeOutcome, type TextEdit } from './textMerge.js'

/** Who wrote an entry: the user bound to its Yjs client id, or null when the relay has not bound it yet. */
export interface EntryAuthor {
  clientId: number
  userId: string | null
  name: string | null
}

/** One field change. */
export interface FieldHistoryEntry {
  kind: 'change'
  id: string
  field: string
  fieldKind: 'scalar' | 'text' | 'list'
  /** New value (scalar / list). */
  value?: unknown
  /** Previous value (scalar / list). */
  prev?: unknown
  /** Text fields: inserted and deleted text (truncated). Text entries also carry `value` / `prev`: the whole text after / before the writer's own edit, when short enough to be stored. */
  inserted?: string
  deleted?: string
  /** Text and scalar fields: the field's other tips the writer had seen (it wrote on top of a merge). */
  seen?: string[]
  /** Text fields: the writer's changed ranges `[start, end, insert]` on `prev`, when it changed several places (typing bursts). */
  hunks?: Array<[number, number, string]>
  /** Text fields: a typing burst made while connected, each keystroke reaching everyone online as it was made (see `RuleEntry.live`). */
  live?: boolean
  /**
   * `auto` — a device settled a merge on the rule's value (a single-line text, a description's collision, a
   * scalar field's later change); `keep` — someone accepted a text merge as it is.
   */
  mode?: 'auto' | 'keep'
  /** Readable one-line summary. */
  summary: string
  /** When the writer made the change (its clock; ms since epoch). */
  at: number
  /** Id of the entry of this field the writer had seen last, or null. */
  base: string | null
  author: EntryAuthor
  /** For a restore: the entry whose value was brought back. */
  restoreOf?: string
  /** Id of the merge this entry starts a side of, if any. */
  mergeId?: string
}

/**
 * Older entries were compacted. Summaries written by several replicas
 * (compactions of different ranges while offline) are merged into one such
 * entry, counting every compacted change once.
 */
export interface CompactedHistoryEntry {
  kind: 'compacted'
  /** Id of the first summary in the history. */
  id: string
  /** How many changes were compacted. */
  count: number
  fields: Record<string, number>
  /**
   * Who wrote the compacted changes: the users the relay bound their Yjs
   * client ids to (the summaries' per-writer records), looked up now — never
   * what a summary claims. Sorted user ids.
   */
  users: string[]
  /**
   * Compacted writers not (yet) attributed: client ids the bindings do not
   * know, and summaries written before per-writer records (their stored user
   * list is a claim; only the summary's own writer is taken from it).
   */
  unknownWriters: number
  from: number
  to: number
  summary: string
}

export type HistoryEntry = FieldHistoryEntry | CompactedHistoryEntry

/** One side of a merge. */
export interface MergeSide {
  /** First entry of the side (a child of the merge's base). */
  entry: FieldHistoryEntry
  /** Last entry of the side written by someone who had seen no other side; its value is the side's value. */
  tip: FieldHistoryEntry
  /** Every entry id of the side (the subtree under its first entry). */
  entryIds: string[]
  /** The side's value: scalar / list, its tip's value; text, the field with only this side's edit applied (undefined when not stored: long texts). */
  value: unknown
  author: EntryAuthor
  /** Text fields: the side's edit on the merge's common base (its changed ranges), or null when not known. */
  edit?: TextEdit[] | null
}

/** Concurrent changes of one field that did not see each other. */
export interface Merge {
  /** Stable id: `<field>@<base>`. */
  id: string
  field: string
  fieldKind: 'scalar' | 'text' | 'list'
  /** Entry the sides all started from (null: the field had no history). */
  base: string | null
  /** Sides in array order. */
  sides: MergeSide[]
  /**
   * Scalar / list: index of the side whose value the CRDT kept (its subtree
   * leads to the current value), or null when a later change replaced them
   * all / it cannot be told. Text: with a conflict, the side whose version
   * is the current text (a settlement or "use this version"), if any; without
   * one, null — every side's contribution was merged.
   */
  kept: number | null
  /**
   * Whether the sides really collide: scalar / list, their values differ;
   * text, their edits touch the same characters (see `history/textMerge`).
   * Edits of different parts of a text merge without a conflict: apps show
   * only merges with a conflict.
   */
  conflict: boolean
  /** Text fields: the common base text the sides started from, when known. */
  baseValue?: string | null
  /**
   * Text fields: the value the merge produced — with a conflict, the rule's
   * value (a single-line field: the later change, plus edits of other parts;
   * a multi-line one: both versions of the lines they touched, one after the
   * other); else the combination of the sides' edits, or the current text.
   */
  result?: string | null
  /**
   * Text fields with a conflict: the latest entry of someone who wrote on top
   * of the merge after seeing its sides — an automatic settlement, "keep as
   * is", a restore of one of its versions (not of a version of a later merge
   * of the field), or a plain edit. Null while nobody has.
   */
  settledBy?: FieldHistoryEntry | null
  /**
   * Single-line text fields with a conflict: the index of the side the rule keeps (the later change). Scalar
   * fields: the side whose value the field is about to be set to, while that settlement is not written yet
   * (`RecordHistory.unsettledScalars`); else absent.
   */
  winner?: number | null
  /** Readable one-line summary. */
  summary: string
}

/** A record's derived history. */
export interface RecordHistory {
  /** Every entry, oldest first (array order, identical on every replica). */
  entries: HistoryEntry[]
  merges: Merge[]
  /**
   * Text fields whose concurrent edits collided (single-line ones also when
   * they combined a side written on top of a settlement; either when one was
   * written on a settlement that turned out to be a copy) and whose text is
   * not (yet) the value the
   * rule settles on: field → that value (`history/textMerge`
   * {@link ruleValue}). Not listed once an entry holds that value written
   * knowing every other entry: a difference since is typing whose entry is
   * not written yet. Any replica may write it (`history/textSettle`).
   */
  unsettled: Record<string, string>
  /**
   * Scalar fields named in {@link ReadHistoryOptions.scalar} whose concurrent
   * sets did not end on the later change (`history/scalarMerge`): field →
   * the value the rule settles on. Any replica may write it.
   */
  unsettledScalars: Record<string, unknown>
}

/** Options of {@link readHistory}. */
export interface ReadHistoryOptions {
  /** Current field values, to tell which side of a scalar merge the CRDT kept. */
  fields?: Record<string, unknown>
  /**
   * Single-line text fields (titles, names): a collision of concurrent edits
   * settles on the later change.
   */
  singleLine?: ReadonlySet<string>
  /**
   * Multi-line text fields (descriptions): a collision settles on both
   * versions of the lines it touched, one after the other. Other text fields
   * keep the CRDT's merge.
   */
  multiLine?: ReadonlySet<string>
  /** Scalar fields (stored in the record's fields map): concurrent sets settle on the later change. */
  scalar?: ReadonlySet<string>
}

const show = (value: unknown): string => {
  if (value === null || value === undefined) return '(empty)'
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 59)}…` : text
}

const authorOf = (client: number, authors: ReadonlyMap<number, AuthorInfo>): EntryAuthor => {
  const bound = authors.get(client)
  return { clientId: client, userId: bound?.userId ?? null, name: bound?.name ?? null }
}

const kindOf = (k: 's' | 't' | 'l'): 'scalar' | 'text' | 'list' => (k === 's' ? 'scalar' : k === 't' ? 'text' : 'list')

/** Derives the history of a record doc. */
export const readHistory = (doc: Y.Doc, authors: ReadonlyMap<number, AuthorInfo>, options: ReadHistoryOptions = {}): RecordHistory => {
  const entries: HistoryEntry[] = []
  const seenIds = new Set<string>()
  const byField = new Map<string, FieldHistoryEntry[]>()
  const located = locatedEntries(doc)
  const summaries = located.filter((l) => l.entry.k === 'c')
  const duplicates = duplicateSettlements(located)
  const writtenOnDuplicate = writtenOnDuplicates(located, duplicates)
  /** Scalar entries that record what their writers had seen (`s`, empty too): the ones the later-change rule settles. */
  const recordsSeen = new Set<string>()
  for (const { entry, client } of located) {
    if (seenIds.has(entry.id)) continue // an entry id seen twice (the same compaction made on two replicas)
    seenIds.add(entry.id)
    if (duplicates.has(entry.id)) continue // the same automatic settlement, written by two replicas at once: counted once
    if (entry.k === 'c') {
      if (entry !== summaries[0]!.entry) continue // all summaries merged into the first
      const compacted = compactedEntry(doc, summaries, authors)
      if (compacted !== null) entries.push(compacted)
      continue
    }
    const e = entry as StoredFieldEntry
    const author = authorOf(client, authors)
    const who = author.name ?? author.userId ?? 'someone'
    const fieldKind = kindOf(e.k)
    const out: FieldHistoryEntry = {
      kind: 'change',
      id: e.id,
      field: e.f,
      fieldKind,
      summary: '',
      at: e.at,
      base: e.b === null ? null : (duplicates.get(e.b) ?? e.b),
      author,
    }
    if (fieldKind === 'text') {
      out.inserted = e.ins ?? ''
      out.deleted = e.del ?? ''
      const prev = entryPrev(e)
      if (typeof e.v === 'string' && prev !== undefined) {
        out.value = e.v
        out.prev = prev
      }
      if (Array.isArray(e.h) && e.h.length > 0) out.hunks = e.h
      if (e.l === 1) out.live = true
      if (Array.isArray(e.s) && e.s.length > 0)
        out.seen = e.s.filter((x): x is string => typeof x === 'string').map((x) => duplicates.get(x) ?? x)
      if (e.m === 'auto' || e.m === 'keep') out.mode = e.m
      const parts = [out.inserted ? `added "${out.inserted}"` : '', out.deleted ? `removed "${out.deleted}"` : ''].filter(Boolean)
      out.summary =
        out.mode === 'auto'
          ? `${who}'s device settled ${e.f} on ${show(out.value)}`
          : out.mode === 'keep'
            ? `${who} kept ${e.f} as merged`
            : e.r !== undefined
              ? `${who} restored ${e.f} to ${show(out.value)}`
              : `${who} edited ${e.f}: ${parts.join(', ')}`
    } else {
      out.value = e.v
      out.prev = e.p
      if (e.k === 's' && Array.isArray(e.s)) {
        recordsSeen.add(e.id)
        const seen = e.s.filter((x): x is string => typeof x === 'string').map((x) => duplicates.get(x) ?? x)
        if (seen.length > 0) out.seen = seen
        if (e.m === 'auto') out.mode = 'auto'
      }
      out.summary =
        out.mode === 'auto'
          ? `${who}'s device settled ${e.f} on ${show(e.v)}, the later change (was ${show(e.p)})`
          : `${who} ${e.r ? 'restored' : 'set'} ${e.f} to ${show(e.v)} (was ${show(e.p)})`
    }
    if (e.r !== undefined) out.restoreOf = e.r
    entries.push(out)
    let list = byField.get(e.f)
    if (list === undefined) byField.set(e.f, (list = []))
    list.push(out)
  }
  const merges: Merge[] = []
  for (const [field, list] of byField) merges.push(...mergesOf(field, list, options.fields, options.singleLine?.has(field) ?? false))
  merges.sort((a, b) => entries.indexOf(a.sides[0]!.entry) - entries.indexOf(b.sides[0]!.entry))
  const unsettled: Record<string, string> = {}
  const multiLine = options.multiLine ?? new Set<string>()
  for (const field of [...(options.singleLine ?? []), ...multiLine]) {
    const list = byField.get(field)
    const current = options.fields?.[field]
    if (list === undefined || typeof current !== 'string' || list.some((e) => e.fieldKind !== 'text')) continue
    // An entry written on a settlement that duplicates another was an edit of characters the duplicate's removal
    // deletes: its deletions are lost and its insertions sit where those characters were. Its value is the rule's
    // input all the same, but only an entry written since, or a settlement, holds it.
    const onDuplicate = new Set(list.flatMap((e) => (writtenOnDuplicate.has(e.id) ? [e.id] : [])))
    const multi = multiLine.has(field)
    const rule = ruleValue(list, { notHolding: onDuplicate, multiLine: multi })
    // A multi-line field's edits of different parts keep the CRDT's merge: only a collision (or a copy's loss) is settled.
    const due = rule !== null && (rule.collided || (rule.combined && !multi) || onDuplicate.size > 0)
    if (due && !rule.held && rule.value !== current) unsettled[field] = rule.value
  }
  const unsettledScalars: Record<string, unknown> = {}
  for (const field of options.scalar ?? []) {
    const list = byField.get(field)
    if (list === undefined || list.some((e) => e.fieldKind !== 'scalar')) continue
    const later = laterChange(list, recordsSeen)
    if (later === null) continue
    const target = later.value ?? null
    if (sameValue(options.fields?.[field] ?? null, target)) continue
    unsettledScalars[field] = target
    for (const merge of merges) {
      if (merge.field !== field) continue
      const index = merge.sides.findIndex((side) => sameValue(side.value ?? null, target))
      merge.winner = index === -1 ? null : index
    }
  }
  return { entries, merges, unsettled, unsettledScalars }
}

/**
 * One entry for every compaction summary: counts merged per writer, users
 * from the author bindings of the writers' client ids. Null when no summary
 * names a writer whose entries were really compacted (nothing to show).
 */
const compactedEntry = (
  doc: Y.Doc,
  summaries: readonly LocatedEntry[],
  authors: ReadonlyMap<number, AuthorInfo>,
): CompactedHistoryEntry | null => {
  const totals = compactedTotals(
    summaries.map((l) => l.entry as StoredCompactedEntry),
    doc,
  )
  if (totals.writers.size === 0) return null
  const users = new Map<string, string>()
  let unknownWriters = 0
  for (const key of totals.writers.keys()) {
    const client = writerClient(key)
    const bound = client === null ? undefined : authors.get(client)
    if (bound === undefined) unknownWriters++
    else users.set(bound.userId, bound.name)
  }
  // Summaries from before per-writer records: their user list is a claim. The
  // summary's own writer is the one user it can name truthfully.
  for (const { entry, client } of summaries) {
    const old = entry as StoredCompactedEntry
    if (old.c !== undefined && old.c !== null) continue
    const writer = authors.get(client)
    if (writer !== undefined && Array.isArray(old.users) && old.users.includes(writer.userId)) users.set(writer.userId, writer.name)
  }
  const ids = [...users.keys()].sort()
  const names = ids.map((id) => users.get(id) ?? id)
  const fieldList = Object.entries(totals.fields)
    .map(([f, n]) => `${f} ×${n}`)
    .join(', ')
  const by = names.length === 0 ? 'unknown users' : unknownWriters > 0 ? `${names.join(', ')} and unknown users` : names.join(', ')
  return {
    kind: 'compacted',
    id: summaries[0]!.entry.id,
    count: totals.n,
    fields: totals.fields,
    users: ids,
    unknownWriters,
    from: totals.from,
    to: totals.to,
    summary: `${totals.n} older change(s) compacted (${fieldList}) by ${by}`,
  }
}

/**
 * Entries written on a settlement that duplicates another by a writer who
 * had not seen the one that counts (`duplicates`: duplicate → counted): it
 * had the duplicate's characters on screen and edited them, before any
 * replica could delete them as a copy. Read from the entries' bases and
 * seen tips, transitively (array order is causal order: an entry comes
 * after those it names).
 */
const writtenOnDuplicates = (located: readonly LocatedEntry[], duplicates: ReadonlyMap<string, string>): Set<string> => {
  const out = new Set<string>()
  if (duplicates.size === 0) return out
  const counted = new Set(duplicates.values())
  /** Entry id → the duplicates and counted settlements its writer had seen (itself included). */
  const known = new Map<string, ReadonlySet<string>>()
  for (const { entry } of located) {
    if (entry.k === 'c' || known.has(entry.id)) continue
    const e = entry as StoredFieldEntry
    const mine = new Set<string>()
    if (duplicates.has(e.id) || counted.has(e.id)) mine.add(e.id)
    for (const parent of [e.b, ...(Array.isArray(e.s) ? e.s : [])]) {
      if (typeof parent !== 'string') continue
      for (const id of known.get(parent) ?? []) mine.add(id)
    }
    known.set(e.id, mine)
    for (const id of mine) if (id !== e.id && duplicates.has(id) && !mine.has(duplicates.get(id)!)) out.add(e.id)
  }
  return out
}

/**
 * Automatic settlements of the same merge written by several replicas at
 * once (same field, base and seen tips): the first in array order counts,
 * the others map to it (id → id of the one that counts). A text
 * settlement's inserted characters are duplicates, which any replica deletes
 * (`history/textSettle`); a scalar one set the same value.
 */
export const duplicateSettlements = (located: readonly LocatedEntry[]): Map<string, string> => {
  const first = new Map<string, string>()
  const out = new Map<string, string>()
  for (const { entry } of located) {
    if ((entry.k !== 't' && entry.k !== 's') || (entry as StoredFieldEntry).m !== 'auto') continue
    const e = entry as StoredFieldEntry
    const key = JSON.stringify([e.f, e.b, Array.isArray(e.s) ? [...e.s].sort() : [], e.v])
    const canonical = first.get(key)
    if (canonical === undefined) first.set(key, e.id)
    else out.set(e.id, canonical)
  }
  return out
}

const mergesOf = (field: string, list: FieldHistoryEntry[], current: Record<string, unknown> | undefined, singleLine: boolean): Merge[] => {
  const byId = new Map(list.map((e) => [e.id, e]))
  /**
   * A scalar settlement is no one's change: a set written on top of it groups
   * with the settlement's own base, where a set made meanwhile by someone who
   * had not seen the settlement groups too — the two are a merge.
   */
  const groupOf = (e: FieldHistoryEntry): string | null => {
    let base = e.base
    // Bounded: a made-up entry may name itself or a later one as its base.
    for (let steps = 0; base !== null && steps < list.length; steps++) {
      const up = byId.get(base)
      if (up === undefined || up.fieldKind !== 'scalar' || up.mode !== 'auto') break
      base = up.base
    }
    return base
  }
  const children = new Map<string | null, FieldHistoryEntry[]>()
  for (const e of list) {
    // A base that was compacted away still groups its children (same string).
    const key = groupOf(e)
    let group = children.get(key)
    if (group === undefined) children.set(key, (group = []))
    group.push(e)
  }
  /**
   * A side: the subtree under `root`. `own`: only up to entries whose writer
   * had seen another side (a settlement, a restore, an edit on top of the
   * merge) — what the side's own writers wrote, whose last entry holds the
   * side's version.
   */
  const subtree = (root: FieldHistoryEntry, own: boolean): FieldHistoryEntry[] => {
    const out: FieldHistoryEntry[] = []
    const stack = [root]
    while (stack.length > 0) {
      const e = stack.pop()!
      out.push(e)
      for (const child of children.get(e.id) ?? []) if (!own || child.seen === undefined) stack.push(child)
    }
    return out
  }
  const order = new Map(list.map((e, i) => [e.id, i]))
  const currentValue = current !== undefined && Object.hasOwn(current, field) ? current[field] : undefined
  const merges: Merge[] = []
  for (const [base, all] of children) {
    // A settlement is no one's change (a device wrote the rule's value): it is no side of a merge. An edit written
    // meanwhile on the same entry — someone typing when the settlement arrived — is no collision with it.
    const siblings = all.filter((e) => e.mode !== 'auto')
    if (siblings.length < 2) continue
    const fieldKind = siblings[0]!.fieldKind
    const mergeId = `${field}@${base ?? ''}`
    const ownIds = new Set<string>()
    const sides: MergeSide[] = siblings.map((entry) => {
      const members = subtree(entry, false)
      const own = subtree(entry, true)
      for (const e of own) ownIds.add(e.id)
      const tip = own.reduce((a, b) => (order.get(b.id)! > order.get(a.id)! ? b : a))
      entry.mergeId = mergeId
      return {
        entry,
        tip,
        entryIds: members.map((m) => m.id).sort((a, b) => order.get(a)! - order.get(b)!),
        value: tip.value,
        author: entry.author,
      }
    })
    const names = sides.map((s) => s.author.name ?? s.author.userId ?? 'someone')
    if (fieldKind === 'text') {
      merges.push(textMerge(mergeId, field, base, sides, ownIds, names, list, byId, currentValue, singleLine))
      continue
    }
    let kept: number | null = null
    if (current !== undefined && Object.hasOwn(current, field)) {
      const index = sides.findIndex((side) => sameValue(side.value, currentValue))
      kept = index === -1 ? null : index
    }
    const conflict = sides.some((s) => !sameValue(s.value, sides[0]!.value))
    const summary =
      `${sides.map((s, i) => `${names[i]} set ${field} to ${show(s.value)}`).join(' while ')}` +
      (kept === null ? '' : `; kept ${show(sides[kept]!.value)}`)
    merges.push({ id: mergeId, field, fieldKind, base, sides, kept, conflict, summary })
  }
  return merges
}

/**
 * A merge of a text field: each side's intended value and edit, whether they
 * collide, and how it was or must be settled. `own`: the ids of the entries
 * the sides' own writers wrote (each side up to the entries written by
 * someone who had seen another side).
 */
const textMerge = (
  id: string,
  field: string,
  base: string | null,
  sides: MergeSide[],
  own: ReadonlySet<string>,
  names: string[],
  list: readonly FieldHistoryEntry[],
  byId: ReadonlyMap<string, FieldHistoryEntry>,
  currentValue: unknown,
  singleLine: boolean,
): Merge => {
  const baseEntry = base === null ? undefined : byId.get(base)
  // Without a base entry (first entries of the field): what the first of them began on (see `ruleValue`).
  const firstPrev = [...sides]
    .sort((x, y) => (earliest([x.entry, y.entry]) === x.entry ? -1 : 1))
    .map((s) => s.entry.prev)
    .find((p): p is string => typeof p === 'string')
  // Sides written on top of the same merge (of a single-line field) began on its text, as the rule reads them: what
  // the first of them began on (one that began later may have begun on the other's typing too).
  const onMerge = singleLine && onSameMerge(sides.map((s) => s.entry))
  const baseValue = onMerge
    ? (firstPrev as string)
    : typeof baseEntry?.value === 'string'
      ? baseEntry.value
      : base === null
        ? (firstPrev ?? '')
        : (firstPrev ?? null)
  const guessed = new Set<MergeSide>()
  for (const side of sides) {
    const before = side.entry.prev
    const after = side.tip.value
    side.value = typeof after === 'string' ? after : undefined
    if (baseValue === null || typeof before !== 'string' || typeof after !== 'string') side.edit = null
    else {
      const laid = sideEdit(baseValue, ownChain(side, byId), before, after, singleLine)
      side.edit = laid.edit
      if (laid.guessed) guessed.add(side)
    }
  }
  // Sides typed together: the text stands as the CRDT merged it, what each writer watched (see `ruleValue`).
  const together = sides.every((s) => madeTogether(s.entryIds.flatMap((x) => byId.get(x) ?? [])))
  const ruled = textMergeOutcome(
    baseValue,
    sides.map((s, i) => ({
      edit: s.edit ?? null,
      at: s.tip.at,
      id: s.tip.id,
      ...(typeof s.value === 'string' ? { value: s.value } : {}),
      pick: s.entryIds.some((x) => byId.get(x)?.restoreOf !== undefined),
      shares: sides.flatMap((o, j) => (j !== i && (guessed.has(s) || guessed.has(o)) ? [j] : [])),
    })),
    singleLine,
  )
  const outcome = together ? { ...ruled, conflict: false, winner: null, settled: null } : ruled
  // What became of the merge: the latest entry written by someone who had seen its sides. A restore of an entry
  // in a side's subtree counts only when it chose a version of this merge, and a settlement or "keep" only when
  // written on this merge's own entries: the entries of a later merge of the field lie in that subtree too, and
  // choosing one of those, keeping it or settling it says nothing about this merge. A "keep" whose text is not the
  // field's any more was overtaken by an edit made at the same time (someone deleted a version meanwhile).
  const members = new Set(sides.flatMap((s) => s.entryIds))
  // (Sides' old tips stay tips — nothing is based on them — so every later entry names them as seen: what tells a
  // settlement of this merge is that the entries of this merge it names are all its sides' own.)
  const onOwn = (e: FieldHistoryEntry): boolean => {
    const named = [e.base, ...(e.seen ?? [])].filter((x): x is string => x !== null && members.has(x))
    return named.length > 0 && named.every((x) => own.has(x))
  }
  const settling = [...list]
    .reverse()
    .filter((e) =>
      e.restoreOf !== undefined && members.has(e.restoreOf)
        ? own.has(e.restoreOf)
        : e.mode !== undefined
          ? e.seen !== undefined && onOwn(e) && !(e.mode === 'keep' && typeof currentValue === 'string' && e.value !== currentValue)
          : e.seen !== undefined && (members.has(e.base ?? '') || e.seen.some((x) => members.has(x))),
    )
  // Versions chosen by several people at once (the latest entries are all choices): the one the text holds — the
  // later choice, by the rule — rather than the one this replica happened to receive last.
  const firstOther = settling.findIndex((e) => e.restoreOf === undefined)
  const choices = firstOther === -1 ? settling : settling.slice(0, firstOther)
  const settledBy = choices.find((e) => e.restoreOf !== undefined && e.value === currentValue) ?? settling[0] ?? null
  const current = typeof currentValue === 'string' ? currentValue : null
  const result = outcome.value ?? current
  // Without a collision every side's edit is in the text: none was kept over another, even when one side's
  // version equals the text (its writer saw the others' typing live, before their entries were written).
  const keptIndex = current === null || !outcome.conflict ? -1 : sides.findIndex((s) => s.value === current)
  const kept = keptIndex === -1 ? null : keptIndex
  let summary: string
  if (!outcome.conflict) summary = `${names.join(' and ')} edited ${field} at the same time; both contributions were merged`
  else if (outcome.winner !== null) {
    summary = `${names.join(' and ')} changed ${field} at the same time; kept ${names[outcome.winner]}'s version "${show(outcome.settled)}"`
  } else summary = `${names.join(' and ')} changed the same part of ${field} at the same time; both versions are in the text`
  return {
    id,
    field,
    fieldKind: 'text',
    base,
    sides,
    kept,
    conflict: outcome.conflict,
    baseValue,
    result,
    settledBy,
    winner: outcome.winner,
    summary,
  }
}

/**
 * The entries of a text side its own writers wrote one after the other,
 * from its first entry to its tip, each based on the one before (typing
 * bursts of the same side). Null when they do not form such a chain (the
 * side forked in turn): the side is then read as one range.
 */
const ownChain = (side: MergeSide, byId: ReadonlyMap<string, FieldHistoryEntry>): FieldHistoryEntry[] | null => {
  const chain = [side.tip]
  while (chain[0] !== side.entry) {
    const base = chain[0]!.base
    const parent = base === null ? undefined : byId.get(base)
    if (parent === undefined || chain.length > side.entryIds.length) return null
    chain.unshift(parent)
  }
  // The side's own entries: those reached from its first entry through writers who had seen no other side.
  const own = (e: FieldHistoryEntry | undefined): boolean =>
    e !== undefined && (e === side.entry || (e.seen === undefined && own(e.base === null ? undefined : byId.get(e.base))))
  const owned = side.entryIds.filter((id) => own(byId.get(id))).length
  return owned === chain.length ? chain : null
}
