/**
 * The catalog is written apart from the records (batched, relaxed
 * durability), so it can lose a write. Unsynced records must not disappear
 * with it: after start-up the store lists again the record databases the
 * catalog misses (read from their own databases), they count as pending and
 * sync, and a wipe refuses while they hold unsynced changes. The entry that
 * turns a record pending is written durably before the record's changes.
 */
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, expect, test } from 'vitest'
import { MemoryStorage, RecordStore, type CatalogStorage, type RecordStoreOptions, type StorageBackend } from '../src/index.js'
import { catalogDatabaseName } from '../src/internal.js'
import type { TestRelay } from './relayHarness.js'
import { Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

const newStore = (relay: TestRelay, options: Partial<RecordStoreOptions>): RecordStore => {
  const client = h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })
  const store = new RecordStore({ client, userId: 'u1', workspaceId: 'acme', schemas: testSchemas, tabs: false, ...options })
  h.keep(store)
  return store
}

const offlineRelay = (): TestRelay => {
  const relay = h.relay()
  relay.accepting = false
  return relay
}

/** Deletes a catalog entry straight from IndexedDB (a catalog write that never reached the disk). */
const dropCatalogEntry = (factory: IDBFactory, id: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const open = factory.open(catalogDatabaseName('u1', 'acme'))
    open.onerror = () => reject(open.error)
    open.onsuccess = () => {
      const db = open.result
      const tx = db.transaction('records', 'readwrite')
      tx.objectStore('records').delete(id)
      tx.oncomplete = () => {
        db.close()
        resolve()
      }
      tx.onerror = () => reject(tx.error)
    }
  })

test('a record whose catalog entry was lost is listed again, counts as pending, syncs, and stops a wipe', async () => {
  const factory = new IDBFactory()
  const first = newStore(offlineRelay(), { indexedDB: factory })
  const ticket = await first.create('ticket', { title: 'Offline only', status: 'open' }, { id: 'T-1' })
  const synced = await first.create('ticket', { title: 'Empty' }, { id: 'T-2' })
  await ticket.whenSaved()
  await synced.whenSaved()
  const pending = ticket.pending
  expect(pending).toBeGreaterThan(0)
  ticket.close()
  synced.close()
  await first.close()
  await dropCatalogEntry(factory, 'T-1')

  const relay = h.relay()
  const second = newStore(relay, { indexedDB: factory })
  await second.reconciled
  expect(
    second
      .list()
      .entries.map((e) => e.id)
      .sort(),
  ).toEqual(['T-1', 'T-2'])
  expect(second.list({ where: { id: 'T-1' } }).entries[0]).toMatchObject({ title: 'Offline only', pending, fields: { status: 'open' } })
  expect(
    second
      .unsynced()
      .map((r) => r.id)
      .sort(),
  ).toEqual(['T-1', 'T-2'])
  expect(second.pending).toBeGreaterThanOrEqual(pending)

  const refused = await second.signOut({ wipe: true })
  expect(refused).toMatchObject({ signedOut: false, reason: 'unsynced' })
  expect((await factory.databases()).map((d) => d.name)).toContain('concord/u1/acme/record/T-1')

  // The outbox duty opened it, so it syncs.
  for (let i = 0; i < 400 && !second.openIds.includes('T-1'); i++) await new Promise((resolve) => setTimeout(resolve, 5))
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(second.openIds).toContain('T-1')
  expect(second.unsynced()).toEqual([])
  expect(await second.signOut({ wipe: true })).toEqual({ signedOut: true, wiped: true })
})

test('sign-out checks record databases the catalog does not list even when they appear after start-up', async () => {
  const storage = new MemoryStorage()
  const store = newStore(offlineRelay(), { storage })
  await store.reconciled
  // Another tab (or a lost catalog write) left a record the catalog here does not list.
  const other = newStore(offlineRelay(), { storage, workspaceId: 'acme' })
  const ticket = await other.create('ticket', { title: 'Elsewhere' }, { id: 'T-9' })
  await ticket.whenSaved()
  ticket.close()
  await other.close()
  storage.catalog.delete('T-9')
  store.catalog.remove(['T-9'], { persist: false })

  const refused = await store.signOut({ wipe: true })
  expect(refused).toMatchObject({ signedOut: false, reason: 'unsynced', unsynced: [{ id: 'T-9', title: 'Elsewhere' }] })
  expect(storage.records.has('T-9')).toBe(true)
})

test('the catalog entry that turns a record pending is committed (strict) before the record write starts', async () => {
  const inner = new MemoryStorage()
  const log: string[] = []
  const storage: StorageBackend = {
    kind: 'logged',
    async openRecord(id) {
      const record = await inner.openRecord(id)
      return Object.assign(Object.create(record) as typeof record, {
        write: async (updates: readonly Uint8Array[], meta?: object) => {
          if (updates.length > 0) log.push(`record ${id}`)
          return record.write(updates, meta)
        },
      })
    },
    async openCatalog() {
      const catalog = await inner.openCatalog()
      return Object.assign(Object.create(catalog) as CatalogStorage, {
        put: async (entries: readonly { id: string; pending: number }[], options?: { strict?: boolean }) => {
          await catalog.put(entries as never)
          for (const entry of entries) log.push(`catalog ${entry.id} pending=${entry.pending > 0}${options?.strict ? ' strict' : ''}`)
        },
      })
    },
    wipe: () => inner.wipe(),
    listRecords: () => inner.listRecords(),
  }
  const relay = h.relay()
  const store = newStore(relay, { storage })
  await relay.settle()
  const ticket = await store.create('ticket', { title: 'Ordered' }, { id: 'T-1' })
  await ticket.whenSaved()
  const firstWrite = log.indexOf('record T-1')
  expect(firstWrite).toBeGreaterThan(0)
  expect(log.slice(0, firstWrite)).toContain('catalog T-1 pending=true strict')
  relay.ack()
  await relay.settle()
  expect(ticket.pending).toBe(0)
  await store.settled()
  log.length = 0
  ticket.set('status', 'done') // pending again
  await ticket.whenSaved()
  const nextWrite = log.indexOf('record T-1')
  expect(nextWrite).toBeGreaterThan(0)
  expect(log.slice(0, nextWrite)).toContain('catalog T-1 pending=true strict')
  ticket.close()
})
