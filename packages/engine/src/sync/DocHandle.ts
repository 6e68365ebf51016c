/**
 * One open doc of a {@link SyncClient}: its Y.Doc, its awareness, whether it
 * is synced with the relay and how many of its changes are not durably stored
 * there yet.
 *
 * Handles are created by `client.open(name)`; they are never constructed
 * directly. The client owns the socket; the handle speaks the per-doc part of
 * the protocol (subscribe, sync, awareness, ack, error) through it.
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
  encodeAwareness,
  encodeSubscribe,
  encodeUnsubscribe,
  readAck,
  readError,
  startMessage,
  type AuthorInfo,
} from '../protocol/messages.js'
import { countMissing, decodeStateVector, maxStateVector, type StateVector } from '../protocol/stateVector.js'
import { PendingTracker } from './PendingTracker.js'
import { SyncError } from './SyncError.js'

/** Who is editing: put into the awareness state field `user`. */
export interface UserInfo {
  /** Stable user id. */
  id: string
  /** Display name. */
  name: string
  /** Display colour, e.g. `'#30bced'`. */
  color?: string
}

/** Options of `client.open(name, options)`. */
export interface OpenDocOptions {
  /**
   * The Y.Doc to sync, e.g. one already loaded from IndexedDB. The handle
   * never destroys a doc passed in. Default: a new Y.Doc, destroyed when the
   * handle closes.
   */
  doc?: Y.Doc
  /**
   * Encoded state vector the relay is already known to have stored (as
   * received in an earlier `ack` event and persisted by the caller), so the
   * pending count is right before the first ack of this session arrives.
   * Default: nothing acked, i.e. the whole local doc counts as pending.
   */
  ackedStateVector?: Uint8Array
  /**
   * Transaction origins whose updates are not sent to the relay as they
   * happen, because something else sends them: e.g. updates another tab of
   * the same user made (that tab sends its own edits). They still count as
   * pending, and they still go out in the state-vector exchange after every
   * (re)subscribe and with {@link DocHandle.resendPending}.
   */
  skipSendOrigins?: Iterable<unknown>
  /**
   * Whether this handle answers the relay's sync step 1 with what the relay
   * lacks (the catch-up after every (re)subscribe); asked each time a step 1
   * arrives. Default: always. Return false when another party sends the
   * catch-up for this doc — e.g. the one tab of the same user that holds the
   * outbox duty, so changes held by several tabs are not sent once per tab.
   * An unanswered step 1 is reported with the `catch-up-deferred` event;
   * until the relay has caught up (nothing pending), local edits then wait
   * in the doc instead of going out (see {@link DocHandle.sendsLiveEdits}).
   */
  sendsCatchUp?: () => boolean
  /**
   * Author bindings known from an earlier session (persisted by the caller
   * from `authors` events), so attribution works offline and after a reload.
   */
  authors?: readonly AuthorInfo[]
}

/** Events of a {@link DocHandle}. */
export interface DocHandleEvents {
  /** The pending count changed. */
  pending: (count: number) => void
  /**
   * `isSynced` changed: `true` when the relay's sync step 2 arrived on the
   * current connection, `false` on disconnect, permanent error or close.
   */
  synced: (isSynced: boolean) => void
  /** The relay reported an error for this doc (or the client could not apply a message). */
  error: (error: SyncError) => void
  /** The relay acknowledged durable storage; the argument is the merged acked state vector. */
  ack: (ackedStateVector: ReadonlyMap<number, number>) => void
  /**
   * The relay sent author bindings (Yjs client id → user) this handle did
   * not know yet; the argument holds only the new or changed ones.
   */
  authors: (added: AuthorInfo[]) => void
  /**
   * The relay's sync step 1 arrived and was left unanswered
   * (`sendsCatchUp` returned false); the argument is the relay's encoded
   * state vector, for whoever sends the catch-up ({@link DocHandle.catchUp}).
   */
  'catch-up-deferred': (relayStateVector: Uint8Array) => void
}

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
  /** The handle's pending count changed. */
  pendingChanged(): void
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
  /** Presence of this doc (y-protocols Awareness on {@link doc}). */
  readonly awareness: awarenessProtocol.Awareness
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
  private resolveSynced!: () => void
  private rejectSynced!: (error: Error) => void
  private everSynced = false
  private syncedNow = false
  private lastError: SyncError | null = null
  private parked = false
  private subscribed = false
  private firstAckOfSubscription = false
  /** The relay's state vector as learnt on the current subscription (its step 1, or another tab's); null until known. */
  private relayState: StateVector | null = null
  /** Per client id, the contiguous clock range this handle sent on the current subscription. */
  private readonly sentRanges = new Map<number, { from: number; to: number }>()
  /** Whether the relay's step 1 arrived on the current subscription (a later one asks to resync). */
  private relayStep1Seen = false
  /**
   * The relay's step 1 was left to another party and the relay has not
   * caught up yet: local edits wait in the doc (that party sends them), so
   * none reaches the relay before the changes it builds on.
   */
  private catchUpDeferred = false
  private refs = 1
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
    this.doc = options.doc ?? new Y.Doc()
    this.awareness = new awarenessProtocol.Awareness(this.doc)
    if (user !== undefined) this.awareness.setLocalStateField('user', { ...user })
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve
      this.rejectSynced = reject
    })
    // Nobody has to await `synced`; a rejection must not become an unhandled one.
    this.synced.catch(() => {})
    this.tracker = new PendingTracker(this.doc, {
      remoteOrigin: host.origin,
      acked: options.ackedStateVector === undefined ? undefined : decodeStateVector(options.ackedStateVector),
    })
    for (const author of options.authors ?? []) this.authorMap.set(author.clientId, { ...author })
    this.tracker.on('pending', this.onPending)
    this.doc.on('update', this.onDocUpdate)
    this.awareness.on('update', this.onAwarenessUpdate)
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
    return this.subscribed && !this.catchUpDeferred
  }

  /** Clock ticks of this doc held locally that the relay has not durably stored. */
  get pending(): number {
    return this.tracker.pending
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
   * Sends everything the acked state vector does not cover as one update
   * (when subscribed and something is pending). Yjs updates are idempotent,
   * so this is always safe; use it when changes made elsewhere (another tab
   * that closed before sending) must go out without waiting for a reconnect.
   * Returns whether something was sent.
   */
  resendPending(): boolean {
    if (this.closedFlag || !this.subscribed || this.pending === 0) return false
    return this.sendMissing(new Map(this.ackedStateVector), syncProtocol.messageYjsUpdate)
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
    if (relayStateVector !== undefined) this.learnRelayState(decodeStateVector(relayStateVector))
    if (this.relayState === null) return false
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
    if (this.closedFlag || this.parked) return
    this.subscribed = true
    this.firstAckOfSubscription = true
    this.relayState = null
    this.sentRanges.clear()
    this.relayStep1Seen = false
    this.catchUpDeferred = false
    this.host.send(encodeSubscribe(this.name))
    const step1 = startMessage(MessageType.sync, this.name)
    syncProtocol.writeSyncStep1(step1, this.doc)
    this.host.send(encoding.toUint8Array(step1))
    // Presence goes out now, before anything written offline (that is the answer to the relay's step 1):
    // a relay without auth names the writer of a new client id from it. Set again, so its clock is
    // newer than the one the relay and the peers kept when the last socket dropped — they ignore an
    // equal clock, and would not show this client until its next change.
    const state = this.awareness.getLocalState()
    if (state !== null) this.awareness.setLocalState(state)
  }

  /** @internal The socket is gone. Local edits stay in the doc and go out after the next subscribe. */
  disconnect(): void {
    this.subscribed = false
    this.setSynced(false)
    this.removeRemoteAwareness()
  }

  /** @internal Closes the handle regardless of references (client shutdown). */
  shutdown(reason: Error): void {
    if (this.closedFlag) return
    // Tell the others we left while the update handler still sends.
    this.awareness.setLocalState(null)
    if (this.subscribed) this.host.send(encodeUnsubscribe(this.name))
    this.subscribed = false
    this.closedFlag = true
    this.refs = 0
    this.setSynced(false)
    this.rejectSynced(reason)
    this.rejectWaiters(reason)
    this.doc.off('update', this.onDocUpdate)
    this.awareness.off('update', this.onAwarenessUpdate)
    this.tracker.destroy()
    this.awareness.destroy()
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
        awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(body), this.host.origin)
        return
      case MessageType.queryAwareness:
        if (!this.subscribed) return
        this.host.send(
          encodeAwareness(this.name, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [this.awareness.clientID])),
        )
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
    if (applyError !== null) {
      // Y.applyUpdate threw: a corrupt update, or (more likely) an observer of
      // the doc threw while the update was applied. Report it; do not park the
      // doc, since the next sync exchange repairs whatever is missing.
      const message = applyError instanceof Error ? applyError.message : String(applyError)
      this.receiveError(new SyncError(this.name, ErrorCode.malformed, `applying the relay's update failed: ${message}`))
    }
    if (encoding.length(reply) > headerLength) this.sendContent(encoding.toUint8Array(reply))
    if (syncType === syncProtocol.messageYjsSyncStep2) {
      if (applyError === null && this.lastError !== null && !this.lastError.permanent) this.lastError = null
      this.setSynced(true)
    }
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
    if (this.relayStep1Seen) this.sentRanges.clear()
    this.relayStep1Seen = true
    this.learnRelayState(decodeStateVector(encodedStateVector))
    if (this.sendsCatchUp()) {
      this.sendMissing(this.relayBase(), syncProtocol.messageYjsSyncStep2)
      return
    }
    this.catchUpDeferred = this.pending > 0
    this.emit('catch-up-deferred', [encodedStateVector])
  }

  private learnRelayState(stateVector: StateVector): void {
    this.relayState = this.relayState === null ? stateVector : maxStateVector(this.relayState, stateVector)
  }

  /**
   * What the relay has or is receiving on this subscription, per client id:
   * its known state vector and acks, extended by the range this handle sent
   * where that range starts within what the relay has (so nothing is skipped).
   */
  private relayBase(): StateVector {
    // Acks before the first one of this subscription may predate a relay that lost data.
    const acked = this.firstAckOfSubscription ? new Map<number, number>() : new Map(this.tracker.ackedStateVector)
    const base = maxStateVector(this.relayState ?? new Map<number, number>(), acked)
    for (const [client, { from, to }] of this.sentRanges) {
      const has = base.get(client) ?? 0
      if (from <= has && to > has) base.set(client, to)
    }
    return base
  }

  /** Sends everything the doc holds beyond `base` (as a step 2 or an update) and notes it as sent. */
  private sendMissing(base: StateVector, syncType: number): boolean {
    const message = startMessage(MessageType.sync, this.name)
    encoding.writeVarUint(message, syncType)
    encoding.writeVarUint8Array(message, Y.encodeStateAsUpdate(this.doc, Y.encodeStateVector(base)))
    if (!this.sendContent(encoding.toUint8Array(message))) return false
    for (const [client, clock] of stateVectorOf(this.doc)) this.noteSent(client, base.get(client) ?? 0, clock)
    this.catchUpDeferred = false // what follows on this socket now builds on what was just sent
    return true
  }

  /** Notes that clocks `from` … `to - 1` of `client` went out on this subscription (kept only where contiguous). */
  private noteSent(client: number, from: number, to: number): void {
    if (to <= from) return
    const sent = this.sentRanges.get(client)
    if (sent === undefined || from > sent.to || to < sent.from) {
      // Disjoint ranges: keep the lower one, the one more likely to start within what the relay has.
      if (sent === undefined || from < sent.from) this.sentRanges.set(client, { from, to })
      return
    }
    sent.from = Math.min(sent.from, from)
    sent.to = Math.max(sent.to, to)
  }

  private receiveAck(encoded: Uint8Array): void {
    const mode = this.firstAckOfSubscription ? 'replace' : 'merge'
    this.firstAckOfSubscription = false
    this.tracker.ack(decodeStateVector(encoded), mode)
    if (this.lastError !== null && !this.lastError.permanent) this.lastError = null
    this.emit('ack', [this.tracker.ackedStateVector])
  }

  private receiveError(error: SyncError): void {
    if (this.parked) return // the permanent error that parked the doc stays the one shown
    this.lastError = error
    if (error.permanent) {
      // Park: stop talking to the relay about this doc instead of re-sending
      // what it refused. Local edits stay in the doc and stay pending.
      this.parked = true
      if (this.subscribed) this.host.send(encodeUnsubscribe(this.name))
      this.subscribed = false
      this.setSynced(false)
      this.removeRemoteAwareness()
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

  private removeRemoteAwareness(): void {
    const remote = Array.from(this.awareness.getStates().keys()).filter((client) => client !== this.awareness.clientID)
    if (remote.length > 0) awarenessProtocol.removeAwarenessStates(this.awareness, remote, this.host.origin)
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
    this.host.pendingChanged()
  }

  /**
   * Every update not applied from the relay goes out at once while
   * subscribed (local edits, delete markers, updates loaded from IndexedDB:
   * duplicates are harmless, Yjs updates are idempotent), except updates
   * whose origin is in `skipSendOrigins`, and while the catch-up is left to
   * another party that has not brought the relay up to date yet.
   * Otherwise it waits in the doc for the next sync exchange (or catch-up).
   */
  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this.host.origin || !this.sendsLiveEdits || this.skipSendOrigins.has(origin)) return
    const message = startMessage(MessageType.sync, this.name)
    syncProtocol.writeUpdate(message, update)
    if (!this.sendContent(encoding.toUint8Array(message))) return
    const { from, to } = Y.parseUpdateMeta(update)
    for (const [client, end] of to) this.noteSent(client, from.get(client) ?? 0, end)
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

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin === this.host.origin || !this.subscribed) return
    // Only this client's own state goes out: remote states that time out
    // locally are the relay's business (it drops them when their socket goes).
    const own = this.awareness.clientID
    if (!added.includes(own) && !updated.includes(own) && !removed.includes(own)) return
    this.host.send(encodeAwareness(this.name, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [own])))
  }
}

const stateVectorOf = (doc: Y.Doc): StateVector => Y.decodeStateVector(Y.encodeStateVector(doc))
