/**
 * The record store against the real relay in-process, with fake-indexeddb (real
 * IndexedDB semantics in Node) or MemoryStorage: typed records, truthful
 * pending and saved, reloads, compaction, idle closing, storage failures,
 * the catalog, filling a new device, tabs and sign-out.
 */
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test, vi } from 'vitest'
import * as Y from 'yjs'
import {
  MemoryStorage,
  RecordStore,
  RecordValidationError,
  StorageError,
  defineSchema,
  field,
  type RecordInbox,
  type RecordStoreOptions,
  type StorageBackend,
  type StoredRecord,
  type StorageErrorEvent,
  type SyncClient,
} from '../src/index.js'
import { TEXT_PREFIX, recordDatabaseName } from '../src/internal.js'
import { MessageType } from '../src/protocol/index.js'
import type { TestRelay } from './relayHarness.js'
import { GatedStorage, Harness, statusIs } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  vi.useRealTimers()
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

/** Resolves with the arguments of the first `event` for which `predicate` holds. */
const next = <A extends unknown[]>(
  emitter: { on(event: string, f: (...args: any[]) => void): void; off(event: string, f: (...args: any[]) => void): void },
  event: string,
  predicate: (...args: A) => boolean = () => true,
): Promise<A> =>
  new Promise((resolve) => {
    const listener = (...args: A): void => {
      if (!predicate(...args)) return
      emitter.off(event, listener as never)
      resolve(args)
    }
    emitter.on(event, listener as never)
  })

/** Resolves when `read()` satisfies `predicate`, re-checking on every `event` of `emitter`. */
const until = async <T>(
  emitter: { on(event: string, f: (...args: any[]) => void): void; off(event: string, f: (...args: any[]) => void): void },
  event: string,
  read: () => T,
  predicate: (value: T) => boolean,
): Promise<T> => {
  const now = read()
  if (predicate(now)) return now
  await next(emitter, event, () => predicate(read()))
  return read()
}

const online = async (options: Parameters<Harness['relay']>[0] = {}): Promise<{ relay: TestRelay; client: SyncClient }> => {
  const relay = h.relay(options)
  const client = h.client(relay)
  await relay.settle()
  return { relay, client }
}

const offline = (): { relay: TestRelay; client: SyncClient } => {
  const relay = h.relay()
  relay.accepting = false
  return { relay, client: h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } }) }
}

describe('typed records', () => {
  test('create, read, update, list; wrong writes are refused and write nothing', async () => {
    const { client } = await online({ autoAck: true })
    const storage = new MemoryStorage()
    const store = newStore(client, { storage })
    const ticket = await store.create('ticket', { title: 'Login fails', status: 'open', labels: ['bug'] }, { id: 'T-1' })
    expect(ticket.read().fields).toMatchObject({ title: 'Login fails', status: 'open', labels: ['bug'], priority: 'none' })
    ticket.set('status', 'in_progress')
    ticket.update({ priority: 'high', assignee: 'u2' })
    expect(ticket.get('priority')).toBe('high')
    expect(() => ticket.set('status', 'blocked')).toThrow(RecordValidationError)
    expect(() => ticket.update({ title: 'ok', bogus: 1 })).toThrow(/field "bogus": unknown field of ticket/)
    expect(ticket.get('title')).toBe('Login fails')
    expect(ticket.doc.guid).toBe('acme/T-1') // named by its doc name: no random guid drawn per opened record
    expect(store.list({ type: 'ticket' }).entries).toMatchObject([
      {
        id: 'T-1',
        type: 'ticket',
        title: 'Login fails',
        fields: { status: 'in_progress', priority: 'high', assignee: 'u2', labels: ['bug'] },
      },
    ])
    ticket.close()
    expect(() => ticket.read()).toThrow(/closed/)

    await expect(store.create('ticket', { status: 'nope' }, { id: 'T-2' })).rejects.toThrow(RecordValidationError)
    await expect(store.create('sprint', {})).rejects.toThrow(/unknown record type; registered: project, ticket/)
    await expect(store.create('ticket', {}, { id: 'T-1' })).rejects.toThrow(/already exists/)
    await expect(store.open('a/b')).rejects.toThrow(/invalid record id/)
    expect(storage.records.has('T-2')).toBe(false)
    expect(store.list().total).toBe(1)
  })

  test('app schemas; a record of a type this app does not know can be read but not written', async () => {
    const { relay, client } = await online({ autoAck: true })
    const sprint = defineSchema({ type: 'sprint', version: 1, title: 'name', fields: { name: field.text(), goal: field.text() } })
    const newer = newStore(client, { schemas: [sprint] })
    const s = await newer.create('sprint', { name: 'Sprint 1', goal: 'ship' }, { id: 'S-1' })
    await s.flush()
    s.close()
    const client2 = h.client(relay)
    const older = newStore(client2)
    const handle = await older.open('S-1')
    await handle.sync.synced
    expect(handle.type).toBe('sprint')
    expect(handle.read().unknownFields).toEqual({ name: 'Sprint 1', goal: 'ship' })
    expect(() => handle.set('name', 'x')).toThrow(/record type "sprint" has no registered schema/)
    handle.close()
  })
})

describe('pending and saved', () => {
  test('pending per record, per field and for the workspace; 0 only after the ack', async () => {
    const { relay, client } = await online()
    const store = newStore(client)
    const ticket = await store.create('ticket', { title: 'Hi', status: 'open' }, { id: 'T-1' })
    expect(ticket.pending).toBeGreaterThan(0)
    expect(ticket.pendingFields).toEqual(['$created', 'status', 'title'])
    expect(store.pending).toBe(ticket.pending)
    await relay.settle()
    expect(ticket.pending).toBeGreaterThan(0) // on the relay, not stored
    relay.ack()
    await relay.settle()
    expect(ticket.pending).toBe(0)
    expect(ticket.pendingFields).toEqual([])
    expect(store.pending).toBe(0)

    // A delete-only text edit is pending, attributed to its field.
    ticket.text('title').delete(0, 1)
    expect(ticket.pending).toBe(1)
    expect(ticket.pendingFields).toEqual(['title'])
    ticket.set('priority', 'low')
    expect(ticket.pendingFields).toEqual(['priority', 'title'])
    const unsynced = store.unsynced()
    expect(unsynced).toMatchObject([{ id: 'T-1', title: 'i', pendingFields: ['priority', 'title'] }])
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(ticket.pendingFields).toEqual([])
    expect(store.unsynced()).toEqual([])
    ticket.close()
  })

  test('"saved" only after the IndexedDB transaction completed', async () => {
    const { client } = offline()
    const factory = new IDBFactory()
    const store = newStore(client, { storage: undefined, indexedDB: factory })
    const ticket = await store.create('ticket', { title: 'Draft' }, { id: 'T-1' })
    expect(ticket.isSaved).toBe(false)
    const events: boolean[] = []
    ticket.on('saved', (saved) => events.push(saved))
    await ticket.whenSaved()
    expect(ticket.isSaved).toBe(true)
    // The bytes are in IndexedDB: a separate reader sees them.
    const rows = await readRows(factory, recordDatabaseName('u1', 'acme', 'T-1'))
    const copy = new Y.Doc()
    for (const row of rows) Y.applyUpdate(copy, row)
    expect(copy.getText(TEXT_PREFIX + 'title').toString()).toBe('Draft')
    ticket.text('title').insert(5, '!')
    expect(ticket.isSaved).toBe(false)
    await ticket.whenSaved()
    expect(events).toEqual([true, false, true])
    ticket.close()
  })

  test('after a reload, edits and pending counts (per field too) are back before the relay answers; the ack brings them to 0', async () => {
    const factory = new IDBFactory()
    const first = offline()
    const store1 = newStore(first.client, { storage: undefined, indexedDB: factory })
    const a = await store1.create('ticket', { title: 'Offline ticket', labels: ['x'] }, { id: 'T-1' })
    a.set('status', 'done')
    const pending = a.pending
    const fields = a.pendingFields
    await store1.settled()
    a.close()
    await store1.close()
    first.client.close()

    // Reload: a new client (still offline) and a new store on the same IndexedDB.
    const relay = first.relay
    const client = h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })
    const store2 = newStore(client, { storage: undefined, indexedDB: factory })
    await until(
      store2,
      'pending',
      () => store2.pending,
      (n) => n === pending,
    )
    expect(store2.list().entries).toMatchObject([{ id: 'T-1', title: 'Offline ticket', pending, pendingFields: fields }])
    // The record with unsynced changes was opened so that it syncs.
    await until(
      store2,
      'catalog',
      () => store2.openIds,
      (ids) => ids.includes('T-1'),
    )
    const b = await store2.open('T-1')
    expect(b.read().fields).toMatchObject({ title: 'Offline ticket', status: 'done', labels: ['x'] })
    expect(b.pending).toBe(pending)
    expect(b.pendingFields).toEqual(fields)

    relay.accepting = true
    client.reconnect()
    await statusIs(client, 'online')
    await relay.settle()
    expect(
      relay
        .doc('acme/T-1')
        .getText(TEXT_PREFIX + 'title')
        .toString(),
    ).toBe('Offline ticket')
    expect(b.pending).toBe(pending) // reached the relay, not acked yet
    relay.ack()
    await relay.settle()
    expect(b.pending).toBe(0)
    expect(store2.pending).toBe(0)
    await store2.settled()
    b.close()
    await store2.close()
    client.close()

    // The acked state vector was stored with the record: offline again, nothing is pending.
    const client3 = h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })
    relay.accepting = false
    relay.dropAll()
    const store3 = newStore(client3, { storage: undefined, indexedDB: factory })
    await store3.ready
    expect(store3.pending).toBe(0)
    const c = await store3.open('T-1')
    expect(c.pending).toBe(0)
    expect(c.read().fields.title).toBe('Offline ticket')
    c.close()
  })
})

describe('pending at start-up', () => {
  test('the catalog entry is written with every record write; a lagging one is corrected from the record at ready', async () => {
    const { client } = offline()
    const storage = new MemoryStorage()
    const store1 = newStore(client, { storage })
    const t = await store1.create('ticket', { title: 'x' }, { id: 'T-1' })
    t.text('title').insert(1, 'yz')
    t.flushHistory() // the typing's history entry, so nothing changes after `truth`
    await store1.settled()
    const truth = t.pending
    // Written with the record's own write, not 50 ms later.
    expect(storage.catalog.get('T-1')!.pending).toBe(truth)
    t.close()
    await store1.close()

    // A catalog entry that lags (say the tab was killed between the two writes) is fixed from the record itself.
    storage.catalog.set('T-1', { ...storage.catalog.get('T-1')!, pending: 1, pendingFields: [] })
    const store2 = newStore(client, { storage })
    await store2.ready
    expect(store2.pending).toBe(truth)
    expect(store2.list().entries[0]).toMatchObject({ id: 'T-1', pending: truth, pendingFields: ['$created', 'title'] })
  })
})

describe('compaction and idle records', () => {
  test('the update log stays bounded across many edits and many reloads', async () => {
    const { client } = await online({ autoAck: true })
    const storage = new MemoryStorage()
    let store = newStore(client, { storage, compactAfter: 16 })
    const ticket = await store.create('ticket', { title: '' }, { id: 'T-1' })
    for (let i = 0; i < 200; i++) {
      ticket.text('title').insert(i, 'x')
      await store.settled()
    }
    expect(storage.records.get('T-1')!.rows.length).toBeLessThanOrEqual(17)
    ticket.close()
    await store.close()
    for (let i = 0; i < 30; i++) {
      store = newStore(client, { storage, compactAfter: 16 })
      const again = await store.open('T-1')
      again.text('title').insert(0, 'y')
      again.close()
      await store.close()
    }
    // Closing compacts: one row, with everything in it.
    const rows = storage.records.get('T-1')!.rows
    expect(rows.length).toBe(1)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, rows[0]!)
    expect(doc.getText(TEXT_PREFIX + 'title').length).toBe(230)
  })

  test('idle records close after idleTimeout; records with pending changes stay open', async () => {
    const { relay, client } = await online()
    const store = newStore(client, { idleTimeout: 1_000 })
    await store.ready
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const a = await store.create('ticket', { title: 'A' }, { id: 'A' })
    const b = await store.create('ticket', { title: 'B' }, { id: 'B' })
    await relay.settle()
    relay.ack('acme/A')
    await relay.settle()
    await store.settled()
    a.close()
    b.close()
    vi.advanceTimersByTime(1_000)
    await store.settled()
    expect(store.openIds).toEqual(['B']) // B is not acked yet
    relay.ack('acme/B')
    await relay.settle()
    await store.settled()
    vi.advanceTimersByTime(1_000)
    expect(store.openIds).toEqual([])
    expect(store.list().total).toBe(2)
    // Reopening loads from storage.
    const again = await store.open('A')
    expect(again.get('title')).toBe('A')
    again.close()
  })
})

describe('storage failures never throw into the app', () => {
  test('quota exceeded: the record keeps working in memory, the event says why, a retry saves everything', async () => {
    const { relay, client } = await online()
    const storage = new GatedStorage(new MemoryStorage(), 'flaky')
    const store = newStore(client, { storage })
    const ticket = await store.create('ticket', { title: 'Big' }, { id: 'T-1' })
    await ticket.whenSaved()
    storage.failWith = new StorageError('quota', 'QuotaExceededError: the quota has been exceeded')
    const reported = next<[StorageErrorEvent]>(store, 'storage-error')
    ticket.text('description').insert(0, 'x'.repeat(1000))
    const [event] = await reported
    expect(event).toMatchObject({ kind: 'quota', recordId: 'T-1' })
    expect(event.reason).toMatch(/quota/)
    expect(ticket.isSaved).toBe(false)
    expect(ticket.storageError?.kind).toBe('quota')
    ticket.set('status', 'done') // still works
    expect(ticket.get('status')).toBe('done')
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(ticket.pending).toBe(0) // syncing is unaffected
    storage.failWith = null
    await store.retryStorage()
    expect(ticket.isSaved).toBe(true)
    expect(ticket.storageError).toBe(null)
    const reloaded = new Y.Doc()
    for (const row of storage.inner.records.get('T-1')!.rows) Y.applyUpdate(reloaded, row)
    expect(reloaded.getText(TEXT_PREFIX + 'description').length).toBe(1000)
    ticket.close()
  })

  test('no IndexedDB at all: the store works in memory and says so', async () => {
    const { relay, client } = await online()
    const store = newStore(client, { storage: undefined, indexedDB: null })
    const [event] = await next<[StorageErrorEvent]>(store, 'storage-error')
    expect(event).toMatchObject({ kind: 'unavailable', recordId: null })
    await store.ready
    expect(store.persistent).toBe(false)
    const ticket = await store.create('ticket', { title: 'In memory' })
    expect(ticket.isSaved).toBe(false)
    await expect(ticket.whenSaved()).rejects.toThrow(/cannot be saved on this device/)
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(ticket.pending).toBe(0)
    expect(store.list().entries.map((e) => e.title)).toEqual(['In memory'])
    ticket.close()
  })

  test('a record database deleted underneath: reported as "closed", edits continue in memory', async () => {
    const { client } = await online({ autoAck: true })
    const factory = new IDBFactory()
    const store = newStore(client, { storage: undefined, indexedDB: factory })
    const ticket = await store.create('ticket', { title: 'T' }, { id: 'T-1' })
    await ticket.whenSaved()
    const reported = next<[StorageErrorEvent]>(store, 'storage-error')
    factory.deleteDatabase(recordDatabaseName('u1', 'acme', 'T-1'))
    const [event] = await reported
    expect(event).toMatchObject({ kind: 'closed', recordId: 'T-1' })
    ticket.set('status', 'done')
    expect(ticket.get('status')).toBe('done')
    expect(ticket.isSaved).toBe(false)
    ticket.close()
  })
})

describe('catalog', () => {
  test('list, filter, sort and page without opening records; survives a reload', async () => {
    const { client } = await online({ autoAck: true })
    const storage = new MemoryStorage()
    let clock = 1_000
    let store = newStore(client, { storage, now: () => (clock += 1_000), idleTimeout: 1 })
    const statuses = ['open', 'in_progress', 'done'] as const
    for (let i = 0; i < 30; i++) {
      const t = await store.create(
        'ticket',
        { title: `Ticket ${String(i).padStart(2, '0')}`, status: statuses[i % 3], labels: i % 5 === 0 ? ['bug'] : [] },
        { id: `T-${i}` },
      )
      t.close()
    }
    await store.archive('T-3')
    await store.delete('T-6')
    await store.flush()
    await store.settled()
    await store.close()

    store = newStore(client, { storage })
    await store.ready
    expect(store.openIds).toEqual([])
    const done = store.list({ type: 'ticket', where: { status: 'done' }, sort: { by: 'title', direction: 'asc' }, limit: 3 })
    expect(done.total).toBe(10)
    expect(done.entries.map((e) => e.id)).toEqual(['T-2', 'T-5', 'T-8'])
    const recent = store.list({ limit: 2 })
    expect(recent.entries.map((e) => e.id)).toEqual(['T-29', 'T-28'])
    expect(recent.total).toBe(28) // archived and deleted are hidden
    expect(store.list({ includeArchived: true, includeDeleted: true }).total).toBe(30)
    expect(
      store
        .list({ where: { labels: 'bug' } })
        .entries.map((e) => e.id)
        .sort(),
    ).toEqual(['T-0', 'T-10', 'T-15', 'T-20', 'T-25', 'T-5'])
    expect(store.list({ search: 'ticket 1', sort: { by: 'title', direction: 'asc' }, limit: 100 }).total).toBe(10)
    expect(store.list({ where: { status: ['open', 'in_progress'] }, offset: 15, limit: 10 }).entries).toHaveLength(3) // 20 minus archived T-3 and deleted T-6
    expect(store.openIds).toEqual([])
  })
})

describe('catalog search', () => {
  test('any case, accents or not, white space as one space', async () => {
    const { client } = await online({ autoAck: true })
    const store = newStore(client, { storage: new MemoryStorage() })
    for (const [id, title] of [
      ['T-1', 'Überprüfung der Zahlungen'],
      ['T-2', 'Café  menu   broken'],
      ['T-3', 'Login fails'],
    ] as const)
      (await store.create('ticket', { title }, { id })).close()
    const found = (search: string): string[] =>
      store
        .list({ search })
        .entries.map((e) => e.id)
        .sort()
    expect(found('uberprufung')).toEqual(['T-1'])
    expect(found('ÜBERPRÜFUNG')).toEqual(['T-1'])
    expect(found('cafe menu broken')).toEqual(['T-2'])
    expect(found('Café   menu')).toEqual(['T-2'])
    expect(found('  login  ')).toEqual(['T-3'])
    expect(found('logins')).toEqual([])
  })

  test('a long title is found by words at its end (the catalog keeps titles as long as the schema allows)', async () => {
    const { client } = await online({ autoAck: true })
    const store = newStore(client, { storage: new MemoryStorage() })
    const url = `https://example.com/${'very-long-path-segment/'.repeat(18)}?report=quarterly-revenue`
    expect(url.length).toBeGreaterThan(400)
    ;(await store.create('ticket', { title: url }, { id: 'T-1' })).close()
    expect(store.list({ search: 'quarterly-revenue' }).entries.map((e) => e.id)).toEqual(['T-1'])
    expect(store.list({}).entries[0]!.title).toBe(url)
  })

  test('titles sort as people read them: "Ticket 2" before "Ticket 10"', async () => {
    const { client } = await online({ autoAck: true })
    const store = newStore(client, { storage: new MemoryStorage() })
    for (const n of [10, 2, 1, 100, 21]) (await store.create('ticket', { title: `Ticket ${n}` }, { id: `T-${n}` })).close()
    expect(store.list({ sort: { by: 'title', direction: 'asc' } }).entries.map((e) => e.title)).toEqual([
      'Ticket 1',
      'Ticket 2',
      'Ticket 10',
      'Ticket 21',
      'Ticket 100',
    ])
  })
})

describe('first screen before the whole catalog is loaded', () => {
  test('query() answers from the catalog index; the full list agrees once ready', async () => {
    const { client } = await online({ autoAck: true })
    const factory = new IDBFactory()
    let clock = 0
    const writer = newStore(client, { storage: undefined, indexedDB: factory, now: () => (clock += 1000), idleTimeout: 1 })
    for (let i = 0; i < 40; i++)
      (await writer.create('ticket', { title: `T${i}`, status: i % 2 ? 'open' : 'done' }, { id: `T-${i}` })).close()
    await writer.settled()
    await writer.close()

    const reader = newStore(client, { storage: undefined, indexedDB: factory })
    const early = await reader.query({ where: { status: 'open' }, limit: 5 })
    expect(early.entries.map((e) => e.id)).toEqual(['T-39', 'T-37', 'T-35', 'T-33', 'T-31'])
    expect(early.total).toBeGreaterThanOrEqual(5)
    await reader.ready
    const full = reader.list({ where: { status: 'open' }, limit: 5 })
    expect(full).toMatchObject({ total: 20, complete: true })
    expect(full.entries.map((e) => e.id)).toEqual(early.entries.map((e) => e.id))
    expect(await reader.query({ sort: { by: 'title', direction: 'asc' }, limit: 1 })).toMatchObject({ complete: true, total: 40 })
  })

  test('the full catalog load waits for the early page, so its chunks do not slow the first screen; a failed scan does not hold it', async () => {
    const { client } = await online({ autoAck: true })
    const storage = new MemoryStorage()
    const writer = newStore(client, { storage })
    for (let i = 0; i < 5; i++) (await writer.create('ticket', { title: `T${i}` }, { id: `T-${i}` })).close()
    await writer.close()

    for (const outcome of ['answers', 'fails'] as const) {
      const events: string[] = []
      let finishScan!: () => void
      const scanned = new Promise<void>((resolve) => (finishScan = resolve))
      const backend: StorageBackend = {
        kind: 'logged',
        openRecord: (id) => storage.openRecord(id),
        wipe: () => storage.wipe(),
        openCatalog: async () => {
          const inner = await storage.openCatalog()
          return Object.assign(Object.create(inner) as typeof inner, {
            loadAll: () => {
              events.push('loadAll')
              return inner.loadAll()
            },
            scanByUpdatedAt: async () => {
              events.push('scan')
              await scanned
              events.push('scanned')
              if (outcome === 'fails') throw new Error('the index scan failed')
              return (await inner.loadAll()).slice(0, 2)
            },
          })
        },
      }
      const reader = newStore(client, { storage: backend, firstScreenCache: null })
      const page = reader.query({ limit: 2 })
      await vi.waitFor(() => expect(events).toEqual(['scan']))
      await Promise.resolve()
      expect(events).toEqual(['scan']) // not loading the whole catalog meanwhile
      finishScan()
      const answer = await page
      expect(events).toEqual(['scan', 'scanned', 'loadAll'])
      expect(answer.complete).toBe(outcome === 'fails') // a failed scan waits for the full list
      await reader.ready
      expect(reader.list().total).toBe(5)
      await reader.close()
    }
  })
})

describe('first-screen snapshot', () => {
  test('the first screen comes from the snapshot before storage has even opened; sign-out removes it', async () => {
    const { client } = await online({ autoAck: true })
    const kv = new Map<string, string>()
    const cache = {
      getItem: (k: string) => kv.get(k) ?? null,
      setItem: (k: string, v: string) => void kv.set(k, v),
      removeItem: (k: string) => void kv.delete(k),
    }
    const storage = new MemoryStorage()
    let clock = 0
    const writer = newStore(client, { storage, firstScreenCache: cache, now: () => (clock += 1000) })
    for (let i = 0; i < 300; i++)
      (await writer.create('ticket', { title: `T${i}`, status: i % 3 ? 'open' : 'done' }, { id: `T-${i}` })).close()
    await writer.archive('T-299')
    await writer.close()
    expect([...kv.keys()]).toEqual(['concord/u1/acme/first-screen'])

    // Storage that does not open until released: the snapshot answers anyway.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const slow: StorageBackend = {
      kind: 'slow',
      openRecord: (id) => storage.openRecord(id),
      openCatalog: () => gate.then(() => storage.openCatalog()),
      wipe: () => storage.wipe(),
    }
    const reader = newStore(client, { storage: slow, firstScreenCache: cache })
    const early = await reader.query({ where: { status: 'open' }, limit: 3 })
    expect(early).toMatchObject({ complete: false })
    expect(early.entries.map((e) => e.id)).toEqual(['T-298', 'T-296', 'T-295'])
    expect((await reader.query({ limit: 1 })).total).toBe(299) // unfiltered: the snapshot knows the count
    release()
    await reader.ready
    expect(reader.list({ where: { status: 'open' }, limit: 3 }).entries.map((e) => e.id)).toEqual(['T-298', 'T-296', 'T-295'])
    // A query the snapshot cannot answer waits for the catalog.
    expect(await reader.query({ sort: { by: 'title', direction: 'asc' }, limit: 1 })).toMatchObject({ complete: true })
    expect(await reader.signOut({ wipe: true })).toMatchObject({ signedOut: true })
    expect(kv.size).toBe(0)
  })
})

describe('a new device', () => {
  test('pull() lists the workspace on the relay and fetches every record over the one socket; the catalog fills in', async () => {
    const { relay, client: laptop } = await online({ autoAck: true })
    const source = newStore(laptop)
    for (let i = 0; i < 25; i++) (await source.create('ticket', { title: `Ticket ${i}`, status: 'open' }, { id: `T-${i}` })).close()
    await source.create('project', { name: 'Apollo' }, { id: 'P-1' }).then((p) => p.close())
    await source.flush()
    relay.seed('other/T-0', new Uint8Array([0, 0])) // another workspace: not listed

    const phone = h.client(relay)
    const storage = new MemoryStorage()
    const fresh = newStore(phone, { storage })
    const progress: number[] = []
    const result = await fresh.pull({ concurrency: 8, onProgress: (done) => progress.push(done) })
    expect(result).toMatchObject({ listed: 26, fetched: 26, changed: 26, unchanged: 0, failed: [] })
    expect(progress.at(-1)).toBe(26)
    expect(fresh.openIds).toEqual([])
    expect(fresh.pending).toBe(0)
    expect(fresh.list({ type: 'ticket', limit: 100 }).total).toBe(25)
    expect(fresh.list({ type: 'project' }).entries).toMatchObject([{ id: 'P-1', title: 'Apollo', fields: { status: 'planned' } }])
    expect(relay.messages({ type: MessageType.subscribe, connection: 2 })).toHaveLength(0)
    expect(relay.messages({ type: MessageType.fetch, connection: 2 })).toHaveLength(26)
    // the fetches started together went in fetch-many messages
    expect(relay.messages({ type: MessageType.fetch, connection: 2, batched: true })).toHaveLength(26)

    // Readable offline.
    relay.accepting = false
    relay.dropAll()
    const offlineRead = await fresh.read('T-7')
    expect(offlineRead.fields).toMatchObject({ title: 'Ticket 7', status: 'open' })

    // Later: only what changed is transferred and rewritten.
    relay.accepting = true
    phone.reconnect()
    await source.update('T-3', { status: 'done' })
    await source.flush()
    const again = await fresh.pull()
    expect(again).toMatchObject({ listed: 26, fetched: 1, changed: 1, unchanged: 25 })
    expect(relay.messages({ type: MessageType.fetch, doc: 'acme/T-3' })).toHaveLength(2)
    expect(fresh.list({ where: { status: 'done' } }).entries.map((e) => e.id)).toEqual(['T-3'])
  })

  test('pull() starts fetches a quarter of its slots at a time when answers come one by one, each group in one message', async () => {
    const { relay, client: laptop } = await online({ autoAck: true })
    const source = newStore(laptop)
    for (let i = 0; i < 20; i++) (await source.create('ticket', { title: `Ticket ${i}` }, { id: `T-${i}` })).close()
    await source.flush()
    const phone = h.client(relay)
    await relay.settle()
    relay.holdReads = true
    const fresh = newStore(phone, { storage: new MemoryStorage() })
    let done = 0
    const pulling = fresh.pull({ concurrency: 8, onProgress: (n) => (done = n) })
    const sent = () => relay.messages({ type: MessageType.fetch, connection: 2 }).length
    const messages = () => relay.messages({ type: MessageType.fetchMany, connection: 2 }).length
    await relay.settle()
    expect(relay.releaseRead()).toBe(true) // the listing
    await relay.settle()
    expect([sent(), messages()]).toEqual([8, 1])
    const seen: Array<[number, number]> = []
    while (relay.releaseRead()) {
      const answered = seen.length + 1
      await vi.waitFor(() => expect(done).toBe(answered))
      await relay.settle()
      seen.push([sent(), messages()])
    }
    await pulling
    // two slots free (a quarter of 8) before the next two go, together; the last ones as the slots free
    expect(seen.slice(0, 6)).toEqual([
      [8, 1],
      [10, 2],
      [10, 2],
      [12, 3],
      [12, 3],
      [14, 4],
    ])
    expect(sent()).toBe(20)
    expect(fresh.list({ limit: 100 }).total).toBe(20)
  })
})

describe('a new device, before its records are stored', () => {
  test('pull() lists each new record from what the relay sent (local: false) and as local once its write committed', async () => {
    const { relay, client: laptop } = await online({ autoAck: true })
    const source = newStore(laptop)
    for (let i = 0; i < 5; i++) (await source.create('ticket', { title: `Ticket ${i}`, status: 'open' }, { id: `T-${i}` })).close()
    await source.flush()

    // Record writes wait: the list shows the records anyway, none of them available offline yet.
    const storage = new GatedStorage(new MemoryStorage())
    let release!: () => void
    storage.hang = new Promise<void>((resolve) => (release = resolve))
    const fresh = newStore(h.client(relay), { storage })
    const pulling = fresh.pull()
    const listed = () => fresh.list({ type: 'ticket', sort: { by: 'title', direction: 'asc' }, limit: 10 })
    await next(fresh, 'catalog', () => listed().total === 5)
    expect(listed().entries.map((e) => [e.title, e.fields.status, e.pending, e.local])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [`Ticket ${i}`, 'open', 0, false]),
    )
    expect(fresh.pending).toBe(0)
    await fresh.catalog.flush()
    expect(storage.inner.catalog.size).toBe(0) // listed, not written: only stored records are

    storage.hang = null
    release()
    expect(await pulling).toMatchObject({ listed: 5, changed: 5, failed: [] })
    expect(listed().entries.map((e) => [e.title, e.local])).toEqual([0, 1, 2, 3, 4].map((i) => [`Ticket ${i}`, true]))
    expect(storage.inner.records.size).toBe(5)
    await fresh.catalog.flush()
    expect([...storage.inner.catalog.values()].map((e) => e.local)).toEqual([true, true, true, true, true])
  })

  test('pull() goes on fetching while records wait in the inbox to be stored, and resolves once they are stored', async () => {
    const { relay, client: laptop } = await online({ autoAck: true })
    const source = newStore(laptop)
    for (let i = 0; i < 30; i++) (await source.create('ticket', { title: `Ticket ${i}` }, { id: `T-${i}` })).close()
    await source.flush()

    // An inbox whose puts commit only when the test says so.
    const inner = new MemoryStorage()
    const stored = new Map<string, StoredRecord>()
    const held: Array<() => void> = []
    const inbox: RecordInbox = {
      get: async (id) => stored.get(id),
      put: (id, update, meta) =>
        new Promise<void>((resolve) =>
          held.push(() => {
            stored.set(id, { updates: [update], meta })
            resolve()
          }),
        ),
    }
    const backend: StorageBackend = {
      kind: 'with-inbox',
      inbox,
      openRecord: (id) => inner.openRecord(id),
      openCatalog: () => inner.openCatalog(),
      wipe: () => inner.wipe(),
    }
    const fresh = newStore(h.client(relay), { storage: backend })
    const pulling = fresh.pull({ concurrency: 4 })
    const listed = () => fresh.list({ type: 'ticket', limit: 100 })
    // With 4 fetches at once, every record is fetched and listed while none is stored yet.
    await next(fresh, 'catalog', () => listed().total === 30)
    expect(held).toHaveLength(30)
    expect(relay.messages({ type: MessageType.fetch, connection: 2 })).toHaveLength(30)
    expect(listed().entries.every((e) => !e.local)).toBe(true)

    let settled = false
    void pulling.then(() => (settled = true))
    for (const commit of held.splice(0, 29)) commit()
    await next(fresh, 'catalog', () => listed().entries.filter((e) => e.local).length === 29)
    expect(settled).toBe(false) // one record is not stored yet
    held.splice(0)[0]!()
    expect(await pulling).toMatchObject({ listed: 30, fetched: 30, changed: 30, failed: [] })
    expect(stored.size).toBe(30)
    expect(listed().entries.every((e) => e.local)).toBe(true)
  })

  test('pull() does not read the record databases it creates; one that held the record is read', async () => {
    const { relay, client: laptop } = await online({ autoAck: true })
    const source = newStore(laptop)
    for (let i = 0; i < 3; i++) (await source.create('ticket', { title: `Ticket ${i}` }, { id: `T-${i}` })).close()
    await source.flush()

    const inner = new MemoryStorage()
    const loads: string[] = []
    const counting: StorageBackend = {
      kind: 'counting',
      openRecord: async (id) => {
        const record = await inner.openRecord(id)
        const load = record.load.bind(record)
        return Object.assign(record, { load: () => (loads.push(id), load()) })
      },
      openCatalog: () => inner.openCatalog(),
      wipe: () => inner.wipe(),
    }
    const fresh = newStore(h.client(relay), { storage: counting })
    expect(await fresh.pull()).toMatchObject({ changed: 3, failed: [] })
    expect(loads).toEqual([])

    await source.update('T-1', { title: 'Ticket one' })
    await source.flush()
    expect(await fresh.pull()).toMatchObject({ changed: 1 })
    expect(loads).toEqual(['T-1'])
    expect(fresh.list({ where: { title: 'Ticket one' } }).entries.map((e) => [e.id, e.local])).toEqual([['T-1', true]])
  })
})

describe('tabs', () => {
  test('two tabs share edits at once, report the same pending counts, and only the author sends', async () => {
    const relay = h.relay()
    const factory = new IDBFactory()
    const clientA = h.client(relay)
    const clientB = h.client(relay)
    const tabA = newStore(clientA, { storage: undefined, indexedDB: factory, tabs: true })
    const tabB = newStore(clientB, { storage: undefined, indexedDB: factory, tabs: true })
    // Tab C cannot reach the relay: whatever it gets comes from the other tabs.
    const cutOff = offline()
    const tabC = newStore(cutOff.client, { storage: undefined, indexedDB: factory, tabs: true })
    await Promise.all([tabA.ready, tabB.ready, tabC.ready])
    await relay.settle()
    const a = await tabA.create('ticket', { title: 'Shared' }, { id: 'T-1' })
    // Opened before A's write may have reached IndexedDB: the sync request to the other tabs covers it.
    const b = await tabB.open('T-1')
    const c = await tabC.open('T-1')
    await until(
      b,
      'change',
      () => b.get('title'),
      (t) => t === 'Shared',
    )
    await until(
      c,
      'change',
      () => c.get('title'),
      (t) => t === 'Shared',
    )
    await relay.settle()
    relay.ack()
    await relay.settle()
    expect(a.pending).toBe(0)
    // The relay acks the tab that sent; B learns from A that its edits are stored.
    await until(
      b,
      'pending',
      () => b.pending,
      (n) => n === 0,
    )

    const sent = (connection: number) => relay.messages({ type: MessageType.sync, doc: 'acme/T-1', connection, syncType: 2 }).length
    const beforeA = sent(1)
    const beforeB = sent(2)
    const viaTab = next<[string]>(c, 'change', (source) => source === 'tab')
    a.text('title').insert(6, ' doc')
    await viaTab
    expect(c.get('title')).toBe('Shared doc') // from tab A, without the relay
    expect(c.pendingFields).toContain('title') // pending in C until A shares the relay's ack
    await until(
      b,
      'change',
      () => b.get('title'),
      (t) => t === 'Shared doc',
    )
    expect(b.pending).toBe(a.pending)
    // B may have got the edit from the relay first; the field notes come with the tab message.
    await until(
      b,
      'pending',
      () => b.pendingFields,
      (fields) => fields.length > 0,
    )
    expect(b.pendingFields).toEqual(['title'])
    await relay.settle()
    expect(sent(1)).toBeGreaterThan(beforeA) // the author sent it
    expect(sent(2)).toBe(beforeB) // the other tab did not send it again
    relay.ack()
    await relay.settle()
    expect(a.pending).toBe(0)
    await until(
      b,
      'pending',
      () => b.pending,
      (n) => n === 0,
    )
    await until(
      c,
      'pending',
      () => c.pending,
      (n) => n === 0,
    )
    // Saved in A means saved in the other tabs too (they do not write it again).
    await a.whenSaved()
    await c.whenSaved()

    // A record only tab A has open still counts in tab B's workspace total.
    const u = await tabA.create('ticket', { title: 'Only in A' }, { id: 'U-1' })
    await until(
      tabB,
      'pending',
      () => tabB.pending,
      (n) => n === tabA.pending && n > 0,
    )
    expect(
      tabB
        .list()
        .entries.map((e) => e.id)
        .sort(),
    ).toEqual(['T-1', 'U-1'])
    await relay.settle()
    relay.ack()
    await relay.settle()
    await until(
      tabB,
      'pending',
      () => tabB.pending,
      (n) => n === 0,
    )
    expect(tabA.pending).toBe(0)
    a.close()
    b.close()
    c.close()
    u.close()
  })
})

describe('sign-out', () => {
  test('refuses to wipe unsynced work and lists it; wipes once synced (or when told to discard)', async () => {
    const { relay, client } = await online()
    const factory = new IDBFactory()
    const store = newStore(client, { storage: undefined, indexedDB: factory, tabs: true })
    const other = newStore(h.client(relay), { storage: undefined, indexedDB: factory, tabs: true })
    const otherUser = newStore(h.client(relay), { userId: 'u2', storage: undefined, indexedDB: factory })
    await (await otherUser.create('ticket', { title: 'u2 keeps this' })).whenSaved()
    await other.ready
    const ticket = await store.create('ticket', { title: 'Unsynced' }, { id: 'T-1' })
    await ticket.whenSaved()

    const refused = await store.signOut({ wipe: true })
    expect(refused).toMatchObject({
      signedOut: false,
      reason: 'unsynced',
      unsynced: [{ id: 'T-1', title: 'Unsynced', pendingFields: ['$created', 'title'] }],
    })
    ticket.set('status', 'done') // the store still works

    await relay.settle()
    relay.ack()
    await relay.settle()
    await store.settled()
    const signedOut = next(other, 'signed-out')
    expect(await store.signOut({ wipe: true })).toEqual({ signedOut: true, wiped: true })
    await signedOut
    const names = (await factory.databases()).map((d) => d.name)
    expect(names.filter((n) => n?.startsWith('concord/u1/'))).toEqual([])
    expect(names.filter((n) => n?.startsWith('concord/u2/acme/')).length).toBe(3) // catalog, inbox, record
    expect(() => ticket.read()).toThrow()
  })

  test('discardUnsynced wipes even unsynced work', async () => {
    const { client } = offline()
    const factory = new IDBFactory()
    const store = newStore(client, { storage: undefined, indexedDB: factory })
    await (await store.create('ticket', { title: 'Lost on purpose' })).whenSaved()
    expect((await store.signOut({ wipe: true })).signedOut).toBe(false)
    expect(await store.signOut({ wipe: true, discardUnsynced: true })).toEqual({ signedOut: true, wiped: true })
    expect((await factory.databases()).length).toBe(0)
  })
})

/** Reads every row of a y-indexeddb `updates` store. */
const readRows = (factory: IDBFactory, name: string): Promise<Uint8Array[]> =>
  new Promise((resolve, reject) => {
    const open = factory.open(name)
    open.onsuccess = () => {
      const db = open.result
      const request = db.transaction('updates', 'readonly').objectStore('updates').getAll()
      request.onsuccess = () => {
        db.close()
        resolve(request.result as Uint8Array[])
      }
      request.onerror = () => reject(request.error)
    }
    open.onerror = () => reject(open.error)
  })
