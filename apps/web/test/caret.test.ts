import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { caretAfterDelta, mapIndex, mapIndexThrough, mapSelection, type DeltaOp } from '../src/lib/caret'

describe('mapIndex', () => {
  it('moves a position right by text inserted before it', () => {
    expect(mapIndex(5, [{ retain: 2 }, { insert: 'abc' }])).toBe(8)
    expect(mapIndex(5, [{ insert: 'abc' }])).toBe(8)
  })

  it('keeps a position when text is inserted after it', () => {
    expect(mapIndex(2, [{ retain: 4 }, { insert: 'abc' }])).toBe(2)
  })

  it('respects the association for an insert exactly at the position', () => {
    expect(mapIndex(3, [{ retain: 3 }, { insert: 'xy' }], 'before')).toBe(3)
    expect(mapIndex(3, [{ retain: 3 }, { insert: 'xy' }], 'after')).toBe(5)
  })

  it('moves left for deletions before it and collapses inside deleted ranges', () => {
    expect(mapIndex(6, [{ retain: 1 }, { delete: 2 }])).toBe(4)
    expect(mapIndex(4, [{ retain: 2 }, { delete: 5 }])).toBe(2)
    expect(mapIndex(2, [{ retain: 2 }, { delete: 5 }])).toBe(2)
    expect(mapIndex(7, [{ retain: 2 }, { delete: 5 }])).toBe(2)
    expect(mapIndex(8, [{ retain: 2 }, { delete: 5 }])).toBe(3)
  })

  it('handles replacements and several operations', () => {
    // "hello world" -> "HI world": delete "hello", insert "HI" at 0.
    const delta: DeltaOp[] = [{ insert: 'HI' }, { delete: 5 }]
    expect(mapIndex(8, delta)).toBe(5)
    expect(mapIndexThrough(8, [delta, [{ insert: '>> ' }]])).toBe(8)
  })

  it('counts embeds as one position', () => {
    expect(mapIndex(2, [{ insert: { image: 'x' } }])).toBe(3)
  })
})

describe('mapSelection', () => {
  it('does not grow a range with text inserted at its edges', () => {
    const delta: DeltaOp[] = [{ retain: 2 }, { insert: 'A' }, { retain: 3 }, { insert: 'B' }]
    expect(mapSelection({ start: 2, end: 5 }, delta)).toEqual({ start: 3, end: 6 })
  })

  it('keeps a collapsed caret in front of text inserted right at it', () => {
    expect(mapSelection({ start: 4, end: 4 }, [{ retain: 4 }, { insert: 'zz' }])).toEqual({ start: 4, end: 4 })
  })

  it('collapses a range that was deleted', () => {
    expect(mapSelection({ start: 3, end: 6 }, [{ retain: 2 }, { delete: 6 }])).toEqual({ start: 2, end: 2 })
  })
})

describe('with real Y.Text events', () => {
  it('keeps the caret on the same character while someone else types before it', () => {
    const mine = new Y.Doc()
    const theirs = new Y.Doc()
    mine.getText('d').insert(0, 'Steps to reproduce')
    Y.applyUpdate(theirs, Y.encodeStateAsUpdate(mine))

    // My caret sits right before "reproduce".
    let caret = 'Steps to '.length
    mine.getText('d').observe((event) => {
      caret = mapIndex(caret, event.delta as DeltaOp[])
    })
    theirs.transact(() => {
      theirs.getText('d').insert(0, '1. ')
      theirs.getText('d').delete(3 + 'Steps '.length, 'to '.length)
    })
    Y.applyUpdate(mine, Y.encodeStateAsUpdate(theirs))

    const text = mine.getText('d').toString()
    expect(text).toBe('1. Steps reproduce')
    expect(text.slice(caret)).toBe('reproduce')
  })
})

describe('caretAfterDelta', () => {
  it('is the position after the last change', () => {
    expect(caretAfterDelta([{ retain: 3 }, { insert: 'abc' }])).toBe(6)
    expect(caretAfterDelta([{ retain: 3 }, { delete: 2 }])).toBe(3)
    expect(caretAfterDelta([{ insert: 'x' }, { retain: 5 }, { delete: 1 }])).toBe(6)
    expect(caretAfterDelta([])).toBe(0)
  })
})
