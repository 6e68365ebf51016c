/**
 * What a client lacks of a doc that is not in memory, computed from what
 * storage holds. A `fetch` of a record the relay has not loaded (a new
 * device pulls thousands) is answered this way.
 *
 * A doc of a few rows (most records: a checkpoint and a short log) is
 * answered with Yjs's update utilities, without building a `Y.Doc` (no
 * client id, no integration, no re-encoding of the whole state). The
 * answer holds what `Y.encodeStateAsUpdate(doc, stateVector)` of the doc
 * built from the same rows holds: every struct the state vector lacks and
 * the whole delete set. Content deleted since the last checkpoint may still
 * be in it (a doc would have garbage-collected it into a `GC` struct); the
 * client ends with the same state either way.
 *
 * `Y.mergeUpdates` grows much faster than the rows, though (*spot*, text
 * typed by three writers, one row per keystroke: 32 rows 0.3 ms, 256 rows
 * 24 ms, 500 rows 54 ms, against 1.3 and 4.6 ms for building the doc), and
 * its answer does not join the typed characters into runs. A doc of more
 * than {@link MERGE_MAX_ROWS} rows is built as a `Y.Doc` and encoded.
 *
 * @module rooms/snapshotOfStored
 */
import * as Y from 'yjs'
import type { AuthorBinding, StoredDoc } from '../storage/Storage.js'

/** The update of a doc with no content (what `Y.encodeStateAsUpdate(new Y.Doc())` returns). */
const EMPTY_UPDATE = new Uint8Array([0, 0])

/** Most rows answered with `Y.mergeUpdates`; a doc with more is built as a `Y.Doc`. */
export const MERGE_MAX_ROWS = 32

/** Applies a stored doc (checkpoint, then log) to `doc` in one transaction. */
export const applyStored = (doc: Y.Doc, stored: Pick<StoredDoc, 'checkpoint' | 'updates'>): void => {
  Y.transact(doc, () => {
    if (stored.checkpoint) Y.applyUpdate(doc, stored.checkpoint)
    for (const update of stored.updates) Y.applyUpdate(doc, update)
  })
}

/** A state vector that names no client: the client has nothing. */
const isEmptyStateVector = (stateVector: Uint8Array): boolean => stateVector.byteLength === 1 && stateVector[0] === 0

/**
 * The part of `stored` a client with `stateVector` lacks (`update`), the
 * stored state vector (`durableStateVector`) and the author bindings of
 * client ids the doc has content of (see `Room.load`).
 */
export const snapshotOfStored = (
  stored: Pick<StoredDoc, 'checkpoint' | 'updates' | 'authors'>,
  stateVector: Uint8Array,
): { update: Uint8Array; durableStateVector: Uint8Array; authors: AuthorBinding[] } => {
  const rows = stored.checkpoint === null ? stored.updates : [stored.checkpoint, ...stored.updates]
  if (rows.length > MERGE_MAX_ROWS) {
    // named: a random guid costs ~30 getRandomValues calls
    const doc = new Y.Doc({ guid: 'stored' })
    try {
      applyStored(doc, stored)
      const durableStateVector = Y.encodeStateVector(doc)
      const { clients } = doc.store
      return {
        update: Y.encodeStateAsUpdate(doc, stateVector),
        durableStateVector,
        authors: stored.authors.filter((a) => clients.has(a.clientId)),
      }
    } finally {
      doc.destroy()
    }
  }
  const merged = rows.length === 0 ? EMPTY_UPDATE : rows.length === 1 ? rows[0]! : Y.mergeUpdates(rows)
  const durableStateVector = Y.encodeStateVectorFromUpdate(merged)
  const clients = Y.decodeStateVector(durableStateVector)
  return {
    update: isEmptyStateVector(stateVector) ? merged : Y.diffUpdate(merged, stateVector),
    durableStateVector,
    authors: stored.authors.filter((a) => clients.has(a.clientId)),
  }
}
