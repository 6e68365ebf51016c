import { describe, expect, it } from 'vitest'
import { clipRects, selectedRange } from '../src/lib/caretOverlay'

describe('a remote selection', () => {
  it('is the range between anchor and head, in either direction', () => {
    expect(selectedRange({ index: 9, anchor: 4 }, 20)).toEqual({ start: 4, end: 9 })
    expect(selectedRange({ index: 4, anchor: 9 }, 20)).toEqual({ start: 4, end: 9 })
  })

  it('is nothing for a bare caret: no anchor, or anchor at the head', () => {
    expect(selectedRange({ index: 4 }, 20)).toBeNull()
    expect(selectedRange({ index: 4, anchor: 4 }, 20)).toBeNull()
  })

  it('is clamped to the text (the other person’s text may be longer for a moment)', () => {
    expect(selectedRange({ index: 30, anchor: 5 }, 12)).toEqual({ start: 5, end: 12 })
    expect(selectedRange({ index: 30, anchor: 25 }, 12)).toBeNull()
    expect(selectedRange({ index: -3, anchor: 2 }, 12)).toEqual({ start: 0, end: 2 })
  })
})

describe('clipping highlight rectangles to the field', () => {
  const box = { x: 0, y: 0, w: 100, h: 40 }

  it('keeps what is inside, cuts what sticks out, drops what is scrolled away', () => {
    expect(clipRects([{ x: 10, y: 5, w: 30, h: 18 }], box)).toEqual([{ x: 10, y: 5, w: 30, h: 18 }])
    expect(clipRects([{ x: 80, y: 30, w: 50, h: 18 }], box)).toEqual([{ x: 80, y: 30, w: 20, h: 10 }])
    expect(
      clipRects(
        [
          { x: -40, y: 5, w: 30, h: 18 },
          { x: 10, y: -30, w: 30, h: 18 },
          { x: 10, y: 50, w: 5, h: 18 },
        ],
        box,
      ),
    ).toEqual([])
  })

  it('drops slivers under a pixel', () => {
    expect(clipRects([{ x: 99.5, y: 5, w: 10, h: 18 }], box)).toEqual([])
  })
})
