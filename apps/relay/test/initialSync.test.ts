/**
 * Initial syncs in parts: the parts of an update are valid Yjs updates of at
 * most the chunk size, and applied in order (as an ordered socket delivers
 * them, with live updates between them) they give the same doc — content,
 * state vector and delete set — as the update itself. A fresh seed every run
 * (replay with SEED=).
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { InitialSyncQueue, updateParts } from '../src/connections/initialSync.js'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))

/** A doc written by several clients: text (with surrogate pairs) typed in turns, map values, arrays, deletions. */
const buildDoc = (gen: prng.PRNG): Y.Doc => {
  const peers = [0, 1, 2].map(() => new Y.Doc())
  const chars = ['a', 'b', 'é', '😀', '漢', ' ', '\n']
  for (let round = 0; round < 40; round++) {
    const doc = prng.oneOf(gen, peers)
    doc.transact(() => {
      const text = doc.getText('description')
      const word = Array.from({ length: prng.uint32(gen, 1, 400) }, () => prng.oneOf(gen, chars)).join('')
      text.insert(prng.uint32(gen, 0, text.length), word)
      if (text.length > 20 && prng.bool(gen)) text.delete(prng.uint32(gen, 0, text.length - 10), prng.uint32(gen, 1, 10))
      doc.getMap('fields').set(`f${prng.uint32(gen, 0, 20)}`, prng.word(gen, 1, 300))
      doc.getArray('comments').push([{ body: prng.word(gen, 1, 200), at: round }])
      if (prng.bool(gen)) doc.getMap('fields').set('blob', new Uint8Array(prng.uint32(gen, 1, 2000)))
    })
    // exchange now and then, so later edits depend on other clients' items
    if (prng.bool(gen))
      for (const a of peers) for (const b of peers) if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
  }
  for (const a of peers) for (const b of peers) if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
  return peers[0]
}

const same = (a: Y.Doc, b: Y.Doc): void => {
  expect(b.getText('description').toString()).toBe(a.getText('description').toString())
  expect(b.getMap('fields').toJSON()).toEqual(a.getMap('fields').toJSON())
  expect(b.getArray('comments').toJSON()).toEqual(a.getArray('comments').toJSON())
  expect(Y.decodeStateVector(Y.encodeStateVector(b))).toEqual(Y.decodeStateVector(Y.encodeStateVector(a)))
  expect(Y.encodeStateAsUpdate(b)).toEqual(Y.encodeStateAsUpdate(a))
  expect(b.store.pendingStructs).toBeNull()
}

describe(`updateParts (SEED=${SEED})`, () => {
  it('cuts a doc of several writers into valid updates no larger than the chunk, which rebuild it in order with nothing pending between them, also with live updates between them', async () => {
    const gen = prng.create(SEED)
    const source = buildDoc(gen)
    const update = Y.encodeStateAsUpdate(source)
    for (const chunk of [256, 1024, 4096]) {
      const parts = [...updateParts(update, chunk)]
      expect(parts.length).toBeGreaterThan(update.byteLength / chunk)
      // only the 2000-byte blobs (one struct, cannot be cut) may be larger
      for (const part of parts) expect(part.byteLength).toBeLessThanOrEqual(Math.max(chunk, 2100))
      const inOrder = new Y.Doc()
      for (const part of parts) {
        Y.applyUpdate(inOrder, part)
        // causal order: nothing waits for a later part (Yjs would merge every later part into what waits)
        expect(inOrder.store.pendingStructs).toBeNull()
      }
      same(source, inOrder)
      // as a client sees it: live updates made after the encoding arrive between the parts
      const later = new Y.Doc()
      Y.applyUpdate(later, update)
      const live: Uint8Array[] = []
      later.on('update', (u: Uint8Array) => live.push(u))
      for (let i = 0; i < 5; i++) {
        const text = later.getText('description')
        text.insert(prng.uint32(gen, 0, text.length), prng.word(gen, 1, 20))
        text.delete(prng.uint32(gen, 0, text.length - 5), 3)
        later.getMap('fields').set(`f${i}`, prng.word(gen, 1, 30))
      }
      const client = new Y.Doc()
      for (const [i, part] of parts.entries()) {
        if (i === 1) for (const u of live) Y.applyUpdate(client, u)
        Y.applyUpdate(client, part)
      }
      same(later, client)
    }
  })

  it('cuts one long text item (consecutive typing of one client) without splitting surrogate pairs', () => {
    const source = new Y.Doc()
    const text = source.getText('t')
    for (let i = 0; i < 50; i++) text.insert(text.length, '😀x'.repeat(1000)) // merged into one item
    const update = Y.encodeStateAsUpdate(source)
    const parts = [...updateParts(update, 10_000)]
    expect(parts.length).toBeGreaterThan(15)
    for (const part of parts) expect(part.byteLength).toBeLessThanOrEqual(10_000)
    const target = new Y.Doc()
    for (const part of parts) Y.applyUpdate(target, part)
    expect(target.getText('t').toString()).toBe(text.toString())
  })

  it('a diff against a state vector: only what is missing, with the delete set last', () => {
    const gen = prng.create(SEED + 1)
    const source = buildDoc(gen)
    const early = new Y.Doc()
    Y.applyUpdate(early, Y.encodeStateAsUpdate(source))
    source.getText('description').insert(0, 'x'.repeat(5000))
    source.getText('description').delete(5000, 30)
    const parts = [...updateParts(Y.encodeStateAsUpdate(source, Y.encodeStateVector(early)), 1024)]
    expect(Y.parseUpdateMeta(parts.at(-1)!).to.size).toBe(0) // the last part has no structs
    for (const part of parts) Y.applyUpdate(early, part)
    same(source, early)
  })
})

describe('InitialSyncQueue', () => {
  /** A target whose parts are kept until the test says they left the send buffer. */
  const target = (owner: object, key: string, update: Uint8Array) => {
    const inBuffer: Array<(error?: Error) => void> = []
    const received: Array<{ part: Uint8Array; last: boolean }> = []
    return {
      inBuffer,
      received,
      opened: 0,
      owner,
      key,
      open() {
        this.opened++
        return update
      },
      sendPart(part: Uint8Array, last: boolean, sent: (error?: Error) => void) {
        received.push({ part, last })
        inBuffer.push(sent)
        return true
      },
      /** The oldest part left the send buffer. */
      drain() {
        inBuffer.shift()!()
      },
      done() {
        return received.at(-1)?.last === true
      },
    }
  }
  const bigUpdate = (bytes: number): Uint8Array => {
    const doc = new Y.Doc()
    for (let i = 0; i < bytes / 1000; i++) doc.getMap('m').set(`k${i}`, 'x'.repeat(1000))
    return Y.encodeStateAsUpdate(doc)
  }
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

  it('paces parts by the send buffer draining, one sync per connection, within the relay-wide budget', async () => {
    const update = bigUpdate(20_000)
    let peak = 0
    const queue = new InitialSyncQueue(4096, 2 * update.byteLength, (bytes) => (peak = Math.max(peak, bytes)))
    const alice = {}
    const bob = {}
    const carol = {}
    const a1 = target(alice, 'doc-1', update)
    const a2 = target(alice, 'doc-2', update)
    const b = target(bob, 'doc-1', update)
    const c = target(carol, 'doc-1', update)
    queue.enqueue(a1, update)
    queue.enqueue(a2, update)
    queue.enqueue(b, update)
    queue.enqueue(c, update)
    await settle()
    // alice's second sync waits for her first; carol waits for the budget (two syncs in flight)
    expect(a1.received).toHaveLength(2)
    expect(a1.inBuffer).toHaveLength(2)
    expect(b.received).toHaveLength(2)
    expect(a2.received).toHaveLength(0)
    expect(c.received).toHaveLength(0)
    expect(queue.bytesInFlight).toBe(2 * update.byteLength)
    // a part leaving the buffer lets exactly one more go
    a1.drain()
    expect(a1.received).toHaveLength(3)
    while (!a1.done()) a1.drain()
    while (a1.inBuffer.length > 0) a1.drain()
    await settle()
    // alice's first sync is done: her second one and carol's could go, but only one fits the budget, first come first served
    expect(a2.received.length).toBeGreaterThan(0)
    expect(c.received).toHaveLength(0)
    expect(peak).toBeLessThanOrEqual(2 * update.byteLength)
    // closing bob's connection frees his share: carol starts
    queue.cancel(bob)
    await settle()
    expect(c.received.length).toBeGreaterThan(0)
    for (const t of [a2, c]) {
      while (t.inBuffer.length > 0) t.drain()
      expect(t.done()).toBe(true)
    }
    expect(queue.bytesInFlight).toBe(0)
    // what a client got rebuilds the doc; a sync that started at once was sent from the update given, not made again
    const doc = new Y.Doc()
    for (const { part } of c.received) Y.applyUpdate(doc, part)
    expect(Y.encodeStateAsUpdate(doc)).toEqual(update)
    expect(a1.opened).toBe(0)
    expect(c.opened).toBe(1)
  })

  it('a newer sync of the same doc replaces one still waiting; fetch answers (replace: false) all stay', async () => {
    const update = bigUpdate(10_000)
    const queue = new InitialSyncQueue(4096, 10 * update.byteLength)
    const owner = {}
    const first = target(owner, 'doc-0', update)
    queue.enqueue(first, update)
    const older = target(owner, 'doc-1', update)
    const newer = target(owner, 'doc-1', update)
    queue.enqueue(older, update)
    queue.enqueue(newer, update)
    const fetch1 = target(owner, 'fetch doc-2', update)
    const fetch2 = target(owner, 'fetch doc-2', update)
    queue.enqueue(fetch1, update, { replace: false })
    queue.enqueue(fetch2, update, { replace: false })
    expect(queue.waitingCount).toBe(3)
    expect(queue.has(owner, 'fetch doc-2')).toBe(true)
    queue.cancel(owner, 'doc-1')
    expect(queue.waitingCount).toBe(2)
    queue.cancel(owner)
    expect(queue.waitingCount).toBe(0)
    expect(queue.bytesInFlight).toBe(0)
  })
})
