/**
 * Floods before authentication, per-user caps and answering work, against
 * real relay processes with JWT auth: token-less sockets cannot lock a valid
 * user out, one address cannot take every slot, half-sent HTTP requests are
 * counted and closed, a socket waiting for authentication may hold only a
 * small queue, a user has bounded connections and open docs, and a
 * read-only user looping `fetch` or sync step 1 is charged and closed like
 * a writer over budget. Every flood is bounded in count and time; every
 * socket is closed at the end.
 */
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { ErrorCode, MUX_PATH, MessageType, encodeAuth, encodeFetch, encodeSubscribe, startMessage } from '@concord/engine/protocol'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { removeDir, startRelay, type RelayProcess } from './helpers/relayProcess.js'

const env = { JWT_SECRET: TEST_SECRET }

let relay: RelayProcess | null = null
const closers: Array<() => void> = []
afterEach(async () => {
  for (const close of closers.splice(0)) close()
  if (relay) {
    await relay.stop()
    removeDir(relay.dataDir)
    relay = null
  }
})

const start = async (args: string[] = []): Promise<RelayProcess> => {
  relay = await startRelay({ args, env })
  return relay
}

/** Result of one WebSocket upgrade: the open socket, or the refusal's status and body. */
interface Upgrade {
  status: number
  body: string
  ws: WebSocket | null
  /** How the relay closed the socket, once it did. */
  closed: { code: number; reason: string } | null
}

/** Opens a WebSocket (closed in afterEach); resolves with 101 and the socket, or with the refusal. */
const upgrade = (url: string, headers: Record<string, string> = {}): Promise<Upgrade> =>
  new Promise((resolve) => {
    const ws = new WebSocket(url, { headers })
    ws.binaryType = 'nodebuffer'
    closers.push(() => ws.terminate())
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ws: null, closed: null }))
    })
    ws.once('open', () => {
      const result: Upgrade = { status: 101, body: '', ws, closed: null }
      ws.once('close', (code, reason) => (result.closed = { code, reason: reason.toString() }))
      resolve(result)
    })
    ws.once('error', () => resolve({ status: 0, body: 'socket error', ws: null, closed: null }))
  })

/** A multiplexed client (closed in afterEach), open. */
const mux = async (options: { token?: string; headers?: Record<string, string> } = {}): Promise<RawMuxClient> => {
  const client = new RawMuxClient(relay!.wsUrl, options)
  closers.push(() => client.ws.terminate())
  await client.open()
  return client
}

/** Authenticates a mux client in-band (as the engine does) and waits for `authenticated`. */
const authenticate = async (client: RawMuxClient, token: string): Promise<void> => {
  client.send(encodeAuth(token))
  await client.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
}

/** The value of one Prometheus sample from `/metrics` (0 when absent). */
const metric = async (name: string): Promise<number> => {
  const text = await (await fetch(relay!.url + '/metrics')).text()
  const line = text.split('\n').find((l) => l.startsWith(name + ' '))
  return line ? Number(line.slice(name.length + 1)) : 0
}

describe('floods before authentication', () => {
  it('120 token-less sockets with --max-connections 100: a user with a valid token still connects and syncs', async () => {
    await start(['--max-connections', '100', '--auth-timeout-ms', '60000'])
    const flood: Upgrade[] = []
    for (let i = 0; i < 120; i++) flood.push(await upgrade(relay!.wsUrl + MUX_PATH))
    // the engine reconnects with backoff until it gets in; bounded here to 8 s (the flood holds its sockets for 60 s)
    const token = await signToken('ada', { acme: 'write' })
    let client: RawMuxClient | null = null
    const deadline = Date.now() + 8000
    while (client === null && Date.now() < deadline) {
      const attempt = new RawMuxClient(relay!.wsUrl)
      closers.push(() => attempt.ws.terminate())
      client = await attempt.open().then(
        () => attempt,
        () => null,
      )
      if (client === null) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    expect(client, 'a valid user got a socket').not.toBeNull()

    // only the small cap of sockets without an identity (a tenth of --max-connections) was open at once, the rest refused
    const open = flood.filter((u) => u.status === 101)
    const refused = flood.filter((u) => u.status === 503)
    expect(open.length + refused.length).toBe(120)
    expect(refused.length).toBeGreaterThan(0)
    expect(refused[0].body).toMatch(/waiting to authenticate/)
    await authenticate(client!, token)
    const doc = client!.subscribe('acme/T-1')
    doc.getText('title').insert(0, 'still served')
    client!.sendUpdate('acme/T-1', Y.encodeStateAsUpdate(doc))
    await client!.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'ack of the update')
    expect(await metric('concord_unauthenticated_sockets{stage="auth"}')).toBeLessThanOrEqual(10)
    // the flood socket that made room for the user was told why
    await expect.poll(() => open.filter((u) => u.closed !== null).length).toBeGreaterThan(0)
    const evicted = open.find((u) => u.closed !== null)!
    expect(evicted.closed!.code).toBe(1008)
    expect(evicted.closed!.reason).toMatch(/too many connections waiting to authenticate/)
  }, 30_000)

  it('the per-address cap and the per-address rate refuse a flood from one address, behind a trusted proxy too', async () => {
    await start([
      '--max-unauthenticated-per-address',
      '5',
      '--connections-per-address-per-second',
      '1',
      '--connection-burst-per-address',
      '20',
      '--trusted-proxies',
      '127.0.0.1',
    ])
    const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address })
    const capped: Upgrade[] = []
    for (let i = 0; i < 8; i++) capped.push(await upgrade(relay!.wsUrl + MUX_PATH, from('203.0.113.7')))
    expect(capped.map((u) => u.status)).toEqual([101, 101, 101, 101, 101, 503, 503, 503])
    expect(capped[5].body).toMatch(/5 connections from your address are not authenticated yet/)
    // another client behind the same proxy is not affected
    expect((await upgrade(relay!.wsUrl + MUX_PATH, from('198.51.100.9'))).status).toBe(101)
    // a client cannot pick its address: the proxy appends the real one, the relay reads the rightmost untrusted entry
    expect((await upgrade(relay!.wsUrl + MUX_PATH, from('198.51.100.1, 203.0.113.7'))).status).toBe(503)

    // upgrades with a valid token leave no socket waiting, but still count against the address's rate
    const token = await signToken('ada', { acme: 'write' })
    const statuses: number[] = []
    for (let i = 0; i < 25; i++) {
      const u = await upgrade(`${relay!.wsUrl}${MUX_PATH}?token=${token}`, from('203.0.113.8'))
      u.ws?.close()
      statuses.push(u.status)
      if (u.status === 429) {
        expect(u.body).toMatch(/too many connections from your address/)
        break
      }
    }
    expect(statuses.slice(0, 20).every((s) => s === 101)).toBe(true)
    expect(statuses.at(-1)).toBe(429)
    expect(await metric('concord_refusals_total{reason="address-rate-limit"}')).toBeGreaterThanOrEqual(1)
    expect(await metric('concord_refusals_total{reason="too-many-unauthenticated"}')).toBe(4)
  }, 30_000)

  it('a socket that sends half an HTTP request header is counted and closed after the header timeout', async () => {
    await start(['--header-timeout-ms', '3000', '--max-incomplete-requests', '3'])
    const { port } = new URL(relay!.url)
    const halfRequest = (): { socket: net.Socket; closed: Promise<number> } => {
      const socket = net.connect(Number(port), '127.0.0.1')
      const opened = Date.now()
      closers.push(() => socket.destroy())
      socket.on('error', () => undefined)
      socket.write(`GET ${MUX_PATH} HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n`)
      return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve(Date.now() - opened))) }
    }
    const held = [halfRequest(), halfRequest(), halfRequest()]
    await Promise.all(held.map(({ socket }) => new Promise((resolve) => socket.once('connect', resolve))))
    // the three count against --max-incomplete-requests: a fourth is closed at once, while they are still open
    const fourth = halfRequest()
    await fourth.closed
    expect(held.every(({ socket }) => !socket.destroyed)).toBe(true)
    // then the header timeout closes them (bounded wait: 10 s instead of node's 60–300 s)
    const lifetimes = await Promise.all(held.map(({ closed }) => closed))
    for (const ms of lifetimes) expect(ms).toBeLessThan(10_000)
    expect(await metric('concord_refusals_total{reason="header-timeout"}')).toBe(3)
    expect(await metric('concord_refusals_total{reason="too-many-incomplete-requests"}')).toBe(1)
    expect(await metric('concord_unauthenticated_sockets{stage="request"}')).toBe(0)
  }, 30_000)

  it('a socket that sends more than the small pre-auth queue before authenticating is closed with a clear reason', async () => {
    await start()
    const client = await mux()
    const chunk = new Uint8Array(8 * 1024).fill(7)
    // 10 messages of 8 KiB: within --max-unauthenticated-messages (16), over the 64 KiB pre-auth queue
    for (let i = 0; i < 10; i++) {
      const encoder = startMessage(MessageType.sync, 'acme/T-1')
      encoding.writeUint8Array(encoder, chunk)
      client.send(encoding.toUint8Array(encoder))
    }
    const error = await client.waitFor((m) => m.type === MessageType.error && m.doc === '', 'queue error').catch(() => null)
    const closed = await client.waitClosed()
    expect(closed.code).toBe(1008)
    expect(closed.reason).toMatch(/too much data waiting for authentication/)
    expect(error?.error?.code).toBe(ErrorCode.limitExceeded)
    expect(error?.error?.reason).toMatch(/more than 65536 bytes waiting for authentication/)
  }, 30_000)
})

describe('per-user caps', () => {
  it('refuses a user’s connections and open docs beyond the caps with clear errors; other users are not affected', async () => {
    await start(['--max-connections-per-user', '2', '--max-docs-per-user', '3'])
    const ada = await signToken('ada', { acme: 'write' })
    const first = await mux({ token: ada })
    await first.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
    const second = await mux()
    await authenticate(second, ada)

    // a third connection: refused at the upgrade (token in the URL) …
    const third = await upgrade(`${relay!.wsUrl}${MUX_PATH}?token=${ada}`)
    expect(third.status).toBe(503)
    expect(third.body).toMatch(/you have 2 connections open/)
    // … and at the in-band auth
    const inBand = await mux()
    inBand.send(encodeAuth(ada))
    const refusal = await inBand.waitFor((m) => m.type === MessageType.error, 'refusal').catch(() => null)
    expect(refusal?.error?.code).toBe(ErrorCode.limitExceeded)
    const closed = await inBand.waitClosed()
    expect(closed.code).toBe(1008)
    expect(closed.reason).toMatch(/you have 2 connections open/)
    // another user gets in
    const bob = await mux()
    await authenticate(bob, await signToken('bob', { acme: 'write' }))

    // open docs count across the user's connections
    first.subscribe('acme/T-1')
    first.subscribe('acme/T-2')
    await first.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/T-2', 'T-2 served')
    second.subscribe('acme/T-3')
    await second.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/T-3', 'T-3 served')
    second.send(encodeSubscribe('acme/T-4'))
    const docRefusal = await second.waitFor((m) => m.type === MessageType.error && m.doc === 'acme/T-4', 'T-4 refused')
    expect(docRefusal.error?.code).toBe(ErrorCode.limitExceeded)
    expect(docRefusal.error?.reason).toMatch(/at most 3 docs open per user/)
    expect(second.closeEvent).toBeNull()

    // closing a connection gives its slot and its docs back
    first.close()
    await first.waitClosed()
    let probe: Upgrade | null = null
    await expect.poll(async () => (probe = await upgrade(`${relay!.wsUrl}${MUX_PATH}?token=${ada}`)).status, { timeout: 5000 }).toBe(101)
    probe!.ws!.close()
    const again = second.received.length
    second.subscribe('acme/T-4')
    await second.waitFor((m) => second.received.indexOf(m) >= again && m.type === MessageType.ack && m.doc === 'acme/T-4', 'T-4 served')

    // a doc opened on the y-websocket endpoint counts too
    second.subscribe('acme/T-5')
    await second.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/T-5', 'T-5 served')
    let yws: Upgrade | null = null
    await expect.poll(async () => (yws = await upgrade(`${relay!.wsUrl}/acme/T-6?token=${ada}`)).status, { timeout: 5000 }).toBe(101) // once the probe's slot is free
    await expect.poll(() => yws!.closed, { timeout: 5000 }).not.toBeNull()
    expect(yws!.closed).toEqual({ code: 1008, reason: 'at most 3 docs open per user; close some first' })
  }, 30_000)
})

/**
 * Sends `message` and waits for its answer (a message of type `answer`), one at a time, at most 500 times or until the
 * relay closes the connection; returns how many were answered.
 */
const askUntilClosed = async (client: RawMuxClient, message: Uint8Array, answer: number): Promise<number> => {
  let answered = 0
  for (let i = 0; i < 500 && client.closeEvent === null; i++) {
    const before = client.received.length
    client.send(message)
    const got = await client.waitFor((m) => client.received.indexOf(m) >= before && m.type === answer, 'the answer').catch(() => null)
    if (got) answered++
  }
  return answered
}

/** The writer that builds the big doc must not trip the apply budget on a loaded machine: it is not what is tested. */
const LIFTED_APPLY_BUDGET = ['--apply-ms-per-second', '1000', '--apply-burst-ms', '600000']

describe('answering work is charged', () => {
  /** Fills `acme/big` with many small items (costly to encode) through a writer; returns when it is stored. */
  const fillBigDoc = async (): Promise<void> => {
    const writer = await mux({ token: await signToken('writer', { acme: 'write' }) })
    await writer.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
    const doc = writer.subscribe('acme/big')
    const items = doc.getArray<number>('items')
    for (let i = 0; i < 20_000; i++) items.insert(i === 0 ? 0 : Math.floor(i / 2), [i])
    writer.sendUpdate('acme/big', Y.encodeStateAsUpdate(doc))
    await writer.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'big doc stored')
    writer.close()
  }

  it('a read-only user looping fetch of a big doc is closed once over the work budget', async () => {
    await start(['--work-ms-per-second', '1', '--work-burst-ms', '200', ...LIFTED_APPLY_BUDGET])
    await fillBigDoc()
    const reader = await mux({ token: await signToken('reader', { acme: 'read' }) })
    await reader.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
    const answered = await askUntilClosed(reader, encodeFetch('acme/big', new Uint8Array([0])), MessageType.fetched)
    const closed = await reader.waitClosed()
    expect(closed.code).toBe(1008)
    expect(closed.reason).toMatch(/answering work/)
    expect(answered).toBeGreaterThan(0)
    expect(answered).toBeLessThan(500)
    expect(await metric('concord_refusals_total{reason="work-budget"}')).toBe(1)
  }, 60_000)

  it('a read-only user looping sync step 1 is closed once over the work budget', async () => {
    // a burst of 1 s: answering the subscribe itself (the whole big doc) must fit in it on a loaded machine, so some step 1s are answered
    await start(['--work-ms-per-second', '1', '--work-burst-ms', '1000', ...LIFTED_APPLY_BUDGET])
    await fillBigDoc()
    const reader = await mux({ token: await signToken('reader', { acme: 'read' }) })
    await reader.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
    reader.send(encodeSubscribe('acme/big'))
    const step1 = startMessage(MessageType.sync, 'acme/big')
    syncProtocol.writeSyncStep1(step1, new Y.Doc())
    const message = encoding.toUint8Array(step1)
    const answered = await askUntilClosed(reader, message, MessageType.sync)
    const closed = await reader.waitClosed()
    expect(closed.code).toBe(1008)
    expect(closed.reason).toMatch(/answering work/)
    expect(answered).toBeGreaterThan(0)
    expect(answered).toBeLessThan(500)
  }, 60_000)

  it('the same on the y-websocket endpoint: a read-only user looping sync step 1 is closed once over the work budget', async () => {
    await start(['--work-ms-per-second', '1', '--work-burst-ms', '200', ...LIFTED_APPLY_BUDGET])
    await fillBigDoc()
    const opened = await upgrade(`${relay!.wsUrl}/acme/big?token=${await signToken('reader', { acme: 'read' })}`)
    expect(opened.status).toBe(101)
    const ws = opened.ws!
    let answers = 0
    ws.on('message', () => answers++)
    const step1 = encoding.createEncoder()
    encoding.writeVarUint(step1, MessageType.sync)
    syncProtocol.writeSyncStep1(step1, new Y.Doc())
    const message = encoding.toUint8Array(step1)
    // bounded: at most 500 step 1s, one answer at a time
    for (let i = 0; i < 500 && opened.closed === null; i++) {
      const before = answers
      ws.send(message)
      await expect.poll(() => answers > before || opened.closed !== null, { timeout: 5000 }).toBe(true)
    }
    expect(opened.closed).toMatchObject({ code: 1008, reason: expect.stringMatching(/answering work/) })
    expect(answers).toBeLessThan(500)
  }, 60_000)
})
