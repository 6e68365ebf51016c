/**
 * Removing records from this device to free space (`store.evict`, and by
 * itself when the storage space runs low): only records whose every change
 * is on the relay and that are not open; their entries stay listed
 * (`evicted`); opened online, a record is fetched whole again; a pull skips
 * it while the relay holds nothing new of it and brings it back whole once
 * someone changed it. Against the real relay in-process.
 */
import { afterEach, expect, test } from 'vitest'
import * as Y from 'yjs'
import { MemoryStorage, type RecordStoreOptions, type RecordSummary, type SpaceEstimate } from '../src/index.js'
import { Harness } from './helpers.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

const DAY = 24 * 60 * 60 * 1000

/** Three synced tickets in a store whose records close as soon as their handles do. */
const threeTickets = async (options: Partial<RecordStoreOptions> = {}) => {
  const relay = h.relay({ autoAck: true })
  const gated = h.gatedClient(relay, null, 'Ada')
  const storage = options.storage instanceof MemoryStorage ? options.storage : new MemoryStorage()
  const store = h.store({ client: gated.client, storage, idleTimeout: 0, ...options })
  for (const [id, title] of [
    ['T-1', 'Export drops rows'],
    ['T-2', 'Login fails on Safari'],
    ['T-3', 'Dark mode contrast'],
  ] as const) {
    const ticket = await store.create('ticket', { title }, { id })
    await ticket.flush()
    ticket.close()
  }
  await expect.poll(() => store.openIds).toEqual([])
  await store.pull() // as the live catalog's catch-up does: each record known at the relay's sequence
  return { relay, gated, storage, store }
}

test('a synced, closed record is removed; its entry stays listed; read online, it is fetched whole again', async () => {
  const { storage, store } = await threeTickets()
  expect(await store.evict(['T-1'])).toEqual({ evicted: ['T-1'], kept: [] })
  expect(storage.records.has('T-1')).toBe(false)
  expect(store.catalog.get('T-1')).toMatchObject({ local: false, evicted: true, title: 'Export drops rows', pending: 0 })
  expect(store.list({ type: 'ticket' }).entries.map((e) => e.title)).toContain('Export drops rows')
  expect((await store.read('T-1')).fields.title).toBe('Export drops rows') // waits for the relay: nothing is stored here
  expect(storage.records.has('T-1')).toBe(true)
  expect(store.catalog.get('T-1')).toMatchObject({ local: true, title: 'Export drops rows' })
  expect(store.catalog.get('T-1')?.evicted).toBeUndefined()
})

test('never a record with changes not on the relay, nor one that is open', async () => {
  const { gated, storage, store } = await threeTickets()
  const open = await store.open('T-3')
  gated.offline()
  await store.update('T-2', { status: 'done' }) // offline: pending
  // T-1's storage holds a change the relay never acknowledged, though the catalog says nothing is pending.
  const doc = new Y.Doc()
  for (const row of storage.records.get('T-1')!.rows) Y.applyUpdate(doc, row)
  const before = Y.encodeStateVector(doc)
  doc.getMap('fields').set('priority', 'high')
  storage.records.get('T-1')!.rows.push(Y.encodeStateAsUpdate(doc, before))
  await expect.poll(() => store.openIds.sort()).toEqual(['T-2', 'T-3']) // pending changes keep T-2 open
  const result = await store.evict(['T-1', 'T-2', 'T-3', 'T-404'])
  expect(result.evicted).toEqual([])
  expect(result.kept).toEqual([
    { id: 'T-1', reason: 'unsynced' },
    { id: 'T-2', reason: 'pending' },
    { id: 'T-3', reason: 'open' },
    { id: 'T-404', reason: 'not-stored' },
  ])
  expect([...storage.records.keys()].sort()).toEqual(['T-1', 'T-2', 'T-3'])
  open.close()
})

test('after a reload the record is still removed; a pull skips it while the relay holds nothing new, and brings it back whole once someone changed it, telling only that change', async () => {
  const { relay, storage, store } = await threeTickets()
  expect((await store.evict(['T-2'])).evicted).toEqual(['T-2'])
  await store.close()

  const again = h.store({ client: h.client(relay), storage, idleTimeout: 0 })
  await again.ready
  expect(again.catalog.get('T-2')).toMatchObject({ local: false, evicted: true, title: 'Login fails on Safari' })
  const quiet = await again.pull()
  expect(quiet.fetched).toBe(0)
  expect(quiet.unchanged).toBe(3)
  expect(storage.records.has('T-2')).toBe(false)

  // Bob changes it: the next pull fetches all of it, not only Bob's change.
  const bob = h.store({ client: h.client(relay), storage: new MemoryStorage(), userId: 'bob', idleTimeout: 0 })
  await bob.pull()
  await bob.update('T-2', { title: 'Login fails on Safari 17' })
  await bob.flush()
  const changed = await again.pull({ summarize: true })
  expect(changed.fetched).toBe(1)
  // The news is Bob's change, not the whole ticket as if it were new here: what this device had seen was kept.
  expect(changed.summaries).toHaveLength(1)
  expect(changed.summaries[0]).toMatchObject({ recordId: 'T-2', created: false })
  expect(changed.summaries[0]!.changes.map((c) => [c.field, c.count])).toEqual([['title', 1]])
  expect(again.catalog.get('T-2')).toMatchObject({ local: true, title: 'Login fails on Safari 17' })
  expect((await again.read('T-2')).fields).toMatchObject({ title: 'Login fails on Safari 17', status: 'open' })
})

test('opened online after someone changed it, a removed record tells that change, not the whole record as new', async () => {
  const { relay, store } = await threeTickets()
  expect((await store.evict(['T-1'])).evicted).toEqual(['T-1'])
  const bob = h.store({ client: h.client(relay), storage: new MemoryStorage(), userId: 'bob', idleTimeout: 0 })
  await bob.pull()
  await bob.update('T-1', { priority: 'high' })
  await bob.flush()
  const told = new Promise<RecordSummary>((resolve) => store.once('summary', resolve))
  const ticket = await store.open('T-1')
  const summary = await told
  expect(summary).toMatchObject({ recordId: 'T-1', created: false })
  expect(summary.changes.map((c) => [c.field, c.from, c.to])).toEqual([['priority', 'none', 'high']])
  expect(ticket.read().fields).toMatchObject({ title: 'Export drops rows', priority: 'high' })
  ticket.close()
})

test('a pull that fetched the difference from what the catalog says is stored, where nothing is, fetches the whole record', async () => {
  const { relay, storage, store } = await threeTickets()
  const bob = h.store({ client: h.client(relay), storage: new MemoryStorage(), userId: 'bob', idleTimeout: 0 })
  await bob.pull()
  await bob.update('T-3', { status: 'in_progress' })
  await bob.flush()
  storage.records.delete('T-3') // gone underneath (removed by another tab before this one heard of it)
  await store.pull()
  expect((await store.read('T-3')).fields).toMatchObject({ title: 'Dark mode contrast', status: 'in_progress' })
})

test('when the space runs low, records nobody changed or opened for a while go, least recently used first, until it is not low', async () => {
  let now = Date.UTC(2026, 0, 1)
  class Filling extends MemoryStorage {
    async estimate(): Promise<SpaceEstimate> {
      // Every record stored takes 10 MB of 100.
      return { usage: this.records.size * 10_000_000, quota: 100_000_000, persisted: false }
    }
  }
  const storage = new Filling()
  const { store } = await threeTickets({ storage, now: () => now, storageCheckMs: 0, storageWarnAt: 0.25 })
  const evicted: string[][] = []
  store.on('evicted', (ids) => evicted.push(ids))
  // T-1 opened yesterday, the others last changed 40 days ago.
  now += 39 * DAY
  ;(await store.open('T-1')).close()
  now += DAY
  await expect.poll(() => store.openIds).toEqual([])
  // 30 MB of 100: low from 25 %. T-2 and T-3 are unused (30 days); one of them going is enough.
  await store.checkStorageSpace()
  await expect.poll(() => evicted).toEqual([['T-2', 'T-3']])
  expect(storage.records.size).toBe(1)
  expect(store.storageSpace).toMatchObject({ usage: 10_000_000, low: false })
  expect(store.catalog.get('T-1')?.local).toBe(true)
})

test('a store told not to remove anything leaves the records when the space runs low', async () => {
  class Full extends MemoryStorage {
    async estimate(): Promise<SpaceEstimate> {
      return { usage: 99, quota: 100, persisted: false }
    }
  }
  let now = Date.UTC(2026, 0, 1)
  const { storage, store } = await threeTickets({ storage: new Full(), evictUnused: false, now: () => now, evictAfterMs: DAY })
  now += 2 * DAY // every ticket unused: a store that removes would take all three
  expect(await store.checkStorageSpace()).toMatchObject({ low: true })
  // A removal from memory storage runs in microtasks: one turn of the event loop would see it done.
  await new Promise((resolve) => setTimeout(resolve, 0))
  expect(storage.records.size).toBe(3)
  expect((await store.evict()).evicted).toEqual(['T-1', 'T-2', 'T-3']) // asked for, they go
})
