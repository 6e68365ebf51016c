/**
 * A scripted, in-memory Concord relay and a fake WebSocket to reach it, for
 * deterministic sync tests.
 *
 * `FakeRelay` implements the relay's side of the multiplexed protocol over
 * in-memory Y.Docs: `hello` on connect; `subscribe` → the relay's sync step 1,
 * the doc's awareness states and an ack of what is "stored"; step 1 → step 2;
 * updates are applied and forwarded to the other subscribers; `ping` → `pong`.
 * Storage is simulated: nothing counts as stored until the test calls
 * {@link FakeRelay.ack} (or the relay was built with `autoAck: true`), so a
 * test decides exactly when durable acknowledgements happen.
 *
 * Messages travel through a FIFO of promise jobs (never timers), so tests stay
 * deterministic under fake timers; {@link FakeRelay.settle} waits until the
 * queue is empty.
 *
 * @example
 *   const relay = new FakeRelay()
 *   const client = new SyncClient({ url: 'ws://relay.test', WebSocket: relay.WebSocket })
 *   const handle = client.open('acme/T-1')
 *   await relay.settle()
 *   handle.doc.getText('t').insert(0, 'hi')
 *   await relay.settle()
 *   relay.ack('acme/T-1') // now "durably stored"
 *
 * The relay also works behind a real socket: call {@link FakeRelay.accept}
 * with a transport and feed it the socket's messages (see syncClient.ws.test.ts).
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  ErrorCode,
  MessageType,
  decodeMessage,
  encodeAck,
  encodeAwareness,
  encodeDocList,
  encodeAuthenticated,
  encodeAuthors,
  encodeCatalogChanged,
  encodePresence,
  type AuthorInfo,
  encodeError,
  encodeFetched,
  encodeHello,
  encodePong,
  readListDocs,
  startMessage,
  validateDocName,
} from '../src/protocol/index.js'
import type { WebSocketConstructor, WebSocketLike } from '../src/sync/socket.js'

/** How the relay talks back to one client. */
export interface RelayTransport {
  send(data: Uint8Array): void
  close(): void
}

/** One message a client sent to the relay, decoded for assertions. */
export interface ReceivedMessage {
  connection: number
  type: number
  doc: string
  /** For sync messages: 0 step 1, 1 step 2, 2 update. */
  syncType?: number
}

/** Options of {@link FakeRelay}. */
export interface FakeRelayOptions {
  /** Ack every applied update at once, as if storage committed instantly. Default false. */
  autoAck?: boolean
  /** Send `hello` as soon as a connection is accepted. Default true; otherwise call {@link FakeRelay.hello}. */
  sendHello?: boolean
  /**
   * Answer `list-docs` and `fetch` (protocol messages 23–26). Default true;
   * false behaves like a relay that predates them: it closes the socket.
   */
  listAndFetch?: boolean
  /** Most bindings per `authors` message; more go in several (as the real relay does past 64 KiB). Default: all in one. */
  authorsPerMessage?: number
}

interface RelayDoc {
  doc: Y.Doc
  awareness: awarenessProtocol.Awareness
  /** Encoded state vector that counts as durably stored. */
  stored: Uint8Array
  /** Author bindings: Yjs client id → user, made on first write (like the real relay). */
  authors: Map<number, AuthorInfo>
}

/** The relay's side of one client connection. */
export class RelayConnection {
  readonly id: number
  readonly subscriptions = new Set<string>()
  /** Workspaces this connection watches (`watch-catalog`). */
  readonly watching = new Set<string>()
  /** Awareness client ids this connection announced, per doc. */
  readonly awarenessClients = new Map<string, Set<number>>()
  /** The user writes are attributed to: `anonymous`, or `user-of-<token>` after `auth`. */
  userId = 'anonymous'
  userName = 'anonymous'
  closed = false

  constructor(
    private readonly relay: FakeRelay,
    readonly transport: RelayTransport,
    id: number,
  ) {
    this.id = id
  }

  send(data: Uint8Array): void {
    if (!this.closed) this.transport.send(data)
  }

  /** Feeds one message from the client. */
  receive(data: Uint8Array): void {
    if (this.closed) return
    this.relay.handle(this, data)
  }

  /** The transport closed: drop subscriptions and presence. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const name of [...this.subscriptions]) this.relay.unsubscribe(this, name)
    this.relay.connections.delete(this)
  }
}

/** The scripted relay. */
export class FakeRelay {
  readonly connections = new Set<RelayConnection>()
  readonly received: ReceivedMessage[] = []
  /** Tokens received in \`auth\` messages, in order. Tokens starting with "bad" are refused. */
  readonly tokens: string[] = []
  /** Refuse new sockets (they error and close without opening) while false. */
  accepting = true
  /** Ignore every incoming message without answering (a hung relay) while true. */
  silent = false
  /** Docs whose writes are refused with the given error (not applied). */
  readonly rejectWrites = new Map<string, { code: number; reason: string }>()
  /** Docs (or list prefixes) whose `fetch` / `list-docs` is refused with the given error. */
  readonly rejectReads = new Map<string, { code: number; reason: string }>()
  /** While true, `fetch` and `list-docs` wait unanswered (a slow storage) until {@link releaseReads}. */
  holdReads = false
  private heldReads: Array<() => void> = []
  /** Number of fake sockets created so far. */
  socketsCreated = 0
  readonly sockets: FakeWebSocket[] = []
  readonly autoAck: boolean
  readonly sendHello: boolean
  readonly listAndFetch: boolean
  readonly authorsPerMessage: number
  /** The fake WebSocket class to pass as `SyncClient` option `WebSocket`. */
  readonly WebSocket: WebSocketConstructor

  private readonly docs = new Map<string, RelayDoc>()
  private nextConnectionId = 1
  private inFlight = 0

  constructor(options: FakeRelayOptions = {}) {
    this.autoAck = options.autoAck ?? false
    this.sendHello = options.sendHello ?? true
    this.listAndFetch = options.listAndFetch ?? true
    this.authorsPerMessage = options.authorsPerMessage ?? Infinity
    const relay = this
    this.WebSocket = class extends FakeWebSocket {
      constructor(url: string) {
        super(relay, url)
      }
    }
  }

  /** Accepts a connection over `transport`; sends `hello` unless disabled. */
  accept(transport: RelayTransport): RelayConnection {
    const connection = new RelayConnection(this, transport, this.nextConnectionId++)
    this.connections.add(connection)
    if (this.sendHello && !this.silent) this.hello(connection)
    return connection
  }

  /** Sends `hello` on a connection (or on every connection). */
  hello(connection?: RelayConnection): void {
    for (const c of connection ? [connection] : this.connections) c.send(encodeHello('fake-relay'))
  }

  /** The relay's live copy of a doc (created empty if needed). Edit it to simulate another client. */
  doc(name: string): Y.Doc {
    return this.relayDoc(name).doc
  }

  /** The relay's awareness of a doc. */
  awareness(name: string): awarenessProtocol.Awareness {
    return this.relayDoc(name).awareness
  }

  /** The state vector that counts as durably stored. */
  stored(name: string): Map<number, number> {
    return Y.decodeStateVector(this.relayDoc(name).stored)
  }

  /**
   * Names of the docs under `prefix` that have durably stored content, sorted
   * (what the real relay's storage would list).
   */
  storedNames(prefix: string): string[] {
    return [...this.docs.entries()]
      .filter(([name, entry]) => name.startsWith(prefix) && Y.decodeStateVector(entry.stored).size > 0)
      .map(([name]) => name)
      .sort()
  }

  /** Answers the `fetch` / `list-docs` requests held while {@link holdReads} was true. */
  releaseReads(): void {
    this.holdReads = false
    for (const answer of this.heldReads.splice(0)) answer()
  }

  /** Puts `update` into doc `name` and marks it stored, as if another client had synced it earlier. */
  seed(name: string, update: Uint8Array): void {
    const entry = this.relayDoc(name)
    Y.applyUpdate(entry.doc, update, 'seed')
    entry.stored = Y.encodeStateVector(entry.doc)
  }

  /**
   * "Commits" everything the relay holds of `name` (or of every doc), acks it
   * to every subscriber and names the docs that changed to the connections
   * watching their workspace (`catalog-changed`, one notice per commit).
   */
  ack(name?: string): void {
    const changed: string[] = []
    for (const docName of name === undefined ? [...this.docs.keys()] : [name]) {
      const entry = this.relayDoc(docName)
      const stored = Y.encodeStateVector(entry.doc)
      if (!equalBytes(stored, entry.stored)) changed.push(docName)
      entry.stored = stored
      this.sendAck(docName, entry.stored)
    }
    for (const docName of changed) {
      const workspace = docName.slice(0, Math.max(0, docName.indexOf('/')))
      for (const c of this.connections) if (c.watching.has(workspace)) c.send(encodeCatalogChanged(workspace, [docName]))
    }
  }

  /** Loses everything of `name`, as if storage were restored from an empty backup. Subscribers are not told. */
  forget(name: string): void {
    const entry = this.docs.get(name)
    if (entry === undefined) return
    this.docs.delete(name)
    entry.awareness.destroy()
    entry.doc.destroy()
  }

  /** Sends a raw ack (e.g. a stale or duplicate one) to every subscriber of `name`. */
  sendAck(name: string, stateVector: Uint8Array): void {
    this.broadcast(name, encodeAck(name, stateVector))
  }

  /** Sends the relay's sync step 1 for `name` to every subscriber, as the relay does to ask for a resync. */
  resync(name: string): void {
    const step1 = startMessage(MessageType.sync, name)
    syncProtocol.writeSyncStep1(step1, this.doc(name))
    this.broadcast(name, encoding.toUint8Array(step1))
  }

  /** Sends an error to every subscriber of `name`, or to every connection when `name` is ''. */
  error(name: string, code: number, reason: string): void {
    const message = encodeError(name, code as ErrorCode, reason)
    if (name === '') for (const c of this.connections) c.send(message)
    else this.broadcast(name, message)
  }

  /** Closes every connection from the relay's side, like a network cut or relay restart. */
  dropAll(): void {
    for (const socket of this.sockets) socket.drop()
    for (const c of [...this.connections]) {
      c.transport.close()
      c.close()
    }
  }

  /** Messages clients sent, optionally filtered. */
  messages(filter: Partial<ReceivedMessage> = {}): ReceivedMessage[] {
    return this.received.filter((m) =>
      Object.entries(filter).every(([key, value]) => m[key as keyof ReceivedMessage] === value),
    )
  }

  /**
   * Resolves when no fake-socket message or event is in flight anymore and
   * promise chains started by them (flush, synced) had a few turns to settle.
   */
  async settle(): Promise<void> {
    for (let spins = 0, idle = 0; idle < 20; spins++) {
      if (spins > 100_000) throw new Error('FakeRelay.settle: messages keep flowing')
      idle = this.inFlight > 0 ? 0 : idle + 1
      await Promise.resolve()
    }
  }

  /** Destroys the relay's docs and awareness instances (their timers). */
  destroy(): void {
    for (const { doc, awareness } of this.docs.values()) {
      awareness.destroy()
      doc.destroy()
    }
    this.docs.clear()
  }

  /** @internal Queues a job behind every job queued before it. */
  deliver(job: () => void): void {
    this.inFlight++
    void Promise.resolve().then(() => {
      this.inFlight--
      job()
    })
  }

  /** @internal */
  handle(connection: RelayConnection, data: Uint8Array): void {
    if (this.silent) return
    const { type, doc: name, body } = decodeMessage(data)
    const record: ReceivedMessage = { connection: connection.id, type, doc: name }
    if (type === MessageType.sync) record.syncType = data[body.pos]
    this.received.push(record)
    switch (type) {
      case MessageType.ping:
        connection.send(encodePong())
        return
      case MessageType.auth:
        if (name === '') {
          const token = decoding.readVarString(body)
          this.tokens.push(token)
          if (token.startsWith('bad')) {
            connection.send(encodeError('', ErrorCode.unauthorized, 'token signature is not valid'))
          } else {
            connection.userId = `user-of-${token}`
            connection.userName = token
            this.seen.set(connection.userId, { name: token, lastSeen: Date.now() })
            connection.send(encodeAuthenticated(`user-of-${token}`, token, Math.floor(Date.now() / 1000) + 3600))
          }
          return
        }
        break
      case MessageType.subscribe:
        return this.subscribe(connection, name)
      case MessageType.watchCatalog:
        connection.watching.add(name)
        return
      case MessageType.unwatchCatalog:
        connection.watching.delete(name)
        return
      case MessageType.listPresence: {
        const requestId = decoding.readVarUint(body)
        const online = new Set([...this.connections].filter((c) => c.subscriptions.size > 0).map((c) => c.userId))
        const users = [...this.seen].map(([userId, s]) => ({
          userId,
          name: s.name,
          lastSeen: online.has(userId) ? Date.now() : s.lastSeen,
          online: online.has(userId),
        }))
        users.sort((a, b) => Number(b.online) - Number(a.online) || b.lastSeen - a.lastSeen)
        connection.send(encodePresence(name, requestId, users))
        return
      }
      case MessageType.unsubscribe:
        return this.unsubscribe(connection, name)
      case MessageType.listDocs:
      case MessageType.fetch:
        if (!this.listAndFetch) {
          connection.transport.close() // an older relay: unknown type → close 1002
          connection.close()
          return
        }
        {
          const answer = (): void =>
            type === MessageType.listDocs ? this.listDocs(connection, name, body) : this.fetch(connection, name, body)
          if (this.holdReads) this.heldReads.push(answer)
          else answer()
        }
        return
    }
    if (!connection.subscriptions.has(name)) {
      connection.send(encodeError(name, ErrorCode.notSubscribed, 'not subscribed'))
      return
    }
    const entry = this.relayDoc(name)
    switch (type) {
      case MessageType.sync: {
        const rejected = this.rejectWrites.get(name)
        if (rejected && record.syncType !== syncProtocol.messageYjsSyncStep1) {
          connection.send(encodeError(name, rejected.code as ErrorCode, rejected.reason))
          return
        }
        if (record.syncType !== syncProtocol.messageYjsSyncStep1 && !this.bindAuthors(connection, name, body)) {
          connection.send(encodeError(name, ErrorCode.permissionDenied, 'client id bound to another user'))
          return
        }
        const reply = startMessage(MessageType.sync, name)
        const headerLength = encoding.length(reply)
        syncProtocol.readSyncMessage(body, reply, entry.doc, connection)
        if (encoding.length(reply) > headerLength) connection.send(encoding.toUint8Array(reply))
        return
      }
      case MessageType.awareness:
        awarenessProtocol.applyAwarenessUpdate(entry.awareness, decoding.readVarUint8Array(body), connection)
        return
      case MessageType.queryAwareness:
        connection.send(this.awarenessMessage(entry.awareness, name, [...entry.awareness.getStates().keys()]))
        return
      default:
        connection.send(encodeError(name, ErrorCode.unknownType, `unknown message type ${type}`))
    }
  }

  /** Last-seen records per user (list-presence). */
  readonly seen = new Map<string, { name: string; lastSeen: number }>()

  /** The author bindings of a doc. */
  authorsOf(name: string): AuthorInfo[] {
    return [...this.relayDoc(name).authors.values()]
  }

  /**
   * Binds the client ids with new structs in a step 2 / update to the
   * connection's user; refuses (false) structs for a client id bound to
   * someone else that the doc does not have yet.
   */
  private bindAuthors(connection: RelayConnection, name: string, body: decoding.Decoder): boolean {
    const entry = this.relayDoc(name)
    const peek = decoding.createDecoder(body.arr.subarray(body.pos))
    decoding.readVarUint(peek)
    const update = decoding.readVarUint8Array(peek)
    const have = Y.encodeStateVector(entry.doc)
    const haveSV = Y.decodeStateVector(have)
    const { to } = Y.parseUpdateMeta(update)
    const added: AuthorInfo[] = []
    for (const [client, clock] of to) {
      if (clock <= (haveSV.get(client) ?? 0)) continue // nothing new of this client
      const bound = entry.authors.get(client)
      if (bound !== undefined) {
        if (bound.userId !== connection.userId) return false
        continue
      }
      added.push({ clientId: client, userId: connection.userId, name: connection.userName })
    }
    for (const a of added) entry.authors.set(a.clientId, a)
    if (added.length > 0) this.broadcast(name, encodeAuthors(name, added))
    return true
  }

  /** @internal */
  unsubscribe(connection: RelayConnection, name: string): void {
    if (connection.subscriptions.has(name)) this.seen.set(connection.userId, { name: connection.userName, lastSeen: Date.now() })
    if (!connection.subscriptions.delete(name)) return
    const clients = connection.awarenessClients.get(name)
    connection.awarenessClients.delete(name)
    const entry = this.docs.get(name)
    if (entry && clients && clients.size > 0) awarenessProtocol.removeAwarenessStates(entry.awareness, [...clients], null)
  }

  private listDocs(connection: RelayConnection, prefix: string, body: decoding.Decoder): void {
    const { requestId, after, limit } = readListDocs(body)
    const rejected = this.rejectReads.get(prefix)
    if (rejected) {
      connection.send(encodeError(prefix, rejected.code as ErrorCode, rejected.reason))
      return
    }
    const names = this.storedNames(prefix).filter((name) => after === '' || name > after)
    const page = names.slice(0, Math.max(1, limit))
    connection.send(encodeDocList(prefix, requestId, page, names.length > page.length))
  }

  /** Sends bindings in parts of at most {@link authorsPerMessage} (nothing at all when there are none, like the real relay). */
  private sendAuthors(connection: RelayConnection, name: string, authors: AuthorInfo[]): void {
    for (let i = 0; i < authors.length; i += this.authorsPerMessage) {
      connection.send(encodeAuthors(name, authors.slice(i, i + this.authorsPerMessage)))
    }
  }

  private fetch(connection: RelayConnection, name: string, body: decoding.Decoder): void {
    const stateVector = decoding.readVarUint8Array(body)
    const invalid = validateDocName(name)
    if (invalid !== null) {
      connection.send(encodeError(name, ErrorCode.invalidDocName, invalid))
      return
    }
    const rejected = this.rejectReads.get(name)
    if (rejected) {
      connection.send(encodeError(name, rejected.code as ErrorCode, rejected.reason))
      return
    }
    const entry = this.relayDoc(name)
    this.sendAuthors(connection, name, [...entry.authors.values()])
    connection.send(encodeFetched(name, Y.encodeStateAsUpdate(entry.doc, stateVector), entry.stored))
  }

  private subscribe(connection: RelayConnection, name: string): void {
    const invalid = validateDocName(name)
    if (invalid !== null) {
      connection.send(encodeError(name, ErrorCode.invalidDocName, invalid))
      return
    }
    const entry = this.relayDoc(name)
    connection.subscriptions.add(name)
    this.seen.set(connection.userId, { name: connection.userName, lastSeen: Date.now() })
    this.sendAuthors(connection, name, [...entry.authors.values()])
    const step1 = startMessage(MessageType.sync, name)
    syncProtocol.writeSyncStep1(step1, entry.doc)
    connection.send(encoding.toUint8Array(step1))
    const states = [...entry.awareness.getStates().keys()]
    if (states.length > 0) connection.send(this.awarenessMessage(entry.awareness, name, states))
    connection.send(encodeAck(name, entry.stored))
  }

  private relayDoc(name: string): RelayDoc {
    let entry = this.docs.get(name)
    if (entry !== undefined) return entry
    const doc = new Y.Doc()
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState(null)
    entry = { doc, awareness, stored: Y.encodeStateVector(new Map()), authors: new Map() }
    this.docs.set(name, entry)
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      const message = startMessage(MessageType.sync, name)
      syncProtocol.writeUpdate(message, update)
      this.broadcast(name, encoding.toUint8Array(message), origin)
      if (this.autoAck) this.ack(name)
    })
    awareness.on(
      'update',
      ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
        if (origin instanceof RelayConnection) {
          let clients = origin.awarenessClients.get(name)
          if (!clients) origin.awarenessClients.set(name, (clients = new Set()))
          for (const id of added.concat(updated)) clients.add(id)
          for (const id of removed) clients.delete(id)
        }
        // The relay itself has no presence (its own state is null from the start).
        const changed = added.concat(updated, removed).filter((id) => id !== awareness.clientID)
        if (changed.length > 0) this.broadcast(name, this.awarenessMessage(awareness, name, changed), origin)
      },
    )
    return entry
  }

  private awarenessMessage(awareness: awarenessProtocol.Awareness, name: string, clients: number[]): Uint8Array {
    return encodeAwareness(name, awarenessProtocol.encodeAwarenessUpdate(awareness, clients))
  }

  private broadcast(name: string, message: Uint8Array, except?: unknown): void {
    for (const c of this.connections) if (c !== except && c.subscriptions.has(name)) c.send(message)
  }
}

/**
 * An in-memory WebSocket connected to a {@link FakeRelay}. Opening, messages
 * and closing are asynchronous (promise jobs), like a real socket.
 */
export class FakeWebSocket implements WebSocketLike {
  binaryType = 'blob'
  readyState = 0
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: { data: unknown }) => void) | null = null
  onclose: ((event: { code: number }) => void) | null = null
  onerror: ((event: unknown) => void) | null = null
  connection: RelayConnection | null = null

  constructor(
    private readonly relay: FakeRelay,
    readonly url: string,
  ) {
    relay.socketsCreated++
    relay.sockets.push(this)
    relay.deliver(() => {
      if (this.readyState !== 0) return
      if (!relay.accepting) {
        this.readyState = 3
        this.onerror?.({})
        this.onclose?.({ code: 1006 })
        return
      }
      this.readyState = 1
      this.onopen?.({})
      this.connection = relay.accept({
        send: (data) => {
          const copy = data.slice()
          relay.deliver(() => {
            if (this.readyState === 1) this.onmessage?.({ data: this.binaryType === 'arraybuffer' ? copy.buffer : copy })
          })
        },
        close: () => this.drop(),
      })
    })
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error('FakeWebSocket is not open')
    const copy = data.slice()
    this.relay.deliver(() => this.connection?.receive(copy))
  }

  close(): void {
    if (this.readyState >= 2) return
    this.readyState = 2
    this.relay.deliver(() => {
      this.readyState = 3
      this.connection?.close()
      this.onclose?.({ code: 1000 })
    })
  }

  /** The network dropped: both ends see the socket close. */
  drop(): void {
    if (this.readyState === 3) return
    this.readyState = 3
    const connection = this.connection
    this.relay.deliver(() => {
      connection?.close()
      this.onclose?.({ code: 1006 })
    })
  }
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((byte, i) => byte === b[i])
