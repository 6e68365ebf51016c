/**
 * Handling of the y-protocols part of a doc message (types 0–3), shared by the
 * multiplexed and the y-websocket connection. The caller has already read the
 * message type (and, on the multiplexed endpoint, the doc name) and decides
 * what to send back from the returned result.
 *
 * Sync messages are read here instead of with `syncProtocol.readSyncMessage`
 * because that function swallows errors from `Y.applyUpdate`; the relay must
 * see them to close the offending connection.
 *
 * @module connections/docMessages
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType } from '@concord/engine/protocol'
import type { ClaimedUser, Room, RoomPeer } from '../rooms/Room.js'
import type { MessageKind, RefusalReason } from '../observability/metrics.js'
import { validateStateVector, validateUpdateWithItems } from '../security/validateUpdate.js'
import { awarenessEntryCount } from '../security/awarenessFilter.js'

/** The metrics kind of each doc message type (types 0–3). */
export const DOC_MESSAGE_KINDS: Readonly<Record<number, MessageKind>> = {
  [MessageType.sync]: 'sync',
  [MessageType.awareness]: 'awareness',
  [MessageType.auth]: 'auth',
  [MessageType.queryAwareness]: 'query-awareness',
}

/** Thrown for input the relay refuses; the message is the close reason. */
export class ProtocolError extends Error {}

/** What the connection may do with the doc. */
export interface DocPolicy {
  /** False for read-only access: updates are refused. */
  readonly writable: boolean
  /** Largest stored size of a doc, bytes. */
  maxDocBytes: number
  /** Largest step 2 sent as one message, bytes; larger ones are sent in parts. */
  initialSyncChunkBytes: number
  /** Largest awareness state, bytes. */
  maxAwarenessStateBytes: number
  /** Most entries in one awareness message; a longer message is refused whole. */
  maxAwarenessEntries: number
  /** Most awareness client ids the connection may hold in the doc. */
  maxAwarenessIds: number
  /** Takes an awareness rate-limit token; false when over the rate. */
  takeAwarenessToken(): boolean
  /** Charges Yjs apply time (ms) to the connection; false once its budget is spent. */
  chargeApplyTime(ms: number): boolean
}

/** What a doc message turned out to be. */
export type DocMessageResult =
  | { kind: 'step2' | 'update' | 'query-awareness' | 'auth' | 'unknown' }
  /** An awareness update applied; without auth, `claimed` is who its states say the client is (if they say). */
  | { kind: 'awareness'; claimed: ClaimedUser | null }
  /** A sync step 1, answered by `reply` (a complete message carrying the step 2). */
  | { kind: 'step1'; reply: Uint8Array }
  /**
   * A sync step 1 whose answer (`update`, `bytes` long) is larger than a
   * chunk: the caller sends it in parts (connections/initialSync), the last
   * one as the step 2.
   */
  | { kind: 'step1-parts'; stateVector: Uint8Array; update: Uint8Array }
  /** An update the relay did not (fully) apply; nothing of it is acked. */
  | { kind: 'refused'; reason: RefusalReason; detail: string; resync?: boolean }
  /** The connection spent its apply-time budget: close it. */
  | { kind: 'over-budget'; detail: string }

/**
 * Handles one doc message of type 0–3 on behalf of `peer`: sync step 1 is
 * answered with a step 2 written after `startReply()`'s header (returned as
 * `reply` with the result `'step1'`; the caller sends it), or, when larger
 * than a chunk, returned as `'step1-parts'` for the caller to send in parts,
 * step 2 and updates are applied if `policy` allows, awareness is applied
 * through the room's ownership filter, query-awareness is answered. Throws
 * {@link ProtocolError} or a decoding error on malformed input.
 */
export const readDocMessage = (
  room: Room,
  peer: RoomPeer,
  type: number,
  body: decoding.Decoder,
  startReply: () => encoding.Encoder,
  policy: DocPolicy,
): DocMessageResult => {
  switch (type) {
    case MessageType.sync:
      return readSync(room, peer, body, startReply, policy)
    case MessageType.awareness: {
      const update = decoding.readVarUint8Array(body)
      if (!policy.takeAwarenessToken()) {
        return { kind: 'refused', reason: 'awareness-rate-limit', detail: 'awareness updates come too fast' }
      }
      let entries: number
      try {
        entries = awarenessEntryCount(update)
      } catch (error) {
        throw new ProtocolError(`invalid awareness update: ${(error as Error).message}`)
      }
      if (entries > policy.maxAwarenessEntries) {
        return {
          kind: 'refused',
          reason: 'awareness-too-many-entries',
          detail: `awareness update with ${entries} entries; at most ${policy.maxAwarenessEntries} per message: nothing of it was applied`,
        }
      }
      let result: ReturnType<Room['applyPeerAwareness']>
      try {
        result = room.applyPeerAwareness(peer, update, policy.maxAwarenessStateBytes, policy.maxAwarenessIds)
      } catch (error) {
        throw new ProtocolError(`invalid awareness update: ${(error as Error).message}`)
      }
      if (result.tooLarge > 0) {
        return {
          kind: 'refused',
          reason: 'awareness-too-large',
          detail: `awareness state larger than ${policy.maxAwarenessStateBytes} bytes`,
        }
      }
      if (result.overIds > 0) {
        return {
          kind: 'refused',
          reason: 'awareness-too-many-ids',
          detail: `at most ${policy.maxAwarenessIds} awareness client ids per connection and doc; ${result.overIds} new id(s) ignored`,
        }
      }
      if (result.overBytes > 0) {
        return {
          kind: 'refused',
          reason: 'awareness-too-many-ids',
          detail: `the awareness states of this connection would exceed ${peer.awarenessBytes.max} bytes; ${result.overBytes} state(s) ignored`,
        }
      }
      if (result.forged > 0) {
        return {
          kind: 'refused',
          reason: 'forged-awareness',
          detail: `awareness for ${result.forged} client id(s) owned by another connection`,
        }
      }
      return { kind: 'awareness', claimed: result.claimed }
    }
    case MessageType.queryAwareness: {
      const states = room.encodeAllAwareness()
      if (states) peer.sendAwareness(room, states)
      return { kind: 'query-awareness' }
    }
    case MessageType.auth:
      return { kind: 'auth' }
    default:
      return { kind: 'unknown' }
  }
}

const readSync = (
  room: Room,
  peer: RoomPeer,
  body: decoding.Decoder,
  startReply: () => encoding.Encoder,
  policy: DocPolicy,
): DocMessageResult => {
  const subtype = decoding.readVarUint(body)
  switch (subtype) {
    case syncProtocol.messageYjsSyncStep1: {
      const stateVector = decoding.readVarUint8Array(body)
      const valid = validateStateVector(stateVector)
      if (!valid.ok) throw new ProtocolError(`invalid state vector: ${valid.reason}`)
      const update = room.encodeState(stateVector)
      if (update.byteLength > policy.initialSyncChunkBytes) return { kind: 'step1-parts', stateVector, update }
      const reply = startReply()
      encoding.writeVarUint(reply, syncProtocol.messageYjsSyncStep2)
      encoding.writeVarUint8Array(reply, update)
      return { kind: 'step1', reply: encoding.toUint8Array(reply) }
    }
    case syncProtocol.messageYjsSyncStep2:
    case syncProtocol.messageYjsUpdate: {
      const update = decoding.readVarUint8Array(body)
      // Yjs trusts the counts and lengths in an update (yjs#687): check the
      // structure, in linear time, before any Yjs code sees the bytes.
      // (with its items, which the check against the doc may need: one pass over the bytes)
      const valid = validateUpdateWithItems(update, room.updateLimits)
      if (!valid.ok) throw new ProtocolError(`invalid Yjs update: ${valid.reason}`)
      if (!policy.writable) {
        return { kind: 'refused', reason: 'permission', detail: 'read-only access: updates are not accepted' }
      }
      if (room.byteSize + update.byteLength > policy.maxDocBytes) {
        return {
          kind: 'refused',
          reason: 'doc-too-large',
          detail: `the doc would exceed ${policy.maxDocBytes} bytes; the update was not applied`,
        }
      }
      let outcome: ReturnType<Room['applyPeerUpdate']>
      const started = performance.now()
      try {
        outcome = room.applyPeerUpdate(peer, update, valid)
      } catch (error) {
        throw new ProtocolError(`invalid Yjs update: ${(error as Error).message}`)
      }
      if (!policy.chargeApplyTime(performance.now() - started)) {
        return { kind: 'over-budget', detail: 'updates cost the relay too much time to apply; reconnect later' }
      }
      if (typeof outcome === 'object' && 'refused' in outcome) {
        return { kind: 'refused', reason: 'invalid-update', detail: `${outcome.refused}; the update was not applied` }
      }
      if (typeof outcome === 'object') {
        return {
          kind: 'refused',
          reason: 'forged-author',
          detail: `Yjs client id ${outcome.forgedClientId} belongs to another user; the update was not applied`,
        }
      }
      if (outcome === 'missing-dependencies') {
        return {
          kind: 'refused',
          reason: 'missing-dependencies',
          detail: 'the update depends on changes the relay does not have; send them (resync)',
          resync: true,
        }
      }
      return { kind: subtype === syncProtocol.messageYjsUpdate ? 'update' : 'step2' }
    }
    default:
      throw new ProtocolError(`unknown sync message type ${subtype}`)
  }
}
