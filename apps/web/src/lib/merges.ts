/**
 * What the web app asks of a merge.
 *
 * @module merges
 */
import type { Merge } from '@concord/engine'

/**
 * Whether a text merge waits for someone to pick a version or keep what the
 * text holds: its edits collided, no later change was kept by the rule, and
 * nobody chose since (an automatic settlement is the app's, not a choice).
 */
export const awaitsChoice = (merge: Merge): boolean =>
  merge.fieldKind === 'text' && merge.conflict && merge.winner == null && (merge.settledBy == null || merge.settledBy.mode === 'auto')
