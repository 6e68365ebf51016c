import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { describe, expect, test } from 'vitest'
import { splitUpdate } from '../src/sync/updateParts.js'

/** A doc edited by `clients` clients in turn (text inserts and deletes, map sets), each change synced to all. */
const editedDoc = (gen: prng.PRNG, clients: number, changes: number): Y.Doc => {
  const docs = Array.from({ length: clients }, () => new Y.Doc())
  for (let i = 0; i < changes; i++) {
    const doc = prng.oneOf(gen, docs)
    const text = doc.getText('t')
    const before = Y.encodeStateVector(doc)
    doc.transact(() => {
      if (text.length > 20 && prng.bool(gen)) text.delete(prng.uint32(gen, 0, text.length - 5), prng.uint32(gen, 1, 5))
      text.insert(prng.uint32(gen, 0, text.length), prng.word(gen, 1, 6))
      doc.getMap('m').set(`k${prng.uint32(gen, 0, 30)}`, prng.word(gen, 0, 20))
    })
    const change = Y.encodeStateAsUpdate(doc, before)
    for (const other of docs) if (other !== doc) Y.applyUpdate(other, change)
  }
  return docs[0]
}

describe('splitUpdate', () => {
  // A fresh seed every run (in the test name); replay one with SEED=<n>.
  const seed = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  test(`parts applied in order make the update, each within its bounds, without pending structs (SEED=${seed})`, () => {
    const gen = prng.create(seed)
    for (let round = 0; round < 12; round++) {
      const source = editedDoc(gen, prng.uint32(gen, 1, 3), prng.uint32(gen, 1, 400))
      const update = Y.encodeStateAsUpdate(source)
      const maxStructs = prng.uint32(gen, 1, 50)
      const maxBytes = prng.uint32(gen, 64, 2048)
      const parts = splitUpdate(update, maxStructs, maxBytes)
      for (const part of parts.slice(0, -1)) {
        expect(Y.decodeUpdate(part.update).structs.length).toBeLessThanOrEqual(maxStructs)
        expect(Y.decodeUpdate(part.update).ds.clients.size).toBe(0)
      }
      const target = new Y.Doc()
      for (const part of parts) {
        Y.applyUpdate(target, part.update)
        // `end` is where the part leaves each of its clients
        for (const [client, clock] of part.end) expect(Y.getState(target.store, client)).toBeGreaterThanOrEqual(clock)
      }
      expect(target.store.pendingStructs).toBeNull()
      expect(target.getText('t').toString()).toBe(source.getText('t').toString())
      expect(target.getMap('m').toJSON()).toEqual(source.getMap('m').toJSON())
      expect(Y.equalSnapshots(Y.snapshot(target), Y.snapshot(source))).toBe(true)
    }
  })

  test('a small update comes back whole; a large one in several parts, the delete set in the last', () => {
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'hello')
    const small = Y.encodeStateAsUpdate(doc)
    expect(splitUpdate(small, 1000, 1024).map((part) => part.update)).toEqual([small])
    for (let i = 0; i < 300; i++) doc.getMap('m').set(`k${i}`, i)
    doc.getText('t').delete(0, 2)
    const parts = splitUpdate(Y.encodeStateAsUpdate(doc), 100, 64 * 1024)
    expect(parts.length).toBeGreaterThan(2)
    expect(Y.decodeUpdate(parts.at(-1)!.update).ds.clients.size).toBe(1)
  })
})
