/**
 * Relay limits against real relays with small configured limits: bytes
 * waiting while a doc loads (both endpoints) and before authentication, the
 * cap on open connections, the message rate limit and the awareness rate
 * limit. Each flood must close only its own connection, keep what the relay
 * holds bounded, and leave every other client served.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import {
  CloseCode,
  ErrorCode,
  MessageType,
  encodeAuth,
  encodeAwareness,
  encodeFetchMany,
  encodePing,
  encodeSubscribe,
} from '@concord/engine/protocol'
import { createRelay, type Relay, type RelayOptions } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import type { StoredDoc } from '../apps/relay/src/storage/Storage.js'
import { JwtAuthenticator } from '../apps/relay/src/auth/JwtAuthenticator.js'
import { RawMuxClient, covers, upgradeStatus } from './helpers/rawClient.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { removeDir, startRelay, waitFor } from './helpers/relayProcess.js'

/** Storage whose loads of docs under `held/` wait until {@link release}. */
class HeldLoadStorage extends MemoryStorage {
  private gate: Promise<void>
  release!: () => void

  constructor() {
    super()
    this.gate = new Promise((resolve) => (this.release = resolve))
  }

  override async loadDoc(doc: string): Promise<StoredDoc> {
    if (doc.startsWith('held/')) await this.gate
    return super.loadDoc(doc)
  }
}

let relay: Relay | null = null
const sockets: Array<{ close(): void }> = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close()
  await relay?.close()
  relay = null
})

const start = async (options: Partial<RelayOptions>): Promise<string> => {
  relay = await createRelay({ storage: new MemoryStorage(), port: 0, processMetrics: false, ...options })
  return relay.url.replace(/^http/, 'ws')
}

const mux = async (url: string): Promise<RawMuxClient> => {
  const client = new RawMuxClient(url)
  sockets.push(client)
  await client.open()
  return client
}

/** A Yjs update inserting `size` characters (valid: it would be applied once the doc is loaded). */
const bigUpdate = (size: number): Uint8Array => {
  const d = new Y.Doc()
  d.getText('t').insert(0, 'q'.repeat(size))
  return Y.encodeStateAsUpdate(d)
}

/** Records the largest value of `read()` until stopped. */
const sampleMax = (read: () => number): { stop(): number } => {
  let max = read()
  const timer = setInterval(() => (max = Math.max(max, read())), 1)
  return {
    stop: () => {
      clearInterval(timer)
      return Math.max(max, read())
    },
  }
}

/** A writer on a doc that loads at once: it must be served while others flood. */
const checkServed = async (url: string, doc: string): Promise<void> => {
  const writer = await mux(url)
  const ydoc = writer.subscribe(doc)
  await writer.waitFor((m) => m.type === MessageType.ack && m.doc === doc, 'ack of subscribe')
  ydoc.getText('t').insert(0, 'still served')
  writer.sendUpdate(doc, Y.encodeStateAsUpdate(ydoc))
  await writer.waitFor((m) => m.type === MessageType.ack && covers(m.ack, ydoc), 'ack of the edit')
}

const QUEUE = 256 * 1024

describe('bytes waiting while a doc loads', () => {
  it('multiplexed: a flood for a loading doc closes its connection with 1008; the relay holds at most the budget; others are served', async () => {
    const storage = new HeldLoadStorage()
    const url = await start({
      storage,
      limits: { maxPayload: 128 * 1024, maxQueuedBytes: QUEUE, messagesPerSecond: 100_000, messageBurst: 100_000 },
    })
    const flooder = await mux(url)
    flooder.send(encodeSubscribe('held/doc'))
    const peak = sampleMax(() => relay!.queuedBytes)
    const update = bigUpdate(32 * 1024)
    for (let i = 0; i < 200 && flooder.ws.readyState === WebSocket.OPEN; i++) {
      flooder.sendUpdate('held/doc', update)
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1)) // paces the flood only (lets the close arrive)
    }
    const closed = await flooder.waitClosed()
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/too much data waiting while docs load/)
    expect(flooder.received.some((m) => m.doc === '' && m.error?.code === ErrorCode.limitExceeded)).toBe(true)
    await checkServed(url, 'open/served')
    expect(peak.stop()).toBeLessThanOrEqual(QUEUE)
    await waitFor(() => relay!.queuedBytes === 0, 'nothing held after the close')
    const metrics = await relay!.metrics.render()
    expect(metrics).toMatch(/concord_refusals_total\{reason="queue-full"\} 1/)
    expect(metrics).toMatch(/concord_queued_bytes 0\n/)
    // nothing of the flood reaches the doc once it loads
    storage.release()
    const reader = await mux(url)
    const loaded = reader.subscribe('held/doc')
    await reader.waitFor((m) => m.type === MessageType.ack && m.doc === 'held/doc', 'loaded')
    expect(loaded.getText('t').length).toBe(0)
  })

  it('multiplexed: messages within the budget wait and are applied once the doc loads', async () => {
    const storage = new HeldLoadStorage()
    const url = await start({ storage, limits: { maxPayload: 128 * 1024, maxQueuedBytes: QUEUE } })
    const client = await mux(url)
    const doc = client.subscribe('held/ok')
    doc.getText('t').insert(0, 'x'.repeat(100 * 1024))
    client.sendUpdate('held/ok', Y.encodeStateAsUpdate(doc))
    await waitFor(() => relay!.queuedBytes > 100 * 1024, 'update waiting')
    expect(Number(/concord_queued_bytes (\d+)/.exec(await relay!.metrics.render())![1])).toBe(relay!.queuedBytes)
    storage.release()
    await client.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'ack of the waiting update')
    expect(relay!.queuedBytes).toBe(0)
    expect(client.closeEvent).toBeNull()
  })

  it('y-websocket: a flood while the doc loads closes the connection with 1008; the relay holds at most the budget; others are served', async () => {
    const storage = new HeldLoadStorage()
    const url = await start({
      storage,
      limits: { maxPayload: 128 * 1024, maxQueuedBytes: QUEUE, messagesPerSecond: 100_000, messageBurst: 100_000 },
    })
    const ws = new WebSocket(`${url}/held/yws`)
    sockets.push(ws)
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    )
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    const peak = sampleMax(() => relay!.queuedBytes)
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, MessageType.sync)
    syncProtocol.writeUpdate(e, bigUpdate(32 * 1024))
    const message = encoding.toUint8Array(e)
    for (let i = 0; i < 200 && ws.readyState === WebSocket.OPEN; i++) {
      ws.send(message)
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1)) // paces the flood only (lets the close arrive)
    }
    const close = await closed
    expect(close.code).toBe(CloseCode.policyViolation)
    expect(close.reason).toMatch(/too much data waiting while the doc loads/)
    await checkServed(url, 'open/served-yws')
    expect(peak.stop()).toBeLessThanOrEqual(QUEUE)
    await waitFor(() => relay!.queuedBytes === 0, 'nothing held after the close')
  })

  it('the default budget is 4 × --max-payload', async () => {
    const storage = new HeldLoadStorage()
    const url = await start({ storage, limits: { maxPayload: 64 * 1024, messagesPerSecond: 100_000, messageBurst: 100_000 } })
    const flooder = await mux(url)
    flooder.send(encodeSubscribe('held/default'))
    const update = bigUpdate(60 * 1024)
    for (let i = 0; i < 3; i++) flooder.sendUpdate('held/default', update)
    await waitFor(() => relay!.queuedBytes > 3 * 60 * 1024, 'three updates waiting')
    expect(flooder.closeEvent).toBeNull()
    for (let i = 0; i < 3; i++) flooder.sendUpdate('held/default', update)
    expect((await flooder.waitClosed()).code).toBe(CloseCode.policyViolation)
    storage.release()
  })
})

describe('bytes waiting for authentication', () => {
  it('count in the same budget: 16 KiB frames before auth close the connection once over it, before the message count is reached', async () => {
    const url = await start({
      auth: new JwtAuthenticator({ key: { kind: 'secret', secret: TEST_SECRET } }),
      limits: { maxPayload: 32 * 1024, maxQueuedBytes: 64 * 1024, maxUnauthenticatedMessages: 16 },
    })
    const client = await mux(url)
    const frame = new Uint8Array(16 * 1024)
    const head = encodeSubscribe('acme/x')
    frame.set(head)
    for (let i = 0; i < 10 && client.ws.readyState === WebSocket.OPEN; i++) client.send(frame)
    const closed = await client.waitClosed()
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/for authentication/)
    expect(client.received.some((m) => m.error?.code === ErrorCode.limitExceeded)).toBe(true)
    await waitFor(() => relay!.queuedBytes === 0, 'nothing held after the close')
    // a client that authenticates is served
    const ok = await mux(url)
    ok.send(encodeAuth(await signToken('walt', { acme: 'write' })))
    await ok.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
  })

  it('--max-unauthenticated-messages closes a connection that sends more small messages before authenticating', async () => {
    const url = await start({
      auth: new JwtAuthenticator({ key: { kind: 'secret', secret: TEST_SECRET } }),
      limits: { maxUnauthenticatedMessages: 3 },
    })
    const client = await mux(url)
    for (let i = 0; i < 3; i++) client.send(encodeSubscribe(`acme/x${i}`))
    await client.roundTrip() // a ping is answered before authentication and is not counted; rejects if the relay closed the connection
    expect(client.closeEvent).toBeNull()
    client.send(encodeSubscribe('acme/x3'))
    const closed = await client.waitClosed()
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/too many messages before authentication/)
  })
})

describe('open connections', () => {
  it('over --max-connections an upgrade is refused with 503; a freed place is given again', async () => {
    const url = await start({ limits: { maxConnections: 3 } })
    const open = [await mux(url), await mux(url), await mux(url)]
    expect(await upgradeStatus(`${url}/.concord/v1`)).toBe(503)
    expect(await upgradeStatus(`${url}/acme/doc`)).toBe(503)
    expect(await relay!.metrics.render()).toMatch(/concord_refusals_total\{reason="too-many-connections"\} 2/)
    // the open ones are still served
    open[0].send(encodePing())
    await open[0].waitFor((m) => m.type === MessageType.pong, 'pong')
    open[2].close()
    await waitFor(() => relay!.connectionCount === 2, 'one closed')
    expect(await upgradeStatus(`${url}/.concord/v1`)).toBe(101)
  })

  it('MAX_CONNECTIONS is read by the relay process', async () => {
    const proc = await startRelay({ env: { MAX_CONNECTIONS: '1' } })
    try {
      const first = await mux(proc.wsUrl)
      expect(await upgradeStatus(`${proc.wsUrl}/.concord/v1`)).toBe(503)
      first.close()
    } finally {
      await proc.stop()
      removeDir(proc.dataDir)
    }
  })
})

describe('message rate limit', () => {
  it('a connection over --messages-per-second / --message-burst is closed with 1008; others are served', async () => {
    const url = await start({ limits: { messagesPerSecond: 20, messageBurst: 40 } })
    const flooder = await mux(url)
    const other = await mux(url)
    for (let i = 0; i < 100 && flooder.ws.readyState === WebSocket.OPEN; i++) flooder.send(encodePing())
    const closed = await flooder.waitClosed()
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/message rate limit/)
    // the relay answered the burst before closing
    const pongs = flooder.received.filter((m) => m.type === MessageType.pong).length
    expect(pongs).toBeGreaterThanOrEqual(40)
    expect(pongs).toBeLessThan(60)
    expect(await relay!.metrics.render()).toMatch(/concord_refusals_total\{reason="rate-limit"\} 1/)
    other.send(encodePing())
    await other.waitFor((m) => m.type === MessageType.pong, 'pong for the other client')
    expect(other.closeEvent).toBeNull()
  })

  it('each doc of a fetch-many counts as a message: one frame cannot ask for more than the burst', async () => {
    const url = await start({ limits: { messagesPerSecond: 20, messageBurst: 40 } })
    const c = await mux(url)
    const empty = Y.encodeStateVector(new Y.Doc())
    c.send(encodeFetchMany(Array.from({ length: 30 }, (_, i) => ({ doc: `acme/f${i}`, stateVector: empty }))))
    await c.waitFor((m) => m.type === MessageType.fetched && m.doc === 'acme/f29', 'the answers to 30 docs')
    c.send(encodeFetchMany(Array.from({ length: 30 }, (_, i) => ({ doc: `acme/g${i}`, stateVector: empty }))))
    const closed = await c.waitClosed()
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/message rate limit/)
    expect(c.received.some((m) => m.doc.startsWith('acme/g'))).toBe(false)
  })
})

describe('awareness rate limit', () => {
  it('awareness beyond --awareness-per-second (burst 2×) is dropped, not broadcast; the connection stays open', async () => {
    const url = await start({ limits: { awarenessPerSecond: 2 } })
    const sender = await mux(url)
    const observer = await mux(url)
    for (const c of [sender, observer]) c.subscribe('acme/aw')
    await sender.waitFor((m) => m.type === MessageType.ack, 'sender subscribed')
    await observer.waitFor((m) => m.type === MessageType.ack, 'observer subscribed')
    const d = new Y.Doc()
    d.clientID = 777
    const awareness = new awarenessProtocol.Awareness(d)
    /** The cursors of client 777 the observer was sent, in order. */
    const observedCursors = () =>
      observer.received.flatMap((m) => m.awareness ?? []).flatMap((e) => (e.clientId === 777 && e.state ? [e.state.cursor as number] : []))
    for (let i = 1; i <= 20; i++) {
      awareness.setLocalState({ cursor: i })
      sender.send(encodeAwareness('acme/aw', awarenessProtocol.encodeAwarenessUpdate(awareness, [777])))
    }
    sender.send(encodePing())
    await sender.waitFor((m) => m.type === MessageType.pong, 'pong after the burst')
    await observer.roundTrip() // what the relay broadcast for the burst has arrived
    const room = relay!.rooms.peek('acme/aw')!
    const cursor = room.awarenessStates.get(777)?.cursor as number
    // the burst (4) and at most a token or two of refill got through
    expect(cursor).toBeGreaterThanOrEqual(4)
    expect(cursor).toBeLessThan(8)
    // the observer was sent what was applied — the latest of it at least — and nothing that was dropped
    expect(observedCursors().at(-1)).toBe(cursor)
    expect(Math.max(...observedCursors())).toBe(cursor)
    expect(sender.closeEvent).toBeNull()
    expect(await relay!.metrics.render()).toMatch(/concord_refusals_total\{reason="awareness-rate-limit"\} 1[0-9]/)
    // once the rate allows again, a change gets through; the wait is the limiter's refill (2 per second, a token in 500 ms):
    // it drives the relay's clock, nothing is asserted after it without waiting on the change itself
    await new Promise((r) => setTimeout(r, 600))
    awareness.setLocalState({ cursor: 100 })
    sender.send(encodeAwareness('acme/aw', awarenessProtocol.encodeAwarenessUpdate(awareness, [777])))
    await waitFor(() => room.awarenessStates.get(777)?.cursor === 100, 'later change applied')
    awareness.destroy()
  })
})
