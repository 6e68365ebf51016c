/**
 * Edits a page had not stored when it went (its storage transaction never
 * completed, as when a page reloads a few milliseconds after a keystroke)
 * are kept by `store.keepUnstored()` and taken over by the next store that
 * starts: stored, counted as pending under the fields they changed, sent,
 * and the stash goes once they are stored. Signing out with the device's
 * data removed, or discarding the record's unsynced changes, removes them
 * from the stash.
 */
import { afterEach, expect, test, vi } from 'vitest'
import { MemoryStorage, type KeyValueStore, type RecordStore, type RecordStoreOptions } from '../src/index.js'
import { GatedStorage, Harness } from './helpers.js'
import type { TestRelay } from './relayHarness.js'

const h = new Harness()
/** Lets the stalled writes of the gone pages complete, so their stores can close. */
const releases: Array<() => void> = []
afterEach(async () => {
  for (const release of releases.splice(0)) release()
  await h.close()
})

class MapStore implements KeyValueStore {
  readonly items = new Map<string, string>()
  getItem(key: string): string | null {
    return this.items.get(key) ?? null
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value)
  }
  removeItem(key: string): void {
    this.items.delete(key)
  }
}

const STASH_KEY = 'concord/u1/acme/unsaved'

const setUp = (): {
  relay: ReturnType<Harness['relay']>
  kv: MapStore
  newStore: (options: Partial<RecordStoreOptions>) => RecordStore
} => {
  const relay = h.relay({ autoAck: true })
  const kv = new MapStore()
  const newStore = (options: Partial<RecordStoreOptions>): RecordStore =>
    h.store({ client: h.client(relay), unsavedRescue: kv, ...options })
  return { relay, kv, newStore }
}

/**
 * A store whose page is about to go: the ticket is stored and on the relay, then the page is
 * offline and its record writes stop completing (as when the page goes mid-transaction).
 */
const pageAboutToGo = async (newStore: (options: Partial<RecordStoreOptions>) => RecordStore, relay: TestRelay, disk: MemoryStorage) => {
  const gated = new GatedStorage(disk)
  const network = h.gatedClient(relay, null, 'ada')
  const store = newStore({ storage: gated, client: network.client })
  const ticket = await store.create('ticket', { title: 'Draft' }, { id: 'T-1' })
  await ticket.whenSaved()
  await store.flush()
  network.offline()
  gated.hang = new Promise<void>((resolve) => releases.push(resolve))
  return { store, ticket }
}

/** The next start of the app on this device, offline until `online()`. */
const nextStart = (newStore: (options: Partial<RecordStoreOptions>) => RecordStore, relay: TestRelay, disk: MemoryStorage) => {
  const network = h.gatedClient(relay, null, 'ada')
  network.offline()
  return { store: newStore({ storage: disk, client: network.client }), online: () => network.online() }
}

test('edits whose storage write never completed are taken over at the next start: stored, pending, sent', async () => {
  const { relay, kv, newStore } = setUp()
  const disk = new MemoryStorage()
  const { store: before, ticket } = await pageAboutToGo(newStore, relay, disk)
  ticket.set('title', 'Typed just before the reload')
  expect(ticket.isSaved).toBe(false)
  expect(before.keepUnstored()).toBe(true)
  expect(kv.getItem(STASH_KEY)).not.toBe(null)

  const { store: after, online } = nextStart(newStore, relay, disk)
  await after.ready
  expect(after.unsynced()).toEqual([
    expect.objectContaining({ id: 'T-1', title: 'Typed just before the reload', pendingFields: ['title'] }),
  ])
  const reopened = await after.open('T-1')
  expect(reopened.get('title')).toBe('Typed just before the reload')
  await reopened.whenSaved()
  await vi.waitFor(() => expect(kv.getItem(STASH_KEY)).toBe(null))
  online()
  await after.flush()
  expect(after.unsynced()).toEqual([])
  expect(relay.doc('acme/T-1').getText('text:title').toString()).toBe('Typed just before the reload')
  reopened.close()
})

test('a record created just before the page went is listed and stored at the next start', async () => {
  const { relay, kv, newStore } = setUp()
  const disk = new MemoryStorage()
  const { store: before } = await pageAboutToGo(newStore, relay, disk)
  const created = await before.create('ticket', { title: 'Made in the last moment' }, { id: 'T-2' })
  expect(created.isSaved).toBe(false)
  before.keepUnstored()

  const { store: after, online } = nextStart(newStore, relay, disk)
  await after.ready
  expect(after.list({ type: 'ticket' }).entries.map((e) => e.title)).toContain('Made in the last moment')
  expect(after.unsynced().map((r) => r.id)).toContain('T-2')
  online()
  await after.flush()
  await vi.waitFor(() => expect(kv.getItem(STASH_KEY)).toBe(null))
})

test('signing out with the data removed, or discarding the unsynced changes, removes them from the stash', async () => {
  const { relay, kv, newStore } = setUp()
  const { store, ticket } = await pageAboutToGo(newStore, relay, new MemoryStorage())
  ticket.set('title', 'Not wanted')
  store.keepUnstored()
  expect(kv.getItem(STASH_KEY)).toContain('T-1')
  await store.discardUnsynced('T-1').catch(() => undefined) // open here: refused, the stash is cleaned anyway
  expect(kv.getItem(STASH_KEY)).toBe(null)

  ticket.set('title', 'Not wanted either')
  store.keepUnstored()
  expect(kv.getItem(STASH_KEY)).not.toBe(null)
  ticket.close()
  await store.signOut({ wipe: true, discardUnsynced: true })
  expect(kv.getItem(STASH_KEY)).toBe(null)
})
