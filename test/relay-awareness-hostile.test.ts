/**
 * Awareness from a hostile read-only user, against a real relay process with
 * JWT auth: awareness never writes (no binding, no catalog entry), a writer's
 * update wins over a read-only awareness claim, floods are capped with a
 * clear error and cost each peer a bounded number of bytes, and a doc's
 * author bindings go out in parts of bounded size however many there are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import { SyncClient } from '@concord/engine'
import {
  ErrorCode,
  MessageType,
  decodeMessage,
  encodeAuth,
  encodeAwareness,
  encodeFetch,
  encodeListDocs,
  encodeListPresence,
} from '@concord/engine/protocol'
import { DEFAULT_LIMITS } from '../apps/relay/src/security/limits.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { makeTempDir, removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'

/** What one awareness message may cost each peer (docs/security.md): ids × (state + 4 KiB stamp + 32) + 2 KiB. */
const AWARENESS_FORWARD_BOUND = DEFAULT_LIMITS.maxAwarenessIds * (DEFAULT_LIMITS.maxAwarenessStateBytes + 4096 + 32) + 2048
/** Largest `authors` message (docs/PROTOCOL.md): a 64 KiB body plus the header with the doc name. */
const AUTHORS_PART_BOUND = 64 * 1024 + 2048

let dataDir: string
let relay: RelayProcess
const clients: RawMuxClient[] = []
const syncClients: SyncClient[] = []

const start = async () => {
  // the apply budget is not under test here: building the doc of 20,000 writers must not trip it on a loaded machine
  relay = await startRelay({
    dataDir,
    env: { JWT_SECRET: TEST_SECRET },
    args: ['--apply-ms-per-second', '1000', '--apply-burst-ms', '600000'],
  })
}
const restart = async () => {
  for (const c of clients.splice(0)) c.close()
  await relay.stop()
  await start()
}

beforeAll(async () => {
  dataDir = makeTempDir()
  await start()
})
afterAll(async () => {
  for (const c of clients) c.close()
  for (const c of syncClients) c.close()
  await relay.stop()
  removeDir(dataDir)
})

/** Every raw message a client received: type, doc, size in bytes, body. */
interface Raw {
  type: number
  doc: string
  bytes: number
  body: Uint8Array
}

const as = async (userId: string, access: 'read' | 'write', name = userId.toUpperCase()) => {
  const c = new RawMuxClient(relay.wsUrl)
  const raw: Raw[] = []
  c.ws.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(data)
    const { type, doc, body } = decodeMessage(bytes)
    raw.push({ type, doc, bytes: bytes.byteLength, body: bytes.subarray(body.pos) })
  })
  clients.push(c)
  await c.open()
  c.send(encodeAuth(await signToken(userId, { acme: access }, { name })))
  await c.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
  return Object.assign(c, { raw })
}
type Client = Awaited<ReturnType<typeof as>>

let requestIds = 100
/** A round trip on the connection: everything the relay did for earlier messages has been sent. */
const roundTrip = async (c: RawMuxClient) => {
  const requestId = ++requestIds
  c.send(encodeListPresence('acme', requestId))
  await c.waitFor((m) => m.presence?.requestId === requestId, 'a round trip')
}

/** The awareness states a client was told of for `doc`, applied in order. */
const awarenessSeen = (c: Client, doc: string): Map<number, Record<string, unknown>> => {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awareness.setLocalState(null)
  for (const m of c.raw) {
    if (m.type !== MessageType.awareness || m.doc !== doc) continue
    awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoding.createDecoder(m.body)), 'relay')
  }
  const states = new Map(awareness.getStates())
  awareness.destroy()
  return states as Map<number, Record<string, unknown>>
}

/** A hand-made awareness update: one entry per client id, with the given state. */
const awarenessUpdate = (entries: Array<{ clientId: number; clock?: number; state: unknown }>): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const e of entries) {
    encoding.writeVarUint(encoder, e.clientId)
    encoding.writeVarUint(encoder, e.clock ?? 1)
    encoding.writeVarString(encoder, JSON.stringify(e.state))
  }
  return encoding.toUint8Array(encoder)
}

const bindings = (c: RawMuxClient, doc: string): Map<number, string> => {
  const map = new Map<number, string>()
  for (const m of c.received) if (m.type === MessageType.authors && m.doc === doc) for (const a of m.authors!) map.set(a.clientId, a.userId)
  return map
}

const write = (c: RawMuxClient, doc: string, text: string, clientId: number): Y.Doc => {
  const d = c.docs.get(doc)!
  d.clientID = clientId
  const before = Y.encodeStateVector(d)
  d.getText('t').insert(d.getText('t').length, text)
  c.sendUpdate(doc, Y.encodeStateAsUpdate(d, before))
  return d
}

const ackOf = (c: RawMuxClient, doc: string) => c.waitFor((m) => m.type === MessageType.ack && m.doc === doc, `ack of ${doc}`)

describe('awareness from a read-only user', () => {
  it('(1) stores nothing: a doc that never existed does not appear in list-docs, and no binding exists, after a restart', async () => {
    const DOC = 'acme/ghost-1'
    const rita = await as('rita', 'read')
    rita.subscribe(DOC)
    await ackOf(rita, DOC)
    rita.send(encodeAwareness(DOC, awarenessUpdate([{ clientId: 4242, state: { cursor: 1 } }])))
    await waitFor(() => awarenessSeen(rita, DOC).has(4242), 'the state is applied (echoed back)')
    await restart()
    const walt = await as('walt', 'write')
    walt.send(encodeListDocs('acme/', 1))
    const list = await walt.waitFor((m) => m.list?.requestId === 1, 'list-docs')
    expect(list.list!.names).not.toContain(DOC)
    walt.subscribe(DOC)
    await ackOf(walt, DOC)
    expect(walt.received.filter((m) => m.type === MessageType.authors && m.doc === DOC)).toEqual([])
  })

  it('(2) never blocks a writer: an update under an id the read-only user announced is accepted, stored, acked, and the announced state goes', async () => {
    const DOC = 'acme/T-2'
    const X = 7777
    const rita = await as('rita', 'read')
    const walt = await as('walt', 'write')
    rita.subscribe(DOC)
    walt.subscribe(DOC)
    for (const c of [rita, walt]) await ackOf(c, DOC)
    rita.send(encodeAwareness(DOC, awarenessUpdate([{ clientId: X, state: { cursor: 3 } }])))
    await waitFor(() => awarenessSeen(walt, DOC).has(X), 'the writer sees the announced id')
    write(walt, DOC, 'written by walt', X)
    await walt.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && (m.ack!.get(X) ?? 0) > 0, 'ack of the writer’s update')
    expect(walt.received.filter((m) => m.type === MessageType.error)).toEqual([])
    // the read-only user's state for the id is removed, and everyone is told
    await waitFor(() => !awarenessSeen(walt, DOC).has(X), 'the announced state removed at the writer')
    await waitFor(() => !awarenessSeen(rita, DOC).has(X), 'the announced state removed at the announcer')
    await waitFor(() => bindings(rita, DOC).get(X) === 'walt', 'the binding')
    // and it cannot be announced again by the read-only user
    rita.send(encodeAwareness(DOC, awarenessUpdate([{ clientId: X, clock: 9, state: { cursor: 4 } }])))
    await roundTrip(rita)
    await roundTrip(walt)
    expect(awarenessSeen(walt, DOC).has(X)).toBe(false)
    // stored: a fresh subscriber after a restart gets the text and the binding
    await restart()
    const sam = await as('sam', 'read')
    const doc = sam.subscribe(DOC)
    await waitFor(() => doc.getText('t').toString() === 'written by walt', 'the stored text')
    await waitFor(() => bindings(sam, DOC).get(X) === 'walt', 'the stored binding')
  })

  it('(3) a flood is capped with a clear error, binds nothing, costs each peer a bounded number of bytes, and the doc still loads after a restart', async () => {
    const DOC = 'acme/T-3'
    const ENTRIES = 1000
    const walt = await as('walt', 'write')
    const doc = walt.subscribe(DOC)
    await ackOf(walt, DOC)
    write(walt, DOC, 'the ticket', 31)
    await walt.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && covers(m.ack, doc), 'stored')
    const rita = await as('rita', 'read', 'R'.repeat(256))
    const olga = await as('olga', 'read')
    rita.subscribe(DOC)
    olga.subscribe(DOC)
    for (const c of [rita, olga]) await ackOf(c, DOC)
    await roundTrip(olga)
    const before = olga.raw.length
    // one message of 1,000 entries of 600 bytes each (0.6 MiB)
    const padding = 'p'.repeat(580)
    rita.send(
      encodeAwareness(DOC, awarenessUpdate(Array.from({ length: ENTRIES }, (_, j) => ({ clientId: 100_000 + j, state: { j, padding } })))),
    )
    const capped = await rita.waitFor((m) => m.doc === DOC && m.error?.code === ErrorCode.limitExceeded, 'the cap error')
    expect(capped.error!.reason).toMatch(new RegExp(`at most ${DEFAULT_LIMITS.maxAwarenessIds} awareness client ids`))
    await roundTrip(olga)
    const forwarded = olga.raw.slice(before).filter((m) => m.type === MessageType.awareness && m.doc === DOC)
    const cost = forwarded.reduce((sum, m) => sum + m.bytes, 0)
    console.log(
      `one awareness message of ${ENTRIES} entries (600 B states) cost a peer ${cost} bytes in ${forwarded.length} message(s); bound ${AWARENESS_FORWARD_BOUND}`,
    )
    expect(cost).toBeGreaterThan(0)
    expect(cost).toBeLessThanOrEqual(AWARENESS_FORWARD_BOUND)
    expect(awarenessSeen(olga, DOC).size).toBe(DEFAULT_LIMITS.maxAwarenessIds)
    // the rest of a bounded flood: 49 more messages of 1,000 new ids each, each refused for its new ids
    for (let i = 1; i < 50; i++) {
      rita.send(
        encodeAwareness(
          DOC,
          awarenessUpdate(Array.from({ length: ENTRIES }, (_, j) => ({ clientId: 100_000 + i * ENTRIES + j, state: { j } }))),
        ),
      )
    }
    // a message with more entries than the relay takes is refused whole
    rita.send(
      encodeAwareness(
        DOC,
        awarenessUpdate(Array.from({ length: DEFAULT_LIMITS.maxAwarenessEntries + 1 }, (_, j) => ({ clientId: 5_000_000 + j, state: {} }))),
      ),
    )
    const whole = await rita.waitFor((m) => m.doc === DOC && /per message/.test(m.error?.reason ?? ''), 'the entries error')
    expect(whole.error!.code).toBe(ErrorCode.limitExceeded)
    expect(whole.error!.reason).toMatch(
      new RegExp(`${DEFAULT_LIMITS.maxAwarenessEntries + 1} entries; at most ${DEFAULT_LIMITS.maxAwarenessEntries} per message`),
    )
    expect(rita.received.filter((m) => m.doc === DOC && m.error?.code === ErrorCode.limitExceeded)).toHaveLength(51)
    expect(rita.closeEvent).toBeNull()
    await roundTrip(olga)
    expect(awarenessSeen(olga, DOC).size).toBe(DEFAULT_LIMITS.maxAwarenessIds)
    expect(bindings(olga, DOC)).toEqual(new Map([[31, 'walt']]))
    // nothing stored: after a restart a fresh subscriber loads the doc, with the one real binding only
    await restart()
    const sam = await as('sam', 'write')
    const loaded = sam.subscribe(DOC)
    await waitFor(() => loaded.getText('t').toString() === 'the ticket', 'the doc loads')
    await ackOf(sam, DOC)
    expect(bindings(sam, DOC)).toEqual(new Map([[31, 'walt']]))
    expect(sam.closeEvent).toBeNull()
  })
})

describe('awareness state size', () => {
  it('is counted as the relay would forward it: numbers that re-serialize longer do not slip past the cap', async () => {
    const DOC = 'acme/T-5'
    const rita = await as('rita', 'read')
    const olga = await as('olga', 'read')
    rita.subscribe(DOC)
    olga.subscribe(DOC)
    for (const c of [rita, olga]) await ackOf(c, DOC)
    // 3,000 × `9e20,` is 15 KB as sent, 66 KB once JSON.stringify writes each number out in 21 digits
    const json = `{"n":[${Array.from({ length: 3000 }, () => '9e20').join(',')}]}`
    expect(json.length).toBeLessThan(DEFAULT_LIMITS.maxAwarenessStateBytes)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint(encoder, 8888)
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarString(encoder, json)
    rita.send(encodeAwareness(DOC, encoding.toUint8Array(encoder)))
    const error = await rita.waitFor((m) => m.doc === DOC && m.error?.code === ErrorCode.tooLarge, 'too large')
    expect(error.error!.reason).toMatch(/awareness state larger than/)
    await roundTrip(olga)
    expect(awarenessSeen(olga, DOC).has(8888)).toBe(false)
  })
})

describe('author bindings in parts', () => {
  it('a doc with 20,000 bindings sends them in parts each under the bound, on broadcast, subscribe and fetch, and a fresh subscriber gets them all', async () => {
    const DOC = 'acme/T-4'
    const COUNT = 20_000
    // a long display name makes the bindings ~4 MiB in all
    const walt = await as('walt', 'write', 'W'.repeat(200))
    const olga = await as('olga', 'read')
    walt.subscribe(DOC)
    olga.subscribe(DOC)
    for (const c of [walt, olga]) await ackOf(c, DOC)
    // real updates with structs of 20,000 client ids (a map entry each), 5,000 ids per update
    for (let batch = 0; batch < 4; batch++) {
      const updates: Uint8Array[] = []
      for (let i = 1; i <= COUNT / 4; i++) {
        const id = batch * (COUNT / 4) + i
        const d = new Y.Doc()
        d.clientID = 1_000_000 + id
        d.getMap('m').set(`k${id}`, id)
        updates.push(Y.encodeStateAsUpdate(d))
        d.destroy()
      }
      const update = Y.mergeUpdates(updates)
      const sent = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update))
      walt.sendUpdate(DOC, update)
      await walt.waitFor(
        (m) => m.type === MessageType.ack && m.doc === DOC && [...sent].every(([client, clock]) => (m.ack!.get(client) ?? 0) >= clock),
        `batch ${batch} stored`,
      )
    }
    expect(walt.received.filter((m) => m.type === MessageType.error)).toEqual([])
    await waitFor(() => bindings(olga, DOC).size === COUNT, 'every binding at the peer', 20_000)
    const partsOf = (c: Client) => c.raw.filter((m) => m.type === MessageType.authors && m.doc === DOC)
    const broadcast = partsOf(olga)
    expect(broadcast.length).toBeGreaterThan(1)
    for (const part of broadcast) expect(part.bytes).toBeLessThanOrEqual(AUTHORS_PART_BOUND)
    await restart()
    const sam = await as('sam', 'read')
    sam.subscribe(DOC)
    await waitFor(() => bindings(sam, DOC).size === COUNT, 'every binding on subscribe', 20_000)
    const parts = partsOf(sam)
    console.log(
      `${COUNT} bindings (${parts.reduce((s, m) => s + m.bytes, 0)} bytes) in ${parts.length} authors messages, largest ${Math.max(...parts.map((m) => m.bytes))} bytes`,
    )
    for (const part of parts) expect(part.bytes).toBeLessThanOrEqual(AUTHORS_PART_BOUND)
    expect(new Set(bindings(sam, DOC).values())).toEqual(new Set(['walt']))
    // fetch: every part comes before the answer, and the engine keeps them all
    const rita = await as('rita', 'read')
    rita.send(encodeFetch(DOC, Y.encodeStateVector(new Y.Doc())))
    await rita.waitFor((m) => m.type === MessageType.fetched && m.doc === DOC, 'fetched')
    for (const part of partsOf(rita)) expect(part.bytes).toBeLessThanOrEqual(AUTHORS_PART_BOUND)
    expect(bindings(rita, DOC).size).toBe(COUNT)
    const engine = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, token: await signToken('eve', { acme: 'read' }) })
    syncClients.push(engine)
    const fetched = await engine.fetchDoc(DOC)
    expect(new Set(fetched.authors.map((a) => a.clientId)).size).toBe(COUNT)
  }, 120_000)
})

describe('awareness a connection holds in all its docs', () => {
  it('is bounded in bytes: a state over --max-awareness-bytes-per-connection is dropped with a clear error; removing one makes room', async () => {
    const small = await startRelay({
      env: { JWT_SECRET: TEST_SECRET },
      args: ['--max-awareness-bytes', '1024', '--max-awareness-bytes-per-connection', '4096'],
    })
    try {
      const c = new RawMuxClient(small.wsUrl)
      clients.push(c)
      await c.open()
      c.send(encodeAuth(await signToken('rita', { acme: 'read' })))
      await c.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
      // one state of ~900 bytes JSON in each of 6 docs: 4 fit in 4096 bytes, the 5th and 6th do not
      const docs = Array.from({ length: 6 }, (_, i) => `acme/held-${i}`)
      for (const doc of docs) c.subscribe(doc)
      for (const doc of docs) await c.waitFor((m) => m.type === MessageType.ack && m.doc === doc, `ack of ${doc}`)
      const state = { padding: 'p'.repeat(880) }
      docs.forEach((doc, i) => c.send(encodeAwareness(doc, awarenessUpdate([{ clientId: 500 + i, state }]))))
      await roundTrip(c)
      const refused = c.received.filter((m) => m.type === MessageType.error)
      expect(refused.map((m) => m.doc)).toEqual(['acme/held-4', 'acme/held-5'])
      for (const m of refused) {
        expect(m.error!.code).toBe(ErrorCode.limitExceeded)
        expect(m.error!.reason).toMatch(/awareness states of this connection would exceed 4096 bytes/)
      }
      expect(c.closeEvent).toBeNull()
      // the client clears its state in one doc: another doc's state fits again
      c.send(encodeAwareness('acme/held-0', awarenessUpdate([{ clientId: 500, clock: 2, state: null }])))
      c.send(encodeAwareness('acme/held-4', awarenessUpdate([{ clientId: 504, clock: 2, state }])))
      await roundTrip(c)
      expect(c.received.filter((m) => m.type === MessageType.error)).toHaveLength(2)
    } finally {
      await small.stop()
      removeDir(small.dataDir)
    }
  })
})
