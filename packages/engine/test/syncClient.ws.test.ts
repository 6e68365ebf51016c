/**
 * The sync client over a real socket: a `ws` WebSocketServer on 127.0.0.1
 * whose sockets go to the real relay's connections (in-process, see
 * relayHarness.ts), and clients using `ws`'s WebSocket.
 */
import { afterEach, expect, test } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import net, { type AddressInfo } from 'node:net'
import { SyncClient } from '../src/index.js'
import { MUX_PATH } from '../src/protocol/index.js'
import { TestRelay } from './relayHarness.js'
import { statusIs } from './helpers.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Starts a ws server on a free port that hands every socket to `relay` (they authenticate in-band). */
const serve = async (relay: TestRelay) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  const requests: string[] = []
  wss.on('connection', (socket, request) => {
    requests.push(request.url ?? '')
    relay.accept(socket, true)
  })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resolve())
      }),
  )
  const { port } = wss.address() as AddressInfo
  return { url: `ws://127.0.0.1:${port}`, requests, wss }
}

/** Resolves once `check()` holds, re-checking whenever `subscribe`'s listener fires. */
const until = (subscribe: (listener: () => void) => void, check: () => boolean) =>
  new Promise<void>((resolve) => {
    if (check()) return resolve()
    subscribe(() => check() && resolve())
  })

test('syncs, acks and flushes over a real WebSocket in Node', async () => {
  const relay = new TestRelay({ autoAck: true })
  cleanups.push(() => relay.destroy())
  const { url, requests } = await serve(relay)

  const alice = new SyncClient({ url: url.replace('ws:', 'http:'), WebSocket, token: 't0k', user: { id: 'a', name: 'Alice' } })
  const bob = new SyncClient({ url, WebSocket, token: 'b0b' })
  cleanups.push(
    () => alice.close(),
    () => bob.close(),
  )
  const a = alice.open('acme/T-1')
  const b = bob.open('acme/T-1')
  await Promise.all([a.synced, b.synced])
  expect(alice.status).toBe('online')
  expect(requests).toContain(MUX_PATH)
  expect(requests.some((r) => r.includes('t0k'))).toBe(false)

  const bobSees = until(
    (f) => b.doc.on('update', f),
    () => b.doc.getText('title').toString() === 'Fix login',
  )
  a.doc.getText('title').insert(0, 'Fix login')
  expect(a.pending).toBe(9)
  await alice.flush()
  expect(a.pending).toBe(0)
  expect(relay.stored('acme/T-1').get(a.doc.clientID)).toBe(9)
  await bobSees
  // The relay stamps the user of Alice's token on her presence.
  await until(
    (f) => b.awareness.on('change', f),
    () => b.awareness.getStates().get(a.doc.clientID)?.user?.name === 't0k',
  )
  expect(b.awareness.getStates().get(a.doc.clientID)).toEqual({ user: { id: 'user-of-t0k', name: 't0k', color: expect.any(String) } })

  // A relay-side disconnect: both reconnect by themselves and keep syncing.
  relay.dropAll()
  await Promise.all([statusIs(alice, 'offline'), statusIs(bob, 'offline')])
  b.doc.getText('title').insert(9, ' (offline)')
  await Promise.all([statusIs(alice, 'online'), statusIs(bob, 'online')])
  await bob.flush()
  await until(
    (f) => a.doc.on('update', f),
    () => a.doc.getText('title').toString() === 'Fix login (offline)',
  )
  expect(relay.doc('acme/T-1').getText('title').toString()).toBe('Fix login (offline)')
})

// Found by the network chaos suite (test/reliability, run seeds 6564234 and 1981737411): `ws` reports
// a socket closed while its handshake is under way with an `error` event; with no listener left on
// the socket, Node turns it into an uncaught exception that ends the process.
test('reconnect() and close() while the socket is still connecting raise no uncaught error', async () => {
  // A server that accepts TCP connections and never answers the upgrade: sockets stay `connecting`.
  const held = new Set<net.Socket>()
  const arrived: Array<() => void> = []
  const closed: Array<() => void> = []
  const server = net.createServer((socket) => {
    held.add(socket)
    socket.resume() // reads (and drops) the upgrade request, so the client's close is seen
    socket.on('close', () => closed.shift()?.())
    arrived.shift()?.()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of held) socket.destroy()
        server.close(() => resolve())
      }),
  )
  const nextConnection = () => new Promise<void>((resolve) => arrived.push(resolve))
  const nextClose = () => new Promise<void>((resolve) => closed.push(resolve))
  const client = new SyncClient({ url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, WebSocket })
  client.open('acme/T-1')
  await nextConnection()
  expect(client.status).toBe('connecting')
  // reconnect: the connecting socket is dropped (the server sees it close) and a new one is made
  const dropped = nextClose()
  const again = nextConnection()
  client.reconnect()
  await Promise.all([dropped, again])
  // close: the second connecting socket is dropped too
  const droppedAgain = nextClose()
  client.close()
  await droppedAgain
  // ws emits the abort's error on the next tick after the request is destroyed
  await new Promise((resolve) => setImmediate(resolve))
  expect(client.status).toBe('offline')
})
