/**
 * `store.retryStorage()` tells the truth: a retry that fails again is
 * reported again (`storage-error`) and resolves with `ok: false` and the
 * failure; one that works resolves with `ok: true`; a store running in
 * memory says that retrying cannot help.
 */
import { afterEach, expect, test } from 'vitest'
import { MemoryStorage, StorageError, type RecordStore, type RecordStoreOptions, type StorageErrorEvent } from '../src/index.js'
import { GatedStorage, Harness } from './helpers.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

const newStore = (options: Partial<RecordStoreOptions>): RecordStore =>
  h.store({ client: h.client(h.relay({ autoAck: true })), ...options })

test('a retry that fails again is reported again and resolves with the failure; one that works resolves ok', async () => {
  const storage = new GatedStorage(new MemoryStorage(), 'failing')
  const store = newStore({ storage })
  const events: StorageErrorEvent[] = []
  store.on('storage-error', (event) => events.push(event))
  const ticket = await store.create('ticket', { title: 'Quota' }, { id: 'T-1' })
  await ticket.whenSaved()
  expect(await store.retryStorage()).toEqual({ ok: true, persistent: true, failures: [] })

  storage.failWith = new StorageError('quota', 'QuotaExceededError: the quota has been exceeded')
  ticket.set('status', 'done')
  await store.settled()
  expect(events.map((e) => [e.kind, e.recordId])).toEqual([['quota', 'T-1']])
  expect(ticket.isSaved).toBe(false)

  const failed = await store.retryStorage()
  expect(failed).toMatchObject({ ok: false, persistent: true, failures: [{ kind: 'quota', recordId: 'T-1' }] })
  expect(failed.failures[0]!.reason).toMatch(/quota/)
  expect(events.map((e) => [e.kind, e.recordId])).toEqual([
    ['quota', 'T-1'],
    ['quota', 'T-1'],
  ]) // reported again
  expect(ticket.isSaved).toBe(false)
  expect(ticket.storageError?.kind).toBe('quota')

  storage.failWith = null
  expect(await store.retryStorage()).toEqual({ ok: true, persistent: true, failures: [] })
  expect(ticket.isSaved).toBe(true)
  expect(ticket.storageError).toBe(null)
  expect(events.length).toBe(2)
  ticket.close()
})

test('a store running in memory says that retrying cannot help', async () => {
  const store = newStore({ indexedDB: null })
  await store.ready
  expect(store.persistent).toBe(false)
  const ticket = await store.create('ticket', { title: 'In memory' })
  const result = await store.retryStorage()
  expect(result).toMatchObject({ ok: false, persistent: false, failures: [{ kind: 'unavailable', recordId: null }] })
  expect(ticket.isSaved).toBe(false)
  ticket.close()
})
