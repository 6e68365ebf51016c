/**
 * Keeping the caret and selection where the user left them when somebody
 * else's edit arrives: positions are mapped through the Y.Text delta of the
 * remote change.
 *
 * @module lib/caret
 */

/** One operation of a Y.Text delta (`YTextEvent.delta`). */
export interface DeltaOp {
  insert?: string | object | unknown[]
  delete?: number
  retain?: number
  attributes?: Record<string, unknown>
}

/**
 * Where a position sticks when text is inserted exactly at it:
 * `'before'` keeps it in front of the new text, `'after'` moves it behind.
 */
export type Assoc = 'before' | 'after'

function insertLength(insert: DeltaOp['insert']): number {
  if (typeof insert === 'string') return insert.length
  if (Array.isArray(insert)) return insert.length
  return insert === undefined ? 0 : 1 // an embed counts as one position
}

/**
 * Maps a position in the text before a change to the same place in the
 * text after it. Text inserted before the position pushes it right; text
 * deleted before it pulls it left; a position inside a deleted range lands
 * where the range was.
 */
export function mapIndex(index: number, delta: readonly DeltaOp[], assoc: Assoc = 'before'): number {
  let oldPos = 0 // position in the old text
  let shift = 0 // how far the mapped index has moved
  for (const op of delta) {
    if (oldPos > index) break
    if (op.retain !== undefined) {
      oldPos += op.retain
    } else if (op.insert !== undefined) {
      const length = insertLength(op.insert)
      if (oldPos < index || (oldPos === index && assoc === 'after')) shift += length
    } else if (op.delete !== undefined) {
      const end = oldPos + op.delete
      if (end <= index) shift -= op.delete
      else if (oldPos < index) shift -= index - oldPos
      oldPos = end
    }
  }
  return Math.max(0, index + shift)
}

/** A selection of a text field (`selectionStart`, `selectionEnd`). */
export interface Selection {
  start: number
  end: number
}

/**
 * Maps a selection through a delta. A collapsed caret stays in front of text
 * inserted right at it (so two people typing at the same spot do not
 * interleave their characters); a range does not grow to swallow text
 * inserted at its edges.
 */
export function mapSelection(selection: Selection, delta: readonly DeltaOp[]): Selection {
  if (selection.start === selection.end) {
    const caret = mapIndex(selection.start, delta, 'before')
    return { start: caret, end: caret }
  }
  const start = mapIndex(selection.start, delta, 'after')
  const end = Math.max(start, mapIndex(selection.end, delta, 'before'))
  return { start, end }
}

/** Maps a selection through several deltas, applied in order. */
export function mapSelectionThrough(selection: Selection, deltas: readonly (readonly DeltaOp[])[]): Selection {
  return deltas.reduce((current, delta) => mapSelection(current, delta), selection)
}

/** Maps an index through several deltas, applied in order. */
export function mapIndexThrough(index: number, deltas: readonly (readonly DeltaOp[])[], assoc: Assoc = 'before'): number {
  return deltas.reduce((current, delta) => mapIndex(current, delta, assoc), index)
}

/**
 * The position right after the last change of a delta (in the new text):
 * where the caret belongs after an undo or redo.
 */
export function caretAfterDelta(delta: readonly DeltaOp[]): number {
  let pos = 0
  let caret = 0
  for (const op of delta) {
    if (op.retain !== undefined) pos += op.retain
    else if (op.insert !== undefined) {
      pos += insertLength(op.insert)
      caret = pos
    } else if (op.delete !== undefined) caret = pos
  }
  return caret
}
