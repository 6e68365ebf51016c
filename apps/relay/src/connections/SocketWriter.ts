/**
 * How a connection's messages reach its socket.
 *
 * On a `ws` socket (one that shows its network stream, see
 * connections/socket) the relay frames each message itself and writes all
 * messages due to the socket within one event-loop turn at once: the stream
 * is corked at the turn's first write and uncorked once, on `setImmediate`,
 * so deliveries, acks and awareness for one socket share one system call
 * under load instead of costing one each. A server's frame of a message is
 * the same bytes for every socket (nothing is masked), so a message fanned
 * out to N sockets is framed once ({@link frameOf} keeps the last one).
 *
 * The relay's frames and what `ws` writes itself (pings, pongs, the close
 * frame) reach the stream in the order they are made: without extensions
 * `ws` writes each frame at once (it queues only while compressing or
 * reading a Blob, which the relay never asks of it), into the same corked
 * stream, so a close frame still follows the messages sent before it.
 *
 * A batch that reaches {@link MAX_BATCH_BYTES} is written at once (and the
 * turn goes on with a new one), so what a socket holds in memory stays small.
 * After every batch the connection's `written` hook runs: the send buffer
 * then holds only what the peer has not read, which is what the slow-reader
 * guard measures (connections/Connection).
 *
 * Other sockets (an in-memory pair in tests) get each message through their
 * `send`, at once, and the hook runs after each.
 *
 * @example
 * ```ts
 * const writer = new SocketWriter(ws, () => checkSendBuffer())
 * writer.write(message) // goes out with everything else due to `ws` this turn
 * writer.write(part, (error) => next(error)) // called once the part left for the network
 * ```
 *
 * @module connections/SocketWriter
 */
// the module's own `setImmediate`, not the global: a test that fakes the global clock must not hold sockets corked
import { setImmediate } from 'node:timers'
import type { NetworkStream, RelaySocket } from './socket.js'

/** Bytes one socket's batch may hold before it is written without waiting for the end of the turn. */
export const MAX_BATCH_BYTES = 64 * 1024

/** Largest payload copied into its frame; a larger one goes out as header and payload (no copy). */
const MAX_MERGED_PAYLOAD = 16 * 1024

/** First byte of every frame the relay writes: FIN, opcode 2 (binary); no extension bits. */
const FIN_BINARY = 0x82

/** Writers holding a batch this turn, in the order they started it. */
let holding: SocketWriter[] = []

/** Writes every batch held this turn (on `setImmediate`). */
const endTurn = (): void => {
  const writers = holding
  holding = []
  for (const writer of writers) writer.endTurn()
}

/** Writes one connection's messages to its socket; see the module documentation. */
export class SocketWriter {
  /** The stream the relay frames and writes to, or null when messages go through `send`. */
  private readonly stream: NetworkStream | null
  /** True while this writer holds the stream corked. */
  private corked = false
  /** True while this writer is in {@link holding}. */
  private listed = false
  /** Payload bytes written into the batch held now. */
  private batchBytes = 0

  constructor(
    private readonly ws: RelaySocket,
    /** Called after each batch was handed to the stream (after each message without one). */
    private readonly written: () => void,
  ) {
    const stream = ws._socket
    this.stream = stream && (ws.extensions ?? '') === '' ? stream : null
  }

  /**
   * Writes one binary message; the caller has checked that the socket is
   * open. `sent` is called once it was handed to the network (with an error
   * if it never will be).
   */
  write(data: Uint8Array, sent?: (error?: Error | null) => void): void {
    const stream = this.stream
    if (stream === null) {
      this.ws.send(data, sent)
      this.written()
      return
    }
    if (!this.corked) {
      stream.cork()
      this.corked = true
      if (!this.listed) {
        this.listed = true
        if (holding.length === 0) setImmediate(endTurn)
        holding.push(this)
      }
    }
    writeFrame(stream, data, sent)
    this.batchBytes += data.byteLength
    if (this.batchBytes >= MAX_BATCH_BYTES) this.writeBatch()
  }

  /** @internal Called by the turn's end: writes what this writer holds. */
  endTurn(): void {
    this.listed = false
    if (this.corked) this.writeBatch()
  }

  /** Uncorks the stream (writing the batch) and runs the `written` hook. */
  private writeBatch(): void {
    this.corked = false
    this.batchBytes = 0
    this.stream!.uncork()
    this.written()
  }
}

/** The last payload framed, and its frame (see {@link frameOf}). */
let lastPayload: Uint8Array | null = null
let lastFrame: Buffer = Buffer.alloc(0)

/**
 * The frame of a payload of at most {@link MAX_MERGED_PAYLOAD} bytes: header
 * and payload in one buffer. The last one is kept, so a message sent to many
 * sockets in a row is framed once. Payloads are never changed once sent.
 */
export const frameOf = (payload: Uint8Array): Buffer => {
  if (payload === lastPayload) return lastFrame
  const header = headerOf(payload.byteLength)
  const frame = Buffer.allocUnsafe(header.byteLength + payload.byteLength)
  frame.set(header, 0)
  frame.set(payload, header.byteLength)
  lastPayload = payload
  lastFrame = frame
  return frame
}

/** The header of an unmasked, final binary frame carrying `length` payload bytes (RFC 6455 §5.2). */
export const headerOf = (length: number): Buffer => {
  if (length < 126) return Buffer.of(FIN_BINARY, length)
  if (length < 0x10000) {
    const header = Buffer.allocUnsafe(4)
    header[0] = FIN_BINARY
    header[1] = 126
    header.writeUInt16BE(length, 2)
    return header
  }
  const header = Buffer.allocUnsafe(10)
  header[0] = FIN_BINARY
  header[1] = 127
  header.writeUInt32BE(0, 2)
  header.writeUInt32BE(length, 6)
  return header
}

/** Writes `payload` as one frame; `sent` is called once all of it was handed to the network. */
const writeFrame = (stream: NetworkStream, payload: Uint8Array, sent?: (error?: Error | null) => void): void => {
  if (payload.byteLength <= MAX_MERGED_PAYLOAD) {
    stream.write(frameOf(payload), sent)
    return
  }
  stream.write(headerOf(payload.byteLength))
  stream.write(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), sent)
}
