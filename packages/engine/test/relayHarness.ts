/**
 * The real relay, in-process, for engine tests: the relay's own room
 * registry, group commit queue, multiplexed connections, catalog feed and
 * last-seen presence over its `MemoryStorage`, reached through an in-memory
 * socket pair instead of the network. Nothing of the protocol is
 * re-implemented here; what a test controls sits at the two edges.
 *
 * - **Storage**: a commit is held until the test calls {@link TestRelay.ack}
 *   (or the relay was built with `autoAck: true`); the relay then acks for
 *   real, after its commit returned.
 * - **Network**: each `SyncClient` socket is one end of a {@link SocketPair};
 *   the other end is the `RelaySocket` a `MuxConnection` talks to. Messages
 *   travel in order as promise jobs (never timers), so tests stay
 *   deterministic under fake timers. The test can refuse sockets
 *   (`accepting`), cut them (`dropAll`), see what clients sent (`messages`),
 *   and play a misbehaving network or an older relay at the socket
 *   (`silent`, `rejectWrites`, `holdReads`, `listAndFetch: false`,
 *   `resume: false`, raw injected acks and errors). A `resume` is recorded
 *   as itself and as the `subscribe` and sync step 1 of each of its docs
 *   (`resumed: true`); a `batch` as itself, then each of its messages goes
 *   on as if it had come alone (so the relay answers without batches).
 * - **Identity**: sockets of clients without a token get the anonymous
 *   identity of a relay without auth; sockets of clients with one
 *   authenticate in-band against {@link TestAuthenticator}
 *   (`user-of-<token>`; tokens starting with "bad" are refused).
 *
 * {@link TestRelay.settle} resolves once no message is in flight and no
 * commit is under way (a commit held for an ack does not count).
 *
 * @example
 *   const relay = new TestRelay()
 *   const client = new SyncClient({ url: 'ws://relay.test', WebSocket: relay.WebSocket })
 *   const handle = client.open('acme/T-1')
 *   await relay.settle()
 *   handle.doc.getText('t').insert(0, 'hi')
 *   await relay.settle()
 *   relay.ack() // the relay stores it and acks
 *   await relay.settle()
 *
 * @module test/relayHarness
 */
import { inflateSync } from 'fflate'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import {
  ErrorCode,
  MessageType,
  decodeMessage,
  encodeAck,
  encodeAuthors,
  encodeError,
  encodeHello,
  readAuthors,
  readHello,
  readResume,
  readBatch,
  encodeFetch,
  RelayFeatures,
  startMessage,
} from '../src/protocol/index.js'
import type { WebSocketLike } from '../src/sync/socket.js'
import { MemoryStorage } from '../../../apps/relay/src/storage/MemoryStorage.js'
import type {
  AppendResult,
  AuthorBinding,
  DocSeq,
  DocUpdates,
  ListPage,
  PresenceRecord,
  WorkspacePresence,
  Storage,
  StoredDoc,
} from '../../../apps/relay/src/storage/Storage.js'
import { RelayMetrics } from '../../../apps/relay/src/observability/metrics.js'
import { silentLogger } from '../../../apps/relay/src/observability/logger.js'
import { CommitQueue } from '../../../apps/relay/src/rooms/CommitQueue.js'
import { CatalogFeed } from '../../../apps/relay/src/rooms/CatalogFeed.js'
import { RoomRegistry } from '../../../apps/relay/src/rooms/RoomRegistry.js'
import type { Room } from '../../../apps/relay/src/rooms/Room.js'
import type { ConnectionContext } from '../../../apps/relay/src/connections/Connection.js'
import { MuxConnection } from '../../../apps/relay/src/connections/MuxConnection.js'
import type { RelaySocket } from '../../../apps/relay/src/connections/socket.js'
import { InitialSyncQueue } from '../../../apps/relay/src/connections/initialSync.js'
import { LastSeen } from '../../../apps/relay/src/presence/LastSeen.js'
import { Admission } from '../../../apps/relay/src/security/admission.js'
import { resolveLimits, type RelayLimits } from '../../../apps/relay/src/security/limits.js'
import { ANONYMOUS, AuthError, type Authenticator, type Identity } from '../../../apps/relay/src/auth/Authenticator.js'

/** Captured before any test fakes timers: {@link TestRelay.settle} lets the relay's catalog notices out with it. */
const realSetTimeout = globalThis.setTimeout

/** One message a client sent to the relay, decoded for assertions. */
export interface ReceivedMessage {
  /** The socket it came on: 1 for the first socket the relay accepted, and so on. */
  connection: number
  type: number
  doc: string
  /** For sync messages: 0 step 1, 1 step 2, 2 update. */
  syncType?: number
  /** True for the `subscribe` and sync step 1 a doc's entry of a `resume` stands for. */
  resumed?: boolean
  /** True for the `fetch` a doc's entry of a `fetch-many` stands for. */
  batched?: boolean
  /** True for a message that came in a `batch`. */
  inBatch?: boolean
}

/** Options of {@link TestRelay}. */
export interface TestRelayOptions {
  /** Let every commit through at once, as if storage committed instantly. Default false: commits wait for {@link TestRelay.ack}. */
  autoAck?: boolean
  /** Deliver what the relay sends (its `hello` first) only once {@link TestRelay.hello} is called. Default true: at once. */
  sendHello?: boolean
  /**
   * Let `list-docs` and `fetch` through. Default true; false plays a relay
   * that predates them: the socket is closed (1002), as for an unknown type.
   */
  listAndFetch?: boolean
  /**
   * Most bindings per `authors` message: the network splits the relay's
   * messages into parts of this many, as the relay itself does past 64 KiB,
   * so a test sees several parts without 64 KiB of bindings. Default: as sent.
   */
  authorsPerMessage?: number
  /**
   * Announce `resume` in the relay's `hello`. Default true; false plays a
   * relay that predates it: its `hello` names no features, and a `resume`
   * closes the socket (1002), as for an unknown type.
   */
  resume?: boolean
  /**
   * Announce `fetch-many` in the relay's `hello`. Default true; false plays a
   * relay that predates it: a `fetch-many` closes the socket (1002).
   */
  fetchMany?: boolean
  /**
   * Announce `batch` in the relay's `hello`. Default true; false plays a
   * relay that predates it: a `batch` closes the socket (1002).
   */
  batch?: boolean
  /**
   * How far the relay's clock runs ahead of the test's (ms; negative: behind):
   * the time in its `hello` and the expiry of the tokens it accepts. Default 0.
   */
  clockAhead?: number
}

/**
 * The relay's limits, with generous time and rate budgets: a loaded test
 * machine (or a test that fakes the clock) must not trip them, and they are
 * not what engine tests test (the relay's own tests do).
 */
const TEST_LIMITS: RelayLimits = resolveLimits({
  applyMsPerSecond: 1e6,
  applyBurstMs: 1e6,
  workMsPerSecond: 1e6,
  workBurstMs: 1e6,
  awarenessPerSecond: 1e6,
  messagesPerSecond: 1e6,
  messageBurst: 1e6,
})

/**
 * Accepts any token but those starting with "bad"; the token `t` proves user
 * `user-of-t`, named `t`, with write access everywhere, for an hour of the
 * relay's clock (`clockAhead` ms ahead of the test's).
 */
export class TestAuthenticator implements Authenticator {
  readonly kind = 'test'
  constructor(private readonly clockAhead = 0) {}
  async verify(token: string): Promise<Identity> {
    if (token.startsWith('bad')) throw new AuthError('token signature is not valid')
    return {
      userId: `user-of-${token}`,
      name: token,
      access: new Map([['*', 'write' as const]]),
      expiresAt: Date.now() + this.clockAhead + 3_600_000,
      anonymous: false,
    }
  }
}

/** A commit waiting for {@link GatedStorage.release}. */
interface HeldCommit {
  readonly docs: readonly string[]
  readonly go: () => void
  readonly fail: (error: Error) => void
}

/**
 * The relay's `MemoryStorage` behind a gate: `appendUpdates` waits until the
 * test lets the commit through, so the test decides when updates count as
 * durably stored. Everything else goes straight through.
 */
export class GatedStorage implements Storage {
  readonly kind = 'memory'
  /** Let every commit through at once. */
  readonly open: boolean
  /** Commits waiting at the gate, oldest first. */
  readonly held: HeldCommit[] = []
  /** What {@link release} lets through until {@link endRelease}: doc names, or null for everything. */
  private releases: Array<string | null> = []

  constructor(
    public inner: MemoryStorage,
    open: boolean,
  ) {
    this.open = open
  }

  /**
   * Lets through the held commits of `doc` (or every held commit) and, until
   * {@link endRelease}, the later ones. A commit holding other docs too waits.
   */
  release(doc: string | null): void {
    this.releases.push(doc)
    for (const commit of [...this.held]) {
      if (!this.passes(commit.docs)) continue
      this.held.splice(this.held.indexOf(commit), 1)
      commit.go()
    }
  }

  /** Closes the gate again after a {@link release}. */
  endRelease(): void {
    this.releases = []
  }

  /** Refuses every held commit (the relay then stops retrying; used when the relay goes away). */
  failHeld(): void {
    for (const commit of this.held.splice(0)) commit.fail(new Error('test relay stopped'))
  }

  private passes(docs: readonly string[]): boolean {
    if (this.open || this.releases.includes(null)) return true
    return docs.every((doc) => this.releases.includes(doc))
  }

  async appendUpdates(batch: DocUpdates[]): Promise<AppendResult> {
    const docs = batch.map((entry) => entry.doc)
    if (!this.passes(docs)) {
      await new Promise<void>((go, fail) => this.held.push({ docs, go, fail }))
    }
    return this.inner.appendUpdates(batch)
  }

  loadDoc(doc: string): Promise<StoredDoc> {
    return this.inner.loadDoc(doc)
  }
  writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void> {
    return this.inner.writeCheckpoint(doc, state, uptoSeq)
  }
  listDocs(prefix: string): Promise<string[]> {
    return this.inner.listDocs(prefix)
  }
  listDocSeqs(prefix: string, page?: ListPage): Promise<DocSeq[]> {
    return this.inner.listDocSeqs(prefix, page)
  }
  recordPresence(batch: readonly WorkspacePresence[]): Promise<void> {
    return this.inner.recordPresence(batch)
  }
  listPresence(workspace: string): Promise<PresenceRecord[]> {
    return this.inner.listPresence(workspace)
  }
  ping(): Promise<void> {
    return this.inner.ping()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

/** The relay's parts that live as long as one relay process (a {@link TestRelay.restart} builds new ones). */
interface RelayCore {
  readonly ctx: ConnectionContext
  readonly rooms: RoomRegistry
  readonly commits: CommitQueue
  readonly catalogFeed: CatalogFeed
  readonly lastSeen: LastSeen
}

/**
 * An in-memory WebSocket pair: {@link client} is what a `SyncClient` holds
 * (a `WebSocketLike`), {@link relayEnd} what a `MuxConnection` holds (a
 * `RelaySocket`). Messages, opens and closes travel as ordered promise jobs.
 */
export class SocketPair {
  readonly client: ClientSocket
  readonly relayEnd: RelayEnd
  /** 1 for the relay's first socket, and so on (0 until opened). */
  id = 0
  /** True once a close is under way: later closes are not heard again. */
  closing = false

  constructor(
    readonly relay: TestRelay,
    readonly url: string,
    readonly authenticate: boolean,
    client: ClientSocket,
  ) {
    this.client = client
    this.relayEnd = new RelayEnd(this)
  }

  /** The network dropped: both ends see the socket close with 1006, and what was in flight is lost. */
  drop(): void {
    this.close('network', 1006, '')
  }

  /**
   * Closes the socket. A closing handshake (`by` client or relay) lets what
   * was sent before it arrive first; a network cut loses it. Both ends then
   * hear the close with `code`.
   */
  close(by: 'client' | 'relay' | 'network', code: number, reason: string): void {
    const { client, relayEnd } = this
    if (by === 'network') {
      client.readyState = 3
      relayEnd.readyState = 3
    } else if (by === 'client') client.readyState = 2
    else relayEnd.readyState = 2
    if (this.closing) return // both ends hear the first close only
    this.closing = true
    const relayHears = this.id !== 0 // a socket refused before it opened never reached the relay
    this.relay.deliver(() => {
      client.readyState = 3
      relayEnd.readyState = 3
      if (relayHears) relayEnd.emit('close', code, Buffer.from(reason))
      client.onclose?.({ code, reason })
    })
  }
}

/** The client's end of a {@link SocketPair}. */
export class ClientSocket implements WebSocketLike {
  binaryType = 'blob'
  readyState = 0
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: { data: unknown }) => void) | null = null
  onclose: ((event: { code: number; reason?: string }) => void) | null = null
  onerror: ((event: unknown) => void) | null = null

  readonly pair: SocketPair

  /** Opens a socket to `relay`; its connection authenticates in-band when `authenticate` is true. */
  constructor(relay: TestRelay, url: string, authenticate: boolean) {
    this.pair = new SocketPair(relay, url, authenticate, this)
    relay.connect(this.pair)
  }

  get url(): string {
    return this.pair.url
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error('socket is not open')
    this.pair.relay.fromClient(this.pair, data.slice())
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState >= 2) return
    this.pair.close('client', code, reason)
  }

  /** The network dropped this socket. */
  drop(): void {
    this.pair.drop()
  }

  /** @internal Delivers one message from the relay. */
  receive(data: Uint8Array): void {
    if (this.readyState !== 1) return
    this.onmessage?.({ data: this.binaryType === 'arraybuffer' ? data.buffer : data })
  }
}

type RelayListener = (...args: any[]) => void

/** The relay's end of a {@link SocketPair}: what a `ws` socket is to the relay. */
export class RelayEnd implements RelaySocket {
  readonly OPEN = 1
  readonly CLOSING = 2
  readonly CLOSED = 3
  readyState = 1
  readonly bufferedAmount = 0
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments' = 'nodebuffer'
  /** Messages the relay sent while the test holds them (option `sendHello: false`). */
  held: Uint8Array[] | null = null
  private readonly listeners = new Map<string, RelayListener[]>()

  constructor(readonly pair: SocketPair) {}

  send(data: Uint8Array, sent?: (error?: Error) => void): void {
    if (this.readyState !== 1) {
      sent?.(new Error('socket is not open'))
      return
    }
    if (data[0] === MessageType.hello) {
      const { relayVersion, maxPayload, features, time } = readHello(decodeMessage(data).body)
      const announced =
        features &
        (this.pair.relay.announcesResume ? ~0 : ~RelayFeatures.resume) &
        (this.pair.relay.announcesFetchMany ? ~0 : ~RelayFeatures.fetchMany) &
        (this.pair.relay.announcesBatch ? ~0 : ~RelayFeatures.batch)
      const ahead = this.pair.relay.clockAhead
      this.sendWhole(encodeHello(relayVersion, maxPayload ?? 0, announced, time === null ? null : time + ahead), sent)
      return
    }
    const perMessage = this.pair.relay.authorsPerMessage
    if (perMessage !== undefined && data[0] === MessageType.authors) {
      const { doc, body } = decodeMessage(data)
      const authors = readAuthors(body)
      for (let i = 0; i < authors.length; i += perMessage) this.sendWhole(encodeAuthors(doc, authors.slice(i, i + perMessage)))
      sent?.()
      return
    }
    this.sendWhole(data, sent)
  }

  private sendWhole(data: Uint8Array, sent?: (error?: Error) => void): void {
    const copy = data.slice()
    if (this.held !== null) {
      this.held.push(copy)
      sent?.()
      return
    }
    this.pair.relay.deliver(() => {
      this.pair.client.receive(copy)
      sent?.()
    })
  }

  close(code: number, reason: string): void {
    if (this.readyState !== 1) return
    this.pair.close('relay', code, reason)
  }

  terminate(): void {
    this.pair.drop()
  }

  ping(): void {
    if (this.readyState !== 1) throw new Error('socket is not open')
    this.pair.relay.deliver(() => this.emit('pong'))
  }

  on(event: string, listener: RelayListener): this {
    let list = this.listeners.get(event)
    if (list === undefined) this.listeners.set(event, (list = []))
    list.push(listener)
    return this
  }

  /** @internal */
  emit(event: string, ...args: unknown[]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args)
  }
}

/** The real relay in-process; see the module documentation. */
export class TestRelay {
  /** Every message clients sent, in order. */
  readonly received: ReceivedMessage[] = []
  /** Tokens clients sent in `auth` messages, in order. */
  readonly tokens: string[] = []
  /** Refuse new sockets (they error and close with 1006 without opening) while false. */
  accepting = true
  /** Drop every message clients send (a hung relay) while true. */
  silent = false
  /** True while the messages of a client's `batch` are recorded. */
  private unpacking = false
  /** Docs whose writes (sync step 2 and updates) are refused at the socket with this error, as a relay with a failing or read-only store would. */
  readonly rejectWrites = new Map<string, { code: number; reason: string }>()
  /** Docs (or list prefixes) whose `fetch` / `list-docs` is refused at the socket with this error. */
  readonly rejectReads = new Map<string, { code: number; reason: string }>()
  /** While true, `fetch` and `list-docs` wait at the socket (a slow storage) until {@link releaseReads}. */
  holdReads = false
  /** The client end of every socket created so far (opened or refused), in order. */
  readonly sockets: ClientSocket[] = []
  /** The `WebSocket` to pass to a `SyncClient` without a token: its connections are anonymous, as on a relay without auth. */
  readonly WebSocket: new (url: string) => ClientSocket
  /** The `WebSocket` to pass to a `SyncClient` with a token: its connections authenticate in-band, as on a relay with auth. */
  readonly AuthWebSocket: new (url: string) => ClientSocket
  private readonly storage: GatedStorage
  private readonly metrics = new RelayMetrics({ collectDefault: false })
  private readonly options: TestRelayOptions
  private core: RelayCore
  private heldReads: Array<() => void> = []
  private inFlight = 0
  /** Sockets handed over with {@link accept}. */
  private readonly accepted: RelaySocket[] = []
  /** A commit stored docs while someone watches a catalog: its notices are due. */
  private noticesDue = false
  private opened = 0
  private destroyed = false

  constructor(options: TestRelayOptions = {}) {
    this.options = options
    this.storage = new GatedStorage(new MemoryStorage(), options.autoAck ?? false)
    this.core = this.start()
    const relay = this
    this.WebSocket = class extends ClientSocket {
      constructor(url: string) {
        super(relay, url, false)
      }
    }
    this.AuthWebSocket = class extends ClientSocket {
      constructor(url: string) {
        super(relay, url, true)
      }
    }
  }

  /** See {@link TestRelayOptions.authorsPerMessage}. */
  get authorsPerMessage(): number | undefined {
    return this.options.authorsPerMessage
  }

  /** See {@link TestRelayOptions.resume}. */
  get announcesResume(): boolean {
    return this.options.resume !== false
  }

  /** See {@link TestRelayOptions.clockAhead}. */
  get clockAhead(): number {
    return this.options.clockAhead ?? 0
  }

  /** See {@link TestRelayOptions.batch}. */
  get announcesBatch(): boolean {
    return this.options.batch !== false
  }

  /** See {@link TestRelayOptions.fetchMany}. */
  get announcesFetchMany(): boolean {
    return this.options.fetchMany !== false && this.options.listAndFetch !== false
  }

  /** Number of sockets created so far. */
  get socketsCreated(): number {
    return this.sockets.length
  }

  /** @internal A new socket, as `new WebSocket(url)` opens one: the relay accepts it on the next job unless {@link accepting} is false. */
  connect(pair: SocketPair): void {
    this.sockets.push(pair.client)
    this.deliver(() => {
      const socket = pair.client
      if (socket.readyState !== 0) return
      if (!this.accepting || this.destroyed) {
        socket.readyState = 3
        socket.onerror?.({})
        pair.drop()
        return
      }
      pair.id = ++this.opened
      socket.readyState = 1
      socket.onopen?.({})
      if (this.options.sendHello === false) pair.relayEnd.held = []
      // what the relay's upgrade handler does: anonymous without auth, else authenticate in-band
      const identity = pair.authenticate ? null : ANONYMOUS
      new MuxConnection(pair.relayEnd, this.core.ctx, silentLogger(), identity)
    })
  }

  /**
   * Hands the relay a socket that is already open, e.g. a `ws` socket from a
   * `WebSocketServer` (it is a `RelaySocket`): the relay's connection runs on
   * it exactly as behind the relay's own upgrade handler. With `authenticate`
   * the connection must send a token first, else it is anonymous.
   */
  accept(socket: RelaySocket, authenticate: boolean): void {
    this.accepted.push(socket)
    new MuxConnection(socket, this.core.ctx, silentLogger(), authenticate ? null : ANONYMOUS)
  }

  /** Delivers what the relay sent while {@link TestRelayOptions.sendHello} was false (its `hello` first), and everything after at once. */
  hello(): void {
    for (const { pair } of this.sockets) {
      const held = pair.relayEnd.held
      if (held === null) continue
      pair.relayEnd.held = null
      for (const data of held) this.deliver(() => pair.client.receive(data))
    }
  }

  /**
   * The relay's live copy of a doc: the doc of its room, which must be
   * loaded (a client subscribed to it, or {@link open}). Editing it acts like
   * another client: peers get the update and it is committed.
   */
  doc(name: string): Y.Doc {
    return this.room(name).doc
  }

  /** The relay's presence states of a loaded doc (empty while nobody has sent presence). */
  awarenessStates(name: string): ReadonlyMap<number, Record<string, unknown>> {
    return this.room(name).awarenessStates
  }

  /** Loads a doc's room (and keeps it loaded), so {@link doc} can edit it before any client subscribed. */
  async open(name: string): Promise<Y.Doc> {
    return (await this.core.rooms.acquire(name)).doc
  }

  /** The author bindings of a loaded doc. */
  authorsOf(name: string): AuthorBinding[] {
    return [...this.room(name).authors.values()]
  }

  /** The state vector the relay has durably stored of a loaded doc. */
  stored(name: string): Map<number, number> {
    return Y.decodeStateVector(this.room(name).durableStateVector)
  }

  /** Stores `update` of doc `name` as if another client had synced it earlier. The doc must not be loaded. */
  seed(name: string, update: Uint8Array): void {
    if (this.core.rooms.peek(name) !== undefined) throw new Error(`seed: "${name}" is loaded; seed before anyone subscribes`)
    // MemoryStorage stores before its promise settles
    void this.storage.inner.appendUpdates([{ doc: name, updates: [update] }])
  }

  /**
   * Loses everything of `name`, as if storage were restored from a backup
   * without it and the relay restarted: every socket drops, rooms reload
   * from what is left.
   */
  async forget(name: string): Promise<void> {
    const old = this.storage.inner
    const fresh = new MemoryStorage()
    for (const doc of await old.listDocs('')) {
      if (doc === name) continue
      const { checkpoint, updates, authors } = await old.loadDoc(doc)
      await fresh.appendUpdates([{ doc, updates: checkpoint === null ? updates : [checkpoint, ...updates], authors }])
    }
    this.storage.inner = fresh
    await this.restart()
  }

  /** Restarts the relay: every socket drops, unstored updates are lost, rooms reload from storage on the next subscribe. */
  private async restart(): Promise<void> {
    this.dropAll()
    await this.settle()
    this.stop()
    this.core = this.start()
  }

  /**
   * Lets the commits of `name` (or every commit) through, held ones at once
   * and later ones until the next {@link settle} ends: what the relay holds
   * is stored and acked. The relay commits docs in groups; a commit that
   * also holds another doc waits.
   */
  ack(name?: string): void {
    this.storage.release(name ?? null)
  }

  /** Answers the `fetch` / `list-docs` requests held while {@link holdReads} was true. */
  releaseReads(): void {
    this.holdReads = false
    for (const pass of this.heldReads.splice(0)) pass()
  }

  /** Lets the oldest held `fetch` or `list-docs` through (reads stay held); false when none waits. */
  releaseRead(): boolean {
    const pass = this.heldReads.shift()
    pass?.()
    return pass !== undefined
  }

  /** Sends a raw ack (e.g. a stale or duplicate one) to every open socket, as if the relay had. */
  sendAck(name: string, stateVector: Uint8Array): void {
    this.inject(encodeAck(name, stateVector))
  }

  /** Sends an error about `name` ('' for the connection) to every open socket, as if the relay had. */
  error(name: string, code: number, reason: string): void {
    this.inject(encodeError(name, code as ErrorCode, reason))
  }

  /** Sends raw bytes to every open socket, as if the relay had. */
  inject(data: Uint8Array): void {
    for (const { pair } of this.sockets) if (pair.client.readyState === 1) pair.relayEnd.send(data)
  }

  /** Sends the relay's sync step 1 of a loaded doc to every open socket, as the relay does to ask for a resync. */
  resync(name: string): void {
    const step1 = startMessage(MessageType.sync, name)
    syncProtocol.writeSyncStep1(step1, this.doc(name))
    this.inject(encoding.toUint8Array(step1))
  }

  /** Stores last-seen records of a workspace, as if the relay had seen these people earlier. */
  async remember(workspace: string, records: PresenceRecord[]): Promise<void> {
    await this.storage.inner.recordPresence([{ workspace, records }])
  }

  /** Cuts every socket, like a network cut: both ends see 1006. */
  dropAll(): void {
    for (const socket of this.sockets) socket.drop()
    for (const socket of this.accepted.splice(0)) socket.terminate()
  }

  /** Messages clients sent, optionally filtered. */
  messages(filter: Partial<ReceivedMessage> = {}): ReceivedMessage[] {
    return this.received.filter((m) => Object.entries(filter).every(([key, value]) => m[key as keyof ReceivedMessage] === value))
  }

  /**
   * Resolves when no message or socket event is in flight and no commit is
   * under way (commits held at the gate do not count). Deliveries, room loads
   * and commits are promise jobs, so this spins promise jobs only, like the
   * tests' own awaits; the one timer it lets run is the relay's 0 ms timer
   * of catalog notices, after a commit while someone watches a catalog. Ends
   * what an {@link ack} released.
   */
  async settle(): Promise<void> {
    for (let spins = 0, idle = 0; idle < 20; spins++) {
      if (spins > 100_000) throw new Error('TestRelay.settle: the relay never went quiet')
      idle = this.inFlight > 0 || this.committing() ? 0 : idle + 1
      await Promise.resolve()
      if (idle === 20 && this.noticesDue) {
        // catalog notices go out on a 0 ms timer of the relay's feed
        this.noticesDue = false
        await new Promise((resolve) => realSetTimeout(resolve, 0))
        idle = 0
      }
    }
    this.storage.endRelease()
  }

  /** Closes every socket and stops the relay (held commits are dropped, not stored). Idempotent. */
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const socket of this.accepted.splice(0)) socket.terminate()
    // the relay's connections hear their sockets close at once; clients are told nothing (they are closed by then)
    for (const { pair } of this.sockets) {
      pair.client.readyState = 3
      const heard = pair.closing || pair.id === 0
      pair.closing = true
      pair.relayEnd.readyState = 3
      if (!heard) pair.relayEnd.emit('close', 1001, Buffer.from('relay stopped'))
    }
    this.stop()
  }

  /** @internal Queues a job behind every job queued before it. */
  deliver(job: () => void): void {
    this.inFlight++
    void Promise.resolve().then(() => {
      this.inFlight--
      job()
    })
  }

  /** @internal One message from a client: recorded, passed through the test's network rules, delivered. */
  fromClient(pair: SocketPair, data: Uint8Array, batched = false): void {
    if (this.silent) return
    const { type, doc, body } = decodeMessage(data)
    if (type === MessageType.batch) {
      // recorded as itself, then each message goes on as if it had come alone
      this.received.push({ connection: pair.id, type, doc })
      if (!this.announcesBatch) return pair.close('relay', 1002, `unknown message type ${type}`)
      this.unpacking = true
      try {
        for (const message of readBatch(body, (bytes) => inflateSync(bytes))) this.fromClient(pair, message)
      } finally {
        this.unpacking = false
      }
      return
    }
    const record: ReceivedMessage = {
      connection: pair.id,
      type,
      doc,
      ...(batched ? { batched } : {}),
      ...(this.unpacking ? { inBatch: true } : {}),
    }
    if (type === MessageType.sync) record.syncType = data[body.pos]
    this.received.push(record)
    if (type === MessageType.resume) {
      if (!this.announcesResume) return pair.close('relay', 1002, `unknown message type ${type}`)
      // each doc of a resume is its subscribe and sync step 1
      for (const entry of readResume(decoding.createDecoder(body.arr.subarray(body.pos)))) {
        this.received.push({ connection: pair.id, type: MessageType.subscribe, doc: entry.doc, resumed: true })
        this.received.push({ connection: pair.id, type: MessageType.sync, doc: entry.doc, syncType: 0, resumed: true })
      }
    }
    if (type === MessageType.fetchMany) {
      if (!this.announcesFetchMany) return pair.close('relay', 1002, `unknown message type ${type}`)
      const entries = readResume(decoding.createDecoder(body.arr.subarray(body.pos)))
      if (this.holdReads || entries.some((entry) => this.rejectReads.has(entry.doc))) {
        // the test's read rules act per doc: each entry goes on as its own fetch
        for (const entry of entries) this.fromClient(pair, encodeFetch(entry.doc, entry.stateVector), true)
        return
      }
      for (const entry of entries) this.received.push({ connection: pair.id, type: MessageType.fetch, doc: entry.doc, batched: true })
    }
    if (type === MessageType.auth && doc === '') this.tokens.push(decoding.readVarString(body))
    const reply = (code: number, reason: string): void => pair.relayEnd.send(encodeError(doc, code as ErrorCode, reason))
    const rejectedWrite = this.rejectWrites.get(doc)
    if (type === MessageType.sync && record.syncType !== 0 && rejectedWrite) return reply(rejectedWrite.code, rejectedWrite.reason)
    const pass = (): void => this.deliver(() => pair.relayEnd.readyState === 1 && pair.relayEnd.emit('message', data, true))
    if (type === MessageType.listDocs || type === MessageType.fetch) {
      if (this.options.listAndFetch === false) return pair.close('relay', 1002, `unknown message type ${type}`)
      const rejectedRead = this.rejectReads.get(doc)
      if (rejectedRead) return reply(rejectedRead.code, rejectedRead.reason)
      if (this.holdReads) return void this.heldReads.push(pass)
    }
    pass()
  }

  private room(name: string): Room {
    const room = this.core.rooms.peek(name)
    if (room === undefined) throw new Error(`"${name}" is not loaded on the relay; subscribe a client or await relay.open(name) first`)
    return room
  }

  /** True while a commit is scheduled or running and not held at the gate. */
  private committing(): boolean {
    return this.core.commits.busy && this.storage.held.length === 0
  }

  /** Builds the relay's parts as `Relay.ts` does, without HTTP. */
  private start(): RelayCore {
    const log = silentLogger()
    // commits start as promise jobs, like message deliveries: settle() sees them through without timers
    const commits = new CommitQueue(this.storage, this.metrics, log, { scheduleCommit: queueMicrotask })
    // rooms stay loaded and awake while the test runs (it reads their docs; no timer puts them to sleep); `stop` frees them;
    // presence goes out as a promise job
    const rooms = new RoomRegistry(this.storage, commits, this.metrics, log, {
      idleUnloadMs: 2 ** 31 - 1,
      dormantAfterMs: 0,
      docLimits: TEST_LIMITS,
      scheduleAwarenessSend: queueMicrotask,
    })
    const lastSeen = new LastSeen(this.storage, log)
    const catalogFeed = new CatalogFeed({ coalesceMs: 0 })
    commits.onCommit((docs) => {
      catalogFeed.publish(docs)
      if (catalogFeed.size > 0) this.noticesDue = true
    })
    const ctx: ConnectionContext = {
      catalogFeed,
      lastSeen,
      rooms,
      commits,
      metrics: this.metrics,
      relayVersion: 'test-relay',
      auth: new TestAuthenticator(this.options.clockAhead),
      limits: TEST_LIMITS,
      admission: new Admission(TEST_LIMITS, this.metrics),
      initialSyncs: new InitialSyncQueue(TEST_LIMITS.initialSyncChunkBytes, TEST_LIMITS.maxInitialSyncBytes),
      // `resume` answers go out as promise jobs, like message deliveries
      scheduleResumeAnswer: queueMicrotask,
    }
    return { ctx, rooms, commits, catalogFeed, lastSeen }
  }

  /** Stops the running relay's parts: no more commits or timers; rooms are destroyed. */
  private stop(): void {
    const { commits, rooms, catalogFeed, lastSeen } = this.core
    commits.stop()
    rooms.stopTimers()
    this.storage.failHeld()
    catalogFeed.clear()
    void lastSeen.close().catch(() => {})
    for (const name of rooms.names()) {
      const room = rooms.peek(name)!
      if (room.unloadTimer) clearTimeout(room.unloadTimer)
      room.unloadTimer = null
      room.destroy()
    }
  }
}
