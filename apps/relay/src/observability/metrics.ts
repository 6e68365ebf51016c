/**
 * Prometheus metrics of one relay instance. Each relay owns its own
 * registry (no module-level singletons), so several relays can live in one
 * process (tests, benchmarks).
 *
 * What is counted per message or commit (messages and bytes in and out,
 * acks, updates pending and committed) goes into plain numbers first and
 * is added to prom-client when the metrics are read (each metric's
 * `collect`): a prom-client `inc` hashes and checks labels on every call,
 * which the relay's hot path should not pay per message. `/metrics` shows
 * the same counts as if every message had been added at once.
 *
 * @module observability/metrics
 */
import * as prom from 'prom-client'

/** Message kinds counted in `concord_messages_{in,out}_total`. */
export type MessageKind =
  | 'sync'
  | 'awareness'
  | 'auth'
  | 'query-awareness'
  | 'subscribe'
  | 'unsubscribe'
  | 'ack'
  | 'error'
  | 'hello'
  | 'ping'
  | 'pong'
  | 'list-docs'
  | 'doc-list'
  | 'fetch'
  | 'fetched'
  | 'authenticated'
  | 'authors'
  | 'list-presence'
  | 'presence'
  | 'watch-catalog'
  | 'unwatch-catalog'
  | 'catalog-changed'
  | 'fetched-part'
  | 'resume'
  | 'resumed'
  | 'fetch-many'
  | 'fetched-many'
  | 'batch'
  | 'unknown'

const KINDS: MessageKind[] = [
  'sync',
  'awareness',
  'auth',
  'query-awareness',
  'subscribe',
  'unsubscribe',
  'ack',
  'error',
  'hello',
  'ping',
  'pong',
  'list-docs',
  'doc-list',
  'fetch',
  'fetched',
  'authenticated',
  'authors',
  'list-presence',
  'presence',
  'watch-catalog',
  'unwatch-catalog',
  'catalog-changed',
  'fetched-part',
  'resume',
  'resumed',
  'fetch-many',
  'fetched-many',
  'batch',
  'unknown',
]

/** Message counts by kind, kept as plain numbers until they are added to a prom-client counter. */
class UncountedByKind {
  /** Count per kind, in the order of {@link KINDS}. */
  private readonly counts = new Float64Array(KINDS.length)

  /** Counts `n` messages of `kind`. */
  add(kind: MessageKind, n: number): void {
    this.counts[KIND_INDEX.get(kind)!] += n
  }

  /** Adds the counts to `counter` (labelled by kind) and starts again from zero. */
  addTo(counter: prom.Counter<'type'>): void {
    for (let i = 0; i < KINDS.length; i++) {
      if (this.counts[i] === 0) continue
      counter.inc({ type: KINDS[i] }, this.counts[i])
      this.counts[i] = 0
    }
  }
}

/** Position of each kind in {@link KINDS}. */
const KIND_INDEX = new Map(KINDS.map((kind, i) => [kind, i]))

/** Why the relay refused an input (label of `concord_refusals_total`). */
export type RefusalReason =
  | 'unauthorized'
  | 'token-expired'
  | 'permission'
  | 'origin'
  | 'rate-limit'
  | 'awareness-rate-limit'
  | 'forged-awareness'
  | 'forged-author'
  | 'awareness-too-large'
  | 'awareness-too-many-entries'
  | 'awareness-too-many-ids'
  | 'doc-too-large'
  | 'too-many-docs'
  | 'too-many-watches'
  | 'slow-reader'
  | 'missing-dependencies'
  | 'invalid-update'
  | 'apply-budget'
  | 'queue-full'
  | 'too-many-connections'
  | 'too-many-unauthenticated'
  | 'evicted-unauthenticated'
  | 'address-rate-limit'
  | 'too-many-incomplete-requests'
  | 'header-timeout'
  | 'too-many-user-connections'
  | 'too-many-user-docs'
  | 'work-budget'

/** The relay's metrics. */
export class RelayMetrics {
  readonly registry = new prom.Registry()
  readonly connections: prom.Gauge<'protocol'>
  readonly roomsOpen: prom.Gauge
  /** Loaded docs held only encoded (nobody wrote to them for a while); counted every few seconds. */
  readonly roomsDormant: prom.Gauge
  /** Dormant docs made into a Yjs doc again. */
  readonly roomsWoken: prom.Counter
  /** 1 while this instance cannot reach Redis (several instances: it serves its own clients only). */
  readonly clusterDegraded: prom.Gauge
  readonly clusterPublishes: prom.Counter<'result'>
  /** Reads the cluster link's publish counts when the registry is read (set when the relay is one of several). */
  clusterPublishStats: (() => { readonly published: number; readonly skipped: number }) | null = null
  #clusterPublishesCounted = { published: 0, skipped: 0 }
  readonly bytesIn: prom.Counter
  readonly bytesOut: prom.Counter
  readonly commitDuration: prom.Histogram
  readonly commitFailures: prom.Counter
  readonly updatesCommitted: prom.Counter
  readonly checkpoints: prom.Counter
  private readonly acksSent: prom.Counter
  readonly malformedMessages: prom.Counter
  readonly pendingUpdates: prom.Gauge
  /** Bytes of messages waiting in connections, for authentication or for docs that load. */
  readonly queuedBytes: prom.Gauge
  /** Refusals by reason: auth, permission, rate, size, origin, forged-awareness, slow-reader, quarantine… */
  readonly refusals: prom.Counter<'reason'>
  /** Sockets without an identity: `request` = HTTP request not complete yet, `auth` = waiting for or verifying a token. */
  readonly unauthenticatedSockets: prom.Gauge<'stage'>
  /** Bytes of initial syncs being sent in parts, relay-wide. */
  readonly initialSyncBytes: prom.Gauge
  /** Largest send buffer of one socket seen since start, bytes. */
  readonly sendBufferMax: prom.Gauge
  /** HTTP API requests by route and status class. */
  readonly apiRequests: prom.Counter<'route' | 'status'>
  /** Webhook delivery attempts by result: `delivered`, `failed` (will retry), `abandoned` (out of attempts), `dropped` (queue full). */
  readonly webhookDeliveries: prom.Counter<'result'>
  /** Webhook deliveries waiting to be sent (queued or waiting for a retry). */
  readonly webhookQueued: prom.Gauge
  /** Webhook subscriptions whose last delivery attempt failed. */
  readonly webhookFailing: prom.Gauge
  private sendBufferMaxValue = 0
  private readonly messagesIn: prom.Counter<'type'>
  private readonly messagesOut: prom.Counter<'type'>
  /** Messages received and sent since the metrics were last read, by kind, not yet in {@link messagesIn} / {@link messagesOut}. */
  private readonly uncountedIn = new UncountedByKind()
  private readonly uncountedOut = new UncountedByKind()
  /** Payload bytes received and sent, and acks sent, since the metrics were last read. */
  private uncountedBytesIn = 0
  private uncountedBytesOut = 0
  private uncountedAcks = 0
  /** Updates applied in memory and not yet stored (`concord_pending_updates` when read). */
  private pendingUpdateCount = 0
  /** Updates stored since the metrics were last read, not yet in {@link updatesCommitted}. */
  private uncountedCommitted = 0

  constructor(options: { collectDefault?: boolean } = {}) {
    const registers = [this.registry]
    this.connections = new prom.Gauge({
      name: 'concord_connections',
      help: 'Open WebSocket connections, by protocol (mux = multiplexed endpoint, yws = y-websocket compatible)',
      labelNames: ['protocol'],
      registers,
    })
    this.unauthenticatedSockets = new prom.Gauge({
      name: 'concord_unauthenticated_sockets',
      help: 'Sockets without an identity, by stage (request = HTTP request not complete, auth = waiting for or verifying a token)',
      labelNames: ['stage'],
      registers,
    })
    this.unauthenticatedSockets.labels('request').set(0)
    this.unauthenticatedSockets.labels('auth').set(0)
    this.roomsOpen = new prom.Gauge({ name: 'concord_rooms_open', help: 'Docs loaded in memory', registers })
    this.roomsWoken = new prom.Counter({
      name: 'concord_rooms_woken_total',
      help: 'Dormant docs made into a Yjs doc again: an update to apply (from a client, the HTTP API or another instance), or catch-ups asked for again and again',
      registers,
    })
    this.roomsDormant = new prom.Gauge({
      name: 'concord_rooms_dormant',
      help: 'Docs loaded in memory held only as their encoded state (unused for --dormant-after-ms), counted every few seconds',
      registers,
    })
    this.clusterDegraded = new prom.Gauge({
      name: 'concord_cluster_degraded',
      help: '1 while this relay instance cannot reach Redis: it serves its own clients only and catches up from storage later',
      registers,
    })
    this.clusterPublishes = new prom.Counter({
      name: 'concord_cluster_publishes_total',
      help: 'Commits and presence changes of open docs, and live-list notices, published to the other instances through Redis (sent), or not because no other instance held the doc or watched a workspace (skipped)',
      labelNames: ['result'],
      registers,
      collect: () => {
        const stats = this.clusterPublishStats?.()
        if (stats === undefined) return
        this.clusterPublishes.labels('sent').inc(stats.published - this.#clusterPublishesCounted.published)
        this.clusterPublishes.labels('skipped').inc(stats.skipped - this.#clusterPublishesCounted.skipped)
        this.#clusterPublishesCounted = { published: stats.published, skipped: stats.skipped }
      },
    })
    // `collect` runs when the registry is read: it adds what was counted since (arrow functions: `this` is the RelayMetrics)
    this.messagesIn = new prom.Counter({
      name: 'concord_messages_in_total',
      help: 'Messages received, by type',
      labelNames: ['type'],
      registers,
      collect: () => this.uncountedIn.addTo(this.messagesIn),
    })
    this.messagesOut = new prom.Counter({
      name: 'concord_messages_out_total',
      help: 'Messages sent, by type',
      labelNames: ['type'],
      registers,
      collect: () => this.uncountedOut.addTo(this.messagesOut),
    })
    this.bytesIn = new prom.Counter({
      name: 'concord_bytes_in_total',
      help: 'WebSocket payload bytes received',
      registers,
      collect: () => {
        this.bytesIn.inc(this.uncountedBytesIn)
        this.uncountedBytesIn = 0
      },
    })
    this.bytesOut = new prom.Counter({
      name: 'concord_bytes_out_total',
      help: 'WebSocket payload bytes sent',
      registers,
      collect: () => {
        this.bytesOut.inc(this.uncountedBytesOut)
        this.uncountedBytesOut = 0
      },
    })
    this.commitDuration = new prom.Histogram({
      name: 'concord_commit_duration_seconds',
      help: 'Duration of storage group commits',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    })
    this.commitFailures = new prom.Counter({
      name: 'concord_commit_failures_total',
      help: 'Storage commits that failed (their updates are kept and retried)',
      registers,
    })
    this.updatesCommitted = new prom.Counter({
      name: 'concord_updates_committed_total',
      help: 'Updates durably stored',
      registers,
      collect: () => {
        this.updatesCommitted.inc(this.uncountedCommitted)
        this.uncountedCommitted = 0
      },
    })
    this.checkpoints = new prom.Counter({
      name: 'concord_checkpoints_total',
      help: 'Update logs compacted into a checkpoint',
      registers,
    })
    this.acksSent = new prom.Counter({
      name: 'concord_acks_sent_total',
      help: 'Durable acknowledgements sent',
      registers,
      collect: () => {
        this.acksSent.inc(this.uncountedAcks)
        this.uncountedAcks = 0
      },
    })
    this.malformedMessages = new prom.Counter({
      name: 'concord_malformed_messages_total',
      help: 'Messages that could not be decoded or applied (their connection was closed)',
      registers,
    })
    this.pendingUpdates = new prom.Gauge({
      name: 'concord_pending_updates',
      help: 'Updates applied in memory and not yet durably stored',
      registers,
      collect: () => this.pendingUpdates.set(this.pendingUpdateCount),
    })
    this.queuedBytes = new prom.Gauge({
      name: 'concord_queued_bytes',
      help: 'Bytes of messages waiting in connections, for authentication or for docs that load from storage',
      registers,
    })
    this.refusals = new prom.Counter({
      name: 'concord_refusals_total',
      help: 'Inputs the relay refused, by reason',
      labelNames: ['reason'],
      registers,
    })
    this.initialSyncBytes = new prom.Gauge({
      name: 'concord_initial_sync_bytes',
      help: 'Bytes of initial syncs (sync step 2, fetch answers) larger than a chunk being sent in parts',
      registers,
    })
    this.sendBufferMax = new prom.Gauge({
      name: 'concord_send_buffer_max_bytes',
      help: 'Largest send buffer (bufferedAmount) of one socket seen since the relay started',
      registers,
    })
    this.apiRequests = new prom.Counter({
      name: 'concord_api_requests_total',
      help: 'HTTP API requests, by route and status class (2xx, 4xx, 5xx)',
      labelNames: ['route', 'status'],
      registers,
    })
    this.webhookDeliveries = new prom.Counter({
      name: 'concord_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by result (delivered, failed = retried later, abandoned = out of attempts, dropped = queue full)',
      labelNames: ['result'],
      registers,
    })
    for (const result of ['delivered', 'failed', 'abandoned', 'dropped']) this.webhookDeliveries.labels(result).inc(0)
    this.webhookQueued = new prom.Gauge({
      name: 'concord_webhook_queued',
      help: 'Webhook deliveries waiting to be sent (queued or waiting for a retry)',
      registers,
    })
    this.webhookFailing = new prom.Gauge({
      name: 'concord_webhook_failing_subscriptions',
      help: 'Webhook subscriptions whose last delivery attempt failed',
      registers,
    })
    if (options.collectDefault) prom.collectDefaultMetrics({ register: this.registry, prefix: 'concord_' })
  }

  /** Counts a received message. */
  messageIn(kind: MessageKind, bytes: number): void {
    this.uncountedIn.add(kind, 1)
    this.uncountedBytesIn += bytes
  }

  /** Counts a sent message (`copies` sockets received the same bytes). */
  messageOut(kind: MessageKind, bytes: number, copies = 1): void {
    this.uncountedOut.add(kind, copies)
    this.uncountedBytesOut += bytes * copies
  }

  /** Counts bytes sent in a frame whose message was counted without its bytes (one held for a batch that went alone). */
  frameBytesOut(bytes: number): void {
    this.uncountedBytesOut += bytes
  }

  /** Counts a durable acknowledgement sent. */
  ackSent(): void {
    this.uncountedAcks++
  }

  /** Counts an update applied in memory and queued for storage. */
  updateQueued(): void {
    this.pendingUpdateCount++
  }

  /** Counts `count` pending updates as durably stored. */
  committed(count: number): void {
    this.pendingUpdateCount -= count
    this.uncountedCommitted += count
  }

  /** Notes the send buffer of a socket after a send. */
  sendBuffer(bytes: number): void {
    if (bytes <= this.sendBufferMaxValue) return
    this.sendBufferMaxValue = bytes
    this.sendBufferMax.set(bytes)
  }

  /** Counts a refusal. */
  refused(reason: RefusalReason, count = 1): void {
    this.refusals.labels(reason).inc(count)
  }

  /** Text exposition for `GET /metrics`. */
  render(): Promise<string> {
    return this.registry.metrics()
  }

  /** Content type of {@link render}'s output. */
  get contentType(): string {
    return this.registry.contentType
  }
}
