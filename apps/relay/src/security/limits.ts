/**
 * Relay-wide, per-connection and per-doc limits, with their defaults. Every
 * limit is a relay option and a CLI flag (see docs/security.md).
 *
 * @module security/limits
 */
import { DEFAULT_MAX_KEY_CONFLICTS, DEFAULT_MAX_TYPE_DEPTH } from './validateUpdate.js'

/** The relay's limits. */
export interface RelayLimits {
  /** Largest WebSocket frame, bytes; larger frames close with 1009. */
  maxPayload: number
  /** Docs one connection may subscribe to at once. */
  maxDocsPerConnection: number
  /** Workspaces one connection may watch at once (live lists, `watch-catalog`). */
  maxCatalogWatchesPerConnection: number
  /** Sustained messages per second per connection (token bucket refill). */
  messagesPerSecond: number
  /** Burst of messages per connection (token bucket size). */
  messageBurst: number
  /** Sustained awareness messages per second per connection. */
  awarenessPerSecond: number
  /** Largest awareness state of one client, bytes of JSON. */
  maxAwarenessStateBytes: number
  /** Largest stored size of one doc, bytes; updates beyond it are refused. */
  maxDocBytes: number
  /** Messages a connection may send before it authenticated. */
  maxUnauthenticatedMessages: number
  /**
   * Bytes of messages one connection may have waiting: for authentication
   * and for docs that are still loading from storage (each message counts at
   * least {@link QUEUED_MESSAGE_OVERHEAD} bytes). Over it the connection is
   * closed with 1008. Unset: 4 × `maxPayload`.
   */
  maxQueuedBytes: number
  /** Open WebSocket connections (and upgrades being authenticated) of the whole relay; more are refused with 503. */
  maxConnections: number
  /** Time a connection has to authenticate, ms. */
  authTimeoutMs: number
  /** Bytes waiting in a socket's send buffer before the peer counts as a slow reader and is disconnected. */
  maxBufferedBytes: number
  /** Sustained milliseconds of Yjs apply time per second a connection may cause. */
  applyMsPerSecond: number
  /** Burst of apply time, ms: a connection over it is closed (valid but costly updates, e.g. long conflict chains). */
  applyBurstMs: number
  /** Deepest nesting of shared types, in one update and in a doc; deeper updates are refused. */
  maxTypeDepth: number
  /** Most map entries without an origin for one key, in one update and in a doc; updates beyond it are refused. */
  maxKeyConflicts: number
  /** Most entries of map-key histories Yjs may walk to place one update's concurrent map entries; updates beyond it are refused. */
  maxKeyWalk: number
  /**
   * Most entries in one awareness message; a longer message is refused whole
   * with an error. Stock y-websocket clients echo every state of the room in
   * one message, so this must exceed the number of people in a doc.
   */
  maxAwarenessEntries: number
  /**
   * Most awareness client ids one connection may hold in one doc; states for
   * more new ids are dropped with an error. Bounds what one awareness message
   * costs each peer (at most this many entries are forwarded) and the ids
   * one connection can reserve.
   */
  maxAwarenessIds: number
}

/** Defaults of {@link RelayLimits}. */
export const DEFAULT_LIMITS: RelayLimits = Object.freeze({
  maxPayload: 1024 * 1024,
  maxDocsPerConnection: 5000,
  maxCatalogWatchesPerConnection: 16,
  messagesPerSecond: 2000,
  messageBurst: 20_000,
  awarenessPerSecond: 50,
  maxAwarenessStateBytes: 16 * 1024,
  maxDocBytes: 64 * 1024 * 1024,
  maxUnauthenticatedMessages: 16,
  maxQueuedBytes: 4 * 1024 * 1024,
  maxConnections: 10_000,
  authTimeoutMs: 10_000,
  maxBufferedBytes: 16 * 1024 * 1024,
  applyMsPerSecond: 250,
  applyBurstMs: 1000,
  maxTypeDepth: DEFAULT_MAX_TYPE_DEPTH,
  maxKeyConflicts: DEFAULT_MAX_KEY_CONFLICTS,
  maxKeyWalk: 1_000_000,
  maxAwarenessEntries: 1000,
  maxAwarenessIds: 16,
})

/** Bytes a waiting message counts at least: its buffer and its place in the queue cost memory too. */
export const QUEUED_MESSAGE_OVERHEAD = 64

/** Bytes `data` counts against `maxQueuedBytes`. */
export const queuedSize = (data: Uint8Array): number => Math.max(data.byteLength, QUEUED_MESSAGE_OVERHEAD)

/** A token bucket: `take()` is false once the rate is exceeded. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.tokens = burst
    this.last = now()
  }

  /** Takes one token; false when none is left. */
  take(): boolean {
    this.refill()
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Charges `amount` (may go negative); false once the bucket is empty. */
  charge(amount: number): boolean {
    this.refill()
    this.tokens -= amount
    return this.tokens > 0
  }

  private refill(): void {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond)
    this.last = now
  }
}
