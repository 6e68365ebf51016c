/**
 * A room's answers to state vectors: every client whose state vector is
 * the doc's own gets the same step 2, made once, until the doc changes —
 * also by a change that leaves the state vector as it is (a deletion), and
 * also while the room is dormant.
 */
import { describe, expect, it } from 'vitest'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { Room } from '../src/rooms/Room.js'
import { silentLogger } from '../src/observability/logger.js'

const newRoom = (): Room => new Room('acme/T-1', { onUpdate: () => {} }, silentLogger())

/** A client's copy of the room's doc: what it holds after applying `updates`. */
const replica = (...updates: Uint8Array[]): Y.Doc => {
  const doc = new Y.Doc()
  for (const update of updates) Y.applyUpdate(doc, update)
  return doc
}

describe('room: answers to a state vector equal to the doc', () => {
  it('every client with the doc’s state vector gets one encoding; a deletion, which leaves the state vector as it is, makes a new one', () => {
    const room = newRoom()
    room.doc.getText('title').insert(0, 'Checkout times out')
    const client = replica(room.encodeState())
    const stateVector = Y.encodeStateVector(client)

    const first = room.encodeState(stateVector)
    expect(room.encodeState(Uint8Array.from(stateVector))).toBe(first)
    expect(room.lacksSomeOf(stateVector)).toBe(false)

    room.doc.getText('title').delete(0, 9)
    expect(Y.encodeStateVector(room.doc)).toEqual(stateVector)
    const afterDeletion = room.encodeState(stateVector)
    expect(afterDeletion).not.toBe(first)
    Y.applyUpdate(client, afterDeletion)
    expect(client.getText('title').toString()).toBe('times out')
    room.destroy()
  })

  it('a state vector listing its clients in another order than Yjs writes them is matched by its clocks', () => {
    const room = newRoom()
    for (const [clientId, text] of [
      [7, 'Checkout'],
      [900, ' times out'],
    ] as const) {
      const writer = replica(room.encodeState())
      writer.clientID = clientId
      writer.getText('title').insert(writer.getText('title').length, text)
      Y.applyUpdate(room.doc, Y.encodeStateAsUpdate(writer))
    }
    const first = room.encodeState(Y.encodeStateVector(room.doc))
    // Yjs writes client 900 first; this client writes 7 first
    const reordered = encoding.createEncoder()
    encoding.writeVarUint(reordered, 2)
    for (const [client, clock] of [...Y.decodeStateVector(Y.encodeStateVector(room.doc))].sort((a, b) => a[0] - b[0])) {
      encoding.writeVarUint(reordered, client)
      encoding.writeVarUint(reordered, clock)
    }
    const stateVector = encoding.toUint8Array(reordered)
    expect(stateVector).not.toEqual(Y.encodeStateVector(room.doc))
    expect(room.encodeState(stateVector)).toBe(first)
    expect(room.lacksSomeOf(stateVector)).toBe(false)
    room.destroy()
  })

  it('a client that is behind or ahead is answered afresh, and an edit retires the old state vector', () => {
    const room = newRoom()
    room.doc.getText('title').insert(0, 'Checkout')
    const behind = replica(room.encodeState())
    const behindVector = Y.encodeStateVector(behind)
    room.encodeState(behindVector)
    room.doc.getText('title').insert(8, ' times out')

    Y.applyUpdate(behind, room.encodeState(behindVector))
    expect(behind.getText('title').toString()).toBe('Checkout times out')

    const ahead = replica(room.encodeState())
    ahead.getText('title').insert(0, 'iOS: ')
    const aheadVector = Y.encodeStateVector(ahead)
    expect(room.lacksSomeOf(aheadVector)).toBe(true)
    expect(room.lacksSomeOf(Y.encodeStateVector(room.doc))).toBe(false)
    room.destroy()
  })

  it('a dormant room answers from one encoding too, and waking for an edit retires it', () => {
    const room = newRoom()
    room.doc.getText('title').insert(0, 'Checkout times out')
    const client = replica(room.encodeState())
    const stateVector = Y.encodeStateVector(room.doc)
    room.sleep(false) // marks the doc unused
    expect(room.sleep(false)).toBe(true)
    expect(room.isDormant).toBe(true)

    const first = room.encodeState(stateVector)
    expect(room.encodeState(stateVector)).toBe(first)
    expect(room.isDormant).toBe(true)

    room.doc.getText('title').delete(0, 9)
    expect(room.isDormant).toBe(false)
    Y.applyUpdate(client, room.encodeState(stateVector))
    expect(client.getText('title').toString()).toBe('times out')
    room.destroy()
  })
})
