/**
 * One open doc of a {@link SyncClient}: its Y.Doc, its awareness, whether it
 * is synced with the relay and how many of its changes are not durably stored
 * there yet.
 *
 * Handles are created by `client.open(name)`; they are never constructed
 * directly. The client owns the socket; the handle speaks the per-doc part of
 * the protocol (subscribe, sync, awareness, ack, error) through it. To a
 * relay that takes `resume`, the client subscribes its handles together
 * ({@link DocHandle.resumeEntry}) and hands each its entry of the answer
 * ({@link DocHandle.receiveResumed}): the same exchange, fewer messages.
 *
 * Parts with an idea of their own live apart: what the relay is known to
 * have on the current subscription ({@link KnownRelayState}), the awareness
 * on the wire ({@link DocAwareness}), the pending count from acks
 * ({@link PendingTracker}), and the options and events (sync/docHandleTypes).
 * What stays here, about 520 lines, is one lifecycle per doc — subscribed,
 * synced, parked, catch-up deferred, closed — whose flags every message
 * handler reads together; spreading it over files would hide how they move.
 *
 * @example
 *   const handle = client.open('acme/T-1')
 *   await handle.synced
 *   handle.doc.getText('title').insert(0, 'Hello')
 *   handle.on('pending', (n) => render(n === 0 ? 'synced' : `${n} pending`))
 *   await handle.flush() // durably stored on the relay
 *   handle.close()
 *
 * @module sync/DocHandle
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { ObservableV2 } from 'lib0/observable'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  ErrorCode,
  MessageType,
  encodeSubscribe,
  encodeUnsubscribe,
  readAck,
  readError,
  startMessage,
  type AuthorInfo,
  type ResumeEntry,
  type ResumedDoc,
} from '../protocol/messages.js'
import { countMissing, decodeStateVector, maxStateVector, stateVectorOf, type StateVector } from '../protocol/stateVector.js'
import { DocAwareness } from './DocAwareness.js'
import { KnownRelayState } from './KnownRelayState.js'
import { PendingTracker } from './PendingTracker.js'
import type { DocHandleEvents, OpenDocOptions, UserInfo } from './docHandleTypes.js'
import { SyncError } from './SyncError.js'
import type { CatchUpAllowance } from './catchUpAllowance.js'
import { splitUpdate, type UpdatePart } from './updateParts.js'

export type { DocHandleEvents, OpenDocOptions, UserInfo } from './docHandleTypes.js'

/**
 * What a handle needs from the client that owns it. Internal: the client
 * passes it when it creates the handle.
 */
export interface DocHandleHost {
  /** Transaction / awareness origin of everything applied from the relay: the SyncClient itself. */
  readonly origin: object
  /** Whether the relay handshake completed on the current socket. */
  readonly online: boolean
  /** Sends a message when the socket is open; drops it otherwise. */
  send(data: Uint8Array): void
  /** Largest message the relay accepts, bytes. */
  readonly maxMessageBytes: number
  /** Structs of catch-ups in parts the client's docs may send without idling between parts (one for all its docs). */
  readonly catchUpAllowance: CatchUpAllowance
  /** The handle's pending count changed (now `handle.pending`). */
  pendingChanged(handle: DocHandle): void
  /** The last reference to the handle was closed. */
  released(handle: DocHandle): void
  /** Reports an error of this doc at the client level too. */
  reportError(error: SyncError): void
}

/** A flush waiting for `pending === 0`. */
interface FlushWaiter {
  resolve: () => void
  reject: (error: Error) => void
}

/**
 * An open doc. Obtain one with `client.open(name)`; opening the same name
 * again returns the same handle with one more reference, and each `close()`
 * releases one reference.
 */
export class DocHandle extends ObservableV2<DocHandleEvents> {
  /** The doc name, e.g. `'acme/T-1'`. */
  readonly name: string
  /** The synced Y.Doc. */
  readonly doc: Y.Doc
  /**
   * Resolves when the relay's first sync step 2 arrived, i.e. the doc holds
   * everything the relay had when it answered. Rejects when the handle is
   * closed first or the doc gets a permanent error first.
   */
  readonly synced: Promise<void>

  private readonly host: DocHandleHost
  private readonly ownsDoc: boolean
  private readonly skipSendOrigins: ReadonlySet<unknown>
  private readonly sendsCatchUp: () => boolean
  private readonly tracker: PendingTracker
  /** The awareness on the wire: own changes out, the relay's in. */
  private readonly awarenessSync: DocAwareness
  private resolveSynced!: () => void
  private rejectSynced!: (error: Error) => void
  private everSynced = false
  private syncedNow = false
  private lastError: SyncError | null = null
  private parked = false
  private subscribed = false
  private firstAckOfSubscription = false
  /**
   * Acks learnt from other parties ({@link learnAck}) on the current
   * subscription before its first ack arrived. That first ack states what
   * the relay had stored when it answered — possibly before a commit another
   * tab has been acked for since (its ack reached this tab first, the
   * relay's to this connection was still on its way) — so it replaces what
   * was known except these.
   */
  private learntBeforeFirstAck: StateVector = new Map()
  /**
   * The state vector this handle sent in the `resume` on the current socket
   * (null: none on this socket). It stays when the doc is subscribed again
   * on the same socket before the `resumed` answer arrives (after a
   * `not-subscribed`): the relay ignores that `subscribe`, as the resume
   * subscribed the doc, and sends its step 1 only in the answer, which
   * still holds for what was sent.
   */
  private resumeStateVector: Uint8Array | null = null
  /** What the relay has and what this handle sent, on the current subscription. */
  private readonly relay = new KnownRelayState()
  /**
   * The relay's step 1 was left to another party and the relay has not
   * caught up yet: local edits wait in the doc (that party sends them), so
   * none reaches the relay before the changes it builds on.
   */
  private catchUpDeferred = false
  /**
   * A catch-up too large for one message going out in parts
   * (sync/updateParts): the end of the part sent last and when it was sent
   * (the next one goes out {@link CATCH_UP_IDLE_PER_ROUND_TRIP} round trips
   * after an ack covers it, `timer`), and the parts still to send; null otherwise.
   * Meanwhile local edits wait in the doc (`heldEdits` notes that some did)
   * and go out after the last part, so none reaches the relay before the
   * changes it builds on.
   */
  private catchUpInFlight: {
    partEnd: StateVector
    sentAt: number
    timer: ReturnType<typeof setTimeout> | null
    rest: UpdatePart[]
    heldEdits: boolean
  } | null = null
  /**
   * Whether catch-ups on this subscription may go out in parts: not after the
   * relay refused one for missing dependencies (a part can hold a change
   * that builds on another client id's change in a later part), so the resync
   * sends everything at once.
   */
  private catchUpInParts = true
  private refs = 1
  /** Local updates of the running transactions, sent together once they all ended ({@link sendLiveEdits}). */
  private unsentEdits: Uint8Array[] = []
  private closedFlag = false
  private waiters: FlushWaiter[] = []
  private readonly authorMap = new Map<number, AuthorInfo>()

  /** @internal Created by `SyncClient.open`. */
  constructor(host: DocHandleHost, name: string, options: OpenDocOptions = {}, user?: UserInfo) {
    super()
    this.host = host
    this.name = name
    this.ownsDoc = options.doc === undefined
    this.skipSendOrigins = new Set(options.skipSendOrigins ?? [])
    this.sendsCatchUp = options.sendsCatchUp ?? (() => true)
    // the doc name as guid: a random one costs ~30 getRandomValues calls (lib0 uuidv4) per doc
    this.doc = options.doc ?? new Y.Doc({ guid: name })
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve
      this.rejectSynced = reject
    })
    // Nobody has to await `synced`; a rejection must not become an unhandled one.
    this.synced.catch(() => {})
    this.tracker = new PendingTracker(this.doc, {
      remoteOrigin: host.origin,
      notOwnOrigins: this.skipSendOrigins,
      acked: options.ackedStateVector === undefined ? undefined : decodeStateVector(options.ackedStateVector),
      ownClients: options.ownClients,
    })
    for (const author of options.authors ?? []) this.authorMap.set(author.clientId, { ...author })
    this.tracker.on('pending', this.onPending)
    this.doc.on('update', this.onDocUpdate)
    this.doc.on('afterAllTransactions', this.sendLiveEdits)
    const handle = this
    this.awarenessSync = new DocAwareness(this.doc, name, {
      origin: host.origin,
      get subscribed() {
        return handle.subscribed
      },
      send: (data) => host.send(data),
    })
    if (user !== undefined && options.presence !== false) this.awareness.setLocalStateField('user', { ...user })
  }

  /**
   * Presence of this doc (y-protocols Awareness on {@link doc}). Made when
   * first read, or when the relay sends another client's state: a handle
   * nobody shows presence in costs no `Awareness` and no timer.
   */
  get awareness(): awarenessProtocol.Awareness {
    return this.awarenessSync.awareness
  }

  /** Whether the relay's sync step 2 arrived on the current connection. */
  get isSynced(): boolean {
    return this.syncedNow
  }

  /**
   * Whether local edits go out as they happen: subscribed on the current
   * connection, and not waiting for a catch-up left to another party
   * (`sendsCatchUp`); otherwise they wait in the doc for whoever sends the
   * catch-up.
   */
  get sendsLiveEdits(): boolean {
    return this.subscribed && !this.catchUpDeferred && this.catchUpInFlight === null
  }

  /**
   * Clock ticks of this device's changes of this doc (see {@link ownClients})
   * that the relay has not durably stored. Changes received from the relay
   * never count: they are pending only for their author.
   */
  get pending(): number {
    return this.tracker.pending
  }

  /**
   * The Yjs client ids whose changes count as this device's: those passed
   * with `open(name, { ownClients })` (or every client id the doc held then),
   * those named by {@link addOwnClients}, and those of every update not
   * applied from the relay nor from a `skipSendOrigins` origin.
   */
  get ownClients(): ReadonlySet<number> {
    return this.tracker.ownClients
  }

  /**
   * Counts the changes of `clients` as this device's from now on, e.g. the
   * writers of another tab's edits applied with a `skipSendOrigins` origin:
   * they stay pending here until an ack covers them.
   */
  addOwnClients(clients: Iterable<number>): void {
    if (!this.closedFlag) this.tracker.addOwnClients(clients)
  }

  /**
   * Takes in an acked state vector another party received from the relay
   * for this doc (another tab of this device, which shares its acks: the
   * relay acks only the connection whose updates it stored). Merged like a
   * later ack; emits no `ack` event, so it is not shared back.
   */
  learnAck(stateVector: ReadonlyMap<number, number>): void {
    if (this.closedFlag) return
    const learnt = new Map(stateVector)
    this.tracker.ack(learnt, 'merge')
    if (this.firstAckOfSubscription) this.learntBeforeFirstAck = maxStateVector(this.learntBeforeFirstAck, learnt)
  }

  /**
   * Who is behind each Yjs client id that wrote in this doc, as bound by the
   * relay (`authors` messages) or passed in with `open(name, { authors })`.
   * Client ids the relay has not bound yet (e.g. edits made offline) are missing.
   */
  get authors(): ReadonlyMap<number, AuthorInfo> {
    return this.authorMap
  }

  /** What the relay durably stored of this doc, as far as this client knows. */
  get ackedStateVector(): ReadonlyMap<number, number> {
    return this.tracker.ackedStateVector
  }

  /**
   * The last error of this doc, or null. A transient error is cleared by the
   * next ack or sync step 2; a permanent one stays until {@link retry}.
   */
  get error(): SyncError | null {
    return this.lastError
  }

  /** Whether the doc is parked after a permanent error (see {@link retry}). */
  get isParked(): boolean {
    return this.parked
  }

  /** Whether the last reference was closed. */
  get isClosed(): boolean {
    return this.closedFlag
  }

  /**
   * Resolves when every local change of this doc is durably stored on the
   * relay (`pending === 0`), waiting through disconnects and reconnects.
   * Rejects when the handle or its client is closed first, or when the doc
   * has or gets a permanent error.
   */
  flush(): Promise<void> {
    if (this.closedFlag) return Promise.reject(new Error(`doc "${this.name}" is closed`))
    if (this.pending === 0) return Promise.resolve()
    if (this.parked && this.lastError !== null) return Promise.reject(this.lastError)
    return new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /**
   * Sends this device's changes the acked state vector does not cover as one
   * update (when subscribed and something is pending); the relay acks it
   * once stored. Yjs updates are idempotent, so this is always safe; use it
   * when changes made elsewhere (another tab that closed before sending, or
   * before it could share the relay's ack) must go out without waiting for a
   * reconnect. Returns whether something was sent.
   */
  resendPending(): boolean {
    if (this.closedFlag || !this.subscribed || this.pending === 0) return false
    return this.sendMissing(this.tracker.settledStateVector(), syncProtocol.messageYjsUpdate)
  }

  /**
   * Sends what the relay lacks of this doc on behalf of a party that left
   * the catch-up to this handle (see `sendsCatchUp`), e.g. another tab that
   * reported the relay's state vector from its own `catch-up-deferred`
   * event, or changes another tab made while it was offline. Leaves out what
   * the relay has (`relayStateVector`, its step 1 on this subscription, its
   * acks) and what this handle already sent on the current subscription.
   * Without `relayStateVector` it only sends once the relay's state is known
   * on this subscription; before that, the coming sync exchange carries it.
   * Returns whether something was sent.
   */
  catchUp(relayStateVector?: Uint8Array): boolean {
    if (this.closedFlag || !this.subscribed) return false
    if (relayStateVector !== undefined) this.relay.learn(decodeStateVector(relayStateVector))
    if (!this.relay.known) return false
    const base = this.relayBase()
    if (countMissing(stateVectorOf(this.doc), base) === 0) return false
    return this.sendMissing(base, syncProtocol.messageYjsUpdate)
  }

  /**
   * Leaves the parked state after a permanent error (for example once the
   * user got permission or the oversize content was removed): clears the
   * error and subscribes again when the client is online. Local edits made
   * meanwhile are in the doc and go out in the sync exchange.
   */
  retry(): void {
    if (this.closedFlag || !this.parked) return
    this.parked = false
    this.lastError = null
    if (this.host.online) this.connect()
  }

  /**
   * Releases one reference. The last release sends the awareness removal and
   * `unsubscribe`, stops listening to the doc, rejects waiting flushes and
   * destroys the doc if the handle created it (a doc passed to `open` is left
   * alone). Same as `client.closeDoc(name)`.
   */
  close(): void {
    if (this.closedFlag) return
    this.refs--
    if (this.refs > 0) return
    this.shutdown(new Error(`doc "${this.name}" was closed`))
    this.host.released(this)
  }

  // ---------------------------------------------------------------------------
  // Internal: called by the SyncClient.

  /** @internal One more `open` of the same name. */
  addRef(): void {
    this.refs++
  }

  /** @internal The relay handshake completed: subscribe and start the sync exchange. */
  connect(): void {
    if (!this.beginSubscription()) return
    this.host.send(encodeSubscribe(this.name))
    const step1 = startMessage(MessageType.sync, this.name)
    syncProtocol.writeSyncStep1(step1, this.doc)
    this.host.send(encoding.toUint8Array(step1))
    this.announcePresence()
  }

  /**
   * @internal The relay handshake completed and the relay takes `resume`:
   * starts a subscription like {@link connect} and returns this doc's entry
   * of the `resume` the client sends (null when the doc does not subscribe:
   * closed or parked). The client sends the entries, then calls
   * {@link announcePresence}.
   */
  resumeEntry(): ResumeEntry | null {
    if (!this.beginSubscription()) return null
    this.resumeStateVector = Y.encodeStateVector(this.doc)
    return { doc: this.name, stateVector: this.resumeStateVector }
  }

  /**
   * @internal Sends this doc's presence on a new subscription: right after
   * subscribing, before anything written offline goes out (that answers the
   * relay's step 1), since a relay without auth names the writer of a new
   * client id from it.
   */
  announcePresence(): void {
    if (this.subscribed) this.awarenessSync.announce()
  }

  /**
   * @internal This doc's entry of a `resumed` answer: in the order of a
   * subscription's messages, the relay's step 1 (only when it lacks some of
   * this doc's changes), the first ack, and the step 2 (unless it comes in
   * parts, as sync messages). Without a relay step 1 the relay has at least
   * what this handle sent in the `resume`.
   */
  receiveResumed(entry: ResumedDoc): void {
    const sent = this.resumeStateVector
    if (this.closedFlag || !this.subscribed || sent === null) return
    if (entry.relayStateVector !== null) this.receiveStep1(entry.relayStateVector)
    if (entry.ack !== null) this.receiveAck(entry.ack === 'client-state' ? sent : entry.ack)
    if (entry.update !== null) this.receiveStep2(entry.update)
    if (entry.relayStateVector === null) this.relayHasAll(sent)
  }

  /** @internal The socket is gone. Local edits stay in the doc and go out after the next subscribe. */
  disconnect(): void {
    this.subscribed = false
    this.resumeStateVector = null
    this.stopCatchUp()
    this.setSynced(false)
    this.awarenessSync.removeRemote()
  }

  /** @internal Closes the handle regardless of references (client shutdown). */
  shutdown(reason: Error): void {
    if (this.closedFlag) return
    // Tell the others we left while the update handler still sends.
    this.awarenessSync.leave()
    if (this.subscribed) this.host.send(encodeUnsubscribe(this.name))
    this.subscribed = false
    this.stopCatchUp()
    this.closedFlag = true
    this.refs = 0
    this.setSynced(false)
    this.rejectSynced(reason)
    this.rejectWaiters(reason)
    this.doc.off('update', this.onDocUpdate)
    this.doc.off('afterAllTransactions', this.sendLiveEdits)
    this.unsentEdits = []
    this.tracker.destroy()
    this.awarenessSync.destroy()
    if (this.ownsDoc) this.doc.destroy()
    super.destroy()
  }

  /**
   * @internal Author bindings from the relay (`authors` message). Bindings are
   * permanent on the relay, so known ones are only replaced when the name changed.
   */
  receiveAuthors(authors: readonly AuthorInfo[]): void {
    if (this.closedFlag) return
    const added: AuthorInfo[] = []
    for (const author of authors) {
      const known = this.authorMap.get(author.clientId)
      if (known !== undefined && known.userId === author.userId && known.name === author.name) continue
      const copy = { clientId: author.clientId, userId: author.userId, name: author.name }
      this.authorMap.set(author.clientId, copy)
      added.push(copy)
    }
    if (added.length > 0) this.emit('authors', [added])
  }

  /** @internal A message of type sync, awareness, query-awareness, ack or error for this doc. */
  receive(type: number, body: decoding.Decoder): void {
    if (this.closedFlag) return
    switch (type) {
      case MessageType.sync:
        return this.receiveSync(body)
      case MessageType.awareness:
        if (!this.subscribed) return
        this.awarenessSync.apply(decoding.readVarUint8Array(body))
        return
      case MessageType.queryAwareness:
        if (!this.subscribed) return
        this.awarenessSync.answerQuery()
        return
      case MessageType.ack:
        return this.receiveAck(readAck(body))
      case MessageType.error: {
        const { code, reason } = readError(body)
        return this.receiveError(new SyncError(this.name, code, reason))
      }
    }
  }

  // ---------------------------------------------------------------------------

  /** Starts a subscription (nothing is known of the relay on it yet); false when the doc does not subscribe (closed or parked). */
  private beginSubscription(): boolean {
    if (this.closedFlag || this.parked) return false
    this.subscribed = true
    this.firstAckOfSubscription = true
    this.learntBeforeFirstAck = new Map()
    this.relay.reset()
    this.catchUpDeferred = false
    this.stopCatchUp()
    this.catchUpInParts = true
    return true
  }

  private receiveSync(body: decoding.Decoder): void {
    if (!this.subscribed) return
    if (decoding.peekVarUint(body) === syncProtocol.messageYjsSyncStep1) {
      decoding.readVarUint(body)
      return this.receiveStep1(decoding.readVarUint8Array(body))
    }
    const reply = startMessage(MessageType.sync, this.name)
    const headerLength = encoding.length(reply)
    let applyError: unknown = null
    const syncType = syncProtocol.readSyncMessage(body, reply, this.doc, this.host.origin, (error: Error) => {
      applyError = error
    })
    if (applyError !== null) this.reportApplyError(applyError)
    if (encoding.length(reply) > headerLength) this.sendContent(encoding.toUint8Array(reply))
    if (syncType === syncProtocol.messageYjsSyncStep2) this.step2Applied(applyError === null)
  }

  /** The relay's sync step 2 as a bare update (a `resumed` entry). */
  private receiveStep2(update: Uint8Array): void {
    let applied = true
    try {
      Y.applyUpdate(this.doc, update, this.host.origin)
    } catch (error) {
      applied = false
      this.reportApplyError(error)
    }
    this.step2Applied(applied)
  }

  /**
   * Y.applyUpdate threw: a corrupt update, or (more likely) an observer of
   * the doc threw while the update was applied. Reported; the doc is not
   * parked, since the next sync exchange repairs whatever is missing.
   */
  private reportApplyError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error)
    this.receiveError(new SyncError(this.name, ErrorCode.malformed, `applying the relay's update failed: ${message}`))
  }

  /** The relay's step 2 arrived (`applied`: without an error): the doc is synced on this subscription. */
  private step2Applied(applied: boolean): void {
    if (applied && this.lastError !== null && !this.lastError.permanent) this.lastError = null
    this.setSynced(true)
  }

  /**
   * A `resumed` entry without a relay step 1: the relay lacks nothing of
   * what this handle sent in the `resume` (`sent`), so there is no step 2 to
   * send. What the relay has is known as for a step 1; a party that sends
   * the catch-up for this doc is told, as after a step 1.
   */
  private relayHasAll(sent: Uint8Array): void {
    this.relay.step1Arrived(decodeStateVector(sent))
    if (this.sendsCatchUp()) return
    this.catchUpDeferred = this.pending > 0
    this.emit('catch-up-deferred', [sent])
  }

  /**
   * The relay's step 1: answered with step 2, everything it lacks (incl.
   * offline edits) except what this handle sent since subscribing — or left
   * to whoever sends the catch-up for this doc. A later step 1 on the same
   * subscription asks to resync (the relay refused an update whose
   * dependencies it lacked): what was sent may not have been applied, so
   * only the relay's own state counts then.
   */
  private receiveStep1(encodedStateVector: Uint8Array): void {
    this.relay.step1Arrived(decodeStateVector(encodedStateVector))
    if (this.sendsCatchUp()) {
      this.sendMissing(this.relayBase(), syncProtocol.messageYjsSyncStep2)
      return
    }
    this.catchUpDeferred = this.pending > 0
    this.emit('catch-up-deferred', [encodedStateVector])
  }

  /** What the relay has or is receiving on this subscription (see {@link KnownRelayState.base}). */
  private relayBase(): StateVector {
    // Acks before the first one of this subscription may predate a relay that lost data.
    const acked = this.firstAckOfSubscription ? new Map<number, number>() : new Map(this.tracker.ackedStateVector)
    return this.relay.base(acked)
  }

  /**
   * Sends everything the doc holds beyond `base` (as a step 2 or an update)
   * and notes it as sent — in parts when it is larger than one
   * ({@link CATCH_UP_PART_STRUCTS}, {@link CATCH_UP_PART_BYTES}): the first
   * now, each next one once an ack covers the previous one.
   */
  private sendMissing(base: StateVector, syncType: number): boolean {
    const update = Y.encodeStateAsUpdate(this.doc, Y.encodeStateVector(base))
    const [first, ...rest] = this.catchUpInParts
      ? splitUpdate(update, CATCH_UP_PART_STRUCTS, Math.min(CATCH_UP_PART_BYTES, Math.floor(this.host.maxMessageBytes / 2)))
      : [{ update, end: new Map<number, number>(), structs: null }]
    if (!this.sendSync(syncType, first.update)) return false
    this.host.catchUpAllowance.charge(first.structs ?? 0)
    this.relay.noteSentBeyond(base, rest.length === 0 ? stateVectorOf(this.doc) : first.end)
    this.stopCatchUp()
    if (rest.length > 0) this.catchUpInFlight = { partEnd: first.end, sentAt: performance.now(), timer: null, rest, heldEdits: false }
    this.catchUpDeferred = false // what follows on this socket now builds on what was just sent
    return true
  }

  /** Sends a sync message of `syncType` carrying `update`; false when it is too large to send. */
  private sendSync(syncType: number, update: Uint8Array): boolean {
    const message = startMessage(MessageType.sync, this.name)
    encoding.writeVarUint(message, syncType)
    encoding.writeVarUint8Array(message, update)
    return this.sendContent(encoding.toUint8Array(message))
  }

  /**
   * A catch-up in parts goes on once `acked` (an ack's state vector) covers
   * the part sent last: with the next part, or after the last one with the
   * local edits that waited meanwhile. At once while the client's
   * {@link DocHandleHost.catchUpAllowance} holds the next part's structs
   * (after the last part: while it is not below zero); otherwise after an idle time of
   * {@link CATCH_UP_IDLE_PER_ROUND_TRIP} times the acked part's round trip.
   */
  private continueCatchUp(acked: StateVector): void {
    const inFlight = this.catchUpInFlight
    if (inFlight === null || inFlight.timer !== null || !this.subscribed) return
    for (const [client, clock] of inFlight.partEnd) if ((acked.get(client) ?? 0) < clock) return
    const structs = inFlight.rest[0]?.structs ?? 0
    if (this.host.catchUpAllowance.take(structs)) {
      this.sendNextPart(inFlight)
      return
    }
    const roundTrip = performance.now() - inFlight.sentAt
    inFlight.timer = setTimeout(() => {
      inFlight.timer = null
      if (this.catchUpInFlight !== inFlight) return
      this.host.catchUpAllowance.charge(structs)
      this.sendNextPart(inFlight)
    }, CATCH_UP_IDLE_PER_ROUND_TRIP * roundTrip)
  }

  /** Sends the next part of the catch-up `inFlight` (its structs already counted), or after the last one the local edits held meanwhile. */
  private sendNextPart(inFlight: NonNullable<DocHandle['catchUpInFlight']>): void {
    const next = inFlight.rest.shift()
    if (next === undefined || !this.sendSync(syncProtocol.messageYjsUpdate, next.update)) {
      this.catchUpInFlight = null
      if (next === undefined && inFlight.heldEdits) this.sendMissing(this.relayBase(), syncProtocol.messageYjsUpdate)
      return
    }
    this.relay.noteSentUpdate(next.update)
    inFlight.partEnd = next.end
    inFlight.sentAt = performance.now()
  }

  /** Forgets a catch-up in parts (a new subscription or catch-up, the socket gone): what it did not send goes with the next catch-up. */
  private stopCatchUp(): void {
    if (this.catchUpInFlight?.timer) clearTimeout(this.catchUpInFlight.timer)
    this.catchUpInFlight = null
  }

  private receiveAck(encoded: Uint8Array): void {
    const acked = decodeStateVector(encoded)
    if (this.firstAckOfSubscription) {
      this.firstAckOfSubscription = false
      this.tracker.ack(maxStateVector(acked, this.learntBeforeFirstAck), 'replace')
      this.learntBeforeFirstAck = new Map()
    } else this.tracker.ack(acked, 'merge')
    if (this.lastError !== null && !this.lastError.permanent) this.lastError = null
    this.emit('ack', [this.tracker.ackedStateVector])
    this.continueCatchUp(acked)
  }

  private receiveError(error: SyncError): void {
    if (this.parked) return // the permanent error that parked the doc stays the one shown
    this.lastError = error
    if (error.code === ErrorCode.missingDependencies) this.catchUpInParts = false
    if (error.permanent) {
      // Park: stop talking to the relay about this doc instead of re-sending
      // what it refused. Local edits stay in the doc and stay pending.
      this.parked = true
      if (this.subscribed) this.host.send(encodeUnsubscribe(this.name))
      this.subscribed = false
      this.stopCatchUp()
      this.setSynced(false)
      this.awarenessSync.removeRemote()
      if (!this.everSynced) this.rejectSynced(error)
      this.rejectWaiters(error)
    } else if (error.code === ErrorCode.notSubscribed && this.subscribed) {
      // The relay forgot the subscription (e.g. it unloaded the doc): set it up again.
      this.connect()
    }
    this.emit('error', [error])
    this.host.reportError(error)
  }

  private setSynced(synced: boolean): void {
    if (synced && !this.everSynced) {
      this.everSynced = true
      this.resolveSynced()
    }
    if (this.syncedNow === synced) return
    this.syncedNow = synced
    this.emit('synced', [synced])
  }

  private rejectWaiters(error: Error): void {
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter.reject(error)
  }

  private readonly onPending = (count: number): void => {
    if (count === 0) this.catchUpDeferred = false
    if (count === 0 && this.waiters.length > 0) {
      const waiters = this.waiters
      this.waiters = []
      for (const waiter of waiters) waiter.resolve()
    }
    this.emit('pending', [count])
    this.host.pendingChanged(this)
  }

  /**
   * Every update not applied from the relay goes out at once while
   * subscribed (local edits, delete markers, updates loaded from IndexedDB:
   * duplicates are harmless, Yjs updates are idempotent), except updates
   * whose origin is in `skipSendOrigins`, while the catch-up is left to
   * another party that has not brought the relay up to date yet, and while a
   * catch-up goes out in parts (sent after its last part).
   * Otherwise it waits in the doc for the next sync exchange (or catch-up).
   */
  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this.host.origin || this.skipSendOrigins.has(origin)) return
    if (this.catchUpInFlight !== null) this.catchUpInFlight.heldEdits = true
    if (!this.sendsLiveEdits) return
    this.unsentEdits.push(update)
  }

  /**
   * Sends the local updates of the transactions that just ended as one
   * message: a delete-only edit and the delete marker written right after it
   * (see `PendingTracker`) travel together, so no frame can bring the relay
   * the marker without the deletion it vouches for.
   */
  private readonly sendLiveEdits = (): void => {
    if (this.unsentEdits.length === 0) return
    const update = this.unsentEdits.length === 1 ? this.unsentEdits[0] : Y.mergeUpdates(this.unsentEdits)
    this.unsentEdits = []
    const message = startMessage(MessageType.sync, this.name)
    syncProtocol.writeUpdate(message, update)
    if (!this.sendContent(encoding.toUint8Array(message))) return
    this.relay.noteSentUpdate(update)
  }

  /**
   * Sends a message carrying doc content, unless it is larger than the relay
   * accepts: the relay would close the socket (1009) and the client would
   * resend it after every reconnect. Such a change stays in the doc, stays
   * pending, and the doc gets a permanent `too-large` error instead.
   */
  private sendContent(data: Uint8Array): boolean {
    if (data.byteLength > this.host.maxMessageBytes) {
      this.receiveError(
        new SyncError(
          this.name,
          ErrorCode.tooLarge,
          `a change of ${data.byteLength} bytes is larger than the relay accepts (${this.host.maxMessageBytes} bytes); it stays on this device`,
        ),
      )
      return false
    }
    this.host.send(data)
    return true
  }
}

/**
 * Most structs in one part of a catch-up: the relay applies a message in one
 * go, and a part this size of small edits applies in milliseconds, well within
 * a connection's apply budget.
 */
const CATCH_UP_PART_STRUCTS = 1000
/** Most bytes in one part of a catch-up (and at most half the relay's largest message). */
const CATCH_UP_PART_BYTES = 256 * 1024
/**
 * Idle time after each part of a catch-up, in round trips of that part
 * (send to ack): the relay's apply time of a part is less than its round
 * trip, so a catch-up then costs the relay at most a quarter of wall time,
 * the relay's default apply budget (250 ms per second).
 */
const CATCH_UP_IDLE_PER_ROUND_TRIP = 3
