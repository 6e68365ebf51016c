/**
 * A room's presence: its Awareness exists only once someone sent a state,
 * and a subscriber is sent awareness only when there is some.
 */
import { describe, expect, it } from 'vitest'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { Room, type RoomPeer } from '../src/rooms/Room.js'
import { silentLogger } from '../src/observability/logger.js'
import { validateUpdateV1 } from '../src/security/validateUpdate.js'

const MAX_STATE_BYTES = 4096
const MAX_IDS = 4

/** A peer of the room that records the awareness updates it is sent. */
const recordingPeer = (id: string): RoomPeer & { awareness: Uint8Array[] } => {
  const awareness: Uint8Array[] = []
  return {
    id,
    identity: { userId: id, name: id, access: new Map(), expiresAt: null, anonymous: false },
    sendUpdate: () => {},
    sendAwareness: (_room, update) => awareness.push(update),
    sendAck: () => {},
    sendAuthors: () => {},
    mayWrite: () => true,
    awarenessBytes: { held: 0, max: Infinity },
    awareness,
  }
}

/** An awareness update from a client with id `clientId` setting `state`. */
const stateUpdate = (clientId: number, state: Record<string, unknown>): Uint8Array => {
  const doc = new Y.Doc({ guid: 'client' })
  doc.clientID = clientId
  const awareness = new awarenessProtocol.Awareness(doc)
  awareness.setLocalState(state)
  const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [clientId])
  awareness.destroy()
  doc.destroy()
  return update
}

describe('room presence', () => {
  it('a room has no Awareness until the first presence state: updates and leaving peers create none', () => {
    const room = new Room('acme/T-1', { onUpdate: () => {} }, silentLogger())
    const alice = recordingPeer('alice')
    const bob = recordingPeer('bob')
    room.addPeer(alice)
    room.addPeer(bob)
    const writer = new Y.Doc({ guid: 'writer' })
    writer.getText('title').insert(0, 'hello')
    const update = Y.encodeStateAsUpdate(writer)
    const valid = validateUpdateV1(update, room.updateLimits)
    if (!valid.ok) throw new Error(valid.reason)
    expect(room.applyPeerUpdate(alice, update, valid)).toBe('applied')
    room.removePeer(bob)
    expect(room.awareness).toBeNull()
    expect(room.awarenessStates.size).toBe(0)
    // a subscriber is answered with awareness only when there is some
    expect(room.encodeAllAwareness()).toBeNull()

    room.applyPeerAwareness(alice, stateUpdate(101, { user: { name: 'Alice' } }), MAX_STATE_BYTES, MAX_IDS)
    expect(room.awareness).not.toBeNull()
    expect(room.awarenessStates.get(101)).toMatchObject({ user: { id: 'alice', name: 'alice' } })
    expect(room.encodeAllAwareness()).not.toBeNull()
    room.destroy()
    writer.destroy()
  })

  it('the first state of a fresh client at clock 0 (the empty state stock clients send) creates no Awareness', () => {
    const room = new Room('acme/T-3', { onUpdate: () => {} }, silentLogger())
    const alice = recordingPeer('alice')
    room.addPeer(alice)
    const doc = new Y.Doc({ guid: 'client' })
    doc.clientID = 303
    const fresh = new awarenessProtocol.Awareness(doc) // holds `{}` at clock 0
    room.applyPeerAwareness(alice, awarenessProtocol.encodeAwarenessUpdate(fresh, [303]), MAX_STATE_BYTES, MAX_IDS)
    expect(room.awareness).toBeNull()
    fresh.setLocalStateField('user', { name: 'Alice' }) // clock 1: presence
    room.applyPeerAwareness(alice, awarenessProtocol.encodeAwarenessUpdate(fresh, [303]), MAX_STATE_BYTES, MAX_IDS)
    expect(room.awarenessStates.has(303)).toBe(true)
    expect(alice.awareness).toHaveLength(1)
    room.removePeer(alice)
    expect(room.awarenessStates.size).toBe(0)
    fresh.destroy()
    doc.destroy()
    room.destroy()
  })

  it('removing a state nobody has creates no Awareness', () => {
    const room = new Room('acme/T-2', { onUpdate: () => {} }, silentLogger())
    const alice = recordingPeer('alice')
    room.addPeer(alice)
    const doc = new Y.Doc({ guid: 'client' })
    doc.clientID = 202
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState(null)
    room.applyPeerAwareness(alice, awarenessProtocol.encodeAwarenessUpdate(awareness, [202]), MAX_STATE_BYTES, MAX_IDS)
    expect(room.awareness).toBeNull()
    expect(alice.awareness).toHaveLength(0)
    awareness.destroy()
    doc.destroy()
    room.destroy()
  })
})
