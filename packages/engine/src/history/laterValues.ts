/**
 * A record's values as the later-change rule settles them (`history/scalarMerge`),
 * for readers that never settle merges themselves: the relay's HTTP API, its
 * webhooks, and the catalog entries of records a device holds without having
 * them open. A merge of concurrent sets is settled by the first device that has
 * the record open (it writes an `auto` entry); until then the doc holds the
 * value Yjs kept by client id — for a record nobody opens, possibly for days.
 * These readers report the value every device is about to write instead, so an
 * integration sees the merge's outcome at once and no flip when a device
 * settles it later.
 *
 * @example
 *   const snapshot = readRecord(doc, id, schema)
 *   const { fields, archived } = laterValues(doc, schema, snapshot) // status: the later of two concurrent sets
 *
 * @module history/laterValues
 */
import type * as Y from 'yjs'
import type { RecordSchema } from '../model/schema.js'
import { HISTORY_ARRAY } from './historyLog.js'
import { readHistory } from './readHistory.js'
import { ARCHIVED_FIELD, setApart, settledScalars } from './scalarMerge.js'

/** A record's field values and archived flag (e.g. from `readRecord`). */
export interface RecordValues {
  fields: Record<string, unknown>
  archived: boolean
}

/**
 * `values` with each scalar field (and the archived flag) whose concurrent sets are not settled yet at the later
 * change. `only`: the fields the caller reads (a catalog entry's), when not all of them; the history is read only
 * when one of those was ever set apart ({@link setApart}).
 */
export const laterValues = <T extends RecordValues>(
  doc: Y.Doc,
  schema: RecordSchema | undefined,
  values: T,
  only?: ReadonlySet<string>,
): T => {
  if (!doc.share.has(HISTORY_ARRAY)) return values
  const scalar = new Set<string>()
  for (const field of settledScalars(schema)) if ((only === undefined || only.has(field)) && setApart(doc, field)) scalar.add(field)
  if (scalar.size === 0) return values
  const { unsettledScalars } = readHistory(doc, new Map(), {
    fields: { ...values.fields, [ARCHIVED_FIELD]: values.archived },
    scalar,
  })
  const settled = Object.entries(unsettledScalars)
  if (settled.length === 0) return values
  const fields = { ...values.fields }
  let archived = values.archived
  for (const [field, value] of settled) {
    if (field === ARCHIVED_FIELD) archived = value === true
    else fields[field] = value
  }
  return { ...values, fields, archived }
}
