/**
 * The sync client: one WebSocket to the relay's multiplexed endpoint, shared
 * by every open doc.
 *
 * Lifecycle of the connection:
 *
 *     connecting ──hello──▶ online ──socket lost / silent relay──▶ offline ──backoff──▶ connecting …
 *
 * - `online` means the relay answered (its `hello` arrived), not that the
 *   socket opened or that the browser claims to be online.
 * - After `hello` every open doc subscribes and exchanges state vectors with
 *   the relay (sync step 1 / step 2 both ways), so edits made offline go out
 *   and edits made elsewhere come in. To a relay that announces `resume` in
 *   its `hello` (unless the `resume` option is false), the docs subscribe together: one `resume` per 100 docs, one
 *   `resumed` answer per batch, and a step 2 only where the relay lacks
 *   something. A doc opened while online subscribes the same way, as a
 *   `resume` of that one doc. Local edits are never queued as
 *   messages: while offline they live in the Y.Doc, which is the outbox.
 * - Reconnects use exponential backoff with full jitter and a cap; the backoff
 *   restarts after a successful `hello`.
 * - The relay acknowledges durable storage with `ack(doc, stateVector)`;
 *   `pending` is derived from it (see {@link PendingTracker}).
 *
 * Updates and awareness changes applied from the relay carry the client
 * itself as transaction origin (`transaction.origin === client`).
 *
 * This class is the public face and the doc registry; it reads the
 * connection-level messages (the handshake) and hands every other message to
 * the part it is for. The parts, one idea each:
 * - {@link RelayConnection} (sync/RelayConnection): the socket, its phase,
 *   status, watchdog, ping, reconnect with backoff, the browser's `online` hint;
 * - {@link TokenAuth} (sync/TokenAuth): the token source, its refresh, the identity;
 * - {@link CatalogWatches} (sync/CatalogWatches): watched workspaces, re-watched on every connection;
 * - {@link RelayRequests} (sync/RelayRequests): `list-docs`, `fetch`, `list-presence`;
 * - {@link DocHandle} (sync/DocHandle): the per-doc protocol;
 * - sync/receiveFrame: which part each message from the relay goes to.
 *
 * Just over 400 lines: the public API and its documentation; the behaviour
 * behind it lives in the parts above.
 *
 * @example
 *   import { SyncClient } from '@concord/engine'
 *
 *   const client = new SyncClient({ url: 'wss://sync.example.com', user: { id: 'u1', name: 'Ada' } })
 *   client.on('status', (status) => console.log(status)) // 'connecting' | 'online' | 'offline'
 *   const ticket = client.open('acme/T-1')
 *   await ticket.synced
 *   ticket.doc.getText('title').insert(0, 'Fix login')
 *   await client.flush() // every change is durably stored on the relay
 *   client.close()
 *
 * @module sync/SyncClient
 */
import type * as decoding from 'lib0/decoding'
import { ObservableV2 } from 'lib0/observable'
import {
  ErrorCode,
  ListFlags,
  MessageType,
  PROTOCOL_VERSION,
  MAX_LIST_LIMIT,
  RelayFeatures,
  encodeResume,
  inBatches,
  readAuthenticated,
  readError,
  readHello,
  readResumed,
  validateDocName,
  type HelloInfo,
  type PresenceInfo,
  type ResumeEntry,
  type ResumedDoc,
} from '../protocol/messages.js'
import { CatalogWatches, type CatalogWatchListener } from './CatalogWatches.js'
import { CatchUpAllowance } from './catchUpAllowance.js'
import { DocHandle, type DocHandleHost, type OpenDocOptions, type UserInfo } from './DocHandle.js'
import { receiveFrame, type FrameRoutes } from './receiveFrame.js'
import { RelayConnection, type ConnectionStatus } from './RelayConnection.js'
import {
  FIRST_LIST_PAGE,
  RelayRequests,
  type FetchedDoc,
  type ListDocsOptions,
  type ListedDoc,
  type RelayRequestOptions,
} from './RelayRequests.js'
import { relayUrl } from './relayUrl.js'
import type { SyncClientEvents, SyncClientOptions } from './syncClientTypes.js'
import { SyncError } from './SyncError.js'
import { TokenAuth } from './TokenAuth.js'

export { ConnectionStatus } from './RelayConnection.js'
export type { CatalogWatchListener } from './CatalogWatches.js'
export type { SyncClientOptions, SyncClientEvents } from './syncClientTypes.js'

/** A multiplexed, reconnecting Concord sync client. See the module documentation. */
export class SyncClient extends ObservableV2<SyncClientEvents> {
  /** URL of the multiplexed endpoint, without the token. */
  readonly url: string

  /** Who this client says it is: the `user` its docs show in their awareness (see {@link OpenDocOptions.presence}). */
  readonly user: UserInfo | undefined
  private readonly maxMessageBytes: number
  /** Whether docs resume together after a reconnect (see {@link SyncClientOptions.resume}). */
  private readonly resumes: boolean
  private readonly connection: RelayConnection
  private readonly auth: TokenAuth
  private readonly watches: CatalogWatches
  private readonly requests: RelayRequests
  /** The open docs by name (each with its reference count). */
  private readonly handles = new Map<string, DocHandle>()
  private readonly host: DocHandleHost
  /** Sum of the open docs' pending counts, kept as each changes (not summed over every doc at each change). */
  private totalPending = 0
  /** Each open doc's pending count as last added to {@link totalPending}, when not 0. */
  private readonly countedPending = new Map<DocHandle, number>()
  private relayInfo: HelloInfo | null = null
  private readonly clock: () => number
  private offset = 0
  /** Whether {@link offset} was measured from a `hello` (a kept one no longer counts then). */
  private offsetMeasured = false
  /** This device's clock when the current socket was opened: the relay's `hello` on it was sent after that. */
  private socketOpenedAt: number | null = null
  /** Where messages from the relay go (see sync/receiveFrame). */
  private readonly routes: FrameRoutes

  /**
   * Creates the client and starts connecting at once.
   *
   * @throws Error when the URL is invalid or no WebSocket implementation is available.
   */
  constructor(options: SyncClientOptions) {
    super()
    this.url = relayUrl(options.url)
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024
    this.user = options.user
    this.resumes = options.resume ?? true
    this.clock = options.clock ?? Date.now
    this.connection = new RelayConnection(
      {
        url: this.url,
        WebSocket: options.WebSocket,
        reconnect: options.reconnect,
        pingInterval: options.pingInterval,
        timeout: options.timeout,
      },
      {
        receive: (data) => receiveFrame(this.routes, data),
        socketDropped: () => {
          for (const handle of this.handles.values()) handle.disconnect()
          this.requests.disconnected()
        },
        statusChanged: (status) => this.emit('status', [status]),
        reportError: (error) => this.emit('error', [error]),
        socketOpening: () => {
          this.socketOpenedAt = this.clock()
        },
      },
    )
    this.auth = new TokenAuth(
      options.token ?? null,
      this.connection,
      (error) => this.emit('error', [error]),
      () => this.relayTime(),
    )
    this.watches = new CatalogWatches(this.connection)
    this.requests = new RelayRequests(
      (data) => this.connection.send(data),
      3,
      () => ({ features: this.relayInfo?.features ?? 0, maxMessageBytes: this.host.maxMessageBytes }),
    )
    this.routes = {
      requests: this.requests,
      watches: this.watches,
      handle: (doc) => this.handles.get(doc),
      connection: (type, body) => this.receiveConnectionMessage(type, body),
      reportError: (error) => this.emit('error', [error]),
    }
    const client = this
    this.host = {
      origin: this,
      get online() {
        return client.connection.online
      },
      send: (data) => this.connection.send(data),
      get maxMessageBytes() {
        return client.relayInfo?.maxPayload ?? client.maxMessageBytes
      },
      catchUpAllowance: new CatchUpAllowance(),
      pendingChanged: (handle) => {
        // a closed handle is no longer counted, whatever it reports on its way out
        if (this.handles.get(handle.name) === handle) this.countPending(handle, handle.pending)
      },
      released: (handle) => this.release(handle),
      reportError: (error) => this.emit('error', [error]),
    }
    this.connection.start()
  }

  /** `'connecting'`, `'online'` (the relay answered) or `'offline'`. */
  get status(): ConnectionStatus {
    return this.connection.status
  }

  /** Sum of the pending counts of all open docs. */
  get pending(): number {
    return this.totalPending
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.connection.isClosed
  }

  /** Protocol and software version from the relay's last `hello`, or null before the first one. */
  get relay(): HelloInfo | null {
    return this.relayInfo
  }

  /**
   * How far the relay's clock is ahead of this device's, ms (negative: behind),
   * as its last `hello` said; 0 while that is within {@link CLOCK_TOLERANCE_MS}
   * or unknown. Known to within the time from opening the socket to its `hello`.
   */
  get clockOffset(): number {
    return this.offset
  }

  /**
   * The time by the relay's clock: this device's clock corrected by
   * {@link clockOffset}. What changes are stamped with, so that a device whose
   * clock runs ahead does not count its changes as later than they were.
   */
  relayTime(): number {
    return this.clock() + this.offset
  }

  /**
   * Starts from an offset kept from an earlier connection (see the
   * `clock-offset` event), for a start without the relay: ignored once a
   * `hello` told the offset.
   */
  assumeClockOffset(offsetMs: number): void {
    if (this.offsetMeasured || !Number.isFinite(offsetMs)) return
    this.offset = Math.abs(offsetMs) <= CLOCK_TOLERANCE_MS ? 0 : Math.round(offsetMs)
  }

  /** The user the relay authenticated on the current socket (null without auth or before it answered). */
  get identity(): { userId: string; name: string; expiresAt: number | null } | null {
    return this.auth.identity
  }

  /**
   * Opens a doc and starts syncing it (at once when online, otherwise after
   * the next `hello`). Opening a name that is already open returns the same
   * handle with one more reference; every `open` needs its own `close`.
   *
   * @throws Error when the name is invalid, the client is closed, or the name
   *   is open with a different `options.doc`.
   */
  open(name: string, options: OpenDocOptions = {}): DocHandle {
    if (this.isClosed) throw new Error(`cannot open doc "${name}": the SyncClient is closed`)
    const invalid = validateDocName(name)
    if (invalid !== null) throw new Error(`invalid doc name "${String(name).slice(0, 80)}": ${invalid}`)
    const existing = this.handles.get(name)
    if (existing !== undefined) {
      if (options.doc !== undefined && options.doc !== existing.doc) {
        throw new Error(`doc "${name}" is already open with a different Y.Doc; close it first`)
      }
      existing.addRef()
      return existing
    }
    const handle = new DocHandle(this.host, name, options, this.user)
    this.handles.set(name, handle)
    if (this.connection.online) this.subscribe([handle])
    this.countPending(handle, handle.pending)
    return handle
  }

  /** The open handle of `name`, if any. Does not add a reference. */
  get(name: string): DocHandle | undefined {
    return this.handles.get(name)
  }

  /** Names of all open docs. */
  get docNames(): string[] {
    return Array.from(this.handles.keys())
  }

  /** Releases one reference of an open doc; same as `handle.close()`. Unknown names are ignored. */
  closeDoc(name: string): void {
    this.handles.get(name)?.close()
  }

  /**
   * Resolves when every local change of `docName` (or of every open doc) is
   * durably stored on the relay. Waits through disconnects and reconnects.
   * Rejects when the client or doc is closed first, when the doc is not
   * open, or when a doc has or gets a permanent error.
   */
  flush(docName?: string): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error('the SyncClient is closed'))
    if (docName !== undefined) {
      const handle = this.handles.get(docName)
      if (handle === undefined) return Promise.reject(new Error(`doc "${docName}" is not open`))
      return handle.flush()
    }
    return Promise.all(Array.from(this.handles.values(), (handle) => handle.flush())).then(() => undefined)
  }

  /**
   * Names of every doc the relay has stored under `prefix` (e.g. `'acme/'`
   * for all records of workspace `acme`), sorted, without subscribing to
   * any. Follows the relay's pagination over the one socket. Waits for the
   * connection when offline; a request lost with its socket is repeated on
   * the next one (at most 3 sockets).
   *
   * @throws (rejects) {@link SyncError} when the relay refuses (e.g. an
   *   invalid prefix or storage unavailable), or Error when the client is
   *   closed, the signal aborts, or the relay never answers.
   */
  async listDocs(prefix: string, options: ListDocsOptions = {}): Promise<string[]> {
    return (await this.listPages('listDocs', prefix, 0, options)).map((doc) => doc.name)
  }

  /**
   * Like {@link listDocs}, with each doc's change sequence on the relay
   * (`seq`): the number of the last change the relay stored of the doc. It
   * grows with every stored change, so a doc whose `seq` equals the one seen
   * before has nothing new since. `seq` is null from a relay that does not
   * report it (then every doc may have changed).
   */
  async listDocsWithSeqs(prefix: string, options: ListDocsOptions = {}): Promise<ListedDoc[]> {
    return this.listPages('listDocsWithSeqs', prefix, ListFlags.seqs, options)
  }

  /** Follows the relay's `list-docs` pagination; `flags` are the protocol's {@link ListFlags}. */
  private async listPages(method: string, prefix: string, flags: number, options: ListDocsOptions): Promise<ListedDoc[]> {
    if (this.isClosed) throw new Error('the SyncClient is closed')
    if (typeof prefix !== 'string') throw new Error(`${method}: prefix must be a string`)
    const pageSize = options.pageSize ?? MAX_LIST_LIMIT
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_LIST_LIMIT) {
      throw new Error(`${method}: pageSize must be an integer from 1 to ${MAX_LIST_LIMIT}`)
    }
    const docs: ListedDoc[] = []
    let after = ''
    for (;;) {
      // without a pageSize, a small first page: the caller starts on it while the rest comes
      const limit = options.pageSize === undefined && after === '' ? FIRST_LIST_PAGE : pageSize
      const page = await this.requests.listPage(prefix, after, limit, flags, options)
      const listed = page.names.map((name, i): ListedDoc => ({ name, seq: page.seqs?.[i] ?? null }))
      docs.push(...listed)
      options.onPage?.(listed)
      if (!page.more || page.names.length === 0) return docs
      after = page.names[page.names.length - 1]!
    }
  }

  /**
   * The part of doc `name` that `stateVector` lacks, plus the state vector the
   * relay has durably stored for it — without subscribing. Use it to fill a
   * fresh device in bulk: apply `update`, persist it, and keep `stateVector`
   * as the acked state (pass it to `open(name, { ackedStateVector })` later).
   * Waits for the connection when offline, like {@link listDocs}.
   *
   * @param stateVector encoded state vector of what this device already has; default: nothing
   * @throws (rejects) {@link SyncError} when the relay refuses, Error when the
   *   name is invalid, the client is closed or the signal aborts.
   */
  fetchDoc(name: string, stateVector?: Uint8Array, options: RelayRequestOptions = {}): Promise<FetchedDoc> {
    if (this.isClosed) return Promise.reject(new Error('the SyncClient is closed'))
    const invalid = validateDocName(name)
    if (invalid !== null) return Promise.reject(new Error(`invalid doc name "${String(name).slice(0, 80)}": ${invalid}`))
    return this.requests.fetch(name, stateVector ?? EMPTY_STATE_VECTOR, options)
  }

  /**
   * Last-seen records of every user the relay has seen in `workspace`
   * (`list-presence`): online users first (`lastSeen` = now), then by
   * `lastSeen`, newest first. Needs read access to the workspace. Waits for
   * the connection when offline, like {@link listDocs}.
   *
   * @example
   *   for (const u of await client.lastSeen('acme')) console.log(u.name, u.online ? 'online' : new Date(u.lastSeen))
   */
  lastSeen(workspace: string, options: RelayRequestOptions = {}): Promise<PresenceInfo[]> {
    if (this.isClosed) return Promise.reject(new Error('the SyncClient is closed'))
    const invalid = validateDocName(workspace)
    if (invalid !== null || workspace.includes('/')) {
      return Promise.reject(
        new Error(`invalid workspace id "${String(workspace).slice(0, 80)}": ${invalid ?? 'one doc-name segment expected'}`),
      )
    }
    return this.requests.presence(workspace, options)
  }

  /**
   * Follows which docs of `workspace` others change: the relay tells this
   * client the names of the workspace's docs after it stored their changes
   * (`watch-catalog` / `catalog-changed`; needs read access to the workspace,
   * and names of docs the user may not read are never sent). Watching goes
   * on over reconnects; after each (re)connect `listener.watching()` is
   * called — what changed while offline is not told, so catch up then.
   *
   * @returns the function that stops this listener's watch
   * @example
   *   const stop = client.watchCatalog('acme', {
   *     changed: (names) => names.forEach(refresh),
   *     watching: () => void catchUp(),
   *   })
   */
  watchCatalog(workspace: string, listener: CatalogWatchListener): () => void {
    if (this.isClosed) throw new Error('the SyncClient is closed')
    const invalid = validateDocName(workspace)
    if (invalid !== null || workspace.includes('/')) {
      throw new Error(`invalid workspace id "${String(workspace).slice(0, 80)}": ${invalid ?? 'one doc-name segment expected'}`)
    }
    return this.watches.add(workspace, listener)
  }

  /**
   * Drops the current socket (if any) and connects again right away with a
   * fresh backoff — a "sync now" button. Also resumes after a permanent
   * connection error (e.g. once a new token is in place).
   */
  reconnect(): void {
    this.connection.reconnect()
  }

  /**
   * Replaces the token. While online it is sent at once (a refresh: it must
   * be for the same user); after a permanent auth error it reconnects.
   */
  setToken(token: string | (() => string | Promise<string>)): void {
    if (this.isClosed) return
    this.auth.replace(token)
    if (this.connection.isHalted) this.reconnect()
    else if (this.connection.online) void this.auth.send()
  }

  /**
   * Closes every doc (awareness removal + `unsubscribe` are sent when
   * online), rejects waiting flushes, closes the socket and stops all timers.
   * Idempotent.
   */
  close(): void {
    this.connection.close(() => {
      const reason = new Error('the SyncClient was closed')
      for (const handle of this.handles.values()) handle.shutdown(reason)
      this.handles.clear()
      this.requests.rejectAll(reason)
      this.watches.clear()
      this.auth.stop()
    })
  }

  // ---------------------------------------------------------------------------

  /**
   * Takes the offset of this device's clock from the relay's time in a
   * `hello`. The relay read its clock after this socket was opened and
   * before the `hello` arrived, so the offset lies between the relay's time
   * less the device's time now and the relay's time less the device's time
   * at the opening: a `hello` that took long (a busy relay or device) leaves
   * a wide range. The one in use stays while it is within the tolerance of
   * that range — so the latency of each connection does not jitter the
   * stamps — else the offset becomes the one in the range nearest to none,
   * and none when that is within the tolerance: a device whose clock may be
   * right is not corrected by a slow answer.
   */
  private measureClock(relayTime: number): void {
    // A relay whose clock was never set (a board without a battery-backed clock starts in 1970) is no reference.
    if (relayTime < UNSET_CLOCK_BEFORE) return
    const now = this.clock()
    const least = relayTime - now
    const most = relayTime - Math.min(now, this.socketOpenedAt ?? now)
    this.offsetMeasured = true
    if (this.offset >= least - CLOCK_TOLERANCE_MS && this.offset <= most + CLOCK_TOLERANCE_MS) return
    const nearest = Math.min(Math.max(0, least), most)
    const offset = Math.abs(nearest) <= CLOCK_TOLERANCE_MS ? 0 : nearest
    if (offset === this.offset) return
    this.offset = offset
    this.emit('clock-offset', [this.offset])
  }

  /** A message about the whole connection (doc ""): the handshake, `pong`, connection errors. */
  private receiveConnectionMessage(type: number, body: decoding.Decoder): void {
    switch (type) {
      case MessageType.hello: {
        this.relayInfo = readHello(body)
        if (this.relayInfo.time !== null) this.measureClock(this.relayInfo.time)
        if (this.relayInfo.protocolVersion !== PROTOCOL_VERSION) {
          this.emit('error', [
            new SyncError(
              '',
              ErrorCode.unknownType,
              `relay speaks protocol ${this.relayInfo.protocolVersion}, this client ${PROTOCOL_VERSION}`,
            ),
          ])
        }
        if (this.connection.online) return
        if (this.auth.required) {
          void this.auth.send()
          return // the handshake completes on `authenticated`
        }
        this.completeHandshake()
        return
      }
      case MessageType.authenticated: {
        this.auth.authenticated(readAuthenticated(body))
        if (!this.connection.online) this.completeHandshake()
        return
      }
      case MessageType.pong:
        return // the connection's watchdog counts every message
      case MessageType.resumed:
        this.receiveResumed(readResumed(body))
        return
      case MessageType.error: {
        const { code, reason } = readError(body)
        const error = new SyncError('', code, reason)
        this.emit('error', [error])
        // e.g. unauthorized: the same token would be refused again. Wait for `reconnect()` / `setToken()`.
        if (error.permanent) this.connection.halt()
        return
      }
    }
  }

  /**
   * The relay answered (and accepted the token, if any): go online and
   * subscribe every open doc — in `resume` messages when the relay takes
   * them, else one `subscribe` and sync step 1 per doc.
   */
  private completeHandshake(): void {
    this.connection.handshakeCompleted()
    this.subscribe(this.handles.values())
    // Watches before requests: a catch-up list sent by `watching()` is answered after the watch is in place.
    this.watches.connected()
    if (this.connection.online) this.requests.connected()
  }

  /**
   * Subscribes docs: after the handshake every open doc, later a doc opened
   * while online. To a relay that takes `resume`, with their state vectors
   * in `resume` messages of at most {@link RESUME_BATCH_DOCS} docs and half
   * the relay's largest frame (one frame each way for a single doc; the
   * relay's step 1 only where it lacks something), then each doc's presence
   * (as a `subscribe` is followed by it); else one `subscribe` and sync step
   * 1 per doc.
   */
  private subscribe(handles: Iterable<DocHandle>): void {
    if (!this.resumes || ((this.relayInfo?.features ?? 0) & RelayFeatures.resume) === 0) {
      for (const handle of handles) {
        if (!this.connection.online) break // the socket failed while subscribing; the next hello starts over
        handle.connect()
      }
      return
    }
    const subscribed: DocHandle[] = []
    const entries: ResumeEntry[] = []
    for (const handle of handles) {
      const entry = handle.resumeEntry()
      if (entry === null) continue
      entries.push(entry)
      subscribed.push(handle)
    }
    this.together(() => {
      for (const batch of inBatches(entries, RESUME_BATCH_DOCS, this.host.maxMessageBytes / 2)) this.connection.send(encodeResume(batch))
      for (const handle of subscribed) {
        if (!this.connection.online) break // the socket failed while subscribing; the next hello starts over
        handle.announcePresence()
      }
    })
  }

  /** A `resumed` answer: each entry goes to its doc's open handle (their step 2s to the relay in batches). */
  private receiveResumed(entries: readonly ResumedDoc[]): void {
    this.together(() => {
      for (const entry of entries) this.handles.get(entry.doc)?.receiveResumed(entry)
    })
  }

  /** Runs `fn`; what it sends goes out in `batch` messages when the relay takes them (see `RelayConnection.together`). */
  private together(fn: () => void): void {
    if (((this.relayInfo?.features ?? 0) & RelayFeatures.batch) === 0) fn()
    else this.connection.together(fn, this.host.maxMessageBytes)
  }

  /** Counts `pending` as `handle`'s share of the total from now on; emits `pending` when the total changed. */
  private countPending(handle: DocHandle, pending: number): void {
    const before = this.countedPending.get(handle) ?? 0
    if (pending === before) return
    if (pending === 0) this.countedPending.delete(handle)
    else this.countedPending.set(handle, pending)
    this.totalPending += pending - before
    this.emit('pending', [this.totalPending])
  }

  private release(handle: DocHandle): void {
    if (this.handles.get(handle.name) === handle) this.handles.delete(handle.name)
    this.countPending(handle, 0)
  }
}

/**
 * Docs per `resume` message the client sends: well below what a relay takes
 * in one (`MAX_RESUME_DOCS`), and small enough that the relay's answers to
 * one socket start while the rest is on its way.
 */
const RESUME_BATCH_DOCS = 100

/**
 * A device clock within this many ms of the relay's is taken as right (its
 * stamps are not corrected), and a measured offset replaces the one in use
 * only when they differ by more.
 */
export const CLOCK_TOLERANCE_MS = 1000

/** A relay time before this (2024-01-01) is a clock that was never set: the device keeps its own. */
const UNSET_CLOCK_BEFORE = Date.UTC(2024, 0, 1)

/** Encoded empty state vector: "this device has nothing of the doc". */
const EMPTY_STATE_VECTOR = new Uint8Array([0])
