/**
 * The relay: HTTP + WebSocket shell around the room registry and the group
 * commit queue. `main.ts` builds one from validated config; tests and
 * benchmarks build them in-process with {@link createRelay}.
 *
 * - `/api/v1/…` the HTTP API (records and webhooks, see `http/api/ApiRouter`
 *   and `docs/api.md`), any method.
 * - `GET /healthz` liveness, `GET /readyz` storage reachable and commits
 *   succeeding (503 while draining, while storage does not answer, and
 *   while commits fail — nothing is acked then), `GET /metrics` Prometheus text, `GET /.concord/config`
 *   what the web app must know before it connects (`{ auth: "jwt" | "none" }`:
 *   whether sign-in takes a token), anything else: the web app.
 * - WebSocket `/.concord/v1`: the multiplexed protocol.
 * - WebSocket `/<docName>`: y-websocket compatible.
 * - At most `maxConnections` WebSockets are open (or being authenticated)
 *   at once; further upgrades are refused with 503.
 * - Before authentication (see security/admission.ts): TCP sockets whose
 *   HTTP request is not complete are counted (`maxIncompleteRequests`) and
 *   closed after `headerTimeoutMs`; upgrades are rate limited per client
 *   address (429); sockets without an identity have their own small cap,
 *   relay-wide and per address (503), so authenticated users always find a
 *   slot; each user has at most `maxConnectionsPerUser` connections (503).
 *
 * Longer than 400 lines: it is the relay's wiring (HTTP routes, upgrades
 * and admission, heartbeat, readiness, graceful shutdown in order). The
 * logic each route calls lives in its own module; what stays here is the
 * order things start and stop in, which is easiest to check in one place.
 *
 * @module Relay
 */
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { CloseCode, MUX_PATH, validateDocName } from '@concord/engine/protocol'
import type { Storage } from './storage/Storage.js'
import { RelayMetrics } from './observability/metrics.js'
import { silentLogger, type Logger } from './observability/logger.js'
import { CommitQueue, type CommitQueueOptions } from './rooms/CommitQueue.js'
import { inOneBatch } from './connections/batches.js'
import { CatalogFeed } from './rooms/CatalogFeed.js'
import { RoomRegistry } from './rooms/RoomRegistry.js'
import type { Connection, ConnectionContext } from './connections/Connection.js'
import { MuxConnection } from './connections/MuxConnection.js'
import { YwsConnection } from './connections/YwsConnection.js'
import { createStaticHandler } from './http/staticFiles.js'
import { RELAY_VERSION } from './version.js'
import { ANONYMOUS, Access, AuthError, NoAuthenticator, accessFor, type Authenticator, type Identity } from './auth/Authenticator.js'
import { SUBPROTOCOL, redactUrl, tokenFromRequest } from './auth/tokens.js'
import { Admission, type Refusal, type UnauthenticatedSlot } from './security/admission.js'
import { limitContradictions, resolveLimits, type RelayLimits } from './security/limits.js'
import { InitialSyncQueue } from './connections/initialSync.js'
import { LastSeen } from './presence/LastSeen.js'
import { SchemaRegistry, type RecordSchema } from '@concord/engine'
import { appSchemas } from '@concord/engine/schemas'
import { ApiRouter, DEFAULT_MAX_BODY_BYTES } from './http/api/ApiRouter.js'
import { RecordAccess } from './http/api/RecordAccess.js'
import { WebhookSubscriptions, type SharedWebhookStore } from './webhooks/WebhookSubscriptions.js'
import { WebhookDeliveries, type WebhookDeliveryOptions } from './webhooks/WebhookDeliveries.js'
import { RecordChanges } from './webhooks/RecordChanges.js'
import type { Cluster } from './cluster/Cluster.js'
import { inSlices } from './inSlices.js'

/** Default interval of the heartbeat pings, ms: a silently lost peer is terminated within two intervals. */
export const DEFAULT_HEARTBEAT_MS = 10_000

/** Options of {@link createRelay}. */
export interface RelayOptions {
  storage: Storage
  /** Link to the other relay instances sharing `storage` (closed with the relay); unset on a single relay. */
  cluster?: Cluster
  /** Port to listen on; 0 picks a free one. Default 8787. */
  port?: number
  /** Address to bind. Default 127.0.0.1. */
  host?: string
  logger?: Logger
  /** Folder of the built web app to serve, or null. */
  webRoot?: string | null
  /** Delay before an unused room unloads, ms. Default 10 000. */
  idleUnloadMs?: number
  /** How long a loaded doc nobody writes to keeps its `Y.Doc` before the room holds only its encoded state, ms, at most; 0: never. Default 10 000. */
  dormantAfterMs?: number
  /** Longest run of the sweep that puts rooms to sleep in one event-loop turn, ms (see `inSlices`). Default 2. */
  sweepSliceMs?: number
  /** Verifies tokens. Default: no auth (every connection is anonymous with write access). */
  auth?: Authenticator
  /** Browser origins allowed to open WebSockets; unset = any. Requests without an Origin header are allowed. */
  allowedOrigins?: readonly string[]
  /** Limits; unset fields keep their defaults (see security/limits.ts). */
  limits?: Partial<RelayLimits>
  /**
   * Interval of WebSocket pings that find dead peers, ms. A peer that did
   * not answer the previous ping is terminated (its presence is removed and
   * the removal broadcast): a silently lost connection is gone within two
   * intervals. Default 10 000 (gone within 20 s).
   */
  heartbeatMs?: number
  /** Commit and checkpoint tuning. */
  commit?: CommitQueueOptions
  /** Longest graceful shutdown before sockets and storage are closed anyway, ms. Default 10 000. */
  shutdownTimeoutMs?: number
  /** Collect process metrics (CPU, memory, event loop). Default true. */
  processMetrics?: boolean
  /**
   * Addresses (or CIDR ranges) of reverse proxies whose `X-Forwarded-For`
   * header names the client for the per-address limits. Default none: the
   * socket's peer address is the client.
   */
  trustedProxies?: readonly string[]
  /** Record types the HTTP API reads and validates writes against. Default: the app's (`@concord/engine/schemas`). */
  schemas?: readonly RecordSchema[]
  /** HTTP API tuning. */
  api?: {
    /** Largest request body, bytes. Default 256 KiB. */
    maxBodyBytes?: number
    /** Longest wait for the commit that stores an API write, ms, before answering 503. Default 30 000. */
    commitTimeoutMs?: number
  }
  /** Webhooks: where subscriptions are kept and how deliveries are sent. */
  webhooks?: WebhookDeliveryOptions & {
    /** JSON file of the subscriptions (e.g. `<data>/webhooks.json`); null keeps them in memory. Default null. */
    file?: string | null
    /**
     * Subscriptions shared with other relay instances (PostgreSQL storage): kept there instead of in `file`, which
     * is imported once if it exists. Default null.
     */
    shared?: SharedWebhookStore | null
    /** With `shared`: how often the subscriptions are read again, ms. Default 2000. */
    refreshMs?: number
    /** Quiet period of a record before its change is delivered, ms. Default 1000. */
    debounceMs?: number
  }
}

/** A running relay. */
export interface Relay {
  /** `http://HOST:PORT`. */
  readonly url: string
  readonly port: number
  readonly metrics: RelayMetrics
  readonly rooms: RoomRegistry
  /** Number of open WebSocket connections. */
  readonly connectionCount: number
  /** Bytes of messages waiting in all connections, for authentication or for docs that load. */
  readonly queuedBytes: number
  /** Stops accepting, stores and acks everything in flight, closes sockets (1001) and storage. Idempotent. */
  close(): Promise<void>
}

/** Starts a relay and resolves once it accepts connections. */
export const createRelay = async (options: RelayOptions): Promise<Relay> => {
  const relay = new RelayServer(options)
  await relay.listen()
  return relay
}

class RelayServer implements Relay {
  readonly metrics: RelayMetrics
  readonly rooms: RoomRegistry
  private readonly commits: CommitQueue
  private readonly storage: Storage
  private readonly log: Logger
  private readonly server: http.Server
  private readonly wss: WebSocketServer
  private readonly connections = new Set<Connection>()
  private readonly serveStatic: ReturnType<typeof createStaticHandler>
  private readonly ctx: ConnectionContext
  private heartbeat: ReturnType<typeof setInterval> | null = null
  private draining = false
  /** Upgrades whose token is being verified: they count against `maxConnections` too. */
  private upgrading = 0
  private closing: Promise<void> | null = null
  private address: AddressInfo | null = null
  private readonly auth: Authenticator
  private readonly limits: RelayLimits
  private readonly allowedOrigins: ReadonlySet<string> | null
  private readonly lastSeen: LastSeen
  private readonly catalogFeed: CatalogFeed
  private readonly admission: Admission
  /** TCP sockets whose HTTP request is not complete, with the timer that closes them. */
  private readonly incomplete = new Map<Socket, ReturnType<typeof setTimeout>>()
  private readonly api: ApiRouter
  private readonly webhookSubscriptions: WebhookSubscriptions
  private readonly webhookDeliveries: WebhookDeliveries
  private readonly recordChanges: RecordChanges

  constructor(private readonly options: RelayOptions) {
    this.storage = options.storage
    this.auth = options.auth ?? new NoAuthenticator()
    this.limits = resolveLimits(options.limits)
    const contradictions = limitContradictions(this.limits)
    if (contradictions.length > 0) throw new Error(`limits contradict each other: ${contradictions.join('; ')}`)
    this.allowedOrigins = options.allowedOrigins?.length ? new Set(options.allowedOrigins) : null
    this.log = options.logger ?? silentLogger()
    this.metrics = new RelayMetrics({ collectDefault: options.processMetrics ?? true })
    this.admission = new Admission(this.limits, this.metrics, { trustedProxies: options.trustedProxies })
    this.commits = new CommitQueue(this.storage, this.metrics, this.log, options.commit)
    this.commits.acksTogether = inOneBatch
    this.rooms = new RoomRegistry(this.storage, this.commits, this.metrics, this.log, {
      idleUnloadMs: options.idleUnloadMs,
      dormantAfterMs: options.dormantAfterMs,
      sweepSliceMs: options.sweepSliceMs,
      docLimits: this.limits,
      follower: options.cluster,
    })
    this.lastSeen = new LastSeen(this.storage, this.log)
    this.catalogFeed = new CatalogFeed()
    this.commits.onCommit((docs) => this.catalogFeed.publish(docs))
    const cluster = options.cluster
    if (cluster !== undefined) {
      // Several instances: stored batches, stored doc names and presence cross to the others (cluster/Cluster.ts).
      this.commits.setObserver(cluster)
      this.commits.onCommit((docs, lastSeqs) => cluster.storedDocs(docs, lastSeqs))
      cluster.onStoredElsewhere((docs) => this.catalogFeed.publish(docs))
      this.catalogFeed.onWorkspaceWatched((workspace, watched) => {
        if (watched) void cluster.watchCatalog(workspace)
        else cluster.unwatchCatalog(workspace)
      })
      cluster.watchDegraded((degraded) => this.metrics.clusterDegraded.set(degraded ? 1 : 0))
      this.metrics.clusterPublishStats = () => cluster.publishStats
    }
    this.ctx = {
      catalogFeed: this.catalogFeed,
      lastSeen: this.lastSeen,
      rooms: this.rooms,
      commits: this.commits,
      metrics: this.metrics,
      relayVersion: RELAY_VERSION,
      auth: this.auth,
      limits: this.limits,
      admission: this.admission,
      initialSyncs: new InitialSyncQueue(this.limits.initialSyncChunkBytes, this.limits.maxInitialSyncBytes, (bytes) =>
        this.metrics.initialSyncBytes.set(bytes),
      ),
    }
    this.serveStatic = createStaticHandler(options.webRoot ?? null)
    const schemas = new SchemaRegistry(options.schemas ?? appSchemas)
    const subscriptions = new WebhookSubscriptions(
      options.webhooks?.file ?? null,
      options.webhooks?.shared ?? null,
      options.webhooks?.refreshMs,
    )
    this.webhookSubscriptions = subscriptions
    this.webhookDeliveries = new WebhookDeliveries(subscriptions, this.metrics, this.log.child({ component: 'webhooks' }), options.webhooks)
    this.recordChanges = new RecordChanges(
      this.rooms,
      this.commits,
      subscriptions,
      schemas,
      this.webhookDeliveries,
      options.webhooks?.debounceMs,
    )
    this.api = new ApiRouter({
      auth: this.auth,
      rooms: this.rooms,
      records: new RecordAccess(this.rooms, schemas, {
        maxDocBytes: this.limits.maxDocBytes,
        commitTimeoutMs: options.api?.commitTimeoutMs ?? 30_000,
      }),
      subscriptions,
      metrics: this.metrics,
      log: this.log.child({ component: 'api' }),
      maxBodyBytes: options.api?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      draining: () => this.draining,
      allowedOrigins: this.allowedOrigins,
    })
    const headerTimeoutMs = this.limits.headerTimeoutMs
    this.server = http.createServer(
      // the first request's header is timed by trackRequest; node's own timeouts (a second later) cover a kept-alive socket's later requests
      {
        headersTimeout: headerTimeoutMs + 1000,
        requestTimeout: headerTimeoutMs + 1000,
        connectionsCheckingInterval: Math.min(30_000, headerTimeoutMs),
      },
      (req, res) => {
        this.requestComplete(req.socket)
        this.handleHttp(req, res).catch((error: unknown) => {
          this.log.error({ err: error }, 'http handler failed')
          if (!res.headersSent) res.writeHead(500)
          res.end()
        })
      },
    )
    this.server.on('connection', (socket: Socket) => this.trackRequest(socket))
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.limits.maxPayload,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    })
    this.server.on('upgrade', (req, socket, head) => this.handleUpgrade(req, socket, head))
    this.server.on('clientError', (_error, socket) => socket.destroy())
  }

  get url(): string {
    const { address, family, port } = this.address!
    const host = family === 'IPv6' ? `[${address}]` : address
    return `http://${host}:${port}`
  }

  get port(): number {
    return this.address!.port
  }

  get connectionCount(): number {
    return this.connections.size
  }

  get queuedBytes(): number {
    let total = 0
    for (const connection of this.connections) total += connection.queuedBytes
    return total
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.options.port ?? 8787, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject)
        this.address = this.server.address() as AddressInfo
        const heartbeatMs = this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
        // in slices: a ping is a socket write, and thousands at once held the event loop for tens of ms
        this.heartbeat = setInterval(() => {
          inSlices(this.connections, (connection) => connection.heartbeat()).catch((err: unknown) =>
            this.log.error({ err }, 'heartbeat failed'),
          )
        }, heartbeatMs)
        this.heartbeat.unref()
        resolve()
      })
    })
  }

  close(): Promise<void> {
    this.closing ??= this.runClose()
    return this.closing
  }

  private async runClose(): Promise<void> {
    this.draining = true
    this.log.info('shutting down: storing and acknowledging everything in flight')
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.recordChanges.close()
    this.webhookSubscriptions.close()
    this.webhookDeliveries.close()
    for (const socket of [...this.incomplete.keys()]) socket.destroy()
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    const timeoutMs = this.options.shutdownTimeoutMs ?? 10_000
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    })
    const drained = await Promise.race([this.commits.whenIdle().then(() => 'drained' as const), timedOut])
    if (drained === 'timeout') {
      this.log.error({ timeoutMs }, 'shutdown timed out with updates not stored; they were never acknowledged')
      this.commits.stop()
    }
    for (const connection of this.connections) connection.close(CloseCode.goingAway, 'relay shutting down')
    this.catalogFeed.clear()
    // give close frames a moment, then cut what is left
    await Promise.race([this.allClosed(), new Promise((resolve) => setTimeout(resolve, 1000))])
    for (const connection of this.connections) connection.ws.terminate()
    clearTimeout(timer)
    if (drained !== 'timeout') await this.rooms.unloadAll()
    await this.options.cluster?.close()
    await this.lastSeen.close().catch((error: unknown) => this.log.warn({ err: error }, 'could not store last-seen presence'))
    this.wss.close()
    await serverClosed
    await this.storage.close()
    this.log.info('relay stopped')
  }

  private allClosed(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.connections.size === 0) resolve()
        else setTimeout(check, 10)
      }
      check()
    })
  }

  private async handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = (req.url ?? '/').split('?')[0]
    if (ApiRouter.handles(pathname)) return this.api.handle(req, res)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' })
      res.end()
      return
    }
    switch (pathname) {
      case '/healthz':
        return json(res, 200, { status: 'ok' })
      case '/.concord/config':
        return json(res, 200, { auth: this.auth.kind })
      case '/readyz': {
        if (this.draining) return json(res, 503, { status: 'draining' })
        try {
          await this.storage.ping()
        } catch (error) {
          return json(res, 503, { status: 'storage unavailable', reason: (error as Error).message })
        }
        const commitFailure = this.commits.failure
        if (commitFailure !== null) {
          return json(res, 503, {
            status: 'commits failing',
            reason: `${commitFailure} (updates kept in memory and retried; nothing acked)`,
          })
        }
        return json(res, 200, { status: 'ready', storage: this.storage.kind })
      }
      case '/metrics': {
        const body = await this.metrics.render()
        res.writeHead(200, { 'content-type': this.metrics.contentType })
        res.end(body)
        return
      }
      default:
        return this.serveStatic(req, res)
    }
  }

  /** Counts a new TCP socket until its HTTP request is complete; closes it after `headerTimeoutMs`. */
  private trackRequest(socket: Socket): void {
    if (this.incomplete.size >= this.limits.maxIncompleteRequests) {
      this.metrics.refused('too-many-incomplete-requests')
      socket.destroy()
      return
    }
    const timer = setTimeout(() => {
      if (!this.incomplete.has(socket)) return
      this.metrics.refused('header-timeout')
      this.log.debug({ remote: socket.remoteAddress }, 'closing socket: no complete request in time')
      socket.destroy()
    }, this.limits.headerTimeoutMs)
    timer.unref()
    this.incomplete.set(socket, timer)
    this.metrics.unauthenticatedSockets.labels('request').inc()
    socket.once('close', () => this.requestComplete(socket))
  }

  /** The socket's request arrived whole (or the socket closed): it no longer counts as incomplete. */
  private requestComplete(socket: Socket): void {
    const timer = this.incomplete.get(socket)
    if (timer === undefined) return
    clearTimeout(timer)
    this.incomplete.delete(socket)
    this.metrics.unauthenticatedSockets.labels('request').dec()
  }

  private handleUpgrade(req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer): void {
    this.requestComplete(req.socket)
    if (this.draining) return rejectUpgrade(socket, 503, 'relay shutting down')
    const origin = req.headers.origin
    if (this.allowedOrigins && origin !== undefined && !this.allowedOrigins.has(origin)) {
      this.metrics.refused('origin')
      this.log.info({ origin }, 'refused: origin not allowed')
      return rejectUpgrade(socket, 403, 'origin not allowed')
    }
    const address = this.admission.clientAddress(req)
    const rateRefusal = this.admission.admitUpgrade(address)
    if (rateRefusal) return this.refuseUpgrade(socket, rateRefusal, address)
    if (this.connections.size + this.upgrading >= this.limits.maxConnections) {
      this.metrics.refused('too-many-connections')
      this.log.warn({ maxConnections: this.limits.maxConnections }, 'refused: too many connections')
      return rejectUpgrade(socket, 503, `the relay has ${this.limits.maxConnections} connections open; retry later`)
    }
    const pathname = redactUrl(req.url)
    let docName: string | null = null
    if (pathname !== MUX_PATH) {
      try {
        docName = decodeURIComponent(pathname.slice(1))
      } catch {
        return rejectUpgrade(socket, 400, 'doc name is not valid percent-encoding')
      }
      const invalid = validateDocName(docName)
      if (invalid) return rejectUpgrade(socket, 400, invalid)
    }
    // until its token is verified (or, without one, until its auth message is), the socket has no identity
    let slot: UnauthenticatedSlot | null = null
    if (this.auth.kind !== 'none') {
      const admitted = this.admission.admitUnauthenticated(address)
      if ('status' in admitted) return this.refuseUpgrade(socket, admitted, address)
      slot = admitted
      socket.once('close', () => admitted.release())
      slot.verifying = tokenFromRequest(req) !== null
    }
    this.upgrading++
    this.identify(req).then(
      (identity) => {
        this.upgrading--
        if (identity !== null) slot?.release()
        if (socket.destroyed) {
          slot?.release()
          return
        }
        if (identity === null && docName !== null) {
          slot?.release()
          this.metrics.refused('unauthorized')
          return rejectUpgrade(socket, 401, 'a token is required (?token=…)')
        }
        let writable = true
        if (identity && docName !== null) {
          const access = accessFor(identity, docName)
          if (access === Access.none) {
            this.metrics.refused('permission')
            return rejectUpgrade(socket, 403, `no access to "${docName}"`)
          }
          writable = access === Access.write
        }
        if (identity && !identity.anonymous) {
          const userRefusal = this.admission.admitUser(identity.userId)
          if (userRefusal) return this.refuseUpgrade(socket, userRefusal, address)
        }
        this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, docName, address, identity, writable, slot))
      },
      (error: unknown) => {
        this.upgrading--
        slot?.release()
        const reason = error instanceof AuthError ? error.message : 'token could not be verified'
        this.metrics.refused(reason === 'token expired' ? 'token-expired' : 'unauthorized')
        this.log.info({ reason, path: pathname }, 'refused: bad token')
        rejectUpgrade(socket, 401, `unauthorized: ${reason}`)
      },
    )
  }

  private refuseUpgrade(socket: import('node:stream').Duplex, refusal: Refusal, address: string): void {
    this.metrics.refused(refusal.reason)
    this.log.debug({ reason: refusal.reason, remote: address }, 'refused upgrade')
    rejectUpgrade(socket, refusal.status, refusal.message)
  }

  /**
   * The identity of an upgrade request: from its token when it has one;
   * anonymous when the relay runs without auth; null when the connection must
   * authenticate in-band (multiplexed endpoint) or be refused.
   */
  private async identify(req: http.IncomingMessage): Promise<Identity | null> {
    const token = tokenFromRequest(req)
    if (this.auth.kind === 'none') return ANONYMOUS
    if (token === null) return null
    return this.auth.verify(token)
  }

  private accept(
    ws: WebSocket,
    docName: string | null,
    address: string,
    identity: Identity | null,
    writable: boolean,
    slot: UnauthenticatedSlot | null,
  ): void {
    const protocol = docName === null ? 'mux' : 'yws'
    const log = this.log.child({
      protocol,
      remote: address,
      ...(identity && !identity.anonymous ? { user: identity.userId } : {}),
      ...(docName ? { doc: docName } : {}),
    })
    const connection =
      docName === null
        ? new MuxConnection(ws, this.ctx, log, identity, identity === null ? slot : null)
        : new YwsConnection(ws, this.ctx, log, docName, identity!, writable)
    this.connections.add(connection)
    this.metrics.connections.labels(protocol).inc()
    log.debug({ conn: connection.id }, 'connection opened')
    ws.on('close', () => {
      this.connections.delete(connection)
      this.metrics.connections.labels(protocol).dec()
    })
  }
}

const json = (res: http.ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body) + '\n')
}

const rejectUpgrade = (socket: import('node:stream').Duplex, status: number, reason: string): void => {
  const body = reason + '\n'
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}
