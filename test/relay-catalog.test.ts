/**
 * A new device learns about every record of a workspace: `list-docs` pages
 * through stored doc names by prefix, and `fetch` returns a doc's missing
 * state and durable state vector without subscribing.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import {
  ErrorCode,
  MAX_FETCH_DOCS,
  MessageType,
  RelayFeatures,
  encodeFetch,
  encodeFetchMany,
  encodeListDocs,
} from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { makeTempDir, removeDir } from './helpers/relayProcess.js'

let relay: Relay
let storage: SqliteStorage
let dir: string
let wsUrl: string
const names = Array.from({ length: 120 }, (_, i) => `acme/T-${String(i).padStart(4, '0')}`)

beforeAll(async () => {
  dir = makeTempDir()
  storage = SqliteStorage.open(`${dir}/concord.sqlite`)
  const docs = names.map((name, i) => {
    const d = new Y.Doc()
    d.getText('title').insert(0, `ticket ${i}`)
    return { doc: name, updates: [Y.encodeStateAsUpdate(d)] }
  })
  docs.push({ doc: 'acme-other/T-1', updates: [Y.encodeStateAsUpdate(new Y.Doc())] })
  docs.push({ doc: 'globex/T-1', updates: [Y.encodeStateAsUpdate(new Y.Doc())] })
  await storage.appendUpdates(docs)
  relay = await createRelay({ storage, port: 0, processMetrics: false })
  wsUrl = relay.url.replace(/^http/, 'ws')
})
afterAll(async () => {
  await relay.close()
  removeDir(dir)
})

const connect = async () => {
  const c = new RawMuxClient(wsUrl)
  await c.open()
  return c
}

/** Every name under `acme/`, asked for `pageSize` at a time, each page after the last name of the one before. */
const listAll = async (c: RawMuxClient, pageSize: number): Promise<string[]> => {
  const seen: string[] = []
  let after = ''
  for (let requestId = 1; ; requestId++) {
    c.send(encodeListDocs('acme/', requestId, after, pageSize))
    const answer = await c.waitFor((m) => m.list?.requestId === requestId, `page ${requestId}`)
    expect(answer.doc).toBe('acme/')
    seen.push(...answer.list!.names)
    if (!answer.list!.more) return seen
    after = answer.list!.names.at(-1)!
  }
}

describe('list-docs', () => {
  it('pages through a workspace prefix, sorted, without other workspaces', async () => {
    const c = await connect()
    expect(await listAll(c, 50)).toEqual(names)
    c.close()
  })

  it('each page reads only its own rows from storage', async () => {
    const reads = vi.spyOn(storage, 'listDocSeqs')
    try {
      const c = await connect()
      expect(await listAll(c, 25)).toEqual(names)
      // five pages of 25: each read asks for one doc more than the page, to tell whether more follow
      expect(reads.mock.calls.map(([prefix, page]) => [prefix, page])).toEqual(
        [0, 25, 50, 75, 100].map((at) => ['acme/', { after: at === 0 ? '' : names[at - 1], limit: 26 }]),
      )
      // a page after any name
      c.send(encodeListDocs('acme/', 100, names[10]!, 25))
      const again = await c.waitFor((m) => m.list?.requestId === 100, 'page after T-0010')
      expect(again.list!.names).toEqual(names.slice(11, 36))
      expect(again.list!.more).toBe(true)
      c.close()
    } finally {
      reads.mockRestore()
    }
  })

  it('includes docs created in memory that are not stored yet and refuses bad prefixes', async () => {
    const c = await connect()
    c.subscribe('acme/new-record')
    await c.waitFor((m) => m.type === MessageType.ack, 'ack')
    c.send(encodeListDocs('acme/', 7))
    const answer = await c.waitFor((m) => m.list?.requestId === 7, 'list')
    expect(answer.list!.names).toContain('acme/new-record')
    // in pages too, in its place: between T-0119 and the end, and between two stored docs
    c.subscribe('acme/T-0042a')
    await c.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/T-0042a', 'ack')
    c.received.length = 0 // listAll numbers its requests from 1
    const paged = await listAll(c, 7)
    expect(paged).toEqual([...names.slice(0, 43), 'acme/T-0042a', ...names.slice(43), 'acme/new-record'])
    c.send(encodeListDocs('../', 8))
    const error = await c.waitFor((m) => m.type === MessageType.error, 'error')
    expect(error.error!.code).toBe(ErrorCode.invalidDocName)
    c.close()
  })
})

describe('fetch', () => {
  it('returns the state a client lacks and the durable state vector, without subscribing', async () => {
    const c = await connect()
    const docs = new Map<string, Y.Doc>()
    for (const name of names) {
      docs.set(name, new Y.Doc())
      c.send(encodeFetch(name, Y.encodeStateVector(new Y.Doc())))
    }
    for (const name of names) {
      const answer = await c.waitFor((m) => m.type === MessageType.fetched && m.doc === name, `fetched ${name}`)
      const d = docs.get(name)!
      Y.applyUpdate(d, answer.fetched!.update)
      expect(covers(Y.decodeStateVector(answer.fetched!.stateVector), d)).toBe(true)
    }
    expect(docs.get('acme/T-0042')!.getText('title').toString()).toBe('ticket 42')
    expect(c.received.some((m) => m.type === MessageType.sync)).toBe(false)
    // a client that already has the state gets an empty diff
    const have = docs.get('acme/T-0001')!
    c.received.length = 0
    c.send(encodeFetch('acme/T-0001', Y.encodeStateVector(have)))
    const again = await c.waitFor((m) => m.type === MessageType.fetched, 'second fetch')
    const before = Y.encodeStateVector(have)
    Y.applyUpdate(have, again.fetched!.update)
    expect(Y.encodeStateVector(have)).toEqual(before)
    c.close()
  })

  it('a malformed state vector closes the connection with 1002', async () => {
    const c = await connect()
    c.send(encodeFetch('acme/T-0001', new Uint8Array([0xff, 0xff, 0xff])))
    expect((await c.waitClosed()).code).toBe(1002)
  })
})

describe('fetch-many', () => {
  const empty = Y.encodeStateVector(new Y.Doc())

  it('is announced in hello and answers every doc as its own fetch would (in any order, as fetches are); a bad name is refused alone', async () => {
    const c = await connect()
    const hello = c.received.find((m) => m.type === MessageType.hello)
    expect(hello!.hello!.features & RelayFeatures.fetchMany).toBe(RelayFeatures.fetchMany)
    const asked = [...names.slice(0, 60), 'acme/../etc', 'globex/T-1', ...names.slice(60)]
    c.send(encodeFetchMany(asked.map((doc) => ({ doc, stateVector: empty }))))
    await c.waitFor((m) => m.type === MessageType.fetched && m.doc === names.at(-1), 'the last answer')
    const answers = c.received.filter((m) => m.type === MessageType.fetched || m.type === MessageType.error)
    // the token of this connection reads every workspace: the bad name alone is refused
    expect(answers.map((m) => m.doc).sort()).toEqual([...asked].sort())
    expect(answers.filter((m) => m.type === MessageType.error)).toMatchObject([
      { doc: 'acme/../etc', error: { code: ErrorCode.invalidDocName } },
    ])
    const d = new Y.Doc()
    const t42 = answers.find((m) => m.doc === names[42])!
    Y.applyUpdate(d, t42.fetched!.update)
    expect(d.getText('title').toString()).toBe('ticket 42')
    expect(covers(Y.decodeStateVector(t42.fetched!.stateVector), d)).toBe(true)
    expect(c.received.some((m) => m.type === MessageType.sync || m.type === MessageType.ack)).toBe(false)
    c.close()
  })

  it('answers go together in fetched-many messages, far fewer than one per doc; a later fetch of one of the docs is answered after', async () => {
    const c = await connect()
    c.send(encodeFetchMany(names.map((doc) => ({ doc, stateVector: empty }))))
    // the same doc again at once, from the state the first answer brings: answered second, with nothing
    const t7 = new Y.Doc()
    const stored = await storage.loadDoc(names[7]!)
    for (const update of stored.updates) Y.applyUpdate(t7, update)
    c.send(encodeFetch(names[7]!, Y.encodeStateVector(t7)))
    await c.waitFor((m) => m.type === MessageType.fetched && m.doc === names[7] && m.bundled === undefined, 'the plain answer')
    await c.waitFor(() => c.received.filter((m) => m.type === MessageType.fetched).length === names.length + 1, 'every answer')
    const answers = c.received.filter((m) => m.type === MessageType.fetched)
    expect(answers.filter((m) => m.bundled !== undefined)).toHaveLength(names.length)
    expect(c.received.filter((m) => m.type === MessageType.fetchedMany).length).toBeLessThan(names.length / 4)
    const forT7 = answers.filter((m) => m.doc === names[7])
    expect(forT7.map((m) => Y.decodeUpdate(m.fetched!.update).structs.length > 0)).toEqual([true, false])
    c.close()
  })

  it('an answer held for a slow doc of its fetch-many goes before a later answer of its own doc', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    class SlowStorage extends MemoryStorage {
      override async loadDoc(doc: string) {
        if (doc === 'acme/slow') await gate
        return super.loadDoc(doc)
      }
    }
    const own = new SlowStorage()
    const d = new Y.Doc()
    d.getText('title').insert(0, 'fast')
    await own.appendUpdates([{ doc: 'acme/fast', updates: [Y.encodeStateAsUpdate(d)] }])
    const slowRelay = await createRelay({ storage: own, port: 0, processMetrics: false })
    try {
      const c = new RawMuxClient(slowRelay.url.replace(/^http/, 'ws'))
      await c.open()
      c.send(
        encodeFetchMany([
          { doc: 'acme/fast', stateVector: empty },
          { doc: 'acme/slow', stateVector: empty },
        ]),
      )
      // the fast doc's answer waits for the slow one's; a fetch of the fast doc from the state it brings comes after it
      c.send(encodeFetch('acme/fast', Y.encodeStateVector(d)))
      await c.waitFor(() => c.received.filter((m) => m.type === MessageType.fetched).length === 2, 'both answers of acme/fast')
      const answers = c.received.filter((m) => m.type === MessageType.fetched)
      expect(answers.map((m) => [m.doc, m.bundled !== undefined, Y.decodeUpdate(m.fetched!.update).structs.length > 0])).toEqual([
        ['acme/fast', true, true],
        ['acme/fast', false, false],
      ])
      release()
      await c.waitFor((m) => m.type === MessageType.fetched && m.doc === 'acme/slow', 'the slow answer')
      c.close()
    } finally {
      release()
      await slowRelay.close()
    }
  })

  it('a fetched-many holds about a chunk (--initial-sync-chunk-bytes) at most', async () => {
    const own = new MemoryStorage() // closed with its relay
    await own.appendUpdates(
      names.map((doc, i) => {
        const d = new Y.Doc()
        d.getText('title').insert(0, `ticket ${i}`)
        return { doc, updates: [Y.encodeStateAsUpdate(d)] }
      }),
    )
    const small = await createRelay({ storage: own, port: 0, processMetrics: false, limits: { initialSyncChunkBytes: 1024 } })
    try {
      const c = new RawMuxClient(small.url.replace(/^http/, 'ws'))
      await c.open()
      c.send(encodeFetchMany(names.map((doc) => ({ doc, stateVector: empty }))))
      await c.waitFor(() => c.received.filter((m) => m.type === MessageType.fetched).length === names.length, 'every answer')
      const bundles = c.received.filter((m) => m.type === MessageType.fetched && m.bundled !== undefined)
      expect(bundles).toHaveLength(names.length)
      // one answer is ~60 bytes: a bundle closes once it passes 1 KiB
      const sizes = c.received.filter((m) => m.type === MessageType.fetchedMany).length
      expect(sizes).toBeGreaterThanOrEqual(5)
      expect(Math.max(...bundles.map((m) => m.bundled!))).toBeLessThanOrEqual(32)
      c.close()
    } finally {
      await small.close()
    }
  })

  it(`more than ${MAX_FETCH_DOCS} docs are refused whole; a malformed entry closes the connection with 1002 before anything is answered`, async () => {
    const c = await connect()
    const many = Array.from({ length: MAX_FETCH_DOCS + 1 }, (_, i) => ({ doc: names[i % names.length]!, stateVector: empty }))
    c.send(encodeFetchMany(many))
    const refused = await c.waitFor((m) => m.type === MessageType.error, 'refusal')
    expect(refused).toMatchObject({ doc: '', error: { code: ErrorCode.limitExceeded } })
    expect(refused.error!.reason).toMatch(/at most 1000/)
    // still open: a fetch-many within the limit is answered
    c.send(
      encodeFetchMany([
        { doc: names[0]!, stateVector: empty },
        { doc: names[1]!, stateVector: empty },
      ]),
    )
    await c.waitFor((m) => m.type === MessageType.fetched && m.doc === names[1], 'answer after the refusal')
    expect(c.received.filter((m) => m.type === MessageType.fetched)).toHaveLength(2)

    c.received.length = 0
    c.send(
      encodeFetchMany([
        { doc: names[2]!, stateVector: empty },
        { doc: names[3]!, stateVector: new Uint8Array([0xff, 0xff, 0xff]) },
      ]),
    )
    expect((await c.waitClosed()).code).toBe(1002)
    expect(c.received.some((m) => m.type === MessageType.fetched)).toBe(false)
  })
})
