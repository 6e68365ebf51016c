/**
 * What every WebSocket connection shares: sending (batched per event-loop
 * turn, connections/SocketWriter) with metrics and the slow-reader guard,
 * closing with a code and reason, the message rate limit, the budget of
 * bytes waiting (for authentication or for docs that load), the
 * budgets of apply time and answering work, the count of the user's
 * connections, the token-expiry timer, and the heartbeat that finds dead peers.
 *
 * @module connections/Connection
 */
import type { Logger } from '../observability/logger.js'
import type { MessageKind, RefusalReason, RelayMetrics } from '../observability/metrics.js'
import type { RoomRegistry } from '../rooms/RoomRegistry.js'
import type { ClaimedUser } from '../rooms/Room.js'
import type { CommitQueue } from '../rooms/CommitQueue.js'
import type { Authenticator, Identity } from '../auth/Authenticator.js'
import { TokenBucket, queuedSize, type RelayLimits } from '../security/limits.js'
import type { LastSeen } from '../presence/LastSeen.js'
import type { CatalogFeed } from '../rooms/CatalogFeed.js'
import type { Admission } from '../security/admission.js'
import type { InitialSyncQueue } from './initialSync.js'
import type { RelaySocket } from './socket.js'
import { SocketWriter } from './SocketWriter.js'

/** What a connection needs from the relay. */
export interface ConnectionContext {
  readonly rooms: RoomRegistry
  readonly commits: CommitQueue
  readonly metrics: RelayMetrics
  readonly relayVersion: string
  readonly auth: Authenticator
  readonly limits: RelayLimits
  readonly lastSeen: LastSeen
  readonly catalogFeed: CatalogFeed
  readonly admission: Admission
  /** Initial syncs larger than a chunk, sent in parts. */
  readonly initialSyncs: InitialSyncQueue
  /**
   * Runs the answer to the `resume` docs loaded in this turn
   * (connections/ResumeAnswers). Default: `setImmediate` (the next turn). A
   * relay run in-process by a test harness passes its own (e.g.
   * `queueMicrotask`) so answers need no timers.
   */
  readonly scheduleResumeAnswer?: (answer: () => void) => void
}

/** The workspace of a doc name (`<workspaceId>/<recordId>`). */
export const workspaceOf = (doc: string): string => {
  const slash = doc.indexOf('/')
  return slash === -1 ? doc : doc.slice(0, slash)
}

let nextId = 0

/**
 * Base class of the relay's connections. What the parts of a multiplexed
 * connection use (connections/Subscription, connections/requests,
 * connections/CatalogWatches) is public; the rest stays inside.
 */
export abstract class Connection {
  readonly id = `c${++nextId}`
  closed = false
  private alive = true
  private identityValue: Identity | null = null
  /** Without auth: who the client's presence says it is (see {@link claim}). */
  private claimed: ClaimedUser | null = null
  /** Docs whose workspace counts this connection as present, with the user counted. */
  private readonly present = new Map<string, string>()
  private expiryTimer: ReturnType<typeof setTimeout> | null = null
  private readonly messageBucket: TokenBucket
  private queuedBytesValue = 0
  /** Bytes of initial-sync parts handed to the socket and not written out yet: they do not make a slow reader. */
  private initialSyncBuffered = 0
  protected readonly awarenessBucket: TokenBucket
  /** Bytes of awareness states this connection holds in all its rooms (see `Room.applyPeerAwareness`). */
  readonly awarenessBytes: { held: number; readonly max: number }
  /** Yjs apply time (ms) this connection may cause. */
  protected readonly applyBudget: TokenBucket
  /** Answering time (ms) this connection may cause: sync step 2 from its state vectors, `fetch`, `list-docs`. */
  private readonly workBudget: TokenBucket
  /** Frames and batches what this connection sends. */
  private readonly writer: SocketWriter

  constructor(
    readonly ws: RelaySocket,
    readonly ctx: ConnectionContext,
    readonly log: Logger,
  ) {
    ws.binaryType = 'nodebuffer'
    this.writer = new SocketWriter(ws, () => this.checkSendBuffer())
    this.messageBucket = new TokenBucket(ctx.limits.messagesPerSecond, ctx.limits.messageBurst)
    this.awarenessBucket = new TokenBucket(ctx.limits.awarenessPerSecond, ctx.limits.awarenessPerSecond * 2)
    this.applyBudget = new TokenBucket(ctx.limits.applyMsPerSecond, ctx.limits.applyBurstMs)
    this.workBudget = new TokenBucket(ctx.limits.workMsPerSecond, ctx.limits.workBurstMs)
    this.awarenessBytes = { held: 0, max: ctx.limits.maxAwarenessBytesPerConnection }
    ws.on('message', (data, isBinary) => this.receive(data, isBinary))
    ws.on('pong', () => {
      this.alive = true
    })
    ws.on('close', (code, reason) => this.handleClose(code, reason.toString()))
    ws.on('error', (error) => this.log.warn({ err: error }, 'socket error'))
  }

  /** The authenticated identity, or null before authentication. */
  get identity(): Identity {
    if (!this.identityValue) throw new Error('connection is not authenticated')
    return this.identityValue
  }

  /** Bytes of messages this connection has waiting (see {@link RelayLimits.maxQueuedBytes}). */
  get queuedBytes(): number {
    return this.queuedBytesValue
  }

  /**
   * Counts a message that has to wait and returns the copy to keep (a
   * received frame may be a view into a larger network buffer). Over the
   * budget (`limit`, default `maxQueuedBytes`) the connection is refused
   * and closed with 1008, and null is returned: the message is dropped.
   */
  holdQueued(data: Uint8Array, what: string, limit = this.ctx.limits.maxQueuedBytes): Uint8Array | null {
    if (this.ws.readyState !== this.ws.OPEN) return null
    const size = queuedSize(data)
    if (this.queuedBytesValue + size > limit) {
      this.refuse('queue-full', `over ${limit} bytes waiting ${what}`)
      this.queueFull(what, limit)
      this.close(1008, `too much data waiting ${what}; wait for the answers before sending more`)
      return null
    }
    this.queuedBytesValue += size
    this.ctx.metrics.queuedBytes.inc(size)
    return data.slice()
  }

  /** Releases what {@link holdQueued} counted for `data` (once handled or dropped). */
  releaseQueued(data: Uint8Array): void {
    const size = Math.min(queuedSize(data), this.queuedBytesValue)
    this.queuedBytesValue -= size
    this.ctx.metrics.queuedBytes.dec(size)
  }

  /** Tells the peer, before the close, that it sent too much while waiting (the base class says nothing). */
  protected queueFull(_what: string, _limit: number): void {}

  /** True once the connection has an identity. */
  get authenticated(): boolean {
    return this.identityValue !== null
  }

  /** Sets (or refreshes) the identity and arms the token-expiry close. */
  protected setIdentity(identity: Identity): void {
    if (this.identityValue === null && !identity.anonymous) this.ctx.admission.enterUser(identity.userId)
    this.identityValue = identity
    if (this.expiryTimer) clearTimeout(this.expiryTimer)
    this.expiryTimer = null
    if (identity.expiresAt !== null) {
      const delay = Math.max(0, identity.expiresAt - Date.now())
      // setTimeout overflows beyond ~24.8 days; such tokens are re-checked then
      this.expiryTimer = setTimeout(() => this.tokenExpired(), Math.min(delay, 2 ** 31 - 1))
      this.expiryTimer.unref()
    }
  }

  /** Called when the token expired without a refresh. */
  protected tokenExpired(): void {
    if (this.identityValue?.expiresAt && this.identityValue.expiresAt > Date.now()) {
      this.setIdentity(this.identityValue)
      return
    }
    this.refuse('token-expired', 'token expired')
    this.close(1008, 'token expired; reconnect with a fresh token')
  }

  /**
   * Sends bytes if the socket is open. They go out with everything else due
   * to this socket in the same event-loop turn (connections/SocketWriter).
   */
  send(kind: MessageKind, data: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    this.writer.write(data)
    this.ctx.metrics.messageOut(kind, data.byteLength)
  }

  /** Writes a frame made of messages already counted by {@link send}'s metrics (a batch). */
  protected writeCounted(frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    this.writer.write(frame)
  }

  /**
   * Sends one part of an initial sync; `sent` is called once it left the send
   * buffer (with an error if it never will). Its bytes do not count against
   * `maxBufferedBytes` while they wait. False when the socket is not open.
   */
  sendInitialSyncPart(kind: MessageKind, data: Uint8Array, sent: (error?: Error) => void): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return false
    this.initialSyncBuffered += data.byteLength
    this.writer.write(data, (error) => {
      this.initialSyncBuffered -= data.byteLength
      sent(error ?? undefined)
    })
    this.ctx.metrics.messageOut(kind, data.byteLength)
    return true
  }

  /**
   * After a batch of messages was handed to the socket: notes its send
   * buffer and disconnects a peer that does not read. What is left in the
   * buffer then is what the network has not taken; parts of an initial sync
   * wait there by design (paced, see connections/initialSync), only the rest
   * counts against `maxBufferedBytes`.
   */
  private checkSendBuffer(): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    const buffered = this.ws.bufferedAmount
    this.ctx.metrics.sendBuffer(buffered)
    if (buffered - this.initialSyncBuffered > this.ctx.limits.maxBufferedBytes) {
      this.refuse('slow-reader', `send buffer over ${this.ctx.limits.maxBufferedBytes} bytes`)
      this.ws.terminate()
    }
  }

  /** Closes the socket with a code and a human-readable reason (≤ 123 bytes). */
  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.CLOSED || this.ws.readyState === this.ws.CLOSING) return
    this.ws.close(code, truncateReason(reason))
  }

  /** Called by the relay's heartbeat: terminates a peer that did not answer the last ping. */
  heartbeat(): void {
    if (!this.alive) {
      this.log.info('peer did not answer ping; terminating')
      this.ws.terminate()
      return
    }
    this.alive = false
    try {
      this.ws.ping()
    } catch {
      // socket already closing
    }
  }

  /**
   * Marks the user present in the doc's workspace. Without auth, the user the
   * connection's presence claims (see {@link claim}); a connection that
   * claims nobody is not tracked.
   */
  enterWorkspace(doc: string): void {
    const identity = this.identityValue
    const who = identity === null ? null : identity.anonymous ? this.claimed : identity
    if (who === null || this.present.has(doc)) return
    this.present.set(doc, who.userId)
    this.ctx.lastSeen.enter(workspaceOf(doc), who.userId, who.name)
  }

  /** Undoes {@link enterWorkspace}. */
  leaveWorkspace(doc: string): void {
    const userId = this.present.get(doc)
    if (userId === undefined) return
    this.present.delete(doc)
    this.ctx.lastSeen.leave(workspaceOf(doc), userId)
  }

  /**
   * Without auth: the client's presence says who it is (the first claim
   * holds for the connection). It is counted in the workspaces of `docs`
   * (its open subscriptions) and of every doc it subscribes to later, so
   * `list-presence` can name the people of a workspace on a relay without
   * auth too — as unproven as everything there.
   */
  protected claim(user: ClaimedUser, docs: Iterable<string>): void {
    if (this.identityValue?.anonymous !== true || this.claimed !== null) return
    this.claimed = { userId: user.userId, name: user.name }
    for (const doc of docs) this.enterWorkspace(doc)
  }

  /**
   * Counts `count` more messages against the message rate limit, for a
   * message that stands for several (each doc of a `fetch-many`); false when
   * that took it over the limit: the connection is closed with 1008, as for
   * one message too many.
   */
  chargeMessages(count: number): boolean {
    if (count <= 0 || this.messageBucket.charge(count)) return true
    this.refuse('rate-limit', `over ${this.ctx.limits.messagesPerSecond} messages/s`)
    this.close(1008, 'message rate limit exceeded; reconnect later')
    return false
  }

  /**
   * Before answering work (a sync step 2 from a state vector, a `fetch`, a
   * `list-docs`): false when the connection is already over its work budget;
   * it is then closed with 1008, like a connection over its apply-time
   * budget, and nothing is done.
   */
  withinWorkBudget(what: string): boolean {
    if (this.workBudget.charge(0)) return true
    this.overWorkBudget(what)
    return false
  }

  /**
   * Charges `ms` of answering work to the connection's budget; false when
   * that took it over the budget: it is closed with 1008 and the answer is
   * not sent.
   */
  chargeWork(what: string, ms: number): boolean {
    if (this.workBudget.charge(ms)) return true
    this.overWorkBudget(what)
    return false
  }

  private overWorkBudget(what: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    const detail = `${what}: over ${this.ctx.limits.workMsPerSecond} ms/s of answering work; reconnect later`
    this.refuse('work-budget', detail)
    this.close(1008, detail)
  }

  /** Closes a connection whose updates cost too much apply time. */
  overBudget(detail: string): void {
    this.refuse('apply-budget', detail)
    this.close(1008, detail)
  }

  /** Counts and logs a refused input. */
  refuse(reason: RefusalReason, detail: string): void {
    this.ctx.metrics.refused(reason)
    this.log.info({ reason, detail }, 'refused')
  }

  /** Handles one binary message. Never throws. */
  protected abstract handleMessage(data: Uint8Array): void

  /** Frees everything the connection holds. */
  protected abstract cleanup(): void

  private receive(data: Uint8Array, isBinary: boolean): void {
    // once a close is under way, what still arrives is not handled (nor counted again)
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    this.alive = true
    if (!this.takeMessage()) return
    if (!isBinary) {
      this.ctx.metrics.messageIn('unknown', data.byteLength)
      this.protocolError('text frames are not part of the protocol; send binary frames')
      return
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    this.handleMessage(bytes)
  }

  /**
   * Counts one message against the message rate limit; over it the
   * connection is refused and closed, and false is returned.
   */
  protected takeMessage(): boolean {
    if (this.messageBucket.take()) return true
    this.refuse('rate-limit', `over ${this.ctx.limits.messagesPerSecond} messages/s`)
    this.close(1008, 'message rate limit exceeded; reconnect later')
    return false
  }

  /** Closes the connection because of malformed input. */
  protocolError(reason: string, error?: unknown): void {
    this.ctx.metrics.malformedMessages.inc()
    this.log.warn({ err: error, reason }, 'closing connection: malformed message')
    this.close(1002, reason)
  }

  private handleClose(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    if (this.expiryTimer) clearTimeout(this.expiryTimer)
    if (this.identityValue && !this.identityValue.anonymous) this.ctx.admission.leaveUser(this.identityValue.userId)
    this.log.debug({ code, reason }, 'connection closed')
    this.cleanup()
    this.ctx.metrics.queuedBytes.dec(this.queuedBytesValue)
    this.queuedBytesValue = 0
  }
}

const truncateReason = (reason: string): string => {
  const bytes = Buffer.from(reason)
  if (bytes.byteLength <= 123) return reason
  return (
    bytes
      .subarray(0, 120)
      .toString('utf8')
      .replace(/\uFFFD$/, '') + '…'
  )
}
