/**
 * How a record lives in its Y.Doc, and the typed read / validated write of
 * its fields.
 *
 * Layout (top-level types only, so that concurrent first writes of a field by
 * two devices merge instead of one replacing the other):
 *
 *     Y.Map  'record'        type, schemaVersion, createdAt, createdBy, updatedAt, updatedBy, archived, deleted, discarded
 *     Y.Map  'fields'        one key per scalar field
 *     Y.Text 'text:<name>'   one per text field
 *     Y.Array 'list:<name>'  one per list field
 *     Y.Array 'concord:history'   field-level history (see history/historyLog)
 *     Y.Array 'concord:comments'  comments (see records/comments)
 *
 * A record is created in one transaction that sets `type` last, so the item
 * of `type` marks where the creation ends: {@link isBlank} tells a record
 * nobody wrote anything in since (a "New ticket" left without a word) from
 * one with content.
 *
 * Fields a newer schema added are just more keys and top-level types: this
 * module never touches what it does not know, so they stay intact, and
 * {@link readRecord} reports them under `unknownFields`.
 *
 * Writes validate every value first and write nothing when one is wrong.
 *
 * @module records/recordDoc
 */
import * as Y from 'yjs'
import type { FieldSpec, RecordSchema } from './schema.js'
import { META_MAP_NAME } from './metaMap.js'

/** Top-level map of the record's own bookkeeping. */
export const RECORD_MAP = 'record'
/** Top-level map of scalar fields. */
export const FIELDS_MAP = 'fields'
/** Prefix of the top-level `Y.Text` of a text field. */
export const TEXT_PREFIX = 'text:'
/** Prefix of the top-level `Y.Array` of a list field. */
export const LIST_PREFIX = 'list:'
/** Top-level `Y.Array` of the record's comments (see `records/comments`). */
export const COMMENTS_ARRAY = 'concord:comments'

/** Keys of the `record` map. */
export const RecordKey = {
  type: 'type',
  schemaVersion: 'schemaVersion',
  createdAt: 'createdAt',
  createdBy: 'createdBy',
  updatedAt: 'updatedAt',
  updatedBy: 'updatedBy',
  archived: 'archived',
  deleted: 'deleted',
  /** Set on a blank record its creator left ({@link isBlank}): it counts as deleted while it stays blank. */
  discarded: 'discarded',
} as const

/** A record as read from its doc. */
export interface RecordSnapshot {
  /** Record id (the doc name is `<workspaceId>/<id>`). */
  id: string
  /** Record type, or null for a doc that is not (yet) a record, e.g. not synced yet. */
  type: string | null
  /** Schema version the record was created with. */
  schemaVersion: number | null
  /** Every field of the schema: its value, or the field's default when unset. */
  fields: Record<string, unknown>
  /**
   * Fields the schema does not know (written by a newer schema), read as
   * plain values. They are kept intact by every write.
   */
  unknownFields: Record<string, unknown>
  /**
   * Stored values the schema rejects (e.g. an enum value a newer schema
   * added). `fields` shows the default instead; the stored value is untouched.
   */
  invalidFields: Record<string, unknown>
  createdAt: number | null
  createdBy: string | null
  /** Time of the last change, written with a resolution of a few seconds. */
  updatedAt: number | null
  updatedBy: string | null
  archived: boolean
  /** Deleted, or discarded while blank (see {@link isDiscarded}). */
  deleted: boolean
}

/** One problem of a rejected write. */
export interface ValidationProblem {
  /** The field name as given. */
  field: string
  message: string
}

/**
 * A write was rejected: an unknown field, a value of the wrong type, or a
 * record type no schema describes. Nothing was written.
 */
export class RecordValidationError extends Error {
  readonly recordType: string
  readonly recordId: string
  readonly problems: readonly ValidationProblem[]

  constructor(recordType: string, recordId: string, problems: ValidationProblem[]) {
    const list = problems.map((p) => (p.field === '' ? p.message : `field "${p.field}": ${p.message}`)).join('; ')
    super(`cannot write ${recordType} "${recordId}": ${list}. Nothing was written.`)
    this.name = 'RecordValidationError'
    this.recordType = recordType
    this.recordId = recordId
    this.problems = problems
  }
}

/** A validated write, ready to apply. */
export type ValidatedPatch = Array<{ name: string; spec: FieldSpec; value: unknown }>

/**
 * Validates `patch` against `schema`. Throws {@link RecordValidationError}
 * listing every problem; returns the values to write (as zod parsed them).
 */
export const validatePatch = (schema: RecordSchema, recordId: string, patch: Record<string, unknown>): ValidatedPatch => {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new RecordValidationError(schema.type, recordId, [{ field: '', message: 'expected an object of field values' }])
  }
  const problems: ValidationProblem[] = []
  const out: ValidatedPatch = []
  for (const [name, value] of Object.entries(patch)) {
    const spec = Object.hasOwn(schema.fields, name) ? schema.fields[name] : undefined
    if (spec === undefined) {
      problems.push({
        field: name,
        message: `unknown field of ${schema.type} (v${schema.version}); known fields: ${Object.keys(schema.fields).join(', ')}`,
      })
      continue
    }
    const problem = checkValue(spec, value)
    if (typeof problem === 'string') problems.push({ field: name, message: problem })
    else out.push({ name, spec, value: problem.value })
  }
  if (problems.length > 0) throw new RecordValidationError(schema.type, recordId, problems)
  return out
}

const describeValue = (value: unknown): string => {
  if (value === undefined) return 'undefined'
  try {
    const json = JSON.stringify(value)
    return json.length > 60 ? `${json.slice(0, 57)}...` : json
  } catch {
    return typeof value
  }
}

const checkValue = (spec: FieldSpec, value: unknown): string | { value: unknown } => {
  switch (spec.kind) {
    case 'text':
      if (typeof value !== 'string') return `expected text (a string), got ${describeValue(value)}`
      if (spec.maxLength !== undefined && value.length > spec.maxLength) {
        return `text is ${value.length} characters long, at most ${spec.maxLength} are allowed`
      }
      return { value }
    case 'scalar': {
      if (value === undefined) return 'undefined is not a value; use null to clear a field'
      const result = spec.schema.safeParse(value)
      if (!result.success) return `${result.error.issues.map((i) => i.message).join(', ')} (got ${describeValue(value)})`
      return { value: result.data }
    }
    case 'list': {
      if (!Array.isArray(value)) return `expected a list (an array), got ${describeValue(value)}`
      if (spec.maxItems !== undefined && value.length > spec.maxItems) {
        return `list has ${value.length} items, at most ${spec.maxItems} are allowed`
      }
      const items: unknown[] = []
      for (let i = 0; i < value.length; i++) {
        const result = spec.item.safeParse(value[i])
        if (!result.success) return `item ${i}: ${result.error.issues.map((x) => x.message).join(', ')} (got ${describeValue(value[i])})`
        items.push(result.data)
      }
      return { value: items }
    }
  }
}

/**
 * Writes a validated patch. Call inside `doc.transact` so it is one change.
 * Returns the changed ranges of each text field written (`[start, end,
 * insert]` on its text before: a multi-line field changes line by line).
 */
export const applyPatch = (doc: Y.Doc, patch: ValidatedPatch): Map<string, Array<[number, number, string]>> => {
  const fields = doc.getMap<unknown>(FIELDS_MAP)
  const hunks = new Map<string, Array<[number, number, string]>>()
  for (const { name, spec, value } of patch) {
    if (spec.kind === 'text')
      hunks.set(name, replaceText(doc.getText(TEXT_PREFIX + name), value as string, { lines: spec.multiline === true }))
    else if (spec.kind === 'list') replaceList(doc.getArray<unknown>(LIST_PREFIX + name), value as unknown[])
    else if (!fields.has(name) || !sameJson(fields.get(name), value)) fields.set(name, value)
  }
  return hunks
}

/** Longest middle (items, after the common ends) whose common subsequence is worked out item by item; beyond, it is replaced whole. */
const LIST_DIFF_CELLS = 1_000_000

/**
 * Turns `list` into `next` deleting and inserting only the items that differ
 * (items compared as JSON): the items both hold stay where they are, so an
 * item someone else adds or removes at the same time stays added or
 * removed. (Deleting everything and inserting `next` undid others'
 * removals and doubled what both kept: two people each removing a label
 * ended with both labels back.) Call inside a transaction.
 */
export const replaceList = (list: Y.Array<unknown>, next: readonly unknown[]): void => {
  const kept = keptPairs(
    list.toArray().map((item) => JSON.stringify(item)),
    next.map((item) => JSON.stringify(item)),
  )
  if (kept === null) return
  // Each gap between two kept items: delete what prev has there, insert what next has; from the end, so that the
  // indices of the gaps before stay valid.
  for (let k = kept.length - 1; k > 0; k--) {
    const [fromA, fromB] = kept[k - 1]!
    const [toA, toB] = kept[k]!
    if (toA - fromA > 1) list.delete(fromA + 1, toA - fromA - 1)
    if (toB - fromB > 1) list.insert(fromA + 1, next.slice(fromB + 1, toB))
  }
}

/**
 * The items `a` and `b` keep in common, as pairs (index in `a`, index in
 * `b`) in order: first the common start's last item (`[-1, -1]` when there
 * is no common start), then a longest common subsequence of the middles
 * (past {@link LIST_DIFF_CELLS} cells the middle counts as replaced whole),
 * last the common end's first item (`[a.length, b.length]` when there is no
 * common end) — the items between two pairs are what changed. Null when `a`
 * and `b` are equal.
 */
const keptPairs = (a: readonly string[], b: readonly string[]): Array<[number, number]> | null => {
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--
    endB--
  }
  const n = endA - start
  const m = endB - start
  if (n === 0 && m === 0) return null
  // The common start's last item, then the middle's common subsequence, then the common end's first item.
  const kept: Array<[number, number]> = [[start - 1, start - 1]]
  if (n > 0 && m > 0 && n * m <= LIST_DIFF_CELLS) {
    // Longest common subsequence of the middles; lcs[i * (m + 1) + j] is its length from a[start + i] and b[start + j] on.
    const lcs = new Uint32Array((n + 1) * (m + 1))
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * (m + 1) + j] =
          a[start + i] === b[start + j]
            ? lcs[(i + 1) * (m + 1) + j + 1]! + 1
            : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!)
      }
    }
    let i = 0
    let j = 0
    while (i < n && j < m) {
      if (a[start + i] === b[start + j]) kept.push([start + i++, start + j++])
      else if (lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!) i++
      else j++
    }
  }
  kept.push([endA, endB])
  return kept
}

/**
 * Replaces the content of `text` with `next`, touching only the changed
 * middle part (common prefix and suffix stay, words whole: {@link
 * changedRange}), so concurrent edits elsewhere in the text survive.
 */
export const replaceText = (text: Y.Text, next: string, options: { lines?: boolean } = {}): Array<[number, number, string]> => {
  const prev = text.toString()
  if (prev === next) return []
  const hunks = options.lines === true ? lineHunks(prev, next) : [hunkOf(prev, next, 0)]
  // Right to left: the positions of the hunks before stay valid.
  for (let k = hunks.length - 1; k >= 0; k--) {
    const [start, end, insert] = hunks[k]!
    replaceChars(text, prev, (i) => i, start, end, insert)
  }
  return hunks
}

/** The one changed range between `prev` and `next` (words whole: {@link changedRange}), as a hunk on the text `prev` is a part of at `at`. */
const hunkOf = (prev: string, next: string, at: number): [number, number, string] => {
  const { start, endPrev, endNext } = changedRange(prev, next)
  return [at + start, at + endPrev, next.slice(start, endNext)]
}

/**
 * The change from `from` to `to`, applied to `onto` — a later text that
 * holds `from` with other changes made since (three-way): a multi-line text
 * by lines ({@link rebaseLines}); a single-line one by its one changed range
 * ({@link changedRange}), which must neither overlap nor touch the range
 * changed since. Null when both changed the same part: only the writer can
 * tell how the two go together.
 *
 * @example
 *   rebaseText('Login fails', 'Login fails on iOS', 'Urgent: Login fails', { lines: false })
 *   // 'Urgent: Login fails on iOS'
 */
export const rebaseText = (from: string, to: string, onto: string, options: { lines: boolean }): string | null => {
  if (onto === from || onto === to) return to
  if (to === from) return onto
  if (options.lines) return rebaseLines(from, to, onto)
  const mine = changedRange(from, to)
  const theirs = changedRange(from, onto)
  const insert = to.slice(mine.start, mine.endNext)
  // Text before the other change is where it was; after it, shifted by what it inserted or deleted.
  if (mine.endPrev < theirs.start) return onto.slice(0, mine.start) + insert + onto.slice(mine.endPrev)
  if (theirs.endPrev < mine.start) {
    const shift = theirs.endNext - theirs.endPrev
    return onto.slice(0, mine.start + shift) + insert + onto.slice(mine.endPrev + shift)
  }
  return null
}

/**
 * Applies the line changes that turn `from` into `to` onto `onto`, a later
 * text that holds `from`'s lines with other changes made since (three-way,
 * by lines): each run of lines `to` replaced must still stand together in
 * `onto` as it stood in `from`, and is replaced there; lines `to` inserted
 * go between the same two lines; the rest of `onto` stays. Null when a
 * replaced run was changed in `onto` too, or others put lines where `to`
 * inserts — the two cannot be told apart line by line.
 */
export const rebaseLines = (from: string, to: string, onto: string): string | null => {
  if (from === onto) return to
  const a = from.split('\n')
  const b = to.split('\n')
  const c = onto.split('\n')
  const changes = keptPairs(a, b)
  if (changes === null) return onto
  const kept = keptPairs(a, c)
  // Line i of `from` → its line in `onto` (the text's ends map to the ends).
  const at = new Map<number, number>([
    [-1, -1],
    [a.length, c.length],
  ])
  if (kept === null) for (let i = 0; i < a.length; i++) at.set(i, i)
  else {
    // The pairs name the common start's last line and the common end's first: the lines before and after map too.
    const [last] = kept[0]!
    for (let i = 0; i <= last; i++) at.set(i, i)
    for (const [i, j] of kept) at.set(i, j)
    const [endA, endC] = kept.at(-1)!
    for (let k = 0; endA + k < a.length; k++) at.set(endA + k, endC + k)
  }
  const out = [...c]
  for (let k = changes.length - 1; k > 0; k--) {
    const [fromA, fromB] = changes[k - 1]!
    const [toA, toB] = changes[k]!
    if (toA - fromA === 1 && toB - fromB === 1) continue
    const lines = b.slice(fromB + 1, toB)
    if (toA - fromA > 1) {
      // The run of replaced lines still stands together in `onto`: it is replaced there.
      const first = at.get(fromA + 1)
      if (first === undefined) return null
      for (let i = fromA + 2; i < toA; i++) if (at.get(i) !== first + (i - fromA - 1)) return null
      out.splice(first, toA - fromA - 1, ...lines)
    } else {
      // Lines inserted between two lines: between the same two in `onto`, unless others put lines there meanwhile.
      const before = at.get(fromA)
      const after = at.get(toA)
      if (before === undefined || after === undefined) return null
      if (after !== before + 1 && fromA >= 0 && toA < a.length) return null
      out.splice(fromA >= 0 ? before + 1 : after, 0, ...lines)
    }
  }
  return out.join('\n')
}

/**
 * The changes from `prev` to `next` line by line: the lines both hold stay
 * (a longest common subsequence of lines), and each run of lines between
 * two kept ones is one hunk — its changed range, words whole — `[start,
 * end, insert]` on `prev`, in order. Someone editing another line at the
 * same time edits text this write does not touch.
 */
export const lineHunks = (prev: string, next: string): Array<[number, number, string]> => {
  const a = prev.split('\n')
  const b = next.split('\n')
  const kept = keptPairs(a, b)
  if (kept === null) return []
  /** Where line `i` of `lines` starts (one past the text's end for `lines.length`). */
  const starts = (lines: readonly string[]): number[] => {
    const out = [0]
    for (const line of lines) out.push(out.at(-1)! + line.length + 1)
    return out
  }
  const startA = starts(a)
  const startB = starts(b)
  const hunks: Array<[number, number, string]> = []
  for (let k = 1; k < kept.length; k++) {
    const [fromA, fromB] = kept[k - 1]!
    const [toA, toB] = kept[k]!
    if (toA - fromA === 1 && toB - fromB === 1) continue
    // From the line break after the kept line before to the start of the kept line after (the text's ends at its ends).
    const loA = fromA < 0 ? 0 : startA[fromA + 1]! - 1
    const hiA = Math.min(startA[toA]!, prev.length)
    const loB = fromB < 0 ? 0 : startB[fromB + 1]! - 1
    const hiB = Math.min(startB[toB]!, next.length)
    const hunk = hunkOf(prev.slice(loA, hiA), next.slice(loB, hiB), loA)
    if (hunk[0] !== hunk[1] || hunk[2] !== '') hunks.push(hunk)
  }
  return hunks
}

/**
 * Writes `insert` in place of `shown.slice(start, end)`, where `shown` is
 * the text `text` shows without some characters that stay (settlements
 * leave others' typing that has no entry yet where it is): its character
 * `i` is character `at(i)` of `text`. Call inside a transaction.
 *
 * The new text goes inside the text it replaces, after its first character
 * (when the second follows it directly), and only then is the old text
 * deleted; an insertion goes right after the character left of it. Yjs
 * orders insertions at one place by client id: inserted where the old text
 * began, typing others add right in front of it could follow the new text
 * ("t003t005 "); inserted after the deleted text (where Yjs puts an
 * insertion made after the deletion), typing at its end could come first
 * ("t007t006"). An emoji is never split.
 */
export const replaceChars = (text: Y.Text, shown: string, at: (i: number) => number, start: number, end: number, insert: string): void => {
  const first = end > start ? charLength(shown, start) : 0
  const insertAt =
    end - start > first && at(start + first) === at(start) + first
      ? at(start) + first
      : end > start
        ? at(start)
        : start === 0
          ? 0
          : at(start - 1) + 1
  if (insert.length > 0) text.insert(insertAt, insert)
  // Right to left, the runs of replaced characters (what stays between them stays), at their indexes before the insert.
  for (let i = end - 1; i >= start; i--) {
    let from = i
    while (from > start && at(from - 1) === at(from) - 1) from--
    const a = at(from)
    const b = at(i) + 1
    if (a < insertAt && insertAt < b) {
      // the run the new text went into: its part after the new text, then its part before
      text.delete(insertAt + insert.length, b - insertAt)
      text.delete(a, insertAt - a)
    } else text.delete(a >= insertAt ? a + insert.length : a, b - a)
    i = from
  }
}

const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  try {
    return JSON.stringify(a) === JSON.stringify(b)
  } catch {
    return false
  }
}

/**
 * Writes the `record` map of a new record (inside the caller's transaction),
 * `type` last: write the initial field values before, so that the item of
 * `type` ends the creation ({@link isBlank}).
 */
export const initRecord = (doc: Y.Doc, schema: RecordSchema, createdBy: string | null, now: number): void => {
  const record = doc.getMap<unknown>(RECORD_MAP)
  record.set(RecordKey.schemaVersion, schema.version)
  record.set(RecordKey.createdAt, now)
  record.set(RecordKey.createdBy, createdBy)
  record.set(RecordKey.updatedAt, now)
  record.set(RecordKey.updatedBy, createdBy)
  record.set(RecordKey.archived, false)
  record.set(RecordKey.deleted, false)
  record.set(RecordKey.type, schema.type)
}

/** Record-map keys written as bookkeeping after a change, or by a discard: they do not make a record non-blank. */
const BOOKKEEPING_KEYS = new Set<string | null>([RecordKey.updatedAt, RecordKey.updatedBy, RecordKey.discarded])

/**
 * The Yjs id of the record's `type` item — the creation's last item — or
 * null when the doc holds no record.
 */
const creationEnd = (doc: Y.Doc): Y.ID | null => {
  const item = doc.getMap<unknown>(RECORD_MAP)._map.get(RecordKey.type)
  return item === undefined || item.deleted ? null : item.id
}

/**
 * Whether nobody wrote anything in the record since it was created: every
 * item of the doc belongs to the creation transaction (the creator's items
 * up to the `type` item) except bookkeeping (`updatedAt`, `updatedBy`,
 * `discarded`, delete markers in `concord:meta`). Someone else's edit, a
 * later edit of the creator (even one undone since), a comment, an archive:
 * the record is not blank. Records created before `type` was written last
 * are never blank (their creation looks like later edits): nothing is lost.
 */
export const isBlank = (doc: Y.Doc): boolean => {
  const end = creationEnd(doc)
  if (end === null) return false
  const record = doc.getMap<unknown>(RECORD_MAP)
  const meta = doc.share.get(META_MAP_NAME)
  for (const [client, structs] of doc.store.clients) {
    for (const struct of structs) {
      if (client === end.client && struct.id.clock + struct.length - 1 <= end.clock) continue
      if (!(struct instanceof Y.Item)) return false
      if (struct.parent === record && BOOKKEEPING_KEYS.has(struct.parentSub)) continue
      if (meta !== undefined && struct.parent === meta) continue
      return false
    }
  }
  return true
}

/** Whether the record was discarded ({@link RecordKey.discarded}) and is still blank: then it counts as deleted. */
export const isDiscarded = (doc: Y.Doc): boolean => doc.getMap<unknown>(RECORD_MAP).get(RecordKey.discarded) === true && isBlank(doc)

/** The record type stored in a doc, or null. */
export const recordType = (doc: Y.Doc): string | null => {
  const type = doc.getMap<unknown>(RECORD_MAP).get(RecordKey.type)
  return typeof type === 'string' ? type : null
}

/** Reads a record. Never throws on stored data: bad values land in `invalidFields`. */
export const readRecord = (doc: Y.Doc, id: string, schema: RecordSchema | undefined): RecordSnapshot => {
  const record = doc.getMap<unknown>(RECORD_MAP)
  const stored = doc.getMap<unknown>(FIELDS_MAP)
  const fields: Record<string, unknown> = {}
  const unknownFields: Record<string, unknown> = {}
  const invalidFields: Record<string, unknown> = {}
  const known = schema?.fields ?? {}
  for (const [name, spec] of Object.entries(known)) {
    if (spec.kind === 'text') fields[name] = doc.share.has(TEXT_PREFIX + name) ? doc.getText(TEXT_PREFIX + name).toString() : ''
    else if (spec.kind === 'list') {
      const items = doc.share.has(LIST_PREFIX + name) ? doc.getArray<unknown>(LIST_PREFIX + name).toArray() : []
      const valid = items.every((item) => spec.item.safeParse(item).success)
      fields[name] = valid ? items : items.filter((item) => spec.item.safeParse(item).success)
      if (!valid) invalidFields[name] = items
    } else if (!stored.has(name)) fields[name] = spec.default
    else {
      const value = stored.get(name)
      const result = spec.schema.safeParse(value)
      if (result.success) fields[name] = result.data
      else {
        fields[name] = spec.default
        invalidFields[name] = value
      }
    }
  }
  for (const [key, value] of stored.entries()) {
    if (!Object.hasOwn(known, key)) unknownFields[key] = value instanceof Y.AbstractType ? value.toJSON() : value
  }
  for (const name of doc.share.keys()) {
    if (name.startsWith(TEXT_PREFIX)) {
      const field = name.slice(TEXT_PREFIX.length)
      if (!Object.hasOwn(known, field)) unknownFields[field] = doc.getText(name).toString()
    } else if (name.startsWith(LIST_PREFIX)) {
      const field = name.slice(LIST_PREFIX.length)
      if (!Object.hasOwn(known, field)) unknownFields[field] = doc.getArray(name).toJSON()
    }
  }
  const num = (key: string): number | null => {
    const value = record.get(key)
    return typeof value === 'number' ? value : null
  }
  const str = (key: string): string | null => {
    const value = record.get(key)
    return typeof value === 'string' ? value : null
  }
  return {
    id,
    type: str(RecordKey.type),
    schemaVersion: num(RecordKey.schemaVersion),
    fields,
    unknownFields,
    invalidFields,
    createdAt: num(RecordKey.createdAt),
    createdBy: str(RecordKey.createdBy),
    updatedAt: lastChangeAt(doc),
    updatedBy: str(RecordKey.updatedBy),
    archived: record.get(RecordKey.archived) === true,
    deleted: record.get(RecordKey.deleted) === true || isDiscarded(doc),
  }
}

/**
 * The field a changed top-level type belongs to: `'title'` for
 * `'text:title'`, map keys for `fields`, `$archived` / `$deleted` / `$created`
 * for the record map. Bookkeeping (`updatedAt`, delete markers) is not a field.
 */
export const fieldsOfChange = (topName: string, keys: Set<string | null>): string[] => {
  if (topName.startsWith(TEXT_PREFIX)) return [topName.slice(TEXT_PREFIX.length)]
  if (topName.startsWith(LIST_PREFIX)) return [topName.slice(LIST_PREFIX.length)]
  if (topName === FIELDS_MAP) return [...keys].filter((k): k is string => k !== null)
  if (topName === RECORD_MAP) {
    if (keys.has(RecordKey.type)) return ['$created']
    const out = new Set<string>()
    for (const key of keys) {
      if (key === RecordKey.archived) out.add('$archived')
      else if (key === RecordKey.deleted || key === RecordKey.discarded) out.add('$deleted')
      else if (key === RecordKey.type || key === RecordKey.schemaVersion || key === RecordKey.createdAt) out.add('$created')
    }
    return [...out]
  }
  if (topName === COMMENTS_ARRAY) return ['$comments']
  return []
}

/**
 * The range where `prev` and `next` differ: `prev.slice(start, endPrev)` was
 * replaced by `next.slice(start, endNext)` (common prefix and suffix removed).
 *
 * Words stay whole. A replacement that begins or ends inside a word takes
 * the whole word ("t002" → "t004" replaces "t002", not its last digit). An
 * insertion or a deletion next to text that repeats it could lie at several
 * places: " t008" typed after "t003" in "t003 t002" is also "8 t00" inserted
 * after "t003 t00"; the range is the one whose edges fall on word boundaries
 * (whitespace on either side, or an end of the text), the rightmost of those
 * that fit them best. So a word written next to a similar one is one word,
 * for the CRDT (others' concurrent edits of the neighbour leave it whole) and
 * for the history's rule, which lays such ranges on other texts.
 */
export const changedRange = (prev: string, next: string): { start: number; endPrev: number; endNext: number } => {
  let start = 0
  const max = Math.min(prev.length, next.length)
  while (start < max && prev.charCodeAt(start) === next.charCodeAt(start)) start++
  let endPrev = prev.length
  let endNext = next.length
  while (endPrev > start && endNext > start && prev.charCodeAt(endPrev - 1) === next.charCodeAt(endNext - 1)) {
    endPrev--
    endNext--
  }
  if (endPrev > start && endNext > start) {
    // A replacement inside a word replaces the word: "t002" → "t004" is the word, not its last digit.
    while (start > 0 && !isSpace(prev.charCodeAt(start - 1))) start--
    while (endPrev < prev.length && !isSpace(prev.charCodeAt(endPrev))) {
      endPrev++
      endNext++
    }
    return { start, endPrev, endNext }
  }
  if (endPrev === start && endNext === start) return { start, endPrev, endNext }
  // A pure insertion (or deletion) slides left while the character before it equals its last one.
  const changed = endNext > start ? next : prev
  const length = (endNext > start ? endNext : endPrev) - start
  const score = (s: number): number =>
    (s === 0 || isSpace(prev.charCodeAt(s - 1)) || isSpace(changed.charCodeAt(s)) ? 1 : 0) +
    (s + (endPrev - start) === prev.length || isSpace(prev.charCodeAt(s + (endPrev - start))) || isSpace(changed.charCodeAt(s + length - 1))
      ? 1
      : 0)
  let best = start
  let bestScore = score(start)
  for (let s = start, steps = 0; bestScore < 2 && s > 0 && steps < MAX_SLIDE; steps++) {
    if (prev.charCodeAt(s - 1) !== changed.charCodeAt(s - 1 + length)) break
    s--
    const at = score(s)
    if (at > bestScore) {
      best = s
      bestScore = at
    }
  }
  const shift = start - best
  return { start: best, endPrev: endPrev - shift, endNext: endNext - shift }
}

/** UTF-16 units of the character at `index` of `s`: 2 for a surrogate pair (an emoji), else 1. */
const charLength = (s: string, index: number): number => {
  const code = s.charCodeAt(index)
  if (code < 0xd800 || code > 0xdbff) return 1
  const next = s.charCodeAt(index + 1)
  return next >= 0xdc00 && next <= 0xdfff ? 2 : 1
}

/** How far {@link changedRange} looks for a better place (characters). */
const MAX_SLIDE = 256

const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13) || code === 0xa0 || code === 0x3000

/** History entries {@link lastChangeAt} reads: concurrent appends land at the end of the log. */
const RECENT_HISTORY_ENTRIES = 32

/**
 * When the record last changed: the newest of its `updatedAt` and the times
 * of its latest history entries. Concurrent writes of `updatedAt` keep one
 * value by client id, not the latest — edits made offline an hour ago can
 * win over a change made since, on every replica — while the history log
 * keeps every writer's time. Null for a doc that is not a record (yet).
 */
export const lastChangeAt = (doc: Y.Doc): number | null => {
  const stamped = doc.getMap<unknown>(RECORD_MAP).get(RecordKey.updatedAt)
  if (typeof stamped !== 'number') return null
  let latest = stamped
  if (!doc.share.has('concord:history')) return latest
  const history = doc.getArray<unknown>('concord:history')
  for (const entry of history.slice(Math.max(0, history.length - RECENT_HISTORY_ENTRIES))) {
    const { at, k } = (entry ?? {}) as { at?: unknown; k?: unknown }
    if (typeof at === 'number' && k !== 'c' && at > latest) latest = at // not a compaction summary: its time is the compaction's
  }
  return latest
}
