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
