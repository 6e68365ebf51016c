/**
 * The store reads how much of the browser's room for the site is used, so
 * the app can warn before saving fails: a first reading once ready, a new
 * one after changes were stored (at most every `storageCheckMs`), one at
 * once when a write was refused for the quota; it tells of a reading only
 * when it matters (`low` or `persisted` changed, the usage moved by 1 % of
 * the quota). Without `navigator.storage` (Node) there is no reading, and a
 * store in memory has none either.
 */
import { afterEach, expect, test } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import {
  MemoryStorage,
  StorageError,
  type RecordStore,
  type RecordStoreOptions,
  type SpaceEstimate,
  type StorageSpace,
} from '../src/index.js'
import { StorageSpaceWatch } from '../src/records/StorageSpace.js'
import { GatedStorage, Harness } from './helpers.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

const MB = 1024 * 1024

/** Memory storage whose browser says what `space` holds (null: says nothing). */
class MeasuredStorage extends MemoryStorage {
  space: SpaceEstimate | null = { usage: 10 * MB, quota: 100 * MB, persisted: false }
  estimates = 0
  kept = false

  async estimate(): Promise<SpaceEstimate | null> {
    this.estimates++
    return this.space === null ? null : { ...this.space, persisted: this.kept }
  }

  async persist(): Promise<boolean> {
    this.kept = true
    return true
  }
}

const newStore = (options: Partial<RecordStoreOptions>): RecordStore =>
  h.store({ client: h.client(h.relay({ autoAck: true })), ...options })

/** The next `storage-space` event of `store`. */
const nextSpace = (store: RecordStore): Promise<StorageSpace> =>
  new Promise((resolve) => store.once('storage-space', (space) => resolve(space)))

test('a first reading once ready; the space turns low as stored changes reach the warning share, and back', async () => {
  const storage = new MeasuredStorage()
  const store = newStore({ storage, storageCheckMs: 0 })
  const first = nextSpace(store)
  await store.ready
  expect(await first).toEqual({ usage: 10 * MB, quota: 100 * MB, persisted: false, low: false })
  expect(store.storageSpace).toEqual(await first)

  // The disk fills up: the next stored change reads it.
  storage.space = { usage: 81 * MB, quota: 100 * MB, persisted: false }
  const low = nextSpace(store)
  const ticket = await store.create('ticket', { title: 'Disk nearly full' })
  await ticket.whenSaved()
  expect(await low).toMatchObject({ usage: 81 * MB, low: true })
  expect(store.storageSpace?.low).toBe(true)

  // Room again (someone cleared space): the next change reads it.
  storage.space = { usage: 40 * MB, quota: 100 * MB, persisted: false }
  const roomy = nextSpace(store)
  ticket.set('status', 'done')
  expect(await roomy).toMatchObject({ usage: 40 * MB, low: false })
  ticket.close()
})

test('a warning share of the caller’s choosing; readings that move less than 1 % of the quota are not told of again', async () => {
  const storage = new MeasuredStorage()
  storage.space = { usage: 50 * MB, quota: 100 * MB, persisted: false }
  const store = newStore({ storage, storageCheckMs: 0, storageWarnAt: 0.5 })
  const told: StorageSpace[] = []
  store.on('storage-space', (space) => told.push(space))
  await store.ready
  expect(await store.checkStorageSpace()).toMatchObject({ low: true })
  storage.space = { usage: 50.5 * MB, quota: 100 * MB, persisted: false }
  const before = storage.estimates
  expect(await store.checkStorageSpace()).toMatchObject({ usage: 50.5 * MB })
  expect(store.storageSpace).toMatchObject({ usage: 50 * MB }) // the reading told of stands
  expect(storage.estimates).toBe(before + 1)
  expect(told).toHaveLength(1)
  expect(() => newStore({ storage: new MeasuredStorage(), storageWarnAt: 80 })).toThrow(/share of the quota/)
})

test('a write refused for the quota reads the space at once', async () => {
  const inner = new MeasuredStorage()
  const storage = Object.assign(new GatedStorage(inner), {
    estimate: () => inner.estimate(),
  })
  const store = newStore({ storage, storageCheckMs: 3_600_000 })
  await store.ready
  await expect.poll(() => store.storageSpace).not.toBeNull() // the first reading
  const ticket = await store.create('ticket', { title: 'Quota' })
  await ticket.whenSaved()
  inner.space = { usage: 100 * MB, quota: 100 * MB, persisted: false }
  const full = nextSpace(store)
  storage.failWith = new StorageError('quota', 'QuotaExceededError: the quota has been exceeded')
  ticket.set('status', 'done')
  // Not the hour of storageCheckMs: the refusal itself asks.
  expect(await full).toMatchObject({ usage: 100 * MB, low: true })
  storage.failWith = null
  expect((await store.retryStorage()).ok).toBe(true)
  ticket.close()
})

test('asking the browser to keep the data: the reading says it is kept', async () => {
  const storage = new MeasuredStorage()
  const store = newStore({ storage })
  await store.ready
  expect((await store.checkStorageSpace())?.persisted).toBe(false)
  expect(await store.requestPersistence()).toBe(true)
  expect(store.storageSpace?.persisted).toBe(true)
})

test('no reading where the browser says nothing (Node’s IndexedDB) or the store runs in memory', async () => {
  const idb = newStore({ indexedDB: new IDBFactory() })
  await idb.ready
  expect(idb.persistent).toBe(true)
  expect(await idb.checkStorageSpace()).toBeNull()
  expect(await idb.requestPersistence()).toBe(false)
  const memory = newStore({ indexedDB: null })
  await memory.ready
  expect(memory.persistent).toBe(false)
  expect(await memory.checkStorageSpace()).toBeNull()
  expect(memory.storageSpace).toBeNull()
})

test('the watch: a failing estimate reads as nothing, a closed watch reads no more', async () => {
  let fail = true
  const told: StorageSpace[] = []
  const watch = new StorageSpaceWatch(
    async () => {
      if (fail) throw new Error('SecurityError')
      return { usage: 1, quota: 10, persisted: null }
    },
    { warnAt: 0.8, intervalMs: 0, changed: (space) => told.push(space) },
  )
  expect(await watch.check()).toBeNull()
  fail = false
  expect(await watch.check()).toEqual({ usage: 1, quota: 10, persisted: null, low: false })
  watch.close()
  expect(await watch.check()).toEqual({ usage: 1, quota: 10, persisted: null, low: false })
  expect(told).toHaveLength(1)
  expect(() => new StorageSpaceWatch(async () => null, { warnAt: 0, intervalMs: 0, changed: () => undefined })).toThrow()
})
