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
 * that of the side's last entry (its tip). For a scalar or list field the
 * CRDT kept one side's value (the current value tells which); for a text
 * field both contributions are in the text.
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
  locatedEntries,
  sameValue,
  writerClient,
  type LocatedEntry,
  type StoredCompactedEntry,
  type StoredFieldEntry,
} from './historyLog.js'

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
  /** Text fields: inserted and deleted text (truncated). */
  inserted?: string
  deleted?: string
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
  /** Last entry of the side; its value is the side's value. */
  tip: FieldHistoryEntry
  /** Every entry id of the side (the subtree). */
  entryIds: string[]
  value: unknown
  author: EntryAuthor
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
   * all / it cannot be told. Text: null — both contributions were merged.
   */
  kept: number | null
  /** Readable one-line summary. */
  summary: string
}

/** A record's derived history. */
export interface RecordHistory {
  /** Every entry, oldest first (array order, identical on every replica). */
  entries: HistoryEntry[]
  merges: Merge[]
}

/** Options of {@link readHistory}. */
export interface ReadHistoryOptions {
  /** Current field values, to tell which side of a scalar merge the CRDT kept. */
  fields?: Record<string, unknown>
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
export const readHistory = (
  doc: Y.Doc,
  authors: ReadonlyMap<number, AuthorInfo>,
  options: ReadHistoryOptions = {},
): RecordHistory => {
  const entries: HistoryEntry[] = []
  const seenIds = new Set<string>()
  const byField = new Map<string, FieldHistoryEntry[]>()
  const located = locatedEntries(doc)
  const summaries = located.filter((l) => l.entry.k === 'c')
  for (const { entry, client } of located) {
    if (seenIds.has(entry.id)) continue // an entry id seen twice (the same compaction made on two replicas)
    seenIds.add(entry.id)
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
      base: e.b,
      author,
    }
    if (fieldKind === 'text') {
      out.inserted = e.ins ?? ''
      out.deleted = e.del ?? ''
      const parts = [out.inserted ? `added "${out.inserted}"` : '', out.deleted ? `removed "${out.deleted}"` : ''].filter(Boolean)
      out.summary = `${who} edited ${e.f}: ${parts.join(', ')}`
    } else {
      out.value = e.v
      out.prev = e.p
      out.summary = `${who} ${e.r ? 'restored' : 'set'} ${e.f} to ${show(e.v)} (was ${show(e.p)})`
    }
    if (e.r !== undefined) out.restoreOf = e.r
    entries.push(out)
    let list = byField.get(e.f)
    if (list === undefined) byField.set(e.f, (list = []))
    list.push(out)
  }
  const merges: Merge[] = []
  for (const [field, list] of byField) merges.push(...mergesOf(field, list, options.fields))
  merges.sort((a, b) => entries.indexOf(a.sides[0]!.entry) - entries.indexOf(b.sides[0]!.entry))
  return { entries, merges }
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
  const by =
    names.length === 0 ? 'unknown users' : unknownWriters > 0 ? `${names.join(', ')} and unknown users` : names.join(', ')
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

const mergesOf = (field: string, list: FieldHistoryEntry[], current: Record<string, unknown> | undefined): Merge[] => {
  const children = new Map<string | null, FieldHistoryEntry[]>()
  for (const e of list) {
    // A base that was compacted away still groups its children (same string).
    let group = children.get(e.base)
    if (group === undefined) children.set(e.base, (group = []))
    group.push(e)
  }
  const subtree = (root: FieldHistoryEntry): FieldHistoryEntry[] => {
    const out: FieldHistoryEntry[] = []
    const stack = [root]
    while (stack.length > 0) {
      const e = stack.pop()!
      out.push(e)
      for (const child of children.get(e.id) ?? []) stack.push(child)
    }
    return out
  }
  const order = new Map(list.map((e, i) => [e.id, i]))
  const merges: Merge[] = []
  for (const [base, siblings] of children) {
    if (siblings.length < 2) continue
    const fieldKind = siblings[0]!.fieldKind
    const mergeId = `${field}@${base ?? ''}`
    const sides: MergeSide[] = siblings.map((entry) => {
      const members = subtree(entry)
      const tip = members.reduce((a, b) => (order.get(b.id)! > order.get(a.id)! ? b : a))
      entry.mergeId = mergeId
      return {
        entry,
        tip,
        entryIds: members.map((m) => m.id).sort((a, b) => order.get(a)! - order.get(b)!),
        value: tip.value,
        author: entry.author,
      }
    })
    let kept: number | null = null
    if (fieldKind !== 'text' && current !== undefined && Object.hasOwn(current, field)) {
      const value = current[field]
      const index = sides.findIndex((side) => sameValue(side.value, value))
      kept = index === -1 ? null : index
    }
    const names = sides.map((s) => s.author.name ?? s.author.userId ?? 'someone')
    const summary =
      fieldKind === 'text'
        ? `${names.join(' and ')} edited ${field} at the same time; both contributions were merged`
        : `${sides.map((s, i) => `${names[i]} set ${field} to ${show(s.value)}`).join(' while ')}` +
          (kept === null ? '' : `; kept ${show(sides[kept]!.value)}`)
    merges.push({ id: mergeId, field, fieldKind, base, sides, kept, summary })
  }
  return merges
}
