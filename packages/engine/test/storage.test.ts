/**
 * Storage adapters: the shared contract, y-indexeddb format compatibility,
 * and failures of IndexedDB (missing, closed underneath).
 */
import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { IndexedDbStorage, MemoryStorage, StorageError } from '../src/index.js'
import { recordDatabaseName } from '../src/internal.js'
import { entry, runStorageContract } from './storageContract.js'

let workspace = 0
runStorageContract('MemoryStorage', () => new MemoryStorage())
runStorageContract(
  'IndexedDbStorage (fake-indexeddb)',
  () => new IndexedDbStorage({ userId: 'u1', workspaceId: `w${++workspace}`, indexedDB: new IDBFactory() }),
)

const persisted = (persistence: IndexeddbPersistence): Promise<void> =>
  new Promise((resolve) => (persistence.synced ? resolve() : persistence.once('synced', () => resolve())))

describe('y-indexeddb format', () => {
  test('y-indexeddb reads what IndexedDbStorage wrote', async () => {
    const storage = new IndexedDbStorage({ userId: 'ada@example.com', workspaceId: 'acme' })
    const record = await storage.openRecord('T-1')
    const doc = new Y.Doc()
    doc.getText('text:title').insert(0, 'written by concord')
    await record.write([Y.encodeStateAsUpdate(doc)], { acked: Y.encodeStateVector(doc) })
    record.close()

    const name = recordDatabaseName('ada@example.com', 'acme', 'T-1')
    expect(name).toBe('concord/ada%40example.com/acme/record/T-1')
    const other = new Y.Doc()
    const persistence = new IndexeddbPersistence(name, other)
    await persisted(persistence)
    expect(other.getText('text:title').toString()).toBe('written by concord')
    await persistence.destroy()
  })

  test('IndexedDbStorage reads what y-indexeddb wrote, and loading appends nothing', async () => {
    const name = recordDatabaseName('u1', 'legacy', 'T-9')
    const doc = new Y.Doc()
    const persistence = new IndexeddbPersistence(name, doc)
    await persisted(persistence)
    doc.getText('t').insert(0, 'from y-indexeddb')
    await persistence.destroy() // waits for nothing; give its write a turn via a read below

    const storage = new IndexedDbStorage({ userId: 'u1', workspaceId: 'legacy' })
    const record = await storage.openRecord('T-9')
    let loaded = await record.load()
    // y-indexeddb appended a full-state row when it loaded, then the edit: two rows.
    expect(loaded.updates.length).toBeGreaterThanOrEqual(1)
    const rows = loaded.updates.length
    const copy = new Y.Doc()
    for (const u of loaded.updates) Y.applyUpdate(copy, u)
    expect(copy.getText('t').toString()).toBe('from y-indexeddb')
    for (let i = 0; i < 5; i++) loaded = await record.load()
    expect(loaded.updates).toHaveLength(rows)
    record.close()
  })
})

describe('IndexedDB failures', () => {
  test('no IndexedDB: opening rejects with kind "unavailable", nothing thrown synchronously', async () => {
    const storage = new IndexedDbStorage({ userId: 'u1', workspaceId: 'w', indexedDB: null })
    const error = await storage.openCatalog().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageError)
    expect(error).toMatchObject({ kind: 'unavailable' })
  })

  test('a factory whose open() throws is "unavailable"', async () => {
    const broken = {
      open: () => {
        throw new Error('SecurityError: disabled by policy')
      },
    } as unknown as IDBFactory
    const storage = new IndexedDbStorage({ userId: 'u1', workspaceId: 'w', indexedDB: broken })
    await expect(storage.openRecord('r1')).rejects.toMatchObject({ kind: 'unavailable' })
  })

  test('deleting the database from elsewhere closes the connection and reports "closed"; writes reject, never throw', async () => {
    const factory = new IDBFactory()
    const storage = new IndexedDbStorage({ userId: 'u1', workspaceId: 'w', indexedDB: factory })
    const record = await storage.openRecord('r1')
    const lost = new Promise<StorageError>((resolve) => (record.onLost = resolve))
    await new Promise<void>((resolve, reject) => {
      const request = factory.deleteDatabase(recordDatabaseName('u1', 'w', 'r1'))
      request.onsuccess = () => resolve()
      request.onerror = () => reject(request.error)
    })
    expect((await lost).kind).toBe('closed')
    await expect(record.write([new Uint8Array([0, 0])])).rejects.toMatchObject({ kind: 'closed' })
  })
})

describe('catalog index scan (first screen before the full load)', () => {
  test('scanByUpdatedAt reads only what it needs, in order, with filter and offset; count counts all', async () => {
    const storage = new IndexedDbStorage({ userId: 'u1', workspaceId: 'scan', indexedDB: new IDBFactory() })
    const catalog = await storage.openCatalog()
    await catalog.put(
      Array.from({ length: 3000 }, (_, i) =>
        entry(`T-${i}`, { updatedAt: i % 10 === 0 ? null : i, archived: i % 7 === 0, fields: { status: i % 2 ? 'open' : 'done' } }),
      ),
    )
    const seen: string[] = []
    const page = await catalog.scanByUpdatedAt!({
      direction: 'desc',
      offset: 1,
      limit: 3,
      filter: (e) => {
        seen.push(e.id)
        return !e.archived && e.fields.status === 'open'
      },
    })
    expect(page.map((e) => e.id)).toEqual(['T-2997', 'T-2995', 'T-2993'])
    expect(seen.length).toBeLessThan(20) // it stopped early
    expect(await catalog.count!()).toBe(3000)
    const all = await catalog.loadAll() // in chunks of 1000
    expect(all).toHaveLength(3000)
    catalog.close()
  })
})
