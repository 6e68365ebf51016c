/**
 * Validated record writes with their history: reads each field's previous
 * value, applies the patch and appends the history entries, all inside the
 * caller's transaction, so a change and its history entry travel in one
 * Yjs update and one can never arrive without the other.
 *
 * @example
 *   doc.transact(() => writeWithHistory(doc, validatePatch(schema, id, { status: 'done' }), { now: Date.now() }), origin)
 *
 * @module history/recordWrites
 */
import type * as Y from 'yjs'
import { FIELDS_MAP, LIST_PREFIX, TEXT_PREFIX, applyPatch, type ValidatedPatch } from '../model/recordDoc.js'
import { appendFieldChanges, type AppendOptions, type FieldChange } from './historyLog.js'

/** The stored value of a field (text: the whole text; list: its items; scalar: the map value or undefined). */
export const storedValue = (doc: Y.Doc, name: string, kind: 'text' | 'scalar' | 'list'): unknown => {
  if (kind === 'text') return doc.share.has(TEXT_PREFIX + name) ? doc.getText(TEXT_PREFIX + name).toString() : ''
  if (kind === 'list') return doc.share.has(LIST_PREFIX + name) ? doc.getArray(LIST_PREFIX + name).toJSON() : []
  return doc.getMap<unknown>(FIELDS_MAP).get(name)
}

/** Applies `patch` and records one history entry per field that changed. Call inside a transaction. */
export const writeWithHistory = (
  doc: Y.Doc,
  patch: ValidatedPatch,
  options: AppendOptions & { restoreOf?: Record<string, string> },
): void => {
  const changes: FieldChange[] = patch.map(({ name, spec }) => ({
    field: name,
    kind: spec.kind,
    prev: storedValue(doc, name, spec.kind),
    next: undefined,
  }))
  const hunks = applyPatch(doc, patch)
  for (const change of changes) {
    change.next = storedValue(doc, change.field, change.kind)
    const changed = hunks.get(change.field)
    if (changed !== undefined && changed.length > 1) change.hunks = changed
    const restoreOf = options.restoreOf?.[change.field]
    if (restoreOf !== undefined) change.restoreOf = restoreOf
  }
  appendFieldChanges(doc, changes, options)
}
