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
 * only, so replicas doing it at the same time agree as well. An edit its
 * writer made on a copy before the counted settlement reached them lost its
 * deletions with the copy's characters; readers leave the field unsettled on
 * that edit's value (`readHistory`, entries written on a duplicate), so it is
 * settled again like any collision. A settlement another replica wrote
 * knowing every entry stands even where this replica's rule reads the merge
 * otherwise ({@link settledOtherwise}: app versions whose rules differ would
 * settle against each other).
 *
 * @example
 *   const { unsettled } = readHistory(doc, authors, { fields, singleLine })
 *   for (const [field, value] of Object.entries(unsettled)) doc.transact(() => writeSettlement(doc, field, value, { now: Date.now() }), origin)
 *   doc.transact(() => removeDuplicateInsertions(doc), origin)
 *
 * @module history/textSettle
 */
import * as Y from 'yjs'
import { TEXT_PREFIX, changedRange, replaceChars } from '../model/recordDoc.js'
import {
  appendFieldChanges,
  historyArray,
  locatedEntries,
  mergeCompacted,
  tipsOf,
  writerClient,
  type AppendOptions,
  type StoredCompactedEntry,
  type StoredFieldEntry,
} from './historyLog.js'
import { duplicateSettlements } from './readHistory.js'

/**
 * Sets a single-line text field to the value the rule settles on
 * (`RecordHistory.unsettled`) and records an `auto` entry on the field's
 * head that names every other tip as seen. Call inside a transaction.
 *
 * Others' typing that reached this replica before its entry (a burst still
 * open elsewhere: {@link unrecordedTyping}) is no part of the rule's value
 * and is kept as it is: the settlement changes only the text around it, and
 * its entry's before and after texts leave it out, as a typing entry leaves
 * out what others typed meanwhile. The typist's entry, once written, meets
 * the settlement as a merge of its own. Returns false when nothing changed.
 */
export const writeSettlement = (doc: Y.Doc, field: string, target: string, options: AppendOptions): boolean => {
  // Based on the greatest tip id, naming the others as seen: replicas settling the same state write the same entry.
  const tips = tipsOf(historyArray(doc).toArray(), field).sort()
  const base = tips.length > 0 ? tips[tips.length - 1]! : null
  const insertClock = Y.getState(doc.store, doc.clientID)
  const prev = replaceAroundTyping(doc, field, target)
  if (prev === null) return false
  appendFieldChanges(
    doc,
    [{ field, kind: 'text', prev, next: target, base, seen: tips.filter((t) => t !== base), mode: 'auto', insertClock }],
    options,
  )
  return true
}

/**
 * Whether another replica settled `field` on a value other than `target`
 * knowing every entry of it this replica has: that settlement is the only
 * entry of the field no other one names as its base or as seen. Replicas
 * running the same rule derive the same value from the same entries, so
 * this happens only between app versions whose rules differ; settling back
 * would make the two settle against each other for as long as both have
 * the record open. Their settlement stands (the merge card still offers
 * every side).
 */
export const settledOtherwise = (doc: Y.Doc, field: string, target: string): boolean => {
  const entries: Array<{ entry: StoredFieldEntry; client: number }> = []
  for (const { entry, client } of locatedEntries(doc)) if (entry.k !== 'c' && entry.f === field) entries.push({ entry, client })
  const named = new Set(entries.flatMap(({ entry }) => [entry.b, ...(Array.isArray(entry.s) ? entry.s : [])]))
  const leaves = entries.filter(({ entry }) => !named.has(entry.id))
  if (leaves.length !== 1) return false
  const { entry, client } = leaves[0]!
  return entry.m === 'auto' && client !== doc.clientID && typeof entry.v === 'string' && entry.v !== target
}

/**
 * Sets text field `field` to `target` around others' typing that has no
 * entry yet ({@link unrecordedTyping}), which stays where it is: only the
 * text the entries explain changes (one changed range, written as
 * `replaceText` writes it: {@link replaceChars}). Returns that text as it
 * was — the settlement's "before" — or null when it already was `target`.
 * Call inside a transaction. (Not for writes people make: whoever sets a
 * field saw that typing and replaces it.)
 */
const replaceAroundTyping = (doc: Y.Doc, field: string, target: string): string | null => {
  const text = doc.getText(TEXT_PREFIX + field)
  const { chars, uncovered } = unrecordedTyping(doc, text, field, target)
  // The text the entries explain: everything but that typing.
  let current = ''
  const at: number[] = []
  for (let i = 0; i < chars.length; i++) {
    if (uncovered[i]) continue
    current += chars[i]
    at.push(i)
  }
  if (current === target) return null
  const { start, endPrev, endNext } = offTyping(current, at, changedRange(current, target))
  replaceChars(text, current, (i) => at[i]!, start, endPrev, target.slice(start, endNext))
  return current
}

/**
 * A pure deletion from `current` (`range`, from `changedRange`) moved to an
 * equal one that does not reach across others' typing kept in the text
 * (`at`: each character's index in it): deleting "t002 " from "Login t002
 * fails" around Carol's " t008", typed after "t002", glued her word to
 * "fails" ("Login  t008fails"); the equal " t002" before it leaves "Login
 * t008 fails". The range slides left while the character before it equals
 * its last one, as `changedRange` slides it, to the first placement that
 * deletes one run of the text's characters and glues no two words together;
 * without one it stays as it was.
 */
const offTyping = (
  current: string,
  at: readonly number[],
  range: { start: number; endPrev: number; endNext: number },
): { start: number; endPrev: number; endNext: number } => {
  const { start, endPrev, endNext } = range
  const length = endPrev - start
  if (endNext !== start || length === 0) return range
  // Deletes one run of the text's characters, nobody's typing between them.
  const whole = (s: number): boolean => at[s + length - 1]! - at[s]! === length - 1
  if (whole(start)) return range
  const space = (i: number): boolean => i < 0 || i >= current.length || /\s/u.test(current[i]!)
  // Leaves no two words glued: a space (or the text's edge) on each side, kept or deleted.
  const clean = (s: number): boolean => (space(s - 1) || space(s)) && (space(s + length) || space(s + length - 1))
  for (let s = start; s > 0 && current[s - 1] === current[s - 1 + length];) {
    s--
    if (whole(s) && clean(s)) return { start: s, endPrev: s + length, endNext: s }
  }
  return range
}

/**
 * The characters of `text` (UTF-16 units, embeds as U+FFFC) and which of
 * them are others' typing that no entry records yet: inserted by another
 * writer (Yjs client) that has written no entry of `field` since — neither
 * one in the history nor one a compaction summary counts. Such typing is a
 * burst still open on the writer's device (its entry follows the keystrokes)
 * or one whose entry was lost with a crash. A run of it that `target`
 * contains is not counted: the entries, and so the rule's value, already
 * hold that text (later writers recorded it), and keeping it besides would
 * write it twice. With compaction summaries from before per-writer records
 * nothing is counted (who they cover is unknown).
 */
const unrecordedTyping = (doc: Y.Doc, text: Y.Text, field: string, target: string): { chars: string[]; uncovered: boolean[] } => {
  const chars: string[] = []
  const uncovered: boolean[] = []
  const newest = new Map<number, number>()
  const summaries: StoredCompactedEntry[] = []
  for (const { entry, client, clock } of locatedEntries(doc)) {
    if (entry.k === 'c') summaries.push(entry)
    else if (entry.f === field && clock > (newest.get(client) ?? -1)) newest.set(client, clock)
  }
  let known = true
  for (const [key, writer] of mergeCompacted(summaries, doc)) {
    const client = writerClient(key)
    if (client === null) known = false
    else if (writer.t > (newest.get(client) ?? -1)) newest.set(client, writer.t)
  }
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted || !item.countable) continue
    const content = item.content instanceof Y.ContentString ? item.content.str : '\uFFFC'.repeat(item.length)
    const mine = item.id.client === doc.clientID
    const open = known && !mine && item.content instanceof Y.ContentString && (newest.get(item.id.client) ?? -1) < item.id.clock
    for (let i = 0; i < content.length; i++) {
      chars.push(content[i]!)
      uncovered.push(open)
    }
  }
  // Runs the rule's value holds already are recorded text.
  for (let i = 0; i < chars.length; i++) {
    if (!uncovered[i]) continue
    let end = i
    while (end < chars.length && uncovered[end]) end++
    if (target.includes(chars.slice(i, end).join(''))) uncovered.fill(false, i, end)
    i = end
  }
  return { chars, uncovered }
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
