/**
 * A record's write pipeline: what the doc holds reaches its database, and
 * after a storage failure the whole state is written again after a delay
 * drawn by the shared jittered backoff (`sync/backoff`), growing while it
 * keeps failing and starting over once it worked.
 */
import { afterEach, expect, test, vi } from 'vitest'
import * as Y from 'yjs'
import { MemoryStorage, StorageError } from '../src/index.js'
import { RecordWriter, type MetaSource, type WriterOwner } from '../src/records/RecordWriter.js'
import { SavedState } from '../src/records/SavedState.js'
import { stateVectorOf } from '../src/protocol/stateVector.js'
import { GatedStorage } from './helpers.js'

afterEach(() => {
  vi.useRealTimers()
})

const meta: MetaSource = {
  acked: () => new Uint8Array([0]),
  fieldClocks: () => [],
  authors: () => [],
  viewed: () => new Uint8Array([0]),
  ownClients: () => [],
}

/** A writer of one doc over `backend`, counting what it reports to its owner. */
const newWriter = async (backend: GatedStorage, random: () => number) => {
  const doc = new Y.Doc()
  const reported = { failures: 0, saves: 0 }
  const owner: WriterOwner = {
    mustListPending: () => false,
    listPending: async () => {},
    writing: () => {},
    saved: () => reported.saves++,
    failed: () => reported.failures++,
    settledDown: () => {},
  }
  const writer = new RecordWriter({
    id: 'T-1',
    doc,
    backend,
    storage: await backend.openRecord('T-1'),
    saved: new SavedState(),
    compactAfter: 64,
    meta,
    owner,
    retry: { minDelay: 1_000, maxDelay: 60_000, random },
  })
  doc.on('update', (update: Uint8Array) => writer.queueUpdate(update))
  return { doc, writer, reported }
}

test('a failed write is retried after a jittered delay that grows while it fails and starts over once it worked', async () => {
  const backend = new GatedStorage(new MemoryStorage())
  const { doc, writer, reported } = await newWriter(backend, () => 0.5)
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })

  backend.failWith = new StorageError('quota', 'QuotaExceededError')
  doc.getText('t').insert(0, 'a')
  await writer.settled()
  expect(reported.failures).toBe(1)
  expect(writer.allWritten).toBe(false)

  // First retry: half (the random draw) of the first bound, 1 s. It fails again.
  await vi.advanceTimersByTimeAsync(499)
  expect(reported.failures).toBe(1)
  await vi.advanceTimersByTimeAsync(1)
  await writer.settled()
  expect(reported.failures).toBe(2)

  // Second retry: half of a bound twice as large. It works.
  backend.failWith = null
  await vi.advanceTimersByTimeAsync(999)
  expect(writer.storageError).not.toBe(null)
  await vi.advanceTimersByTimeAsync(1)
  await writer.settled()
  expect(writer.storageError).toBe(null)
  expect(writer.allWritten).toBe(true)
  expect((await (await backend.inner.openRecord('T-1')).load()).updates.length).toBeGreaterThan(0)

  // The next failure starts over from the first bound.
  backend.failWith = new StorageError('failed', 'disk gone')
  doc.getText('t').insert(1, 'b')
  await writer.settled()
  backend.failWith = null
  await vi.advanceTimersByTimeAsync(500)
  await writer.settled()
  expect(writer.storageError).toBe(null)
  expect(reported.failures).toBe(3)
  expect(reported.saves).toBeGreaterThanOrEqual(2)
})

test('the random source spreads retries: a draw near 0 retries at once, near 1 after almost the whole bound', async () => {
  for (const [draw, at] of [
    [0, 0],
    [0.999, 999],
  ] as const) {
    const backend = new GatedStorage(new MemoryStorage())
    const { doc, writer, reported } = await newWriter(backend, () => draw)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    backend.failWith = new StorageError('quota', 'QuotaExceededError')
    doc.getText('t').insert(0, 'a')
    await writer.settled()
    expect(reported.failures).toBe(1)
    backend.failWith = null
    if (at > 0) {
      await vi.advanceTimersByTimeAsync(at - 1)
      expect(writer.storageError).not.toBe(null)
    }
    await vi.advanceTimersByTimeAsync(1)
    await writer.settled()
    expect(writer.storageError).toBe(null)
    writer.stop()
    vi.useRealTimers()
  }
})

test("stateVectorOf reads the doc's state vector as Yjs encodes it: several clients, deletions, a struct not integrated yet", () => {
  const doc = new Y.Doc()
  expect(stateVectorOf(doc)).toEqual(new Map())
  const other = new Y.Doc()
  other.clientID = 7
  other.getText('t').insert(0, 'hello')
  const first = Y.encodeStateAsUpdate(other)
  other.getText('t').insert(5, ' world')
  const second = Y.encodeStateAsUpdate(other, Y.encodeStateVectorFromUpdate(first))
  Y.applyUpdate(doc, second) // depends on `first`: held back, not in the state vector
  doc.clientID = 3
  doc.getMap('m').set('k', 1)
  doc.getMap('m').delete('k')
  expect(stateVectorOf(doc)).toEqual(Y.decodeStateVector(Y.encodeStateVector(doc)))
  Y.applyUpdate(doc, first)
  expect(stateVectorOf(doc)).toEqual(
    new Map([
      [3, 1],
      [7, 11],
    ]),
  )
  expect(stateVectorOf(doc)).toEqual(Y.decodeStateVector(Y.encodeStateVector(doc)))
})
