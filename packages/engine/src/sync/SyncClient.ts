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
 *   and edits made elsewhere come in. Local edits are never queued as
 *   messages: while offline they live in the Y.Doc, which is the outbox.
 * - Reconnects use exponential backoff with full jitter and a cap; the backoff
 *   restarts after a successful `hello`.
 * - The relay acknowledges durable storage with `ack(doc, stateVector)`;
 *   `pending` is derived from it (see {@link PendingTracker}).
 *
 * Updates and awareness changes applied from the relay carry the client
 * itself as transaction origin (`transaction.origin === client`).
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
import * as decoding from 'lib0/decoding'
import { ObservableV2 } from 'lib0/observable'
import {
  ErrorCode,
  MessageType,
  PROTOCOL_VERSION,
  decodeMessage,
  encodeAuth,
  encodePing,
  encodeUnwatchCatalog,
  encodeWatchCatalog,
  MAX_LIST_LIMIT,
  readAuthenticated,
  readAuthors,
  readCatalogChanged,
  readError,
  readHello,
  validateDocName,
  type PresenceInfo,
} from '../protocol/messages.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { DocHandle, type DocHandleHost, type OpenDocOptions, type UserInfo } from './DocHandle.js'
import { RelayRequests, type FetchedDoc, type ListDocsOptions, type RelayRequestOptions } from './RelayRequests.js'
import { relayUrl } from './relayUrl.js'
import { SocketState, type WebSocketConstructor, type WebSocketLike } from './socket.js'
import { SyncError } from './SyncError.js'

/** Connection states of a {@link SyncClient}. */
export const ConnectionStatus = {
  /** A socket is being opened, or it is open and the relay's `hello` has not arrived yet. */
  connecting: 'connecting',
  /** The relay answered on the current socket; docs sync. */
  online: 'online',
  /** No socket: waiting for the next reconnect attempt, halted, or closed. */
  offline: 'offline',
} as const
export type ConnectionStatus = (typeof ConnectionStatus)[keyof typeof ConnectionStatus]

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
}

/** What {@link SyncClient.watchCatalog} tells its caller. */
export interface CatalogWatchListener {
  /** Names of docs of the workspace whose changes the relay stored (a name may come again with the next change). */
  changed(names: string[]): void
  /**
   * The watch is in place on a connection — the first one, or a new one after
   * the connection was lost: what changed while it was not is not told, so
   * catch up now (list and fetch the workspace's docs).
   */
  watching?(): void
  /** The relay refused the watch or dropped it (no access, too many watches); it is tried again on the next connection. */
  refused?(error: SyncError): void
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
}

/** A multiplexed, reconnecting Concord sync client. See the module documentation. */
export class SyncClient extends ObservableV2<SyncClientEvents> {
  /** URL of the multiplexed endpoint, without the token. */
  readonly url: string

  private readonly socketUrl: string
  private readonly WebSocketImpl: WebSocketConstructor
  private readonly user: UserInfo | undefined
  private readonly backoff: Backoff
  private readonly pingInterval: number
  private readonly timeout: number
  private readonly handles = new Map<string, DocHandle>()
  private readonly host: DocHandleHost
  private ws: WebSocketLike | null = null
  private currentStatus: ConnectionStatus = ConnectionStatus.connecting
  private handshakeDone = false
  private halted = false
  private closed = false
  private totalPending = 0
  private lastMessageAt = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null
  private watchdogTimer: ReturnType<typeof setTimeout> | null = null
  private pingTimer: ReturnType<typeof setInterval> | null = null
  private relayInfo: { protocolVersion: number; relayVersion: string; maxPayload: number | null } | null = null
  private readonly maxMessageBytes: number
  private readonly requests = new RelayRequests((data) => this.send(data))
  private token: string | (() => string | Promise<string>) | null
  private identityInfo: { userId: string; name: string; expiresAt: number | null } | null = null
  private refreshTimer: ReturnType<typeof setTimeout> | null = null
  /** Listeners of each watched workspace (see {@link watchCatalog}). */
  private readonly catalogWatches = new Map<string, Set<CatalogWatchListener>>()

  /**
   * Creates the client and starts connecting at once.
   *
   * @throws Error when the URL is invalid or no WebSocket implementation is available.
   */
  constructor(options: SyncClientOptions) {
    super()
    this.url = relayUrl(options.url)
    this.socketUrl = relayUrl(options.url)
    this.token = options.token ?? null
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WebSocketImpl === undefined) {
      throw new Error(
        'SyncClient: no WebSocket implementation; pass one as option `WebSocket` (in Node 20: `import { WebSocket } from "ws"`)',
      )
    }
    this.WebSocketImpl = WebSocketImpl
    this.user = options.user
    this.backoff = new Backoff(options.reconnect)
    this.pingInterval = positive('pingInterval', options.pingInterval ?? 15_000)
    this.timeout = positive('timeout', options.timeout ?? 30_000)
    const client = this
    this.host = {
      origin: this,
      get online() {
        return client.handshakeDone
      },
      send: (data) => this.send(data),
      get maxMessageBytes() {
        return client.relayInfo?.maxPayload ?? client.maxMessageBytes
      },
      pendingChanged: () => this.updateTotalPending(),
      released: (handle) => this.release(handle),
      reportError: (error) => this.emit('error', [error]),
    }
    const browser = globalThis as { addEventListener?: (type: string, listener: () => void) => void }
    if (typeof browser.addEventListener === 'function') browser.addEventListener('online', this.onBrowserOnline)
    this.connect()
  }

  /** `'connecting'`, `'online'` (the relay answered) or `'offline'`. */
  get status(): ConnectionStatus {
    return this.currentStatus
  }

  /** Sum of the pending counts of all open docs. */
  get pending(): number {
    return this.totalPending
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed
  }

  /** Protocol and software version from the relay's last `hello`, or null before the first one. */
  get relay(): { protocolVersion: number; relayVersion: string; maxPayload: number | null } | null {
    return this.relayInfo
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
    if (this.closed) throw new Error(`cannot open doc "${name}": the SyncClient is closed`)
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
    if (this.handshakeDone) handle.connect()
    this.updateTotalPending()
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
    if (this.closed) return Promise.reject(new Error('the SyncClient is closed'))
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
    if (this.closed) throw new Error('the SyncClient is closed')
    if (typeof prefix !== 'string') throw new Error('listDocs: prefix must be a string')
    const pageSize = options.pageSize ?? MAX_LIST_LIMIT
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_LIST_LIMIT) {
      throw new Error(`listDocs: pageSize must be an integer from 1 to ${MAX_LIST_LIMIT}`)
    }
    const names: string[] = []
    let after = ''
    for (;;) {
      const page = await this.requests.listPage(prefix, after, pageSize, options)
      for (const name of page.names) names.push(name)
      if (!page.more || page.names.length === 0) return names
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
    if (this.closed) return Promise.reject(new Error('the SyncClient is closed'))
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
    if (this.closed) return Promise.reject(new Error('the SyncClient is closed'))
    const invalid = validateDocName(workspace)
    if (invalid !== null || workspace.includes('/')) {
      return Promise.reject(new Error(`invalid workspace id "${String(workspace).slice(0, 80)}": ${invalid ?? 'one doc-name segment expected'}`))
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
    if (this.closed) throw new Error('the SyncClient is closed')
    const invalid = validateDocName(workspace)
    if (invalid !== null || workspace.includes('/')) {
      throw new Error(`invalid workspace id "${String(workspace).slice(0, 80)}": ${invalid ?? 'one doc-name segment expected'}`)
    }
    let listeners = this.catalogWatches.get(workspace)
    if (listeners === undefined) {
      this.catalogWatches.set(workspace, (listeners = new Set()))
      if (this.handshakeDone) this.send(encodeWatchCatalog(workspace))
    }
    listeners.add(listener)
    if (this.handshakeDone) listener.watching?.()
    return () => {
      const current = this.catalogWatches.get(workspace)
      if (current === undefined || !current.delete(listener) || current.size > 0) return
      this.catalogWatches.delete(workspace)
      if (this.handshakeDone) this.send(encodeUnwatchCatalog(workspace))
    }
  }

  /**
   * Drops the current socket (if any) and connects again right away with a
   * fresh backoff — a "sync now" button. Also resumes after a permanent
   * connection error (e.g. once a new token is in place).
   */
  reconnect(): void {
    if (this.closed) return
    this.halted = false
    this.backoff.reset()
    this.dropSocket()
    this.connect()
  }

  /**
   * Closes every doc (awareness removal + `unsubscribe` are sent when
   * online), rejects waiting flushes, closes the socket and stops all timers.
   * Idempotent.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    const browser = globalThis as { removeEventListener?: (type: string, listener: () => void) => void }
    if (typeof browser.removeEventListener === 'function') browser.removeEventListener('online', this.onBrowserOnline)
    const reason = new Error('the SyncClient was closed')
    for (const handle of this.handles.values()) handle.shutdown(reason)
    this.handles.clear()
    this.requests.rejectAll(reason)
    this.catalogWatches.clear()
    this.clearTimer('reconnect')
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer)
    this.refreshTimer = null
    this.dropSocket()
    this.setStatus(ConnectionStatus.offline)
  }

  // ---------------------------------------------------------------------------

  private connect(): void {
    if (this.closed || this.ws !== null) return
    this.clearTimer('reconnect')
    this.setStatus(ConnectionStatus.connecting)
    let ws: WebSocketLike
    try {
      ws = new this.WebSocketImpl(this.socketUrl)
    } catch (error) {
      // e.g. a URL the platform refuses; retrying later is all we can do.
      this.emit('error', [new SyncError('', ErrorCode.malformed, `could not create a WebSocket: ${describe(error)}`)])
      this.setStatus(ConnectionStatus.offline)
      this.scheduleReconnect()
      return
    }
    ws.binaryType = 'arraybuffer'
    ws.onmessage = (event: { data: unknown }) => {
      if (this.ws === ws) this.receive(event.data)
    }
    ws.onclose = () => {
      if (this.ws === ws) this.socketLost()
    }
    ws.onerror = () => {
      // A close event follows; nothing to do here.
    }
    this.ws = ws
    this.lastMessageAt = Date.now()
    this.armWatchdog(this.timeout)
  }

  /** The socket closed, failed or went silent: tell the docs and plan the next attempt. */
  private socketLost(): void {
    this.dropSocket()
    if (this.closed) return
    this.setStatus(ConnectionStatus.offline)
    if (!this.halted) this.scheduleReconnect()
  }

  /** Forgets the current socket and its timers; every open doc goes to the disconnected state. */
  private dropSocket(): void {
    const ws = this.ws
    this.clearTimer('watchdog')
    this.clearTimer('ping')
    if (ws === null) return
    this.ws = null
    this.handshakeDone = false
    ws.onmessage = null
    ws.onclose = null
    ws.onerror = null
    ws.onopen = null
    if (ws.readyState === SocketState.connecting || ws.readyState === SocketState.open) {
      try {
        ws.close()
      } catch {
        // Closing a socket that is already failing may throw in some implementations.
      }
    }
    for (const handle of this.handles.values()) handle.disconnect()
    this.requests.disconnected()
  }

  private scheduleReconnect(): void {
    this.clearTimer('reconnect')
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connect()
    }, this.backoff.next())
  }

  private send(data: Uint8Array): void {
    const ws = this.ws
    if (ws === null || ws.readyState !== SocketState.open) return
    try {
      ws.send(data)
    } catch {
      this.socketLost()
    }
  }

  private receive(data: unknown): void {
    this.lastMessageAt = Date.now()
    let bytes: Uint8Array
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
    else if (data instanceof Uint8Array) bytes = data
    else {
      this.emit('error', [new SyncError('', ErrorCode.malformed, 'unexpected frame from the relay: expected binary data (ArrayBuffer)')])
      return
    }
    let type: number
    let doc: string
    let body: decoding.Decoder
    try {
      ;({ type, doc, body } = decodeMessage(bytes))
    } catch (error) {
      this.emit('error', [new SyncError('', ErrorCode.malformed, `undecodable message from the relay: ${describe(error)}`)])
      return
    }
    try {
      if (doc === '') this.receiveConnectionMessage(type, body)
      else if (type === MessageType.docList) this.requests.receiveDocList(body)
      else if (type === MessageType.fetched) this.requests.receiveFetched(doc, body)
      else if (type === MessageType.fetchedPart) this.requests.receiveFetchedPart(doc, body)
      else if (type === MessageType.presence) this.requests.receivePresence(body)
      else if (type === MessageType.catalogChanged) {
        const names = readCatalogChanged(body)
        for (const listener of [...(this.catalogWatches.get(doc) ?? [])]) listener.changed(names)
      }
      else if (type === MessageType.authors) {
        const authors = readAuthors(body)
        this.requests.receiveAuthors(doc, authors)
        this.handles.get(doc)?.receiveAuthors(authors)
      } else {
        if (type === MessageType.error) {
          // A refused list-docs / fetch names the doc too; the open handle (if any) hears it as well.
          const start = body.pos
          const { code, reason } = readError(body)
          body.pos = start
          const error = new SyncError(doc, code, reason)
          // A refused watch names the workspace, as a refused list-presence of it does: both are told.
          this.requests.receiveError(error)
          if (WATCH_REFUSALS.has(code)) for (const listener of [...(this.catalogWatches.get(doc) ?? [])]) listener.refused?.(error)
        }
        this.handles.get(doc)?.receive(type, body)
      }
    } catch (error) {
      // A truncated body, or a listener that threw while the message was handled.
      this.emit('error', [
        new SyncError(doc, ErrorCode.malformed, `failed to handle a message of type ${type} from the relay: ${describe(error)}`),
      ])
    }
  }

  private receiveConnectionMessage(type: number, body: decoding.Decoder): void {
    switch (type) {
      case MessageType.hello: {
        this.relayInfo = readHello(body)
        if (this.relayInfo.protocolVersion !== PROTOCOL_VERSION) {
          this.emit('error', [
            new SyncError(
              '',
              ErrorCode.unknownType,
              `relay speaks protocol ${this.relayInfo.protocolVersion}, this client ${PROTOCOL_VERSION}`,
            ),
          ])
        }
        if (this.handshakeDone) return
        if (this.token !== null) {
          void this.sendToken()
          return // the handshake completes on `authenticated`
        }
        this.completeHandshake()
        return
      }
      case MessageType.authenticated: {
        this.identityInfo = readAuthenticated(body)
        this.scheduleRefresh()
        if (!this.handshakeDone) this.completeHandshake()
        return
      }
      case MessageType.pong:
        return // lastMessageAt is updated for every message
      case MessageType.error: {
        const { code, reason } = readError(body)
        const error = new SyncError('', code, reason)
        this.emit('error', [error])
        if (error.permanent) {
          // e.g. unauthorized: the same token would be refused again. Wait for `reconnect()` / `setToken()`.
          this.halted = true
          this.socketLost()
        }
        return
      }
    }
  }

  /** The relay answered (and accepted the token, if any): go online and subscribe every open doc. */
  private completeHandshake(): void {
    this.handshakeDone = true
    this.backoff.reset()
    this.setStatus(ConnectionStatus.online)
    this.pingTimer = setInterval(() => this.send(encodePing()), this.pingInterval)
    for (const handle of this.handles.values()) {
      if (!this.handshakeDone) break // the socket failed while subscribing; the next hello starts over
      handle.connect()
    }
    // Watches before requests: a catch-up list sent by `watching()` is answered after the watch is in place.
    for (const workspace of this.catalogWatches.keys()) {
      if (this.handshakeDone) this.send(encodeWatchCatalog(workspace))
    }
    for (const listeners of [...this.catalogWatches.values()]) {
      for (const listener of [...listeners]) if (this.handshakeDone) listener.watching?.()
    }
    if (this.handshakeDone) this.requests.connected()
  }

  /** Resolves the token (calling the provider if there is one) and sends it in-band. */
  private async sendToken(): Promise<void> {
    const source = this.token
    if (source === null) return
    const ws = this.ws
    let token: string
    try {
      token = typeof source === 'function' ? await source() : source
    } catch (error) {
      this.emit('error', [new SyncError('', ErrorCode.unauthorized, `the token provider failed: ${describe(error)}`)])
      this.halted = true
      this.socketLost()
      return
    }
    if (this.ws === ws && ws !== null) this.send(encodeAuth(token))
  }

  /** With a token provider, fetches and sends a fresh token a minute before the current one expires. */
  private scheduleRefresh(): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer)
    this.refreshTimer = null
    const expiresAt = this.identityInfo?.expiresAt ?? null
    if (typeof this.token !== 'function' || expiresAt === null) return
    const delay = Math.max(5_000, expiresAt - Date.now() - 60_000)
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null
      if (this.handshakeDone) void this.sendToken()
    }, Math.min(delay, 2 ** 31 - 1))
  }

  /**
   * Replaces the token. While online it is sent at once (a refresh: it must
   * be for the same user); after a permanent auth error it reconnects.
   */
  setToken(token: string | (() => string | Promise<string>)): void {
    if (this.closed) return
    this.token = token
    if (this.halted) this.reconnect()
    else if (this.handshakeDone) void this.sendToken()
  }

  /** The user the relay authenticated on the current socket (null without auth or before it answered). */
  get identity(): { userId: string; name: string; expiresAt: number | null } | null {
    return this.identityInfo
  }

  /** Reconnects when nothing arrived for `timeout` ms; re-arms itself for the remaining time otherwise. */
  private armWatchdog(delay: number): void {
    this.clearTimer('watchdog')
    this.watchdogTimer = setTimeout(() => {
      this.watchdogTimer = null
      const silentFor = Date.now() - this.lastMessageAt
      if (silentFor >= this.timeout) this.socketLost()
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
    this.emit('status', [status])
  }

  private updateTotalPending(): void {
    let total = 0
    for (const handle of this.handles.values()) total += handle.pending
    if (total === this.totalPending) return
    this.totalPending = total
    this.emit('pending', [total])
  }

  private release(handle: DocHandle): void {
    if (this.handles.get(handle.name) === handle) this.handles.delete(handle.name)
    this.updateTotalPending()
  }

  /** The browser thinks the network is back: a hint to try now instead of waiting for the backoff. */
  private readonly onBrowserOnline = (): void => {
    if (!this.closed && !this.halted && this.ws === null) {
      this.backoff.reset()
      this.connect()
    }
  }
}

/** Error codes the relay refuses (or ends) a `watch-catalog` with. */
const WATCH_REFUSALS: ReadonlySet<number> = new Set<number>([ErrorCode.permissionDenied, ErrorCode.limitExceeded, ErrorCode.invalidDocName])

/** Encoded empty state vector: "this device has nothing of the doc". */
const EMPTY_STATE_VECTOR = new Uint8Array([0])

const positive = (name: string, value: number): number => {
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`SyncClient: option ${name} must be a positive number of milliseconds`)
  return value
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))
