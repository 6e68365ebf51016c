/**
 * Dormant rooms on an in-process relay (SQLite): a loaded doc nobody writes
 * to is held as its encoded state, its `Y.Doc` dropped. People keep working
 * with it as before: a new device catches up, a reconnecting one resumes,
 * presence comes and goes, all without waking it; the next edit wakes it and
 * reaches everyone, acked and stored. A room with updates not yet stored, or
 * with deletions waiting for their items, stays awake. A doc stored as one
 * update starts dormant when it is loaded.
 *
 * The tests put rooms to sleep by calling the registry's sweep
 * (`sleepUnused`, what its timer runs) instead of waiting for the timer.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { SyncClient, type DocHandle } from '@concord/engine'
import { MessageType } from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import type { DocUpdates } from '../apps/relay/src/storage/Storage.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { makeTempDir, removeDir, waitFor } from './helpers/relayProcess.js'

let relay: Relay | null = null
let dir: string | null = null
const clients: SyncClient[] = []
const raws: RawMuxClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const c of raws.splice(0)) c.close()
  await relay?.close()
  relay = null
  if (dir !== null) removeDir(dir)
  dir = null
})

const start = async (storage?: SqliteStorage, options: { sweepSliceMs?: number; dormantAfterMs?: number } = {}): Promise<Relay> => {
  dir ??= makeTempDir()
  // the sweep's timer off: the tests run the sweep themselves
  relay = await createRelay({
    storage: storage ?? SqliteStorage.open(`${dir}/concord.sqlite`),
    port: 0,
    processMetrics: false,
    dormantAfterMs: 0,
    ...options,
  })
  return relay
}

const client = (name: string): SyncClient => {
  const c = new SyncClient({
    url: relay!.url.replace(/^http/, 'ws'),
    WebSocket: WebSocket as never,
    user: { id: name.toLowerCase(), name },
    reconnect: { minDelay: 20, maxDelay: 200 },
  })
  clients.push(c)
  return c
}

const text = (h: DocHandle): string => h.doc.getText('body').toString()
const status = (h: DocHandle): unknown => h.doc.getMap('fields').get('status')
const namesPresent = (h: DocHandle): string[] =>
  [...h.awareness.getStates().entries()]
    .filter(([id]) => id !== h.doc.clientID)
    .map(([, state]) => (state as { user?: { name?: string } }).user?.name ?? '?')
    .sort()

/** Rooms may go dormant (also when loaded), but the sweep's timer does not run during a test. */
const SWEEP_HOURLY = { dormantAfterMs: 3_600_000 }

/** A raw client of `r` subscribed to `doc`, its first ack received. */
const rawSubscriber = async (r: Relay, doc: string): Promise<RawMuxClient> => {
  const c = new RawMuxClient(r.url.replace(/^http/, 'ws'))
  raws.push(c)
  await c.open()
  c.subscribe(doc)
  await c.waitFor((m) => m.type === MessageType.ack && m.doc === doc, `the first ack of ${doc}`)
  return c
}

/** An offline writer's text inserted, then deleted: the insert and the deletion as two updates. */
const insertThenDelete = (): { writer: Y.Doc; insert: Uint8Array; deletion: Uint8Array } => {
  const writer = new Y.Doc()
  writer.getText('body').insert(0, 'gone')
  const insert = Y.encodeStateAsUpdate(writer)
  const before = Y.encodeStateVector(writer)
  writer.getText('body').delete(0, 4)
  return { writer, insert, deletion: Y.encodeStateAsUpdate(writer, before) }
}

/** Runs the registry's sweep twice: the first marks every doc unused, the second puts the unused ones to sleep. */
const sleepRooms = (r: Relay): number => {
  r.rooms.sleepUnused()
  return r.rooms.sleepUnused()
}

/** The value of a metric without labels. */
const metric = async (r: Relay, name: string): Promise<number> => {
  const body = await (await fetch(`${r.url}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(body)?.[1] ?? NaN)
}

describe('dormant rooms', () => {
  it('a dormant ticket serves a new device, presence and a resume without waking; the next edit wakes it and reaches everyone, stored', async () => {
    const r = await start()
    const ada = client('Ada')
    const bob = client('Bob')
    const a = ada.open('acme/T-1')
    const b = bob.open('acme/T-1')
    await Promise.all([a.synced, b.synced])
    a.doc.getText('body').insert(0, 'Login fails')
    a.doc.getMap('fields').set('status', 'open')
    await ada.flush()
    await waitFor(() => text(b) === 'Login fails' && status(b) === 'open', 'Bob sees the ticket')
    await waitFor(() => namesPresent(b).includes('Ada'), 'Bob sees Ada')

    const room = r.rooms.peek('acme/T-1')!
    expect(sleepRooms(r)).toBe(1)
    expect(room.isDormant).toBe(true)
    expect(await metric(r, 'concord_rooms_dormant')).toBe(1)
    expect(await metric(r, 'concord_rooms_woken_total')).toBe(0)

    // a new device catches up from the encoded state and sees who is there; the room stays dormant
    const cy = client('Cy')
    const c = cy.open('acme/T-1')
    await c.synced
    expect(text(c)).toBe('Login fails')
    expect(status(c)).toBe('open')
    await waitFor(() => namesPresent(c).join() === 'Ada,Bob', 'Cy sees Ada and Bob')
    await waitFor(() => namesPresent(a).includes('Cy'), 'Ada sees Cy arrive')
    expect(c.pending).toBe(0)
    expect(room.isDormant).toBe(true)

    // Bob closes his laptop and comes back: his resume is answered from the encoded state too
    bob.close()
    await waitFor(() => !namesPresent(a).includes('Bob'), 'Bob leaves Ada’s presence')
    const bob2 = client('Bob')
    const b2 = bob2.open('acme/T-1')
    await b2.synced
    expect(text(b2)).toBe('Login fails')
    expect(room.isDormant).toBe(true)

    // Cy edits: the room wakes, Ada and Bob see it, Cy's change is acked (stored)
    c.doc.getText('body').insert(11, ' on Safari')
    c.doc.getMap('fields').set('status', 'doing')
    await cy.flush()
    expect(c.pending).toBe(0)
    expect(room.isDormant).toBe(false)
    expect(await metric(r, 'concord_rooms_woken_total')).toBe(1)
    for (const h of [a, b2]) await waitFor(() => text(h) === 'Login fails on Safari' && status(h) === 'doing', 'everyone sees Cy’s edit')

    // dormant again, then two people type at once: both edits merge and are stored
    expect(sleepRooms(r)).toBe(1)
    a.doc.getText('body').insert(0, '[P1] ')
    b2.doc.getText('body').insert(b2.doc.getText('body').length, '!')
    await Promise.all([ada.flush(), bob2.flush()])
    for (const h of [a, b2, c]) await waitFor(() => text(h) === '[P1] Login fails on Safari!', 'the merged text everywhere')
    expect(a.pending + b2.pending + c.pending).toBe(0)

    // what the relay stored is what everyone sees: a fresh relay on the same file serves it
    for (const x of [ada, bob2, cy]) x.close()
    await r.close()
    relay = null
    const again = await start()
    expect(again.rooms.size).toBe(0)
    const dee = client('Dee')
    const d = dee.open('acme/T-1')
    await d.synced
    expect(text(d)).toBe('[P1] Login fails on Safari!')
    expect(status(d)).toBe('doing')
  })

  it('a catch-up bigger than a chunk and a stock y-websocket client are served from the encoded state; the y-websocket client’s edit wakes it', async () => {
    const r = await start()
    const writer = client('Ada')
    const w = writer.open('acme/big')
    await w.synced
    // ~600 KiB: more than a chunk, so the answer goes in parts
    const body = w.doc.getText('body')
    for (let i = 0; i < 60; i++) body.insert(body.length, `${i} `.padEnd(10 * 1024, 'x'))
    await writer.flush()
    expect(sleepRooms(r)).toBe(1)
    const room = r.rooms.peek('acme/big')!
    expect(room.isDormant).toBe(true)
    const reader = new RawMuxClient(r.url.replace(/^http/, 'ws'))
    raws.push(reader)
    await reader.open()
    const doc = reader.subscribe('acme/big')
    await reader.waitFor((m) => m.type === MessageType.sync && m.syncType === 1 && m.doc === 'acme/big', 'the last part (step 2)')
    expect(reader.received.filter((m) => m.type === MessageType.sync && m.syncType === 2).length).toBeGreaterThan(0)
    expect(doc.getText('body').toString()).toBe(body.toString())
    expect(room.isDormant).toBe(true)

    // a stock y-websocket client (one socket per doc): the relay's step 1 and its step 2 come from the encoded state
    const ydoc = new Y.Doc()
    const provider = new WebsocketProvider(r.url.replace(/^http/, 'ws'), 'acme/big', ydoc, {
      WebSocketPolyfill: WebSocket as never,
      disableBc: true,
    })
    try {
      await new Promise<void>((resolve) => provider.once('sync', () => resolve()))
      expect(ydoc.getText('body').toString()).toBe(body.toString())
      expect(room.isDormant).toBe(true)
      // its edit wakes the room and reaches the engine client
      ydoc.getText('body').insert(0, 'from y-websocket ')
      await waitFor(() => body.toString().startsWith('from y-websocket '), 'the engine client sees the y-websocket edit')
      expect(room.isDormant).toBe(false)
      expect(doc.getText('body').toString()).toBe(body.toString())
    } finally {
      provider.destroy()
    }
  })

  it('answers a few catch-ups of clients that have part of the doc from its encoded state, and wakes when asked again and again', async () => {
    const r = await start()
    const writer = client('Ada')
    const w = writer.open('acme/T-5')
    await w.synced
    w.doc.getText('body').insert(0, 'first line')
    await writer.flush()
    // what a client that was offline since then has
    const old = Y.encodeStateAsUpdate(w.doc)
    w.doc.getText('body').insert(10, ', second line')
    await writer.flush()
    expect(sleepRooms(r)).toBe(1)
    const room = r.rooms.peek('acme/T-5')!
    const resumeOnce = async (): Promise<string> => {
      const c = new RawMuxClient(r.url.replace(/^http/, 'ws'))
      raws.push(c)
      await c.open()
      const doc = new Y.Doc()
      Y.applyUpdate(doc, old)
      c.docs.set('acme/T-5', doc)
      c.resume(['acme/T-5'])
      await c.waitFor((m) => m.type === MessageType.resumed, 'resumed')
      return doc.getText('body').toString()
    }
    for (let i = 0; i < 4; i++) {
      expect(await resumeOnce()).toBe('first line, second line')
      expect(room.isDormant).toBe(true)
    }
    expect(await resumeOnce()).toBe('first line, second line')
    expect(room.isDormant).toBe(false)
  })

  it('stays awake while its updates are not stored, and goes dormant once they are', async () => {
    dir = makeTempDir()
    const storage = SqliteStorage.open(`${dir}/concord.sqlite`)
    // commits wait while `gate` is set
    let gate: Promise<void> | null = null
    let waiting = 0
    let release = (): void => {}
    const append = storage.appendUpdates.bind(storage)
    storage.appendUpdates = async (entries: DocUpdates[]) => {
      if (gate !== null) {
        waiting++
        await gate
        waiting--
      }
      return append(entries)
    }
    const r = await start(storage)
    const c = new RawMuxClient(r.url.replace(/^http/, 'ws'))
    raws.push(c)
    await c.open()
    const doc = c.subscribe('acme/T-2')
    await c.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/T-2', 'first ack')
    gate = new Promise((resolve) => (release = resolve))
    const before = Y.encodeStateVector(doc)
    doc.getText('body').insert(0, 'not stored yet')
    c.sendUpdate('acme/T-2', Y.encodeStateAsUpdate(doc, before))
    const room = r.rooms.peek('acme/T-2')!
    await waitFor(() => waiting === 1 && room.doc.getText('body').length > 0, 'the update applied, its commit waiting')
    expect(sleepRooms(r)).toBe(0)
    expect(sleepRooms(r)).toBe(0)
    expect(room.isDormant).toBe(false)
    gate = null
    release()
    await c.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'the ack of the edit')
    expect(sleepRooms(r)).toBe(1)
    expect(room.encodeState().byteLength).toBeGreaterThan(0)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, room.encodeState())
    expect(copy.getText('body').toString()).toBe('not stored yet')
    expect(room.isDormant).toBe(true)
  })

  it('keeps a deletion whose items it does not have awake, and stores it', async () => {
    const r = await start()
    const c = await rawSubscriber(r, 'acme/T-3')
    // an offline writer's insert and delete; the relay gets only the delete
    const { writer, insert, deletion } = insertThenDelete()
    c.sendUpdate('acme/T-3', deletion)
    const room = r.rooms.peek('acme/T-3')!
    await waitFor(() => room.doc.store.pendingDs !== null, 'the deletion held by the relay')
    expect(sleepRooms(r)).toBe(0)
    expect(room.isDormant).toBe(false)
    c.sendUpdate('acme/T-3', insert)
    await waitFor(() => room.doc.store.pendingDs === null, 'the deletion applied')
    await c.waitFor((m) => m.type === MessageType.ack && m.ack!.get(writer.clientID) === 4, 'the ack of both')
    expect(sleepRooms(r)).toBe(1)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, room.encodeState())
    expect(copy.getText('body').toString()).toBe('')
    expect(Y.encodeStateVector(copy)).toEqual(Y.encodeStateVector(writer))
  })

  it('a ticket stored as one update opens dormant after a restart: served and credited from the stored bytes; the next edit wakes it, stored', async () => {
    let r = await start()
    const ada = client('Ada')
    const a = ada.open('acme/T-4')
    await a.synced
    // one transaction: one stored update
    a.doc.transact(() => {
      a.doc.getText('body').insert(0, 'Printer jams')
      a.doc.getMap('fields').set('status', 'open')
    })
    await ada.flush()
    ada.close()
    await r.close()
    relay = null

    // a relay that keeps loaded docs awake makes its doc at once
    r = await start()
    const kept = await r.rooms.acquire('acme/T-4')
    expect(kept.isDormant).toBe(false)
    expect(kept.doc.getText('body').toString()).toBe('Printer jams')
    r.rooms.release(kept)
    await r.close()
    relay = null

    r = await start(undefined, SWEEP_HOURLY)
    const bob = client('Bob')
    const b = bob.open('acme/T-4')
    await b.synced
    const room = r.rooms.peek('acme/T-4')!
    expect(room.isDormant).toBe(true)
    expect(text(b)).toBe('Printer jams')
    expect(status(b)).toBe('open')
    // the stored author binding is loaded with it: Bob's copy credits Ada
    await waitFor(() => b.authors.get(a.doc.clientID)?.name === 'Ada', 'Bob sees Ada as the author')
    expect(room.isDormant).toBe(true)

    // a stock y-websocket client is served from the same bytes
    const y = new Y.Doc()
    const provider = new WebsocketProvider(r.url.replace(/^http/, 'ws'), 'acme/T-4', y, {
      WebSocketPolyfill: WebSocket as never,
      disableBc: true,
    })
    try {
      await waitFor(() => provider.synced, 'the stock client synced')
      expect(y.getText('body').toString()).toBe('Printer jams')
      expect(room.isDormant).toBe(true)
    } finally {
      provider.destroy()
    }

    // Bob edits: the room makes its doc, his edit is acked and stored; a load is not counted as a wake
    b.doc.getMap('fields').set('status', 'doing')
    await bob.flush()
    expect(b.pending).toBe(0)
    expect(room.isDormant).toBe(false)
    expect(await metric(r, 'concord_rooms_woken_total')).toBe(0)
    bob.close()
    await r.close()
    relay = null

    // two stored updates now: the next relay builds the doc as before
    r = await start()
    const cy = client('Cy')
    const c = cy.open('acme/T-4')
    await c.synced
    expect(r.rooms.peek('acme/T-4')!.isDormant).toBe(false)
    expect(text(c)).toBe('Printer jams')
    expect(status(c)).toBe('doing')
  })

  it('a deletion stored alone, its items not yet received, loads dormant and applies once they arrive', async () => {
    let r = await start()
    let c = await rawSubscriber(r, 'acme/T-5')
    const { writer, insert, deletion } = insertThenDelete()
    c.sendUpdate('acme/T-5', deletion)
    await waitFor(() => r.rooms.peek('acme/T-5')?.doc.store.pendingDs != null, 'the deletion held by the relay')
    c.close()
    await r.close() // stores what the relay holds
    relay = null

    r = await start(undefined, SWEEP_HOURLY)
    c = await rawSubscriber(r, 'acme/T-5')
    const room = r.rooms.peek('acme/T-5')!
    expect(room.isDormant).toBe(true)
    c.sendUpdate('acme/T-5', insert)
    await c.waitFor((m) => m.type === MessageType.ack && m.ack?.get(writer.clientID) === 4, 'the insert acked')
    expect(room.doc.store.pendingDs).toBe(null)
    expect(room.doc.getText('body').toString()).toBe('')
    c.close()
    await r.close()
    relay = null

    // both stored: a fresh relay serves the text deleted
    r = await start()
    const d = client('Dee').open('acme/T-5')
    await d.synced
    expect(text(d)).toBe('')
    expect(Y.encodeStateVector(d.doc)).toEqual(Y.encodeStateVector(writer))
  })

  it('the timer’s sweep puts rooms to sleep a slice at a time, the relay serving people between slices', async () => {
    // a slice of 0 ms: one room per event-loop turn
    const r = await start(undefined, { sweepSliceMs: 0 })
    const ada = client('Ada')
    const bob = client('Bob')
    const names = ['acme/T-1', 'acme/T-2', 'acme/T-3']
    const mine = names.map((n) => ada.open(n))
    const theirs = names.map((n) => bob.open(n))
    await Promise.all([...mine, ...theirs].map((h) => h.synced))
    mine.forEach((h, i) => h.doc.getText('body').insert(0, `ticket ${i + 1}`))
    await ada.flush()
    const rooms = names.map((n) => r.rooms.peek(n)!)

    expect(await r.rooms.sweep()).toBe(0) // marks every room unused
    const sweep = r.rooms.sweep()
    expect(rooms.filter((room) => room.isDormant)).toHaveLength(1)
    expect(await r.rooms.sweep()).toBe(null) // one sweep at a time
    expect(await sweep).toBe(3)
    expect(rooms.every((room) => room.isDormant)).toBe(true)
    expect(await metric(r, 'concord_rooms_dormant')).toBe(3)

    // Bob's edit wakes its room and reaches Ada, stored
    theirs[1].doc.getText('body').insert(8, ' (checked)')
    await bob.flush()
    await waitFor(() => text(mine[1]) === 'ticket 2 (checked)', 'Ada sees Bob’s edit')
    expect(rooms.map((room) => room.isDormant)).toEqual([true, false, true])
  })
})
