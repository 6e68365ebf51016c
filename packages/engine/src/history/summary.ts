/**
 * "While you were away…": what others changed in a record since this
 * device last had it — who, which fields, old → new values — and the merges
 * in which someone else's concurrent change met one of the user's own.
 *
 * "Since this device last had it" is a state vector (persisted with the
 * record): a history entry is news when the Yjs id of its item is not
 * covered by it. Everything else is read through {@link readHistory}, so a
 * merge here is the same `Merge` the history panel shows.
 *
 * Own changes are never news: entries written by one of this device's Yjs
 * client ids (remembered per record, so also from before a reload and before
 * the relay bound them) or bound to the user's id (another device of theirs).
 *
 * @example
 *   store.on('summary', (s) => {
 *     for (const m of s.merges) console.log(`your ${m.field} ${m.mine} — ${m.by.name} set ${m.theirs}`)
 *     for (const c of s.changes) console.log(`${c.field}: ${c.from} → ${c.to} (${c.users.map((u) => u.name).join(', ')})`)
 *   })
 *
 * @module history/summary
 */
import type * as Y from 'yjs'
import type { AuthorInfo } from '../protocol/messages.js'
import type { StateVector } from '../protocol/stateVector.js'
import { multiLineFields, singleLineFields, type RecordSchema } from '../model/schema.js'
import { settledScalars, withArchived } from './scalarMerge.js'
import { readHistory, type EntryAuthor, type FieldHistoryEntry, type Merge, type MergeSide } from './readHistory.js'

/** A user as far as the author bindings tell (null: not bound yet). */
export interface SummaryUser {
  userId: string | null
  name: string | null
  /** A Yjs client id the user wrote with (to look a name up when the relay has no names, e.g. without auth). */
  clientId: number
}

/** One field others changed. */
export interface FieldChangeSummary {
  field: string
  fieldKind: 'scalar' | 'text' | 'list'
  /** Who changed it (one entry per user; unbound writers per client id). */
  users: SummaryUser[]
  /** How many changes others made. */
  count: number
  /** Scalar / list: the value before these changes (what this device had). Absent for text. */
  from?: unknown
  /** Scalar / list: the value now. Absent for text. */
  to?: unknown
  /**
   * List: the items others added and removed, in the order they did (items
   * compared as JSON; one added and removed again by them is in neither) —
   * `to` holds the user's own concurrent changes too.
   */
  added?: unknown[]
  removed?: unknown[]
}

/** A merge of one of the user's own changes with someone else's concurrent change. */
export interface MergeSummary {
  /** The engine's merge (`RecordHandle.history().merges`), `<field>@<base>`. */
  mergeId: string
  field: string
  fieldKind: 'scalar' | 'text' | 'list'
  /**
   * Whose value the record holds now; `both`: a description both changed in
   * the same lines, which holds both versions one after the other.
   */
  kept: 'mine' | 'theirs' | 'both'
  /** The user's value (their side's tip). */
  mine: unknown
  /** The other person's value (their side's tip). */
  theirs: unknown
  /** Who set `theirs`. */
  by: SummaryUser
  /** Entry to pass to `RecordHandle.restore` to bring the user's value back. */
  mineEntryId: string
  /** Entry to pass to `RecordHandle.restore` to take the other person's value. */
  theirsEntryId: string
}

/**
 * What changed in one record since this device last had it. Each kind of
 * news has its own list (`merges`, `changes`); a new kind (comments, say)
 * gets its own list next to them and its own part in {@link summarizeSince}.
 */
export interface RecordSummary {
  recordId: string
  /** The record was not on this device before: everything in it is someone else's. */
  created: boolean
  /** Merges of the user's own changes with others' (first: they need a decision). */
  merges: MergeSummary[]
  /** Fields other people changed, with who, how often, and old → new. */
  changes: FieldChangeSummary[]
  /** Comments other people added, edited or deleted (absent when none). */
  comments?: CommentsSummary
}

/** What others did in a record's comments: who, and how many comments they added, edited and deleted. */
export interface CommentsSummary {
  users: SummaryUser[]
  added: number
  edited: number
  deleted: number
}

/** Input of {@link summarizeSince}. */
export interface SummarizeOptions {
  recordId: string
  /** The relay's author bindings of the doc. */
  authors: ReadonlyMap<number, AuthorInfo>
  /** What this device had of the record (entries it covers are not news). */
  since: StateVector
  /** The signed-in user's id. */
  userId: string
  /** This device's Yjs client ids of the record. */
  ownClients: ReadonlySet<number>
  /** Current field values (to tell which side of a merge was kept, and "→ new"). */
  fields: Record<string, unknown>
  /** The record was not on this device before. */
  created?: boolean
  /** The record's schema: an unset field's "from" is its default (what the record showed), not nothing. */
  schema?: RecordSchema
}

/** Yjs id of the item holding an entry (`<client base36>.<clock base36>`, see the history log). */
const itemId = (entryId: string): { client: number; clock: number } | null => {
  const [client, clock] = entryId.split('.')
  if (client === undefined || clock === undefined) return null
  const id = { client: parseInt(client, 36), clock: parseInt(clock, 36) }
  return Number.isFinite(id.client) && Number.isFinite(id.clock) ? id : null
}

/** What a record shows for a field that has no value: its default (scalar), no items (list). */
const unsetValue = (schema: RecordSchema | undefined, field: string): unknown => {
  const spec = schema?.fields[field]
  return spec?.kind === 'scalar' ? spec.default : spec?.kind === 'list' ? [] : null
}

export const userOf = (author: EntryAuthor): SummaryUser => ({ userId: author.userId, name: author.name, clientId: author.clientId })

/**
 * Summarizes what others changed in `doc` since `options.since`. Returns
 * null when there is nothing to say (no news, or only the user's own).
 */
export const summarizeSince = (doc: Y.Doc, options: SummarizeOptions): RecordSummary | null => {
  const { authors, since, userId, ownClients, fields } = options
  const isMine = (author: EntryAuthor): boolean =>
    author.clientId === doc.clientID || ownClients.has(author.clientId) || (author.userId !== null && author.userId === userId)
  const multiLine = multiLineFields(options.schema)
  const history = readHistory(doc, authors, {
    fields: withArchived(doc, fields),
    singleLine: singleLineFields(options.schema),
    multiLine,
    scalar: settledScalars(options.schema),
  })
  const fresh = new Set<string>()
  const byField = new Map<string, FieldHistoryEntry[]>()
  for (const entry of history.entries) {
    if (entry.kind !== 'change') continue
    const id = itemId(entry.id)
    if (id === null || id.clock < (since.get(id.client) ?? 0)) continue
    fresh.add(entry.id)
    let list = byField.get(entry.field)
    if (list === undefined) byField.set(entry.field, (list = []))
    list.push(entry)
  }
  if (fresh.size === 0) return null
  const merges = mergesWithMine(history.merges, fresh, isMine, multiLine)
  const changes: FieldChangeSummary[] = []
  for (const [field, list] of byField) {
    // A scalar settlement is nobody's change: the merge it settled says what happened.
    const theirs = list.filter((e) => !isMine(e.author) && !(e.fieldKind === 'scalar' && e.mode === 'auto'))
    if (theirs.length === 0) continue
    const users = new Map<string, SummaryUser>()
    for (const e of theirs) users.set(e.author.userId ?? `client:${e.author.clientId}`, userOf(e.author))
    const change: FieldChangeSummary = { field, fieldKind: theirs[0]!.fieldKind, users: [...users.values()], count: theirs.length }
    if (change.fieldKind !== 'text') {
      // The first new entry of the field (own or not) was written on top of what this device had.
      change.from = list[0]!.prev ?? unsetValue(options.schema, field)
      // A scalar field about to settle on the later change (its settlement not written yet) shows that value.
      change.to = Object.hasOwn(history.unsettledScalars, field)
        ? history.unsettledScalars[field]
        : Object.hasOwn(fields, field)
          ? fields[field]
          : theirs.at(-1)!.value
    }
    if (change.fieldKind === 'list') Object.assign(change, listChanges(theirs))
    changes.push(change)
  }
  if (changes.length === 0 && merges.length === 0) return null
  return { recordId: options.recordId, created: options.created ?? false, merges, changes }
}

/** A list's items by their JSON, each with how often the list holds it. */
const countItems = (items: readonly unknown[]): Map<string, { item: unknown; n: number }> => {
  const out = new Map<string, { item: unknown; n: number }>()
  for (const item of items) {
    const key = JSON.stringify(item)
    out.set(key, { item, n: (out.get(key)?.n ?? 0) + 1 })
  }
  return out
}

/** The items a list's entries added and removed, each entry against the list it was written on (items compared as JSON). */
const listChanges = (entries: readonly FieldHistoryEntry[]): { added: unknown[]; removed: unknown[] } => {
  const added = new Map<string, unknown>()
  const removed = new Map<string, unknown>()
  for (const entry of entries) {
    const was = countItems(Array.isArray(entry.prev) ? entry.prev : [])
    const now = countItems(Array.isArray(entry.value) ? entry.value : [])
    for (const [key, { item, n }] of now) {
      if (n <= (was.get(key)?.n ?? 0)) continue
      if (removed.has(key)) removed.delete(key)
      else added.set(key, item)
    }
    for (const [key, { item, n }] of was) {
      if (n <= (now.get(key)?.n ?? 0)) continue
      if (added.has(key)) added.delete(key)
      else removed.set(key, item)
    }
  }
  return { added: [...added.values()], removed: [...removed.values()] }
}

/**
 * Merges with news from someone else in which one side is the user's own
 * (its tip written by them) and another side someone else's, and the record
 * holds one of those two values (a title whose settlement is not written
 * yet: the one the rule keeps) — or, in a multi-line field whose edits
 * collided and that nobody settled otherwise since, both.
 */
const mergesWithMine = (
  merges: readonly Merge[],
  fresh: ReadonlySet<string>,
  isMine: (author: EntryAuthor) => boolean,
  multiLine: ReadonlySet<string>,
): MergeSummary[] => {
  const out: MergeSummary[] = []
  for (const merge of merges) {
    if (!merge.conflict) continue // edits of different parts of a text are no conflict
    const unsettled = merge.settledBy == null || merge.settledBy.mode === 'auto'
    // A single-line text merge read before its settlement is written (the text still holds both replacements'
    // characters, no side's value): the side the rule keeps is the one the field is about to hold.
    // A scalar merge read before its settlement is written: the side whose value the field is about to hold.
    const keptIndex =
      merge.fieldKind === 'scalar' && merge.winner != null
        ? merge.winner
        : (merge.kept ?? (merge.fieldKind === 'text' && merge.winner != null && unsettled ? merge.winner : null))
    const both = keptIndex === null && multiLine.has(merge.field) && unsettled
    if (keptIndex === null && !both) continue
    const isNews = (side: MergeSide): boolean => side.entryIds.some((id) => fresh.has(id))
    const mine = merge.sides.filter((side) => isMine(side.tip.author))
    const theirs = merge.sides.filter((side) => !isMine(side.tip.author))
    if (mine.length === 0 || theirs.length === 0 || !theirs.some(isNews)) continue
    const kept = keptIndex === null ? null : merge.sides[keptIndex]!
    const keptMine = kept !== null && mine.includes(kept)
    // The value the record holds on one side; on the other, the newest of the opposite sides.
    const my = keptMine ? kept : mine.at(-1)!
    const other = keptMine || kept === null ? theirs.filter(isNews).at(-1)! : kept
    out.push({
      mergeId: merge.id,
      field: merge.field,
      fieldKind: merge.fieldKind,
      kept: kept === null ? 'both' : keptMine ? 'mine' : 'theirs',
      mine: my.value,
      theirs: other.value,
      by: userOf(other.tip.author),
      mineEntryId: my.tip.id,
      theirsEntryId: other.tip.id,
    })
  }
  return out
}
