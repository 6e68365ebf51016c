/**
 * What the relay's connections use of a WebSocket, and nothing more. The
 * relay hands them real `ws` sockets, which satisfy this type structurally;
 * anything else that does (an in-memory pair in a test, another server
 * library behind an adapter) can carry a connection too.
 *
 * A `ws` socket also shows the relay its network stream (`_socket`, see
 * {@link RelaySocket._socket}): the relay then frames messages itself and
 * writes all of one event-loop turn at once (connections/SocketWriter). A
 * socket without one gets each message through {@link RelaySocket.send}.
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

/** The network stream under a WebSocket (a `net.Socket`), as the relay writes frames to it. */
export interface NetworkStream {
  /** Holds writes in memory until as many {@link uncork} calls. */
  cork(): void
  /** Ends one {@link cork}; the last one writes everything held, in one system call where it can. */
  uncork(): void
  /** Writes bytes (held while corked); `written` is called once they were handed to the system, or with an error. */
  write(chunk: Uint8Array, written?: (error?: Error | null) => void): boolean
}

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
  /** Bytes handed to {@link send} (or written to {@link _socket}) and not taken by the network yet. */
  readonly bufferedAmount: number
  /**
   * Extensions negotiated with the peer (`''` for none). The relay negotiates
   * none; frames are written directly only then (an extension such as
   * per-message compression would change them).
   */
  readonly extensions?: string
  /**
   * The network stream of a `ws` socket (a field of `ws` outside its typed
   * API). Present with no {@link extensions}: the relay writes its frames to
   * it, in the order of everything `ws` writes there itself (pings, the close
   * frame). Absent: every message goes through {@link send}.
   */
  readonly _socket?: NetworkStream | null
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
