/**
 * State-vector arithmetic used for durable acknowledgements.
 *
 * Pending changes are "local state minus acked state": for every Yjs client
 * id this device wrote with, the clock ticks the local doc holds beyond what
 * the relay has durably stored. Deriving pending from state vectors (not counters) keeps it right
 * across reconnects, duplicate sends and reloads.
 *
 * @module protocol/stateVector
 */
import * as Y from 'yjs'

export type StateVector = Map<number, number>

/** Decodes an encoded state vector. */
export const decodeStateVector = (encoded: Uint8Array): StateVector => Y.decodeStateVector(encoded)

/** The state vector of a doc as a Map (what `Y.encodeStateVector` encodes, read from the doc's store without encoding it). */
export const stateVectorOf = (doc: Y.Doc): StateVector => {
  const vector: StateVector = new Map()
  doc.store.clients.forEach((structs, client) => {
    const last = structs[structs.length - 1]
    if (last !== undefined) vector.set(client, last.id.clock + last.length)
  })
  return vector
}

/**
 * Clock ticks in `local` that `acked` does not cover, summed over all client
 * ids, or over the client ids in `only` (e.g. this device's own).
 */
export const countMissing = (local: StateVector, acked: StateVector, only?: ReadonlySet<number>): number => {
  let missing = 0
  for (const [client, clock] of local) {
    if (only !== undefined && !only.has(client)) continue
    const ackedClock = acked.get(client) ?? 0
    if (clock > ackedClock) missing += clock - ackedClock
  }
  return missing
}

/** Client ids whose local clock is ahead of the acked clock. */
export const clientsAhead = (local: StateVector, acked: StateVector): number[] => {
  const ahead: number[] = []
  for (const [client, clock] of local) {
    if (clock > (acked.get(client) ?? 0)) ahead.push(client)
  }
  return ahead
}

/** Merges two state vectors, keeping the larger clock per client. */
export const maxStateVector = (a: StateVector, b: StateVector): StateVector => {
  const out = new Map(a)
  for (const [client, clock] of b) {
    if (clock > (out.get(client) ?? 0)) out.set(client, clock)
  }
  return out
}
