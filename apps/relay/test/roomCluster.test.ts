/**
 * What a room does with updates another relay instance stored: a message's
 * list is applied in one transaction, so the room's peers get one update
 * holding all of it, and nothing goes to the commit queue (it is stored).
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Room, type RoomPeer } from '../src/rooms/Room.js'
import { silentLogger } from '../src/observability/logger.js'

/** A peer of the room that records the doc updates it is sent. */
const recordingPeer = (id: string): RoomPeer & { updates: Uint8Array[] } => {
  const updates: Uint8Array[] = []
  return {
    id,
    identity: { userId: id, name: id, access: new Map(), expiresAt: null, anonymous: false },
    sendUpdate: (_room, update) => updates.push(update),
    sendAwareness: () => {},
    sendAck: () => {},
    sendAuthors: () => {},
    mayWrite: () => true,
    awarenessBytes: { held: 0, max: Infinity },
    updates,
  }
}

/** An update of a writer with client id `clientId` inserting `text` into the doc's `key` text. */
const textUpdate = (clientId: number, key: string, text: string): Uint8Array => {
  const writer = new Y.Doc()
  writer.clientID = clientId
  writer.getText(key).insert(0, text)
  const update = Y.encodeStateAsUpdate(writer)
  writer.destroy()
  return update
}

describe('room: updates from other instances', () => {
  it('a list of stored updates reaches each peer as one update, and none goes to storage', () => {
    const stored: Uint8Array[] = []
    const room = new Room('acme/T-1', { onUpdate: (_room, update) => stored.push(update) }, silentLogger())
    const peer = recordingPeer('alice')
    room.addPeer(peer)
    const updates = [textUpdate(11, 'a', 'one'), textUpdate(12, 'b', 'two'), textUpdate(13, 'c', 'three')]

    room.applyClusterUpdates(updates, [{ clientId: 12, userId: 'bob', name: 'Bob' }])

    expect(peer.updates).toHaveLength(1)
    const replica = new Y.Doc()
    Y.applyUpdate(replica, peer.updates[0]!)
    expect(['a', 'b', 'c'].map((key) => replica.getText(key).toString())).toEqual(['one', 'two', 'three'])
    expect(stored).toEqual([])
    expect(room.authors.get(12)).toEqual({ clientId: 12, userId: 'bob', name: 'Bob' })
    room.destroy()
  })
})
