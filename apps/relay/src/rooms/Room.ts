/**
 * Per-doc state on the relay: the Y.Doc, its Awareness, the peers subscribed
 * to it and what of it is durably stored.
 *
 * A room is created empty by the {@link RoomRegistry}, filled from storage by
 * {@link Room.load} and only then handed to connections, so no peer is ever
 * served an empty doc while it loads.
 *
 * @module rooms/Room
 */
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import type { Logger } from '../observability/logger.js'
import type { StoredDoc } from '../storage/Storage.js'

/**
 * A connection's view of a room. Connections implement it; the room uses it
 * to fan out updates, awareness and acks.
 */
export interface RoomPeer {
  /** Stable id for logs. */
  readonly id: string
  /** Sends a Yjs update (a y-protocols sync `update` message) for `room`. */
  sendUpdate(room: Room, update: Uint8Array): void
  /** Sends an encoded awareness update for `room`. */
  sendAwareness(room: Room, update: Uint8Array): void
  /** Sends the durably stored state vector of `room`; peers that do not speak acks ignore it. */
  sendAck(room: Room, stateVector: Uint8Array): void
}

/** Origin of transactions applied on behalf of a peer. */
export interface PeerOrigin {
  readonly source: 'peer'
  readonly peer: RoomPeer
}

/** Hooks the room calls; the registry wires them to the commit queue. */
export interface RoomHooks {
  /** A new update was applied to the room's doc and must be stored. */
  onUpdate(room: Room, update: Uint8Array): void
}

/** One open doc. */
export class Room {
  readonly doc = new Y.Doc({ gc: true })
  readonly awareness: awarenessProtocol.Awareness
  readonly peers = new Set<RoomPeer>()
  /** Awareness client ids each peer has set, removed when the peer leaves. */
  private readonly awarenessOwners = new Map<RoomPeer, Set<number>>()
  /** Encoded state vector of everything durably stored. */
  durableStateVector: Uint8Array = Y.encodeStateVector(new Y.Doc())
  /** Sequence number of the last stored update. */
  lastSeq = 0
  /** Updates and bytes in the storage log since the last checkpoint. */
  logCount = 0
  logBytes = 0
  /** Connections holding the room open. */
  refs = 0
  unloadTimer: ReturnType<typeof setTimeout> | null = null
  closed = false

  constructor(
    readonly name: string,
    private readonly hooks: RoomHooks,
    readonly log: Logger,
  ) {
    this.awareness = new awarenessProtocol.Awareness(this.doc)
    this.awareness.setLocalState(null)
    this.doc.on('update', this.handleUpdate)
    this.awareness.on('update', this.handleAwareness)
  }

  /**
   * Applies what storage holds, in one transaction. Stored bytes were produced
   * by this relay's own Yjs encoder, never raw client input.
   */
  load(stored: StoredDoc): void {
    this.doc.off('update', this.handleUpdate)
    try {
      applyStored(this.doc, stored)
    } finally {
      this.doc.on('update', this.handleUpdate)
    }
    this.lastSeq = stored.lastSeq
    this.logCount = stored.updates.length
    this.logBytes = stored.logBytes
    this.durableStateVector = Y.encodeStateVector(this.doc)
  }

  /** Adds a subscribed peer. */
  addPeer(peer: RoomPeer): void {
    this.peers.add(peer)
  }

  /** Removes a peer and the awareness states it owned. */
  removePeer(peer: RoomPeer): void {
    this.peers.delete(peer)
    const owned = this.awarenessOwners.get(peer)
    this.awarenessOwners.delete(peer)
    if (owned && owned.size > 0) {
      awarenessProtocol.removeAwarenessStates(this.awareness, [...owned], null)
    }
  }

  /** Applies a client's update. Throws if the bytes are not a valid update. */
  applyPeerUpdate(peer: RoomPeer, update: Uint8Array): void {
    Y.applyUpdate(this.doc, update, peerOrigin(peer))
  }

  /** Applies a client's awareness update. */
  applyPeerAwareness(peer: RoomPeer, update: Uint8Array): void {
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, peerOrigin(peer))
  }

  /** Encoded awareness update with every known state, or null when there is none. */
  encodeAllAwareness(): Uint8Array | null {
    const states = this.awareness.getStates()
    if (states.size === 0) return null
    return awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...states.keys()])
  }

  /** Records a durable commit and acks every peer. */
  markDurable(stateVector: Uint8Array, lastSeq: number, count: number, bytes: number): void {
    this.durableStateVector = stateVector
    this.lastSeq = lastSeq
    this.logCount += count
    this.logBytes += bytes
    for (const peer of this.peers) peer.sendAck(this, stateVector)
  }

  /** Frees the doc and awareness. */
  destroy(): void {
    if (this.closed) return
    this.closed = true
    if (this.unloadTimer) clearTimeout(this.unloadTimer)
    this.awareness.destroy()
    this.doc.destroy()
  }

  private readonly handleUpdate = (update: Uint8Array, origin: unknown): void => {
    const from = isPeerOrigin(origin) ? origin.peer : null
    for (const peer of this.peers) {
      if (peer !== from) peer.sendUpdate(this, update)
    }
    this.hooks.onUpdate(this, update)
  }

  private readonly handleAwareness = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (isPeerOrigin(origin)) {
      let owned = this.awarenessOwners.get(origin.peer)
      if (!owned) this.awarenessOwners.set(origin.peer, (owned = new Set()))
      for (const id of added) owned.add(id)
      for (const id of updated) owned.add(id)
      for (const id of removed) owned.delete(id)
    }
    const changed = added.concat(updated, removed)
    if (changed.length === 0) return
    const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed)
    for (const peer of this.peers) peer.sendAwareness(this, update)
  }
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

/** Applies a stored doc (checkpoint, then log) to `doc` in one transaction. */
export const applyStored = (doc: Y.Doc, stored: StoredDoc): void => {
  Y.transact(doc, () => {
    if (stored.checkpoint) Y.applyUpdate(doc, stored.checkpoint)
    for (const update of stored.updates) Y.applyUpdate(doc, update)
  })
}
