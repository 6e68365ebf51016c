/**
 * Handling of the y-protocols part of a doc message (types 0–3), shared by the
 * multiplexed and the y-websocket connection. The caller has already read the
 * message type (and, on the multiplexed endpoint, the doc name).
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
import type { Room, RoomPeer } from '../rooms/Room.js'

/** What a sync message turned out to be. */
export type SyncKind = 'step1' | 'step2' | 'update'

/** Thrown for input the relay refuses; the message is the close reason. */
export class ProtocolError extends Error {}

/**
 * Reads one sync message. For step 1, writes the step-2 reply into `reply`.
 * For step 2 / update, applies the update to the room on behalf of `peer`.
 */
export const readSync = (
  room: Room,
  peer: RoomPeer,
  body: decoding.Decoder,
  reply: encoding.Encoder,
): SyncKind => {
  const subtype = decoding.readVarUint(body)
  switch (subtype) {
    case syncProtocol.messageYjsSyncStep1:
      syncProtocol.readSyncStep1(body, reply, room.doc)
      return 'step1'
    case syncProtocol.messageYjsSyncStep2:
    case syncProtocol.messageYjsUpdate: {
      const update = decoding.readVarUint8Array(body)
      try {
        room.applyPeerUpdate(peer, update)
      } catch (error) {
        throw new ProtocolError(`invalid Yjs update: ${(error as Error).message}`)
      }
      return subtype === syncProtocol.messageYjsUpdate ? 'update' : 'step2'
    }
    default:
      throw new ProtocolError(`unknown sync message type ${subtype}`)
  }
}

/** What a doc message (types 0–3) turned out to be. */
export type DocMessageKind = SyncKind | 'awareness' | 'query-awareness' | 'auth' | 'unknown'

/**
 * Handles one doc message of type 0–3 on behalf of `peer`: sync (step 1 is
 * answered into the encoder `startReply()` returns, which the caller sends when
 * the result is `'step1'`), awareness, and query-awareness. `auth` and unknown
 * types are left to the caller. Throws {@link ProtocolError} or a decoding
 * error on bad input.
 */
export const readDocMessage = (
  room: Room,
  peer: RoomPeer,
  type: number,
  body: decoding.Decoder,
  reply: encoding.Encoder,
): DocMessageKind => {
  switch (type) {
    case MessageType.sync:
      return readSync(room, peer, body, reply)
    case MessageType.awareness:
      room.applyPeerAwareness(peer, decoding.readVarUint8Array(body))
      return 'awareness'
    case MessageType.queryAwareness: {
      const states = room.encodeAllAwareness()
      if (states) peer.sendAwareness(room, states)
      return 'query-awareness'
    }
    case MessageType.auth:
      return 'auth'
    default:
      return 'unknown'
  }
}
