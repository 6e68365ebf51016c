/**
 * Several relay instances on one PostgreSQL database and one Redis (both real
 * servers this file starts): clients spread over the instances, engine
 * clients and stock y-websocket providers, edit shared docs at random and
 * converge; presence crosses instances; Redis messages dropped on purpose
 * (the cluster's test hook) are made up for from PostgreSQL; an instance
 * killed with SIGKILL loses nothing it acked, and the presence of its clients
 * leaves the other instances once its heartbeats stop; webhook subscriptions
 * are shared through PostgreSQL and each change is delivered once; a lost
 * live-list notice is made up for from PostgreSQL.
 *
 * Skipped, with a message, when PostgreSQL or Redis is missing. Random edits
 * use one seeded generator: a failure prints `SEED=…`; run it again with that
 * environment variable.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as prng from 'lib0/prng'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { SyncClient, type DocHandle } from '@concord/engine'
import { createRelay, type Relay, type RelayOptions } from '../apps/relay/src/Relay.js'
import { Cluster, type ClusterMessage, type ClusterOptions, type ClusterStore } from '../apps/relay/src/cluster/Cluster.js'
import { createLogger, silentLogger, type Logger } from '../apps/relay/src/observability/logger.js'
import { PostgresStorage } from '../apps/relay/src/storage/PostgresStorage.js'
import { PostgresServer, postgresUnavailable } from './helpers/postgresServer.mjs'
import { RedisServer, redisUnavailable } from './helpers/redisServer.mjs'
import { MessageType, encodeWatchCatalog } from '@concord/engine/protocol'
import { RawMuxClient } from './helpers/rawClient.js'
import { removeDir, runRelay, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { callApi } from './helpers/httpApi.js'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))
const unavailable = postgresUnavailable() ?? redisUnavailable()
if (unavailable !== null) console.warn(unavailable)

/** One in-process relay instance with its own storage pool and cluster link. */
interface Instance {
  relay: Relay
  cluster: Cluster
  wsUrl: string
}

describe.skipIf(unavailable !== null)(`relay instances on PostgreSQL + Redis (SEED=${SEED})`, () => {
  let pg: PostgresServer
  let redis: RedisServer
  const instances: Instance[] = []
  const clients: SyncClient[] = []
  const providers: WebsocketProvider[] = []
  const processes: RelayProcess[] = []

  beforeAll(async () => {
    ;[pg, redis] = await Promise.all([PostgresServer.start(), RedisServer.start()])
  })

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close()
    for (const p of providers.splice(0)) p.destroy()
    for (const { relay } of instances.splice(0)) await relay.close()
    for (const child of processes.splice(0)) {
      await child.kill()
      removeDir(child.dataDir)
    }
  })

  afterAll(async () => {
    await Promise.all([pg?.destroy(), redis?.destroy()])
  })

  /**
   * Starts an in-process relay on the shared database and Redis: `cluster` adds
   * to (or replaces) the cluster options, `webhooks` to the relay's (its
   * subscriptions are kept in PostgreSQL, as `main.ts` does).
   */
  const instance = async (
    databaseUrl: string,
    options: {
      cluster?: Partial<ClusterOptions>
      webhooks?: RelayOptions['webhooks']
      /** What the cluster link reads storage through (default: the instance's storage). */
      clusterStore?: (storage: PostgresStorage) => ClusterStore
    } = {},
  ): Promise<Instance> => {
    const storage = await PostgresStorage.open(databaseUrl)
    const cluster = new Cluster(options.clusterStore?.(storage) ?? storage, {
      redisUrl: redis.url,
      logger: silentLogger(),
      checkIntervalMs: 300,
      gapGraceMs: 50,
      ...options.cluster,
    })
    await cluster.ready()
    const relay = await createRelay({
      storage,
      cluster,
      port: 0,
      processMetrics: false,
      commit: { commitDelayMs: 2 },
      webhooks: { shared: storage, ...options.webhooks },
    })
    const started = { relay, cluster, wsUrl: relay.url.replace(/^http/, 'ws') }
    instances.push(started)
    return started
  }

  const client = (url: string): SyncClient => {
    const c = new SyncClient({ url, WebSocket: WebSocket as never, reconnect: { minDelay: 20, maxDelay: 200 } })
    clients.push(c)
    return c
  }

  const provider = (url: string, room: string): { doc: Y.Doc; provider: WebsocketProvider } => {
    const doc = new Y.Doc()
    const p = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
    providers.push(p)
    return { doc, provider: p }
  }

  /**
   * A connection on `b` watches workspace `acme` (resolves once b read what it
   * knows of it), then a client of `a` stores `text` in `acme/T-1`; resolves
   * once the watcher on b heard of that doc (`catalog-changed`).
   */
  const watcherHearsOfStoreElsewhere = async (a: Instance, b: Instance, text: string): Promise<void> => {
    const watcher = new RawMuxClient(b.wsUrl)
    try {
      await watcher.open()
      watcher.send(encodeWatchCatalog('acme'))
      await b.cluster.watchCatalog('acme')
      const writer = client(a.wsUrl)
      const h = writer.open('acme/T-1')
      await h.synced
      h.doc.getText('title').insert(0, text)
      await writer.flush()
      await watcher.waitFor(
        (m) => m.type === MessageType.catalogChanged && (m.catalogChanged ?? []).includes('acme/T-1'),
        `catalog-changed on b after "${text}"`,
      )
    } finally {
      watcher.close()
    }
  }

  /** A logger at info level that keeps what it logs, as parsed JSON lines. */
  const capturingLogger = (): { logger: Logger; lines: Array<Record<string, any>> } => {
    const lines: Array<Record<string, any>> = []
    return { logger: createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) }), lines }
  }

  const providerSynced = (p: WebsocketProvider): Promise<void> =>
    new Promise<void>((resolve) => {
      if (p.synced) resolve()
      else p.once('sync', (s: boolean) => s && resolve())
    })

  /**
   * Clients on every instance (engine clients, and one y-websocket provider
   * per doc) edit `docs` at random; resolves once every replica of every doc
   * holds the same content.
   */
  const editAndConverge = async (urls: string[], docs: string[], seed: number, steps: number): Promise<void> => {
    const gen = prng.create(seed)
    const engines = urls.map((url) => client(url))
    const handles: DocHandle[][] = engines.map((c) => docs.map((d) => c.open(d)))
    const stock = docs.map((d, i) => provider(urls[i % urls.length], d))
    await Promise.all([...handles.flat().map((h) => h.synced), ...stock.map(({ provider: p }) => providerSynced(p))])
    /** Every replica's doc, per shared doc. */
    const replicas: Y.Doc[][] = docs.map((_, d) => [...handles.map((row) => row[d].doc), stock[d].doc])
    for (let step = 0; step < steps; step++) {
      const d = prng.int32(gen, 0, docs.length - 1)
      const replica = prng.oneOf(gen, replicas[d])
      const text = replica.getText('body')
      if (text.length > 0 && prng.int32(gen, 0, 3) === 0) {
        const at = prng.int32(gen, 0, text.length - 1)
        text.delete(at, Math.min(prng.int32(gen, 1, 3), text.length - at))
      } else {
        text.insert(prng.int32(gen, 0, text.length), prng.word(gen, 1, 4))
      }
      if (step % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    const contents = (): string[][] => replicas.map((row) => row.map((doc) => doc.getText('body').toString()))
    await waitFor(
      () => contents().every((row) => row.every((content) => content === row[0])),
      `convergence of every replica (SEED=${seed}): ${JSON.stringify(contents())}`,
      20_000,
    )
    await Promise.all(engines.map((c) => c.flush()))
  }

  it('clients on three instances editing shared docs converge; presence crosses instances', async () => {
    const databaseUrl = await pg.createDatabase()
    const three = [await instance(databaseUrl), await instance(databaseUrl), await instance(databaseUrl)]
    await editAndConverge(
      three.map((i) => i.wsUrl),
      ['shared/a', 'shared/b', 'shared/c'],
      SEED,
      300,
    )
    // Awareness of a stock client on the first instance reaches one on the third.
    const ada = provider(three[0].wsUrl, 'shared/presence')
    const bob = provider(three[2].wsUrl, 'shared/presence')
    await Promise.all([providerSynced(ada.provider), providerSynced(bob.provider)])
    ada.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    await waitFor(
      () => [...bob.provider.awareness.getStates().values()].some((s) => s.user?.name === 'Ada'),
      'Ada’s presence on the third instance',
    )
  })

  it('a connection watching a workspace on one instance hears of docs stored through another', async () => {
    const databaseUrl = await pg.createDatabase()
    const [a, b] = [await instance(databaseUrl), await instance(databaseUrl)]
    const watcher = new RawMuxClient(b.wsUrl)
    try {
      await watcher.open()
      watcher.send(encodeWatchCatalog('acme'))
      const writer = client(a.wsUrl)
      const h = writer.open('acme/T-1')
      await h.synced
      h.doc.getText('title').insert(0, 'stored on a')
      await writer.flush()
      await watcher.waitFor(
        (m) => m.type === MessageType.catalogChanged && (m.catalogChanged ?? []).includes('acme/T-1'),
        'catalog-changed on b',
      )
    } finally {
      watcher.close()
    }
  })

  it('a watcher hears of a doc stored through another instance even when the live-list notice is lost', async () => {
    const databaseUrl = await pg.createDatabase()
    let dropped = 0
    const dropCatalog = (message: ClusterMessage): boolean => message.kind === 'catalog' && ++dropped > 0
    const a = await instance(databaseUrl, { cluster: { heartbeatIntervalMs: 100 } })
    const b = await instance(databaseUrl, { cluster: { heartbeatIntervalMs: 100, dropIncoming: dropCatalog } })
    // a's heartbeats say how many notices it sent: b finds one missing and reads the workspace from PostgreSQL
    await watcherHearsOfStoreElsewhere(a, b, 'stored on a, notice lost')
    expect(dropped).toBeGreaterThan(0)
  })

  it('live-list notices are not published while no other instance watches; a watch starting on another instance brings them back at once', async () => {
    const databaseUrl = await pg.createDatabase()
    // no periodic heartbeat, look or check within the test: only the heartbeat sent on starting to listen can help
    const quiet = { heartbeatIntervalMs: 60_000, aloneProbeMs: 60_000, checkIntervalMs: 60_000 }
    const a = await instance(databaseUrl, { cluster: quiet })
    const b = await instance(databaseUrl, { cluster: quiet })
    const writer = client(a.wsUrl)
    const first = writer.open('acme/T-1')
    await first.synced
    for (let i = 0; i < 5; i++) {
      first.doc.getText('title').insert(0, `${i} `)
      await writer.flush()
    }
    // one doc, so the skipped are live-list notices after the first, and commits after the first
    expect(a.cluster.publishStats.skipped).toBeGreaterThanOrEqual(4)
    const watcher = new RawMuxClient(b.wsUrl)
    try {
      await watcher.open()
      watcher.send(encodeWatchCatalog('acme'))
      await b.cluster.watchCatalog('acme')
      const second = writer.open('acme/T-2')
      await second.synced
      second.doc.getText('title').insert(0, 'stored on a after b’s watch')
      await writer.flush()
      await watcher.waitFor(
        (m) => m.type === MessageType.catalogChanged && (m.catalogChanged ?? []).includes('acme/T-2'),
        'catalog-changed for a doc stored on a',
      )
    } finally {
      watcher.close()
    }
  })

  it('a lost live-list notice whose repair cannot read PostgreSQL is repaired at a later check', async () => {
    const databaseUrl = await pg.createDatabase()
    const dropCatalog = (message: ClusterMessage): boolean => message.kind === 'catalog'
    let reads = 0
    let failedReads = 0
    /** b's reads of workspace listings: the first (the watch's) works, the next two fail, as if PostgreSQL were away. */
    const failingRepairs = (storage: PostgresStorage): ClusterStore => ({
      loadDoc: (doc) => storage.loadDoc(doc),
      updatesSince: (doc, afterSeq) => storage.updatesSince(doc, afterSeq),
      lastSeqs: (docs) => storage.lastSeqs(docs),
      listDocSeqs: async (prefix) => {
        if (++reads > 1 && failedReads < 2) {
          failedReads++
          throw new Error('connection refused')
        }
        return storage.listDocSeqs(prefix)
      },
    })
    const a = await instance(databaseUrl, { cluster: { heartbeatIntervalMs: 100 } })
    const b = await instance(databaseUrl, {
      cluster: { heartbeatIntervalMs: 100, checkIntervalMs: 200, dropIncoming: dropCatalog },
      clusterStore: failingRepairs,
    })
    await watcherHearsOfStoreElsewhere(a, b, 'stored on a, notice lost, first repairs fail')
    expect(failedReads).toBe(2)
  })

  it('an instance alone with a doc skips publishing it; another instance opening the doc gets everything, and what follows live', async () => {
    const databaseUrl = await pg.createDatabase()
    // no periodic check and no new look within the test: only the holding messages can bring b up to date
    const slow = { checkIntervalMs: 60_000, aloneProbeMs: 60_000 }
    let repairReads = 0
    const counted = (storage: PostgresStorage): ClusterStore => ({
      loadDoc: (doc) => (repairReads++, storage.loadDoc(doc)),
      updatesSince: (doc, afterSeq) => (repairReads++, storage.updatesSince(doc, afterSeq)),
      lastSeqs: (docs) => storage.lastSeqs(docs),
      listDocSeqs: (prefix) => storage.listDocSeqs(prefix),
    })
    const a = await instance(databaseUrl, { cluster: slow })
    const b = await instance(databaseUrl, { cluster: slow, clusterStore: counted })
    const writer = client(a.wsUrl)
    const w = writer.open('solo/T-1')
    await w.synced
    for (let i = 0; i < 10; i++) {
      w.doc.getText('body').insert(0, `${i} `)
      await writer.flush()
    }
    // the first commit is published and Redis answers that nobody else got it; the rest are not
    expect(a.cluster.publishStats.skipped).toBeGreaterThan(0)
    const metrics = await (await fetch(`${a.relay.url}/metrics`)).text()
    expect(Number(/^concord_cluster_publishes_total\{result="skipped"\} (\d+)$/m.exec(metrics)?.[1])).toBe(a.cluster.publishStats.skipped)
    const reader = client(b.wsUrl)
    const r = reader.open('solo/T-1')
    await r.synced
    expect(r.doc.getText('body').toString()).toBe(w.doc.getText('body').toString())
    // b's holding message: a, which skipped, answers that it did, and b reads storage once more
    await waitFor(() => repairReads >= 2, 'b to read the doc again after a’s answer')
    for (let i = 0; i < 5; i++) {
      w.doc.getText('body').insert(0, `live ${i} `)
      await writer.flush()
    }
    await waitFor(() => r.doc.getText('body').toString() === w.doc.getText('body').toString(), 'a’s later edits on b', 5_000)
    expect(a.cluster.publishStats.published).toBeGreaterThanOrEqual(5)
  })

  it('an instance whose holding message was lost is found at the next look', async () => {
    const databaseUrl = await pg.createDatabase()
    let droppedHolding = 0
    const dropHolding = (message: ClusterMessage): boolean => message.kind === 'holding' && ++droppedHolding > 0
    const a = await instance(databaseUrl, { cluster: { checkIntervalMs: 60_000, aloneProbeMs: 200, dropIncoming: dropHolding } })
    const b = await instance(databaseUrl, { cluster: { checkIntervalMs: 60_000 } })
    const writer = client(a.wsUrl)
    const w = writer.open('solo/T-2')
    await w.synced
    w.doc.getText('body').insert(0, 'first ')
    await writer.flush()
    const r = client(b.wsUrl).open('solo/T-2')
    await r.synced
    await waitFor(() => droppedHolding > 0, 'b’s holding message to reach a (and be dropped)')
    // a goes on skipping until its next look (≤ 200 ms later) publishes again and finds b there
    const { published, skipped } = a.cluster.publishStats
    for (let i = 0; i < 10_000 && a.cluster.publishStats.published === published; i++) {
      w.doc.getText('body').insert(0, `${i} `)
      await writer.flush()
    }
    expect(a.cluster.publishStats.skipped).toBeGreaterThan(skipped)
    // b takes what a skipped for a gap and reads it from storage
    await waitFor(() => r.doc.getText('body').toString() === w.doc.getText('body').toString(), 'a’s edits on b', 5_000)
  })

  it('converges when Redis loses messages: gaps are read from PostgreSQL, and so is a lost last message', async () => {
    const databaseUrl = await pg.createDatabase()
    const gen = prng.create(SEED + 1)
    let dropped = 0
    // Every instance loses about a quarter of the updates it should receive, and every update of `lossy/last`.
    const lossy = (message: ClusterMessage): boolean => {
      if (message.kind !== 'update') return false
      if (message.doc !== 'lossy/last' && (!prng.bool(gen) || prng.bool(gen))) return false
      dropped++
      return true
    }
    const lossyInstance = (): Promise<Instance> => instance(databaseUrl, { cluster: { dropIncoming: lossy } })
    const three = [await lossyInstance(), await lossyInstance(), await lossyInstance()]
    await editAndConverge(
      three.map((i) => i.wsUrl),
      ['lossy/a', 'lossy/b'],
      SEED + 2,
      200,
    )
    expect(dropped).toBeGreaterThan(0)

    // The last message lost everywhere, with nothing after it to show a gap: only the periodic check finds it.
    const writer = client(three[0].wsUrl)
    const reader = client(three[1].wsUrl)
    const [w, r] = [writer.open('lossy/last'), reader.open('lossy/last')]
    await Promise.all([w.synced, r.synced])
    w.doc.getText('body').insert(0, 'lost on the way ')
    await writer.flush()
    await waitFor(() => r.doc.getText('body').toString() === 'lost on the way ', 'the reader to catch up', 10_000)
  })

  it('while Redis is down each instance serves its own clients and reports degraded; once it is back the others catch up', async () => {
    const databaseUrl = await pg.createDatabase()
    const [a, b] = [await instance(databaseUrl), await instance(databaseUrl)]
    const [onA, alsoOnA, onB] = [client(a.wsUrl), client(a.wsUrl), client(b.wsUrl)]
    const docs = [onA, alsoOnA, onB].map((c) => c.open('outage/redis'))
    await Promise.all(docs.map((h) => h.synced))
    const text = (h: DocHandle): string => h.doc.getText('body').toString()
    docs[0].doc.getText('body').insert(0, 'before ')
    await waitFor(() => docs.every((h) => text(h) === 'before '), 'the first edit everywhere')

    await redis.stop()
    try {
      await waitFor(() => a.cluster.degraded && b.cluster.degraded, 'both instances to report degraded')
      expect(await (await fetch(`${a.relay.url}/metrics`)).text()).toMatch(/^concord_cluster_degraded 1$/m)
      docs[0].doc.getText('body').insert(text(docs[0]).length, 'during ')
      await onA.flush() // PostgreSQL still stores and acks
      await waitFor(() => text(docs[1]) === 'before during ', 'the edit on the same instance')
      expect(text(docs[2])).toBe('before ')
    } finally {
      await redis.start()
    }
    await waitFor(() => text(docs[2]) === 'before during ', 'the other instance to catch up from PostgreSQL')
    await waitFor(() => !a.cluster.degraded && !b.cluster.degraded, 'both instances to report Redis back')
    expect(await (await fetch(`${a.relay.url}/metrics`)).text()).toMatch(/^concord_cluster_degraded 0$/m)
  })

  it(
    'while PostgreSQL is down nothing is acked on any instance; once it is back everything is stored and every instance converges',
    { timeout: 90_000 },
    async () => {
      const databaseUrl = await pg.createDatabase()
      const [a, b] = [await instance(databaseUrl), await instance(databaseUrl)]
      const [onA, onB] = [client(a.wsUrl), client(b.wsUrl)]
      const [ha, hb] = [onA.open('outage/pg'), onB.open('outage/pg')]
      await Promise.all([ha.synced, hb.synced])
      const text = (h: DocHandle): string => h.doc.getText('body').toString()
      ha.doc.getText('body').insert(0, 'a0 ')
      await waitFor(() => text(hb) === 'a0 ', 'the first edit on both instances')

      await pg.stop()
      try {
        ha.doc.getText('body').insert(text(ha).length, 'a1 ')
        hb.doc.getText('body').insert(0, 'b1 ')
        // Nothing can be committed, so nothing is acked (nor published: fan-out follows the commit).
        await waitFor(() => ha.pending > 0 && hb.pending > 0, 'both edits to be pending')
        expect((await fetch(`${a.relay.url}/readyz`)).status).toBe(503)
      } finally {
        await pg.start()
      }
      await Promise.all([onA.flush(), onB.flush()])
      expect(ha.pending + hb.pending).toBe(0)
      await waitFor(() => text(ha) === text(hb) && text(ha).includes('a1 ') && text(ha).includes('b1 '), 'convergence after the outage')
    },
  )

  it('an unreachable or malformed Redis URL stops the start with exit code 2 and says why', async () => {
    const databaseUrl = await pg.createDatabase()
    const args = ['--port', '0', '--storage', 'postgres']
    const unreachable = await runRelay(args, { DATABASE_URL: databaseUrl, REDIS_URL: 'redis://:secret@127.0.0.1:1' })
    expect(unreachable.code).toBe(2)
    expect(unreachable.stderr).toMatch(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/)
    expect(unreachable.stderr).not.toContain('secret')
    const malformed = await runRelay(args, { DATABASE_URL: databaseUrl, REDIS_URL: 'cache:6379' })
    expect(malformed.code).toBe(2)
    expect(malformed.stderr).toContain('--redis-url must be a redis:// or rediss:// URL')
  })

  it('Redis refusing the password, or asking for one, stops the start with exit code 2 and Redis’s own error', async () => {
    const guarded = await RedisServer.start({ password: 'right-password' })
    try {
      const databaseUrl = await pg.createDatabase()
      const args = ['--port', '0', '--storage', 'postgres']
      const wrong = await runRelay(args, { DATABASE_URL: databaseUrl, REDIS_URL: `redis://:wrong-password@127.0.0.1:${guarded.port}` })
      expect(wrong.code).toBe(2)
      expect(wrong.stderr).toMatch(
        /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis refused the password of the URL \(WRONGPASS/,
      )
      expect(wrong.stderr).not.toContain('wrong-password')
      const missing = await runRelay(args, { DATABASE_URL: databaseUrl, REDIS_URL: guarded.url })
      expect(missing.code).toBe(2)
      expect(missing.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: Redis needs a password: .*\(NOAUTH/)
      const right = await startRelay({
        args: ['--storage', 'postgres'],
        env: { DATABASE_URL: databaseUrl, REDIS_URL: `redis://:right-password@127.0.0.1:${guarded.port}` },
      })
      processes.push(right)
    } finally {
      await guarded.destroy()
    }
  })

  it('an instance starting on a healthy Redis does not report it unreachable', async () => {
    const databaseUrl = await pg.createDatabase()
    const { logger, lines } = capturingLogger()
    const a = await instance(databaseUrl, { cluster: { logger } })
    expect(a.cluster.degraded).toBe(false)
    expect(lines.filter((line) => /Redis (unreachable|reachable again)/.test(line.msg))).toEqual([])
  })

  it('a check that cannot read PostgreSQL is logged once with its error; one that can again says so', async () => {
    const databaseUrl = await pg.createDatabase()
    const { logger, lines } = capturingLogger()
    let failing = false
    let failedChecks = 0
    const a = await instance(databaseUrl, {
      cluster: { logger, checkIntervalMs: 50 },
      clusterStore: (storage) => ({
        loadDoc: (doc) => storage.loadDoc(doc),
        updatesSince: (doc, afterSeq) => storage.updatesSince(doc, afterSeq),
        listDocSeqs: (prefix) => storage.listDocSeqs(prefix),
        lastSeqs: (docs) => {
          if (!failing) return storage.lastSeqs(docs)
          failedChecks++
          return Promise.reject(new Error('connection terminated'))
        },
      }),
    })
    const reader = client(a.wsUrl)
    await reader.open('checks/doc').synced // the check compares open docs only
    failing = true
    await waitFor(() => failedChecks >= 5, 'five checks to fail')
    failing = false
    await waitFor(() => lines.some((line) => line.msg === 'open docs compared with storage again'), 'a check to succeed again')
    const warnings = lines.filter((line) => /compare open docs with storage/.test(line.msg))
    expect(warnings).toHaveLength(1)
    expect(warnings[0].err.stack).toContain('connection terminated')
    expect(lines.find((line) => line.msg === 'open docs compared with storage again')?.failures).toBeGreaterThanOrEqual(5)
  })

  it('an instance stopped with SIGTERM says so: the others drop its clients’ presence at once, and log no silence', async () => {
    const databaseUrl = await pg.createDatabase()
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url }
    const stopped = await startRelay({ args: ['--storage', 'postgres'], env })
    const killed = await startRelay({ args: ['--storage', 'postgres'], env })
    processes.push(stopped, killed)
    const { logger, lines } = capturingLogger()
    // long enough for a stopping instance's last heartbeats to go unheard without the goodbye
    const observer = await instance(databaseUrl, { cluster: { logger, heartbeatIntervalMs: 200, instanceTimeoutMs: 4000 } })
    const ada = provider(stopped.wsUrl, 'shared/leaving')
    const cyd = provider(killed.wsUrl, 'shared/leaving')
    const bob = provider(observer.wsUrl, 'shared/leaving')
    await Promise.all([ada, bob, cyd].map(({ provider: p }) => providerSynced(p)))
    ada.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    cyd.provider.awareness.setLocalStateField('user', { name: 'Cyd' })
    const seenByBob = (name: string): boolean => [...bob.provider.awareness.getStates().values()].some((s) => s.user?.name === name)
    await waitFor(() => seenByBob('Ada') && seenByBob('Cyd'), 'Ada’s and Cyd’s presence on the observing instance')

    ada.provider.disconnect() // the stopping instance's client does not come back elsewhere
    expect(await stopped.stop()).toBe(0)
    await waitFor(() => lines.some((line) => line.msg === 'a relay instance stopped: its clients’ presence removed'), 'the goodbye')
    const leftId = lines.find((line) => line.msg === 'a relay instance stopped: its clients’ presence removed')!.instance
    await waitFor(() => !seenByBob('Ada'), 'Ada’s presence to leave the observing instance')

    // a killed instance still goes silent; the silence named then is its own only
    await killed.kill()
    await waitFor(() => lines.some((line) => /silent too long/.test(line.msg)), 'the killed instance’s silence', 15_000)
    const silence = lines.filter((line) => /silent too long/.test(line.msg))
    expect(silence).toHaveLength(1)
    expect(silence[0].instances).toHaveLength(1)
    expect(silence[0].instances).not.toContain(leftId)
    await waitFor(() => !seenByBob('Cyd'), 'Cyd’s presence to leave the observing instance')
  })

  it('the presence of the clients of an instance killed with SIGKILL leaves the others once its heartbeats stop', async () => {
    const databaseUrl = await pg.createDatabase()
    // the doomed instance heartbeats at the default 2 s; the others give up on an instance after 4 s of silence
    const doomed = await startRelay({ args: ['--storage', 'postgres'], env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url } })
    processes.push(doomed)
    const cluster = { heartbeatIntervalMs: 200, instanceTimeoutMs: 4000 }
    const [b, c] = [await instance(databaseUrl, { cluster }), await instance(databaseUrl, { cluster })]
    const ada = provider(doomed.wsUrl, 'shared/presence')
    const bob = provider(b.wsUrl, 'shared/presence')
    const cyd = provider(c.wsUrl, 'shared/presence')
    await Promise.all([ada, bob, cyd].map(({ provider: p }) => providerSynced(p)))
    ada.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    cyd.provider.awareness.setLocalStateField('user', { name: 'Cyd' })
    const seenByBob = (name: string): boolean => [...bob.provider.awareness.getStates().values()].some((s) => s.user?.name === name)
    await waitFor(() => seenByBob('Ada') && seenByBob('Cyd'), 'Ada’s and Cyd’s presence on the second instance')

    await doomed.kill()
    const killedAt = Date.now()
    // well within the 30 s awareness timeout, after which the states would expire anyway
    await waitFor(() => !seenByBob('Ada'), 'Ada’s presence to leave the second instance', 15_000)
    console.info(`cluster: a killed instance's presence left the others ${Date.now() - killedAt} ms after the kill`)
    expect(seenByBob('Cyd')).toBe(true) // the living instance's clients stay
  })

  it('presence set while one instance alone held the doc reaches an instance that opens it later, without a change', async () => {
    const databaseUrl = await pg.createDatabase()
    // a long look interval: the first instance keeps skipping its publishes until the second says it holds the doc
    const a = await instance(databaseUrl, { cluster: { aloneProbeMs: 60_000 } })
    const ada = provider(a.wsUrl, 'shared/late-presence')
    await providerSynced(ada.provider)
    // Nobody else holds the doc: once the instance's first publish found that out, Ada's presence
    // changes are skipped, not published. She changes it until one is (each poll, below the awareness rate limit).
    let change = 0
    await waitFor(
      () => {
        if (a.cluster.publishStats.skipped > 0) return true
        ada.provider.awareness.setLocalStateField('user', { name: 'Ada', change: change++ })
        return false
      },
      'the first instance to skip publishing Ada’s presence',
      10_000,
      200,
    )

    const b = await instance(databaseUrl)
    const bob = provider(b.wsUrl, 'shared/late-presence')
    await providerSynced(bob.provider)
    // before Ada's client renews its state (15 s after her last change)
    await waitFor(
      () => [...bob.provider.awareness.getStates().values()].some((s) => s.user?.name === 'Ada'),
      'Ada’s presence on the second instance',
      10_000,
    )
  })

  it('webhook subscriptions are shared by the instances, and each change is delivered once, by the instance that committed it', async () => {
    const received: Array<{ path: string; event: any }> = []
    const endpoint = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        received.push({ path: req.url ?? '/', event: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
        res.writeHead(200).end()
      })
    })
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve))
    try {
      const hookUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/hook`
      const databaseUrl = await pg.createDatabase()
      const webhooks = { debounceMs: 50, refreshMs: 100 }
      const [a, b] = [await instance(databaseUrl, { webhooks }), await instance(databaseUrl, { webhooks })]
      const api = (at: Instance, method: string, path: string, body?: unknown) => callApi(at.relay.url, method, `/api/v1${path}`, { body })

      // created through a, listed through b
      const created = await api(a, 'POST', '/workspaces/hooks/webhooks', { url: hookUrl })
      expect(created.status).toBe(201)
      expect((await api(b, 'GET', '/workspaces/hooks/webhooks')).body.webhooks.map((w: { id: string }) => w.id)).toEqual([created.body.id])
      // b has read it (the list route reads the shared subscriptions) and holds the record open, so it applies a's commits
      const onB = client(b.wsUrl).open('hooks/H-1')
      await onB.synced

      expect((await api(a, 'POST', '/workspaces/hooks/records', { type: 'ticket', id: 'H-1', fields: { title: 'Shared' } })).status).toBe(
        201,
      )
      await waitFor(() => received.length >= 1, 'the creation delivered')
      await waitFor(() => onB.doc.getMap('record').size > 0, 'the record on b')
      expect((await api(b, 'PATCH', '/workspaces/hooks/records/H-1', { fields: { status: 'done' } })).status).toBe(200)
      await waitFor(
        () =>
          received.some((r) => r.event.changes.some((c: { field: string; after: unknown }) => c.field === 'status' && c.after === 'done')),
        'b’s change delivered',
      )
      expect((await api(a, 'PATCH', '/workspaces/hooks/records/H-1', { fields: { title: 'Renamed' } })).status).toBe(200)
      await waitFor(
        () =>
          received.some((r) =>
            r.event.changes.some((c: { field: string; after: unknown }) => c.field === 'title' && c.after === 'Renamed'),
          ),
        'a’s change delivered',
      )
      // one delivery per change, each naming only its own change (an instance that also reported the other's change
      // would have sent one more, or merged it into its next event)
      expect(received.map((r) => [r.event.type, r.event.changes.map((c: { field: string }) => c.field).sort()])).toEqual([
        ['record.created', expect.arrayContaining(['title'])],
        ['record.changed', ['status']],
        ['record.changed', ['title']],
      ])

      // deleted through b, gone through a
      expect((await api(b, 'DELETE', `/workspaces/hooks/webhooks/${created.body.id}`)).status).toBe(204)
      expect((await api(a, 'GET', '/workspaces/hooks/webhooks')).body.webhooks).toEqual([])
    } finally {
      endpoint.closeAllConnections()
      await new Promise((resolve) => endpoint.close(resolve))
    }
  })

  it('an event names only the fields changed through its instance, also when another instance changes the record during its quiet period', async () => {
    const received: Array<{ type: string; fields: string[] }> = []
    const endpoint = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        received.push({ type: event.type, fields: event.changes.map((c: { field: string }) => c.field).sort() })
        res.writeHead(200).end()
      })
    })
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve))
    try {
      const hookUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/hook`
      const databaseUrl = await pg.createDatabase()
      // a quiet period long enough for the other instance's change to arrive within it
      const webhooks = { debounceMs: 1500, refreshMs: 100 }
      const [a, b] = [await instance(databaseUrl, { webhooks }), await instance(databaseUrl, { webhooks })]
      const api = (at: Instance, method: string, path: string, body?: unknown) => callApi(at.relay.url, method, `/api/v1${path}`, { body })
      expect((await api(a, 'POST', '/workspaces/quiet/webhooks', { url: hookUrl })).status).toBe(201)
      expect((await api(b, 'GET', '/workspaces/quiet/webhooks')).body.webhooks).toHaveLength(1)
      const [onA, onB] = [client(a.wsUrl).open('quiet/Q-1'), client(b.wsUrl).open('quiet/Q-1')]
      await Promise.all([onA.synced, onB.synced])
      expect((await api(a, 'POST', '/workspaces/quiet/records', { type: 'ticket', id: 'Q-1', fields: { title: 'One' } })).status).toBe(201)
      await waitFor(() => received.length >= 1, 'the creation delivered')
      await waitFor(() => onB.doc.getMap('record').size > 0, 'the record on b')

      // b changes the status; within b's quiet period a renames and b applies the rename
      expect((await api(b, 'PATCH', '/workspaces/quiet/records/Q-1', { fields: { status: 'done' } })).status).toBe(200)
      await waitFor(() => onA.doc.getMap('fields').get('status') === 'done', 'the status on a')
      expect((await api(a, 'PATCH', '/workspaces/quiet/records/Q-1', { fields: { title: 'Two' } })).status).toBe(200)
      await waitFor(() => received.length >= 3, 'both changes delivered', 15_000)
      expect(
        received
          .slice(1)
          .map((r) => r.fields)
          .sort(),
      ).toEqual([['status'], ['title']])
    } finally {
      endpoint.closeAllConnections()
      await new Promise((resolve) => endpoint.close(resolve))
    }
  })

  it('an instance killed with SIGKILL loses nothing it acked; the others hold it and serve it', async () => {
    const databaseUrl = await pg.createDatabase()
    const args = ['--storage', 'postgres', '--idle-unload-ms', '60000']
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url }
    for (let i = 0; i < 3; i++) processes.push(await startRelay({ args, env }))
    const [doomed, second, third] = processes
    const names = ['killed/a', 'killed/b']
    const writer = client(doomed.wsUrl)
    const watchers = [client(second.wsUrl), client(third.wsUrl)]
    const written = names.map((name) => writer.open(name))
    const watched = watchers.map((c) => names.map((name) => c.open(name)))
    await Promise.all([...written, ...watched.flat()].map((h) => h.synced))
    for (let round = 0; round < 20; round++) {
      written.forEach((h, i) => h.doc.getText('body').insert(h.doc.getText('body').length, `${i}.${round} `))
      if (round % 5 === 4) await writer.flush()
    }
    await writer.flush()
    const acked = written.map((h) => h.doc.getText('body').toString())
    written.forEach((h) => h.doc.getText('body').insert(h.doc.getText('body').length, 'in flight '))
    const killedAt = Date.now()
    await doomed.kill()
    writer.close()

    // The other instances' clients hold everything acked…
    for (const row of watched) {
      await waitFor(
        () => row.every((h, i) => h.doc.getText('body').toString().startsWith(acked[i])),
        'acked edits on the surviving instances',
        15_000,
      )
    }
    const convergenceMs = Date.now() - killedAt
    console.info(`cluster: surviving instances held every acked edit ${convergenceMs} ms after the kill`)
    // …and a client reconnecting to another instance loads it from PostgreSQL.
    const reconnected = client(third.wsUrl)
    const loaded = names.map((name) => reconnected.open(name))
    await Promise.all(loaded.map((h) => h.synced))
    loaded.forEach((h, i) => expect(h.doc.getText('body').toString().startsWith(acked[i])).toBe(true))
  })
})
