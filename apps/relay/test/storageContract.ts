/**
 * Contract suite of the storage port: every adapter runs it.
 * Each case title starts with the rule it checks (`[seq]`, `[checkpoint]`…).
 *
 * @example
 * ```ts
 * runStorageContractTests('MemoryStorage', async () => {
 *   const storage = new MemoryStorage()
 *   return { storage, cleanup: async () => {} }
 * })
 * ```
 *
 * @module test/storageContract
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import type { Storage, StoredDoc } from '../src/storage/index.js'

/** What an adapter's `setup` gives the suite: a fresh, empty storage per case. */
export interface StorageContractFixture {
  storage: Storage
  /** Opens a new storage on the same data (called after `storage.close()`); enables the `[durable]` cases. */
  reopen?: () => Promise<Storage>
  /** Removes whatever `setup` created; called after every case, once the storages are closed. */
  cleanup: () => Promise<void>
}

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values)
const EMPTY: StoredDoc = { checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] }

/** Asserts that `call` returns a rejecting promise (and does not throw synchronously). */
async function expectRejects(call: () => Promise<unknown>, message?: RegExp): Promise<void> {
  let promise: Promise<unknown> | undefined
  expect(() => {
    promise = call()
  }).not.toThrow()
  await expect(promise).rejects.toThrow(message ?? Error)
}

/** Records every update a Y.Doc emits. */
function recordUpdates(doc: Y.Doc): Uint8Array[] {
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  return updates
}

/** Rebuilds a Y.Doc the way the relay does: checkpoint first, then the log in order. */
function rebuild(stored: StoredDoc): Y.Doc {
  const doc = new Y.Doc()
  if (stored.checkpoint !== null) Y.applyUpdate(doc, stored.checkpoint)
  for (const update of stored.updates) Y.applyUpdate(doc, update)
  return doc
}

/** Runs the storage contract against the adapter that `setup` creates (a fresh, empty one per case). */
export function runStorageContractTests(name: string, setup: () => Promise<StorageContractFixture>): void {
  describe(`Storage contract: ${name}`, () => {
    let fixture: StorageContractFixture
    let storage: Storage
    /** Every storage opened during the case, closed after it. */
    let opened: Storage[]

    beforeEach(async () => {
      fixture = await setup()
      storage = fixture.storage
      opened = [storage]
    })

    afterEach(async () => {
      for (const s of opened) await s.close()
      await fixture.cleanup()
    })

    /** Closes the current storage and opens the same data again. */
    async function reopen(): Promise<Storage> {
      if (fixture.reopen === undefined) throw new Error('adapter has no reopen')
      await storage.close()
      storage = await fixture.reopen()
      opened.push(storage)
      return storage
    }

    it('[kind] has a non-empty kind', () => {
      expect(typeof storage.kind).toBe('string')
      expect(storage.kind.length).toBeGreaterThan(0)
    })

    it('[empty] unknown doc loads empty', async () => {
      expect(await storage.loadDoc('never-stored')).toEqual(EMPTY)
      expect(await storage.listDocs('')).toEqual([])
    })

    it('[append] append then load returns the same bytes in order', async () => {
      const updates = [bytes(1), bytes(2, 2), bytes(3, 3, 3), bytes(), bytes(255, 0, 7)]
      await storage.appendUpdates([{ doc: 'a', updates: updates.slice(0, 2) }])
      await storage.appendUpdates([{ doc: 'a', updates: updates.slice(2) }])
      const loaded = await storage.loadDoc('a')
      expect(loaded.checkpoint).toBeNull()
      expect(loaded.updates).toHaveLength(updates.length)
      loaded.updates.forEach((update, i) => {
        expect(update).toBeInstanceOf(Uint8Array)
        expect(Array.from(update)).toEqual(Array.from(updates[i]))
      })
    })

    it('[log-bytes] a long log loads byte for byte and in order: zeros, bytes that are not UTF-8, a row of 70 KB, thousands of rows', async () => {
      const random = (length: number, seed: number): Uint8Array => {
        const out = new Uint8Array(length)
        for (let i = 0, x = seed; i < length; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24
        return out
      }
      const rows = [bytes(0), bytes(0, 0, 0), bytes(0xff, 0xfe, 0x80, 0xc3), random(70_000, 1), bytes(0xc0, 0x80, 0), bytes(0x5c, 0x78)]
      for (let i = 0; i < 3_000; i++) rows.push(random(1 + (i % 40), i))
      await storage.appendUpdates([{ doc: 'long', updates: rows.slice(0, 1_000) }])
      await storage.appendUpdates([{ doc: 'long', updates: rows.slice(1_000) }])
      const loaded = await storage.loadDoc('long')
      expect(loaded.updates).toEqual(rows)
      expect(loaded.lastSeq).toBe(rows.length)
      expect(loaded.logBytes).toBe(rows.reduce((n, row) => n + row.byteLength, 0))
      await storage.writeCheckpoint('long', bytes(9), 2_000)
      expect(await storage.loadDoc('long')).toMatchObject({ checkpoint: bytes(9), updates: rows.slice(2_000), lastSeq: rows.length })
    })

    it('[append] lastSeq and logBytes are right', async () => {
      const result = await storage.appendUpdates([{ doc: 'a', updates: [bytes(1, 2), bytes(3, 4, 5)] }])
      expect(result.get('a')).toBe(2)
      const loaded = await storage.loadDoc('a')
      expect(loaded.lastSeq).toBe(2)
      expect(loaded.logBytes).toBe(5)
    })

    it('[group-commit] a batch of several docs is stored whole and all visible', async () => {
      await storage.appendUpdates([{ doc: 'b', updates: [bytes(9)] }])
      const result = await storage.appendUpdates([
        { doc: 'a', updates: [bytes(1), bytes(2)] },
        { doc: 'b', updates: [bytes(10)] },
        { doc: 'c', updates: [bytes(3), bytes(4), bytes(5)] },
      ])
      expect([...result.entries()].sort()).toEqual([
        ['a', 2],
        ['b', 2],
        ['c', 3],
      ])
      expect((await storage.loadDoc('a')).updates.map((u) => u[0])).toEqual([1, 2])
      expect((await storage.loadDoc('b')).updates.map((u) => u[0])).toEqual([9, 10])
      expect((await storage.loadDoc('c')).updates.map((u) => u[0])).toEqual([3, 4, 5])
      expect(await storage.listDocs('')).toEqual(['a', 'b', 'c'])
    })

    it('[group-commit] the same doc twice in one batch keeps batch order', async () => {
      const result = await storage.appendUpdates([
        { doc: 'a', updates: [bytes(1)] },
        { doc: 'b', updates: [bytes(7)] },
        { doc: 'a', updates: [bytes(2), bytes(3)] },
      ])
      expect(result.get('a')).toBe(3)
      expect(result.get('b')).toBe(1)
      expect((await storage.loadDoc('a')).updates.map((u) => u[0])).toEqual([1, 2, 3])
    })

    it('[atomic] a batch with an invalid update rejects and stores nothing', async () => {
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
      const bad = [
        { doc: 'a', updates: [bytes(2)] },
        { doc: 'new', updates: [bytes(3)] },
        { doc: 'b', updates: [bytes(4), 'not bytes' as unknown as Uint8Array] },
      ]
      await expectRejects(() => storage.appendUpdates(bad), /Uint8Array/)
      await expectRejects(() => storage.appendUpdates([{ doc: 42 as unknown as string, updates: [bytes(1)] }]), /string/)
      expect(await storage.loadDoc('a')).toEqual({ checkpoint: null, updates: [bytes(1)], lastSeq: 1, logBytes: 1, authors: [] })
      expect(await storage.loadDoc('b')).toEqual(EMPTY)
      expect(await storage.listDocs('')).toEqual(['a'])
      // The failed batch consumed no sequence numbers.
      expect((await storage.appendUpdates([{ doc: 'a', updates: [bytes(2)] }])).get('a')).toBe(2)
    })

    it('[seq] sequence numbers increase across batches', async () => {
      const seqs: number[] = []
      for (let i = 0; i < 5; i++) {
        const result = await storage.appendUpdates([{ doc: 'a', updates: [bytes(i), bytes(i)] }])
        seqs.push(result.get('a')!)
      }
      expect(seqs).toEqual([2, 4, 6, 8, 10])
      expect((await storage.loadDoc('a')).lastSeq).toBe(10)
    })

    it('[seq] sequence numbers continue after a checkpoint emptied the log', async () => {
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1), bytes(2), bytes(3)] }])
      await storage.writeCheckpoint('a', bytes(42), 3)
      const afterCheckpoint = await storage.loadDoc('a')
      expect(afterCheckpoint).toEqual({ checkpoint: bytes(42), updates: [], lastSeq: 3, logBytes: 0, authors: [] })
      const result = await storage.appendUpdates([{ doc: 'a', updates: [bytes(4)] }])
      expect(result.get('a')).toBe(4)
      expect(await storage.loadDoc('a')).toEqual({ checkpoint: bytes(42), updates: [bytes(4)], lastSeq: 4, logBytes: 1, authors: [] })
    })

    it('[concurrency] concurrent appends all get distinct, increasing sequence numbers', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => storage.appendUpdates([{ doc: 'a', updates: [bytes(i)] }])))
      const seqs = results.map((r) => r.get('a')!)
      expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
      const loaded = await storage.loadDoc('a')
      expect(loaded.lastSeq).toBe(20)
      // The log order is the order of the sequence numbers handed out.
      const byByte = new Map(seqs.map((seq, i) => [seq, i]))
      expect(loaded.updates.map((u) => u[0])).toEqual(Array.from({ length: 20 }, (_, i) => byByte.get(i + 1)))
    })

    it('[checkpoint] replaces older log entries and keeps those with seq > uptoSeq', async () => {
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1), bytes(2), bytes(3), bytes(4, 4), bytes(5, 5, 5)] }])
      await storage.writeCheckpoint('a', bytes(100, 101), 3)
      expect(await storage.loadDoc('a')).toEqual({
        checkpoint: bytes(100, 101),
        updates: [bytes(4, 4), bytes(5, 5, 5)],
        lastSeq: 5,
        logBytes: 5,
        authors: [],
      })
    })

    it('[checkpoint] a newer checkpoint replaces the previous one', async () => {
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1), bytes(2), bytes(3)] }])
      await storage.writeCheckpoint('a', bytes(10), 1)
      await storage.writeCheckpoint('a', bytes(20), 2)
      expect(await storage.loadDoc('a')).toEqual({ checkpoint: bytes(20), updates: [bytes(3)], lastSeq: 3, logBytes: 1, authors: [] })
      // Same uptoSeq again (e.g. a re-encoded state) is allowed.
      await storage.writeCheckpoint('a', bytes(21), 2)
      expect((await storage.loadDoc('a')).checkpoint).toEqual(bytes(21))
    })

    it('[list-seqs] lists the same docs as listDocs, each with its last sequence number, which a checkpoint does not move', async () => {
      await storage.appendUpdates([
        { doc: 'team/b', updates: [bytes(1), bytes(2)] },
        { doc: 'team/a', updates: [bytes(3)] },
        { doc: 'other', updates: [bytes(4)] },
      ])
      await storage.writeCheckpoint('team/imported', bytes(7), 0)
      expect(await storage.listDocSeqs('team/')).toEqual([
        { doc: 'team/a', lastSeq: 1 },
        { doc: 'team/b', lastSeq: 2 },
        { doc: 'team/imported', lastSeq: 0 },
      ])
      await storage.writeCheckpoint('team/b', bytes(20), 2)
      await storage.appendUpdates([{ doc: 'team/a', updates: [bytes(5)] }])
      expect(await storage.listDocSeqs('team/')).toEqual([
        { doc: 'team/a', lastSeq: 2 },
        { doc: 'team/b', lastSeq: 2 },
        { doc: 'team/imported', lastSeq: 0 },
      ])
      expect((await storage.listDocSeqs('')).map(({ doc }) => doc)).toEqual(await storage.listDocs(''))
    })

    it('[list-page] a page holds the docs after a name, at most a limit, each page read on its own', async () => {
      const docs = ['team/a', 'team/b', 'team/c', 'team/d', 'team/e']
      await storage.appendUpdates([...docs, 'team', 'team0', 'teams', 'other'].map((doc) => ({ doc, updates: [bytes(1)] })))
      await storage.appendUpdates([{ doc: 'team/c', updates: [bytes(2)] }])
      const page = async (after: string, limit: number) => (await storage.listDocSeqs('team/', { after, limit })).map(({ doc }) => doc)
      expect(await storage.listDocSeqs('team/', { after: '', limit: 3 })).toEqual([
        { doc: 'team/a', lastSeq: 1 },
        { doc: 'team/b', lastSeq: 1 },
        { doc: 'team/c', lastSeq: 2 },
      ])
      expect(await page('team/c', 3)).toEqual(['team/d', 'team/e'])
      expect(await page('team/e', 3)).toEqual([])
      // `after` need not be a stored name, nor under the prefix
      expect(await page('team/bb', 2)).toEqual(['team/c', 'team/d'])
      expect(await page('a', 1)).toEqual(['team/a'])
      // paging through gives the whole listing
      const all: string[] = []
      for (let after = ''; ;) {
        const next = await page(after, 2)
        if (next.length === 0) break
        all.push(...next)
        after = next.at(-1)!
      }
      expect(all).toEqual(docs)
      expect((await storage.listDocSeqs('', { after: 'team/e', limit: 10 })).map(({ doc }) => doc)).toEqual(['team0', 'teams'])
      await expectRejects(() => storage.listDocSeqs('team/', { after: '', limit: 0 }), /page/)
      await expectRejects(() => storage.listDocSeqs('team/', { after: 7 as unknown as string, limit: 1 }), /page/)
    })

    it('[checkpoint] a doc with only a checkpoint is stored and listed', async () => {
      await storage.writeCheckpoint('imported', bytes(7, 7), 0)
      expect(await storage.loadDoc('imported')).toEqual({ checkpoint: bytes(7, 7), updates: [], lastSeq: 0, logBytes: 0, authors: [] })
      expect(await storage.listDocs('')).toEqual(['imported'])
      expect((await storage.appendUpdates([{ doc: 'imported', updates: [bytes(1)] }])).get('imported')).toBe(1)
    })

    it('[checkpoint-seq] rejects an uptoSeq beyond lastSeq, older than the stored checkpoint, or not an integer', async () => {
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1), bytes(2), bytes(3)] }])
      await storage.writeCheckpoint('a', bytes(20), 2)
      const before = await storage.loadDoc('a')
      await expectRejects(() => storage.writeCheckpoint('a', bytes(99), 4), /uptoSeq/)
      await expectRejects(() => storage.writeCheckpoint('a', bytes(99), 1), /older/)
      await expectRejects(() => storage.writeCheckpoint('a', bytes(99), 2.5), /integer/)
      await expectRejects(() => storage.writeCheckpoint('a', bytes(99), -1), /integer/)
      await expectRejects(() => storage.writeCheckpoint('unknown', bytes(99), 1), /uptoSeq/)
      await expectRejects(() => storage.writeCheckpoint('a', 'nope' as unknown as Uint8Array, 3), /Uint8Array/)
      expect(await storage.loadDoc('a')).toEqual(before)
      expect(await storage.listDocs('')).toEqual(['a'])
    })

    it('[load] checkpoint + remaining log rebuilds the same Y.Doc as the original', async () => {
      const source = new Y.Doc()
      const emitted = recordUpdates(source)
      const text = source.getText('body')
      const meta = source.getMap<string>('meta')
      text.insert(0, 'hello')
      text.insert(5, ' world')
      meta.set('title', 'Greeting')
      text.delete(0, 1)
      text.insert(0, 'H')
      await storage.appendUpdates([{ doc: 'ydoc', updates: emitted.slice(0, 3) }])
      await storage.appendUpdates([{ doc: 'ydoc', updates: emitted.slice(3) }])

      // The relay's room doc after the first 4 updates becomes the checkpoint.
      const room = new Y.Doc()
      for (const update of emitted.slice(0, 4)) Y.applyUpdate(room, update)
      await storage.writeCheckpoint('ydoc', Y.encodeStateAsUpdate(room), 4)

      text.insert(text.length, '!')
      meta.set('title', 'Greeting, edited')
      text.delete(1, 2)
      await storage.appendUpdates([{ doc: 'ydoc', updates: emitted.slice(5) }])

      const loaded = await storage.loadDoc('ydoc')
      expect(loaded.checkpoint).not.toBeNull()
      expect(loaded.updates).toHaveLength(emitted.length - 4)
      expect(loaded.lastSeq).toBe(emitted.length)
      const rebuilt = rebuild(loaded)
      expect(rebuilt.getText('body').toString()).toBe(text.toString())
      expect(rebuilt.getText('body').toString()).toBe('Hlo world!')
      expect(rebuilt.getMap('meta').toJSON()).toEqual({ title: 'Greeting, edited' })
      expect(Y.encodeStateVector(rebuilt)).toEqual(Y.encodeStateVector(source))
      // Nothing is missing: the source has nothing the rebuilt doc lacks.
      const missing = new Y.Doc()
      Y.applyUpdate(missing, Y.encodeStateAsUpdate(source, Y.encodeStateVector(rebuilt)))
      expect(missing.getText('body').length).toBe(0)
      expect(missing.getMap('meta').size).toBe(0)
    })

    it('[isolation] docs whose names are prefixes of each other or hold % and _ are separate', async () => {
      const names = ['a', 'ab', 'a/b', 'a%', 'a_', 'a%b', 'a_b', '%', '_', '', 'A', 'a\u00e9', 'a\u{1F600}']
      await storage.appendUpdates(names.map((doc, i) => ({ doc, updates: [bytes(i)] })))
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(200)] }])
      await storage.writeCheckpoint('a%', bytes(99), 1)
      for (const [i, doc] of names.entries()) {
        const loaded = await storage.loadDoc(doc)
        if (doc === 'a') expect(loaded.updates).toEqual([bytes(0), bytes(200)])
        else if (doc === 'a%') expect(loaded).toEqual({ checkpoint: bytes(99), updates: [], lastSeq: 1, logBytes: 0, authors: [] })
        else expect(loaded).toEqual({ checkpoint: null, updates: [bytes(i)], lastSeq: 1, logBytes: 1, authors: [] })
      }
    })

    it('[list] listDocs takes the prefix literally and sorts', async () => {
      const names = ['team/b', 'team/a', 'team_x', 'teamXa', 'team%', 'team%/1', 'other', 'te', 'team/\u{1F600}', 'team/\uFF21']
      await storage.appendUpdates(names.map((doc) => ({ doc, updates: [bytes(1)] })))
      expect(await storage.listDocs('')).toEqual([...names].sort())
      expect(await storage.listDocs('team/')).toEqual(['team/a', 'team/b', 'team/\u{1F600}', 'team/\uFF21'])
      expect(await storage.listDocs('team_')).toEqual(['team_x'])
      expect(await storage.listDocs('team%')).toEqual(['team%', 'team%/1'])
      expect(await storage.listDocs('%')).toEqual([])
      expect(await storage.listDocs('_')).toEqual([])
      expect(await storage.listDocs('team/a')).toEqual(['team/a'])
      expect(await storage.listDocs('zzz')).toEqual([])
      expect(await storage.listDocs('TEAM')).toEqual([])
    })

    it('[noop] an empty batch and a doc with no updates change nothing', async () => {
      expect((await storage.appendUpdates([])).size).toBe(0)
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
      const result = await storage.appendUpdates([
        { doc: 'a', updates: [] },
        { doc: 'ghost', updates: [] },
      ])
      expect(result.get('a')).toBe(1)
      expect(result.get('ghost')).toBe(0)
      expect(await storage.loadDoc('a')).toEqual({ checkpoint: null, updates: [bytes(1)], lastSeq: 1, logBytes: 1, authors: [] })
      expect(await storage.loadDoc('ghost')).toEqual(EMPTY)
      expect(await storage.listDocs('')).toEqual(['a'])
    })

    it('[copy] stored data is not aliased to buffers passed in or returned', async () => {
      const update = bytes(1, 2, 3)
      const state = bytes(7, 8)
      await storage.appendUpdates([{ doc: 'a', updates: [update, bytes(4)] }])
      await storage.writeCheckpoint('a', state, 1)
      update.fill(0)
      state.fill(0)
      const first = await storage.loadDoc('a')
      expect(first.checkpoint).toEqual(bytes(7, 8))
      expect(first.updates).toEqual([bytes(4)])
      first.checkpoint!.fill(0)
      first.updates[0].fill(0)
      const second = await storage.loadDoc('a')
      expect(second.checkpoint).toEqual(bytes(7, 8))
      expect(second.updates).toEqual([bytes(4)])
    })

    it('[copy] a view into a larger buffer stores only its own bytes', async () => {
      const backing = bytes(0, 1, 2, 3, 4, 5)
      await storage.appendUpdates([{ doc: 'a', updates: [backing.subarray(2, 4)] }])
      const loaded = await storage.loadDoc('a')
      expect(loaded.updates).toEqual([bytes(2, 3)])
      expect(loaded.logBytes).toBe(2)
    })

    it('[authors] bindings are stored with the commit, a later binding of a client id replaces the stored one', async () => {
      await storage.appendUpdates([
        { doc: 'a', updates: [bytes(1)], authors: [{ clientId: 7, userId: 'u1', name: 'Ada' }] },
        { doc: 'b', updates: [bytes(2)], authors: [{ clientId: 7, userId: 'u2', name: 'Bob' }] },
      ])
      await storage.appendUpdates([
        {
          doc: 'a',
          updates: [bytes(3)],
          authors: [
            { clientId: 7, userId: 'u9', name: 'Ida' },
            { clientId: 8, userId: 'u2', name: 'Bob' },
          ],
        },
      ])
      const byClient = (doc: StoredDoc) => [...doc.authors].sort((x, y) => x.clientId - y.clientId)
      expect(byClient(await storage.loadDoc('a'))).toEqual([
        { clientId: 7, userId: 'u9', name: 'Ida' },
        { clientId: 8, userId: 'u2', name: 'Bob' },
      ])
      expect((await storage.loadDoc('b')).authors).toEqual([{ clientId: 7, userId: 'u2', name: 'Bob' }])
      await storage.writeCheckpoint('a', bytes(9), 2)
      expect(byClient(await storage.loadDoc('a'))).toHaveLength(2)
    })

    it('[authors] an invalid binding rejects the whole batch', async () => {
      await expectRejects(
        () => storage.appendUpdates([{ doc: 'a', updates: [bytes(1)], authors: [{ clientId: -1, userId: 'u', name: 'x' }] }]),
        /author bindings/,
      )
      expect(await storage.loadDoc('a')).toEqual(EMPTY)
    })

    it('[presence] records last-seen per workspace, never moving back, most recent first', async () => {
      await storage.recordPresence([
        {
          workspace: 'acme',
          records: [
            { userId: 'u1', name: 'Ada', lastSeen: 1000 },
            { userId: 'u2', name: 'Bob', lastSeen: 3000 },
          ],
        },
      ])
      await storage.recordPresence([{ workspace: 'acme', records: [{ userId: 'u1', name: 'Ada L.', lastSeen: 5000 }] }])
      await storage.recordPresence([{ workspace: 'acme', records: [{ userId: 'u2', name: 'Old Bob', lastSeen: 2000 }] }])
      await storage.recordPresence([{ workspace: 'globex', records: [{ userId: 'u3', name: 'Cy', lastSeen: 4000 }] }])
      expect(await storage.listPresence('acme')).toEqual([
        { userId: 'u1', name: 'Ada L.', lastSeen: 5000 },
        { userId: 'u2', name: 'Bob', lastSeen: 3000 },
      ])
      expect(await storage.listPresence('nobody')).toEqual([])
      await expectRejects(
        () => storage.recordPresence([{ workspace: 'acme', records: [{ userId: 'u', name: 'x', lastSeen: Number.NaN }] }]),
        /presence records/,
      )
    })

    it('[presence] many workspaces in one call, all or nothing; the same user in several, and twice in one', async () => {
      await storage.recordPresence([
        { workspace: 'acme', records: [{ userId: 'u1', name: 'Ada', lastSeen: 1000 }] },
        {
          workspace: 'globex',
          records: [
            { userId: 'u1', name: 'Ada', lastSeen: 2000 },
            { userId: 'u1', name: 'Ada L.', lastSeen: 2500 },
          ],
        },
        { workspace: 'initech', records: [] },
      ])
      expect(await storage.listPresence('acme')).toEqual([{ userId: 'u1', name: 'Ada', lastSeen: 1000 }])
      expect(await storage.listPresence('globex')).toEqual([{ userId: 'u1', name: 'Ada L.', lastSeen: 2500 }])
      expect(await storage.listPresence('initech')).toEqual([])
      // one bad record rejects the whole batch: the good workspace's record is not stored either
      await expectRejects(
        () =>
          storage.recordPresence([
            { workspace: 'acme', records: [{ userId: 'u9', name: 'Cy', lastSeen: 9000 }] },
            { workspace: '', records: [{ userId: 'u1', name: 'Ada', lastSeen: 9000 }] },
          ]),
        /workspace/,
      )
      expect(await storage.listPresence('acme')).toEqual([{ userId: 'u1', name: 'Ada', lastSeen: 1000 }])
      await expect(storage.recordPresence([])).resolves.toBeUndefined()
    })

    it('[ping] ping resolves while open', async () => {
      await expect(storage.ping()).resolves.toBeUndefined()
    })

    it('[close] every call after close rejects', async () => {
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
      await storage.close()
      await expectRejects(() => storage.loadDoc('a'), /closed/)
      await expectRejects(() => storage.appendUpdates([{ doc: 'a', updates: [bytes(2)] }]), /closed/)
      await expectRejects(() => storage.appendUpdates([]), /closed/)
      await expectRejects(() => storage.writeCheckpoint('a', bytes(1), 1), /closed/)
      await expectRejects(() => storage.listDocs(''), /closed/)
      await expectRejects(() => storage.ping(), /closed/)
      await expectRejects(() => storage.recordPresence([]), /closed/)
      await expectRejects(() => storage.listPresence('w'), /closed/)
    })

    it('[close] close is idempotent', async () => {
      await storage.close()
      await expect(storage.close()).resolves.toBeUndefined()
      await expect(Promise.all([storage.close(), storage.close()])).resolves.toBeDefined()
    })

    it('[durable] data survives close + reopen (adapters with reopen)', async (ctx) => {
      if (fixture.reopen === undefined) return ctx.skip()
      await storage.appendUpdates([
        { doc: 'a', updates: [bytes(1), bytes(2), bytes(3)] },
        { doc: 'b', updates: [bytes(9)] },
      ])
      await storage.writeCheckpoint('a', bytes(50), 2)
      await storage.writeCheckpoint('c', bytes(60), 0)
      await storage.appendUpdates([{ doc: 'b', updates: [], authors: [{ clientId: 1, userId: 'u', name: 'U' }] }])
      await storage.recordPresence([{ workspace: 'w', records: [{ userId: 'u', name: 'U', lastSeen: 1234 }] }])
      const before = await Promise.all(['a', 'b', 'c'].map((doc) => storage.loadDoc(doc)))
      const reopened = await reopen()
      expect(await Promise.all(['a', 'b', 'c'].map((doc) => reopened.loadDoc(doc)))).toEqual(before)
      expect(await reopened.listPresence('w')).toEqual([{ userId: 'u', name: 'U', lastSeen: 1234 }])
      expect(await reopened.listDocs('')).toEqual(['a', 'b', 'c'])
    })

    it('[durable] sequence numbers continue after reopen, also when a checkpoint emptied the log', async (ctx) => {
      if (fixture.reopen === undefined) return ctx.skip()
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1), bytes(2)] }])
      await storage.writeCheckpoint('a', bytes(50), 2)
      const reopened = await reopen()
      expect((await reopened.loadDoc('a')).lastSeq).toBe(2)
      expect((await reopened.appendUpdates([{ doc: 'a', updates: [bytes(3)] }])).get('a')).toBe(3)
    })
  })
}
