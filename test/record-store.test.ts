/**
 * The record store against a real relay process (SQLite), in Node with
 * fake-indexeddb: a new device fills its catalog with `pull()` over one
 * socket, and offline edits survive a reload and reach 0 pending only after
 * the relay's durable ack.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { IDBFactory } from 'fake-indexeddb'
import { ErrorCode, MemoryStorage, RecordStore, SyncClient, SyncError, type RecordStoreOptions } from '@concord/engine'
import { appSchemas } from '../apps/web/src/lib/schemas.js'
import { removeDir, startRelay, type RelayProcess } from './helpers/relayProcess.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcpProxy.js'

let relay: RelayProcess
const clients: SyncClient[] = []
const stores: RecordStore[] = []
const proxies: TcpProxy[] = []

beforeAll(async () => {
  relay = await startRelay()
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const c of clients.splice(0)) c.close()
  for (const p of proxies.splice(0)) await p.close()
})

const client = (url = relay.wsUrl): SyncClient => {
  const c = new SyncClient({ url, WebSocket: WebSocket as never, reconnect: { minDelay: 20, maxDelay: 200 } })
  clients.push(c)
  return c
}

const store = (options: Partial<RecordStoreOptions> & Pick<RecordStoreOptions, 'client'>): RecordStore => {
  const s = new RecordStore({
    userId: 'ada',
    workspaceId: 'rs',
    schemas: appSchemas,
    tabs: false,
    storage: new MemoryStorage(),
    ...options,
  })
  stores.push(s)
  return s
}

/** Resolves when `read()` satisfies `predicate`, re-checking on every `event`. */
const until = <T>(
  emitter: { on(e: string, f: () => void): void; off(e: string, f: () => void): void },
  event: string,
  read: () => T,
  predicate: (v: T) => boolean,
): Promise<void> =>
  new Promise((resolve) => {
    if (predicate(read())) return resolve()
    const listener = (): void => {
      if (!predicate(read())) return
      emitter.off(event, listener)
      resolve()
    }
    emitter.on(event, listener)
  })

describe('record store ↔ relay', () => {
  it('listDocs pages through a workspace; fetchDoc returns state and the durable state vector; errors are SyncErrors', async () => {
    const writer = client()
    const handles = Array.from({ length: 12 }, (_, i) => writer.open(`pages/T-${String(i).padStart(2, '0')}`))
    handles.forEach((h, i) => h.doc.getText('t').insert(0, `doc ${i}`))
    await writer.flush()
    const reader = client()
    expect(await reader.listDocs('pages/', { pageSize: 5 })).toEqual(handles.map((h) => h.name))
    const fetched = await reader.fetchDoc('pages/T-03')
    const doc = new Y.Doc()
    Y.applyUpdate(doc, fetched.update)
    expect(doc.getText('t').toString()).toBe('doc 3')
    expect(Y.decodeStateVector(fetched.stateVector)).toEqual(Y.decodeStateVector(Y.encodeStateVector(handles[3]!.doc)))
    const missing = await reader.fetchDoc('pages/none')
    expect(Y.decodeUpdate(missing.update).structs).toHaveLength(0)
    const error = await reader.listDocs('bad prefix/').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SyncError)
    expect(error).toMatchObject({ code: ErrorCode.invalidDocName, permanent: true })
    expect(reader.docNames).toEqual([])
  })

  it('a new device pulls every record of the workspace over one socket and lists them without opening any', async () => {
    const laptop = store({ client: client() })
    for (let i = 0; i < 60; i++) {
      const t = await laptop.create(
        'ticket',
        { title: `Ticket ${i}`, status: i % 2 ? 'open' : 'done', labels: ['imported'] },
        { id: `T-${i}` },
      )
      t.close()
    }
    await laptop.flush()

    const phoneClient = client()
    const phone = store({ client: phoneClient, storage: undefined, indexedDB: new IDBFactory() })
    const result = await phone.pull()
    expect(result).toMatchObject({ listed: 60, fetched: 60, changed: 60, unchanged: 0, failed: [] })
    expect(phone.openIds).toEqual([])
    expect(phone.pending).toBe(0)
    expect(phone.list({ where: { status: 'open' }, limit: 100 }).total).toBe(30)
    expect(phone.list({ sort: { by: 'title', direction: 'asc' }, limit: 1 }).entries[0]).toMatchObject({ id: 'T-0', title: 'Ticket 0' })
    expect(phoneClient.docNames).toEqual([])
    // A second pull transfers nothing new: the relay lists every record at the change sequence fetched, so none is fetched.
    expect(await phone.pull()).toMatchObject({ listed: 60, fetched: 0, changed: 0, unchanged: 60 })
  })

  it('offline edits survive a reload with their pending counts, and reach 0 only after the durable ack', async () => {
    const proxy = await startTcpProxy(Number(new URL(relay.url).port))
    proxies.push(proxy)
    const factory = new IDBFactory()
    const first = client(proxy.wsUrl)
    const before = store({ client: first, storage: undefined, indexedDB: factory })
    const ticket = await before.create('ticket', { title: 'Before the train' }, { id: 'TR-1' })
    await ticket.flush()
    proxy.cut()
    await until(
      first,
      'status',
      () => first.status,
      (s) => s !== 'online',
    )
    ticket.text('description').insert(0, 'written offline')
    ticket.flushHistory() // the typing's history entry now, not when the record closes
    ticket.set('status', 'in_progress')
    const pending = ticket.pending
    expect(ticket.pendingFields).toEqual(['description', 'status'])
    await ticket.whenSaved()
    ticket.close()
    await before.close()
    first.close()

    // "Reload": new client and store, still offline.
    const second = client(proxy.wsUrl)
    const after = store({ client: second, storage: undefined, indexedDB: factory })
    await after.ready
    expect(after.pending).toBe(pending)
    const again = await after.open('TR-1')
    expect(again.read().fields).toMatchObject({ description: 'written offline', status: 'in_progress' })
    expect(again.pendingFields).toEqual(['description', 'status'])

    let onlineWithPending = false
    second.on('status', (s) => {
      if (s === 'online' && again.pending > 0) onlineWithPending = true
    })
    proxy.restore()
    await until(
      after,
      'pending',
      () => after.pending,
      (n) => n === 0,
    )
    expect(onlineWithPending).toBe(true)
    expect(again.pendingFields).toEqual([])

    const reader = client()
    const check = reader.open('rs/TR-1')
    await check.synced
    expect(check.doc.getText('text:description').toString()).toBe('written offline')
    again.close()
  })
})
