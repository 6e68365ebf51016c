/**
 * Pending counts only this device's changes. The relay acks a connection
 * only when a commit stored its updates (and once per subscription), so:
 *
 * - a device that only receives others' edits shows nothing pending, with
 *   no ack, and also after a reload;
 * - this device's unacked changes stay pending after a reload (the client
 *   ids it wrote with are stored with the record), others' received ones do not;
 * - a doc opened with a Y.Doc that holds others' changes, and no own client
 *   ids given, counts their client ids as its own only until the relay sends
 *   more of their changes;
 * - a second tab counts the first tab's unacked edits as pending until the
 *   first tab shares the relay's ack — or, when that tab closed before the
 *   ack came, sends them itself and is acked.
 *
 * Against the real relay in-process (commits held until `relay.ack()`),
 * fake-indexeddb and Node's BroadcastChannel for tabs.
 */
import { IDBFactory } from 'fake-indexeddb'
import * as Y from 'yjs'
import { afterEach, expect, test, vi } from 'vitest'
import { RecordStore, type RecordStoreOptions, type SyncClient } from '../src/index.js'
import { TAB_ACK_FALLBACK_MS } from '../src/records/RecordTabSharing.js'
import type { TestRelay } from './relayHarness.js'
import { Harness, statusIs } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  vi.useRealTimers()
  await h.close()
})

let workspaces = 0
/** A workspace of its own per test: the tab channel is named after it. */
const workspace = (): string => `own-pending-${process.pid}-${++workspaces}`

const store = (client: SyncClient, workspaceId: string, options: Partial<RecordStoreOptions>): RecordStore => {
  const created = new RecordStore({ client, userId: 'u1', workspaceId, schemas: testSchemas, tabs: false, ...options })
  h.keep(created)
  return created
}

/** A client that reconnects only when told. */
const manualClient = (relay: TestRelay): SyncClient =>
  h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })

/** Resolves when `read()` satisfies `predicate`, re-checking on every `event` of `emitter`. */
const until = <T>(
  emitter: { on(event: string, f: () => void): void; off(event: string, f: () => void): void },
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

test('a device that only receives others’ edits has nothing pending, without any ack, also after a reload', async () => {
  const ws = workspace()
  const relay = h.relay()
  const writer = store(h.client(relay), ws, {})
  const factory = new IDBFactory()
  const readerClient = manualClient(relay)
  const reader = store(readerClient, ws, { storage: undefined, indexedDB: factory })
  await relay.settle()
  const written = await writer.create('ticket', { title: 'Theirs' }, { id: 'T-1' })
  await relay.settle()
  relay.ack()
  await relay.settle()
  const read = await reader.open('T-1')
  await read.sync.synced
  await relay.settle()

  // Others keep editing; the relay stores nothing yet: still nothing is pending here.
  written.text('title').insert(6, ' and more')
  written.set('status', 'done')
  await relay.settle()
  expect(read.get('title')).toBe('Theirs and more')
  expect(read.pending).toBe(0)
  expect(read.pendingFields).toEqual([])
  expect(reader.pending).toBe(0)
  expect(reader.list().entries).toMatchObject([{ id: 'T-1', pending: 0 }])
  const acks: unknown[] = []
  read.sync.on('ack', (acked) => acks.push(acked))
  relay.ack()
  await relay.settle()
  expect(acks).toEqual([]) // the relay acks the writer, not the reader
  expect(written.pending).toBe(0)

  // Reload the reader, offline: what it received is not pending either.
  written.set('priority', 'high')
  await relay.settle()
  expect(read.get('priority')).toBe('high')
  await reader.settled()
  read.close()
  await reader.close()
  readerClient.close()
  relay.accepting = false
  const reloaded = store(manualClient(relay), ws, { storage: undefined, indexedDB: factory })
  await reloaded.ready
  expect(reloaded.pending).toBe(0)
  const again = await reloaded.open('T-1')
  expect(again.get('priority')).toBe('high')
  expect(again.pending).toBe(0)
  again.close()
})

test('after a reload, this device’s unacked changes are still pending and others’ received ones are not', async () => {
  const ws = workspace()
  const relay = h.relay()
  const writer = store(h.client(relay), ws, {})
  const factory = new IDBFactory()
  const firstClient = manualClient(relay)
  const first = store(firstClient, ws, { storage: undefined, indexedDB: factory })
  await relay.settle()
  const written = await writer.create('ticket', { title: 'Shared' }, { id: 'T-1' })
  await relay.settle()
  relay.ack()
  await relay.settle()
  const mine = await first.open('T-1')
  await mine.sync.synced
  await relay.settle()

  // Both edit; the relay holds every commit: only this device's edit is pending here.
  written.set('status', 'done')
  await relay.settle()
  expect(mine.get('status')).toBe('done')
  expect(mine.pending).toBe(0)
  mine.set('priority', 'high')
  await relay.settle()
  const own = mine.pending
  expect(own).toBeGreaterThan(0)
  expect(mine.pendingFields).toEqual(['priority'])
  await first.settled()
  mine.close()
  await first.close()
  firstClient.close()

  // Reload, offline: the own edit is still pending, the received one is not.
  relay.accepting = false
  const secondClient = manualClient(relay)
  const second = store(secondClient, ws, { storage: undefined, indexedDB: factory })
  await until(
    second,
    'pending',
    () => second.pending,
    (n) => n === own,
  )
  const reopened = await second.open('T-1')
  expect(reopened.get('status')).toBe('done')
  expect(reopened.pending).toBe(own)
  expect(reopened.pendingFields).toEqual(['priority'])

  // Back online: the relay stores it and acks this device.
  relay.accepting = true
  secondClient.reconnect()
  await statusIs(secondClient, 'online')
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(reopened.pending).toBe(0)
  expect(second.pending).toBe(0)
  expect(writer.pending).toBe(0)
  reopened.close()
})

test('a second tab counts the first tab’s unacked edits as pending until that tab shares the relay’s ack', async () => {
  const ws = workspace()
  const relay = h.relay()
  const factory = new IDBFactory()
  const tabA = store(h.client(relay), ws, { storage: undefined, indexedDB: factory, tabs: true })
  const tabB = store(h.client(relay), ws, { storage: undefined, indexedDB: factory, tabs: true })
  await Promise.all([tabA.ready, tabB.ready])
  await relay.settle()
  const a = await tabA.create('ticket', { title: 'Tabbed' }, { id: 'T-1' })
  const b = await tabB.open('T-1')
  await until(
    b,
    'change',
    () => b.get('title'),
    (title) => title === 'Tabbed',
  )
  await until(
    b,
    'pending',
    () => b.pending,
    (n) => n === a.pending && n > 0,
  )
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(a.pending).toBe(0)
  await until(
    b,
    'pending',
    () => b.pending,
    (n) => n === 0,
  )

  // A edits and closes before the relay acks: B counts the edit as pending, then sends it itself.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  a.set('status', 'done')
  await until(
    b,
    'pending',
    () => b.pending,
    (n) => n > 0,
  )
  await relay.settle()
  await tabA.settled()
  a.close()
  await tabA.close()
  relay.ack()
  await relay.settle()
  expect(b.pending).toBeGreaterThan(0) // the ack went to A's connection, which is gone
  vi.advanceTimersByTime(TAB_ACK_FALLBACK_MS)
  vi.useRealTimers()
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(b.pending).toBe(0)
  expect(b.get('status')).toBe('done')
  b.close()
})

test('a doc opened with a Y.Doc that already holds others’ changes (no own client ids given) counts nothing of theirs once they write again', async () => {
  const relay = h.relay()
  const ada = h.client(relay)
  const bob = h.client(relay)
  const adaDoc = new Y.Doc()
  let a = ada.open('acme/A', { doc: adaDoc })
  const b = bob.open('acme/A')
  await relay.settle()
  b.doc.getText('t').insert(0, 'Checkout')
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(adaDoc.getText('t').toString()).toBe('Checkout')

  // Ada's app opens the record again with its Y.Doc, which holds Bob's words: they might be Ada's, until acked
  a.close()
  a = ada.open('acme/A', { doc: adaDoc })
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(a.pending).toBe(0)

  // Bob writes again: his words reach Ada from the relay, and the relay acks only Bob's connection
  b.doc.getText('t').insert(8, ' times out')
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(adaDoc.getText('t').toString()).toBe('Checkout times out')
  expect(b.pending).toBe(0)
  expect(a.pending).toBe(0)

  // Ada's own words still count until acked
  adaDoc.getText('t').insert(0, 'iOS: ')
  expect(a.pending).toBeGreaterThan(0)
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(a.pending).toBe(0)
})
