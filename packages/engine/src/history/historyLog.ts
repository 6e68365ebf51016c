/**
 * The write side of field-level history: every field write through the
 * record API appends, in the same transaction, one entry per changed field
 * to the top-level `Y.Array` {@link HISTORY_ARRAY} of the record doc.
 *
 * An entry says what changed and what the writer had seen — never who wrote
 * it: the author is derived from the Yjs client id of the entry's item through
 * the relay's author bindings (see `readHistory`), so it cannot be forged.
 *
 *     { id, f: field, k: 's' | 't' | 'l', v: new value, p: previous value,   scalar / list
 *       ins, del: inserted / deleted text (text fields, truncated),
 *       (text fields: v / p are the whole text after / before the writer's own edit, when short enough;
 *        pd?: [start, end, text] instead of p for long texts: p is v with v.slice(start, end) replaced by text)
 *       at: ms since epoch, b: id of the field's head the writer had seen (or null),
 *       s?: the field's other tips the writer had seen (text fields: it saw a merge),
 *       m?: 'auto' (a merge settled on its rule's value) | 'keep' (a merge accepted as it is),
 *       ic?: clock of the first character an 'auto' entry inserted,
 *       h?: [[start, end, insert], …] on p, when a write changed several places (or one beyond where p and v differ),
 *       l?: 1 a typing burst made while connected: each keystroke went out as it was made,
 *       r?: id of the entry whose value a restore brought back }
 *     { id, k: 'c', at, n, fields: { field: count }, from, to,                       compaction summary
 *       c: { <clientId base36>: { t: newest compacted clock, f: { field: count } } } }
 *
 * A field entry's `id` is `<clientId base36>.<clock base36>` of the item
 * holding it; readers skip entries whose id is not their own.
 *
 * `b` makes concurrency visible: two entries of the same field with the
 * same `b` were written without seeing each other — a merge.
 *
 * @example
 *   doc.transact(() => {
 *     const prev = fields.get('status')
 *     fields.set('status', 'done')
 *     appendFieldChanges(doc, [{ field: 'status', kind: 'scalar', prev, next: 'done' }], { now: Date.now() })
 *   }, RECORD_WRITE_ORIGIN)
 *
 * @module history/historyLog
 */
import { changedRange } from '../model/recordDoc.js'
import * as Y from 'yjs'
import { LONG_TEXT_VALUE_LIMIT, TEXT_VALUE_LIMIT } from './textMerge.js'

/** Name of the top-level `Y.Array` holding a record's history. */
export const HISTORY_ARRAY = 'concord:history'
/** Default bound of entries kept per record before older ones are compacted. */
export const DEFAULT_MAX_HISTORY = 500
/** Inserted / deleted text longer than this is truncated in a text entry (with `…`). */
export const TEXT_SUMMARY_LENGTH = 200

/** Kind of field an entry describes. */
export const EntryKind = {
  scalar: 's',
  text: 't',
  list: 'l',
  compacted: 'c',
} as const
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind]

/** A field change entry as stored in the doc. */
export interface StoredFieldEntry {
  id: string
  f: string
  k: 's' | 't' | 'l'
  v?: unknown
  p?: unknown
  ins?: string
  del?: string
  at: number
  b: string | null
  /**
   * Text and scalar fields: the field's other tips the writer had seen besides `b` (it wrote on top of a merge).
   * Scalar entries always carry it (empty when there were none); entries of older versions do not.
   */
  s?: string[]
  /**
   * `auto` — the writer settled a merge on the rule's value (text and scalar fields); `keep` — accepted a text
   * merge as it is.
   */
  m?: 'auto' | 'keep'
  /** `auto` entries: clock of the first character the writer inserted (they run up to the entry's own clock). */
  ic?: number
  /**
   * Text fields: the writer's changed ranges `[start, end, insert]` on `p`, when it changed several places, or one
   * other than the range `p` and `v` differ in (typed over a multi-line field's sentence a new one that begins alike).
   */
  h?: Array<[number, number, string]>
  /**
   * Text fields, texts longer than {@link TEXT_VALUE_LIMIT}: the text before the edit as `v` with `v.slice(start,
   * end)` replaced by `text` (instead of a whole `p`; see {@link entryPrev}).
   */
  pd?: [number, number, string]
  r?: string
  /**
   * Text fields, typing bursts: `1` when every keystroke of the burst was made while connected (the record synced on
   * a live connection): it reached everyone online as it was typed, so others typing at the same time watched it
   * (see `history/textMerge`, `madeTogether`).
   */
  l?: 1
}

/**
 * The whole text before a text entry's edit, as its writer saw it: its `p`,
 * or its `v` with the part `pd` names put back; undefined when the entry
 * does not keep it (texts over {@link LONG_TEXT_VALUE_LIMIT}, or an entry
 * that is not well formed).
 */
export const entryPrev = (entry: StoredFieldEntry): string | undefined => {
  if (typeof entry.p === 'string') return entry.p
  const { v, pd } = entry
  if (typeof v !== 'string' || !Array.isArray(pd) || pd.length !== 3) return undefined
  const [start, end, text] = pd
  if (!Number.isInteger(start) || !Number.isInteger(end) || typeof text !== 'string') return undefined
  if (start < 0 || end < start || end > v.length) return undefined
  return v.slice(0, start) + text + v.slice(end)
}

/**
 * What a compaction summary says about one writer (Yjs client id): every
 * field entry of that writer up to clock `t` is compacted, and these are
 * their counts. Per writer, entries sit in the history in clock order and a
 * compaction removes a prefix of the array, so what any summary covers of a
 * writer is a prefix of that writer's entries: of several summaries, the one
 * with the highest `t` covers the others (see {@link mergeCompacted}).
 */
export interface CompactedWriter {
  /** Clock of the writer's newest compacted entry (0: counts carried over from an old-format summary). */
  t: number
  /** Entries per field. */
  f: Record<string, number>
}

/** A compaction summary as stored in the doc. */
export interface StoredCompactedEntry {
  id: string
  k: 'c'
  at: number
  /** Number of field entries it replaced (including those of compacted summaries it folded in). */
  n: number
  /** Entries per field. */
  fields: Record<string, number>
  /**
   * User ids, as written by versions before per-writer records. Plain data
   * any writer can fill in: readers show at most the summary's own writer
   * from it (see `readHistory`); new summaries leave it out.
   */
  users?: string[]
  /** Time of the oldest and newest compacted entry. */
  from: number
  to: number
  /**
   * Entries per writer, so that summaries of different replicas can be
   * merged without counting twice ({@link mergeCompacted}); `n` and `fields`
   * are its totals; readers derive who wrote them from the author bindings
   * of these client ids. (`from` and `to` need no per-writer split: min and
   * max over several summaries are exact.)
   * Keys: client id in base 36; `~<summary id>` for the counts of an
   * old-format summary it folded in. Absent in summaries written before
   * per-writer counts.
   */
  c?: Record<string, CompactedWriter>
}

export type StoredEntry = StoredFieldEntry | StoredCompactedEntry

/** One field write to record. `prev`/`next` are values (text: the whole text before / after). */
export interface FieldChange {
  field: string
  kind: 'scalar' | 'text' | 'list'
  prev: unknown
  next: unknown
  /** For restores: the entry whose value is brought back. */
  restoreOf?: string
  /**
   * The field's head as the writer saw it when the change began (typing
   * bursts: at the first keystroke). Default: the head now.
   */
  base?: string | null
  /** Text and scalar fields: the other tips the writer had seen with `base`. Default: the other tips now (when `base` is not given). */
  seen?: string[]
  /** See {@link StoredFieldEntry.m} (scalar fields: `auto` only). A `keep` entry is written even though the text did not change. */
  mode?: 'auto' | 'keep'
  /** `auto` changes: clock of the first character inserted in the same transaction. */
  insertClock?: number
  /**
   * Text fields: the changed ranges `[start, end, insert]` on `prev`, stored
   * (with whole values only) when there are several, or one that is not the
   * range `prev` and `next` differ in.
   */
  hunks?: Array<[number, number, string]>
  /** When the change began (typing bursts: the first keystroke). Default: the call's `now`. */
  at?: number
  /** Text fields, typing bursts: every keystroke was made while connected ({@link StoredFieldEntry.l}). */
  live?: boolean
}

/** Options of {@link appendFieldChanges}. */
export interface AppendOptions {
  now: number
  /** Entries kept before compaction. Default {@link DEFAULT_MAX_HISTORY}. */
  maxEntries?: number
  /**
   * @deprecated Ignored: compaction summaries no longer store users (readers
   * derive them from the author bindings of the compacted writers' client ids).
   */
  userOf?: (clientId: number) => string | undefined
}

/** The history array of a doc. */
export const historyArray = (doc: Y.Doc): Y.Array<StoredEntry> => doc.getArray<StoredEntry>(HISTORY_ARRAY)

/** A stored entry together with the Yjs id of the item holding it. */
export interface LocatedEntry {
  entry: StoredEntry
  /** Yjs client id that wrote the entry: the author (through the relay's bindings). */
  client: number
  /** Clock of the entry's item. */
  clock: number
  /** Index in the history array. */
  index: number
}

/** The id of the field entry held by the item at `client` / `clock`: what {@link appendFieldChanges} writes. */
export const entryIdAt = (client: number, clock: number): string => `${client.toString(36)}.${clock.toString(36)}`

/**
 * Every live entry in array order (identical on every replica), with the
 * Yjs id that wrote it. Malformed entries (not objects with an id) are
 * skipped, and so are field entries whose `id` is not the id of their own
 * item ({@link entryIdAt}): the writer encodes its Yjs position there, so a
 * copy of another entry (a replay of someone else's id to hide or replace
 * their entry) never counts. Compaction summaries have content-derived ids
 * (replicas compacting the same range write the same one).
 */
export const locatedEntries = (doc: Y.Doc): LocatedEntry[] => {
  const out: LocatedEntry[] = []
  let item = historyArray(doc)._start
  let index = 0
  while (item !== null) {
    if (!item.deleted && item.countable) {
      const content = item.content.getContent()
      for (let i = 0; i < content.length; i++, index++) {
        const entry = content[i] as StoredEntry
        const clock = item.id.clock + i
        if (!isEntry(entry)) continue
        if (entry.k !== 'c' && entry.id !== entryIdAt(item.id.client, clock)) continue
        out.push({ entry, client: item.id.client, clock, index })
      }
    }
    item = item.right
  }
  return out
}

const isEntry = (value: unknown): value is StoredEntry => {
  if (value === null || typeof value !== 'object') return false
  const e = value as { id?: unknown; at?: unknown; k?: unknown; f?: unknown }
  if (typeof e.id !== 'string' || typeof e.at !== 'number') return false
  if (e.k === 'c') return true
  return (e.k === 's' || e.k === 't' || e.k === 'l') && typeof e.f === 'string'
}

const json = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? 'undefined'
  } catch {
    return String(value)
  }
}

/** Whether two field values are the same (JSON equality). */
export const sameValue = (a: unknown, b: unknown): boolean => a === b || json(a) === json(b)

/**
 * The head of `field`: the entry a writer sees as the field's latest change.
 * Tips are entries no other entry names as base; of several (an unresolved
 * merge), the one whose value is the current value (`current`), else the
 * last in array order.
 */
export const headOf = (entries: readonly StoredEntry[], field: string, current: unknown): string | null => {
  const mine = entries.filter((e): e is StoredFieldEntry => e.k !== 'c' && e.f === field)
  if (mine.length === 0) return null
  const tips = tipEntries(mine)
  if (tips.length === 0) return mine[mine.length - 1]!.id
  if (tips.length === 1) return tips[0]!.id
  for (let i = tips.length - 1; i >= 0; i--) {
    const tip = tips[i]!
    if (tip.v !== undefined && sameValue(tip.v, current)) return tip.id
  }
  return tips[tips.length - 1]!.id
}

const tipEntries = (mine: readonly StoredFieldEntry[]): StoredFieldEntry[] => {
  const bases = new Set(mine.map((e) => e.b))
  return mine.filter((e) => !bases.has(e.id))
}

/** Ids of the tips of `field` (entries no other entry names as base), in array order. */
export const tipsOf = (entries: readonly StoredEntry[], field: string): string[] =>
  tipEntries(entries.filter((e): e is StoredFieldEntry => e.k !== 'c' && e.f === field)).map((e) => e.id)

/** Inserted and deleted text between `prev` and `next` (common prefix / suffix removed), truncated. */
export const textDiff = (prev: string, next: string): { ins: string; del: string } => {
  const { start, endPrev, endNext } = changedRange(prev, next)
  return { ins: truncate(next.slice(start, endNext)), del: truncate(prev.slice(start, endPrev)) }
}

const truncate = (text: string): string => (text.length > TEXT_SUMMARY_LENGTH ? `${text.slice(0, TEXT_SUMMARY_LENGTH - 1)}…` : text)

/**
 * Appends one entry per change (changes whose value did not change are
 * skipped), then compacts when the array holds more than `maxEntries`.
 * Call inside the transaction that writes the fields.
 */
export const appendFieldChanges = (doc: Y.Doc, changes: readonly FieldChange[], options: AppendOptions): void => {
  const array = historyArray(doc)
  const existing = array.toArray()
  for (const change of changes) {
    let entry: StoredFieldEntry
    const base = change.base !== undefined ? change.base : headOf(existing, change.field, change.prev)
    const id = entryIdAt(doc.clientID, Y.getState(doc.store, doc.clientID)) // the clock of the item pushed below
    if (change.kind === 'text') {
      const prev = typeof change.prev === 'string' ? change.prev : ''
      const next = typeof change.next === 'string' ? change.next : ''
      if (prev === next && change.mode !== 'keep') continue
      entry = { id, f: change.field, k: 't', ...textDiff(prev, next), at: change.at ?? options.now, b: base }
      const short = prev.length <= TEXT_VALUE_LIMIT && next.length <= TEXT_VALUE_LIMIT
      if (short || (prev.length <= LONG_TEXT_VALUE_LIMIT && next.length <= LONG_TEXT_VALUE_LIMIT)) {
        if (short) entry.p = prev
        else {
          // One copy of a long text: the one before is the one after with the replaced part put back.
          const { start, endPrev, endNext } = changedRange(prev, next)
          entry.pd = [start, endNext, prev.slice(start, endPrev)]
        }
        entry.v = next
        if (
          change.hunks !== undefined &&
          (change.hunks.length > 1 || (change.hunks.length === 1 && !isNetChange(prev, next, change.hunks[0]!)))
        )
          entry.h = change.hunks
      }
      const seen = change.seen ?? (change.base !== undefined ? [] : tipsOf(existing, change.field).filter((t) => t !== base))
      if (seen.length > 0) entry.s = seen
      if (change.mode !== undefined) entry.m = change.mode
      if (change.insertClock !== undefined) entry.ic = change.insertClock
      if (change.live === true) entry.l = 1
    } else {
      if (sameValue(change.prev, change.next)) continue
      entry = {
        id,
        f: change.field,
        k: change.kind === 'list' ? 'l' : 's',
        v: change.next ?? null,
        p: change.prev ?? null,
        at: change.at ?? options.now,
        b: base,
      }
      if (change.kind === 'scalar') {
        // Always present, empty too: it tells readers this writer recorded what it saw (the later-change rule
        // settles only merges whose heads all say so; older entries keep the CRDT's choice).
        entry.s = change.seen ?? (change.base !== undefined ? [] : tipsOf(existing, change.field).filter((t) => t !== base))
        if (change.mode === 'auto') entry.m = 'auto'
      }
    }
    if (change.restoreOf !== undefined) entry.r = change.restoreOf
    array.push([entry])
    existing.push(entry)
  }
  compactHistory(doc, options)
}

/**
 * Whether the item at `client` / `clock` is a deleted entry of the history
 * array: what a compaction summary's per-writer record must point at (its
 * `t` is the clock of the writer's newest compacted entry, deleted in the
 * same transaction). A record that points anywhere else is made up.
 */
export const isCompactedItem = (doc: Y.Doc, client: number, clock: number): boolean => {
  const structs = doc.store.clients.get(client)
  if (structs === undefined || clock < 0 || clock >= Y.getState(doc.store, client)) return false
  const struct = structs[Y.findIndexSS(structs, clock)]
  return struct instanceof Y.Item && struct.deleted && struct.parent === historyArray(doc)
}

/**
 * What several compaction summaries cover together, per writer: for each
 * writer the summary record with the highest clock (its prefix contains the
 * others'), so every compacted entry counts once — also when replicas
 * compacted different ranges while offline. Old-format summaries (no
 * per-writer counts) count as one writer each, keyed by `~<id>`. With `doc`,
 * a writer record counts only if its clock is a compacted entry of that
 * writer in `doc` ({@link isCompactedItem}), so a summary cannot name a
 * writer whose entries it did not compact, nor outbid a real record.
 */
export const mergeCompacted = (summaries: Iterable<StoredCompactedEntry>, doc?: Y.Doc): Map<string, CompactedWriter> => {
  const merged = new Map<string, CompactedWriter>()
  for (const summary of summaries) {
    const writers: Array<[string, CompactedWriter]> =
      summary.c !== undefined && summary.c !== null && typeof summary.c === 'object'
        ? Object.entries(summary.c)
        : [[`~${summary.id}`, { t: 0, f: summary.fields }]]
    for (const [key, writer] of writers) {
      if (writer === null || typeof writer !== 'object' || typeof writer.t !== 'number') continue
      if (doc !== undefined && !key.startsWith('~')) {
        const client = writerClient(key)
        if (client === null || !isCompactedItem(doc, client, writer.t)) continue
      }
      const known = merged.get(key)
      if (known === undefined || writer.t > known.t) merged.set(key, writer)
    }
  }
  return merged
}

/** The Yjs client id of a per-writer key (base 36), or null for an old-format key / garbage. */
export const writerClient = (key: string): number | null => {
  if (!/^[0-9a-z]{1,7}$/.test(key)) return null
  const client = parseInt(key, 36)
  return client <= 0xffffffff ? client : null
}

/** What several summaries say together. */
export interface CompactedTotals {
  /** Entries, merged per writer. */
  n: number
  /** Entries per field. */
  fields: Record<string, number>
  /** Per-writer records, merged ({@link mergeCompacted}). */
  writers: Map<string, CompactedWriter>
  /** Oldest and newest compacted entry. */
  from: number
  to: number
}

/** Totals of several summaries: entries (merged per writer), per field, time range. Who wrote them is up to the reader ({@link compactedWriters}). */
export const compactedTotals = (summaries: readonly StoredCompactedEntry[], doc?: Y.Doc): CompactedTotals => {
  const fields: Record<string, number> = {}
  let n = 0
  const writers = mergeCompacted(summaries, doc)
  for (const writer of writers.values()) {
    for (const [f, count] of Object.entries(writer.f ?? {})) {
      if (typeof count !== 'number') continue
      fields[f] = (fields[f] ?? 0) + count
      n += count
    }
  }
  let from = Infinity
  let to = -Infinity
  for (const summary of summaries) {
    if (typeof summary.from === 'number') from = Math.min(from, summary.from)
    if (typeof summary.to === 'number') to = Math.max(to, summary.to)
  }
  return { n, fields, writers, from, to }
}

/**
 * Keeps the history bounded: when it holds more than `maxEntries`, the
 * oldest entries (down to 80 % of the bound) are replaced by one compaction
 * summary at the front that says what was compacted (per writer: the newest
 * compacted clock and the count per field; the time range). Every summary
 * already in the history is folded in, and entries that do not count
 * (malformed, or a field entry under an id not its own) are removed with
 * them. Replicas compacting different ranges at the same time each write a
 * summary; readers merge them per writer ({@link mergeCompacted}), so
 * nothing is counted twice. Who wrote the compacted entries is not stored:
 * readers look the writers' client ids up in the author bindings.
 */
export const compactHistory = (doc: Y.Doc, options: AppendOptions): boolean => {
  const max = Math.max(10, options.maxEntries ?? DEFAULT_MAX_HISTORY)
  const array = historyArray(doc)
  if (array.length <= max) return false
  const located = locatedEntries(doc)
  const summaries = located.filter((l) => l.entry.k === 'c')
  const changes = located.filter((l) => l.entry.k !== 'c')
  const junk = array.length - located.length
  const keep = Math.floor(max * 0.8)
  // Remove every summary, every entry that does not count and the oldest changes, leaving `keep` entries with the new summary.
  const dropped = changes.slice(0, Math.max(0, array.length - keep + 1 - summaries.length - junk))
  if (dropped.length === 0) return false
  const folded = summaries.map((l) => l.entry as StoredCompactedEntry)
  const writers = mergeCompacted(folded, doc)
  let from = Infinity
  let to = -Infinity
  for (const summary of folded) {
    if (typeof summary.from === 'number') from = Math.min(from, summary.from)
    if (typeof summary.to === 'number') to = Math.max(to, summary.to)
  }
  for (const { entry, client, clock } of dropped) {
    const e = entry as StoredFieldEntry
    if (e.m === 'auto') continue // a settlement is nobody's change: not one of the changes the summary counts
    const key = client.toString(36)
    const known = writers.get(key)
    if (known !== undefined && clock <= known.t) continue // counted by a summary already (cannot happen: it deleted the entry)
    const writer: CompactedWriter = { t: clock, f: { ...known?.f } }
    writer.f[e.f] = (writer.f[e.f] ?? 0) + 1
    writers.set(key, writer)
    from = Math.min(from, e.at)
    to = Math.max(to, e.at)
  }
  const fields: Record<string, number> = {}
  let n = 0
  for (const writer of writers.values()) {
    for (const [f, count] of Object.entries(writer.f ?? {})) {
      if (typeof count !== 'number') continue
      fields[f] = (fields[f] ?? 0) + count
      n += count
    }
  }
  const summary: StoredCompactedEntry = {
    id: `c:${dropped[0]!.entry.id}:${dropped[dropped.length - 1]!.entry.id}`,
    k: 'c',
    at: options.now,
    n,
    fields,
    from,
    to,
    c: Object.fromEntries(writers),
  }
  // Delete from the back, in runs of adjacent indices.
  const counted = new Set(located.map((l) => l.index))
  const indices = [...summaries, ...dropped].map((l) => l.index)
  for (let i = 0; i < array.length && junk > 0; i++) if (!counted.has(i)) indices.push(i)
  indices.sort((a, b) => b - a)
  for (let i = 0; i < indices.length;) {
    let j = i
    while (j + 1 < indices.length && indices[j + 1] === indices[j]! - 1) j++
    array.delete(indices[j]!, j - i + 1)
    i = j + 1
  }
  array.insert(0, [summary])
  return true
}

/**
 * Whether the one changed range `[start, end, insert]` of a text is the
 * range its before and after texts differ in (`changedRange`): then it need
 * not be stored. It is not when the writer replaced more than the texts
 * differ in — typed over a sentence a new one that begins the same way.
 */
const isNetChange = (prev: string, next: string, [start, end, insert]: [number, number, string]): boolean => {
  const net = changedRange(prev, next)
  return net.start === start && net.endPrev === end && next.slice(net.start, net.endNext) === insert
}
