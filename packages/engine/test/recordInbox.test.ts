/**
 * The record inbox: records a pull brings to a device are kept together in
 * one database until first opened, then moved into their own (y-indexeddb
 * format) databases. The record store against the in-process relay with
 * fake-indexeddb, and the inbox adapter on its own for the races (two tabs
 * moving one record, a pull merging during a move, a crash between the
 * move's write and its removal).
 */
import { IDBDatabase, IDBFactory, IDBKeyRange as FakeKeyRange, IDBObjectStore } from 'fake-indexeddb'
import { afterEach, describe, expect, test, vi } from 'vitest'
import * as Y from 'yjs'
import { IndexedDbStorage, MemoryStorage, RecordStore, type RecordStoreOptions, type RecordStorage, type SyncClient } from '../src/index.js'
import { inboxDatabaseName, recordDatabaseName } from '../src/internal.js'
import { IdbRecordInbox, INBOX_STORE } from '../src/persistence/IdbRecordInbox.js'
import type { TestRelay } from './relayHarness.js'
import { Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  vi.restoreAllMocks()
  await h.close()
})

const newStore = (client: SyncClient, options: Partial<RecordStoreOptions> = {}): RecordStore => {
  const store = new RecordStore({ client, userId: 'u1', workspaceId: 'acme', schemas: testSchemas, tabs: false, ...options })
  h.keep(store)
  return store
}

/** A relay holding `count` tickets T-0… written by another device. */
const relayWithTickets = async (count: number): Promise<{ relay: TestRelay; source: RecordStore }> => {
  const relay = h.relay({ autoAck: true })
  const source = newStore(h.client(relay), { storage: new MemoryStorage() })
  for (let i = 0; i < count; i++) (await source.create('ticket', { title: `Ticket ${i}`, status: 'open' }, { id: `T-${i}` })).close()
  await source.flush()
  return { relay, source }
}

/** A client of a relay that refuses every connection (the device is offline). */
const offlineClient = (): SyncClient => {
  const relay = h.relay()
  relay.accepting = false
  return h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })
}

/** Ids of the records that have a database of their own. */
const recordDatabases = async (factory: IDBFactory): Promise<string[]> => {
  const prefix = recordDatabaseName('u1', 'acme', '')
  return (await factory.databases()).flatMap((d) => (d.name?.startsWith(prefix) ? [d.name.slice(prefix.length)] : [])).sort()
}

/** The inbox of user u1 in workspace acme, read by a connection of its own. */
const inboxOf = (factory: IDBFactory): IdbRecordInbox => new IdbRecordInbox(factory, inboxDatabaseName('u1', 'acme'))

/** The text of `field` in a doc made of `updates`. */
const textIn = (updates: Uint8Array[], field: string): string => {
  const doc = new Y.Doc()
  for (const update of updates) Y.applyUpdate(doc, update)
  return doc.getText(`text:${field}`).toString()
}

/** An update that sets the text `t` of a doc (a new doc, or `doc`). */
const textUpdate = (text: string, doc = new Y.Doc()): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

describe('pulled records in the inbox', () => {
  test('a pull stores new records in the inbox, not a database each; offline after a reload they open, and opening moves them out', async () => {
    const { relay } = await relayWithTickets(5)
    const factory = new IDBFactory()
    const fresh = newStore(h.client(relay), { indexedDB: factory })
    expect(await fresh.pull()).toMatchObject({ listed: 5, changed: 5, failed: [] })
    expect(fresh.list({ type: 'ticket', limit: 10 }).entries.every((entry) => entry.local)).toBe(true)
    expect(await recordDatabases(factory)).toEqual([])
    const inbox = inboxOf(factory)
    expect((await inbox.ids()).sort()).toEqual(['T-0', 'T-1', 'T-2', 'T-3', 'T-4'])
    await fresh.close()

    const reloaded = newStore(offlineClient(), { indexedDB: factory })
    await reloaded.ready
    expect(reloaded.list({ type: 'ticket', limit: 10 }).total).toBe(5)
    const ticket = await reloaded.open('T-2')
    expect(ticket.read().fields).toMatchObject({ title: 'Ticket 2', status: 'open' })
    expect(ticket.pending).toBe(0)
    expect((await inbox.ids()).sort()).toEqual(['T-0', 'T-1', 'T-3', 'T-4'])
    expect(await recordDatabases(factory)).toEqual(['T-2'])
    // The record's own database holds it in y-indexeddb's format, with the acked state the pull kept.
    const own = await new IndexedDbStorage({ userId: 'u1', workspaceId: 'acme', indexedDB: factory }).openRecord('T-2')
    const stored = await own.load()
    own.close()
    expect(textIn(stored.updates, 'title')).toBe('Ticket 2')
    expect(stored.meta.acked).toBeDefined()
    inbox.close()
  })

  test('a change pulled while the record is still only in the inbox is merged into its entry', async () => {
    const { relay, source } = await relayWithTickets(2)
    const factory = new IDBFactory()
    const fresh = newStore(h.client(relay), { indexedDB: factory })
    await fresh.pull()
    await source.update('T-1', { title: 'Ticket one', status: 'done' })
    await source.flush()
    expect(await fresh.pull()).toMatchObject({ fetched: 1, changed: 1, unchanged: 1 })
    expect(fresh.list({ where: { status: 'done' } }).entries.map((e) => [e.id, e.title, e.local])).toEqual([['T-1', 'Ticket one', true]])
    expect(await recordDatabases(factory)).toEqual([])
    const inbox = inboxOf(factory)
    const entry = await inbox.get('T-1')
    expect(entry?.updates).toHaveLength(1) // one merged update
    expect(textIn(entry!.updates, 'title')).toBe('Ticket one')
    inbox.close()
    await fresh.close()

    const reloaded = newStore(offlineClient(), { indexedDB: factory })
    expect((await reloaded.open('T-1')).read().fields).toMatchObject({ title: 'Ticket one', status: 'done' })
  })

  test('a record opened once is pulled into its own database, not the inbox', async () => {
    const { relay, source } = await relayWithTickets(2)
    const factory = new IDBFactory()
    const fresh = newStore(h.client(relay), { indexedDB: factory })
    await fresh.pull()
    ;(await fresh.open('T-0')).close()
    await fresh.close()
    await source.update('T-0', { title: 'Changed elsewhere' })
    await source.flush()
    const later = newStore(h.client(relay), { indexedDB: factory })
    expect(await later.pull()).toMatchObject({ fetched: 1, changed: 1 })
    const inbox = inboxOf(factory)
    expect(await inbox.ids()).toEqual(['T-1'])
    const own = await new IndexedDbStorage({ userId: 'u1', workspaceId: 'acme', indexedDB: factory }).openRecord('T-0')
    expect(textIn((await own.load()).updates, 'title')).toBe('Changed elsewhere')
    own.close()
    inbox.close()
  })

  test('sign-out with wipe deletes the inbox too', async () => {
    const { relay } = await relayWithTickets(3)
    const factory = new IDBFactory()
    const fresh = newStore(h.client(relay), { indexedDB: factory })
    await fresh.pull()
    ;(await fresh.open('T-0')).close()
    const names = (await factory.databases()).map((d) => d.name)
    expect(names).toContain(inboxDatabaseName('u1', 'acme'))
    expect(await fresh.signOut({ wipe: true })).toEqual({ signedOut: true, wiped: true })
    expect(await factory.databases()).toEqual([])
  })
})

describe('IdbRecordInbox', () => {
  const storageOf = (factory: IDBFactory): IndexedDbStorage =>
    new IndexedDbStorage({ userId: 'u1', workspaceId: 'acme', indexedDB: factory })

  test('puts made at once share transactions, and each resolves once committed', async () => {
    const factory = new IDBFactory()
    const inbox = inboxOf(factory)
    await inbox.put('warm-up', textUpdate('x'), {}) // the database exists: only the puts' transactions are counted
    const transaction = vi.spyOn(IDBDatabase.prototype, 'transaction')
    await Promise.all(Array.from({ length: 100 }, (_, i) => inbox.put(`R-${i}`, textUpdate(`record ${i}`), {})))
    const writes = transaction.mock.calls.filter(([, mode]) => mode === 'readwrite')
    expect(writes.length).toBeLessThanOrEqual(2)
    expect(writes.every(([stores]) => [stores].flat().join() === INBOX_STORE)).toBe(true)
    expect((await inbox.ids()).length).toBe(101)
    inbox.close()
  })

  // Browsers have IDBKeyRange as a global, Node has none: the inbox reads which puts of a batch have an entry in one
  // key-range read when it can, and reads each put's entry without it. Both ways here.
  describe.each([
    ['with IDBKeyRange (as in a browser)', true],
    ['without IDBKeyRange', false],
  ])('a batch of puts, %s', (_, keyRange) => {
    test('puts of records with and without an entry, and several puts of one record in one batch, all merge', async () => {
      if (keyRange) vi.stubGlobal('IDBKeyRange', FakeKeyRange)
      try {
        const factory = new IDBFactory()
        const inbox = inboxOf(factory)
        const docs = Array.from({ length: 6 }, () => new Y.Doc())
        await Promise.all([inbox.put('R-1', textUpdate('one', docs[1]), {}), inbox.put('R-3', textUpdate('three', docs[3]), {})])
        const gets = vi.spyOn(IDBObjectStore.prototype, 'get')
        const ada = { clientId: 1, userId: 'ada', name: 'Ada' }
        await Promise.all([
          ...[0, 1, 2, 3, 4, 5].map((i) => inbox.put(`R-${i}`, textUpdate(` more ${i}`, docs[i]), { authors: [ada] })),
          inbox.put('R-4', textUpdate(' and again', docs[4]), {}), // the same record twice in one batch
        ])
        for (const [i, text] of ['more 0', 'one more 1', 'more 2', 'three more 3', 'more 4 and again', 'more 5'].entries()) {
          const entry = await inbox.get(`R-${i}`)
          const merged = new Y.Doc()
          for (const update of entry!.updates) Y.applyUpdate(merged, update)
          expect(merged.getText('t').toString().trim()).toBe(text)
          expect(entry!.meta.authors).toEqual([ada])
        }
        // only the records that had an entry were read before writing (with the key range), else every one
        expect(
          gets.mock.calls
            .slice(0, keyRange ? 2 : 6)
            .map(([key]) => String(key))
            .sort(),
        ).toEqual(keyRange ? ['R-1', 'R-3'] : ['R-0', 'R-1', 'R-2', 'R-3', 'R-4', 'R-5'])
        inbox.close()
      } finally {
        vi.unstubAllGlobals()
      }
    })
  })

  test('an update that is a view into a larger message is stored as its own bytes, not with the whole buffer', async () => {
    const factory = new IDBFactory()
    const inbox = inboxOf(factory)
    const update = textUpdate('hello')
    const acked = Y.encodeStateVectorFromUpdate(update)
    // as read out of a fetched-many message carrying many records
    const message = new Uint8Array(256 * 1024)
    message.set(update, 1000)
    message.set(acked, 2000)
    await inbox.put('R-1', message.subarray(1000, 1000 + update.byteLength), { acked: message.subarray(2000, 2000 + acked.byteLength) })
    const entry = await inbox.get('R-1')
    expect(entry!.updates[0]!.buffer.byteLength).toBe(update.byteLength)
    expect(entry!.meta.acked!.buffer.byteLength).toBe(acked.byteLength)
    const storage = await new IndexedDbStorage({ userId: 'u1', workspaceId: 'acme', indexedDB: factory }).openRecord('R-2')
    await storage.write([message.subarray(1000, 1000 + update.byteLength)], { acked: message.subarray(2000, 2000 + acked.byteLength) })
    const stored = await storage.load()
    expect(stored.updates[0]!.buffer.byteLength).toBe(update.byteLength)
    expect(stored.meta.acked!.buffer.byteLength).toBe(acked.byteLength)
    storage.close()
    inbox.close()
  })

  test('puts to one entry merge: state vectors by their maximum, authors by client id', async () => {
    const factory = new IDBFactory()
    const inbox = inboxOf(factory)
    const doc = new Y.Doc()
    const first = textUpdate('Hello', doc)
    const second = textUpdate(', world', doc)
    const ada = { clientId: 1, userId: 'ada', name: 'Ada' }
    const bob = { clientId: 2, userId: 'bob', name: 'Bob' }
    await inbox.put('R-1', first, { acked: Y.encodeStateVectorFromUpdate(first), authors: [ada] })
    // Another tab's put of the second part with an older acked state does not lower it; authors add up.
    await inbox.put('R-1', second, { acked: Y.encodeStateVectorFromUpdate(first), authors: [bob] })
    await inbox.put('R-1', second, { acked: Y.encodeStateVector(doc) })
    const entry = await inbox.get('R-1')
    expect(entry?.updates).toHaveLength(1)
    const merged = new Y.Doc()
    Y.applyUpdate(merged, entry!.updates[0]!)
    expect(merged.getText('t').toString()).toBe('Hello, world')
    expect(entry!.meta.acked).toEqual(Y.encodeStateVector(doc))
    expect(entry!.meta.authors).toEqual([ada, bob])
    inbox.close()
  })

  test('two tabs opening the same record at once both read it; the entry is gone after', async () => {
    const factory = new IDBFactory()
    const inbox = inboxOf(factory)
    await inbox.put('R-1', textUpdate('from the relay'), {})
    const [a, b] = await Promise.all([storageOf(factory).openRecord('R-1'), storageOf(factory).openRecord('R-1')])
    const [loadedA, loadedB] = await Promise.all([a.load(), b.load()])
    const text = (updates: Uint8Array[]): string => {
      const doc = new Y.Doc()
      for (const update of updates) Y.applyUpdate(doc, update)
      return doc.getText('t').toString()
    }
    expect(text(loadedA.updates)).toBe('from the relay')
    expect(text(loadedB.updates)).toBe('from the relay')
    expect(await inbox.get('R-1')).toBeUndefined()
    a.close()
    b.close()
    inbox.close()
  })

  test('a put during a move (a pull in another tab) is moved too, not removed with the entry', async () => {
    const factory = new IDBFactory()
    const inbox = inboxOf(factory)
    const doc = new Y.Doc()
    await inbox.put('R-1', textUpdate('first', doc), {})
    const own = await storageOf(factory).openRecord('R-1')
    expect(await inbox.get('R-1')).toBeUndefined()
    // The next move: while its write goes to the record's database, a pull merges a change into the entry.
    await inbox.put('R-1', textUpdate(' second', doc), {})
    const write = own.write.bind(own)
    let pulled: Promise<void> | null = null
    const racing: RecordStorage = Object.assign(Object.create(own) as RecordStorage, {
      write: async (...args: Parameters<RecordStorage['write']>) => {
        pulled ??= inbox.put('R-1', textUpdate(' third', doc), {})
        await pulled
        return write(...args)
      },
    })
    expect(await inbox.moveInto('R-1', racing, true)).toBe(true)
    expect(await inbox.get('R-1')).toBeUndefined()
    const rows = (await own.load()).updates
    const merged = new Y.Doc()
    for (const row of rows) Y.applyUpdate(merged, row)
    expect(merged.getText('t').toString()).toBe('first second third')
    own.close()
    inbox.close()
  })

  test('a crash between the move and the removal: the entry is moved again at the next open, the content once', async () => {
    const factory = new IDBFactory()
    const inbox = inboxOf(factory)
    const update = textUpdate('only once')
    await inbox.put('R-1', update, {})
    ;(await storageOf(factory).openRecord('R-1')).close()
    // As if the removal never reached the disk: the entry is back, the record's database holds it too.
    await inbox.put('R-1', update, {})
    const reopened = await storageOf(factory).openRecord('R-1')
    const { updates } = await reopened.load()
    expect(updates).toHaveLength(2)
    const doc = new Y.Doc()
    for (const row of updates) Y.applyUpdate(doc, row)
    expect(doc.getText('t').toString()).toBe('only once')
    expect(await inbox.get('R-1')).toBeUndefined()
    reopened.close()
    inbox.close()
  })
})
