/**
 * `store.retry(id)`: a record the relay rejected stays parked (nothing is
 * resent on its own); once the cause is gone, retry subscribes it again and
 * its pending changes reach the relay.
 */
import { afterEach, expect, test } from 'vitest'
import { ErrorCode, MemoryStorage, RecordStore, type SyncError } from '../src/index.js'
import { Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

test('retry after a rejection sends the pending changes; unknown or healthy records are left alone', async () => {
  const relay = h.relay()
  const client = h.client(relay)
  await relay.settle()
  const store = new RecordStore({
    client,
    userId: 'u1',
    workspaceId: 'acme',
    schemas: testSchemas,
    tabs: false,
    storage: new MemoryStorage(),
  })
  h.keep(store)
  relay.rejectWrites.set('acme/T-1', { code: ErrorCode.permissionDenied, reason: 'read-only' })
  const rejected = new Promise<SyncError>((resolve) => store.on('sync-error', (error) => resolve(error)))
  const ticket = await store.create('ticket', { title: 'Draft' }, { id: 'T-1' })
  await relay.settle()
  expect((await rejected).permanent).toBe(true)
  expect(ticket.pending).toBeGreaterThan(0)
  expect(store.retry('T-2')).toBe(false)

  relay.rejectWrites.delete('acme/T-1')
  expect(store.retry('T-1')).toBe(true)
  expect(store.retry('T-1')).toBe(false) // not parked any more
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(ticket.pending).toBe(0)
  expect(store.unsynced()).toEqual([])
  ticket.close()
})
