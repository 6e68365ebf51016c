/**
 * Transaction origins: how the engine tells its own Yjs transactions apart.
 *
 * Every transaction the engine makes on a record doc carries one of these
 * frozen objects as its origin. They form one tagged union ({@link ConcordOrigin},
 * told apart by `source`), so code that reacts to a change asks
 * {@link changeSourceOf} or switches on `origin.source` instead of comparing
 * against constants spread over several modules.
 *
 * Updates applied by the sync provider carry the provider (the doc's
 * `SyncClient`) as origin; any other origin (an app's own, or none) is a
 * local edit.
 *
 * @example
 *   doc.on('update', (update, origin) => {
 *     if (changeSourceOf(origin, client) === 'remote') showIncoming()
 *   })
 *
 * @module model/origins
 */

/** The `source` tag of each engine origin. */
export type OriginSource =
  | 'concord:storage'
  | 'concord:fetch'
  | 'concord:updated-at'
  | 'concord:record-write'
  | 'concord:typing-history'
  | 'concord:tab'
  | 'concord:delete-marker'
  | 'concord:rescued'

/** A transaction origin made by the engine. */
export interface ConcordOrigin<S extends OriginSource = OriginSource> {
  readonly source: S
}

function origin<S extends OriginSource>(source: S): ConcordOrigin<S> {
  return Object.freeze({ source })
}

/** Updates loaded from this device's storage (not news, not to be stored again). */
export const STORAGE_ORIGIN: ConcordOrigin<'concord:storage'> = origin('concord:storage')
/** Updates fetched in bulk from the relay (`store.pull`, discard): remote changes. */
export const FETCH_ORIGIN: ConcordOrigin<'concord:fetch'> = origin('concord:fetch')
/** The `updatedAt` bookkeeping write that follows local edits (a local origin). */
export const UPDATED_AT_ORIGIN: ConcordOrigin<'concord:updated-at'> = origin('concord:updated-at')
/** Writes made through the typed record API (a local origin). */
export const RECORD_WRITE_ORIGIN: ConcordOrigin<'concord:record-write'> = origin('concord:record-write')
/** History entries appended by the typing recorder (a local origin). */
export const TYPING_HISTORY_ORIGIN: ConcordOrigin<'concord:typing-history'> = origin('concord:typing-history')
/** Updates received from another tab of this browser (its author stores and sends them). */
export const TAB_ORIGIN: ConcordOrigin<'concord:tab'> = origin('concord:tab')
/** Delete markers (a local origin: markers are sent to the relay). */
export const DELETE_MARKER_ORIGIN: ConcordOrigin<'concord:delete-marker'> = origin('concord:delete-marker')
/**
 * Edits a page had not stored when it went, taken over at the next start
 * (`records/UnsavedRescue`): this device's changes (a local origin), with
 * their own pending-field notes and client ids, that do not touch `updatedAt`.
 */
export const RESCUED_ORIGIN: ConcordOrigin<'concord:rescued'> = origin('concord:rescued')

const SOURCES: ReadonlySet<string> = new Set<OriginSource>([
  'concord:storage',
  'concord:fetch',
  'concord:updated-at',
  'concord:record-write',
  'concord:typing-history',
  'concord:tab',
  'concord:delete-marker',
  'concord:rescued',
])

/** Whether `value` is one of the engine's own transaction origins. */
export function isConcordOrigin(value: unknown): value is ConcordOrigin {
  return typeof value === 'object' && value !== null && SOURCES.has((value as { source?: unknown }).source as string)
}

/** Where a change of a record came from. */
export type ChangeSource = 'local' | 'remote' | 'tab' | 'storage'

/**
 * Where the change of a transaction with `origin` came from; `provider` is the
 * origin the sync provider applies relay updates with.
 */
export function changeSourceOf(origin: unknown, provider: unknown): ChangeSource {
  if (origin === provider) return 'remote'
  if (!isConcordOrigin(origin)) return 'local'
  switch (origin.source) {
    case 'concord:fetch':
      return 'remote'
    case 'concord:tab':
      return 'tab'
    case 'concord:storage':
      return 'storage'
    case 'concord:updated-at':
    case 'concord:record-write':
    case 'concord:typing-history':
    case 'concord:delete-marker':
    case 'concord:rescued':
      return 'local'
  }
}

/**
 * Whether a local transaction is the engine's bookkeeping (a delete marker,
 * the `updatedAt` stamp, or rescued edits that carry their own) rather than
 * an edit: it does not touch `updatedAt`.
 */
export function isBookkeeping(origin: unknown): boolean {
  return (
    isConcordOrigin(origin) &&
    (origin.source === 'concord:delete-marker' || origin.source === 'concord:updated-at' || origin.source === 'concord:rescued')
  )
}
