/**
 * Encoders for what the relay fans out. An update or awareness change is
 * encoded once per wire format and reused for every peer that receives it.
 *
 * @module connections/encode
 */
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, startMessage } from '@concord/engine/protocol'

const muxUpdates = new WeakMap<Uint8Array, Uint8Array>()
const ywsUpdates = new WeakMap<Uint8Array, Uint8Array>()
const muxAwareness = new WeakMap<Uint8Array, Uint8Array>()
const ywsAwareness = new WeakMap<Uint8Array, Uint8Array>()

/** Multiplexed `sync` message carrying a Yjs update for `doc`. */
export const muxUpdateMessage = (doc: string, update: Uint8Array): Uint8Array => {
  let message = muxUpdates.get(update)
  if (!message) {
    const encoder = startMessage(MessageType.sync, doc)
    syncProtocol.writeUpdate(encoder, update)
    muxUpdates.set(update, (message = encoding.toUint8Array(encoder)))
  }
  return message
}

/** y-websocket `sync` message carrying a Yjs update. */
export const ywsUpdateMessage = (update: Uint8Array): Uint8Array => {
  let message = ywsUpdates.get(update)
  if (!message) {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.sync)
    syncProtocol.writeUpdate(encoder, update)
    ywsUpdates.set(update, (message = encoding.toUint8Array(encoder)))
  }
  return message
}

/** Multiplexed `awareness` message. */
export const muxAwarenessMessage = (doc: string, update: Uint8Array): Uint8Array => {
  let message = muxAwareness.get(update)
  if (!message) {
    const encoder = startMessage(MessageType.awareness, doc)
    encoding.writeVarUint8Array(encoder, update)
    muxAwareness.set(update, (message = encoding.toUint8Array(encoder)))
  }
  return message
}

/** y-websocket `awareness` message. */
export const ywsAwarenessMessage = (update: Uint8Array): Uint8Array => {
  let message = ywsAwareness.get(update)
  if (!message) {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.awareness)
    encoding.writeVarUint8Array(encoder, update)
    ywsAwareness.set(update, (message = encoding.toUint8Array(encoder)))
  }
  return message
}
