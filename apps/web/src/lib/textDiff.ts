/**
 * Minimal text diffs between what a form field showed and what it shows now,
 * so that local typing becomes a small insert/delete on a Y.Text (which
 * merges character by character) instead of a whole-value replacement.
 *
 * @module lib/textDiff
 */
import type * as Y from 'yjs'

/** One contiguous change: at `index` of the old string, remove `remove` characters and insert `insert`. */
export interface TextChange {
  index: number
  remove: number
  insert: string
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff

/**
 * The smallest single change that turns `before` into `after`: the common
 * prefix and suffix stay, the middle is replaced. Never splits a surrogate
 * pair (emoji etc.), so Y.Text never holds half a character.
 *
 * `cursor` (the caret in `after` right after the edit, e.g.
 * `input.selectionEnd`) disambiguates repeated characters: typing `a` in the
 * middle of `aa` is an insert at 1, not at the end. Without it the change is
 * placed as late as possible (longest common prefix first).
 *
 * Returns `null` when the strings are equal.
 */
export function diffText(before: string, after: string, cursor?: number | null): TextChange | null {
  if (before === after) return null
  const minLength = Math.min(before.length, after.length)
  let prefix = 0
  let suffix = 0
  if (cursor === undefined || cursor === null || cursor < 0 || cursor > after.length) {
    while (prefix < minLength && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++
    const maxSuffix = minLength - prefix
    while (suffix < maxSuffix && before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)) {
      suffix++
    }
  } else {
    // The edited region of `after` ends at the caret: the suffix may not reach past it.
    const maxSuffix = Math.min(minLength, after.length - cursor)
    while (suffix < maxSuffix && before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)) {
      suffix++
    }
    const maxPrefix = minLength - suffix
    while (prefix < maxPrefix && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++
  }
  // Keep surrogate pairs whole: never end the prefix after a high surrogate,
  // never start the suffix with a low surrogate.
  if (prefix > 0 && isHighSurrogate(before.charCodeAt(prefix - 1))) prefix--
  if (suffix > 0 && isLowSurrogate(before.charCodeAt(before.length - suffix))) suffix--
  return {
    index: prefix,
    remove: before.length - prefix - suffix,
    insert: after.slice(prefix, after.length - suffix),
  }
}

/**
 * The change that replaced the selection `[start, end)` of `before` — what
 * the person did when they typed or pasted over selected text — if `after`
 * is `before` with that selection replaced; else null. {@link diffText}
 * would keep the replaced text's first characters when the new text begins
 * the same way (typing "The app crashes on iOS" over "The app crashes."
 * keeps "T"), so two people retyping one sentence at once would each leave
 * the rest of it after the same kept letter: "The app crashes on iOS.he app
 * crashes on Android." This change deletes the whole selection, as the
 * person did.
 */
export function selectionChange(before: string, after: string, start: number, end: number): TextChange | null {
  if (start < 0 || end <= start || end > before.length) return null
  const head = before.slice(0, start)
  const tail = before.slice(end)
  if (after.length < head.length + tail.length || !after.startsWith(head) || !after.endsWith(tail)) return null
  return { index: start, remove: end - start, insert: after.slice(start, after.length - tail.length) }
}

/** Applies a change to a plain string (the inverse check of {@link diffText}). */
export function applyChange(text: string, change: TextChange): string {
  return text.slice(0, change.index) + change.insert + text.slice(change.index + change.remove)
}

/**
 * Applies a {@link TextChange} to a Y.Text as one transaction (delete, then
 * insert), with `origin` as the transaction origin so the field that made
 * the change can recognise and skip its own update.
 */
export function applyChangeToYText(ytext: Y.Text, change: TextChange, origin: unknown): void {
  const doc = ytext.doc
  const run = (): void => {
    if (change.remove > 0) ytext.delete(change.index, change.remove)
    if (change.insert.length > 0) ytext.insert(change.index, change.insert)
  }
  if (doc === null) run()
  else doc.transact(run, origin)
}

/**
 * Makes `ytext` read `after`, given that the field showed `before` (which
 * must be the Y.Text's current content), as a minimal change. Returns the
 * change applied, or null if nothing changed.
 */
export function applyLocalEdit(
  ytext: Y.Text,
  before: string,
  after: string,
  cursor: number | null | undefined,
  origin: unknown,
): TextChange | null {
  const change = diffText(before, after, cursor)
  if (change !== null) applyChangeToYText(ytext, change, origin)
  return change
}
