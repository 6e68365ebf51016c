/**
 * The contract every adapter of the record store's storage port must meet.
 * An adapter's test is `runStorageContract('name', () => new MyStorage())`.
 */
import { describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import type { CatalogEntry, StorageBackend } from '../src/index.js'

const update = (text: string, doc = new Y.Doc()): Uint8Array => {
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc)
}

const textOf = (updates: Uint8Array[]): string => {
  const doc = new Y.Doc()
  for (const u of updates) Y.applyUpdate(doc, u)
  return doc.getText('t').toString()
}

export const entry = (id: string, extra: Partial<CatalogEntry> = {}): CatalogEntry => ({
  id,
  type: 'ticket',
  title: `Ticket ${id}`,
  fields: { status: 'open' },
  createdAt: 1,
  updatedAt: 2,
  archived: false,
  deleted: false,
  pending: 0,
  pendingFields: [],
  stateVector: new Uint8Array([0]),
  local: true,
  ...extra,
})

/** Runs the storage contract against fresh backends from `create`. */
export const runStorageContract = (name: string, create: () => StorageBackend | Promise<StorageBackend>): void => {
  describe(`storage contract: ${name}`, () => {
    test('a new record loads empty', async () => {
      const backend = await create()
      const record = await backend.openRecord('r1')
      expect(await record.load()).toEqual({ updates: [], meta: {} })
      expect(record.rowCount).toBe(0)
      record.close()
    })

    test('an open that created the record says so; a later open does not', async () => {
      const backend = await create()
      const first = await backend.openRecord('r1')
      expect(first.created).toBe(true)
      await first.write([update('x')])
      first.close()
      const again = await backend.openRecord('r1')
      expect(again.created).toBe(false)
      expect((await again.load()).updates).toHaveLength(1)
      again.close()
    })

    test('written updates and meta come back in order, also after reopening', async () => {
      const backend = await create()
      const record = await backend.openRecord('r1')
      const doc = new Y.Doc()
      const a = update('hello ', doc)
      const b = Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc)) // empty diff
      const c = (() => {
        const before = Y.encodeStateVector(doc)
        doc.getText('t').insert(6, 'world')
        return Y.encodeStateAsUpdate(doc, before)
      })()
      await record.write([a, b])
      await record.write([c], { acked: new Uint8Array([1, 2, 3]), fieldClocks: [['title', [[1, 5]]]] })
      expect(record.rowCount).toBe(3)
      record.close()
      const again = await backend.openRecord('r1')
      const loaded = await again.load()
      expect(loaded.updates).toHaveLength(3)
      expect(textOf(loaded.updates)).toBe('hello world')
      expect(Array.from(loaded.meta.acked!)).toEqual([1, 2, 3])
      expect(loaded.meta.fieldClocks).toEqual([['title', [[1, 5]]]])
      again.close()
    })

    test('meta keys are replaced independently', async () => {
      const backend = await create()
      const record = await backend.openRecord('r1')
      await record.write([], { acked: new Uint8Array([1]) })
      await record.write([], { fieldClocks: [['x', [[2, 3]]]] })
      await record.write([], { acked: new Uint8Array([9]) })
      await record.write([], { ownClients: [4_000_000_001, 17], viewed: new Uint8Array([0]) })
      const { meta } = await record.load()
      expect(Array.from(meta.acked!)).toEqual([9])
      expect(meta.fieldClocks).toEqual([['x', [[2, 3]]]])
      expect(meta.ownClients).toEqual([4_000_000_001, 17])
      expect(Array.from(meta.viewed!)).toEqual([0])
      record.close()
    })

    test('compact replaces the log with what merge returns, and sees rows written by another connection', async () => {
      const backend = await create()
      const first = await backend.openRecord('r1')
      const second = await backend.openRecord('r1')
      const doc = new Y.Doc()
      await first.write([update('a', doc)])
      await second.write([update('b', new Y.Doc())]) // another tab
      let seen: Uint8Array[] = []
      await first.compact((rows) => {
        seen = rows
        return Y.mergeUpdates(rows)
      })
      expect(seen).toHaveLength(2)
      const loaded = await second.load()
      expect(loaded.updates).toHaveLength(1)
      expect(textOf(loaded.updates).split('').sort().join('')).toBe('ab')
      first.close()
      second.close()
    })

    test('records are separate', async () => {
      const backend = await create()
      const a = await backend.openRecord('a')
      const b = await backend.openRecord('b')
      await a.write([update('only a')])
      expect((await b.load()).updates).toHaveLength(0)
      a.close()
      b.close()
    })

    test('catalog: put, load, replace, remove', async () => {
      const backend = await create()
      const catalog = await backend.openCatalog()
      await catalog.put([entry('a'), entry('b', { pending: 3, pendingFields: ['title'] })])
      await catalog.put([entry('a', { title: 'renamed' })])
      await catalog.remove(['missing'])
      let all = (await catalog.loadAll()).sort((x, y) => x.id.localeCompare(y.id))
      expect(all.map((e) => [e.id, e.title, e.pending])).toEqual([
        ['a', 'renamed', 0],
        ['b', 'Ticket b', 3],
      ])
      expect(all[1]!.stateVector).toBeInstanceOf(Uint8Array)
      await catalog.remove(['a'])
      catalog.close()
      const again = await backend.openCatalog()
      all = await again.loadAll()
      expect(all.map((e) => e.id)).toEqual(['b'])
      again.close()
    })

    test('listRecords (when implemented) lists every stored record, listed in the catalog or not', async () => {
      const backend = await create()
      if (backend.listRecords === undefined) return
      const a = await backend.openRecord('a')
      const b = await backend.openRecord('b-2')
      await a.write([update('a')])
      await b.write([update('b')])
      const catalog = await backend.openCatalog()
      await catalog.put([entry('a')], { strict: true })
      const ids = await backend.listRecords()
      expect(ids === null ? null : [...ids].sort()).toEqual(['a', 'b-2'])
      a.close()
      b.close()
      catalog.close()
    })

    test('wipe removes records and catalog', async () => {
      const backend = await create()
      const record = await backend.openRecord('r1')
      await record.write([update('x')])
      const catalog = await backend.openCatalog()
      await catalog.put([entry('r1')])
      await backend.wipe(['r1'])
      const after = await backend.openRecord('r1')
      expect((await after.load()).updates).toHaveLength(0)
      after.close()
      const catalogAfter = await backend.openCatalog()
      expect(await catalogAfter.loadAll()).toEqual([])
      catalogAfter.close()
    })
  })
}
