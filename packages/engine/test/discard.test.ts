/**
 * `store.discardUnsynced(id)` against the real relay in-process: refused offline and
 * while handles are open; a rejected change goes back to the relay's value
 * (also in IndexedDB, after a reload); a record the relay never stored is
 * removed from this device; another tab that has the record open goes back
 * to the relay's value too and never sends the discarded change again.
 */
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test } from 'vitest'
import {
  DiscardError,
  ErrorCode,
  IndexedDbStorage,
  MemoryStorage,
  RecordStore,
  type RecordStoreOptions,
  type SyncClient,
  type SyncError,
} from '../src/index.js'
import type { TestRelay } from './relayHarness.js'
import { GatedStorage, Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

const newStore = (client: SyncClient, options: Partial<RecordStoreOptions> = {}): RecordStore => {
  const store = new RecordStore({
    client,
    userId: 'u1',
    workspaceId: 'acme',
    schemas: testSchemas,
    tabs: false,
    storage: new MemoryStorage(),
    ...options,
  })
  h.keep(store)
  return store
}

const online = async (): Promise<{ relay: TestRelay; client: SyncClient }> => {
  const relay = h.relay()
  const client = h.client(relay)
  await relay.settle()
  return { relay, client }
}

/** Resolves with the first `sync-error` of the store. */
const syncError = (store: RecordStore): Promise<SyncError> =>
  new Promise((resolve) => {
    const listener = (error: SyncError): void => {
      store.off('sync-error', listener)
      resolve(error)
    }
    store.on('sync-error', listener)
  })

/** Resolves when `read()` satisfies `predicate`, re-checking on every `event` of `emitter`. */
const until = <T>(
  emitter: { on(event: string, f: (...args: never[]) => void): void; off(event: string, f: (...args: never[]) => void): void },
  event: string,
  read: () => T,
  predicate: (value: T) => boolean,
): Promise<T> =>
  new Promise((resolve) => {
    if (predicate(read())) return resolve(read())
    const listener = (): void => {
      if (!predicate(read())) return
      emitter.off(event, listener)
      resolve(read())
    }
    emitter.on(event, listener)
  })

/** Resolves when `client` has lost its connection and is online again. */
const reconnected = (client: SyncClient): Promise<void> =>
  new Promise((resolve) => {
    let dropped = false
    const listener = (status: SyncClient['status']): void => {
      if (status !== 'online') dropped = true
      else if (dropped) {
        client.off('status', listener)
        resolve()
      }
    }
    client.on('status', listener)
  })

/** A ticket T-1 the relay stored with title "Stored" and status open. */
const storedTicket = async (relay: TestRelay, store: RecordStore): Promise<void> => {
  const ticket = await store.create('ticket', { title: 'Stored', status: 'open' }, { id: 'T-1' })
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(ticket.pending).toBe(0)
  ticket.close()
}

/**
 * Two tabs of the same user (one IndexedDB, one BroadcastChannel, a socket
 * each) with ticket T-1 stored on the relay, which now refuses to store
 * changes of it; tab B has the ticket open. `storageB`: tab B's storage
 * (default: IndexedDB on the shared factory).
 */
const twoTabsRelayRefusing = async (storageB?: (factory: IDBFactory) => RecordStoreOptions['storage']) => {
  const relay = h.relay()
  const factory = new IDBFactory()
  const tabA = newStore(h.client(relay), { storage: undefined, indexedDB: factory, tabs: true })
  const tabB = newStore(h.client(relay), { storage: storageB?.(factory), indexedDB: factory, tabs: true })
  await Promise.all([tabA.ready, tabB.ready])
  await relay.settle()
  await storedTicket(relay, tabA)
  relay.rejectWrites.set('acme/T-1', { code: ErrorCode.storageUnavailable, reason: 'disk full' })
  const b = await tabB.open('T-1')
  await relay.settle()
  return { relay, factory, tabA, tabB, b }
}

/** Tab A's discard of T-1 fails (cancelled before it starts). */
const failedDiscard = async (tabA: RecordStore): Promise<void> => {
  const aborted = new AbortController()
  aborted.abort(new Error('user cancelled'))
  await expect(tabA.discardUnsynced('T-1', { signal: aborted.signal })).rejects.toThrow()
}

/** The relay stores T-1's changes again; every client reconnects, and what it sends is acked. */
const relayAcceptsAgain = async (relay: TestRelay): Promise<void> => {
  relay.rejectWrites.delete('acme/T-1')
  const back = Promise.all(h.clients.map(reconnected))
  relay.dropAll()
  await back
  await relay.settle()
  relay.ack()
  await relay.settle()
}

describe('discardUnsynced', () => {
  test('refused while offline: the relay state is unknown, nothing changes', async () => {
    const relay = h.relay()
    relay.accepting = false
    const client = h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })
    const store = newStore(client)
    const ticket = await store.create('ticket', { title: 'Draft' }, { id: 'T-1' })
    ticket.close()
    const refused = await store.discardUnsynced('T-1').catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(DiscardError)
    expect(refused).toMatchObject({ reason: 'offline', recordId: 'T-1' })
    expect((refused as Error).message).toMatch(/offline/)
    expect(store.unsynced()).toMatchObject([{ id: 'T-1' }])
    expect((await store.read('T-1')).fields.title).toBe('Draft')
  })

  test('refused while a handle of the record is open', async () => {
    const { relay, client } = await online()
    const store = newStore(client)
    await storedTicket(relay, store)
    const ticket = await store.open('T-1')
    ticket.set('status', 'done')
    await expect(store.discardUnsynced('T-1')).rejects.toMatchObject({ reason: 'open' })
    expect(ticket.get('status')).toBe('done')
    ticket.close()
  })

  test('a change the relay rejected goes back to the relay value; pending 0, also after a reload', async () => {
    const { relay, client } = await online()
    const factory = new IDBFactory()
    const store = newStore(client, { storage: undefined, indexedDB: factory })
    await storedTicket(relay, store)
    relay.rejectWrites.set('acme/T-1', { code: ErrorCode.permissionDenied, reason: 'read-only' })
    const rejected = syncError(store)
    const ticket = await store.open('T-1')
    ticket.set('status', 'done')
    ticket.text('title').insert(6, ' (mine)')
    await relay.settle()
    expect((await rejected).code).toBe(ErrorCode.permissionDenied)
    await ticket.whenSaved()
    ticket.close()
    expect(store.pending).toBeGreaterThan(0)

    const result = await store.discardUnsynced('T-1')
    expect(result).toMatchObject({ id: 'T-1', removed: false })
    expect([...result.discarded].sort()).toEqual(['status', 'title'])
    expect(store.pending).toBe(0)
    expect(store.unsynced()).toEqual([])
    expect(store.list({ type: 'ticket' }).entries).toMatchObject([{ id: 'T-1', title: 'Stored', pending: 0, fields: { status: 'open' } }])
    const snapshot = await store.read('T-1')
    expect(snapshot.fields).toMatchObject({ title: 'Stored', status: 'open' })

    // The record's database holds the relay's state: a reload (new store, same IndexedDB) agrees.
    await store.close()
    relay.rejectWrites.delete('acme/T-1')
    const again = newStore(client, { storage: undefined, indexedDB: factory })
    await again.ready
    expect(again.pending).toBe(0)
    expect(again.unsynced()).toEqual([])
    const reopened = await again.open('T-1')
    expect(reopened.get('title')).toBe('Stored')
    expect(reopened.get('status')).toBe('open')
    expect(reopened.pending).toBe(0)
    // Editing works again now that the relay accepts writes.
    reopened.set('priority', 'high')
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(reopened.pending).toBe(0)
    expect(relay.doc('acme/T-1').getMap('fields').get('priority')).toBe('high')
    reopened.close()
  })

  test('a record the relay never stored is removed from this device', async () => {
    const { relay, client } = await online()
    const store = newStore(client)
    relay.rejectWrites.set('acme/T-2', { code: ErrorCode.permissionDenied, reason: 'read-only' })
    const rejected = syncError(store)
    const ticket = await store.create('ticket', { title: 'Never stored' }, { id: 'T-2' })
    await relay.settle()
    await rejected
    ticket.close()
    expect(store.list({ type: 'ticket' }).total).toBe(1)
    const result = await store.discardUnsynced('T-2')
    expect(result).toMatchObject({ id: 'T-2', removed: true, entry: null })
    expect(result.discarded).toContain('$created')
    expect(store.list({ type: 'ticket' }).total).toBe(0)
    expect(store.pending).toBe(0)
  })

  test('another tab with the record open goes back to the relay value and never sends the discarded change', async () => {
    // Tab B changes the ticket; the relay keeps refusing to store it.
    const { relay, tabA, tabB, b } = await twoTabsRelayRefusing()
    b.set('status', 'done')
    await relay.settle()
    await b.whenSaved()
    expect(b.pending).toBeGreaterThan(0)
    await until(
      tabA,
      'pending',
      () => tabA.pending,
      (n) => n > 0,
    )

    const reloaded = new Promise<void>((resolve) => b.on('reloaded', resolve))
    const announced = new Promise<string>((resolve) => tabB.on('discarded', resolve))
    const result = await tabA.discardUnsynced('T-1')
    expect(result).toMatchObject({ id: 'T-1', removed: false, discarded: ['status'] })
    // Bounded, so that a tab that never reloads fails on the values below, not on the test timeout.
    await Promise.race([reloaded, new Promise((resolve) => setTimeout(resolve, 2_000))])
    expect(b.isClosed).toBe(false)
    expect(b.get('status')).toBe('open')
    expect(b.pending).toBe(0)
    expect(b.pendingFields).toEqual([])
    await until(
      tabB,
      'pending',
      () => tabB.pending,
      (n) => n === 0,
    )
    expect(tabA.pending).toBe(0)
    expect(tabB.unsynced()).toEqual([])
    expect(tabA.unsynced()).toEqual([])
    expect(await announced).toBe('T-1')

    // The relay accepts writes again; reconnects (each tab's catch-up, the duty's resend) do not bring the change back.
    relay.rejectWrites.delete('acme/T-1')
    b.sync.resendPending()
    const back = Promise.all(h.clients.map(reconnected))
    relay.dropAll()
    await back
    await relay.settle()
    await until(
      b.sync,
      'synced',
      () => b.sync.isSynced,
      (synced) => synced,
    )
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(relay.doc('acme/T-1').getMap('fields').get('status')).toBe('open')
    expect([tabA.pending, tabB.pending, b.pending]).toEqual([0, 0, 0])

    // The handle keeps working on the reloaded doc: a new change syncs.
    b.set('priority', 'high')
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(b.pending).toBe(0)
    expect(relay.doc('acme/T-1').getMap('fields').get('priority')).toBe('high')
    expect(relay.doc('acme/T-1').getMap('fields').get('status')).toBe('open')
    await b.whenSaved() // tab B's change is in the shared IndexedDB before tab A opens the record from it
    expect((await tabA.read('T-1')).fields).toMatchObject({ status: 'open', priority: 'high' })
    b.close()
  })

  test('a discard that fails leaves the other tab with its change, which still syncs', async () => {
    const { relay, tabA, b } = await twoTabsRelayRefusing()
    b.set('status', 'done')
    await relay.settle()
    await b.whenSaved()
    await until(
      tabA,
      'pending',
      () => tabA.pending,
      (n) => n > 0,
    )

    const reloaded = new Promise<void>((resolve) => b.on('reloaded', resolve))
    await failedDiscard(tabA)
    await reloaded
    expect(b.get('status')).toBe('done')
    expect(b.pendingFields).toEqual(['status'])

    await relayAcceptsAgain(relay)
    await until(
      b,
      'pending',
      () => b.pending,
      (n) => n === 0,
    )
    expect(relay.doc('acme/T-1').getMap('fields').get('status')).toBe('done')
    await until(
      tabA,
      'pending',
      () => tabA.pending,
      (n) => n === 0,
    )
    b.close()
  })

  test("a discard that fails keeps the other tab's change that had not reached storage yet: stored, and synced", async () => {
    let storageB!: GatedStorage
    const { relay, factory, tabA, b } = await twoTabsRelayRefusing(
      (factory) =>
        (storageB = new GatedStorage(new IndexedDbStorage({ userId: 'u1', workspaceId: 'acme', indexedDB: factory }), 'indexeddb')),
    )
    let release!: () => void
    storageB.hang = new Promise((resolve) => (release = resolve)) // B's write of the change waits
    b.set('status', 'done')
    await relay.settle()
    await until(
      tabA,
      'pending',
      () => tabA.pending,
      (n) => n > 0,
    )
    expect(b.isSaved).toBe(false)

    const reloaded = new Promise<void>((resolve) => b.on('reloaded', resolve))
    await failedDiscard(tabA)
    await reloaded
    storageB.hang = null
    release()
    expect(b.get('status')).toBe('done')
    expect(b.pendingFields).toEqual(['status'])
    await b.whenSaved()
    // what B stored is what a fresh reader finds
    const reader = newStore(h.client(relay), { storage: undefined, indexedDB: factory, tabs: false })
    expect((await reader.read('T-1')).fields.status).toBe('done')

    await relayAcceptsAgain(relay)
    await until(
      b,
      'pending',
      () => b.pending,
      (n) => n === 0,
    )
    expect(relay.doc('acme/T-1').getMap('fields').get('status')).toBe('done')
    b.close()
  })
})
