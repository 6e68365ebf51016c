/**
 * One doc's subscription on a multiplexed connection, from `subscribe` to
 * `unsubscribe` (or the connection's close). See docs/PROTOCOL.md and
 * docs/security.md.
 *
 * - While the doc loads from storage, its messages wait in a queue (counted
 *   against the connection's `maxQueuedBytes`) and are handled in arrival
 *   order once it is loaded, so nobody is ever served an empty doc.
 * - Once loaded: the author bindings, a sync step 1 (writable subscriptions
 *   only: read-only ones get none, so clients send no step 2) and the
 *   awareness states are sent, then the waiting messages are handled.
 *   A subscription opened by a `resume` sends, instead of the step 1, its
 *   entry of a `resumed` answer ({@link Subscription.answerResume}; see
 *   connections/ResumeAnswers).
 * - Read-only subscriptions have any update they send refused with an error.
 * - Answering the client's sync step 1 is charged to the connection's work
 *   budget; a step 2 larger than a chunk goes out in parts
 *   (connections/initialSync).
 * - Every applied update, and the client's sync step 1, is acked (to this
 *   connection only) once what the room holds is durable.
 * - After an update with missing dependencies the client is asked to resync
 *   (sent a sync step 1), at most every {@link RESYNC_INTERVAL_MS} per doc.
 *
 * @module connections/Subscription
 */
import { Buffer } from 'node:buffer'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { ErrorCode, MessageType, decodeMessage, startMessage, type ResumedDoc } from '@concord/engine/protocol'
import type { RefusalReason } from '../observability/metrics.js'
import type { ClaimedUser, Room, RoomPeer } from '../rooms/Room.js'
import type { Connection } from './Connection.js'
import { DOC_MESSAGE_KINDS, ProtocolError, readDocMessage, type DocPolicy } from './docMessages.js'

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

/** What a subscription uses of its connection (a `MuxConnection`). */
export interface SubscriptionHost extends Connection, RoomPeer {
  /** Sends an error about `doc` ("" for the whole connection). */
  sendError(doc: string, code: ErrorCode, reason: string): void
  /** Without auth: the user the client's presence claims, counted in the workspaces of its loaded docs. */
  claimPresence(user: ClaimedUser): void
  /** Forgets a subscription whose doc could not be loaded (it is not counted among the user's open docs any more). */
  forget(sub: Subscription): void
}

/** Where a subscription is in its life. */
export const SubscriptionState = {
  /** The doc loads from storage; the client's messages for it wait in the queue. */
  loading: 'loading',
  /** The doc is loaded and the connection is a peer of its room: messages are handled as they arrive. */
  ready: 'ready',
  /** Unsubscribed, the connection closed, or the doc could not be loaded: nothing more is done for it. */
  ended: 'ended',
} as const
export type SubscriptionState = (typeof SubscriptionState)[keyof typeof SubscriptionState]

/** A doc subscribed to on a multiplexed connection. */
export class Subscription {
  private stateValue: SubscriptionState = SubscriptionState.loading
  private roomValue: Room | null = null
  /** Messages received while the room loads (null: none). */
  private queue: Uint8Array[] | null = null
  /** A `subscribe` came again while the doc loaded: the relay's step 1 goes out once joined (see {@link subscribedAgain}). */
  private step1AfterJoin = false
  /** Last time the relay asked this client to resync the doc (ms). */
  private lastResync = 0
  constructor(
    private readonly conn: SubscriptionHost,
    readonly doc: string,
    /** Read/write policy (shared by the connection's subscriptions with the same access; see {@link setPolicy}). */
    private policyValue: DocPolicy,
  ) {}

  /** Read/write policy; `writable` follows the connection's access. */
  get policy(): DocPolicy {
    return this.policyValue
  }

  get state(): SubscriptionState {
    return this.stateValue
  }

  /** The room of the doc while {@link SubscriptionState.ready}, else null. */
  get room(): Room | null {
    return this.roomValue
  }

  /** After a token refresh: the policy of the client's access now (whether it may still write). */
  setPolicy(policy: DocPolicy): void {
    this.policyValue = policy
  }

  /** Loads the doc (acquires its room) and, once loaded, joins the room and handles what waited. */
  load(): void {
    this.acquire((room) => {
      this.join(room)
      if (this.policy.writable) this.sendSyncStep1(room)
      this.step1AfterJoin = false
      this.finishJoin(room)
    })
  }

  /**
   * Loads the doc for a `resume` (connections/ResumeAnswers): once loaded,
   * `loaded` gets the room, and the subscription keeps waiting (its
   * messages queued) until {@link answerResume} joins it, so docs loaded
   * in the same turn are answered in one `resumed` message.
   */
  loadForResume(loaded: (room: Room) => void): void {
    this.acquire(loaded)
  }

  /**
   * Joins the room loaded for a `resume` and answers the client's state
   * vector (`stateVector`, validated) — what a sync step 1 gets, as one
   * `resumed` entry: the relay's step 1 only when the relay lacks some of
   * the client's changes (and the client may write), the first ack (the
   * client's own state vector when they are equal, nothing when the ack
   * waits for a commit), and the step 2 (sent in parts after the entry
   * when larger than a chunk). The caller sends the entry, then calls
   * {@link finishJoin}; nothing of the doc reaches the client before.
   * Null when the subscription ended while the doc loaded (the room is
   * released).
   */
  answerResume(room: Room, stateVector: Uint8Array): ResumedDoc | null {
    if (this.stateValue !== SubscriptionState.loading) {
      this.conn.ctx.rooms.release(room)
      return null
    }
    this.join(room)
    const relayLacks = this.policy.writable && room.lacksSomeOf(stateVector)
    const update = room.encodeState(stateVector)
    const inParts = update.byteLength > this.policy.initialSyncChunkBytes
    let ack: ResumedDoc['ack'] = null
    if (!this.conn.ctx.commits.ackAfterCommit(room, this.conn)) {
      const durable = room.durableStateVector
      ack = Buffer.compare(durable, stateVector) === 0 ? 'client-state' : durable
      this.conn.ctx.metrics.ackSent()
    }
    if (inParts) this.sendStep2InParts(room, stateVector, update)
    return { doc: this.doc, relayStateVector: relayLacks ? room.stateVector() : null, ack, update: inParts ? null : update }
  }

  /** Acquires the doc's room; `loaded` gets it unless the subscription ended meanwhile. */
  private acquire(loaded: (room: Room) => void): void {
    const { ctx, log } = this.conn
    ctx.rooms.acquire(this.doc).then(
      (room) => {
        if (this.stateValue !== SubscriptionState.loading) {
          ctx.rooms.release(room)
          return
        }
        loaded(room)
      },
      (error: unknown) => {
        this.conn.forget(this)
        this.stateValue = SubscriptionState.ended
        this.dropQueue()
        this.conn.sendError(this.doc, ErrorCode.storageUnavailable, `could not load "${this.doc}" from storage; subscribe again later`)
        log.warn({ err: error, doc: this.doc }, 'subscribe failed: storage')
      },
    )
  }

  /** Becomes a peer of the loaded room and sends its author bindings. */
  private join(room: Room): void {
    this.stateValue = SubscriptionState.ready
    this.roomValue = room
    room.addPeer(this.conn)
    this.conn.enterWorkspace(this.doc)
    this.conn.sendAuthors(room, room.authorList)
  }

  /**
   * The client sent `subscribe` for this doc again on the same socket (it
   * set the doc up again, e.g. after a `not-subscribed`, or a new handle of
   * a doc whose `resume` is still being answered): it is not subscribed
   * twice, but it gets the relay's step 1 again — now, or once the doc is
   * loaded — so it learns what the relay lacks of it, which the answer to
   * its earlier subscribe or resume may have told a handle that is gone.
   */
  subscribedAgain(): void {
    if (this.stateValue === SubscriptionState.loading) this.step1AfterJoin = true
    else if (this.stateValue === SubscriptionState.ready && this.roomValue !== null && this.policy.writable)
      this.sendSyncStep1(this.roomValue)
  }

  /** After joining (and the relay's step 1 or `resumed` entry): sends the doc's presence states and handles what waited. */
  finishJoin(room: Room): void {
    if (this.step1AfterJoin && this.policy.writable) this.sendSyncStep1(room)
    this.step1AfterJoin = false
    const states = room.encodeAllAwareness()
    if (states) this.conn.sendAwareness(room, states)
    const queue = this.queue ?? []
    this.queue = null
    for (const [i, data] of queue.entries()) {
      if (this.conn.closed || this.roomValue !== room) {
        for (const dropped of queue.slice(i)) this.conn.releaseQueued(dropped)
        break
      }
      this.conn.releaseQueued(data)
      const { type, body } = decodeMessage(data)
      this.handle(room, type, body)
    }
  }

  /**
   * A doc message (sync, awareness, query-awareness, auth) from the client:
   * handled now when the doc is loaded, else kept (`data`, the whole
   * message) until it is.
   */
  receive(type: number, body: decoding.Decoder, data: Uint8Array): void {
    if (this.roomValue) this.handle(this.roomValue, type, body)
    else {
      const held = this.conn.holdQueued(data, 'while docs load')
      if (held) (this.queue ??= []).push(held)
    }
  }

  /** Leaves the room and drops what waits: unsubscribed or the connection closed. */
  end(): void {
    this.stateValue = SubscriptionState.ended
    this.dropQueue()
    this.conn.ctx.initialSyncs.cancel(this.conn, this.doc)
    if (this.roomValue) {
      this.conn.leaveWorkspace(this.doc)
      this.roomValue.removePeer(this.conn)
      this.conn.ctx.rooms.release(this.roomValue)
      this.roomValue = null
    }
  }

  /** Forgets the messages waiting for a doc that will not be served. */
  private dropQueue(): void {
    for (const data of this.queue ?? []) this.conn.releaseQueued(data)
    this.queue = null
  }

  private handle(room: Room, type: number, body: decoding.Decoder): void {
    const conn = this.conn
    try {
      // answering a state vector (encoding a step 2) is work charged to the connection
      const answersStateVector = type === MessageType.sync && decoding.peekVarUint(body) === syncProtocol.messageYjsSyncStep1
      if (answersStateVector && !conn.withinWorkBudget(`sync step 1 of "${room.name}"`)) return
      // only a step 1's answer is charged by time (a clock read costs more than a small update's bookkeeping)
      const started = answersStateVector ? performance.now() : 0
      // the reply's header is made per message: a closure kept per subscription cost ~0.1 KiB each, tens of thousands of them
      const result = readDocMessage(room, conn, type, body, () => startMessage(MessageType.sync, this.doc), this.policy)
      if (
        (result.kind === 'step1' || result.kind === 'step1-parts') &&
        !conn.chargeWork(`sync step 1 of "${room.name}"`, performance.now() - started)
      )
        return
      switch (result.kind) {
        case 'step1':
          // ack first: what step 2 brings is then already covered when it is durable
          this.requestAck(room)
          conn.send('sync', result.reply)
          return
        case 'step1-parts':
          this.requestAck(room)
          this.sendStep2InParts(room, result.stateVector, result.update)
          return
        case 'step2':
        case 'update':
          this.requestAck(room)
          return
        case 'awareness':
          if (result.claimed !== null) conn.claimPresence(result.claimed)
          return
        case 'auth':
          conn.sendError(room.name, ErrorCode.permissionDenied, 'auth messages go on the connection (doc ""), not on a doc')
          return
        case 'over-budget':
          conn.overBudget(result.detail)
          return
        case 'refused': {
          conn.refuse(result.reason, `${room.name}: ${result.detail}`)
          if (result.reason === 'awareness-rate-limit' || result.reason === 'forged-awareness') return
          conn.sendError(room.name, ERROR_BY_REFUSAL[result.reason] ?? ErrorCode.invalidUpdate, result.detail)
          if (result.resync) this.askResync(room)
          return
        }
      }
    } catch (error) {
      const reason = error instanceof ProtocolError ? error.message : `malformed ${DOC_MESSAGE_KINDS[type]} message for "${room.name}"`
      conn.protocolError(reason, error)
    }
  }

  /**
   * Answers a step 1 whose step 2 is larger than a chunk: in parts, as sync
   * updates, the last one as the step 2 (so the client counts the doc synced
   * only once everything arrived), paced by the socket draining. Made when
   * it is this sync's turn (connections/initialSync).
   */
  private sendStep2InParts(room: Room, stateVector: Uint8Array, update: Uint8Array): void {
    this.conn.ctx.initialSyncs.enqueue(
      {
        owner: this.conn,
        key: room.name,
        open: () =>
          this.stateValue === SubscriptionState.ready && this.roomValue === room && !room.closed ? room.encodeState(stateVector) : null,
        sendPart: (part, last, sent) => {
          const message = startMessage(MessageType.sync, room.name)
          encoding.writeVarUint(message, last ? syncProtocol.messageYjsSyncStep2 : syncProtocol.messageYjsUpdate)
          encoding.writeVarUint8Array(message, part)
          return this.conn.sendInitialSyncPart('sync', encoding.toUint8Array(message), sent)
        },
      },
      update,
    )
  }

  private sendSyncStep1(room: Room): void {
    const step1 = startMessage(MessageType.sync, room.name)
    room.writeSyncStep1(step1)
    this.conn.send('sync', encoding.toUint8Array(step1))
  }

  /** Asks the client to send what the relay lacks (a sync step 1), at most every few seconds per doc. */
  private askResync(room: Room): void {
    const now = Date.now()
    if (now - this.lastResync < RESYNC_INTERVAL_MS) return
    this.lastResync = now
    this.sendSyncStep1(room)
  }

  /** Acks now when nothing of the room is waiting for storage; otherwise the room's next commit acks this connection. */
  private requestAck(room: Room): void {
    if (!this.conn.ctx.commits.ackAfterCommit(room, this.conn)) this.conn.sendAck(room, room.durableStateVector)
  }
}
