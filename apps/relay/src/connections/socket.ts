/**
 * What the relay's connections use of a WebSocket, and nothing more. The
 * relay hands them real `ws` sockets, which satisfy this type structurally;
 * anything else that does (an in-memory pair in a test, another server
 * library behind an adapter) can carry a connection too.
 *
 * @example
 * ```ts
 * wss.handleUpgrade(req, socket, head, (ws) => {
 *   new MuxConnection(ws, ctx, log, identity) // a `ws` WebSocket is a RelaySocket
 * })
 * ```
 *
 * @module connections/socket
 */

/** A server-side WebSocket as the relay's connections see it. */
export interface RelaySocket {
  /** `readyState` of an open socket. */
  readonly OPEN: number
  /** `readyState` of a socket whose closing handshake is under way. */
  readonly CLOSING: number
  /** `readyState` of a closed socket. */
  readonly CLOSED: number
  /** One of {@link OPEN}, {@link CLOSING}, {@link CLOSED} (or connecting). */
  readonly readyState: number
  /** Bytes handed to {@link send} and not written to the network yet. */
  readonly bufferedAmount: number
  /** How binary messages are delivered; the relay sets `'nodebuffer'` (each message one Buffer). */
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments'
  /** Sends one binary message; `sent` is called once it was written out (with an error if it never will be). */
  send(data: Uint8Array, sent?: (error?: Error) => void): void
  /** Starts the closing handshake with a code and a reason of at most 123 bytes. */
  close(code: number, reason: string): void
  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void
  /** Sends a ping; the peer answers with a pong. Throws when the socket is not open. */
  ping(): void
  /** A message arrived: binary (a Buffer with `binaryType` `'nodebuffer'`) or text. */
  on(event: 'message', listener: (data: Uint8Array, isBinary: boolean) => void): unknown
  /** The peer answered a ping. */
  on(event: 'pong', listener: () => void): unknown
  /** The socket closed, with the close code and reason the peer sent. */
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown
  /** The socket failed; a `close` follows. */
  on(event: 'error', listener: (error: Error) => void): unknown
}
