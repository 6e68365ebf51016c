/**
 * `store.discardUnsynced(id)` against the FakeRelay: refused offline and
 * while handles are open; a rejected change goes back to the relay's value
 * (also in IndexedDB, after a reload); a record the relay never stored is
 * removed from this device.
 */
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test } from 'vitest'
import {
  DiscardError,
  ErrorCode,
  MemoryStorage,
  RecordStore,
  type RecordStoreOptions,
  type SyncClient,
  type SyncError,
} from '../src/index.js'
import type { FakeRelay } from './fakeRelay.js'
import { Harness } from './helpers.js'

const h = new Harness()
const stores: RecordStore[] = []
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
  h.cleanup()
})

const newStore = (client: SyncClient, options: Partial<RecordStoreOptions> = {}): RecordStore => {
  const store = new RecordStore({ client, userId: 'u1', workspaceId: 'acme', tabs: false, storage: new MemoryStorage(), ...options })
  stores.push(store)
  return store
}

const online = async (): Promise<{ relay: FakeRelay; client: SyncClient }> => {
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

/** A ticket T-1 the relay stored with title "Stored" and status open. */
const storedTicket = async (relay: FakeRelay, store: RecordStore): Promise<void> => {
  const ticket = await store.create('ticket', { title: 'Stored', status: 'open' }, { id: 'T-1' })
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(ticket.pending).toBe(0)
  ticket.close()
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
})
