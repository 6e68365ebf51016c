/**
 * Pixel position of a character index inside an <input> or <textarea>, for
 * drawing other people's carets over a plain form field: a hidden mirror
 * element with the field's text styles lays out the text up to the index.
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
}

const COPIED = [
  'boxSizing', 'width', 'borderTopWidth', 'borderRightWidth', 'borderBottomWidth', 'borderLeftWidth',
  'paddingTop', 'paddingRight', 'paddingBottom', 'paddingLeft', 'fontFamily', 'fontSize', 'fontWeight',
  'fontStyle', 'letterSpacing', 'lineHeight', 'textTransform', 'wordSpacing', 'textIndent', 'tabSize',
] as const

/** Coordinates (relative to the field's border box, scroll applied) of the caret before `index`. */
export function caretCoordinates(field: HTMLInputElement | HTMLTextAreaElement, index: number): { x: number; y: number; h: number } {
  const style = getComputedStyle(field)
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
  mirror.textContent = field.value.slice(0, index)
  const marker = document.createElement('span')
  marker.textContent = field.value.slice(index) || '.'
  mirror.appendChild(marker)
  document.body.appendChild(mirror)
  const lineHeight = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.3
  const x = marker.offsetLeft - field.scrollLeft
  const y = isInput ? (field.clientHeight - lineHeight) / 2 + parseFloat(style.borderTopWidth) : marker.offsetTop - field.scrollTop
  mirror.remove()
  return { x, y, h: lineHeight }
}
