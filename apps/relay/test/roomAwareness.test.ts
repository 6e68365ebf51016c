/**
 * A room's presence: its Awareness exists only once someone sent a state,
 * and a subscriber is sent awareness only when there is some.
 */
import { describe, expect, it } from 'vitest'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
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

/** Resolves after the room's presence changes of this turn went out (they are sent on `setImmediate`). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** The entries of an awareness update as sent: client id → state (null: removed). */
const entriesOf = (update: Uint8Array): Map<number, unknown> => {
  const decoder = decoding.createDecoder(update)
  const entries = new Map<number, unknown>()
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const clientId = decoding.readVarUint(decoder)
    decoding.readVarUint(decoder) // clock
    entries.set(clientId, JSON.parse(decoding.readVarString(decoder)))
  }
  return entries
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

  it('the first state of a fresh client at clock 0 (the empty state stock clients send) creates no Awareness', async () => {
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
    await nextTurn()
    expect(alice.awareness).toHaveLength(1)
    room.removePeer(alice)
    expect(room.awarenessStates.size).toBe(0)
    fresh.destroy()
    doc.destroy()
    room.destroy()
  })

  it('removing a state nobody has creates no Awareness', async () => {
    const room = new Room('acme/T-2', { onUpdate: () => {} }, silentLogger())
    const alice = recordingPeer('alice')
    room.addPeer(alice)
    const doc = new Y.Doc({ guid: 'client' })
    doc.clientID = 202
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState(null)
    room.applyPeerAwareness(alice, awarenessProtocol.encodeAwarenessUpdate(awareness, [202]), MAX_STATE_BYTES, MAX_IDS)
    expect(room.awareness).toBeNull()
    await nextTurn()
    expect(alice.awareness).toHaveLength(0)
    awareness.destroy()
    doc.destroy()
    room.destroy()
  })

  it('presence changes of one turn reach each peer as one update holding all of them, removals included', async () => {
    const room = new Room('acme/T-4', { onUpdate: () => {} }, silentLogger())
    const peers = ['alice', 'bob', 'carol'].map(recordingPeer)
    for (const peer of peers) room.addPeer(peer)
    // all three announce themselves in the same turn, as clients reconnecting at once do
    peers.forEach((peer, i) => room.applyPeerAwareness(peer, stateUpdate(401 + i, { cursor: i }), MAX_STATE_BYTES, MAX_IDS))
    // and alice moves her cursor in the same turn (a fresh Awareness at the next clock)
    const aliceDoc = new Y.Doc({ guid: 'alice' })
    aliceDoc.clientID = 401
    const aliceAwareness = new awarenessProtocol.Awareness(aliceDoc)
    aliceAwareness.setLocalState({ cursor: 0 })
    aliceAwareness.setLocalState({ cursor: 10 }) // clock 2
    room.applyPeerAwareness(peers[0], awarenessProtocol.encodeAwarenessUpdate(aliceAwareness, [401]), MAX_STATE_BYTES, MAX_IDS)
    aliceAwareness.destroy()
    aliceDoc.destroy()
    expect(peers.map((p) => p.awareness.length)).toEqual([0, 0, 0])
    await nextTurn()
    for (const peer of peers) {
      expect(peer.awareness).toHaveLength(1)
      const entries = entriesOf(peer.awareness[0])
      expect([...entries.keys()].sort()).toEqual([401, 402, 403])
      expect(entries.get(401)).toMatchObject({ cursor: 10 }) // the latest state of the turn
    }
    // a peer leaving: its removal goes out once, in the next turn
    room.removePeer(peers[2])
    await nextTurn()
    for (const peer of peers.slice(0, 2)) {
      expect(peer.awareness).toHaveLength(2)
      expect(entriesOf(peer.awareness[1])).toEqual(new Map([[403, null]]))
    }
    room.destroy()
  })
})

describe('presence held once per connection', () => {
  it('a connection showing the same presence in several docs is held as one state object, stamped with who it is', async () => {
    const rooms = ['acme/T-10', 'acme/T-11', 'acme/T-12'].map((name) => new Room(name, { onUpdate: () => {} }, silentLogger()))
    const alice = recordingPeer('alice')
    const bob = recordingPeer('bob')
    for (const room of rooms) {
      room.addPeer(alice)
      room.addPeer(bob)
      room.applyPeerAwareness(alice, stateUpdate(501, { cursor: 1, user: { name: 'Mallory' } }), MAX_STATE_BYTES, MAX_IDS)
    }
    const held = rooms.map((room) => room.awarenessStates.get(501))
    expect(held[0]).toEqual({ cursor: 1, user: { id: 'alice', name: 'alice', color: expect.any(String) } })
    expect(held[1]).toBe(held[0])
    expect(held[2]).toBe(held[0])
    // another connection's state, or another state of this one, is a state of its own
    rooms[0].applyPeerAwareness(bob, stateUpdate(502, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    expect(rooms[0].awarenessStates.get(502)).toMatchObject({ user: { id: 'bob' } })
    const moved = new Y.Doc({ guid: 'alice' })
    moved.clientID = 501
    const movedAwareness = new awarenessProtocol.Awareness(moved)
    movedAwareness.setLocalState({ cursor: 1, user: { name: 'Mallory' } })
    movedAwareness.setLocalState({ cursor: 2, user: { name: 'Mallory' } }) // clock 2
    rooms[1].applyPeerAwareness(alice, awarenessProtocol.encodeAwarenessUpdate(movedAwareness, [501]), MAX_STATE_BYTES, MAX_IDS)
    expect(rooms[1].awarenessStates.get(501)).toMatchObject({ cursor: 2, user: { id: 'alice' } })
    expect(rooms[0].awarenessStates.get(501)).toMatchObject({ cursor: 1 })
    // a refreshed token with another name stamps the same text anew
    ;(alice as { identity: RoomPeer['identity'] }).identity = { ...alice.identity, name: 'Alice Liddell' }
    movedAwareness.setLocalState({ cursor: 2, user: { name: 'Mallory' } }) // clock 3, the same text
    rooms[1].applyPeerAwareness(alice, awarenessProtocol.encodeAwarenessUpdate(movedAwareness, [501]), MAX_STATE_BYTES, MAX_IDS)
    await nextTurn()
    expect(rooms[1].awarenessStates.get(501)).toMatchObject({ cursor: 2, user: { id: 'alice', name: 'Alice Liddell' } })
    // what bob is sent of T-11 carries the new name
    const names = bob.awareness.map((update) => (entriesOf(update).get(501) as { user?: { name?: string } } | undefined)?.user?.name)
    expect(names).toContain('Alice Liddell')
    movedAwareness.destroy()
    moved.destroy()
    for (const room of rooms) room.destroy()
  })
})

describe('presence taken again as held', () => {
  it('the same state in more docs still counts against the connection’s budget in each, and an anonymous claim is still made', () => {
    const rooms = Array.from({ length: 4 }, (_, i) => new Room(`acme/T-${20 + i}`, { onUpdate: () => {} }, silentLogger()))
    const state = { cursor: 1, pad: 'x'.repeat(100) }
    const bytes = JSON.stringify(state).length
    const ada = { ...recordingPeer('ada'), awarenessBytes: { held: 0, max: bytes * 3 } }
    const results = rooms.map((room) => {
      room.addPeer(ada)
      return room.applyPeerAwareness(ada, stateUpdate(701, state), MAX_STATE_BYTES, MAX_IDS)
    })
    expect(results.map((r) => r.overBytes)).toEqual([0, 0, 0, 1]) // three fit, the fourth is refused
    expect(ada.awarenessBytes.held).toBe(bytes * 3)
    expect(rooms.map((room) => room.awarenessStates.has(701))).toEqual([true, true, true, false])
    for (const room of rooms) room.destroy()

    const anonymous = recordingPeer('guest')
    ;(anonymous as { identity: RoomPeer['identity'] }).identity = { ...anonymous.identity, anonymous: true }
    const claims = ['acme/T-30', 'acme/T-31'].map((name) => {
      const room = new Room(name, { onUpdate: () => {} }, silentLogger())
      room.addPeer(anonymous)
      const { claimed } = room.applyPeerAwareness(
        anonymous,
        stateUpdate(702, { user: { id: 'u-7', name: 'Guest 7' } }),
        MAX_STATE_BYTES,
        MAX_IDS,
      )
      room.destroy()
      return claimed
    })
    expect(claims).toEqual([
      { userId: 'u-7', name: 'Guest 7' },
      { userId: 'u-7', name: 'Guest 7' },
    ])
  })
})

describe('keep-alives', () => {
  /** An awareness update renewing `state` of client `clientId` at `clock`. */
  const renewal = (clientId: number, clock: number, state: Record<string, unknown>): Uint8Array => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint(encoder, clientId)
    encoding.writeVarUint(encoder, clock)
    encoding.writeVarString(encoder, JSON.stringify(state))
    return encoding.toUint8Array(encoder)
  }
  const clocksOf = (update: Uint8Array): Map<number, number> => {
    const decoder = decoding.createDecoder(update)
    const clocks = new Map<number, number>()
    for (let n = decoding.readVarUint(decoder); n > 0; n--) {
      const clientId = decoding.readVarUint(decoder)
      clocks.set(clientId, decoding.readVarUint(decoder))
      decoding.readVarString(decoder)
    }
    return clocks
  }

  it('without the registry’s hook, go out in the next turn like any change', async () => {
    const room = new Room('acme/T-41', { onUpdate: () => {} }, silentLogger())
    const [ada, cy] = ['ada', 'cy'].map(recordingPeer)
    for (const peer of [ada, cy]) room.addPeer(peer)
    room.applyPeerAwareness(ada, renewal(811, 1, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    await nextTurn()
    room.applyPeerAwareness(ada, renewal(811, 2, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    await nextTurn()
    expect(cy.awareness.map((update) => clocksOf(update).get(811))).toEqual([1, 2])
    room.destroy()
  })

  it('wait for the room’s next change or the registry, and then reach the peers together', async () => {
    const waiting: Room[] = []
    const room = new Room('acme/T-40', { onUpdate: () => {}, onRenewalWaiting: (r) => waiting.push(r) }, silentLogger())
    const [ada, bob, cy] = ['ada', 'bob', 'cy'].map(recordingPeer)
    for (const peer of [ada, bob, cy]) room.addPeer(peer)
    room.applyPeerAwareness(ada, renewal(801, 1, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    room.applyPeerAwareness(bob, renewal(802, 1, { cursor: 2 }), MAX_STATE_BYTES, MAX_IDS)
    await nextTurn()
    expect(cy.awareness).toHaveLength(1) // the two new states, at once
    // both renew (the same states, the next clocks): nothing goes out this turn
    room.applyPeerAwareness(ada, renewal(801, 2, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    room.applyPeerAwareness(bob, renewal(802, 2, { cursor: 2 }), MAX_STATE_BYTES, MAX_IDS)
    await nextTurn()
    expect(cy.awareness).toHaveLength(1)
    expect(waiting).toEqual([room]) // the registry heard once that keep-alives wait here
    expect(room.renewalsSince).toBeGreaterThan(0)
    // the registry sends them, in one update
    expect(room.sendRenewals()).toBe(true)
    expect(room.renewalsSince).toBe(0)
    expect(cy.awareness).toHaveLength(2)
    expect(clocksOf(cy.awareness[1])).toEqual(
      new Map([
        [801, 2],
        [802, 2],
      ]),
    )
    expect(room.sendRenewals()).toBe(false) // nothing waits any more
    // a keep-alive waiting when another client changes something goes with that change
    room.applyPeerAwareness(ada, renewal(801, 3, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    room.applyPeerAwareness(bob, renewal(802, 3, { cursor: 5 }), MAX_STATE_BYTES, MAX_IDS)
    await nextTurn()
    expect(cy.awareness).toHaveLength(3)
    expect(clocksOf(cy.awareness[2])).toEqual(
      new Map([
        [801, 3],
        [802, 3],
      ]),
    )
    expect(entriesOf(cy.awareness[2]).get(802)).toMatchObject({ cursor: 5 })
    room.destroy()
  })
})

describe('outdated presence', () => {
  it('a room drops states nobody renewed for 30 s when asked, and starts no timer of its own for it', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
    const before = timers()
    const rooms = Array.from({ length: 20 }, (_, i) => new Room(`acme/T-${100 + i}`, { onUpdate: () => {} }, silentLogger()))
    const alice = recordingPeer('alice')
    const bob = recordingPeer('bob')
    for (const room of rooms) {
      room.addPeer(alice)
      room.addPeer(bob)
      room.applyPeerAwareness(alice, stateUpdate(601, { cursor: 1 }), MAX_STATE_BYTES, MAX_IDS)
    }
    expect(timers()).toBe(before) // twenty rooms with presence, no interval each
    await nextTurn()
    const sent = bob.awareness.length
    const setAt = Date.now()
    expect(rooms[0].expirePresence(setAt + 29_000)).toBe(0)
    expect(rooms[0].awarenessStates.has(601)).toBe(true)
    expect(rooms[0].expirePresence(setAt + 31_000)).toBe(1)
    expect(rooms[0].awarenessStates.has(601)).toBe(false)
    await nextTurn()
    expect(bob.awareness).toHaveLength(sent + 1)
    expect(entriesOf(bob.awareness.at(-1)!)).toEqual(new Map([[601, null]]))
    expect(rooms[1].awarenessStates.has(601)).toBe(true) // each room on its own
    for (const room of rooms) room.destroy()
  })
})

describe('room presence with other relay instances', () => {
  it('publishes the changes made on this instance once per turn, never those another instance sent', async () => {
    const published: Uint8Array[] = []
    const room = new Room('doc', { onUpdate: () => {}, onAwareness: (_room, update) => published.push(update) }, silentLogger())
    const local = recordingPeer('ada')
    room.addPeer(local)
    room.applyPeerAwareness(local, stateUpdate(11, { name: 'Ada' }), MAX_STATE_BYTES, MAX_IDS)
    room.applyClusterAwareness(stateUpdate(22, { name: 'Bob, on another instance' }))
    await nextTurn()
    // The peer gets both changes in one update; the other instances only the local one.
    expect(local.awareness).toHaveLength(1)
    expect([...entriesOf(local.awareness[0]).keys()]).toEqual([11, 22])
    expect(published).toHaveLength(1)
    expect([...entriesOf(published[0]).keys()]).toEqual([11])
    // A turn with only another instance's changes publishes nothing.
    room.applyClusterAwareness(stateUpdate(33, { name: 'Cy, on another instance' }))
    await nextTurn()
    expect(local.awareness).toHaveLength(2)
    expect(published).toHaveLength(1)
    room.destroy()
  })
})
