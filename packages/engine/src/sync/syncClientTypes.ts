/**
 * The options and events of {@link SyncClient}: its public contract, kept
 * apart from the class so the class reads as behaviour. Both are exported
 * from sync/SyncClient as well.
 *
 * @module sync/syncClientTypes
 */
import type { BackoffOptions } from './backoff.js'
import type { UserInfo } from './docHandleTypes.js'
import type { ConnectionStatus } from './RelayConnection.js'
import type { WebSocketConstructor } from './socket.js'
import type { SyncError } from './SyncError.js'

/** Options of {@link SyncClient}. Durations are in milliseconds. */
export interface SyncClientOptions {
  /**
   * Base URL of the relay: `ws://HOST:PORT`, `wss://…`, or `http(s)://…`
   * (converted to `ws(s)://`). A path prefix is kept; the client connects to
   * `<url>/.concord/v1`.
   */
  url: string
  /**
   * WebSocket class. Default `globalThis.WebSocket` (browsers, Node ≥ 22).
   * In Node 20 pass `WebSocket` from the `ws` package.
   */
  WebSocket?: WebSocketConstructor
  /**
   * Access token (a JWT, see docs/security.md), or a function returning one.
   * It is sent in-band as the first message on every socket (never in the
   * URL); docs subscribe once the relay answered `authenticated`. A function
   * is called again for every new socket and shortly before the token
   * expires, so long sessions refresh without dropping the connection.
   */
  token?: string | (() => string | Promise<string>)
  /** The local user, put into the awareness state field `user` of every doc opened afterwards. */
  user?: UserInfo
  /** Reconnect backoff: `minDelay` 250, `maxDelay` 10 000, `factor` 2 by default. */
  reconnect?: BackoffOptions
  /**
   * Subscribe the open docs after a reconnect in `resume` messages when the
   * relay announces them (docs/PROTOCOL.md, "Resume"): one state-vector
   * exchange per batch of docs instead of one per doc. Default true; false
   * subscribes doc by doc (`subscribe`), as with a relay that does not
   * announce `resume`.
   */
  resume?: boolean
  /** How often to send `ping` while online. Default 15 000. */
  pingInterval?: number
  /** Reconnect when nothing arrived from the relay for this long (also while connecting). Default 30 000. */
  timeout?: number
  /**
   * Largest message to send, bytes, until the relay's `hello` says what it
   * accepts. A change larger than that is not sent (the relay would close
   * the socket): it stays on this device and the doc gets a permanent
   * `too-large` error. Default 1 MiB, the relay's default.
   */
  maxMessageBytes?: number
  /** This device's clock, ms since the Unix epoch. For tests. Default `Date.now`. */
  clock?: () => number
}

/** Events of a {@link SyncClient}. */
export interface SyncClientEvents {
  /** The connection status changed. */
  status: (status: ConnectionStatus) => void
  /** The total pending count of all open docs changed. */
  pending: (total: number) => void
  /**
   * An error: connection-level errors from the relay (`error.doc === ''`),
   * undecodable messages, and — in addition to the handle's own `error`
   * event — errors of every open doc.
   */
  error: (error: SyncError) => void
  /**
   * The relay's `hello` put this device's clock off the relay's by a new
   * amount (see {@link SyncClient.clockOffset}): keep it, for the next start
   * to begin with before the relay answers (`assumeClockOffset`).
   */
  'clock-offset': (offsetMs: number) => void
}
