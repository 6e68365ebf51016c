/**
 * Encoders for what the relay fans out. An update, an awareness change or an
 * ack is encoded once per wire format and the same bytes go to every peer
 * that receives it: a room sends it to its peers one after another, so each
 * encoder keeps the message it made last ({@link LastMessage}) and hands it
 * out again while it is asked for the same input.
 *
 * @module connections/encode
 */
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, encodeAck, encodeAuthors, startMessage, type AuthorInfo } from '@concord/engine/protocol'

/**
 * The message an encoder made last, with what it was made from (a doc name
 * and bytes, compared by identity: the relay never changes bytes it fans
 * out).
 */
class LastMessage {
  private doc = ''
  private input: Uint8Array | null = null
  private message: Uint8Array = new Uint8Array(0)

  constructor(private readonly encode: (doc: string, input: Uint8Array) => Uint8Array) {}

  /** The message for `doc` and `input`: the last one again, or a new one. */
  get(doc: string, input: Uint8Array): Uint8Array {
    if (input !== this.input || doc !== this.doc) {
      this.message = this.encode(doc, input)
      this.doc = doc
      this.input = input
    }
    return this.message
  }
}

const muxUpdates = new LastMessage((doc, update) => {
  const encoder = startMessage(MessageType.sync, doc)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
})

const ywsUpdates = new LastMessage((_doc, update) => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.sync)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
})

const muxAwareness = new LastMessage((doc, update) => {
  const encoder = startMessage(MessageType.awareness, doc)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
})

const ywsAwareness = new LastMessage((_doc, update) => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.awareness)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
})

const muxAcks = new LastMessage(encodeAck)

/** Multiplexed `sync` message carrying a Yjs update for `doc`. */
export const muxUpdateMessage = (doc: string, update: Uint8Array): Uint8Array => muxUpdates.get(doc, update)

/** y-websocket `sync` message carrying a Yjs update. */
export const ywsUpdateMessage = (update: Uint8Array): Uint8Array => ywsUpdates.get('', update)

/** Multiplexed `awareness` message. */
export const muxAwarenessMessage = (doc: string, update: Uint8Array): Uint8Array => muxAwareness.get(doc, update)

/** y-websocket `awareness` message. */
export const ywsAwarenessMessage = (update: Uint8Array): Uint8Array => ywsAwareness.get('', update)

/** Multiplexed `ack` message: `doc` is durable up to `stateVector` (a room acks all its peers with one). */
export const muxAckMessage = (doc: string, stateVector: Uint8Array): Uint8Array => muxAcks.get(doc, stateVector)

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
