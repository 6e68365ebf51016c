/**
 * Pending changes of one doc: what this device holds that the relay has not
 * durably stored yet.
 *
 *     pending = countMissing(localStateVector, ackedStateVector)
 *
 * The relay sends `ack(doc, stateVector)` only after its storage commit
 * returned, and the acked vector covers everything it stored for the doc.
 * Deriving pending from state vectors (not from counting sent messages) keeps
 * it right across reconnects, duplicate sends, other tabs and reloads.
 *
 * ## Deletions and the delete marker
 *
 * Yjs deletions do not advance the state vector: a transaction that only
 * deletes would be invisible to the formula above, and "synced" would be shown
 * while the delete is still only on this device. So after every *local*
 * transaction whose delete set is non-empty and that inserted nothing for
 * `doc.clientID`, the tracker writes a marker in a separate follow-up
 * transaction:
 *
 *     doc.getMap('concord:meta').set('d', <increasing number>)
 *
 * The marker advances this client's clock by one, so the delete becomes one
 * pending tick. Yjs runs the follow-up transaction after the delete's own
 * `update` event, the sync client sends both updates in that order, and the
 * relay applies and stores updates in order: an acked state vector that
 * covers the marker therefore proves the delete was stored too. The marker's
 * origin is {@link DELETE_MARKER_ORIGIN}, a local origin, so it is sent to the
 * relay like any local edit.
 *
 * Transactions applied from elsewhere (`transaction.local === false`, e.g.
 * `Y.applyUpdate` from the relay, IndexedDB or another tab) never get a
 * marker: their author wrote one already if it was needed.
 *
 * @example
 *   const tracker = new PendingTracker(doc, { remoteOrigin: client })
 *   tracker.on('pending', (n) => console.log(n, 'changes not on the relay yet'))
 *   tracker.ack(Y.decodeStateVector(encodedAck), 'merge')
 *
 * @module sync/PendingTracker
 */
import * as Y from 'yjs'
import { ObservableV2 } from 'lib0/observable'
import { countMissing, maxStateVector, type StateVector } from '../protocol/stateVector.js'
import { META_MAP_NAME } from '../model/metaMap.js'
import { DELETE_MARKER_ORIGIN } from '../model/origins.js'

/** Key of the delete marker inside {@link META_MAP_NAME}. */
export const DELETE_MARKER_KEY = 'd'

/** Options of {@link PendingTracker}. */
export interface PendingTrackerOptions {
  /** Origin of transactions applied from the relay. They never get a delete marker. */
  remoteOrigin: unknown
  /** Acked state vector to start from, e.g. one persisted next to the doc. Default: nothing acked. */
  acked?: StateVector
}

/** Events of {@link PendingTracker}. */
export interface PendingTrackerEvents {
  /** The pending count changed. */
  pending: (count: number) => void
}

/** Tracks the pending count of one doc and writes delete markers. */
export class PendingTracker extends ObservableV2<PendingTrackerEvents> {
  readonly doc: Y.Doc
  private readonly remoteOrigin: unknown
  private acked: StateVector
  private count: number
  private destroyed = false

  constructor(doc: Y.Doc, options: PendingTrackerOptions) {
    super()
    this.doc = doc
    this.remoteOrigin = options.remoteOrigin
    this.acked = new Map(options.acked ?? [])
    this.count = this.compute()
    doc.on('update', this.onUpdate)
  }

  /** Clock ticks held locally that the relay has not durably stored. */
  get pending(): number {
    return this.count
  }

  /** The state vector the relay has durably stored, as far as this tracker knows. */
  get ackedStateVector(): ReadonlyMap<number, number> {
    return this.acked
  }

  /**
   * Takes an acknowledged state vector into account.
   *
   * - `'merge'` keeps the larger clock per client, so a stale or duplicate ack
   *   can never lower what is known to be stored.
   * - `'replace'` adopts the vector as is; the sync client uses it for the first
   *   ack of a new subscription, which states exactly what the relay has
   *   stored (should the relay ever lose data, pending rises again instead of
   *   claiming a false "synced").
   */
  ack(stateVector: StateVector, mode: 'merge' | 'replace'): void {
    if (this.destroyed) return
    this.acked = mode === 'replace' ? new Map(stateVector) : maxStateVector(this.acked, stateVector)
    this.recompute()
  }

  /** Recomputes the pending count and emits `pending` when it changed. */
  recompute(): void {
    if (this.destroyed) return
    const count = this.compute()
    if (count !== this.count) {
      this.count = count
      this.emit('pending', [count])
    }
  }

  /** Stops listening to the doc. */
  override destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    this.doc.off('update', this.onUpdate)
    super.destroy()
  }

  private compute(): number {
    return countMissing(Y.decodeStateVector(Y.encodeStateVector(this.doc)), this.acked)
  }

  private readonly onUpdate = (_update: Uint8Array, origin: unknown, doc: Y.Doc, transaction: Y.Transaction): void => {
    if (
      transaction.local &&
      origin !== this.remoteOrigin &&
      transaction.deleteSet.clients.size > 0 &&
      (transaction.afterState.get(doc.clientID) ?? 0) === (transaction.beforeState.get(doc.clientID) ?? 0)
    ) {
      // Runs as its own transaction after this one's cleanup (Yjs queues
      // transactions started from observers), so its update follows the delete's.
      doc.transact(() => {
        const meta = doc.getMap<number>(META_MAP_NAME)
        const previous = meta.get(DELETE_MARKER_KEY)
        meta.set(DELETE_MARKER_KEY, (typeof previous === 'number' ? previous : 0) + 1)
      }, DELETE_MARKER_ORIGIN)
    }
    this.recompute()
  }
}
