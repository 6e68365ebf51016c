/**
 * What the web app asks of a merge.
 *
 * @module merges
 */
import type { Merge } from '@concord/engine'
import { diffText } from './textDiff'

/**
 * Whether a text merge waits for someone to pick a version or keep what the
 * text holds: its edits collided, no later change was kept by the rule, and
 * nobody chose since (an automatic settlement is the app's, not a choice).
 */
export const awaitsChoice = (merge: Merge): boolean =>
  merge.fieldKind === 'text' && merge.conflict && merge.winner == null && (merge.settledBy == null || merge.settledBy.mode === 'auto')

/** Longest version a merge card shows whole; of a longer one it shows the lines that differ from the merge's base. */
export const VERSION_SHOWN_WHOLE = 600

/** What a merge card shows of a text version: `text`, and whether lines of it were left out before / after. */
export interface VersionExcerpt {
  text: string
  cutBefore: boolean
  cutAfter: boolean
}

/**
 * A version of a long text as a merge card shows it: the whole lines in
 * which it differs from `base` (the text both writers began from), the
 * lines around them left out — a version of a long description (a pasted
 * log, say) would otherwise fill the card with what both versions share.
 * Versions up to {@link VERSION_SHOWN_WHOLE} characters, and any without a
 * known base, are shown whole.
 */
export const versionExcerpt = (base: string | null | undefined, version: string): VersionExcerpt => {
  const whole = { text: version, cutBefore: false, cutAfter: false }
  const change = version.length <= VERSION_SHOWN_WHOLE || typeof base !== 'string' ? null : diffText(base, version)
  if (change === null) return whole
  // Whole lines: from the start of the line where they part to the end of the line where they meet again.
  const start = version.lastIndexOf('\n', change.index - 1) + 1
  const lineEnd = version.indexOf('\n', change.index + change.insert.length)
  const end = lineEnd === -1 ? version.length : lineEnd
  if (end <= start) {
    // Only whole lines deleted: the line before and after the gap say where.
    const before = version.lastIndexOf('\n', start - 2) + 1
    const after = version.indexOf('\n', start)
    return excerpt(version, before, after === -1 ? version.length : after)
  }
  return excerpt(version, start, end)
}

const excerpt = (version: string, start: number, end: number): VersionExcerpt => ({
  text: version.slice(start, end),
  cutBefore: start > 0,
  cutAfter: end < version.length,
})
