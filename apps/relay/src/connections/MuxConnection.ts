/**
 * A connection on the multiplexed endpoint (`/.concord/v1`): one socket,
 * many docs. See docs/PROTOCOL.md and docs/security.md.
 *
 * - Authentication: a token from the upgrade request, or an `auth` message
 *   (doc "") within `authTimeoutMs`; until then at most
 *   `maxUnauthenticatedMessages` messages of at most `maxPreAuthQueuedBytes`
 *   in all wait. Until then the connection holds a place among the relay's
 *   sockets without an identity (security/admission.ts). A later `auth`
 *   message refreshes the token (same user only) and re-checks every
 *   subscription. A user has at most `maxConnectionsPerUser` connections and
 *   `maxDocsPerUser` subscriptions across them.
 * - Per doc, messages are handled in arrival order; messages that arrive
 *   while the doc loads from storage wait in a queue and are handled once it
 *   is loaded, so nobody is ever served an empty doc.
 * - What waits (before authentication and while docs load) is bounded by
 *   `maxQueuedBytes` per connection; over it the connection is closed.
 * - Read-only subscriptions get no sync step 1 from the relay (so clients
 *   send no step 2); any update they send is refused with an error.
 * - Answering a client's sync step 1, `fetch` and `list-docs` is charged to
 *   the connection's work budget (`workMsPerSecond`, `workBurstMs`).
 *
 * @module connections/MuxConnection
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import {
  ErrorCode,
  MAX_LIST_LIMIT,
  MessageType,
  decodeMessage,
  encodeAck,
  encodeAuthenticated,
  encodeCatalogChanged,
  encodeDocList,
  encodeError,
  encodeFetched,
  encodeFetchedPart,
  encodeHello,
  encodePong,
  encodePresence,
  readListDocs,
  startMessage,
  validateDocName,
} from '@concord/engine/protocol'
import type { Logger } from '../observability/logger.js'
import type { MessageKind, RefusalReason } from '../observability/metrics.js'
import type { Room, RoomPeer } from '../rooms/Room.js'
import type { CatalogWatcher } from '../rooms/CatalogFeed.js'
import type { AuthorBinding } from '../storage/Storage.js'
import { Access, AuthError, accessFor, listAccessFor, type Identity } from '../auth/Authenticator.js'
import { Connection, type ConnectionContext } from './Connection.js'
import type { RelaySocket } from './socket.js'
import { ProtocolError, readDocMessage, type DocPolicy } from './docMessages.js'
import { muxAuthorsMessages, muxAwarenessMessage, muxUpdateMessage } from './encode.js'
import { validateStateVector } from '../security/validateUpdate.js'
import type { UnauthenticatedSlot } from '../security/admission.js'

interface Subscription {
  room: Room | null
  access: 'read' | 'write'
  /** Messages received while the room loads. */
  queue: Uint8Array[]
  policy: DocPolicy
  /** Last time the relay asked this client to resync the doc (ms). */
  lastResync: number
}

const KIND_BY_TYPE: Record<number, MessageKind> = {
  [MessageType.sync]: 'sync',
  [MessageType.awareness]: 'awareness',
  [MessageType.auth]: 'auth',
  [MessageType.queryAwareness]: 'query-awareness',
  [MessageType.subscribe]: 'subscribe',
  [MessageType.unsubscribe]: 'unsubscribe',
  [MessageType.ping]: 'ping',
  [MessageType.listDocs]: 'list-docs',
  [MessageType.fetch]: 'fetch',
  [MessageType.listPresence]: 'list-presence',
  [MessageType.watchCatalog]: 'watch-catalog',
  [MessageType.unwatchCatalog]: 'unwatch-catalog',
}

const ERROR_BY_REFUSAL: Partial<Record<RefusalReason, ErrorCode>> = {
  permission: ErrorCode.permissionDenied,
  'doc-too-large': ErrorCode.tooLarge,
  'awareness-too-large': ErrorCode.tooLarge,
  'awareness-too-many-entries': ErrorCode.limitExceeded,
  'awareness-too-many-ids': ErrorCode.limitExceeded,
  'awareness-rate-limit': ErrorCode.limitExceeded,
  'forged-awareness': ErrorCode.permissionDenied,
  'forged-author': ErrorCode.permissionDenied,
  'missing-dependencies': ErrorCode.missingDependencies,
}

/** How often a client is asked to resync one doc after updates with missing dependencies, ms. */
const RESYNC_INTERVAL_MS = 5000

/** A multiplexed connection. */
export class MuxConnection extends Connection implements RoomPeer, CatalogWatcher {
  private readonly subs = new Map<string, Subscription>()
  /** Workspaces whose catalog this connection watches (live lists). */
  private readonly watching = new Set<string>()
  /** Messages waiting for authentication. */
  private preAuth: Uint8Array[] | null = null
  private authTimer: ReturnType<typeof setTimeout> | null = null
  private verifying = false
  /** The place this connection holds among the sockets without an identity, until it authenticates. */
  private slot: UnauthenticatedSlot | null

  constructor(ws: RelaySocket, ctx: ConnectionContext, log: Logger, identity: Identity | null, slot: UnauthenticatedSlot | null = null) {
    super(ws, ctx, log)
    this.slot = slot
    if (slot) {
      slot.evict = () => {
        this.refuse('evicted-unauthenticated', 'no token while the relay is full of connections without one')
        this.sendError('', ErrorCode.limitExceeded, 'too many connections are waiting to authenticate: send your token right after connecting')
        this.close(1008, 'too many connections waiting to authenticate; reconnect and authenticate at once')
      }
    }
    this.send('hello', encodeHello(ctx.relayVersion, ctx.limits.maxPayload))
    if (identity) {
      this.setIdentity(identity)
      if (!identity.anonymous) this.sendAuthenticated(identity)
    } else {
      this.preAuth = []
      this.authTimer = setTimeout(() => {
        this.refuse('unauthorized', 'no token in time')
        this.sendError('', ErrorCode.unauthorized, 'authentication timed out: send an auth message with a token first')
        this.close(1008, 'authentication timed out')
      }, ctx.limits.authTimeoutMs)
    }
  }

  /** Names of the docs this connection is subscribed to. */
  get docs(): string[] {
    return [...this.subs.keys()]
  }

  sendUpdate(room: Room, update: Uint8Array): void {
    this.send('sync', muxUpdateMessage(room.name, update))
  }

  sendAwareness(room: Room, update: Uint8Array): void {
    this.send('awareness', muxAwarenessMessage(room.name, update))
  }

  sendAuthors(room: Room, authors: readonly AuthorBinding[]): void {
    this.sendAuthorParts(room.name, authors)
  }

  /** Sends bindings of `doc` in parts of at most `MAX_AUTHORS_PART_BYTES` each (nothing when there are none). */
  private sendAuthorParts(doc: string, authors: readonly AuthorBinding[]): void {
    if (authors.length === 0) return
    for (const part of muxAuthorsMessages(doc, authors)) this.send('authors', part)
  }

  mayWrite(room: Room): boolean {
    const sub = this.subs.get(room.name)
    return sub !== undefined && sub.room === room && sub.policy.writable
  }

  sendAck(room: Room, stateVector: Uint8Array): void {
    this.send('ack', encodeAck(room.name, stateVector))
    this.ctx.metrics.acksSent.inc()
  }

  mayRead(doc: string): boolean {
    return !this.closed && this.authenticated && accessFor(this.identity, doc) !== Access.none
  }

  sendCatalogChanged(workspace: string, names: readonly string[]): void {
    if (names.length > 0 && !this.closed) this.send('catalog-changed', encodeCatalogChanged(workspace, names))
  }

  /** Sends an error about `doc` ("" for the whole connection). */
  sendError(doc: string, code: ErrorCode, reason: string): void {
    this.send('error', encodeError(doc, code, reason))
  }

  protected handleMessage(data: Uint8Array): void {
    let type: number
    let doc: string
    let body: decoding.Decoder
    try {
      ;({ type, doc, body } = decodeMessage(data))
    } catch (error) {
      this.ctx.metrics.messageIn('unknown', data.byteLength)
      this.protocolError('malformed message: cannot read type and doc name', error)
      return
    }
    this.ctx.metrics.messageIn(KIND_BY_TYPE[type] ?? 'unknown', data.byteLength)
    if (type === MessageType.auth && doc === '') {
      this.authenticate(body)
      return
    }
    if (this.preAuth) {
      if (type === MessageType.ping) {
        this.send('pong', encodePong())
        return
      }
      if (this.preAuth.length >= this.ctx.limits.maxUnauthenticatedMessages) {
        this.refuse('unauthorized', 'too many messages before authentication')
        this.sendError('', ErrorCode.unauthorized, 'authenticate before sending more messages')
        this.close(1008, 'too many messages before authentication')
        return
      }
      const held = this.holdQueued(data, 'for authentication', this.ctx.limits.maxPreAuthQueuedBytes)
      if (held) this.preAuth.push(held)
      return
    }
    this.dispatch(type, doc, body, data)
  }

  private dispatch(type: number, doc: string, body: decoding.Decoder, data: Uint8Array): void {
    switch (type) {
      case MessageType.subscribe:
        this.subscribe(doc)
        return
      case MessageType.unsubscribe:
        this.unsubscribe(doc)
        return
      case MessageType.ping:
        this.send('pong', encodePong())
        return
      case MessageType.sync:
      case MessageType.awareness:
      case MessageType.queryAwareness:
      case MessageType.auth: {
        const sub = this.subs.get(doc)
        if (!sub) {
          this.sendError(doc.slice(0, 600), ErrorCode.notSubscribed, `not subscribed to "${doc.slice(0, 128)}"; send subscribe first`)
          return
        }
        if (sub.room) this.handleDocMessage(sub, sub.room, type, body)
        else {
          const held = this.holdQueued(data, 'while docs load')
          if (held) sub.queue.push(held)
        }
        return
      }
      case MessageType.listDocs:
        this.listDocs(doc, body)
        return
      case MessageType.fetch:
        this.fetch(doc, body)
        return
      case MessageType.listPresence:
        this.listPresence(doc, body)
        return
      case MessageType.watchCatalog:
        this.watchCatalog(doc)
        return
      case MessageType.unwatchCatalog:
        this.watching.delete(doc)
        this.ctx.catalogFeed.unwatch(doc, this)
        return
      default:
        this.protocolError(`unknown message type ${type}`)
    }
  }

  private authenticate(body: decoding.Decoder): void {
    let token: string
    try {
      token = decoding.readVarString(body)
    } catch (error) {
      this.protocolError('malformed auth message', error)
      return
    }
    if (this.verifying) {
      this.sendError('', ErrorCode.limitExceeded, 'an auth message is already being verified')
      return
    }
    this.verifying = true
    if (this.slot) this.slot.verifying = true
    this.ctx.auth.verify(token).then(
      (identity) => {
        this.verifying = false
        if (this.slot) this.slot.verifying = false
        if (this.closed) return
        if (!this.authenticated && !identity.anonymous) {
          const refusal = this.ctx.admission.admitUser(identity.userId)
          if (refusal) {
            this.refuse(refusal.reason, refusal.message)
            this.sendError('', ErrorCode.limitExceeded, refusal.message)
            this.close(1008, refusal.message)
            return
          }
        }
        this.slot?.release()
        this.slot = null
        if (this.authenticated && this.identity.userId !== identity.userId) {
          this.refuse('unauthorized', 'token for another user')
          this.sendError('', ErrorCode.unauthorized, 'a refreshed token must be for the same user')
          this.close(1008, 'token for another user')
          return
        }
        this.setIdentity(identity)
        this.sendAuthenticated(identity)
        this.recheckSubscriptions()
        const waiting = this.preAuth
        this.preAuth = null
        if (this.authTimer) clearTimeout(this.authTimer)
        this.authTimer = null
        for (const data of waiting ?? []) {
          this.releaseQueued(data)
          if (this.closed) break
          const { type, doc, body: rest } = decodeMessage(data)
          this.dispatch(type, doc, rest, data)
        }
      },
      (error: unknown) => {
        this.verifying = false
        if (this.slot) this.slot.verifying = false
        const reason = error instanceof AuthError ? error.message : 'token could not be verified'
        this.refuse(reason === 'token expired' ? 'token-expired' : 'unauthorized', reason)
        this.sendError('', ErrorCode.unauthorized, reason)
        this.close(1008, `unauthorized: ${reason}`)
      },
    )
  }

  private sendAuthenticated(identity: Identity): void {
    const expires = identity.expiresAt === null ? 0 : Math.floor(identity.expiresAt / 1000)
    this.send('authenticated', encodeAuthenticated(identity.userId, identity.name, expires))
  }

  /** After a token refresh: drops subscriptions and watches the new token no longer allows, updates read/write. */
  private recheckSubscriptions(): void {
    for (const workspace of [...this.watching]) {
      if (listAccessFor(this.identity, workspace + '/') !== Access.none) continue
      this.watching.delete(workspace)
      this.ctx.catalogFeed.unwatch(workspace, this)
      this.sendError(workspace, ErrorCode.permissionDenied, `access to workspace "${workspace}" was revoked`)
    }
    for (const [doc, sub] of this.subs) {
      const access = accessFor(this.identity, doc)
      if (access === Access.none) {
        this.unsubscribe(doc)
        this.sendError(doc, ErrorCode.permissionDenied, `access to "${doc}" was revoked`)
      } else {
        sub.access = access
        sub.policy.writable = access === Access.write
      }
    }
  }

  private subscribe(doc: string): void {
    if (this.subs.has(doc)) return
    const invalid = validateDocName(doc)
    if (invalid) {
      this.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
      return
    }
    const access = accessFor(this.identity, doc)
    if (access === Access.none) {
      this.refuse('permission', `subscribe ${doc}`)
      this.sendError(doc, ErrorCode.permissionDenied, `no access to "${doc}"`)
      return
    }
    if (this.subs.size >= this.ctx.limits.maxDocsPerConnection) {
      this.refuse('too-many-docs', `subscribe ${doc}`)
      this.sendError(
        doc,
        ErrorCode.limitExceeded,
        `at most ${this.ctx.limits.maxDocsPerConnection} docs per connection; unsubscribe some first`,
      )
      return
    }
    const user = this.identity.anonymous ? null : this.identity.userId
    if (user !== null && !this.ctx.admission.mayOpenDoc(user)) {
      this.refuse('too-many-user-docs', `subscribe ${doc}`)
      this.sendError(
        doc,
        ErrorCode.limitExceeded,
        `at most ${this.ctx.limits.maxDocsPerUser} docs open per user across all connections; close some first`,
      )
      return
    }
    const limits = this.ctx.limits
    const sub: Subscription = {
      room: null,
      access,
      queue: [],
      lastResync: 0,
      policy: {
        writable: access === Access.write,
        maxDocBytes: limits.maxDocBytes,
        initialSyncChunkBytes: limits.initialSyncChunkBytes,
        maxAwarenessStateBytes: limits.maxAwarenessStateBytes,
        maxAwarenessEntries: limits.maxAwarenessEntries,
        maxAwarenessIds: limits.maxAwarenessIds,
        takeAwarenessToken: () => this.awarenessBucket.take(),
        chargeApplyTime: (ms: number) => this.applyBudget.charge(ms),
      },
    }
    this.setSub(doc, sub)
    this.ctx.rooms.acquire(doc).then(
      (room) => {
        if (this.subs.get(doc) !== sub) {
          this.ctx.rooms.release(room)
          return
        }
        sub.room = room
        room.addPeer(this)
        this.enterWorkspace(doc)
        this.sendAuthors(room, [...room.authors.values()])
        if (sub.policy.writable) this.sendSyncStep1(room)
        const states = room.encodeAllAwareness()
        if (states) this.sendAwareness(room, states)
        const queue = sub.queue
        sub.queue = []
        for (const [i, data] of queue.entries()) {
          if (this.closed || sub.room !== room) {
            for (const dropped of queue.slice(i)) this.releaseQueued(dropped)
            break
          }
          this.releaseQueued(data)
          const { type, body } = decodeMessage(data)
          this.handleDocMessage(sub, room, type, body)
        }
      },
      (error: unknown) => {
        if (this.subs.get(doc) === sub) this.deleteSub(doc)
        this.dropQueue(sub)
        this.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; subscribe again later`)
        this.log.warn({ err: error, doc }, 'subscribe failed: storage')
      },
    )
  }

  /** Adds a subscription, counted among the user's open docs. */
  private setSub(doc: string, sub: Subscription): void {
    this.subs.set(doc, sub)
    if (!this.identity.anonymous) this.ctx.admission.openDoc(this.identity.userId)
  }

  /** Removes a subscription and its count. */
  private deleteSub(doc: string): void {
    if (this.subs.delete(doc) && !this.identity.anonymous) this.ctx.admission.closeDoc(this.identity.userId)
  }

  /** Forgets the messages waiting for a doc that will not be served. */
  private dropQueue(sub: Subscription): void {
    for (const data of sub.queue) this.releaseQueued(data)
    sub.queue = []
  }

  protected override queueFull(what: string, limit: number): void {
    this.sendError('', ErrorCode.limitExceeded, `more than ${limit} bytes waiting ${what}`)
  }

  private sendSyncStep1(room: Room): void {
    const step1 = startMessage(MessageType.sync, room.name)
    syncProtocol.writeSyncStep1(step1, room.doc)
    this.send('sync', encoding.toUint8Array(step1))
  }

  private unsubscribe(doc: string): void {
    const sub = this.subs.get(doc)
    if (!sub) return
    this.deleteSub(doc)
    this.dropQueue(sub)
    this.ctx.initialSyncs.cancel(this, doc)
    if (sub.room) {
      this.leaveWorkspace(doc)
      sub.room.removePeer(this)
      this.ctx.rooms.release(sub.room)
      sub.room = null
    }
  }

  private handleDocMessage(sub: Subscription, room: Room, type: number, body: decoding.Decoder): void {
    try {
      // answering a state vector (encoding a step 2) is work charged to the connection
      const answersStateVector = type === MessageType.sync && decoding.peekVarUint(body) === syncProtocol.messageYjsSyncStep1
      if (answersStateVector && !this.withinWorkBudget(`sync step 1 of "${room.name}"`)) return
      const started = performance.now()
      const result = readDocMessage(room, this, type, body, () => startMessage(MessageType.sync, room.name), sub.policy)
      if ((result.kind === 'step1' || result.kind === 'step1-parts') && !this.chargeWork(`sync step 1 of "${room.name}"`, performance.now() - started)) return
      switch (result.kind) {
        case 'step1':
          // ack first: what step 2 brings is then already covered when it is durable
          this.requestAck(room)
          this.send('sync', result.reply)
          return
        case 'step1-parts':
          this.requestAck(room)
          this.sendStep2InParts(sub, room, result.stateVector, result.update)
          return
        case 'step2':
        case 'update':
          this.requestAck(room)
          return
        case 'awareness':
          if (result.claimed !== null) this.claim(result.claimed, [...this.subs].filter(([, s]) => s.room !== null).map(([doc]) => doc))
          return
        case 'auth':
          this.sendError(room.name, ErrorCode.permissionDenied, 'auth messages go on the connection (doc ""), not on a doc')
          return
        case 'over-budget':
          this.overBudget(result.detail)
          return
        case 'refused': {
          this.refuse(result.reason, `${room.name}: ${result.detail}`)
          if (result.reason === 'awareness-rate-limit' || result.reason === 'forged-awareness') return
          this.sendError(room.name, ERROR_BY_REFUSAL[result.reason] ?? ErrorCode.invalidUpdate, result.detail)
          if (result.resync) this.askResync(sub, room)
          return
        }
      }
    } catch (error) {
      const reason =
        error instanceof ProtocolError ? error.message : `malformed ${KIND_BY_TYPE[type]} message for "${room.name}"`
      this.protocolError(reason, error)
    }
  }

  /**
   * Answers a step 1 whose step 2 is larger than a chunk: in parts, as sync
   * updates, the last one as the step 2 (so the client counts the doc synced
   * only once everything arrived), paced by the socket draining. Made when
   * it is this sync's turn (connections/initialSync).
   */
  private sendStep2InParts(sub: Subscription, room: Room, stateVector: Uint8Array, update: Uint8Array): void {
    this.ctx.initialSyncs.enqueue(
      {
        owner: this,
        key: room.name,
        open: () => (this.subs.get(room.name) === sub && sub.room === room && !room.closed ? Y.encodeStateAsUpdate(room.doc, stateVector) : null),
        sendPart: (part, last, sent) => {
          const message = startMessage(MessageType.sync, room.name)
          encoding.writeVarUint(message, last ? syncProtocol.messageYjsSyncStep2 : syncProtocol.messageYjsUpdate)
          encoding.writeVarUint8Array(message, part)
          return this.sendInitialSyncPart('sync', encoding.toUint8Array(message), sent)
        },
      },
      update,
    )
  }

  /** Asks the client to send what the relay lacks (a sync step 1), at most every few seconds per doc. */
  private askResync(sub: Subscription, room: Room): void {
    const now = Date.now()
    if (now - sub.lastResync < RESYNC_INTERVAL_MS) return
    sub.lastResync = now
    this.sendSyncStep1(room)
  }

  /** Acks now when nothing of the room is waiting for storage; otherwise the commit acks. */
  private requestAck(room: Room): void {
    if (!this.ctx.commits.isBusy(room)) this.sendAck(room, room.durableStateVector)
  }

  /** Answers `list-docs`: stored doc names under a prefix, a page at a time. */
  private listDocs(prefix: string, body: decoding.Decoder): void {
    let request: { requestId: number; after: string; limit: number }
    try {
      request = readListDocs(body)
    } catch (error) {
      this.protocolError('malformed list-docs message', error)
      return
    }
    const invalid = prefix === '' ? null : validateDocName(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)
    if (invalid) {
      this.sendError(prefix.slice(0, 600), ErrorCode.invalidDocName, `invalid prefix: ${invalid}`)
      return
    }
    if (listAccessFor(this.identity, prefix) === Access.none) {
      this.refuse('permission', `list ${prefix}`)
      this.sendError(prefix, ErrorCode.permissionDenied, `no access to list "${prefix}"`)
      return
    }
    const limit = Math.max(1, Math.min(request.limit || MAX_LIST_LIMIT, MAX_LIST_LIMIT))
    if (!this.withinWorkBudget('list-docs')) return
    // charged: the relay's own time for the page — the storage read (done inside the call by a storage that reads
    // synchronously, like SQLite) and the filtering — not the time the request waited behind others
    const started = performance.now()
    const listing = this.ctx.rooms.list(prefix)
    const readMs = performance.now() - started
    listing.then(
      (all) => {
        if (this.closed) return
        const filtering = performance.now()
        // per-record grants can hide single docs of a readable workspace
        const names = all.filter((name) => accessFor(this.identity, name) !== Access.none)
        const start = request.after === '' ? 0 : upperBound(names, request.after)
        const page = names.slice(start, start + limit)
        if (!this.chargeWork('list-docs', readMs + performance.now() - filtering)) return
        this.send('doc-list', encodeDocList(prefix, request.requestId, page, start + limit < names.length))
      },
      (error: unknown) => {
        this.log.warn({ err: error, prefix }, 'list-docs failed: storage')
        this.sendError(prefix, ErrorCode.storageUnavailable, 'could not list docs from storage; try again later')
      },
    )
  }

  /** Answers `list-presence`: who was seen in a workspace, and when. */
  private listPresence(workspace: string, body: decoding.Decoder): void {
    let requestId: number
    try {
      requestId = decoding.readVarUint(body)
    } catch (error) {
      this.protocolError('malformed list-presence message', error)
      return
    }
    const invalid = validateDocName(workspace)
    if (invalid || workspace.includes('/')) {
      this.sendError(workspace.slice(0, 600), ErrorCode.invalidDocName, invalid ?? 'a workspace id has no "/"')
      return
    }
    if (listAccessFor(this.identity, workspace + '/') === Access.none) {
      this.refuse('permission', `presence ${workspace}`)
      this.sendError(workspace, ErrorCode.permissionDenied, `no access to workspace "${workspace}"`)
      return
    }
    if (!this.withinWorkBudget('list-presence')) return
    // charged: the read (inside the call for a storage that reads synchronously), not time waited behind others
    const started = performance.now()
    const listing = this.ctx.lastSeen.list(workspace)
    const readMs = performance.now() - started
    listing.then(
      (users) => {
        if (!this.chargeWork('list-presence', readMs)) return
        this.send('presence', encodePresence(workspace, requestId, users))
      },
      (error: unknown) => {
        this.log.warn({ err: error, workspace }, 'list-presence failed: storage')
        this.sendError(workspace, ErrorCode.storageUnavailable, 'could not read presence from storage; try again later')
      },
    )
  }

  /**
   * `watch-catalog`: from now on, tell this connection which docs of the
   * workspace the relay stored changes of. Needs what `list-docs` of the
   * workspace needs; each name is checked again when it is sent.
   */
  private watchCatalog(workspace: string): void {
    const invalid = validateDocName(workspace)
    if (invalid || workspace.includes('/')) {
      this.sendError(workspace.slice(0, 600), ErrorCode.invalidDocName, invalid ?? 'a workspace id has no "/"')
      return
    }
    if (listAccessFor(this.identity, workspace + '/') === Access.none) {
      this.refuse('permission', `watch ${workspace}`)
      this.sendError(workspace, ErrorCode.permissionDenied, `no access to workspace "${workspace}"`)
      return
    }
    if (this.watching.has(workspace)) return
    const max = this.ctx.limits.maxCatalogWatchesPerConnection
    if (this.watching.size >= max) {
      this.refuse('too-many-watches', `watch ${workspace}`)
      this.sendError(workspace, ErrorCode.limitExceeded, `at most ${max} workspaces watched per connection; unwatch some first`)
      return
    }
    this.watching.add(workspace)
    this.ctx.catalogFeed.watch(workspace, this)
  }

  /** Answers `fetch`: what the client lacks of a doc, without subscribing. */
  private fetch(doc: string, body: decoding.Decoder): void {
    const invalid = validateDocName(doc)
    if (invalid) {
      this.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
      return
    }
    let stateVector: Uint8Array
    try {
      stateVector = decoding.readVarUint8Array(body)
      const valid = validateStateVector(stateVector)
      if (!valid.ok) throw new Error(valid.reason)
    } catch (error) {
      this.protocolError(`malformed fetch message for "${doc}"`, error)
      return
    }
    if (accessFor(this.identity, doc) === Access.none) {
      this.refuse('permission', `fetch ${doc}`)
      this.sendError(doc, ErrorCode.permissionDenied, `no access to "${doc}"`)
      return
    }
    if (!this.withinWorkBudget(`fetch of "${doc}"`)) return
    // charged: the relay's own time loading and encoding the doc (not the time the request waited behind others)
    this.ctx.rooms.snapshot(doc, stateVector).then(
      ({ update, durableStateVector, authors, workMs }) => {
        if (!this.chargeWork(`fetch of "${doc}"`, workMs)) return
        this.sendAuthorParts(doc, authors)
        // answers of one doc keep their order: once one goes in parts, the next ones queue behind it
        const key = `fetch ${doc}`
        // Many answers asked for at once (a client catching up pulls several records in parallel) must not make it
        // a slow reader: once its send buffer is half full, answers wait their turn and go out paced, like big ones.
        const underPressure = this.ws.bufferedAmount + update.byteLength > this.ctx.limits.maxBufferedBytes / 2
        if (update.byteLength <= this.ctx.limits.initialSyncChunkBytes && !underPressure && !this.ctx.initialSyncs.has(this, key)) {
          this.send('fetched', encodeFetched(doc, update, durableStateVector))
          return
        }
        let durable = durableStateVector
        this.ctx.initialSyncs.enqueue(
          {
            owner: this,
            key,
            open: async () => {
              if (accessFor(this.identity, doc) === Access.none) {
                this.sendError(doc, ErrorCode.permissionDenied, `no access to "${doc}"`)
                return null
              }
              try {
                const snapshot = await this.ctx.rooms.snapshot(doc, stateVector)
                durable = snapshot.durableStateVector
                return snapshot.update
              } catch (error) {
                this.log.warn({ err: error, doc }, 'fetch failed: storage')
                this.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; fetch again later`)
                return null
              }
            },
            sendPart: (part, last, sent) =>
              last
                ? this.sendInitialSyncPart('fetched', encodeFetched(doc, part, durable), sent)
                : this.sendInitialSyncPart('fetched-part', encodeFetchedPart(doc, part), sent),
          },
          update,
          { replace: false },
        )
      },
      (error: unknown) => {
        this.log.warn({ err: error, doc }, 'fetch failed: storage')
        this.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; fetch again later`)
      },
    )
  }

  protected cleanup(): void {
    this.slot?.release()
    this.slot = null
    this.ctx.initialSyncs.cancel(this)
    if (this.authTimer) clearTimeout(this.authTimer)
    this.preAuth = null
    for (const workspace of this.watching) this.ctx.catalogFeed.unwatch(workspace, this)
    this.watching.clear()
    for (const doc of [...this.subs.keys()]) this.unsubscribe(doc)
  }
}

/** Index of the first name greater than `after` in a sorted array. */
const upperBound = (names: readonly string[], after: string): number => {
  let lo = 0
  let hi = names.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (names[mid] <= after) lo = mid + 1
    else hi = mid
  }
  return lo
}
