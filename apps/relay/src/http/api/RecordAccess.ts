/**
 * Records as the HTTP API reads and writes them.
 *
 * Reads answer from the doc's room when it is open, else from storage,
 * without opening a room ({@link RoomRegistry.snapshot}).
 *
 * A write is made the way a client makes it: the engine's model helpers
 * (`writeWithHistory`, `initRecord`) write the validated values, with their
 * history entries, into a copy of the room's doc under a fresh Yjs client id;
 * the resulting update goes through the room like a peer's update
 * ({@link Room.applyPeerUpdate}: checked, attributed, bound to the token's
 * user, sent at once to every live client) and through the commit queue. The
 * write resolves only once the commit that stores it returned, when the room
 * acks the request's peer — the same durable ack a client waits for.
 *
 * @module http/api/RecordAccess
 */
import * as Y from 'yjs'
import { RECORD_MAP, RecordKey, laterValues, readRecord } from '@concord/engine/internal'
import type { RecordSnapshot, SchemaRegistry } from '@concord/engine'
import { validateUpdateV1 } from '../../security/validateUpdate.js'
import type { Identity } from '../../auth/Authenticator.js'
import type { Room, RoomPeer } from '../../rooms/Room.js'
import type { RoomRegistry } from '../../rooms/RoomRegistry.js'
import { ApiError, ErrorCode, fromStorage } from './respond.js'

/** A record as the API answers it. */
export interface ApiRecord {
  id: string
  workspace: string
  type: string
  archived: boolean
  /** Sequence number of the last stored update of the doc: grows with every stored change. */
  seq: number
  schemaVersion: number | null
  createdAt: number | null
  createdBy: string | null
  updatedAt: number | null
  updatedBy: string | null
  /** Every field of the record's schema, text as strings; unset fields read their default. */
  fields: Record<string, unknown>
}

/** A record doc read at one point: its state and what it holds. */
export interface RecordRead {
  /** The doc's whole state as one Yjs update (what `Accept: application/octet-stream` answers). */
  update: Uint8Array
  seq: number
  /** Null when the doc holds no record, or a deleted one. */
  record: ApiRecord | null
}

/** Limits of API writes. */
export interface RecordWriteLimits {
  /** Largest doc, bytes (as for WebSocket updates). */
  maxDocBytes: number
  /** Longest wait for the commit that stores a write, ms; the answer is then 503 `not-stored`. */
  commitTimeoutMs: number
}

/** An empty state vector: "send me everything". */
const NOTHING = Uint8Array.of(0)

/** Reads and writes records for the API. */
export class RecordAccess {
  private nextPeer = 0

  constructor(
    private readonly rooms: RoomRegistry,
    readonly schemas: SchemaRegistry,
    private readonly limits: RecordWriteLimits,
  ) {}

  /** Reads the record `id` of `workspace`. */
  async read(workspace: string, id: string): Promise<RecordRead> {
    const name = `${workspace}/${id}`
    const { update, lastSeq } = await fromStorage(this.rooms.snapshot(name, NOTHING))
    const doc = new Y.Doc({ guid: name })
    try {
      Y.applyUpdate(doc, update)
      return { update, seq: lastSeq, record: this.toApiRecord(doc, workspace, id, lastSeq) }
    } finally {
      doc.destroy()
    }
  }

  /** The API form of the record a doc holds, or null when it holds none (or a deleted one). */
  toApiRecord(doc: Y.Doc, workspace: string, id: string, seq: number): ApiRecord | null {
    const type = doc.getMap<unknown>(RECORD_MAP).get(RecordKey.type)
    if (typeof type !== 'string') return null
    // Concurrent sets nobody's device has settled yet read as the later change, the value every device will write.
    const schema = this.schemas.get(type)
    const snapshot: RecordSnapshot = laterValues(doc, schema, readRecord(doc, id, schema))
    if (snapshot.deleted) return null
    return {
      id,
      workspace,
      type,
      archived: snapshot.archived,
      seq,
      schemaVersion: snapshot.schemaVersion,
      createdAt: snapshot.createdAt,
      createdBy: snapshot.createdBy,
      updatedAt: snapshot.updatedAt,
      updatedBy: snapshot.updatedBy,
      fields: snapshot.fields,
    }
  }

  /**
   * Writes into the record doc `workspace/id` as `identity`: `write` is given
   * a copy of the doc (its Yjs client id is fresh) and makes its change in
   * one transaction, or throws an {@link ApiError} to write nothing. Resolves
   * with the record once the change is durably stored (at once when `write`
   * changed nothing).
   */
  async write(identity: Identity, workspace: string, id: string, write: (doc: Y.Doc) => void): Promise<ApiRecord | null> {
    const name = `${workspace}/${id}`
    const room = await fromStorage(this.rooms.acquire(name))
    const peer = new ApiPeer(`api-${++this.nextPeer}`, identity)
    const copy = new Y.Doc({ guid: name })
    try {
      Y.applyUpdate(copy, room.encodeState())
      copy.clientID = freshClientId(room)
      const updates: Uint8Array[] = []
      copy.on('update', (update: Uint8Array) => updates.push(update))
      write(copy)
      if (updates.length > 0) {
        const update = updates.length === 1 ? updates[0] : Y.mergeUpdates(updates)
        await this.apply(room, peer, update)
      }
      return this.toApiRecord(room.doc, workspace, id, room.lastSeq)
    } finally {
      copy.destroy()
      room.removePeer(peer)
      this.rooms.release(room)
    }
  }

  /** Applies `update` through the room as `peer`'s and waits for the commit that stores it. */
  private async apply(room: Room, peer: ApiPeer, update: Uint8Array): Promise<void> {
    const valid = validateUpdateV1(update, room.updateLimits)
    if (!valid.ok) throw new Error(`the relay made an invalid update: ${valid.reason}`)
    if (room.byteSize + update.byteLength > this.limits.maxDocBytes) {
      throw new ApiError(413, ErrorCode.payloadTooLarge, `the record would exceed ${this.limits.maxDocBytes} bytes; nothing was written`)
    }
    // a subscribed peer is acked by the commit that stores its update
    room.addPeer(peer)
    const outcome = room.applyPeerUpdate(peer, update, valid)
    if (outcome !== 'applied') {
      const reason = typeof outcome === 'string' ? outcome : 'refused' in outcome ? outcome.refused : 'client id taken'
      throw new ApiError(409, ErrorCode.conflict, `the change could not be applied (${reason}); nothing was written, retry`)
    }
    await peer.stored(this.limits.commitTimeoutMs)
  }
}

/**
 * The room peer of one API write: it receives nothing, may write, and
 * resolves {@link stored} when the room acks it (its update is stored).
 */
class ApiPeer implements RoomPeer {
  readonly awarenessBytes = { held: 0, max: 0 }
  private acked: (() => void) | null = null
  private isAcked = false

  constructor(
    readonly id: string,
    readonly identity: Identity,
  ) {}

  sendUpdate(): void {}
  sendAwareness(): void {}
  sendAuthors(): void {}

  sendAck(): void {
    this.isAcked = true
    this.acked?.()
  }

  mayWrite(): boolean {
    return true
  }

  /** Resolves once acked; rejects with 503 `not-stored` after `timeoutMs`. */
  stored(timeoutMs: number): Promise<void> {
    if (this.isAcked) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acked = null
        reject(
          new ApiError(
            503,
            ErrorCode.notStored,
            'the change was applied but storage did not confirm it in time; it is stored once storage recovers — read the record to check',
          ),
        )
      }, timeoutMs)
      this.acked = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}

/** A random Yjs client id the room has no content, binding or presence of. */
const freshClientId = (room: Room): number => {
  for (;;) {
    const id = Math.floor(Math.random() * 0xffffffff)
    if (!room.doc.store.clients.has(id) && !room.authors.has(id) && !room.awarenessStates.has(id)) return id
  }
}
