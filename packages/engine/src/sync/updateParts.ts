/**
 * Splits a large Yjs update (v1) into parts, so that a catch-up of a long
 * offline backlog goes to the relay in bounded parts, each sent once the
 * previous one is acked, instead of as one message:
 *
 * - one message larger than the relay's `maxPayload` would be refused, and
 *   the backlog would never leave the device;
 * - the relay applies a message in one go, so a huge one holds it up (and
 *   may cost more than a connection's apply budget) while bounded parts keep
 *   each apply short.
 *
 * A part holds whole structs (a struct is never cut): per Yjs client id,
 * consecutive clocks from where the update starts, and never a struct that
 * builds on (left or right origin, parent) a struct of a later part — the
 * structs are taken in an order that follows those references across
 * client ids. The update's delete set goes with the last part. Applied in
 * order onto what the update was made against, each part integrates at once
 * and the parts make the update.
 *
 * @example
 * ```ts
 * const [first, ...rest] = splitUpdate(Y.encodeStateAsUpdate(doc, relayStateVector), 1000, 256 * 1024)
 * send(first.update) // and each of `rest` once an ack covers the previous part's `end`
 * ```
 *
 * @module sync/updateParts
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import type { StateVector } from '../protocol/stateVector.js'

/** One part of an update. */
export interface UpdatePart {
  /** The part, a Yjs update (v1). */
  readonly update: Uint8Array
  /** Per client id, the clock after the part's last struct of that client. */
  readonly end: StateVector
  /** Structs in the part (items, GC, skips); null for an update too small to hold more than one part, which is not decoded. */
  readonly structs: number | null
}

/** A struct as `Y.decodeUpdate` returns it (Item, GC or Skip): all can write themselves. */
type Struct = ReturnType<typeof Y.decodeUpdate>['structs'][number]
/** A delete set as `Y.decodeUpdate` returns it. */
type DeleteSet = ReturnType<typeof Y.decodeUpdate>['ds']

/**
 * Each struct's bytes as an update holds them, in the order given: views
 * into one buffer, each struct written once (V1 writes a struct the same
 * wherever it is).
 */
const encodeEach = (structs: readonly Struct[]): Uint8Array[] => {
  const encoder = new Y.UpdateEncoderV1()
  const ends: number[] = []
  for (const struct of structs) {
    struct.write(encoder, 0)
    ends.push(encoding.length(encoder.restEncoder))
  }
  const bytes = encoding.toUint8Array(encoder.restEncoder)
  return ends.map((end, i) => bytes.subarray(i === 0 ? 0 : ends[i - 1], end))
}

/**
 * Encodes `structs` (in update order; `encoded[i]` the bytes of
 * `structs[i]`) as an update, with `ds` as its delete set (empty when null).
 * The layout: the number of clients, then per client its struct count, id
 * and first clock, then its structs; then per client in the delete set its
 * id and deleted ranges.
 */
const encodePart = (structs: readonly Struct[], encoded: readonly Uint8Array[], ds: DeleteSet | null): UpdatePart => {
  const byClient = new Map<number, number[]>()
  structs.forEach((struct, i) => {
    const run = byClient.get(struct.id.client)
    if (run === undefined) byClient.set(struct.id.client, [i])
    else run.push(i)
  })
  const runs = [...byClient.values()]
  const encoder = new Y.UpdateEncoderV1()
  const out = encoder.restEncoder
  encoding.writeVarUint(out, runs.length)
  const end: StateVector = new Map()
  for (const run of runs) {
    const first = structs[run[0]]
    encoding.writeVarUint(out, run.length)
    encoder.writeClient(first.id.client)
    encoding.writeVarUint(out, first.id.clock)
    for (const i of run) encoding.writeUint8Array(out, encoded[i])
    const last = structs[run[run.length - 1]]
    end.set(last.id.client, last.id.clock + last.length)
  }
  const deleted = ds === null ? [] : [...ds.clients].filter(([, ranges]) => ranges.length > 0)
  encoding.writeVarUint(out, deleted.length)
  for (const [client, ranges] of deleted) {
    encoding.writeVarUint(out, client)
    encoding.writeVarUint(out, ranges.length)
    for (const range of ranges) {
      encoding.writeVarUint(out, range.clock)
      encoding.writeVarUint(out, range.len)
    }
  }
  return { update: encoder.toUint8Array(), end, structs: structs.length }
}

/** The ids a struct builds on: its origins and, for an item whose parent is an item, the parent. */
const referencedIds = (struct: Struct): Array<{ client: number; clock: number }> => {
  if (!(struct instanceof Y.Item)) return []
  const ids = [struct.origin, struct.rightOrigin]
  if (struct.parent instanceof Y.ID) ids.push(struct.parent)
  return ids.filter((id) => id !== null)
}

/**
 * The structs of one update (in its order: per client id, by clock) in an
 * order in which every struct comes after the structs of the update it
 * references: client by client, each as far as its next struct references
 * nothing still to come. References to structs before the update's start
 * (what it was made against) or to client ids it does not hold are met.
 */
const inDependencyOrder = (structs: readonly Struct[]): Struct[] => {
  const queues = new Map<number, Struct[]>()
  for (const struct of structs) {
    const queue = queues.get(struct.id.client)
    if (queue === undefined) queues.set(struct.id.client, [struct])
    else queue.push(struct)
  }
  /** Per client id in the update, the clock up to which its structs are ordered (starts where the update starts). */
  const ordered = new Map([...queues].map(([client, queue]) => [client, queue[0].id.clock]))
  const next = new Map([...queues.keys()].map((client) => [client, 0]))
  const met = ({ client, clock }: { client: number; clock: number }): boolean => {
    const upTo = ordered.get(client)
    return upTo === undefined || clock < upTo
  }
  const result: Struct[] = []
  while (result.length < structs.length) {
    let progressed = false
    for (const [client, queue] of queues) {
      let i = next.get(client)!
      while (i < queue.length && referencedIds(queue[i]).every(met)) {
        result.push(queue[i])
        ordered.set(client, queue[i].id.clock + queue[i].length)
        i++
        progressed = true
      }
      next.set(client, i)
    }
    // A reference nothing in the update meets (not from a doc's own encoding): keep the update's order for the rest.
    if (!progressed) for (const [client, queue] of queues) result.push(...queue.slice(next.get(client)!))
  }
  return result
}

/**
 * Splits `update` into parts of at most `maxStructs` structs and
 * `maxBytes` bytes each (a part holds at least one struct, however large),
 * the last one with the update's delete set. An update no larger than
 * `maxBytes` with at most `maxStructs` structs comes back whole, as the only part.
 */
export const splitUpdate = (update: Uint8Array, maxStructs: number, maxBytes: number): UpdatePart[] => {
  const whole = (structs: number | null): UpdatePart[] => [
    { update, end: Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update)), structs },
  ]
  // Every struct takes more than a byte: an update this small holds fewer than `maxStructs`.
  if (update.byteLength <= Math.min(maxStructs, maxBytes)) return whole(null)
  const decoded = Y.decodeUpdate(update)
  if (decoded.structs.length <= maxStructs && update.byteLength <= maxBytes) return whole(decoded.structs.length)
  const structs = inDependencyOrder(decoded.structs)
  const encoded = encodeEach(structs)
  const ds = decoded.ds
  const parts: UpdatePart[] = []
  let start = 0
  let bytes = 0
  for (let i = 0; i < structs.length; i++) {
    const size = encoded[i].byteLength
    if (i > start && (i - start === maxStructs || bytes + size > maxBytes)) {
      parts.push(encodePart(structs.slice(start, i), encoded.slice(start, i), null))
      start = i
      bytes = 0
    }
    bytes += size
  }
  parts.push(encodePart(structs.slice(start), encoded.slice(start), ds))
  return parts
}
