/**
 * Pixel position of a character index inside an <input> or <textarea>, for
 * drawing other people's carets and selections over a plain form field: a
 * hidden mirror element with the field's text styles lays out the text up
 * to the index (for a selection, the selected text in a span whose line
 * boxes are the highlight's rectangles).
 *
 * @module lib/caretOverlay
 */

/** Another person's caret in a text field. */
export interface RemoteCaret {
  clientId: number
  name: string
  color: string
  /** Character index of the caret (the selection's head). */
  index: number
  /** Where the selection starts (its anchor); absent or equal to `index`: a caret, nothing selected. */
  anchor?: number
}

/** A rectangle in the field's coordinates (its padding edge; scroll applied). */
export interface Rect {
  x: number
  y: number
  w: number
  h: number
}

/** The selected range of a caret, ordered and clamped to a text of `length`; null when nothing is selected. */
export function selectedRange(caret: Pick<RemoteCaret, 'index' | 'anchor'>, length: number): { start: number; end: number } | null {
  if (caret.anchor === undefined) return null
  const clamp = (n: number): number => Math.max(0, Math.min(length, Math.floor(n)))
  const a = clamp(caret.anchor)
  const b = clamp(caret.index)
  if (a === b) return null
  return { start: Math.min(a, b), end: Math.max(a, b) }
}

/** The parts of `rects` inside `box` (the field's visible area); empty parts are dropped. */
export function clipRects(rects: readonly Rect[], box: Rect): Rect[] {
  const out: Rect[] = []
  for (const r of rects) {
    const x = Math.max(r.x, box.x)
    const y = Math.max(r.y, box.y)
    const right = Math.min(r.x + r.w, box.x + box.w)
    const bottom = Math.min(r.y + r.h, box.y + box.h)
    if (right - x >= 1 && bottom - y >= 1) out.push({ x, y, w: right - x, h: bottom - y })
  }
  return out
}

const COPIED = [
  'boxSizing',
  'width',
  'borderTopWidth',
  'borderRightWidth',
  'borderBottomWidth',
  'borderLeftWidth',
  'paddingTop',
  'paddingRight',
  'paddingBottom',
  'paddingLeft',
  'fontFamily',
  'fontSize',
  'fontWeight',
  'fontStyle',
  'letterSpacing',
  'lineHeight',
  'textTransform',
  'wordSpacing',
  'textIndent',
  'tabSize',
] as const

/** A hidden element laid out like the field's text (not yet in the document). */
function mirrorOf(field: HTMLInputElement | HTMLTextAreaElement, style: CSSStyleDeclaration): HTMLDivElement {
  const mirror = document.createElement('div')
  const isInput = field instanceof HTMLInputElement
  for (const prop of COPIED) mirror.style[prop] = style[prop]
  mirror.style.position = 'absolute'
  mirror.style.visibility = 'hidden'
  mirror.style.top = '0'
  mirror.style.left = '-9999px'
  mirror.style.whiteSpace = isInput ? 'pre' : 'pre-wrap'
  mirror.style.overflowWrap = isInput ? 'normal' : 'break-word'
  mirror.style.overflow = 'hidden'
  return mirror
}

const lineHeightOf = (style: CSSStyleDeclaration): number => parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.3

/** Coordinates (relative to the field's border box, scroll applied) of the caret before `index`. */
export function caretCoordinates(field: HTMLInputElement | HTMLTextAreaElement, index: number): { x: number; y: number; h: number } {
  const style = getComputedStyle(field)
  const isInput = field instanceof HTMLInputElement
  const mirror = mirrorOf(field, style)
  mirror.textContent = field.value.slice(0, index)
  const marker = document.createElement('span')
  marker.textContent = field.value.slice(index) || '.'
  mirror.appendChild(marker)
  document.body.appendChild(mirror)
  const lineHeight = lineHeightOf(style)
  const x = marker.offsetLeft - field.scrollLeft
  const y = isInput ? (field.clientHeight - lineHeight) / 2 + parseFloat(style.borderTopWidth) : marker.offsetTop - field.scrollTop
  mirror.remove()
  return { x, y, h: lineHeight }
}

/**
 * Rectangles (same coordinates as {@link caretCoordinates}) covering the text
 * from `start` to `end` — one per line it spans — clipped to what the field shows.
 */
export function selectionRects(field: HTMLInputElement | HTMLTextAreaElement, start: number, end: number): Rect[] {
  if (end <= start) return []
  const style = getComputedStyle(field)
  const isInput = field instanceof HTMLInputElement
  const mirror = mirrorOf(field, style)
  mirror.textContent = field.value.slice(0, start)
  const selected = document.createElement('span')
  selected.textContent = field.value.slice(start, end)
  mirror.appendChild(selected)
  mirror.appendChild(document.createTextNode(field.value.slice(end) || '.'))
  document.body.appendChild(mirror)
  const lineHeight = lineHeightOf(style)
  const origin = mirror.getBoundingClientRect()
  const left = origin.left + mirror.clientLeft
  const top = origin.top + mirror.clientTop
  const inputY = (field.clientHeight - lineHeight) / 2 + parseFloat(style.borderTopWidth)
  const rects: Rect[] = []
  for (const line of selected.getClientRects()) {
    rects.push({
      x: line.left - left - field.scrollLeft,
      y: isInput ? inputY : line.top - top - field.scrollTop,
      w: line.width,
      h: lineHeight,
    })
  }
  mirror.remove()
  return clipRects(rects, {
    x: 0,
    y: 0,
    w: field.clientWidth + parseFloat(style.borderLeftWidth),
    h: field.clientHeight + parseFloat(style.borderTopWidth),
  })
}
