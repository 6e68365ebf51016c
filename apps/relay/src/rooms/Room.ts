/**
 * Per-doc state on the relay: the Y.Doc, its Awareness, the peers subscribed
 * to it and what of it is durably stored.
 *
 * The Awareness (~2.6 KiB and a timer) is created when the first presence
 * state arrives: most rooms (records synced in the background, docs nobody
 * looks at) never get one, and a subscriber is sent awareness only when
 * there is some. Presence changes are sent to the peers once per event-loop
 * turn, all changes of the turn in one awareness update: when many clients
 * (re)subscribe at once, each peer gets one message per turn instead of one
 * per arriving client.
 *
 * A room is created empty by the {@link RoomRegistry}, filled from storage by
 * {@link Room.load} and only then handed to connections, so no peer is ever
 * served an empty doc while it loads.
 *
 * A room nobody has written to for a while goes dormant ({@link Room.sleep}):
 * it drops its `Y.Doc` (a small ticket's is ~6 KiB, a ticket after 1,000
 * edits ~400 KiB) and keeps the doc's state encoded (~0.2 and ~21 KiB). Its
 * subscribers, presence and author bindings stay. Catch-up answers, state
 * vectors, checkpoints and the HTTP API's reads are made from the encoded
 * state; the first use that needs the doc itself (an update to apply, from
 * a client, the HTTP API or another relay instance) makes a new `Y.Doc`
 * from it ({@link Room.doc}). A room goes dormant only when everything it
 * holds is stored. A doc stored as a single update starts dormant when it
 * is loaded (see {@link Room.load}).
 *
 * Longer than 400 lines because the room is the one place where a doc's
 * updates, awareness ownership and durable state vector meet; each of those
 * methods reads the other two, and splitting them would pass the room's
 * state around instead of keeping it private.
 *
 * @module rooms/Room
 */
// the module's own `setImmediate`, not the global: a test that fakes the global clock must not hold presence back
import { Buffer } from 'node:buffer'
import { randomFillSync } from 'node:crypto'
import { setImmediate } from 'node:timers'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type { Logger } from '../observability/logger.js'
import type { AuthorBinding, StoredDoc } from '../storage/Storage.js'
import type { Identity } from '../auth/Authenticator.js'
import {
  applyAwarenessEntries,
  colorForUser,
  decodeAwarenessUpdate,
  encodeAwarenessEntries,
  encodeAwarenessStates,
  stateJson,
  type AwarenessEntry,
} from '../security/awarenessFilter.js'
import { DocGuard, type DocLimits, type ValidatedCounts } from '../security/docGuard.js'
import { DEFAULT_LIMITS } from '../security/limits.js'
import type { UpdateLimits } from '../security/validateUpdate.js'
import { applyStored } from './snapshotOfStored.js'

/**
 * A connection's view of a room. Connections implement it; the room uses it
 * to fan out updates and awareness, and to ack the peers whose updates a
 * commit stored.
 */
export interface RoomPeer {
  /** Stable id for logs. */
  readonly id: string
  /** Who is behind the connection; stamps awareness identity fields. */
  readonly identity: Identity
  /** Sends a Yjs update (a y-protocols sync `update` message) for `room`. */
  sendUpdate(room: Room, update: Uint8Array): void
  /** Sends an encoded awareness update for `room`. */
  sendAwareness(room: Room, update: Uint8Array): void
  /** Sends the durably stored state vector of `room`; peers that do not speak acks ignore it. */
  sendAck(room: Room, stateVector: Uint8Array): void
  /** Sends author bindings of `room`; peers that do not speak them ignore it. */
  sendAuthors(room: Room, authors: readonly AuthorBinding[]): void
  /** True while the connection may write to `room` (its awareness claims then reserve client ids, see {@link Room.applyPeerAwareness}). */
  mayWrite(room: Room): boolean
  /** Bytes of awareness states the connection holds in all its rooms, and how many it may hold. */
  readonly awarenessBytes: { held: number; readonly max: number }
}

/** Origin of transactions applied on behalf of a peer. */
export interface PeerOrigin {
  readonly source: 'peer'
  readonly peer: RoomPeer
}

/** Hooks the room calls; the registry wires them to the commit queue (and the cluster layer, when there is one). */
export interface RoomHooks {
  /** A new update was applied to the room's doc and must be stored; `from` sent it (null: the relay itself) and is acked once it is. */
  onUpdate(room: Room, update: Uint8Array, from: RoomPeer | null): void
  /**
   * Runs the send of a turn's presence changes. Default: `setImmediate` (the
   * next turn). A relay run in-process by a test harness passes its own (e.g.
   * `queueMicrotask`) so presence needs no timers.
   */
  scheduleAwarenessSend?(send: () => void): void
  /** Presence states changed on this instance (`update` encodes them); only set when other relay instances must hear of it. */
  onAwareness?(room: Room, update: Uint8Array): void
  /** A dormant room made its `Y.Doc` again. */
  onWake?(room: Room): void
  /**
   * A keep-alive started waiting in the room (see `Room.sendRenewals`): the
   * registry sends it within a few seconds, spread over time as they came.
   * Without this hook a keep-alive goes out in the next turn, as a change.
   */
  onRenewalWaiting?(room: Room): void
}

/**
 * Origin of what another relay instance stored or received (applied through
 * the cluster layer): forwarded to this instance's peers, never stored or
 * published again.
 */
export const CLUSTER_ORIGIN = Object.freeze({ source: 'cluster' })

/** One open doc. */
export class Room {
  /** The doc while the room is awake; null while it is dormant. */
  private ydoc: Y.Doc | null = null
  /**
   * While the room is dormant: the doc's whole state, encoded, and its state
   * vector (`loaded`: as storage held it, the room has not had a `Y.Doc`
   * yet); null while it is awake.
   */
  private dormant: { state: Uint8Array; stateVector: Uint8Array; diffs: number; loaded: boolean } | null = null
  /** True when the doc was used since the last {@link sleep} call. */
  private used = true
  /** Called with every new `Y.Doc` of the room (see {@link watchDoc}); null until the first watcher. */
  private docWatchers: Array<(doc: Y.Doc) => void> | null = null
  /** Presence states of the doc; null until the first one arrives (see the module documentation). */
  private presence: awarenessProtocol.Awareness | null = null
  readonly peers = new Set<RoomPeer>()
  /** Who owns which presence state, and the changes waiting to be sent; null until the first presence state arrives. */
  private ledger: PresenceLedger | null = null
  /** True while a send of the ledger's unsent changes is scheduled. */
  private awarenessSendScheduled = false
  /** When the oldest keep-alive waiting in the ledger's unsent changes arrived (`performance.now()`); 0 when none waits. */
  renewalsSince = 0
  /** Client ids among the ledger's unsent changes whose change happened on this instance, to publish to the other instances; null without a cluster (or until the first). */
  private unpublishedAwareness: Set<number> | null = null
  /** Bytes the doc takes in storage, estimated: checkpoint + log, plus every update since. */
  byteSize = 0
  /** Who wrote with each Yjs client id (bound by the first accepted update with it, stored with the commit); only ids the doc has content of. */
  readonly authors = new Map<number, AuthorBinding>()
  /** The bindings of {@link authors} as one array, made when first asked for after a change (see {@link authorList}). */
  private authorListValue: readonly AuthorBinding[] | null = null
  /** Bindings made since the last commit started. */
  private pendingAuthors: AuthorBinding[] = []
  /**
   * The doc's encoded state vector and, once asked for, the step 2 for a
   * client whose state vector is exactly that (no structs, the doc's delete
   * set): the same bytes for every such client, so they are made once —
   * after a relay restart every client of a doc resumes with the same state
   * vector. Null until asked for; every transaction of the doc clears it
   * (at its start and end), as do waking and going dormant.
   */
  private current: CurrentState | null = null
  private readonly forgetCurrent = (): void => {
    this.current = null
  }
  /** Encoded state vector of everything durably stored. */
  durableStateVector: Uint8Array = EMPTY_STATE_VECTOR
  /** Sequence number of the last stored update. */
  lastSeq = 0
  /** Updates and bytes in the storage log since the last checkpoint. */
  logCount = 0
  logBytes = 0
  /** Connections holding the room open. */
  refs = 0
  unloadTimer: ReturnType<typeof setTimeout> | null = null
  closed = false
  /** Limits of one update for `validateUpdateV1`, the same as the room checks against the doc. */
  readonly updateLimits: UpdateLimits
  /** Checks updates against what the doc holds (nesting depth, concurrent map entries); one per `Y.Doc`, null while dormant. */
  private guard: DocGuard | null = null
  private readonly docLimits: DocLimits

  /** The room's logger, made when first used (see {@link log}). */
  private logValue: Logger | null = null

  constructor(
    readonly name: string,
    private readonly hooks: RoomHooks,
    /** The relay's logger; the room logs through a child of it naming the doc. */
    private readonly parentLog: Logger,
    limits: DocLimits = DEFAULT_LIMITS,
  ) {
    ;({ docLimits: this.docLimits, updateLimits: this.updateLimits } = roomLimits(limits))
  }

  /** The room's logger (bound to the doc's name), made at its first use: most rooms never log. */
  get log(): Logger {
    return (this.logValue ??= this.parentLog.child({ doc: this.name }))
  }

  /** Logs at debug level, without making the room's logger when debug is off. */
  debug(fields: Record<string, unknown>, message: string): void {
    if (this.parentLog.isLevelEnabled('debug')) this.log.debug(fields, message)
  }

  /** The room's doc; a dormant room makes it anew from its encoded state. */
  get doc(): Y.Doc {
    this.used = true
    return this.ydoc ?? this.wake()
  }

  /** True while the room holds its doc only encoded (see the module documentation). */
  get isDormant(): boolean {
    return this.dormant !== null
  }

  /**
   * Calls `watch` with the room's doc now and with every `Y.Doc` it makes
   * when it wakes from dormancy, before anything is applied to it (webhooks
   * observe record changes this way).
   */
  watchDoc(watch: (doc: Y.Doc) => void): void {
    if (this.docWatchers === null) this.docWatchers = [watch]
    else this.docWatchers.push(watch)
    // a dormant room calls it with the doc it makes when it wakes
    if (this.ydoc !== null) watch(this.ydoc)
  }

  /** Encoded state vector of the doc. */
  stateVector(): Uint8Array {
    if (this.dormant !== null) return this.dormant.stateVector
    return Y.encodeStateVector(this.doc)
  }

  /**
   * The doc's state as one update: what a client with `stateVector` lacks,
   * or all of it. A dormant room answers from its encoded state; diffing it
   * costs about as much as waking (both decode every struct), so a dormant
   * room asked for more than {@link DIFFS_BEFORE_WAKING} diffs wakes, and
   * answers the next ones from the doc (~5× cheaper for a large doc).
   */
  encodeState(stateVector?: Uint8Array): Uint8Array {
    if (stateVector !== undefined) {
      const current = this.currentIf(stateVector)
      if (current !== null) return (current.update ??= this.encodeStateAfresh(stateVector))
    }
    return this.encodeStateAfresh(stateVector)
  }

  private encodeStateAfresh(stateVector?: Uint8Array): Uint8Array {
    const dormant = this.dormant
    if (dormant === null) return Y.encodeStateAsUpdate(this.doc, stateVector)
    if (stateVector === undefined || (stateVector.byteLength === 1 && stateVector[0] === 0)) return dormant.state
    if (++dormant.diffs > DIFFS_BEFORE_WAKING) return Y.encodeStateAsUpdate(this.doc, stateVector)
    return Y.diffUpdate(dormant.state, stateVector)
  }

  /** Writes a sync step 1 (this doc's state vector) to `encoder`. */
  writeSyncStep1(encoder: encoding.Encoder): void {
    encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep1)
    encoding.writeVarUint8Array(encoder, this.stateVector())
  }

  /** True when the client whose state vector is `stateVector` has something of the doc the room lacks. */
  lacksSomeOf(stateVector: Uint8Array): boolean {
    if (this.currentIf(stateVector) !== null) return false
    const theirs = Y.decodeStateVector(stateVector)
    if (theirs.size === 0) return false
    if (this.dormant !== null) {
      const ours = Y.decodeStateVector(this.dormant.stateVector)
      for (const [client, clock] of theirs) if (clock > (ours.get(client) ?? 0)) return true
      return false
    }
    const store = this.doc.store
    for (const [client, clock] of theirs) if (clock > Y.getState(store, client)) return true
    return false
  }

  /**
   * {@link current} when `stateVector` is the doc's own, else null. Yjs
   * writes a state vector's clients in one order, so equal bytes are the
   * quick match; a client that writes them in another order is matched by
   * its clocks.
   */
  private currentIf(stateVector: Uint8Array): CurrentState | null {
    let current = this.current
    if (current === null) {
      const encoded = this.stateVector()
      current = this.current = { stateVector: encoded, clocks: Y.decodeStateVector(encoded), update: null }
    }
    if (Buffer.compare(current.stateVector, stateVector) === 0) return current
    if (stateVector.byteLength !== current.stateVector.byteLength) return null
    const theirs = Y.decodeStateVector(stateVector)
    if (theirs.size !== current.clocks.size) return null
    for (const [client, clock] of theirs) if (current.clocks.get(client) !== clock) return null
    return current
  }

  /**
   * Puts the room to sleep if its doc was not used since the last call and
   * everything it holds is stored (`busy`: the commit queue still holds
   * updates of it): the doc is dropped, its state kept encoded. Called by
   * the registry every few seconds. Returns true when the room went dormant.
   */
  sleep(busy: boolean): boolean {
    const doc = this.ydoc
    if (doc === null || this.closed) return false
    if (this.used) {
      this.used = false
      return false
    }
    // pending structs or deletes wait for updates of their dependencies: they stay in a live doc
    if (busy || this.pendingAuthors.length > 0 || doc.store.pendingStructs !== null || doc.store.pendingDs !== null) return false
    const state = Y.encodeStateAsUpdate(doc)
    this.dormant = { state, stateVector: Y.encodeStateVector(doc), diffs: 0, loaded: false }
    this.ydoc = null
    this.guard = null
    this.current = null
    doc.off('update', this.handleUpdate)
    doc.off('beforeTransaction', this.forgetCurrent)
    doc.off('afterTransaction', this.forgetCurrent)
    doc.destroy()
    return true
  }

  /** Makes the room's `Y.Doc`: empty for a new room, from the encoded state for a dormant one. */
  private wake(): Y.Doc {
    // a guid skips lib0's uuidv4 (~30 getRandomValues calls per doc)
    const doc = new Y.Doc({ gc: true, guid: this.name })
    const dormant = this.dormant
    if (dormant !== null) Y.applyUpdate(doc, dormant.state)
    this.dormant = null
    this.ydoc = doc
    this.guard = new DocGuard(doc, this.docLimits)
    this.current = null
    doc.on('update', this.handleUpdate)
    doc.on('beforeTransaction', this.forgetCurrent)
    doc.on('afterTransaction', this.forgetCurrent)
    if (this.docWatchers !== null) for (const watch of this.docWatchers) watch(doc)
    if (dormant !== null && !dormant.loaded) this.hooks.onWake?.(this)
    return doc
  }

  /** The doc's Awareness, or null while nobody has sent presence. */
  get awareness(): awarenessProtocol.Awareness | null {
    return this.presence
  }

  /** Every presence state of the doc by client id (empty while nobody has sent presence). */
  get awarenessStates(): ReadonlyMap<number, Record<string, unknown>> {
    return this.presence?.getStates() ?? NO_STATES
  }

  /** The doc's Awareness, created at the first presence state. */
  private presenceAwareness(): awarenessProtocol.Awareness {
    if (this.presence !== null) return this.presence
    // the Awareness lives as long as the room, not as long as one of its Y.Docs (see presenceDoc)
    const awareness = new awarenessProtocol.Awareness(presenceDoc())
    // y-protocols gives every Awareness its own 3 s interval that drops states outdated for 30 s; the
    // registry checks every room's presence from one timer instead (see expirePresence)
    clearInterval((awareness as unknown as { _checkInterval: ReturnType<typeof setInterval> })._checkInterval)
    awareness.setLocalState(null)
    awareness.on('update', this.handleAwareness)
    this.presence = awareness
    return awareness
  }

  /**
   * Removes the presence states nobody renewed for y-protocols'
   * `outdatedTimeout` (30 s), as every Awareness does on its own timer; the
   * registry calls it for every room from one timer. Returns how many it removed.
   */
  expirePresence(now: number = Date.now()): number {
    const awareness = this.presence
    if (awareness === null) return 0
    const outdated: number[] = []
    for (const [clientId, meta] of awareness.meta) {
      if (
        now - meta.lastUpdated >= awarenessProtocol.outdatedTimeout &&
        awareness.states.has(clientId) &&
        clientId !== awareness.clientID
      ) {
        outdated.push(clientId)
      }
    }
    if (outdated.length > 0) awarenessProtocol.removeAwarenessStates(awareness, outdated, 'timeout')
    return outdated.length
  }

  /**
   * Takes what storage holds. Stored bytes were produced by this relay's own
   * Yjs encoder, never raw client input.
   *
   * A doc stored as one update (a checkpoint without a log after it, a
   * single logged update, or nothing) is taken as it is: the room starts
   * dormant with those bytes, and makes its `Y.Doc` only when something
   * needs it (an update to apply). Opening a record that was written once,
   * or was just compacted, then costs reading it and sending it on. A longer
   * log, or any doc when `mayStartDormant` is false (the relay keeps loaded
   * docs awake: `--dormant-after-ms 0`), is applied to the room's doc in one
   * transaction.
   */
  load(stored: StoredDoc, mayStartDormant = true): void {
    let clients: { has(clientId: number): boolean }
    const single =
      stored.updates.length === 0
        ? stored.checkpoint
        : stored.checkpoint === null && stored.updates.length === 1
          ? stored.updates[0]!
          : undefined
    if (mayStartDormant && single !== undefined && this.ydoc === null && this.dormant === null) {
      // a view into a buffer of many rows would keep all of them alive as long as the room
      const state = single === null ? EMPTY_UPDATE : single.byteLength === single.buffer.byteLength ? single : single.slice()
      const stateVector = Y.encodeStateVectorFromUpdate(state)
      this.dormant = { state, stateVector, diffs: 0, loaded: true }
      this.durableStateVector = stateVector
      clients = Y.decodeStateVector(stateVector)
    } else {
      const doc = this.doc
      doc.off('update', this.handleUpdate)
      try {
        applyStored(doc, stored)
      } finally {
        doc.on('update', this.handleUpdate)
      }
      this.durableStateVector = Y.encodeStateVector(doc)
      clients = doc.store.clients
    }
    this.lastSeq = stored.lastSeq
    this.logCount = stored.updates.length
    this.logBytes = stored.logBytes
    this.byteSize = (stored.checkpoint?.byteLength ?? 0) + stored.logBytes
    // Bindings of ids without content (older relays bound ids announced in awareness) bind nothing: the
    // first accepted update with such an id binds it anew, and storage replaces the old binding.
    for (const binding of stored.authors) if (clients.has(binding.clientId)) this.authors.set(binding.clientId, binding)
    this.authorListValue = null
  }

  /**
   * Every binding of the doc, as one array that stays the same until a
   * binding is added: every subscriber of the doc gets the same array, so
   * its `authors` messages are encoded once (connections/encode).
   */
  get authorList(): readonly AuthorBinding[] {
    return (this.authorListValue ??= [...this.authors.values()])
  }

  /** Adds a subscribed peer. */
  addPeer(peer: RoomPeer): void {
    this.peers.add(peer)
  }

  /** Removes a peer and the awareness states it owned. */
  removePeer(peer: RoomPeer): void {
    this.peers.delete(peer)
    const owned = this.ledger?.owners.get(peer)
    this.ledger?.owners.delete(peer)
    if (owned && owned.length > 0) {
      for (const id of owned) {
        this.ledger!.clientOwner.delete(id) // owning ids means the ledger exists
        this.uncountState(peer, id)
      }
      const awareness = this.presence // owning an id means a state for it was applied: it exists
      if (awareness !== null) {
        awarenessProtocol.removeAwarenessStates(awareness, [...owned], null)
        // a client that comes back re-sends its state at the clock it had: the relay takes it again
        for (const id of owned) awareness.meta.delete(id)
      }
    }
  }

  /**
   * Applies a client's update, already validated: `valid` is what
   * `validateUpdateV1` returned for it. Throws if Yjs cannot decode it.
   * An update that would nest shared types too deep in this doc, or whose
   * concurrent map entries would cost Yjs too much against the doc's key
   * histories (see `security/docGuard`), is refused before Yjs sees it:
   * `{ refused }`. Structs whose
   * dependencies the relay does not have are not kept (Yjs would hold them
   * as pending structs): they are dropped, not stored, not acked, and the
   * result is `'missing-dependencies'` so the caller can ask the client to resync.
   * Deletions of items the relay does not have are kept (Yjs applies them
   * when the items arrive), stored and sent to the other peers; the result is
   * `'missing-dependencies'` too, so a client that has the items sends them.
   * They must not be dropped: the delete marker the engine writes after a
   * delete advances its author's clock, and an ack covering that clock
   * means the deletion is stored (a resume then asks the client for nothing).
   */
  applyPeerUpdate(
    peer: RoomPeer,
    update: Uint8Array,
    valid: ValidatedCounts & { ends: ReadonlyMap<number, number>; structs: number; deletes: number },
  ): 'applied' | 'missing-dependencies' | { forgedClientId: number; owner: AuthorBinding } | { refused: string } {
    // an update without structs or deletions changes nothing (a stock client's step 2 when it has nothing new): a dormant room stays so
    if (valid.structs === 0 && valid.deletes === 0) return 'applied'
    const { ends } = valid
    // Attribution: new structs for a client id bound to another user are refused.
    // `ends` (per client id, the clock after its last struct) comes from validating the update.
    const store = this.doc.store
    const fresh: number[] = []
    for (const [clientId, clock] of ends) {
      if (clock <= Y.getState(store, clientId)) continue // nothing new from this client id
      const owner = this.authors.get(clientId)
      if (owner !== undefined) {
        if (owner.userId !== peer.identity.userId) return { forgedClientId: clientId, owner }
        continue
      }
      // an id announced in awareness by a connection of another user that may write is reserved for it
      const claimant = this.ledger?.clientOwner.get(clientId)
      if (claimant !== undefined && claimant.identity.userId !== peer.identity.userId && claimant.mayWrite(this)) {
        const { userId, name } = claimant.identity
        return { forgedClientId: clientId, owner: { clientId, userId, name } }
      }
      fresh.push(clientId)
    }
    const check = this.guard!.check(update, valid) // the doc is awake (`store` above), so is its guard
    if (!check.ok) return { refused: check.reason }
    const pendingDeletesBefore = store.pendingDs
    Y.applyUpdate(this.doc, update, peerOrigin(peer))
    check.applied()
    const pendingDeletes = store.pendingDs
    const newPendingDeletes =
      pendingDeletes !== null && (pendingDeletesBefore === null || Buffer.compare(pendingDeletes, pendingDeletesBefore) !== 0)
    if (newPendingDeletes) {
      // Deletions of items this doc does not hold (yet) stay, as Yjs keeps them, and are stored
      // and fanned out like the rest: a later change of their author (e.g. the delete marker that
      // follows a delete) proves the deletion reached the relay, so it must not be dropped.
      this.handleUpdate(Y.convertUpdateFormatV2ToV1(pendingDeletes), peerOrigin(peer))
    }
    if (store.pendingStructs !== null) {
      store.pendingStructs = null
      return 'missing-dependencies'
    }
    if (newPendingDeletes) return 'missing-dependencies'
    if (fresh.length > 0) {
      const { userId } = peer.identity
      const bindings: AuthorBinding[] = []
      const displaced: number[] = []
      for (const clientId of fresh) {
        if (Y.getState(store, clientId) === 0 || this.authors.has(clientId)) continue
        const binding = { clientId, userId, name: this.bindingName(peer, clientId) }
        this.authors.set(clientId, binding)
        this.authorListValue = null
        bindings.push(binding)
        const claimant = this.ledger?.clientOwner.get(clientId)
        if (claimant !== undefined && claimant.identity.userId !== userId) displaced.push(clientId)
      }
      if (bindings.length > 0) {
        this.pendingAuthors.push(...bindings)
        for (const p of this.peers) p.sendAuthors(this, bindings)
      }
      // the writer's update wins: other users' awareness states for the ids it bound go (and the removal is broadcast)
      if (displaced.length > 0) {
        // a claimant's state was applied, so the Awareness exists
        if (this.presence !== null) awarenessProtocol.removeAwarenessStates(this.presence, displaced, null)
        for (const id of displaced) this.releaseClaim(id) // also claims whose state awareness did not keep
      }
    }
    return 'applied'
  }

  /**
   * The display name a new binding of `clientId` to `peer`'s user keeps. With
   * auth, the token's name. Without auth nobody is proven: the name the
   * peer's own awareness state for that id claims (`user.name`), else the name
   * any of its states in this doc claims, else the name its last state in any
   * doc claimed (a record edited offline and synced while not on screen shows
   * no presence, but the connection's workspace presence names its user),
   * else the anonymous user's name.
   */
  private bindingName(peer: RoomPeer, clientId: number): string {
    if (!peer.identity.anonymous) return peer.identity.name
    const owned = this.ledger?.owners.get(peer)
    const stateName = (id: number): string | null => {
      const state = this.presence?.states.get(id)
      return state === undefined ? null : claimedName(state)
    }
    if (owned?.includes(clientId)) {
      const own = stateName(clientId)
      if (own !== null) return own
    }
    for (const id of owned ?? []) {
      const name = stateName(id)
      if (name !== null) return name
    }
    const last = lastStates.get(peer)
    return (last === undefined ? null : claimedName(last.state)) ?? peer.identity.name
  }

  /** Takes the bindings made since the last commit started (the commit stores them). */
  takePendingAuthors(): AuthorBinding[] {
    const taken = this.pendingAuthors
    this.pendingAuthors = []
    return taken
  }

  /** Puts bindings of a failed commit back for the next one. */
  restorePendingAuthors(bindings: AuthorBinding[]): void {
    if (bindings.length > 0) this.pendingAuthors = bindings.concat(this.pendingAuthors)
  }

  /**
   * Applies a client's awareness update, keeping only entries for client ids
   * the peer owns (an unowned id is claimed by the first peer that sets a
   * state for it, at most `maxIds` per peer), whose state fits
   * `maxStateBytes`, with `user` stamped from the peer's identity (unless
   * anonymous), the last entry per id. Throws on a malformed update.
   *
   * Awareness never writes: a claim lives in memory for as long as the
   * peer's connection holds it, and binds nothing in storage. Bindings
   * (client id → user) are made only by accepted updates
   * ({@link applyPeerUpdate}). An id already bound to another user is refused
   * here like an id owned by another connection.
   *
   * Awareness client ids are Yjs client ids (a client announces its doc's
   * id), so a claim by a peer that may write reserves the id against other
   * users' updates: nobody who learns the id from the broadcast can write
   * under it first (and take it over from its owner, whose later edits would
   * be refused or, at clocks already taken, silently skipped). A claim by a
   * read-only peer reserves nothing — it must not keep a writer from writing:
   * the writer's update binds the id, and the read-only peer's state for it
   * is removed.
   */
  applyPeerAwareness(
    peer: RoomPeer,
    update: Uint8Array,
    maxStateBytes: number,
    maxIds: number,
  ): { forged: number; tooLarge: number; overIds: number; overBytes: number; claimed: ClaimedUser | null } {
    // the state this peer set last, if its identity is the same: the same text (a keep-alive, or the same
    // presence in another doc) is taken as held then, without parsing, measuring or stamping it again
    const last = lastStates.get(peer)
    const current = last !== undefined && last.identity === peer.identity ? last : undefined
    const entries = decodeAwarenessUpdate(update, current && ((json) => (json === current.json ? current.state : undefined)))
    // the last entry per id counts: what one message forwards is bounded by the ids a peer may own
    const kept = new Map<number, AwarenessEntry>()
    let forged = 0
    let tooLarge = 0
    let overIds = 0
    let overBytes = 0
    let claimed: ClaimedUser | null = null
    const ledger = (this.ledger ??= new PresenceLedger())
    let owned = ledger.owners.get(peer)
    for (const entry of entries) {
      const known = current !== undefined && entry.state === current.state
      const owner = ledger.clientOwner.get(entry.clientId)
      const author = this.authors.get(entry.clientId)
      if ((owner !== undefined && owner !== peer) || (author !== undefined && author.userId !== peer.identity.userId)) {
        // stock y-websocket clients echo others' states: only count what would change something
        const clock = this.presence?.meta.get(entry.clientId)?.clock ?? 0
        if (entry.clock > clock || (entry.clock === clock && entry.state === null && this.awarenessStates.has(entry.clientId))) {
          forged++
        }
        continue
      }
      if (entry.state !== null && entry.size > maxStateBytes) {
        tooLarge++
        continue
      }
      if (owner === undefined) {
        // removing a state nobody has (an echo of a client that left) claims nothing
        if (entry.state === null) continue
        if (!(owned?.includes(entry.clientId) ?? false) && (owned?.length ?? 0) >= maxIds) {
          overIds++
          continue
        }
      }
      // the relay forwards the state as JSON.stringify writes it, which can be longer than what was sent (`9e20`)
      const bytes = entry.state === null ? 0 : known ? current.bytes : utf8Length(stateJson(entry.state))
      if (bytes > maxStateBytes) {
        tooLarge++
        continue
      }
      // what the connection holds in all its rooms is bounded (a removal always fits)
      const delta = bytes - (ledger.stateBytes.get(entry.clientId) ?? 0)
      if (delta > 0 && peer.awarenessBytes.held + delta > peer.awarenessBytes.max) {
        overBytes++
        continue
      }
      peer.awarenessBytes.held += delta
      if (entry.state === null) ledger.stateBytes.delete(entry.clientId)
      else ledger.stateBytes.set(entry.clientId, bytes)
      if (owner === undefined) {
        ledger.clientOwner.set(entry.clientId, peer)
        // nobody owned it: not in the list (a second entry for it has this peer as owner). A peer owns
        // one id in most rooms: its list is made with that id (an empty `[]` grows to room for 17 on its first push).
        if (owned === undefined) ledger.owners.set(peer, (owned = [entry.clientId]))
        else owned.push(entry.clientId)
      }
      if (entry.state !== null && known) {
        if (peer.identity.anonymous) claimed ??= current.claimed
      } else if (entry.state !== null) {
        const claims = peer.identity.anonymous ? claimedUser(entry.state) : null
        claimed ??= claims
        entry.state = heldState(peer, entry.json, entry.state, bytes, claims)
      }
      kept.delete(entry.clientId)
      kept.set(entry.clientId, entry)
    }
    // Without an Awareness yet only a state y-protocols would take is presence: it ignores a removal of a state it
    // does not hold and a client's first state at clock 0 (the `{}` a fresh Awareness holds, which stock clients send).
    const applied = [...kept.values()]
    if (this.presence !== null || applied.some((entry) => entry.state !== null && entry.clock > 0)) {
      applyAwarenessEntries(this.presenceAwareness(), applied, peerOrigin(peer))
    }
    return { forged, tooLarge, overIds, overBytes, claimed }
  }

  /** Forgets which peer owns the awareness client id `id`. */
  private releaseClaim(id: number): void {
    const owner = this.ledger?.clientOwner.get(id)
    if (owner === undefined) return
    this.ledger!.clientOwner.delete(id)
    const owned = this.ledger!.owners.get(owner)
    const at = owned?.indexOf(id) ?? -1
    if (at >= 0) owned!.splice(at, 1)
    this.uncountState(owner, id)
  }

  /** Gives the bytes of the state of `id` back to its owner's awareness budget. */
  private uncountState(owner: RoomPeer, id: number): void {
    const bytes = this.ledger?.stateBytes.get(id)
    if (bytes === undefined) return
    this.ledger!.stateBytes.delete(id)
    owner.awarenessBytes.held = Math.max(0, owner.awarenessBytes.held - bytes)
  }

  /**
   * Applies what another relay instance stored (updates of this doc, in the
   * order they were stored, with their author bindings) in one transaction:
   * peers get one update, storage none (it is there).
   */
  applyClusterUpdates(updates: readonly Uint8Array[], authors: readonly AuthorBinding[]): void {
    // not local, as `Y.applyUpdate` makes its own transaction
    Y.transact(
      this.doc,
      () => {
        for (const update of updates) Y.applyUpdate(this.doc, update, CLUSTER_ORIGIN)
      },
      CLUSTER_ORIGIN,
      false,
    )
    this.bindClusterAuthors(authors)
  }

  /**
   * Takes author bindings another relay instance stored; as in {@link load},
   * only those of ids the doc has content of. Peers get the new ones.
   */
  bindClusterAuthors(authors: readonly AuthorBinding[]): void {
    const clients = this.doc.store.clients
    const fresh = authors.filter(
      (binding) => clients.has(binding.clientId) && this.authors.get(binding.clientId)?.userId !== binding.userId,
    )
    if (fresh.length === 0) return
    for (const binding of fresh) this.authors.set(binding.clientId, binding)
    this.authorListValue = null
    for (const peer of this.peers) peer.sendAuthors(this, fresh)
  }

  /** Applies presence states received by another relay instance (already filtered and stamped there). */
  applyClusterAwareness(update: Uint8Array): void {
    awarenessProtocol.applyAwarenessUpdate(this.presenceAwareness(), update, CLUSTER_ORIGIN)
  }

  /**
   * Removes presence states another relay instance had sent (that instance
   * stopped; see `cluster/Cluster`); the removal goes to this instance's
   * peers only.
   */
  removeClusterAwareness(clientIds: readonly number[]): void {
    if (this.presence !== null) awarenessProtocol.removeAwarenessStates(this.presence, [...clientIds], CLUSTER_ORIGIN)
  }

  /** Encoded awareness update with every known state, or null when there is none. */
  encodeAllAwareness(): Uint8Array | null {
    const awareness = this.presence
    if (awareness === null || awareness.getStates().size === 0) return null
    return encodeAwarenessStates(awareness, awareness.getStates().keys())
  }

  /**
   * Records a durable commit and acks the peers waiting for it (`ackTo`:
   * those whose updates it stored, or that asked for an ack after it), once
   * each, if they are still subscribed. Other peers get no ack: nothing of
   * theirs was stored.
   */
  markDurable(stateVector: Uint8Array, lastSeq: number, count: number, bytes: number, ackTo: ReadonlySet<RoomPeer>): void {
    this.durableStateVector = stateVector
    this.lastSeq = lastSeq
    this.logCount += count
    this.logBytes += bytes
    for (const peer of ackTo) if (this.peers.has(peer)) peer.sendAck(this, stateVector)
  }

  /** Frees the doc and awareness. */
  destroy(): void {
    if (this.closed) return
    this.closed = true
    if (this.unloadTimer) clearTimeout(this.unloadTimer)
    this.presence?.destroy()
    this.ydoc?.destroy()
    this.ydoc = null
    this.dormant = null
  }

  private readonly handleUpdate = (update: Uint8Array, origin: unknown): void => {
    const from = isPeerOrigin(origin) ? origin.peer : null
    this.byteSize += update.byteLength
    for (const peer of this.peers) {
      if (peer !== from) peer.sendUpdate(this, update)
    }
    if (origin !== CLUSTER_ORIGIN) this.hooks.onUpdate(this, update, from)
  }

  private readonly handleAwareness = (
    { added, updated, removed, renewed }: { added: number[]; updated: number[]; removed: number[]; renewed?: readonly number[] },
    origin: unknown,
  ): void => {
    for (const id of removed) this.releaseClaim(id)
    const presence = this.presence
    if (presence === null) return
    // changes made on this instance go to the other instances too (only with a cluster); theirs never go back
    const publish = this.hooks.onAwareness !== undefined && origin !== CLUSTER_ORIGIN
    const unsent = (this.ledger ??= new PresenceLedger()).unsent
    let changed = false
    // the clock and state as of now: a leaving peer's ids lose their meta right after their removal
    for (const clientId of added.concat(updated, removed)) {
      const state = (presence.getStates().get(clientId) as Record<string, unknown> | undefined) ?? null
      const entry = { clientId, clock: presence.meta.get(clientId)?.clock ?? 0, state, size: 0 }
      if (renewed !== undefined && renewed.length > 0 && this.hooks.onRenewalWaiting !== undefined && renewed.includes(clientId)) {
        // a keep-alive waits for the room's next change or the registry (see sendRenewals); one already
        // waiting keeps its place in the order
        unsent.set(clientId, entry)
        if (this.renewalsSince === 0) {
          this.renewalsSince = performance.now()
          this.hooks.onRenewalWaiting(this)
        }
      } else {
        unsent.delete(clientId) // re-inserted last: the update lists changes in the order they happened
        unsent.set(clientId, entry)
        changed = true
      }
      if (publish) (this.unpublishedAwareness ??= new Set()).add(clientId)
    }
    if (changed && !this.awarenessSendScheduled) {
      this.awarenessSendScheduled = true
      ;(this.hooks.scheduleAwarenessSend ?? setImmediate)(this.sendAwarenessChanges)
    }
  }

  /**
   * Sends the keep-alives waiting since the last send (a client renews its
   * presence state every 15 s; the others drop a state not renewed for
   * 30 s), together in one update, unless a send is already scheduled. The
   * registry calls it ~3 s after a room's first waiting keep-alive (see
   * {@link RoomHooks.onRenewalWaiting}): with ten clients renewing in a doc,
   * their keep-alives reach each peer a few at a time instead of one message
   * each, and a change sends those waiting with it. Returns true when it sent.
   */
  sendRenewals(): boolean {
    if (this.awarenessSendScheduled || this.closed || (this.ledger?.unsent.size ?? 0) === 0) return false
    this.sendAwarenessChanges()
    return true
  }

  /** Sends this turn's presence changes to every peer, in one awareness update. */
  private readonly sendAwarenessChanges = (): void => {
    this.awarenessSendScheduled = false
    this.renewalsSince = 0
    const unsent = this.ledger?.unsent
    if (this.closed || unsent === undefined || unsent.size === 0) return
    const entries = [...unsent.values()]
    const update = encodeAwarenessEntries(entries)
    unsent.clear()
    for (const peer of this.peers) peer.sendAwareness(this, update)
    const unpublished = this.unpublishedAwareness
    if (unpublished !== null && unpublished.size > 0) {
      const local = entries.filter((entry) => unpublished.has(entry.clientId))
      unpublished.clear()
      this.hooks.onAwareness!(this, local.length === entries.length ? update : encodeAwarenessEntries(local))
    }
  }
}

/** UTF-8 length of a string. */
const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8')

/** The presence states of a room nobody has sent presence to. */
const NO_STATES: ReadonlyMap<number, Record<string, unknown>> = new Map()

/** The encoded state vector of an empty doc. */
const EMPTY_STATE_VECTOR = Uint8Array.of(0)

/** The update of a doc with no content (what `Y.encodeStateAsUpdate(new Y.Doc())` returns). */
const EMPTY_UPDATE = Uint8Array.of(0, 0)

/** Diffs a dormant room makes from its encoded state before it wakes to answer from its doc (see `Room.encodeState`). */
const DIFFS_BEFORE_WAKING = 4

/**
 * What a room's `Awareness` is made with. y-protocols takes a doc only for
 * its client id (the relay sets no local state under it) and to destroy
 * itself with the doc; a room's presence outlives the `Y.Doc`s it makes
 * while it goes dormant and wakes, and the room destroys it itself. A random
 * client id per Awareness, as a doc would have.
 */
const presenceDoc = (): Y.Doc => ({ clientID: randomClientId(), on: () => {} }) as unknown as Y.Doc

/** Random client ids, drawn 256 at a time: one draw from Node's CSPRNG costs ~5–25 µs, far more than the bytes (lib0's `uint32` draws one). */
const clientIds = new Uint32Array(256)
let nextClientId = clientIds.length
const randomClientId = (): number => {
  if (nextClientId === clientIds.length) {
    randomFillSync(clientIds)
    nextClientId = 0
  }
  return clientIds[nextClientId++]!
}

/** The doc's state vector (encoded and decoded) and the step 2 answering it, once made (see `Room.current`). */
interface CurrentState {
  readonly stateVector: Uint8Array
  readonly clocks: Map<number, number>
  update: Uint8Array | null
}

/**
 * A room's presence bookkeeping, created with its first presence state: most
 * rooms never get one, and four empty maps cost ~0.75 KiB per room.
 */
class PresenceLedger {
  /**
   * Awareness client ids each peer owns (bound at first use), removed when
   * the peer leaves. An array, not a set: a peer owns one id or a few (at
   * most `maxAwarenessIds`), and a `Set` per peer and room was ~0.3 KiB —
   * 12 MiB of a relay's 89 MiB heap with 2,000 clients in 4,000 rooms.
   */
  readonly owners = new Map<RoomPeer, number[]>()
  /** The peer owning each awareness client id. */
  readonly clientOwner = new Map<number, RoomPeer>()
  /** Bytes of each owned awareness state, as counted against its owner's {@link RoomPeer.awarenessBytes}. */
  readonly stateBytes = new Map<number, number>()
  /** Presence changes of this turn not yet sent to the peers, by client id (the latest change of each). */
  readonly unsent = new Map<number, AwarenessEntry>()
}

/** Longest display name a binding keeps (as for a token's `name` claim). */
const MAX_NAME_LENGTH = 256

/** Who an awareness state says its client is (`user.id`, `user.name`): believed only without auth. */
export interface ClaimedUser {
  userId: string
  name: string
}

/** The limits a room checks, made once per `DocLimits` object: every room of a relay shares them. */
const limitsOf = new WeakMap<DocLimits, { docLimits: DocLimits; updateLimits: UpdateLimits }>()

/** The doc and update limits of rooms created with `limits` (see {@link limitsOf}). */
const roomLimits = (limits: DocLimits): { docLimits: DocLimits; updateLimits: UpdateLimits } => {
  let made = limitsOf.get(limits)
  if (made === undefined) {
    const { maxTypeDepth, maxKeyConflicts, maxKeyWalk } = limits
    made = { docLimits: { maxTypeDepth, maxKeyConflicts, maxKeyWalk }, updateLimits: { maxTypeDepth, maxKeyConflicts } }
    limitsOf.set(limits, made)
  }
  return made
}

/** The last presence state a peer set, as held (see {@link heldState}). */
interface HeldState {
  /** The state's JSON text as the peer sent it. */
  json: string
  /** The identity it was stamped with. */
  identity: Identity
  /** The state held (stamped unless the identity is anonymous). */
  state: Record<string, unknown>
  /** What it counts against the peer's awareness budget (the state as sent, as `JSON.stringify` writes it). */
  bytes: number
  /** The user an anonymous peer's state claims (see {@link claimedUser}); null otherwise. */
  claimed: ClaimedUser | null
}

/** The last presence state each peer set (see {@link heldState}). */
const lastStates = new WeakMap<RoomPeer, HeldState>()

/**
 * The state the relay holds for a presence state `peer` sent as `json`
 * (parsed: `state`, counting `bytes`, claiming `claimed`): stamped with the
 * peer's identity unless it is anonymous, and remembered as the peer's last
 * state. A client shows the same presence in every doc it has open and
 * renews it every 15 s, so `applyPeerAwareness` takes the remembered state
 * as it is when the same text arrives again from the peer with the same
 * identity (for another doc, or as a keep-alive): no parsing, measuring or
 * stamping, and with teams of ten on twenty docs one object per connection
 * instead of twenty. The relay never changes a state object it holds.
 */
const heldState = (
  peer: RoomPeer,
  json: string | undefined,
  state: Record<string, unknown>,
  bytes: number,
  claimed: ClaimedUser | null,
): Record<string, unknown> => {
  const { identity } = peer
  const held = identity.anonymous
    ? state
    : { ...state, user: { id: identity.userId, name: identity.name, color: colorForUser(identity.userId) } }
  if (json !== undefined) lastStates.set(peer, { json, identity, state: held, bytes, claimed })
  return held
}

/** The user an awareness state claims, or null when it claims no usable id and name. */
export const claimedUser = (state: Record<string, unknown>): ClaimedUser | null => {
  const id = (state.user as { id?: unknown } | null | undefined)?.id
  const name = claimedName(state)
  if (typeof id !== 'string' || id === '' || id.length > MAX_NAME_LENGTH || id === 'anonymous' || name === null) return null
  return { userId: id, name }
}

/** The display name an awareness state claims (`user.name`, trimmed), or null when it claims none. */
export const claimedName = (state: Record<string, unknown>): string | null => {
  const user = state.user
  if (user === null || typeof user !== 'object') return null
  const name = (user as { name?: unknown }).name
  if (typeof name !== 'string') return null
  const clean = name.replace(/\s+/g, ' ').trim()
  return clean === '' ? null : clean.slice(0, MAX_NAME_LENGTH)
}

const origins = new WeakMap<RoomPeer, PeerOrigin>()

/** The (cached) transaction origin for a peer. */
export const peerOrigin = (peer: RoomPeer): PeerOrigin => {
  let origin = origins.get(peer)
  if (!origin) origins.set(peer, (origin = { source: 'peer', peer }))
  return origin
}

/** Type guard for {@link PeerOrigin}. */
export const isPeerOrigin = (origin: unknown): origin is PeerOrigin =>
  typeof origin === 'object' && origin !== null && (origin as PeerOrigin).source === 'peer'
