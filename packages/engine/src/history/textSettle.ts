/**
 * Writes what the text-merge rule (`history/textMerge`) asks for: a
 * single-line field whose concurrent edits collide is set to the rule's
 * value, and characters that several replicas inserted for the same
 * settlement at the same time are deleted again.
 *
 * Any replica that has both sides may settle a merge, also before it has
 * all of it: the rule sees through settlements (`ruleValue`), so one written
 * on part of a merge is settled again once the rest arrives, and never makes
 * a replica that knows what its writer knew settle again. The value is a pure
 * function of the history, so replicas that settle at the same time write
 * the same text: their deletions coincide (Yjs deletions are idempotent) and
 * only their insertions are doubled. Each settlement entry records where its
 * insertion starts (`ic`; it ends at the entry's own clock), readers count
 * the first settlement in array order ({@link duplicateSettlements}), and
 * {@link removeDuplicateInsertions} deletes the others' characters — deletions
 * only, so replicas doing it at the same time agree as well.
 *
 * @example
 *   const { unsettled } = readHistory(doc, authors, { fields, singleLine })
 *   for (const [field, value] of Object.entries(unsettled)) doc.transact(() => writeSettlement(doc, field, value, { now: Date.now() }), origin)
 *   doc.transact(() => removeDuplicateInsertions(doc), origin)
 *
 * @module history/textSettle
 */
import * as Y from 'yjs'
import { TEXT_PREFIX, replaceText } from '../model/recordDoc.js'
import { appendFieldChanges, historyArray, locatedEntries, tipsOf, type AppendOptions, type StoredFieldEntry } from './historyLog.js'
import { duplicateSettlements } from './readHistory.js'

/**
 * Sets a single-line text field to the value the rule settles on
 * (`RecordHistory.unsettled`) and records an `auto` entry on the field's
 * head that names every other tip as seen. Call inside a transaction.
 */
export const writeSettlement = (doc: Y.Doc, field: string, target: string, options: AppendOptions): boolean => {
  const text = doc.getText(TEXT_PREFIX + field)
  const current = text.toString()
  if (current === target) return false
  // Based on the greatest tip id, naming the others as seen: replicas settling the same state write the same entry.
  const tips = tipsOf(historyArray(doc).toArray(), field).sort()
  const base = tips.length > 0 ? tips[tips.length - 1]! : null
  const insertClock = Y.getState(doc.store, doc.clientID)
  replaceText(text, target)
  appendFieldChanges(
    doc,
    [{ field, kind: 'text', prev: current, next: target, base, seen: tips.filter((t) => t !== base), mode: 'auto', insertClock }],
    options,
  )
  return true
}

/**
 * Deletes the characters inserted by settlements that duplicate an earlier
 * one (the same merge settled by two replicas at once). Call inside a
 * transaction; returns how many characters it deleted.
 */
export const removeDuplicateInsertions = (doc: Y.Doc): number => {
  const located = locatedEntries(doc)
  const duplicates = duplicateSettlements(located)
  if (duplicates.size === 0) return 0
  let removed = 0
  for (const { entry, client, clock } of located) {
    if (!duplicates.has(entry.id)) continue
    const e = entry as StoredFieldEntry
    if (typeof e.ic !== 'number' || !Number.isInteger(e.ic) || e.ic < 0 || e.ic >= clock) continue
    if (!doc.share.has(TEXT_PREFIX + e.f)) continue
    removed += deleteRange(doc.getText(TEXT_PREFIX + e.f), client, e.ic, clock)
  }
  return removed
}

/** Deletes the live characters of `text` that `client` inserted with clocks in [from, to). */
const deleteRange = (text: Y.Text, client: number, from: number, to: number): number => {
  const ranges: Array<[number, number]> = []
  let index = 0
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted || !item.countable) continue
    const start = item.id.clock
    const end = start + item.length
    if (item.id.client === client && start < to && end > from) {
      const a = Math.max(start, from) - start
      const b = Math.min(end, to) - start
      ranges.push([index + a, b - a])
    }
    index += item.length
  }
  let removed = 0
  for (let i = ranges.length - 1; i >= 0; i--) {
    const [at, length] = ranges[i]!
    text.delete(at, length)
    removed += length
  }
  return removed
}
