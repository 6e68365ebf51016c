/**
 * The rule for concurrent sets of one scalar field (a status, a priority, an
 * assignee): **the later change stands**, as for a title. Yjs keeps one of two
 * concurrent map values by client id — a new one per page load, so which
 * person's change stayed was a coin toss: an offline change made yesterday
 * could replace the one a colleague made an hour ago, or the other way
 * round. Every replica that has the sides sets the field to the value of
 * the latest of them and records an `auto` entry, so all end with the same
 * value; the merge keeps both values and authors, and the other one is a
 * click away (a restore).
 *
 * The field's **heads** are its entries no other entry names as its base or
 * as seen. Two or more heads are changes nobody has seen together. The rule
 * settles only heads that all record what their writers had seen (scalar
 * entries carry `s`, empty too, since this rule exists): a merge of entries
 * written before it keeps the value Yjs kept, so nothing stored earlier
 * changes value when an app with this rule opens it.
 *
 * A head's time is its writer's clock (`at`); an `auto` entry is nobody's
 * change and counts with the time of the latest change it settled. Ties go
 * to the greater entry id. Everything is a pure function of the entries, so
 * every replica picks the same value, and replicas settling at once write
 * the same entry (counted once: `duplicateSettlements`).
 *
 * @example
 *   const later = laterChange(entriesOfStatus, recordsSeen)
 *   if (later !== null && !sameValue(later.value, current)) writeScalarSettlement(doc, 'status', later.value, { now: Date.now() })
 *
 * @module history/scalarMerge
 */
import * as Y from 'yjs'
import { FIELDS_MAP, RECORD_MAP, RecordKey } from '../model/recordDoc.js'
import { scalarFields, type RecordSchema } from '../model/schema.js'
import { appendFieldChanges, historyArray, sameValue, tipsOf, type AppendOptions } from './historyLog.js'
import type { FieldHistoryEntry } from './readHistory.js'

/** The pseudo-field of archiving (`handle.archive`): concurrent archive and unarchive settle by the same rule. */
export const ARCHIVED_FIELD = '$archived'

/** What the rule settles in a record of `schema`: its scalar fields and whether it is archived. */
export const settledScalars = (schema: RecordSchema | undefined): Set<string> => new Set([...scalarFields(schema), ARCHIVED_FIELD])

/** The current values of {@link settledScalars}' fields: `fields` (a record's scalar values) and the archived flag. */
export const withArchived = (doc: Y.Doc, fields: Record<string, unknown> | undefined): Record<string, unknown> => ({
  ...fields,
  [ARCHIVED_FIELD]: doc.getMap<unknown>(RECORD_MAP).get(RecordKey.archived) === true,
})

/**
 * Whether two writers ever set scalar `field` (or the archived flag) without
 * having seen each other's set — the only way the field can hold a merge,
 * settled or not. Read from Yjs's structure alone, without the history: a
 * set's item names the item it replaced (its origin), and a set concurrent
 * with another one finds a sibling between that origin and itself. A few
 * map lookups per set the field ever had, against a history read of tens of
 * µs for a ticket of 20 entries and ~0.6 ms at the 500-entry bound: readers
 * that report merged values for many records (catalog entries of records
 * nobody opened, the relay's API lists) ask this first.
 */
export const setApart = (doc: Y.Doc, field: string): boolean => {
  const archived = field === ARCHIVED_FIELD
  const map = doc.getMap<unknown>(archived ? RECORD_MAP : FIELDS_MAP)
  let item: Y.Item | null = map._map.get(archived ? RecordKey.archived : field) ?? null
  while (item !== null) {
    const { origin, left } = item
    if (origin === null ? left !== null : left === null || !Y.compareIDs(origin, left.lastId)) return true
    item = left
  }
  return false
}

/**
 * The head whose value a scalar field settles on, or null when there is
 * nothing to settle: one head, or a head written before the rule (not in
 * `recordsSeen`, the ids of entries that carry `s`). `list`: the field's
 * entries in array order (an entry comes after those it names).
 */
export const laterChange = (list: readonly FieldHistoryEntry[], recordsSeen: ReadonlySet<string>): FieldHistoryEntry | null => {
  const named = new Set<string>()
  for (const e of list) {
    if (e.base !== null) named.add(e.base)
    for (const id of e.seen ?? []) named.add(id)
  }
  const heads = list.filter((e) => !named.has(e.id))
  if (heads.length < 2 || heads.some((h) => !recordsSeen.has(h.id))) return null
  const time = new Map<string, number>()
  for (const e of list) {
    if (e.mode !== 'auto') {
      time.set(e.id, e.at)
      continue
    }
    let settled = -Infinity
    for (const id of [e.base, ...(e.seen ?? [])]) if (id !== null) settled = Math.max(settled, time.get(id) ?? -Infinity)
    time.set(e.id, settled === -Infinity ? e.at : settled)
  }
  return heads.reduce((a, b) => {
    const ta = time.get(a.id)!
    const tb = time.get(b.id)!
    return tb > ta || (tb === ta && b.id > a.id) ? b : a
  })
}

/**
 * Sets scalar field `field` to `target` and records an `auto` entry based on
 * the greatest tip id, naming the other tips as seen (replicas settling the
 * same history write the same entry). Call inside a transaction. Returns
 * false when the field already holds `target`.
 */
export const writeScalarSettlement = (doc: Y.Doc, field: string, target: unknown, options: AppendOptions): boolean => {
  // The record's archived flag lives in the record map (a boolean); fields in the fields map.
  const archived = field === ARCHIVED_FIELD
  const map = archived ? doc.getMap<unknown>(RECORD_MAP) : doc.getMap<unknown>(FIELDS_MAP)
  const key = archived ? RecordKey.archived : field
  const prev = archived ? map.get(key) === true : map.get(key)
  if (sameValue(prev ?? null, target ?? null)) return false
  const tips = tipsOf(historyArray(doc).toArray(), field).sort()
  const base = tips.length > 0 ? tips[tips.length - 1]! : null
  map.set(key, archived ? target === true : (target ?? null))
  appendFieldChanges(
    doc,
    [{ field, kind: 'scalar', prev: prev ?? null, next: target ?? null, base, seen: tips.filter((t) => t !== base), mode: 'auto' }],
    options,
  )
  return true
}
