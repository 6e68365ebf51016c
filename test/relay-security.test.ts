/**
 * Relay security against a real in-process relay with HS256 auth: a
 * permission matrix on both endpoints (roles × messages: zero unauthorized
 * effects, every refusal explicit), token transport, expiry and refresh, origin allowlist,
 * awareness ownership and size, limits, and quarantine of updates with
 * missing dependencies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import {
  CloseCode,
  ErrorCode,
  MessageType,
  MUX_PATH,
  encodeAuth,
  encodeAwareness,
  encodeFetch,
  encodeListDocs,
  encodeSubscribe,
  startMessage,
} from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { JwtAuthenticator } from '../apps/relay/src/auth/JwtAuthenticator.js'
import { RawMuxClient, covers, upgradeStatus } from './helpers/rawClient.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { waitFor } from './helpers/relayProcess.js'

let relay: Relay
let storage: MemoryStorage
let wsUrl: string
const DOC = 'acme/T-1'

const storedText = async (doc = DOC): Promise<string> => {
  const stored = await storage.loadDoc(doc)
  const d = new Y.Doc()
  if (stored.checkpoint) Y.applyUpdate(d, stored.checkpoint)
  for (const u of stored.updates) Y.applyUpdate(d, u)
  return d.getText('t').toString()
}

beforeAll(async () => {
  storage = new MemoryStorage()
  const seed = new Y.Doc()
  seed.getText('t').insert(0, 'original')
  await storage.appendUpdates([{ doc: DOC, updates: [Y.encodeStateAsUpdate(seed)] }])
  relay = await createRelay({
    storage,
    port: 0,
    processMetrics: false,
    auth: new JwtAuthenticator({ key: { kind: 'secret', secret: TEST_SECRET } }),
    allowedOrigins: ['https://app.example.com'],
    limits: {
      authTimeoutMs: 400,
      maxDocsPerConnection: 5,
      maxAwarenessStateBytes: 1024,
      maxDocBytes: 64 * 1024,
      // the apply-time budget test needs costly updates that the doc checks would refuse first
      maxKeyConflicts: 1_000_000,
      maxKeyWalk: 1_000_000_000,
    },
  })
  wsUrl = relay.url.replace(/^http/, 'ws')
})
afterAll(async () => {
  await relay.close()
})

/** Opens a mux socket, authenticating in-band when a token is given. */
const open = async (token: string | null): Promise<RawMuxClient> => {
  const client = new RawMuxClient(wsUrl)
  await client.open()
  if (token) {
    client.send(encodeAuth(token))
    await client.waitFor((m) => m.type === MessageType.authenticated || m.type === MessageType.error, 'auth answer')
  }
  return client
}

/** A writer that watches the doc: it must receive nothing from refused messages. */
const watcher = async () => {
  const w = await open(await signToken('watcher', { acme: 'write' }))
  const doc = w.subscribe(DOC)
  await waitFor(() => doc.getText('t').toString().includes('original'), 'watcher synced')
  const syncCount = () => w.received.filter((m) => m.type === MessageType.sync).length
  const awarenessCount = () => w.received.filter((m) => m.type === MessageType.awareness).length
  return { w, doc, syncCount, awarenessCount }
}

const editUpdate = (text: string): Uint8Array => {
  const d = new Y.Doc()
  d.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

const syncMessage = (kind: 'step1' | 'step2' | 'update', update: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.sync, DOC)
  if (kind === 'step1') syncProtocol.writeSyncStep1(encoder, new Y.Doc())
  else if (kind === 'step2') {
    encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep2)
    encoding.writeVarUint8Array(encoder, update)
  } else syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

const awarenessMessage = (clientId: number, state: object): Uint8Array => {
  const d = new Y.Doc()
  d.clientID = clientId
  const a = new awarenessProtocol.Awareness(d)
  a.setLocalState(state)
  const update = awarenessProtocol.encodeAwarenessUpdate(a, [clientId])
  a.destroy()
  return encodeAwareness(DOC, update)
}

type Role = 'none' | 'expired' | 'wrong-workspace' | 'read' | 'write'
type Message = 'sync-step1' | 'sync-step2' | 'update' | 'awareness' | 'custom'

const tokenFor = async (role: Role): Promise<string | null> => {
  switch (role) {
    case 'none':
      return null
    case 'expired':
      return signToken('eve', { acme: 'write' }, { expiresIn: -120 })
    case 'wrong-workspace':
      return signToken('mallory', { globex: 'write' })
    case 'read':
      return signToken('rita', { acme: 'read' })
    case 'write':
      return signToken('walt', { acme: 'write' })
  }
}

describe('permission matrix', () => {
  const roles: Role[] = ['none', 'expired', 'wrong-workspace', 'read', 'write']
  const messages: Message[] = ['sync-step1', 'sync-step2', 'update', 'awareness', 'custom']
  for (const role of roles) {
    for (const message of messages) {
      it(`${role} × ${message}`, async () => {
        const watching = await watcher()
        const { w, syncCount, awarenessCount } = watching
        const syncBefore = syncCount()
        const awarenessBefore = awarenessCount()
        const textBefore = await storedText()
        const client = await open(await tokenFor(role))
        const marker = `${role}-${message}`
        client.send(encodeSubscribe(DOC))
        switch (message) {
          case 'sync-step1':
            client.send(syncMessage('step1', new Uint8Array()))
            break
          case 'sync-step2':
            client.send(syncMessage('step2', editUpdate(marker)))
            break
          case 'update':
            client.send(syncMessage('update', editUpdate(marker)))
            break
          case 'awareness':
            client.send(awarenessMessage(4242 + roles.indexOf(role) * 10 + messages.indexOf(message), { cursor: marker }))
            break
          case 'custom':
            client.send(encodeListDocs('acme/', 1))
            client.send(encodeFetch(DOC, Y.encodeStateVector(new Y.Doc())))
            break
        }
        const allowed =
          role === 'write' || (role === 'read' && (message === 'sync-step1' || message === 'awareness' || message === 'custom'))
        if (role === 'none' || role === 'expired') {
          // unauthenticated: the relay refuses explicitly and closes with 1008
          const closed = await client.waitClosed()
          expect(closed.code).toBe(CloseCode.policyViolation)
          expect(client.received.some((m) => m.error?.code === ErrorCode.unauthorized)).toBe(true)
        } else if (role === 'wrong-workspace') {
          // the subscribe is refused, and then the message itself
          const denied = await client.waitFor((m) => m.error?.code === ErrorCode.permissionDenied && m.doc === DOC, 'subscribe refused')
          expect(denied.error!.reason).toMatch(/no access to "acme\/T-1"/)
          if (message === 'custom') {
            const list = await client.waitFor((m) => m.error?.code === ErrorCode.permissionDenied && m.doc === 'acme/', 'list refused')
            expect(list.error!.reason).toMatch(/no access to list/)
            await waitFor(
              () => client.received.filter((m) => m.error?.code === ErrorCode.permissionDenied && m.doc === DOC).length === 2,
              'fetch refused',
            )
            expect(client.received.some((m) => m.type === MessageType.docList || m.type === MessageType.fetched)).toBe(false)
          } else {
            const refused = await client.waitFor((m) => m.error?.code === ErrorCode.notSubscribed && m.doc === DOC, `${message} refused`)
            expect(refused.error!.reason).toMatch(/not subscribed/)
          }
          expect(
            client.received.some((m) => m.type === MessageType.sync || m.type === MessageType.awareness || m.type === MessageType.ack),
          ).toBe(false)
        } else if (!allowed) {
          // read-only: the subscribe is accepted, the update itself is refused
          const error = await client.waitFor((m) => m.error?.code === ErrorCode.permissionDenied && m.doc === DOC, 'permission error')
          expect(error.error!.reason).toMatch(/read-only access: updates are not accepted/)
        } else {
          if (message === 'sync-step1') {
            await client.waitFor((m) => m.type === MessageType.sync, 'step 2 with the doc')
          } else if (message === 'custom') {
            await client.waitFor((m) => m.type === MessageType.docList, 'doc list')
            await client.waitFor((m) => m.type === MessageType.fetched, 'fetched')
          } else if (message === 'awareness') {
            await waitFor(() => awarenessCount() > awarenessBefore, 'watcher sees awareness')
          } else {
            await waitFor(() => syncCount() > syncBefore, 'watcher sees the update')
          }
        }
        // round trips: the relay has handled every message of the client (unless it closed it), and what it sent the watcher has arrived
        if (client.closeEvent === null) await client.roundTrip()
        await w.roundTrip()
        const writes = message === 'sync-step2' || message === 'update'
        if (writes && role === 'write') {
          expect(await storedOnceAcked(watching, marker)).toContain(marker)
        } else {
          expect(await storedText()).toBe(textBefore)
          expect(relay.rooms.peek(DOC)!.doc.getText('t').toString()).toBe(textBefore)
          expect(syncCount()).toBe(syncBefore)
        }
        if (message === 'awareness' && !allowed) {
          expect(awarenessCount()).toBe(awarenessBefore)
          expect([...relay.rooms.peek(DOC)!.awarenessStates.values()].some((state) => state.cursor === marker)).toBe(false)
        }
        client.close()
        w.close()
      })
    }
  }
})

/** A raw y-websocket connection (`/<doc>?token=`) that records every frame it receives. */
const openYws = async (token: string): Promise<{ ws: WebSocket; frames: Uint8Array[]; closed: Promise<number> }> => {
  const ws = new WebSocket(`${wsUrl}/${DOC}?token=${token}`)
  ws.binaryType = 'nodebuffer'
  const frames: Uint8Array[] = []
  ws.on('message', (data: Buffer) => frames.push(new Uint8Array(data)))
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  return { ws, frames, closed }
}

/** A y-websocket message: type, then the body `write` adds. */
const ywsMessage = (type: number, write: (e: encoding.Encoder) => void): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, type)
  write(e)
  return encoding.toUint8Array(e)
}

/** Reasons of the y-protocols auth `permission-denied` messages among `frames`. */
const permissionDenials = (frames: Uint8Array[]): string[] =>
  frames.flatMap((frame) => {
    const d = decoding.createDecoder(frame)
    if (decoding.readVarUint(d) !== MessageType.auth || decoding.readVarUint(d) !== 0) return []
    return [decoding.readVarString(d)]
  })

describe('permission matrix, y-websocket endpoint', () => {
  for (const [role, status] of [
    ['none', 401],
    ['expired', 401],
    ['wrong-workspace', 403],
  ] as const) {
    it(`${role}: the upgrade is refused with ${status}`, async () => {
      const token = await tokenFor(role)
      expect(await upgradeStatus(`${wsUrl}/${DOC}${token ? `?token=${token}` : ''}`)).toBe(status)
    })
  }

  const messages = ['sync-step1', 'sync-step2', 'update', 'awareness'] as const
  for (const role of ['read', 'write'] as const) {
    for (const message of messages) {
      it(`${role} × ${message}`, async () => {
        const watching = await watcher()
        const { w, syncCount, awarenessCount } = watching
        const syncBefore = syncCount()
        const awarenessBefore = awarenessCount()
        const textBefore = await storedText()
        const client = await openYws((await tokenFor(role))!)
        const marker = `yws-${role}-${message}`
        const clientId = 5000 + messages.indexOf(message) + (role === 'write' ? 10 : 0)
        switch (message) {
          case 'sync-step1':
            client.ws.send(ywsMessage(MessageType.sync, (e) => syncProtocol.writeSyncStep1(e, new Y.Doc())))
            break
          case 'sync-step2':
            client.ws.send(
              ywsMessage(MessageType.sync, (e) => {
                encoding.writeVarUint(e, syncProtocol.messageYjsSyncStep2)
                encoding.writeVarUint8Array(e, editUpdate(marker))
              }),
            )
            break
          case 'update':
            client.ws.send(ywsMessage(MessageType.sync, (e) => syncProtocol.writeUpdate(e, editUpdate(marker))))
            break
          case 'awareness': {
            const d = new Y.Doc()
            d.clientID = clientId
            const a = new awarenessProtocol.Awareness(d)
            a.setLocalState({ cursor: marker })
            const update = awarenessProtocol.encodeAwarenessUpdate(a, [clientId])
            a.destroy()
            client.ws.send(ywsMessage(MessageType.awareness, (e) => encoding.writeVarUint8Array(e, update)))
            break
          }
        }
        const writes = message === 'sync-step2' || message === 'update'
        if (writes && role === 'read') {
          // not applied, not stored, not broadcast, and the client is told
          await waitFor(() => permissionDenials(client.frames).length > 0, 'permission-denied auth message')
          expect(permissionDenials(client.frames)[0]).toMatch(/read-only access: updates are not accepted/)
          // the refusal is the relay's handling of the update; a round trip of the watcher brings whatever it was sent
          await w.roundTrip()
          expect(await storedText()).toBe(textBefore)
          expect(relay.rooms.peek(DOC)!.doc.getText('t').toString()).toBe(textBefore)
          expect(syncCount()).toBe(syncBefore)
          expect(client.ws.readyState).toBe(WebSocket.OPEN)
        } else if (writes) {
          expect(await storedOnceAcked(watching, marker)).toContain(marker)
          await waitFor(() => syncCount() > syncBefore, 'watcher sees the update')
        } else if (message === 'sync-step1') {
          // answered with a sync step 2 (and, for a writer, the relay's own step 1)
          await waitFor(() => client.frames.some((f) => f[0] === MessageType.sync && f[1] === syncProtocol.messageYjsSyncStep2), 'step 2')
          expect(syncCount()).toBe(syncBefore)
        } else {
          await waitFor(() => awarenessCount() > awarenessBefore, 'watcher sees awareness')
          expect(relay.rooms.peek(DOC)!.awarenessStates.get(clientId)?.cursor).toBe(marker)
        }
        // a read-only connection never gets a sync step 1 from the relay, a writer does
        const step1s = client.frames.filter((f) => f[0] === MessageType.sync && f[1] === syncProtocol.messageYjsSyncStep1).length
        expect(step1s).toBe(role === 'write' ? 1 : 0)
        client.ws.close()
        w.close()
      })
    }
  }
})

/**
 * The stored text once the relay acked the watcher's doc with `marker` in it:
 * the relay acks only what it stored, so this waits on its ack, not on time.
 * The watcher wrote nothing, so no commit acks it: it asks with a sync step 1,
 * which the relay acks once everything the room holds is stored.
 */
const storedOnceAcked = async ({ w, doc }: { w: RawMuxClient; doc: Y.Doc }, marker: string): Promise<string> => {
  await waitFor(() => doc.getText('t').toString().includes(marker), 'the watcher has the edit')
  const step1 = startMessage(MessageType.sync, DOC)
  syncProtocol.writeSyncStep1(step1, doc)
  w.send(encoding.toUint8Array(step1))
  await w.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && covers(m.ack, doc), 'the relay acked the edit')
  return storedText()
}

describe('tokens', () => {
  it('accepts a token in the query, in Sec-WebSocket-Protocol, and in-band', async () => {
    const token = await signToken('walt', { acme: 'write' }, { name: 'Walt' })
    const q = new WebSocket(`${wsUrl}${MUX_PATH}?token=${token}`)
    await new Promise((resolve, reject) => {
      q.once('open', resolve)
      q.once('error', reject)
    })
    q.close()
    const h = new WebSocket(`${wsUrl}${MUX_PATH}`, ['concord.v1', `concord.token.${token}`])
    await new Promise((resolve, reject) => {
      h.once('open', resolve)
      h.once('error', reject)
    })
    expect(h.protocol).toBe('concord.v1')
    h.close()
    const inBand = await open(token)
    expect(inBand.received.some((m) => m.type === MessageType.authenticated)).toBe(true)
    inBand.close()
  })

  it('refuses a bad token at the upgrade with 401, and y-websocket paths need one', async () => {
    const status = (url: string) => upgradeStatus(url)
    const forged = await signToken('walt', { acme: 'write' }, { secret: 'another-secret-that-is-long-enough-12345' })
    expect(await status(`${wsUrl}${MUX_PATH}?token=${forged}`)).toBe(401)
    expect(await status(`${wsUrl}${MUX_PATH}?token=${await signToken('e', { acme: 'write' }, { expiresIn: -60 })}`)).toBe(401)
    expect(await status(`${wsUrl}/${DOC}`)).toBe(401)
    expect(await status(`${wsUrl}/${DOC}?token=${await signToken('m', { globex: 'write' })}`)).toBe(403)
    expect(await status(`${wsUrl}/${DOC}?token=${await signToken('r', { acme: 'read' })}`)).toBe(101)
  })

  it('closes a connection when its token expires, unless it was refreshed in-band', async () => {
    const short = await signToken('walt', { acme: 'write' }, { expiresIn: 3 }) // long enough to be refreshed in-band on a loaded machine
    const closing = await open(short)
    const refreshed = await open(short)
    refreshed.send(encodeAuth(await signToken('walt', { acme: 'write' }, { expiresIn: 3600 })))
    await refreshed.waitFor(
      (m) => m.type === MessageType.authenticated && refreshed.received.filter((x) => x.type === MessageType.authenticated).length === 2,
      'second authenticated',
    )
    const closed = await closing.waitClosed(10_000)
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/expired/)
    expect(refreshed.closeEvent).toBeNull()
    // a refresh for another user is refused
    refreshed.send(encodeAuth(await signToken('mallory', { acme: 'write' })))
    expect((await refreshed.waitClosed()).code).toBe(CloseCode.policyViolation)
  })

  it('a refresh that drops a workspace unsubscribes its docs', async () => {
    const client = await open(await signToken('walt', { acme: 'write', globex: 'write' }))
    client.subscribe(DOC)
    await client.waitFor((m) => m.type === MessageType.ack, 'ack')
    client.send(encodeAuth(await signToken('walt', { globex: 'write' })))
    const error = await client.waitFor((m) => m.error?.code === ErrorCode.permissionDenied, 'revoked')
    expect(error.doc).toBe(DOC)
    client.close()
  })
})

describe('origin allowlist', () => {
  it('refuses WebSockets from origins not on the list, admits listed and non-browser clients', async () => {
    const token = await signToken('walt', { acme: 'write' })
    const status = (origin?: string) => upgradeStatus(`${wsUrl}${MUX_PATH}?token=${token}`, origin ? { origin } : {})
    expect(await status('https://evil.example.com')).toBe(403)
    expect(await status('https://app.example.com')).toBe(101)
    expect(await status()).toBe(101)
  })
})

describe('awareness', () => {
  it('a connection cannot set, change or remove another connection’s awareness client ids', async () => {
    const alice = await open(await signToken('alice', { acme: 'write' }, { name: 'Alice' }))
    const mallory = await open(await signToken('mallory', { acme: 'write' }, { name: 'Mallory' }))
    const observer = await open(await signToken('olga', { acme: 'read' }))
    for (const c of [alice, mallory, observer]) c.subscribe(DOC)
    alice.send(awarenessMessage(1001, { cursor: 'title', user: { id: 'bob', name: 'Claims to be Bob' } }))
    await waitFor(() => relay.rooms.peek(DOC)?.awarenessStates.has(1001) ?? false, 'alice state')
    const room = relay.rooms.peek(DOC)!
    // identity fields are stamped from the token
    expect(room.awarenessStates.get(1001)?.user).toMatchObject({ id: 'alice', name: 'Alice' })
    // the observer has seen alice's state; from now on it must see nothing
    const observerAwareness = () => observer.received.filter((m) => m.type === MessageType.awareness).length
    await waitFor(() => observerAwareness() > 0, 'observer sees alice')
    // round trips: the relay handled everything sent so far, and the observer has what it was sent for it
    for (const c of [alice, mallory, observer]) await c.roundTrip()
    const observerBefore = observerAwareness()
    // mallory tries to overwrite and to remove alice's client id
    const d = new Y.Doc()
    d.clientID = 1001
    const forged = new awarenessProtocol.Awareness(d)
    forged.setLocalState({ cursor: 'hijacked' })
    forged.setLocalState({ cursor: 'hijacked-again' })
    forged.setLocalState({ cursor: 'hijacked-3' })
    mallory.send(encodeAwareness(DOC, awarenessProtocol.encodeAwarenessUpdate(forged, [1001])))
    forged.setLocalState(null)
    mallory.send(encodeAwareness(DOC, awarenessProtocol.encodeAwarenessUpdate(forged, [1001])))
    forged.destroy()
    await mallory.roundTrip() // the relay handled the forgeries
    await observer.roundTrip() // anything it broadcast for them has arrived
    expect(room.awarenessStates.get(1001)?.cursor).toBe('title')
    expect(await relay.metrics.render()).toMatch(/concord_refusals_total\{reason="forged-awareness"\} [1-9]/)
    // nothing of the forgeries was broadcast
    expect(observerAwareness()).toBe(observerBefore)
    // oversize states are refused explicitly
    alice.send(awarenessMessage(1002, { blob: 'x'.repeat(5000) }))
    const error = await alice.waitFor((m) => m.error?.code === ErrorCode.tooLarge, 'too large')
    expect(error.error!.reason).toMatch(/awareness/)
    expect(room.awarenessStates.has(1002)).toBe(false)
    for (const c of [alice, mallory, observer]) c.close()
  })

  it('the state size cap counts UTF-8 bytes: 400 CJK characters (~1.2 KB) are over a 1 KiB cap', async () => {
    const carol = await open(await signToken('carol', { acme: 'write' }))
    const observer = await open(await signToken('olga', { acme: 'read' }))
    for (const c of [carol, observer]) c.subscribe(DOC)
    await carol.waitFor((m) => m.type === MessageType.ack, 'ack')
    await observer.waitFor(
      (m) => m.type === MessageType.authors || m.type === MessageType.sync || m.type === MessageType.awareness,
      'subscribed',
    )
    for (const c of [carol, observer]) await c.roundTrip() // what the subscribes brought has arrived
    const observerBefore = observer.received.filter((m) => m.type === MessageType.awareness).length
    const cjk = '漢'.repeat(400)
    expect(JSON.stringify({ note: cjk }).length).toBeLessThan(1024)
    expect(Buffer.byteLength(JSON.stringify({ note: cjk }))).toBeGreaterThan(1024)
    carol.send(awarenessMessage(1003, { note: cjk }))
    const error = await carol.waitFor((m) => m.error?.code === ErrorCode.tooLarge, 'too large')
    expect(error.error!.reason).toMatch(/awareness state larger than 1024 bytes/)
    expect(relay.rooms.peek(DOC)!.awarenessStates.has(1003)).toBe(false)
    // a state just under the cap in bytes is accepted and broadcast
    carol.send(awarenessMessage(1004, { note: '漢'.repeat(300) }))
    await waitFor(() => relay.rooms.peek(DOC)!.awarenessStates.has(1004), 'smaller state applied')
    await waitFor(
      () => observer.received.filter((m) => m.type === MessageType.awareness).length > observerBefore,
      'observer sees the smaller state',
    )
    for (const c of [carol, observer]) c.close()
  })
})

describe('limits', () => {
  it('caps docs per connection with an explicit error', async () => {
    const client = await open(await signToken('walt', { acme: 'write' }))
    for (let i = 0; i < 6; i++) client.subscribe(`acme/cap-${i}`)
    const error = await client.waitFor((m) => m.error?.code === ErrorCode.limitExceeded, 'limit error')
    expect(error.doc).toBe('acme/cap-5')
    client.close()
  })

  it('refuses updates that would grow a doc past the size cap and keeps the doc', async () => {
    const client = await open(await signToken('walt', { acme: 'write' }))
    const doc = client.subscribe('acme/big')
    await client.waitFor((m) => m.type === MessageType.ack, 'ack')
    const before = Y.encodeStateVector(doc)
    doc.getText('t').insert(0, 'y'.repeat(70 * 1024))
    client.sendUpdate('acme/big', Y.encodeStateAsUpdate(doc, before))
    const error = await client.waitFor((m) => m.error?.code === ErrorCode.tooLarge, 'too large')
    expect(error.doc).toBe('acme/big')
    expect(relay.rooms.peek('acme/big')!.doc.getText('t').length).toBe(0)
    client.close()
  })

  it('closes unauthenticated connections that send too much before authenticating', async () => {
    const client = await open(null)
    for (let i = 0; i < 40; i++) client.send(encodeSubscribe(`acme/x${i}`))
    expect((await client.waitClosed()).code).toBe(CloseCode.policyViolation)
  })
})

describe('slow readers', () => {
  it('a peer that stops reading is disconnected instead of growing relay memory', async () => {
    const slowRelay = await createRelay({
      storage: new MemoryStorage(),
      port: 0,
      processMetrics: false,
      limits: { maxPayload: 128 * 1024, maxBufferedBytes: 256 * 1024, messagesPerSecond: 100_000, messageBurst: 100_000 },
    })
    try {
      const url = slowRelay.url.replace(/^http/, 'ws')
      const slow = new RawMuxClient(url)
      await slow.open()
      slow.subscribe('acme/firehose')
      await slow.waitFor((m) => m.type === MessageType.ack, 'ack')
      ;(slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
      const writer = new RawMuxClient(url)
      await writer.open()
      const doc = writer.subscribe('acme/firehose')
      await writer.waitFor((m) => m.type === MessageType.ack, 'writer ack')
      for (let i = 0; i < 400 && slowRelay.connectionCount > 1; i++) {
        const before = Y.encodeStateVector(doc)
        doc.getText('t').insert(0, 'z'.repeat(64 * 1024))
        writer.sendUpdate('acme/firehose', Y.encodeStateAsUpdate(doc, before))
        await new Promise((r) => setTimeout(r, 2)) // paces the load only (the loop ends once the relay dropped the slow reader)
      }
      await waitFor(() => slowRelay.connectionCount === 1, 'slow reader disconnected')
      expect(await slowRelay.metrics.render()).toMatch(/concord_refusals_total\{reason="slow-reader"\} 1/)
      expect(writer.closeEvent).toBeNull()
      writer.close()
    } finally {
      await slowRelay.close()
    }
  })
})

describe('apply-time budget', () => {
  it('closes a connection whose valid updates cost too much time to apply (long conflict chains on one map key)', async () => {
    const client = await open(await signToken('walt', { acme: 'write' }))
    client.subscribe('acme/conflicts')
    await client.waitFor((m) => m.type === MessageType.ack, 'ack')
    for (let part = 0; part < 12 && client.closeEvent === null; part++) {
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, 1) // one client
      encoding.writeVarUint(e, 1000) // 1000 structs
      encoding.writeVarUint(e, 7_000_000 + part) // client id
      encoding.writeVarUint(e, 0) // clock
      for (let i = 0; i < 1000; i++) {
        encoding.writeUint8(e, 8 | 0x20) // ContentAny, parent named, no origins
        encoding.writeVarUint(e, 1)
        encoding.writeVarString(e, 'm')
        encoding.writeVarString(e, 'k')
        encoding.writeVarUint(e, 1)
        encoding.writeUint8(e, 126)
      }
      encoding.writeVarUint(e, 0) // empty delete set
      client.sendUpdate('acme/conflicts', encoding.toUint8Array(e))
      await new Promise((r) => setTimeout(r, 20)) // paces the load only (the loop ends once the relay closed the connection)
    }
    const closed = await client.waitClosed(30_000)
    expect(closed.code).toBe(CloseCode.policyViolation)
    expect(closed.reason).toMatch(/too much time/)
    expect(await relay.metrics.render()).toMatch(/concord_refusals_total\{reason="apply-budget"\} [1-9]/)
  }, 60_000)
})

describe('missing dependencies', () => {
  it('an update whose dependencies the relay lacks is not applied, stored or acked, and the client is asked to resync', async () => {
    const client = await open(await signToken('walt', { acme: 'write' }))
    const doc = client.subscribe('acme/deps')
    await client.waitFor((m) => m.type === MessageType.ack, 'ack')
    const author = new Y.Doc()
    author.getText('t').insert(0, 'first')
    const sv = Y.encodeStateVector(author)
    author.getText('t').insert(5, ' second')
    const onlySecond = Y.encodeStateAsUpdate(author, sv)
    const stepsBefore = client.received.filter((m) => m.type === MessageType.sync).length
    client.sendUpdate('acme/deps', onlySecond)
    const error = await client.waitFor((m) => m.error?.code === ErrorCode.missingDependencies && m.doc === 'acme/deps', 'refusal')
    expect(error.error!.reason).toMatch(/depends on changes/)
    await waitFor(() => client.received.filter((m) => m.type === MessageType.sync).length > stepsBefore, 'resync request')
    const room = relay.rooms.peek('acme/deps')!
    expect(room.doc.getText('t').toString()).toBe('')
    expect(room.doc.store.pendingStructs).toBeNull()
    expect(client.received.some((m) => m.type === MessageType.ack && covers(m.ack, author))).toBe(false)
    void doc
    client.close()
  })
})
