/**
 * The sync client's one socket to the relay: opening it, where its handshake
 * stands, the watchdog and ping timers, reconnecting with backoff, and the
 * browser's `online` hint. What arrives on the socket is handed to the
 * client undecoded; what the messages mean is not this module's business.
 *
 *     offline ──connect──▶ connecting ──handshake completed──▶ online
 *        ▲                     │                                 │
 *        └──── socket lost / silent relay (backoff timer) ◀──────┘
 *
 * - The handshake (the relay's `hello`, then `authenticated` when a token is
 *   used) is read by the client, which calls {@link RelayConnection.handshakeCompleted}.
 * - Reconnects use exponential backoff with full jitter and a cap; the backoff
 *   restarts after a completed handshake, on {@link RelayConnection.reconnect}
 *   and on the browser's `online` event.
 * - The watchdog reconnects when nothing arrived for `timeout` ms, also while
 *   connecting; `ping` goes out every `pingInterval` ms while online.
 * - A permanent refusal ({@link RelayConnection.halt}) stops reconnecting until
 *   {@link RelayConnection.reconnect}.
 *
 * @module sync/RelayConnection
 */
import { deflateSync } from 'fflate'
import { ErrorCode, encodeBatches, encodePing } from '../protocol/messages.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { SocketState, type WebSocketConstructor, type WebSocketLike } from './socket.js'
import { SyncError, describeError } from './SyncError.js'

/** Connection states of a {@link SyncClient}, as it reports them (`client.status`, the `status` event). */
export const ConnectionStatus = {
  /** A socket is being opened, or it is open and the relay's `hello` has not arrived yet. */
  connecting: 'connecting',
  /** The relay answered on the current socket; docs sync. */
  online: 'online',
  /** No socket: waiting for the next reconnect attempt, halted, or closed. */
  offline: 'offline',
} as const
export type ConnectionStatus = (typeof ConnectionStatus)[keyof typeof ConnectionStatus]

/**
 * Where the current socket stands. Unlike {@link ConnectionStatus} this
 * changes the moment the socket does; the reported status follows at the
 * points the client's events are defined for (e.g. the docs hear of a lost
 * socket before the status turns `offline`).
 */
export const SocketPhase = {
  /** No socket. A reconnect is planned unless the connection is halted or closed. */
  offline: 'offline',
  /** A socket is open or opening; the relay has not completed the handshake on it. */
  connecting: 'connecting',
  /** The relay completed the handshake on the current socket: docs, watches and requests go out. */
  online: 'online',
} as const
export type SocketPhase = (typeof SocketPhase)[keyof typeof SocketPhase]

/** Timing and transport of a {@link RelayConnection}. Durations are in milliseconds. */
export interface RelayConnectionOptions {
  /** URL of the multiplexed endpoint (see `relayUrl`). */
  url: string
  /** WebSocket class; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor
  /** Reconnect backoff. */
  reconnect?: BackoffOptions
  /** How often to send `ping` while online. Default 15 000. */
  pingInterval?: number
  /** Reconnect when nothing arrived from the relay for this long. Default 30 000. */
  timeout?: number
}

/** What the connection tells the client that owns it. */
export interface RelayConnectionHost {
  /** A frame arrived on the current socket (not decoded). */
  receive(data: unknown): void
  /** The current socket was dropped; its handlers are already detached. */
  socketDropped(): void
  /** The reported status changed. */
  statusChanged(status: ConnectionStatus): void
  /** A connection-level error (a socket could not be created). */
  reportError(error: SyncError): void
  /** A socket is about to be opened (the relay's `hello` on it comes after this moment). */
  socketOpening?(): void
}

/** The reconnecting socket of one sync client. See the module documentation. */
export class RelayConnection {
  private readonly url: string
  private readonly WebSocketImpl: WebSocketConstructor
  private readonly backoff: Backoff
  private readonly pingInterval: number
  private readonly timeout: number
  private readonly host: RelayConnectionHost
  /** The current socket: set exactly in the phases `connecting` and `online`. */
  private socket: WebSocketLike | null = null
  private phase: SocketPhase = SocketPhase.offline
  private currentStatus: ConnectionStatus = ConnectionStatus.connecting
  /**
   * The relay refused permanently (e.g. `unauthorized`) or the token provider
   * failed: when the socket goes, no reconnect is planned and the browser's
   * `online` hint is ignored, until {@link reconnect}. Kept apart from the
   * phase because it outlives sockets.
   */
  private halted = false
  /** {@link close} was called. Kept apart from the phase: the docs say goodbye on the socket after it is set. */
  private closed = false
  private lastMessageAt = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null
  private watchdogTimer: ReturnType<typeof setTimeout> | null = null
  private pingTimer: ReturnType<typeof setInterval> | null = null
  /** Messages sent inside {@link together}, sent in batches when it returns. */
  private held: HeldMessages | null = null

  /**
   * Checks the options; nothing is opened before {@link start}.
   *
   * @throws Error when no WebSocket implementation is available or an option is invalid.
   */
  constructor(options: RelayConnectionOptions, host: RelayConnectionHost) {
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WebSocketImpl === undefined) {
      throw new Error(
        'SyncClient: no WebSocket implementation; pass one as option `WebSocket` (in Node 20: `import { WebSocket } from "ws"`)',
      )
    }
    this.url = options.url
    this.WebSocketImpl = WebSocketImpl
    this.backoff = new Backoff(options.reconnect)
    this.pingInterval = positive('pingInterval', options.pingInterval ?? 15_000)
    this.timeout = positive('timeout', options.timeout ?? 30_000)
    this.host = host
  }

  /** The reported status: `'connecting'`, `'online'` or `'offline'`. */
  get status(): ConnectionStatus {
    return this.currentStatus
  }

  /** Whether the relay completed the handshake on the current socket. */
  get online(): boolean {
    return this.phase === SocketPhase.online
  }

  /** Whether the connection is halted after a permanent refusal (see {@link halt}). */
  get isHalted(): boolean {
    return this.halted
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed
  }

  /** The current socket, as an identity only: compare two readings to tell whether the socket changed meanwhile. */
  get currentSocket(): object | null {
    return this.socket
  }

  /** Listens to the browser's `online` event and opens the first socket. */
  start(): void {
    const browser = globalThis as { addEventListener?: (type: string, listener: () => void) => void }
    if (typeof browser.addEventListener === 'function') browser.addEventListener('online', this.onBrowserOnline)
    this.connect()
  }

  /**
   * Sends what `fn` sends in `batch` messages of at most `maxBytes` each,
   * compressed when that makes them smaller (the caller checked that the
   * relay takes batches). What was sent for a socket that was lost meanwhile
   * is dropped, as {@link send} drops it.
   */
  together(fn: () => void, maxBytes: number): void {
    if (this.held !== null) {
      fn() // joins the outer call
      return
    }
    const held = { socket: this.socket, messages: [] as Uint8Array[], bytes: 0, maxBytes }
    this.held = held
    try {
      fn()
    } finally {
      this.held = null
      this.sendHeld(held)
    }
  }

  /** Sends a message when the socket is open; drops it otherwise. A failing send counts as a lost socket. */
  send(data: Uint8Array): void {
    const held = this.held
    if (held !== null && data.byteLength >= BATCH_PART_BYTES) {
      // a large message (a part of a long catch-up) goes alone, as it is, after what was held before it
      this.held = null
      this.sendHeld(held)
      this.send(data)
      this.held = held
      return
    }
    if (held !== null) {
      held.messages.push(data)
      held.bytes += data.byteLength
      // a long run goes out in parts as it is made, so the relay works on the first while the rest is made
      if (held.bytes >= BATCH_PART_BYTES) {
        this.held = null
        this.sendHeld(held)
        this.held = held
      }
      return
    }
    const ws = this.socket
    if (ws === null || ws.readyState !== SocketState.open) return
    try {
      ws.send(data)
    } catch {
      this.lost()
    }
  }

  /** Sends what {@link together} held (if the socket is still the one it was held for) and empties it. */
  private sendHeld(held: HeldMessages): void {
    const { messages } = held
    held.messages = []
    held.bytes = 0
    if (this.socket !== held.socket) return
    for (const frame of encodeBatches(messages, held.maxBytes, deflate)) this.send(frame)
  }

  /**
   * The relay completed the handshake on the current socket: online, backoff
   * restarted, `ping` every `pingInterval`. The client subscribes its docs after.
   */
  handshakeCompleted(): void {
    this.phase = SocketPhase.online
    this.backoff.reset()
    this.setStatus(ConnectionStatus.online)
    this.pingTimer = setInterval(() => this.send(encodePing()), this.pingInterval)
  }

  /** The socket closed, failed or went silent: drop it and plan the next attempt (unless halted or closed). */
  lost(): void {
    this.dropSocket()
    if (this.closed) return
    this.setStatus(ConnectionStatus.offline)
    if (!this.halted) this.scheduleReconnect()
  }

  /** A permanent refusal: drop the socket and stop reconnecting until {@link reconnect}. */
  halt(): void {
    this.halted = true
    this.lost()
  }

  /** Drops the current socket (if any) and connects again right away with a fresh backoff; ends a halt. */
  reconnect(): void {
    if (this.closed) return
    this.halted = false
    this.backoff.reset()
    this.dropSocket()
    this.connect()
  }

  /**
   * Closes for good. `farewell` runs first, while the socket is still there
   * (the docs send their awareness removal and `unsubscribe`); then the
   * socket and every timer go and the status turns `offline`. Idempotent.
   */
  close(farewell: () => void): void {
    if (this.closed) return
    this.closed = true
    const browser = globalThis as { removeEventListener?: (type: string, listener: () => void) => void }
    if (typeof browser.removeEventListener === 'function') browser.removeEventListener('online', this.onBrowserOnline)
    farewell()
    this.clearTimer('reconnect')
    this.dropSocket()
    this.setStatus(ConnectionStatus.offline)
  }

  // ---------------------------------------------------------------------------

  private connect(): void {
    if (this.closed || this.socket !== null) return
    this.clearTimer('reconnect')
    this.setStatus(ConnectionStatus.connecting)
    let ws: WebSocketLike
    this.host.socketOpening?.()
    try {
      ws = new this.WebSocketImpl(this.url)
    } catch (error) {
      // e.g. a URL the platform refuses; retrying later is all we can do.
      this.host.reportError(new SyncError('', ErrorCode.malformed, `could not create a WebSocket: ${describeError(error)}`))
      this.setStatus(ConnectionStatus.offline)
      this.scheduleReconnect()
      return
    }
    ws.binaryType = 'arraybuffer'
    ws.onmessage = (event: { data: unknown }) => {
      if (this.socket === ws) this.receive(event.data)
    }
    ws.onclose = () => {
      if (this.socket === ws) this.lost()
    }
    ws.onerror = () => {
      // A close event follows; nothing to do here.
    }
    this.socket = ws
    this.phase = SocketPhase.connecting
    this.lastMessageAt = Date.now()
    this.armWatchdog(this.timeout)
  }

  private receive(data: unknown): void {
    this.lastMessageAt = Date.now()
    this.host.receive(data)
  }

  /** Forgets the current socket and its timers, then tells the client (every open doc goes to the disconnected state). */
  private dropSocket(): void {
    const ws = this.socket
    this.clearTimer('watchdog')
    this.clearTimer('ping')
    if (ws === null) return
    this.socket = null
    this.phase = SocketPhase.offline
    ws.onmessage = null
    ws.onclose = null
    ws.onopen = null
    // Not null: closing a socket whose handshake is under way makes `ws` (Node) emit an `error`, and an
    // `error` event with no listener is an uncaught exception there. The socket is forgotten; its error is not news.
    ws.onerror = ignoreSocketError
    if (ws.readyState === SocketState.connecting || ws.readyState === SocketState.open) {
      try {
        ws.close()
      } catch {
        // Closing a socket that is already failing may throw in some implementations.
      }
    }
    this.host.socketDropped()
  }

  private scheduleReconnect(): void {
    this.clearTimer('reconnect')
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connect()
    }, this.backoff.next())
  }

  /** Reconnects when nothing arrived for `timeout` ms; re-arms itself for the remaining time otherwise. */
  private armWatchdog(delay: number): void {
    this.clearTimer('watchdog')
    this.watchdogTimer = setTimeout(() => {
      this.watchdogTimer = null
      const silentFor = Date.now() - this.lastMessageAt
      if (silentFor >= this.timeout) this.lost()
      else this.armWatchdog(this.timeout - silentFor)
    }, delay)
  }

  private clearTimer(which: 'reconnect' | 'watchdog' | 'ping'): void {
    if (which === 'reconnect' && this.reconnectTimer !== null) {
      clearTimeout(this.reconnectTimer)
      this.reconnectTimer = null
    } else if (which === 'watchdog' && this.watchdogTimer !== null) {
      clearTimeout(this.watchdogTimer)
      this.watchdogTimer = null
    } else if (which === 'ping' && this.pingTimer !== null) {
      clearInterval(this.pingTimer)
      this.pingTimer = null
    }
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.currentStatus) return
    this.currentStatus = status
    this.host.statusChanged(status)
  }

  /** The browser thinks the network is back: a hint to try now instead of waiting for the backoff. */
  private readonly onBrowserOnline = (): void => {
    if (!this.closed && !this.halted && this.socket === null) {
      this.backoff.reset()
      this.connect()
    }
  }
}

const positive = (name: string, value: number): number => {
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`SyncClient: option ${name} must be a positive number of milliseconds`)
  return value
}

/** The `onerror` of a dropped socket: its errors concern nobody any more (see `dropSocket`). */
const ignoreSocketError = (): void => {}

/** Messages held by {@link RelayConnection.together}. */
interface HeldMessages {
  /** The socket they are for: after it is lost they are dropped. */
  readonly socket: WebSocketLike | null
  messages: Uint8Array[]
  bytes: number
  /** Largest batch. */
  readonly maxBytes: number
}

/**
 * Bytes of held messages sent as soon as they are made: big enough to
 * compress well (the names and client ids of many docs repeat), small enough
 * that the relay starts on them while the client makes the rest. A message
 * this large goes alone, uncompressed: a large Yjs update (a part of a long
 * catch-up) has little framing to save, and DEFLATE in JavaScript costs most
 * on it (~1.3 ms per 25 KiB warm, several times that on a cold page).
 */
const BATCH_PART_BYTES = 16 * 1024

/** DEFLATE for batches (fflate: the same code in browsers and Node, synchronous, so messages keep their order). */
const deflate = (bytes: Uint8Array): Uint8Array => deflateSync(bytes)
