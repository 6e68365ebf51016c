/**
 * Pending changes of one doc: what this device wrote that the relay has not
 * durably stored yet.
 *
 *     pending = countMissing(localStateVector, ackedStateVector, ownClients)
 *
 * The relay sends `ack(doc, stateVector)` only after its storage commit
 * returned, and the acked vector covers everything it stored for the doc.
 * Deriving pending from state vectors (not from counting sent messages) keeps
 * it right across reconnects, duplicate sends, other tabs and reloads.
 *
 * ## Own client ids
 *
 * Only the Yjs client ids this device wrote with count. The relay acks a
 * client when a commit stored that client's updates (and once per
 * subscription), not when it stored someone else's: changes received from
 * the relay are on the relay, and they are pending only for their author.
 * A client id is own when
 *
 * - it was passed in (`ownClients`: persisted by the caller, so changes of
 *   an earlier session or of another tab stay pending until acked; without
 *   it, every client id the doc holds when the tracker starts, until the
 *   relay sends changes of one: a client id is one writer's, and the
 *   relay never sends a writer its own changes back, so that writer is
 *   elsewhere and its changes are not this device's to wait for), or
 * - {@link PendingTracker.addOwnClients} names it (e.g. another tab's edit), or
 * - an update whose origin is not in `notOwnOrigins` (the relay's, and
 *   whatever another party sends) advanced its clock: local edits, delete
 *   markers, updates loaded from storage. These are the updates the sync
 *   handle sends, and an update sent is acked to its sender.
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
import { countMissing, maxStateVector, stateVectorOf, type StateVector } from '../protocol/stateVector.js'
import { META_MAP_NAME } from '../model/metaMap.js'
import { DELETE_MARKER_ORIGIN } from '../model/origins.js'

/** Key of the delete marker inside {@link META_MAP_NAME}. */
export const DELETE_MARKER_KEY = 'd'

/** Options of {@link PendingTracker}. */
export interface PendingTrackerOptions {
  /** Origin of transactions applied from the relay. They never get a delete marker, and their client ids are not own. */
  remoteOrigin: unknown
  /**
   * Further origins whose updates do not make their client ids own (someone
   * else sends them; their writers are named with {@link PendingTracker.addOwnClients}
   * when they are this device's).
   */
  notOwnOrigins?: Iterable<unknown>
  /** Acked state vector to start from, e.g. one persisted next to the doc. Default: nothing acked. */
  acked?: StateVector
  /** Client ids this device wrote the doc with, e.g. persisted next to it. Default: every client id the doc holds now, until the relay sends changes of it. */
  ownClients?: Iterable<number>
}

/** Events of {@link PendingTracker}. */
export interface PendingTrackerEvents {
  /** The pending count changed. */
  pending: (count: number) => void
}

/** Tracks the pending count of one doc's own changes and writes delete markers. */
export class PendingTracker extends ObservableV2<PendingTrackerEvents> {
  readonly doc: Y.Doc
  private readonly remoteOrigin: unknown
  private readonly notOwnOrigins: ReadonlySet<unknown>
  private acked: StateVector
  /** Client ids whose changes count (see the module documentation). */
  private readonly own: Set<number>
  /** Own client ids only because the doc held them at the start (no `ownClients` given), until known either way. */
  private readonly assumed: Set<number>
  private count: number
  private destroyed = false

  constructor(doc: Y.Doc, options: PendingTrackerOptions) {
    super()
    this.doc = doc
    this.remoteOrigin = options.remoteOrigin
    this.notOwnOrigins = new Set(options.notOwnOrigins ?? [])
    this.acked = new Map(options.acked ?? [])
    this.own = new Set(options.ownClients ?? stateVectorOf(doc).keys())
    this.assumed = options.ownClients === undefined ? new Set(this.own) : new Set()
    this.count = this.compute()
    doc.on('update', this.onUpdate)
  }

  /** Clock ticks of this device's changes held locally that the relay has not durably stored. */
  get pending(): number {
    return this.count
  }

  /** Client ids whose changes count as this device's. */
  get ownClients(): ReadonlySet<number> {
    return this.own
  }

  /** Counts the changes of `clients` as this device's from now on (e.g. another tab's edits). */
  addOwnClients(clients: Iterable<number>): void {
    if (this.destroyed) return
    let added = false
    for (const client of clients) {
      this.assumed.delete(client)
      if (this.own.has(client)) continue
      this.own.add(client)
      added = true
    }
    if (added) this.recompute()
  }

  /**
   * What of the doc is not pending, per client id: the acked clock of own
   * client ids, the local clock of everyone else's (those are on the relay,
   * or their author sends them). A new map; send what the doc holds beyond it.
   */
  settledStateVector(): StateVector {
    const settled = new Map(this.acked)
    for (const [client, clock] of stateVectorOf(this.doc)) {
      if (!this.own.has(client) && clock > (settled.get(client) ?? 0)) settled.set(client, clock)
    }
    return settled
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
    return countMissing(stateVectorOf(this.doc), this.acked, this.own)
  }

  private readonly onUpdate = (_update: Uint8Array, origin: unknown, doc: Y.Doc, transaction: Y.Transaction): void => {
    if (origin !== this.remoteOrigin && !this.notOwnOrigins.has(origin)) {
      for (const [client, clock] of transaction.afterState) {
        if (clock <= (transaction.beforeState.get(client) ?? 0)) continue
        this.own.add(client)
        this.assumed.delete(client)
      }
    } else if (origin === this.remoteOrigin && this.assumed.size > 0) {
      // the relay sent changes of a client id assumed own: its writer is elsewhere
      for (const [client, clock] of transaction.afterState) {
        if (clock <= (transaction.beforeState.get(client) ?? 0) || !this.assumed.has(client)) continue
        this.assumed.delete(client)
        this.own.delete(client)
      }
    }
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
