/**
 * Computing a record's catalog entry from its doc, reading only what the
 * catalog keeps (title, catalog fields, bookkeeping) — not long texts.
 *
 * @module records/catalogEntry
 */
import * as Y from 'yjs'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import { FIELDS_MAP, LIST_PREFIX, RECORD_MAP, RecordKey, TEXT_PREFIX, isDiscarded, lastChangeAt } from '../model/recordDoc.js'
import type { RecordSchema } from '../model/schema.js'
import { laterValues } from '../history/laterValues.js'
import { ARCHIVED_FIELD } from '../history/scalarMerge.js'

/** Longest title kept in the catalog (lists show it, search reads it): the longest a ticket's title or a project's name may be. */
export const CATALOG_TITLE_LENGTH = 500

/** The catalog entry of a record doc. */
export const catalogEntryOf = (
  doc: Y.Doc,
  id: string,
  schema: RecordSchema | undefined,
  pending: number,
  pendingFields: string[],
): CatalogEntry => {
  const record = doc.getMap<unknown>(RECORD_MAP)
  const stored = doc.getMap<unknown>(FIELDS_MAP)
  const type = record.get(RecordKey.type)
  const titleField = schema?.title ?? 'title'
  const titleSpec = schema?.fields[titleField]
  // The scalars the entry shows, as the later-change rule settles them: a record listed here that nobody has opened
  // since two people set its status apart says what every screen that opens it will say, not Yjs's pick.
  const shown = new Set<string>([ARCHIVED_FIELD])
  if (titleSpec?.kind === 'scalar') shown.add(titleField)
  for (const name of schema?.catalog ?? []) if (schema!.fields[name]!.kind === 'scalar') shown.add(name)
  const current: Record<string, unknown> = {}
  for (const name of shown) if (name !== ARCHIVED_FIELD) current[name] = stored.get(name)
  const values = laterValues(doc, schema, { fields: current, archived: record.get(RecordKey.archived) === true }, shown)
  let title = ''
  if (titleSpec === undefined || titleSpec.kind === 'text') {
    if (doc.share.has(TEXT_PREFIX + titleField)) title = textPrefix(doc.getText(TEXT_PREFIX + titleField), CATALOG_TITLE_LENGTH)
  } else if (titleSpec.kind === 'scalar') {
    const value = values.fields[titleField]
    if (typeof value === 'string') title = value.slice(0, CATALOG_TITLE_LENGTH)
  }
  const fields: Record<string, unknown> = {}
  for (const name of schema?.catalog ?? []) {
    const spec = schema!.fields[name]!
    if (spec.kind === 'list') {
      fields[name] = doc.share.has(LIST_PREFIX + name) ? doc.getArray(LIST_PREFIX + name).toJSON() : []
    } else if (spec.kind === 'scalar') {
      const value = values.fields[name]
      fields[name] = value === undefined || !spec.schema.safeParse(value).success ? spec.default : value
    }
  }
  const num = (key: string): number | null => {
    const value = record.get(key)
    return typeof value === 'number' ? value : null
  }
  return {
    id,
    type: typeof type === 'string' ? type : null,
    title,
    fields,
    createdAt: num(RecordKey.createdAt),
    updatedAt: lastChangeAt(doc),
    archived: values.archived,
    deleted: record.get(RecordKey.deleted) === true || isDiscarded(doc),
    pending,
    pendingFields,
    stateVector: Y.encodeStateVector(doc),
    local: true,
  }
}

/** The first `length` characters of a Y.Text without stringifying all of it. */
const textPrefix = (text: Y.Text, length: number): string => {
  let out = ''
  let item = text._start
  while (item !== null && out.length < length) {
    if (!item.deleted && item.countable && item.content instanceof Y.ContentString) out += item.content.str
    item = item.right
  }
  return out.slice(0, length)
}
