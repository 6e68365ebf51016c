/**
 * Encoders for what the relay fans out. An update or awareness change is
 * encoded once per wire format and reused for every peer that receives it.
 *
 * @module connections/encode
 */
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, encodeAuthors, startMessage, type AuthorInfo } from '@concord/engine/protocol'

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

/**
 * Largest body of one `authors` message, bytes (the doc name comes on top).
 * A doc's bindings go out in as many parts as needed, so no `authors`
 * message comes near the send limits however many bindings a doc has.
 */
export const MAX_AUTHORS_PART_BYTES = 64 * 1024

const authorParts = new WeakMap<readonly AuthorInfo[], Uint8Array[]>()

/** Encoded size of one binding in an `authors` message. */
const bindingBytes = (a: AuthorInfo): number => {
  const userId = Buffer.byteLength(a.userId)
  const name = Buffer.byteLength(a.name)
  return varUintBytes(a.clientId) + varUintBytes(userId) + userId + varUintBytes(name) + name
}

const varUintBytes = (n: number): number => {
  let bytes = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    bytes++
  }
  return bytes
}

/**
 * Multiplexed `authors` messages carrying `authors` for `doc`, each body at
 * most {@link MAX_AUTHORS_PART_BYTES} (a binding is at most a few KiB: user
 * ids and names are bounded). Encoded once per array and reused for every
 * peer that receives it.
 */
export const muxAuthorsMessages = (doc: string, authors: readonly AuthorInfo[]): Uint8Array[] => {
  let parts = authorParts.get(authors)
  if (!parts) {
    parts = []
    let start = 0
    let bytes = varUintBytes(authors.length)
    for (let i = 0; i < authors.length; i++) {
      const size = bindingBytes(authors[i])
      if (i > start && bytes + size > MAX_AUTHORS_PART_BYTES) {
        parts.push(encodeAuthors(doc, authors.slice(start, i)))
        start = i
        bytes = varUintBytes(authors.length)
      }
      bytes += size
    }
    if (authors.length > start) parts.push(encodeAuthors(doc, authors.slice(start)))
    authorParts.set(authors, parts)
  }
  return parts
}
