/**
 * The engine's SyncClient against real relay processes: convergence,
 * offline editing with durable-ack pending counts, kill -9 durability, and
 * interoperation with a stock y-websocket client.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { WebsocketProvider } from 'y-websocket'
import { SyncClient, type DocHandle } from '@concord/engine'
import { removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcpProxy.js'

let relay: RelayProcess
const clients: SyncClient[] = []
const proxies: TcpProxy[] = []

beforeAll(async () => {
  relay = await startRelay()
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const p of proxies.splice(0)) await p.close()
})

const client = (url = relay.wsUrl, user?: { id: string; name: string }): SyncClient => {
  const c = new SyncClient({ url, WebSocket: WebSocket as never, user, reconnect: { minDelay: 20, maxDelay: 200 } })
  clients.push(c)
  return c
}

const text = (h: DocHandle, name = 'body') => h.doc.getText(name).toString()
const state = (h: DocHandle) => Buffer.from(Y.encodeStateVector(h.doc)).toString('hex')
const contentOf = (h: DocHandle) => JSON.stringify(h.doc.getText('body').toDelta()) + JSON.stringify(h.doc.getMap('fields').toJSON())

describe('engine ↔ relay', () => {
  // A pinned seed and a fresh one every run (in the test name); replay one with SEED=<n>.
  const fresh = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  it.each([20261123, fresh])('N clients editing the same docs concurrently converge (seed %i)', async (seed) => {
    const gen = prng.create(seed)
    const docs = ['a', 'b', 'c'].map((d) => `conv${seed}/${d}`) // docs of their own per seed
    const n = 5
    const peers = Array.from({ length: n }, () => client())
    const handles = peers.map((c) => docs.map((d) => c.open(d)))
    await Promise.all(handles.flat().map((h) => h.synced))
    for (let step = 0; step < 300; step++) {
      const h = handles[prng.uint32(gen, 0, n - 1)][prng.uint32(gen, 0, docs.length - 1)]
      const t = h.doc.getText('body')
      const op = prng.uint32(gen, 0, 9)
      if (op < 6 || t.length === 0) t.insert(prng.uint32(gen, 0, t.length), prng.word(gen, 1, 4))
      else if (op < 8) {
        const at = prng.uint32(gen, 0, t.length - 1)
        t.delete(at, Math.min(prng.uint32(gen, 1, 3), t.length - at))
      } else h.doc.getMap('fields').set('status', prng.oneOf(gen, ['open', 'doing', 'done']))
      if (step % 50 === 0) await new Promise((r) => setImmediate(r))
    }
    await Promise.all(peers.map((c) => c.flush()))
    for (let d = 0; d < docs.length; d++) {
      await waitFor(
        () => handles.every((hs) => state(hs[d]) === state(handles[0][d])),
        `state vectors of ${docs[d]} to match (seed ${seed})`,
        25_000,
      )
      const expected = contentOf(handles[0][d])
      for (const hs of handles) expect(contentOf(hs[d]), `seed ${seed}`).toBe(expected)
    }
    // what a client received from others counts as pending until the relay's
    // ack says it is stored: flush again after convergence, then nothing is left
    await Promise.all(peers.map((c) => c.flush()))
    for (const hs of handles) for (const h of hs) expect(h.pending).toBe(0)
  })

  it('offline: edits continue while cut off; pending falls to 0 only after the relay acked', async () => {
    const proxy = await startTcpProxy(Number(new URL(relay.url).port))
    proxies.push(proxy)
    const traveller = client(proxy.wsUrl)
    const colleague = client()
    const t = traveller.open('offline/t1')
    const c = colleague.open('offline/t1')
    await Promise.all([t.synced, c.synced])
    t.doc.getText('body').insert(0, 'before ')
    await traveller.flush()
    expect(t.pending).toBe(0)

    proxy.cut()
    await waitFor(() => traveller.status !== 'online', 'traveller offline')
    t.doc.getText('body').insert(t.doc.getText('body').length, 'offline-edit ')
    t.doc.getMap('fields').set('status', 'done')
    t.doc.getText('body').delete(0, 3) // a deletion counts as pending too
    c.doc.getText('body').insert(0, 'colleague ')
    // the colleague's change was stored and acked meanwhile; nothing can ack the traveller's while cut off
    await colleague.flush()
    expect(t.pending).toBeGreaterThan(0)

    let sawOnlineWithPending = false
    traveller.on('status', (s: string) => {
      if (s === 'online' && t.pending > 0) sawOnlineWithPending = true
    })
    proxy.restore()
    await traveller.flush()
    expect(t.pending).toBe(0)
    expect(sawOnlineWithPending).toBe(true) // pending did not drop on reconnect, only on the ack
    await waitFor(() => text(t) === text(c) && text(c).includes('offline-edit'), 'convergence after reconnect')
    expect(c.doc.getMap('fields').get('status')).toBe('done')
    expect(text(c)).toContain('colleague')
  })

  it('durability: everything flushed survives kill -9 of the relay', async () => {
    const own = await startRelay()
    try {
      const writer = client(own.wsUrl)
      const names = Array.from({ length: 10 }, (_, i) => `durable/r${i}`)
      const hs = names.map((n) => writer.open(n))
      await Promise.all(hs.map((h) => h.synced))
      hs.forEach((h, i) => {
        for (let k = 0; k < 20; k++) h.doc.getText('body').insert(h.doc.getText('body').length, `${i}.${k} `)
        h.doc.getMap('fields').set('n', i)
      })
      await writer.flush()
      const expected = hs.map((h) => text(h))
      await own.kill()
      writer.close()

      const again = await startRelay({ dataDir: own.dataDir })
      try {
        const reader = client(again.wsUrl)
        const rs = names.map((n) => reader.open(n))
        await Promise.all(rs.map((h) => h.synced))
        rs.forEach((h, i) => {
          expect(text(h)).toBe(expected[i])
          expect(h.doc.getMap('fields').get('n')).toBe(i)
        })
      } finally {
        await again.stop()
      }
    } finally {
      removeDir(own.dataDir)
    }
  })

  it('a client stays open across a relay crash and restart: offline edits are stored after reconnect', async () => {
    const own = await startRelay()
    const port = new URL(own.url).port
    try {
      const c = client(own.wsUrl)
      const h = c.open('restart/t1')
      await h.synced
      h.doc.getText('body').insert(0, 'acked ')
      await c.flush()
      await own.kill()
      await waitFor(() => c.status !== 'online', 'client offline')
      h.doc.getText('body').insert(6, 'while-down ')
      expect(h.pending).toBeGreaterThan(0)
      const again = await startRelay({ dataDir: own.dataDir, args: ['--port', port] })
      try {
        await c.flush()
        expect(h.pending).toBe(0)
        const reader = client(again.wsUrl)
        const r = reader.open('restart/t1')
        await r.synced
        expect(text(r)).toBe('acked while-down ')
      } finally {
        await again.stop()
      }
    } finally {
      removeDir(own.dataDir)
    }
  })

  it('a stock y-websocket 3.1 client and an engine client converge and see each other’s awareness', async () => {
    const engine = client(relay.wsUrl, { id: 'u-eng', name: 'Engine Ada' })
    const h = engine.open('interop/t1')
    const ydoc = new Y.Doc()
    const provider = new WebsocketProvider(relay.wsUrl, 'interop/t1', ydoc, {
      WebSocketPolyfill: WebSocket as never,
      disableBc: true,
    })
    try {
      await h.synced
      await new Promise<void>((r) => (provider.synced ? r() : provider.once('sync', () => r())))
      h.doc.getText('body').insert(0, 'engine ')
      ydoc.getText('body').insert(0, 'stock ')
      await waitFor(() => text(h) === ydoc.getText('body').toString() && text(h).length === 13, 'text convergence')
      provider.awareness.setLocalStateField('user', { name: 'Stock Bob' })
      await waitFor(() => [...h.awareness.getStates().values()].some((s) => s.user?.name === 'Stock Bob'), 'stock awareness at engine')
      h.awareness.setLocalStateField('cursor', { field: 'title' })
      await waitFor(
        () => [...provider.awareness.getStates().values()].some((s) => s.cursor?.field === 'title'),
        'engine awareness at stock client',
      )
      await engine.flush()
    } finally {
      provider.destroy()
    }
  })

  it('reopening a doc on a fresh client after many edits gets everything', async () => {
    const writer = client()
    const h = writer.open('many/t1')
    await h.synced
    for (let i = 0; i < 1000; i++) h.doc.getText('body').insert(i, 'x')
    await writer.flush()
    const reader = client()
    const r = reader.open('many/t1')
    await r.synced
    expect(text(r)).toBe('x'.repeat(1000))
    expect(r.pending).toBe(0)
  })
})
