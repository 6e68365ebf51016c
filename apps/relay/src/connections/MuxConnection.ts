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
 * - What waits (before authentication and while docs load) is bounded by
 *   `maxQueuedBytes` per connection; over it the connection is closed.
 * - Once authenticated, each message goes where its type says: doc messages
 *   (sync, awareness, query-awareness, auth on a doc) to the doc's
 *   {@link Subscription} (connections/Subscription: loading, the queue while
 *   loading, read/write policy, acks, resync, big initial syncs in parts);
 *   `subscribe` opens one, `resume` many at once, answered together by
 *   {@link ResumeAnswers} (announced in `hello`);
 *   `list-docs`, `fetch` and `list-presence` to connections/requests;
 *   `watch-catalog` and `unwatch-catalog` to {@link CatalogWatches}.
 * - Answering a client's sync step 1, `resume`, `fetch` and `list-docs` is
 *   charged to the connection's work budget (`workMsPerSecond`, `workBurstMs`).
 *
 * @module connections/MuxConnection
 */
import * as decoding from 'lib0/decoding'
import {
  ErrorCode,
  MessageType,
  decodeMessage,
  encodeAuthenticated,
  encodeCatalogChanged,
  encodeError,
  encodeHello,
  encodePong,
  MAX_RESUME_DOCS,
  readBatch,
  readResume,
  RelayFeatures,
  startMessage,
  validateDocName,
  type ResumeEntry,
} from '@concord/engine/protocol'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { validateStateVector } from '../security/validateUpdate.js'
import { ResumeAnswers } from './ResumeAnswers.js'
import { BatchTooLarge, batchFrames, batching, holdUntilScopeEnds, inOneBatch, inflateBatch, type BatchingConnection } from './batches.js'
import { MAX_BATCH_BYTES } from './SocketWriter.js'
import type { Logger } from '../observability/logger.js'
import type { MessageKind } from '../observability/metrics.js'
import type { ClaimedUser, Room } from '../rooms/Room.js'
import type { AuthorBinding } from '../storage/Storage.js'
import { Access, AuthError, accessFor, type Identity } from '../auth/Authenticator.js'
import { Connection, type ConnectionContext } from './Connection.js'
import { DOC_MESSAGE_KINDS, type DocPolicy } from './docMessages.js'
import { muxAckMessage, muxAuthorsMessages, muxAwarenessMessage, muxUpdateMessage } from './encode.js'
import type { UnauthenticatedSlot } from '../security/admission.js'
import type { RelaySocket } from './socket.js'
import { Subscription, type SubscriptionHost } from './Subscription.js'
import { fetchDoc, fetchMany, listDocs, listPresence, type RequestHost } from './requests.js'
import { CatalogWatches, type CatalogWatchHost } from './CatalogWatches.js'

const MESSAGE_KINDS: Record<number, MessageKind> = {
  ...DOC_MESSAGE_KINDS,
  [MessageType.subscribe]: 'subscribe',
  [MessageType.unsubscribe]: 'unsubscribe',
  [MessageType.ping]: 'ping',
  [MessageType.listDocs]: 'list-docs',
  [MessageType.fetch]: 'fetch',
  [MessageType.listPresence]: 'list-presence',
  [MessageType.watchCatalog]: 'watch-catalog',
  [MessageType.unwatchCatalog]: 'unwatch-catalog',
  [MessageType.resume]: 'resume',
  [MessageType.fetchMany]: 'fetch-many',
  [MessageType.batch]: 'batch',
}

/** A multiplexed connection. */
export class MuxConnection extends Connection implements SubscriptionHost, RequestHost, CatalogWatchHost, BatchingConnection {
  private readonly subs = new Map<string, Subscription>()
  /** True once the client sent a `batch`: it understands them, so the relay sends them too (connections/batches). */
  private speaksBatch = false
  /** True while the messages of a received batch are handled. */
  private inBatch = false
  /** Messages sent inside the current {@link inOneBatch} scope, written when it ends. */
  private held: Uint8Array[] | null = null
  /** Workspaces whose catalog this connection watches (live lists). */
  private readonly watches = new CatalogWatches(this)
  /** Answers to this connection's `resume` messages. */
  private readonly resumes = new ResumeAnswers(this)
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
        this.sendError(
          '',
          ErrorCode.limitExceeded,
          'too many connections are waiting to authenticate: send your token right after connecting',
        )
        this.close(1008, 'too many connections waiting to authenticate; reconnect and authenticate at once')
      }
    }
    this.send(
      'hello',
      encodeHello(
        ctx.relayVersion,
        ctx.limits.maxPayload,
        RelayFeatures.resume | RelayFeatures.fetchMany | RelayFeatures.batch,
        Date.now(),
      ),
    )
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
  sendAuthorParts(doc: string, authors: readonly AuthorBinding[]): void {
    if (authors.length === 0) return
    for (const part of muxAuthorsMessages(doc, authors)) this.send('authors', part)
  }

  mayWrite(room: Room): boolean {
    const sub = this.subs.get(room.name)
    return sub !== undefined && sub.room === room && sub.policy.writable
  }

  sendAck(room: Room, stateVector: Uint8Array): void {
    this.send('ack', muxAckMessage(room.name, stateVector))
    this.ctx.metrics.ackSent()
  }

  mayRead(doc: string): boolean {
    return !this.closed && this.authenticated && accessFor(this.identity, doc) !== Access.none
  }

  sendCatalogChanged(workspace: string, names: readonly string[]): void {
    if (names.length > 0 && !this.closed) this.send('catalog-changed', encodeCatalogChanged(workspace, names))
  }

  /** Inside an {@link inOneBatch} scope, to a client that speaks batches: held until the scope ends. */
  override send(kind: MessageKind, data: Uint8Array): void {
    if (!this.speaksBatch || !batching() || this.closed) {
      super.send(kind, data)
      return
    }
    if (this.held === null) {
      this.held = []
      holdUntilScopeEnds(this)
    }
    this.held.push(data)
    // its bytes count with the frame that carries it (a batch's are what went on the wire)
    this.ctx.metrics.messageOut(kind, 0)
  }

  /** Writes what {@link send} held, in batches of at most `MAX_BATCH_BYTES`. */
  flushBatch(): void {
    const held = this.held
    if (held === null) return
    this.held = null
    for (const frame of batchFrames(held, MAX_BATCH_BYTES)) {
      if (frame[0] === MessageType.batch) this.ctx.metrics.messageOut('batch', frame.byteLength)
      else this.ctx.metrics.frameBytesOut(frame.byteLength)
      this.writeCounted(frame)
    }
  }

  /** A part of an initial sync goes after what is held (it may follow a `resumed` entry that announced it). */
  override sendInitialSyncPart(kind: MessageKind, data: Uint8Array, sent: (error?: Error) => void): boolean {
    this.flushBatch()
    return super.sendInitialSyncPart(kind, data, sent)
  }

  /** What is held goes out before the close frame. */
  override close(code: number, reason: string): void {
    this.flushBatch()
    super.close(code, reason)
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
    // a batch's messages count by type; their bytes are the batch frame's
    this.ctx.metrics.messageIn(MESSAGE_KINDS[type] ?? 'unknown', this.inBatch ? 0 : data.byteLength)
    if (type === MessageType.batch && doc === '') {
      this.receiveBatch(body)
      return
    }
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

  /**
   * A `batch`: its messages are handled one after the other as if each had
   * come alone (the rate limit counts each; the frame counted as the first),
   * and what the relay answers meanwhile goes back in batches.
   */
  private receiveBatch(body: decoding.Decoder): void {
    let messages: Uint8Array[]
    try {
      messages = readBatch(body, (bytes) => inflateBatch(bytes, this.ctx.limits.maxPayload))
    } catch (error) {
      if (error instanceof BatchTooLarge) {
        this.ctx.metrics.malformedMessages.inc()
        this.close(1009, error.message)
      } else this.protocolError('malformed batch', error)
      return
    }
    this.speaksBatch = true
    this.inBatch = true
    try {
      inOneBatch(() => {
        for (let i = 0; i < messages.length; i++) {
          if (this.closed || this.ws.readyState !== this.ws.OPEN || (i > 0 && !this.takeMessage())) return
          this.handleMessage(messages[i]!)
        }
      })
    } finally {
      this.inBatch = false
    }
  }

  private dispatch(type: number, doc: string, body: decoding.Decoder, data: Uint8Array): void {
    switch (type) {
      case MessageType.subscribe:
        if (this.subs.has(doc)) this.subs.get(doc)!.subscribedAgain()
        else this.openSubscription(doc)?.load()
        return
      case MessageType.resume:
        this.resume(body)
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
        sub.receive(type, body, data)
        return
      }
      case MessageType.listDocs:
        listDocs(this, doc, body)
        return
      case MessageType.fetch:
        fetchDoc(this, doc, body)
        return
      case MessageType.fetchMany:
        fetchMany(this, body)
        return
      case MessageType.listPresence:
        listPresence(this, doc, body)
        return
      case MessageType.watchCatalog:
        this.watches.watch(doc)
        return
      case MessageType.unwatchCatalog:
        this.watches.unwatch(doc)
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
    this.watches.recheck()
    for (const [doc, sub] of this.subs) {
      const access = accessFor(this.identity, doc)
      if (access === Access.none) {
        this.unsubscribe(doc)
        this.sendError(doc, ErrorCode.permissionDenied, `access to "${doc}" was revoked`)
      } else sub.setPolicy(this.docPolicy(access === Access.write))
    }
  }

  /**
   * A `resume`: each doc is subscribed as by `subscribe` and its state
   * vector answered as a sync step 1 would be, in `resumed` messages
   * (connections/ResumeAnswers). A doc already subscribed on the socket gets
   * the sync step 1 on its subscription. More than `MAX_RESUME_DOCS` entries
   * refuse the whole message (so one message causes at most that many
   * refusals); an invalid state vector closes the connection (1002), as in a
   * sync step 1.
   */
  private resume(body: decoding.Decoder): void {
    let entries: ResumeEntry[]
    try {
      entries = readResume(body)
    } catch (error) {
      this.protocolError('malformed resume message', error)
      return
    }
    if (entries.length > MAX_RESUME_DOCS) {
      this.refuse('too-many-docs', `resume of ${entries.length} docs`)
      this.sendError('', ErrorCode.limitExceeded, `a resume of ${entries.length} docs; at most ${MAX_RESUME_DOCS} per message`)
      return
    }
    for (const { stateVector } of entries) {
      const valid = validateStateVector(stateVector)
      if (!valid.ok) {
        this.protocolError(`invalid state vector in resume: ${valid.reason}`)
        return
      }
    }
    for (const { doc, stateVector } of entries) {
      const subscribed = this.subs.get(doc)
      if (subscribed) {
        const step1 = startMessage(MessageType.sync, doc)
        encoding.writeVarUint(step1, syncProtocol.messageYjsSyncStep1)
        encoding.writeVarUint8Array(step1, stateVector)
        const data = encoding.toUint8Array(step1)
        subscribed.receive(MessageType.sync, decodeMessage(data).body, data)
        continue
      }
      const sub = this.openSubscription(doc)
      if (sub) this.resumes.add(sub, stateVector)
    }
  }

  /**
   * Opens a subscription of `doc`, not loaded yet. Null when it is open
   * already (nothing is sent), or when the name, access or a limit refuses
   * it (an `error` is sent).
   */
  private openSubscription(doc: string): Subscription | null {
    if (this.subs.has(doc)) return null
    const invalid = validateDocName(doc)
    if (invalid) {
      this.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
      return null
    }
    const access = accessFor(this.identity, doc)
    if (access === Access.none) {
      this.refuse('permission', `subscribe ${doc}`)
      this.sendError(doc, ErrorCode.permissionDenied, `no access to "${doc}"`)
      return null
    }
    if (this.subs.size >= this.ctx.limits.maxDocsPerConnection) {
      this.refuse('too-many-docs', `subscribe ${doc}`)
      this.sendError(
        doc,
        ErrorCode.limitExceeded,
        `at most ${this.ctx.limits.maxDocsPerConnection} docs per connection; unsubscribe some first`,
      )
      return null
    }
    const user = this.identity.anonymous ? null : this.identity.userId
    if (user !== null && !this.ctx.admission.mayOpenDoc(user)) {
      this.refuse('too-many-user-docs', `subscribe ${doc}`)
      this.sendError(
        doc,
        ErrorCode.limitExceeded,
        `at most ${this.ctx.limits.maxDocsPerUser} docs open per user across all connections; close some first`,
      )
      return null
    }
    const sub = new Subscription(this, doc, this.docPolicy(access === Access.write))
    this.setSub(doc, sub)
    return sub
  }

  /** Takes a token of this connection's awareness rate budget (shared by its subscriptions' policies). */
  private readonly takeAwarenessToken = (): boolean => this.awarenessBucket.take()
  /** Charges time spent applying updates to this connection's budget (shared by its subscriptions' policies). */
  private readonly chargeApplyTime = (ms: number): boolean => this.applyBudget.charge(ms)

  /** The connection's two policies, made when first needed (see {@link docPolicy}). */
  private writablePolicy: DocPolicy | null = null
  private readOnlyPolicy: DocPolicy | null = null

  /**
   * The read/write policy of a subscription, drawing on this connection's
   * budgets: one object for all its subscriptions with the same access (one
   * per subscription was ~90 bytes each, tens of thousands on a busy relay).
   */
  private docPolicy(writable: boolean): DocPolicy {
    return writable ? (this.writablePolicy ??= this.makePolicy(true)) : (this.readOnlyPolicy ??= this.makePolicy(false))
  }

  private makePolicy(writable: boolean): DocPolicy {
    const limits = this.ctx.limits
    return {
      writable,
      maxDocBytes: limits.maxDocBytes,
      initialSyncChunkBytes: limits.initialSyncChunkBytes,
      maxAwarenessStateBytes: limits.maxAwarenessStateBytes,
      maxAwarenessEntries: limits.maxAwarenessEntries,
      maxAwarenessIds: limits.maxAwarenessIds,
      takeAwarenessToken: this.takeAwarenessToken,
      chargeApplyTime: this.chargeApplyTime,
    }
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

  forget(sub: Subscription): void {
    if (this.subs.get(sub.doc) === sub) this.deleteSub(sub.doc)
  }

  claimPresence(user: ClaimedUser): void {
    this.claim(
      user,
      [...this.subs].filter(([, s]) => s.room !== null).map(([doc]) => doc),
    )
  }

  protected override queueFull(what: string, limit: number): void {
    this.sendError('', ErrorCode.limitExceeded, `more than ${limit} bytes waiting ${what}`)
  }

  private unsubscribe(doc: string): void {
    const sub = this.subs.get(doc)
    if (!sub) return
    this.deleteSub(doc)
    sub.end()
  }

  protected cleanup(): void {
    this.slot?.release()
    this.slot = null
    this.ctx.initialSyncs.cancel(this)
    if (this.authTimer) clearTimeout(this.authTimer)
    this.preAuth = null
    this.watches.clear()
    for (const doc of [...this.subs.keys()]) this.unsubscribe(doc)
  }
}
