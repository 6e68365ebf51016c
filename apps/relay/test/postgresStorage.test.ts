/**
 * The PostgreSQL storage adapter against a real PostgreSQL 15 that this file
 * starts (`test/helpers/postgresServer.mjs`): the contract suite, then what
 * only a store shared by several relay instances has — two instances
 * committing overlapping docs at once, compaction racing the other
 * instance's commits, a server that goes away and comes back, and the
 * errors of `open`.
 *
 * Skipped, with a message, when the PostgreSQL binaries are missing.
 * Random batches use one seeded generator: a failure prints `SEED=…`; run it
 * again with that environment variable.
 */

import * as prng from 'lib0/prng'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import pg from 'pg'
import { PostgresServer, postgresUnavailable } from '../../../test/helpers/postgresServer.mjs'
import { POSTGRES_SCHEMA_VERSION, PostgresStorage, openStorage } from '../src/storage/index.js'
import type { StoredDoc } from '../src/storage/index.js'
import { runStorageContractTests } from './storageContract.js'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))
const unavailable = postgresUnavailable()
if (unavailable !== null) console.warn(unavailable)

/** The server shared by every case of this file, started on first use. */
let server: Promise<PostgresServer> | null = null
const startedServer = (): Promise<PostgresServer> => (server ??= PostgresServer.start())

afterAll(async () => {
  if (server !== null) await (await server).destroy()
})

/** Rebuilds a Y.Doc the way the relay does: checkpoint first, then the log in order. */
function rebuild(stored: StoredDoc): Y.Doc {
  const doc = new Y.Doc()
  if (stored.checkpoint !== null) Y.applyUpdate(doc, stored.checkpoint)
  for (const update of stored.updates) Y.applyUpdate(doc, update)
  return doc
}

/** Shuffles `items` in place (Fisher–Yates) and returns it. */
function shuffle<T>(gen: prng.PRNG, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = prng.int32(gen, 0, i)
    ;[items[i], items[j]] = [items[j], items[i]]
  }
  return items
}

/** An update of 8 bytes naming who wrote it: instance, call, and index within the call. */
function tagged(instance: number, call: number, index: number): Uint8Array {
  const data = new Uint8Array(8)
  const view = new DataView(data.buffer)
  view.setUint16(0, instance)
  view.setUint32(2, call)
  view.setUint16(6, index)
  return data
}

describe.skipIf(unavailable !== null)('PostgresStorage', () => {
  runStorageContractTests('PostgresStorage', async () => {
    const url = await (await startedServer()).createDatabase()
    return {
      storage: await PostgresStorage.open(url),
      reopen: () => PostgresStorage.open(url),
      cleanup: async () => {},
    }
  })

  describe(`shared by several instances (SEED=${SEED})`, () => {
    let url: string
    const opened: PostgresStorage[] = []

    beforeAll(async () => {
      await startedServer()
    })

    afterEach(async () => {
      for (const storage of opened.splice(0)) await storage.close()
    })

    /** Opens an instance's storage (its own pool) on the case's database. */
    async function instance(): Promise<PostgresStorage> {
      const storage = await PostgresStorage.open(url)
      opened.push(storage)
      return storage
    }

    /** A fresh database for the case. */
    async function freshDatabase(): Promise<void> {
      url = await (await startedServer()).createDatabase()
    }

    it('[instances] two instances committing overlapping docs concurrently never deadlock; every doc gets unique, gap-free numbers', async () => {
      await freshDatabase()
      const instances = [await instance(), await instance()]
      const gen = prng.create(SEED)
      const docNames = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5']
      /** Every update each instance had acked, by doc: its bytes and the number the commit returned as the doc's last. */
      const acked = new Map<string, Array<{ data: Uint8Array; lastSeqAfter: number }>>(docNames.map((doc) => [doc, []]))
      // Each instance's calls, planned up front so that a seed replays the same batches.
      const plans = instances.map((_, who) =>
        Array.from({ length: 60 }, (_, call) => {
          // A random subset of docs in a random order, 1–3 updates each.
          const docs = shuffle(gen, [...docNames]).slice(0, prng.int32(gen, 1, docNames.length))
          const batch = docs.map((doc, d) => ({
            doc,
            updates: Array.from({ length: prng.int32(gen, 1, 3) }, (_, i) => tagged(who, call, d * 10 + i)),
          }))
          // Some calls queue up behind a running commit, others go alone.
          return { batch, waitForIt: prng.bool(gen) }
        }),
      )
      await Promise.all(
        instances.map(async (storage, who) => {
          const calls: Array<Promise<void>> = []
          for (const { batch, waitForIt } of plans[who]) {
            const call = storage.appendUpdates(batch).then((result) => {
              for (const { doc, updates } of batch) {
                for (const data of updates) acked.get(doc)!.push({ data, lastSeqAfter: result.get(doc)! })
              }
            })
            calls.push(call)
            if (waitForIt) await call
          }
          await Promise.all(calls)
        }),
      )
      const reader = instances[0]
      for (const doc of docNames) {
        const stored = await reader.loadDoc(doc)
        const expected = acked.get(doc)!
        expect(stored.lastSeq).toBe(expected.length)
        expect(stored.updates).toHaveLength(expected.length)
        // Every acked update is stored exactly once, at or before the number its commit reported.
        const position = new Map(stored.updates.map((data, i) => [Buffer.from(data).toString('hex'), i + 1]))
        expect(position.size).toBe(expected.length)
        for (const { data, lastSeqAfter } of expected) {
          const seq = position.get(Buffer.from(data).toString('hex'))
          expect(seq).toBeDefined()
          expect(seq!).toBeLessThanOrEqual(lastSeqAfter)
        }
      }
      // The numbers are the rows' keys: gap-free 1…lastSeq per doc.
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        const { rows } = await client.query<{ doc: string; seqs: string[] }>(
          'SELECT doc, array_agg(seq ORDER BY seq) AS seqs FROM concord_updates GROUP BY doc ORDER BY doc',
        )
        for (const { doc, seqs } of rows) {
          expect(seqs.map(Number)).toEqual(Array.from({ length: acked.get(doc)!.length }, (_, i) => i + 1))
        }
      } finally {
        await client.end()
      }
    })

    it('[instances] compaction on one instance racing commits and compaction on the other loses nothing', async () => {
      await freshDatabase()
      const [writer, compactor] = [await instance(), await instance()]
      const gen = prng.create(SEED + 1)
      const source = new Y.Doc()
      const text = source.getText('body')
      const pending: Uint8Array[] = []
      source.on('update', (update: Uint8Array) => pending.push(update))
      /** Rejections other than "an older checkpoint than the stored one" (two compactions that raced). */
      const failures: Error[] = []
      /** Loads the doc, rebuilds it, and stores it as the checkpoint of what it loaded. */
      const compact = async (storage: PostgresStorage): Promise<void> => {
        const stored = await storage.loadDoc('doc')
        const state = Y.encodeStateAsUpdate(rebuild(stored))
        await storage.writeCheckpoint('doc', state, stored.lastSeq).catch((error: Error) => {
          if (!/older than the stored one/.test(error.message)) failures.push(error)
        })
      }
      for (let round = 0; round < 30; round++) {
        const commits: Array<Promise<unknown>> = []
        for (let i = prng.int32(gen, 1, 4); i > 0; i--) {
          text.insert(prng.int32(gen, 0, text.length), prng.word(gen, 1, 6))
          commits.push(writer.appendUpdates([{ doc: 'doc', updates: pending.splice(0) }]))
        }
        // Both instances compact while the writer commits.
        await Promise.all([...commits, compact(compactor), compact(writer)])
      }
      expect(failures).toEqual([])
      const stored = await compactor.loadDoc('doc')
      expect(stored.checkpoint).not.toBeNull()
      expect(rebuild(stored).getText('body').toString()).toBe(text.toString())
    })

    it('[instances] two instances binding one client id to two users at once store one binding, the later commit’s', async () => {
      await freshDatabase()
      const [a, b] = [await instance(), await instance()]
      for (let round = 0; round < 10; round++) {
        const doc = `bound/${round}`
        const [resultA, resultB] = await Promise.all([
          a.appendUpdates([{ doc, updates: [new Uint8Array([1])], authors: [{ clientId: 7, userId: 'ada', name: 'Ada' }] }]),
          b.appendUpdates([{ doc, updates: [new Uint8Array([2])], authors: [{ clientId: 7, userId: 'bob', name: 'Bob' }] }]),
        ])
        // The commits queued on the doc's row: the one that got the higher number committed last, and its binding stays.
        const later = resultA.get(doc)! > resultB.get(doc)! ? 'ada' : 'bob'
        const stored = await a.loadDoc(doc)
        expect(stored.authors).toEqual([{ clientId: 7, userId: later, name: later === 'ada' ? 'Ada' : 'Bob' }])
        expect(stored.lastSeq).toBe(2)
      }
    })

    // A restart replays the WAL: slower than the other cases on a busy machine.
    it(
      '[outage] while PostgreSQL is down appends reject (nothing acked) and ping fails; once it is back both work',
      { timeout: 90_000 },
      async () => {
        await freshDatabase()
        const storage = await instance()
        await storage.appendUpdates([{ doc: 'a', updates: [new Uint8Array([1])] }])
        const pgServer = await startedServer()
        await pgServer.stop('immediate') // as if it crashed
        try {
          await expect(storage.appendUpdates([{ doc: 'a', updates: [new Uint8Array([2])] }])).rejects.toThrow()
          await expect(storage.ping()).rejects.toThrow()
          await expect(storage.loadDoc('a')).rejects.toThrow()
        } finally {
          await pgServer.start()
        }
        await expect(storage.ping()).resolves.toBeUndefined()
        expect((await storage.appendUpdates([{ doc: 'a', updates: [new Uint8Array([3])] }])).get('a')).toBe(2)
        expect((await storage.loadDoc('a')).updates).toEqual([new Uint8Array([1]), new Uint8Array([3])])
      },
    )

    it('[log-bytes] a log too large for one value is read row by row, byte for byte', async () => {
      await freshDatabase()
      const storage = await instance()
      const bytes = (...values: number[]): Uint8Array => new Uint8Array(values)
      const rows = [bytes(0), bytes(0x5c, 0x78, 0xff), bytes(0xc3, 0)]
      await storage.appendUpdates([{ doc: 'large', updates: rows }])
      await storage.writeCheckpoint('large', bytes(9), 1)
      // what PostgreSQL says when the log would be over 1 GB as one value
      const query = pg.Pool.prototype.query
      const tooLarge = vi.spyOn(pg.Pool.prototype, 'query').mockImplementation(function (this: pg.Pool, ...args: unknown[]) {
        if (typeof args[0] === 'string' && args[0].includes('string_agg'))
          return Promise.reject(Object.assign(new Error('out of memory'), { code: '54000' }))
        return (query as (...a: unknown[]) => unknown).apply(this, args)
      } as typeof query)
      try {
        expect(await storage.loadDoc('large')).toEqual({
          checkpoint: bytes(9),
          updates: rows.slice(1),
          lastSeq: 3,
          logBytes: 5,
          authors: [],
        })
        expect(tooLarge.mock.calls.some(([sql]) => typeof sql === 'string' && sql.includes('string_agg'))).toBe(true)
        // any other failure is the load's failure
        tooLarge.mockImplementation(() => Promise.reject(Object.assign(new Error('connection terminated'), { code: '57P01' })) as never)
        await expect(storage.loadDoc('large')).rejects.toThrow(/connection terminated/)
      } finally {
        tooLarge.mockRestore()
      }
    })

    it('[open] an unreachable server, and a schema newer than this code, give clear errors', async () => {
      await freshDatabase()
      const pgServer = await startedServer()
      const nobody = `postgres://concord:secret@127.0.0.1:1/concord`
      await expect(PostgresStorage.open(nobody, { connectTimeoutMs: 2000 })).rejects.toThrow(
        /^cannot open PostgreSQL storage at postgres:\/\/concord:\*\*\*@127\.0\.0\.1:1\/concord: .*ECONNREFUSED/,
      )
      await expect(PostgresStorage.open(pgServer.url('no_such_db'))).rejects.toThrow(/database "no_such_db" does not exist/)
      const storage = await instance()
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      await client.query('UPDATE concord_schema SET version = $1', [POSTGRES_SCHEMA_VERSION + 1])
      await client.end()
      await expect(PostgresStorage.open(url)).rejects.toThrow(
        `schema version ${POSTGRES_SCHEMA_VERSION + 1} is newer than this relay understands (${POSTGRES_SCHEMA_VERSION})`,
      )
      expect(storage.kind).toBe('postgres')
    })

    it('[webhooks] subscriptions stored through one instance are listed by another; the per-workspace limit holds', async () => {
      await freshDatabase()
      const [a, b] = [await instance(), await instance()]
      const hook = (id: string, workspace: string, createdAt: number) => ({
        id,
        workspace,
        url: `https://example.com/${id}`,
        secret: `secret-${id}`,
        createdAt,
        createdBy: 'ada',
      })
      expect(await a.insertWebhook(hook('h2', 'acme', 20), 2)).toBe(true)
      expect(await b.insertWebhook(hook('h1', 'acme', 10), 2)).toBe(true)
      expect(await a.insertWebhook(hook('h3', 'acme', 30), 2)).toBe(false) // the workspace has 2
      expect(await a.insertWebhook(hook('h1', 'other', 40), 2)).toBe(false) // the id exists
      expect(await b.listWebhooks()).toEqual([hook('h1', 'acme', 10), hook('h2', 'acme', 20)])
      expect(await b.deleteWebhook('h2')).toBe(true)
      expect(await b.deleteWebhook('h2')).toBe(false)
      expect(await a.listWebhooks()).toEqual([hook('h1', 'acme', 10)])
    })

    it('[webhooks] two instances creating subscriptions at the same moment never pass the per-workspace limit', async () => {
      const hook = (id: string) => ({
        id,
        workspace: 'acme',
        url: `https://example.com/${id}`,
        secret: 's',
        createdAt: 1,
        createdBy: 'ada',
      })
      // 3 rounds of 12 + 12 concurrent inserts against a limit of 20: each round starts from 19 stored
      for (let round = 0; round < 3; round++) {
        await freshDatabase()
        const [a, b] = [await instance(), await instance()]
        for (let i = 0; i < 19; i++) expect(await a.insertWebhook(hook(`r${round}-old-${i}`), 20)).toBe(true)
        const results = await Promise.all(
          Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? a : b).insertWebhook(hook(`r${round}-new-${i}`), 20)),
        )
        expect(results.filter((stored) => stored)).toHaveLength(1)
        expect(await b.listWebhooks()).toHaveLength(20)
      }
    })

    it('[open] a version 1 database gets the webhook table at the first open of this version', async () => {
      await freshDatabase()
      await (await instance()).close()
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      await client.query('DROP TABLE concord_webhooks')
      await client.query('UPDATE concord_schema SET version = 1')
      await client.end()
      const storage = await instance()
      expect(await storage.listWebhooks()).toEqual([])
    })

    it('[open] openStorage opens PostgreSQL storage from a database URL', async () => {
      await freshDatabase()
      const storage = openStorage('postgres', '/nonexistent', { databaseUrl: url })
      opened.push(storage as PostgresStorage)
      expect(storage.kind).toBe('postgres')
      expect((await storage.appendUpdates([{ doc: 'a', updates: [new Uint8Array([1])] }])).get('a')).toBe(1)
      expect(() => openStorage('postgres', '/nonexistent')).toThrow(/needs a database URL/)
    })
  })
})
