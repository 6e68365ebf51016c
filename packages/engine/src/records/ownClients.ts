/**
 * Which Yjs client ids of a stored record wrote this device's changes: only
 * theirs count as pending (see `sync/PendingTracker`). Changes of other
 * client ids came from the relay and are pending only for their author.
 *
 * @example
 *   const own = ownClientsOf(stored.meta, stateVectorOf(doc), acked)
 *   const pending = countMissing(stateVectorOf(doc), acked, own)
 *
 * @module records/ownClients
 */
import { clientsAhead, type StateVector } from '../protocol/stateVector.js'
import type { RecordMeta } from '../persistence/Storage.js'

/**
 * The client ids a record's meta remembers as this device's; for a record
 * stored before they were remembered, every client id whose changes the
 * acked state vector does not cover (they may be this device's: nothing
 * that was is claimed synced).
 */
export const ownClientsOf = (meta: RecordMeta, local: StateVector, acked: StateVector): Set<number> =>
  new Set(meta.ownClients ?? clientsAhead(local, acked))
