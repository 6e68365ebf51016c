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
   * Sockets without an identity yet, relay-wide: multiplexed connections
   * waiting for their `auth` message plus upgrades whose token is being
   * verified. Kept well below `maxConnections` so authenticated users always
   * find a slot. Unset: a tenth of `maxConnections`, at most 1000.
   */
  maxUnauthenticatedConnections: number
  /** Sockets without an identity yet from one client address; more are refused with 503. */
  maxUnauthenticatedPerAddress: number
  /** Sustained WebSocket upgrades per second from one client address (token bucket refill); more are refused with 429. */
  connectionsPerAddressPerSecond: number
  /** Burst of WebSocket upgrades from one client address (token bucket size). */
  connectionBurstPerAddress: number
  /** Bytes of messages a connection may have waiting for authentication (its own, small budget instead of `maxQueuedBytes`). */
  maxPreAuthQueuedBytes: number
  /** Time a TCP socket has to send a complete HTTP request header, ms; then it is closed. */
  headerTimeoutMs: number
  /** TCP sockets whose HTTP request is not complete yet, relay-wide; more are closed at once. */
  maxIncompleteRequests: number
  /** Open connections of one authenticated user; more are refused (503 at the upgrade, `limit-exceeded` and 1008 for an `auth` message). */
  maxConnectionsPerUser: number
  /** Docs one authenticated user may have subscribed at once, across all their connections. */
  maxDocsPerUser: number
  /** Sustained milliseconds per second of answering work (sync step 2 from a state vector, `fetch`, `list-docs`) a connection may cause. */
  workMsPerSecond: number
  /** Burst of answering work, ms: a connection over it is closed. */
  workBurstMs: number
  /**
   * Largest part of an initial sync, bytes: a sync step 2 or `fetch` answer
   * larger than this is sent as several Yjs updates of at most this size,
   * paced by the socket draining (at most `maxPayload`). Unset: the smaller
   * of 512 KiB and `maxPayload`.
   */
  initialSyncChunkBytes: number
  /**
   * Bytes of initial syncs larger than a chunk the whole relay sends at once
   * (each held in memory while it is sent); more wait their turn. At least
   * `maxDocBytes`, so the largest doc can always be served.
   */
  maxInitialSyncBytes: number
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
  /**
   * Bytes of awareness states (JSON) one connection may hold in all its docs
   * together; a state that would go over it is dropped with an error. With
   * `maxAwarenessIds` per doc and `maxDocsPerConnection` this bounds the
   * memory one connection's presence takes.
   */
  maxAwarenessBytesPerConnection: number
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
  maxUnauthenticatedConnections: 1000,
  maxUnauthenticatedPerAddress: 256,
  connectionsPerAddressPerSecond: 100,
  connectionBurstPerAddress: 1000,
  maxPreAuthQueuedBytes: 64 * 1024,
  headerTimeoutMs: 10_000,
  maxIncompleteRequests: 1000,
  maxConnectionsPerUser: 200,
  maxDocsPerUser: 20_000,
  workMsPerSecond: 500,
  workBurstMs: 10_000,
  initialSyncChunkBytes: 512 * 1024,
  maxInitialSyncBytes: 256 * 1024 * 1024,
  maxAwarenessEntries: 1000,
  maxAwarenessIds: 16,
  maxAwarenessBytesPerConnection: 4 * 1024 * 1024,
})

/** `maxUnauthenticatedConnections` when it is not set: a tenth of `maxConnections`, at least 1, at most 1000. */
export const defaultMaxUnauthenticated = (maxConnections: number): number =>
  Math.min(DEFAULT_LIMITS.maxUnauthenticatedConnections, Math.max(1, Math.floor(maxConnections / 10)))

/**
 * The limits in force: the given ones, defaults for the rest. Unset
 * `maxQueuedBytes` is 4 × `maxPayload`; unset `initialSyncChunkBytes` is at
 * most `maxPayload`; unset `maxUnauthenticatedConnections` is a tenth of
 * `maxConnections` (at most 1000).
 */
export const resolveLimits = (given: Partial<RelayLimits> = {}): RelayLimits => {
  const limits: RelayLimits = { ...DEFAULT_LIMITS }
  for (const [key, value] of Object.entries(given) as Array<[keyof RelayLimits, number | undefined]>) {
    if (value !== undefined) limits[key] = value
  }
  if (given.maxQueuedBytes === undefined) limits.maxQueuedBytes = 4 * limits.maxPayload
  if (given.initialSyncChunkBytes === undefined)
    limits.initialSyncChunkBytes = Math.min(DEFAULT_LIMITS.initialSyncChunkBytes, limits.maxPayload)
  if (given.maxUnauthenticatedConnections === undefined)
    limits.maxUnauthenticatedConnections = defaultMaxUnauthenticated(limits.maxConnections)
  return limits
}

/**
 * Limits that contradict each other, one sentence each (empty when they fit
 * together). The relay refuses to start with any of them.
 */
export const limitContradictions = (limits: RelayLimits): string[] => {
  const problems: string[] = []
  const {
    maxPayload,
    maxQueuedBytes,
    maxBufferedBytes,
    initialSyncChunkBytes,
    maxInitialSyncBytes,
    maxDocBytes,
    maxConnections,
    maxUnauthenticatedConnections,
  } = limits
  if (limits.maxAwarenessBytesPerConnection < limits.maxAwarenessStateBytes) {
    problems.push(
      `--max-awareness-bytes-per-connection (${limits.maxAwarenessBytesPerConnection}) is below --max-awareness-bytes (${limits.maxAwarenessStateBytes}): a connection could not hold one state of the allowed size`,
    )
  }
  if (maxUnauthenticatedConnections > maxConnections) {
    problems.push(
      `--max-unauthenticated-connections (${maxUnauthenticatedConnections}) is above --max-connections (${maxConnections}): it is a share of the connections; keep it well below`,
    )
  }
  if (maxQueuedBytes < maxPayload) {
    problems.push(
      `--max-queued-bytes (${maxQueuedBytes}) is below --max-payload (${maxPayload}): a single message could never wait; raise --max-queued-bytes or lower --max-payload`,
    )
  }
  if (maxBufferedBytes < 2 * maxPayload) {
    problems.push(
      `--max-buffered-bytes (${maxBufferedBytes}) is below twice --max-payload (${2 * maxPayload}): readers would be cut off for the largest messages the relay forwards; raise --max-buffered-bytes or lower --max-payload`,
    )
  }
  if (initialSyncChunkBytes > maxPayload) {
    problems.push(
      `--initial-sync-chunk-bytes (${initialSyncChunkBytes}) is above --max-payload (${maxPayload}): parts of an initial sync must not be larger than the frames clients may send`,
    )
  }
  if (maxBufferedBytes < initialSyncChunkBytes) {
    problems.push(
      `--max-buffered-bytes (${maxBufferedBytes}) is below --initial-sync-chunk-bytes (${initialSyncChunkBytes}): one part of an initial sync would not fit the send buffer`,
    )
  }
  if (maxInitialSyncBytes < initialSyncChunkBytes) {
    problems.push(
      `--max-initial-sync-bytes (${maxInitialSyncBytes}) is below --initial-sync-chunk-bytes (${initialSyncChunkBytes}): no initial sync could be sent in parts`,
    )
  }
  if (maxInitialSyncBytes < maxDocBytes) {
    problems.push(
      `--max-doc-bytes (${maxDocBytes}) is above --max-initial-sync-bytes (${maxInitialSyncBytes}): the relay could not send a doc that large to a fresh client; raise --max-initial-sync-bytes or lower --max-doc-bytes`,
    )
  }
  return problems
}

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
