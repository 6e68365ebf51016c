import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { applyChange, applyChangeToYText, applyLocalEdit, diffText, selectionChange } from '../src/lib/textDiff'

describe('diffText', () => {
  it('returns null for equal strings', () => {
    expect(diffText('abc', 'abc')).toBeNull()
    expect(diffText('', '')).toBeNull()
  })

  it('finds a single insert, delete and replacement', () => {
    expect(diffText('hello world', 'hello brave world')).toEqual({ index: 6, remove: 0, insert: 'brave ' })
    expect(diffText('hello brave world', 'hello world')).toEqual({ index: 6, remove: 6, insert: '' })
    expect(diffText('the cat sat', 'the dog sat')).toEqual({ index: 4, remove: 3, insert: 'dog' })
    expect(diffText('', 'abc')).toEqual({ index: 0, remove: 0, insert: 'abc' })
    expect(diffText('abc', '')).toEqual({ index: 0, remove: 3, insert: '' })
  })

  it('uses the caret to place an edit among repeated characters', () => {
    // Typing "a" between the two a's of "aa": caret ends at 2.
    expect(diffText('aa', 'aaa', 2)).toEqual({ index: 1, remove: 0, insert: 'a' })
    // Without the caret the change is placed after the longest common prefix.
    expect(diffText('aa', 'aaa')).toEqual({ index: 2, remove: 0, insert: 'a' })
    // Backspace of the first "b" in "abb": caret ends at 1.
    expect(diffText('abb', 'ab', 1)).toEqual({ index: 1, remove: 1, insert: '' })
    // Typing at the very start.
    expect(diffText('xx', 'xxx', 1)).toEqual({ index: 0, remove: 0, insert: 'x' })
  })

  it('ignores a caret that does not fit the new string', () => {
    expect(diffText('ab', 'abc', 99)).toEqual({ index: 2, remove: 0, insert: 'c' })
    expect(diffText('ab', 'abc', -1)).toEqual({ index: 2, remove: 0, insert: 'c' })
  })

  it('never splits a surrogate pair', () => {
    // 😀 = \uD83D\uDE00 and 😁 = \uD83D\uDE01 share their high surrogate.
    const change = diffText('a😀b', 'a😁b')
    expect(change).toEqual({ index: 1, remove: 2, insert: '😁' })
    // 👍 = \uD83D\uDC4D, 🎉 = \uD83C\uDF89, 👎 = \uD83D\uDC4E
    expect(diffText('x👍', 'x👎')).toEqual({ index: 1, remove: 2, insert: '👎' })
    // Shared low surrogate: 😀 (\uD83D\uDE00) vs 😀 (\uD821\uDE00)
    expect(diffText('😀z', '\uD821\uDE00z')).toEqual({ index: 0, remove: 2, insert: '\uD821\uDE00' })
  })

  it('round-trips on many random edits', () => {
    let seed = 42
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const alphabet = 'aab c😀\n'
    const word = (n: number) => Array.from({ length: n }, () => Array.from(alphabet)[Math.floor(random() * 7)]).join('')
    for (let i = 0; i < 500; i++) {
      const before = word(Math.floor(random() * 12))
      const at = Math.floor(random() * (before.length + 1))
      const after = before.slice(0, at) + word(Math.floor(random() * 4)) + before.slice(at + Math.floor(random() * 3))
      const cursor = random() < 0.5 ? undefined : Math.floor(random() * (after.length + 1))
      const change = diffText(before, after, cursor)
      if (change === null) {
        expect(after).toBe(before)
        continue
      }
      expect(applyChange(before, change)).toBe(after)
      expect(change.index).toBeGreaterThanOrEqual(0)
      expect(change.index + change.remove).toBeLessThanOrEqual(before.length)
    }
  })
})

describe('applyLocalEdit', () => {
  it('applies the change to a Y.Text in one transaction with the given origin', () => {
    const doc = new Y.Doc()
    const text = doc.getText('title')
    text.insert(0, 'Fix the login page')
    const origin = { field: 'title' }
    const origins: unknown[] = []
    doc.on('afterTransaction', (tr: Y.Transaction) => origins.push(tr.origin))
    const change = applyLocalEdit(text, 'Fix the login page', 'Fix the signup page', 13, origin)
    expect(change).toEqual({ index: 8, remove: 5, insert: 'signup' })
    expect(text.toString()).toBe('Fix the signup page')
    expect(origins).toEqual([origin])
  })

  it('merges two people editing different parts of the same text character by character', () => {
    const a = new Y.Doc()
    const b = new Y.Doc()
    a.getText('t').insert(0, 'The quick fox')
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    applyLocalEdit(a.getText('t'), 'The quick fox', 'The quick brown fox', 16, 'a')
    applyLocalEdit(b.getText('t'), 'The quick fox', 'The slow quick fox!', 19, 'b')
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
    expect(a.getText('t').toString()).toBe(b.getText('t').toString())
    expect(a.getText('t').toString()).toContain('brown')
    expect(a.getText('t').toString()).toContain('slow')
    expect(a.getText('t').toString().endsWith('fox!')).toBe(true)
  })
})

describe('selectionChange', () => {
  it('typing over a selection replaces all of it, also when the new text begins like the old one', () => {
    expect(selectionChange('The app crashes.', 'T', 0, 16)).toEqual({ index: 0, remove: 16, insert: 'T' })
    expect(diffText('The app crashes.', 'T', 1)).toEqual({ index: 1, remove: 15, insert: '' }) // what it avoids
    expect(selectionChange('a\nSecond line.\nc', 'a\nS\nc', 2, 14)).toEqual({ index: 2, remove: 12, insert: 'S' })
    expect(selectionChange('abc', 'ac', 1, 2)).toEqual({ index: 1, remove: 1, insert: '' })
  })

  it('null when the field does not read as that selection replaced', () => {
    expect(selectionChange('abc', 'abc', 1, 1)).toBeNull()
    expect(selectionChange('abc', 'xbc', 1, 2)).toBeNull()
    expect(selectionChange('abc', 'a', 1, 2)).toBeNull()
  })

  it('two people retyping one sentence at once: each sentence stays whole, never one letter shared', () => {
    const a = new Y.Doc()
    const b = new Y.Doc()
    a.getText('t').insert(0, 'The app crashes.')
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    for (const [doc, typed] of [
      [a, 'The app crashes on iOS 17.'],
      [b, 'The app crashes on Android 14.'],
    ] as const) {
      const text = doc.getText('t')
      // The first keystroke replaces the selection, the others are typed after it.
      applyChangeToYText(text, selectionChange(text.toString(), typed[0]!, 0, text.length)!, 'me')
      for (let i = 1; i < typed.length; i++) applyLocalEdit(text, typed.slice(0, i), typed.slice(0, i + 1), i + 1, 'me')
    }
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
    const merged = a.getText('t').toString()
    expect(merged).toBe(b.getText('t').toString())
    expect([merged.replace('The app crashes on iOS 17.', ''), merged.replace('The app crashes on Android 14.', '')].sort()).toEqual(
      ['The app crashes on Android 14.', 'The app crashes on iOS 17.'].sort(),
    )
  })
})
