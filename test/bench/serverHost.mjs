/**
 * One server in its own process, for the benchmarks. argv[2] is a JSON config:
 *
 * - `{ kind: 'floor' }` — a raw `ws` relay: forwards every frame to the other
 *   sockets of the same room (URL path), no Yjs work. The floor.
 * - `{ kind: 'y-websocket-server' }` — `@y/websocket-server@0.1.1`'s
 *   `setupWSConnection` on a `ws` server, in memory.
 * - `{ kind: 'hocuspocus', seedFile? }` — `@hocuspocus/server`, in memory; with
 *   a seed file, `onLoadDocument` loads docs from it (a stand-in database).
 * - `{ kind: 'concord', storage: 'sqlite' | 'memory', dataDir, checkpointUpdates?, relayOptions? }`
 *   — Concord's relay as `npm start` runs it (`apps/relay/bundle`; under
 *   `--cpu-prof` the unbundled `apps/relay/dist`, so that profiles name each
 *   function's module), durable acks after each commit.
 * - `{ kind: 'concord', storage: 'postgres', databaseUrl, redisUrl, relayOptions? }` — one instance
 *   of several on one PostgreSQL database, linked through Redis (`cluster/Cluster`), as
 *   `--storage postgres --database-url --redis-url` starts it.
 *
 * IPC requests (see lib/processes.mjs): `cpu` → `process.cpuUsage()` and how
 * long other processes delayed the main thread,
 * `heap` → heap after forced GC, `eventLoop` → event-loop delay percentiles
 * since the last reset (`perf_hooks.monitorEventLoopDelay`), `stop`.
 *
 * @module bench/serverHost
 */
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { delayByOthersMicros, serveParent, settledHeap } from './lib/processes.mjs'

const config = JSON.parse(process.argv[2] ?? '{}')

const listen = (wss) =>
  new Promise((resolve, reject) => {
    wss.once('listening', () => resolve(wss.address().port))
    wss.once('error', reject)
  })

// \`ws\` is imported by the servers that use it, not at the top: Concord's relay bundles its own, and
// importing the package (its CommonJS files through Node's ES module loader) costs a restarted
// relay's process ~60 ms of start-up and ~100 ms of optimising compiles that \`npm start\` never pays.
const wsServer = async (options) => {
  const { WebSocketServer } = await import('ws')
  return new WebSocketServer(options)
}

const startFloor = async () => {
  const wss = await wsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
  const rooms = new Map()
  wss.on('connection', (ws, req) => {
    const name = (req.url ?? '/').slice(1).split('?')[0]
    let room = rooms.get(name)
    if (!room) rooms.set(name, (room = new Set()))
    room.add(ws)
    ws.on('message', (data) => {
      for (const peer of room) if (peer !== ws) peer.send(data, { binary: true })
    })
    ws.on('close', () => {
      room.delete(ws)
      if (room.size === 0) rooms.delete(name)
    })
    ws.on('error', () => {})
  })
  const port = await listen(wss)
  return { url: `ws://127.0.0.1:${port}`, rooms: () => rooms.size, close: () => new Promise((r) => wss.close(() => r())) }
}

const startYWebsocketServer = async () => {
  const { setupWSConnection, docs } = await import('@y/websocket-server/utils')
  const wss = await wsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  wss.on('connection', (ws, req) => setupWSConnection(ws, req))
  const port = await listen(wss)
  return {
    url: `ws://127.0.0.1:${port}`,
    rooms: () => docs.size,
    close: () =>
      new Promise((r) => {
        for (const ws of wss.clients) ws.terminate()
        wss.close(() => r())
      }),
  }
}

const startHocuspocus = async () => {
  const { Server } = await import('@hocuspocus/server')
  const Y = await import('yjs')
  const seeded = new Map()
  if (config.seedFile) {
    const { readBlobs } = await import('./lib/docs.mjs')
    for (const [name, state] of readBlobs(config.seedFile)) seeded.set(name, state)
  }
  const server = new Server({
    port: 0,
    address: '127.0.0.1',
    quiet: true,
    stopOnSignals: false,
    ...(config.seedFile
      ? {
          async onLoadDocument({ documentName, document }) {
            const state = seeded.get(documentName)
            if (state) Y.applyUpdate(document, state)
          },
        }
      : {}),
  })
  await server.listen()
  return {
    url: `ws://127.0.0.1:${server.address.port}`,
    rooms: () => server.hocuspocus.getDocumentsCount(),
    close: async () => {
      for (const ws of server.webSocketServer.clients) ws.terminate()
      server.httpServer.close()
      server.webSocketServer.close()
    },
  }
}

const BUNDLE = '../../apps/relay/bundle'
/** Where Concord's relay is loaded from: the bundle users run, or the compiled modules when profiled. */
const RELAY = process.execArgv.some((a) => a.startsWith('--cpu-prof')) ? '../../apps/relay/dist' : BUNDLE

/** Storage of a Concord relay and, on PostgreSQL with Redis, its link to the other instances. */
const openConcordStorage = async () => {
  const { MemoryStorage, SqliteStorage, silentLogger } = await import(`${RELAY}/index.js`)
  if (config.storage === 'memory') return { storage: new MemoryStorage(), cluster: undefined }
  if (config.storage === 'sqlite') return { storage: SqliteStorage.open(path.join(config.dataDir, 'concord.sqlite')), cluster: undefined }
  const { PostgresStorage } = await import(RELAY === BUNDLE ? `${RELAY}/PostgresStorage.js` : `${RELAY}/storage/PostgresStorage.js`)
  const { Cluster } = await import(RELAY === BUNDLE ? `${RELAY}/Cluster.js` : `${RELAY}/cluster/Cluster.js`)
  const storage = await PostgresStorage.open(config.databaseUrl)
  const cluster = new Cluster(storage, { redisUrl: config.redisUrl, logger: silentLogger() })
  await cluster.ready()
  return { storage, cluster }
}

const startConcord = async () => {
  const { createLogger, createRelay } = await import(`${RELAY}/index.js`)
  const { storage, cluster } = await openConcordStorage()
  const relay = await createRelay({
    storage,
    cluster,
    port: 0,
    idleUnloadMs: 3_600_000,
    // CONCORD_BENCH_LOG=debug shows the relay's own log (on stdout) while investigating a run
    ...(process.env.CONCORD_BENCH_LOG ? { logger: createLogger(process.env.CONCORD_BENCH_LOG) } : {}),
    commit: config.checkpointUpdates ? { checkpointUpdates: config.checkpointUpdates } : undefined,
    // every bench client comes from one loopback address: the per-address upgrade rate is not what is measured
    limits: { connectionsPerAddressPerSecond: 1_000_000, connectionBurstPerAddress: 1_000_000 },
    ...(config.relayOptions ?? {}),
  })
  return {
    url: relay.url.replace(/^http/, 'ws'),
    rooms: () => relay.rooms.size,
    metrics: () => relay.metrics.render(),
    close: () => relay.close(), // closes the cluster link and the storage too
  }
}

const starters = {
  floor: startFloor,
  'y-websocket-server': startYWebsocketServer,
  hocuspocus: startHocuspocus,
  concord: startConcord,
}
const start = starters[config.kind]
if (!start) throw new Error(`unknown server kind "${config.kind}"`)
const server = await start()

/**
 * Event-loop delay: a timer every LOOP_RESOLUTION_MS; how late it fires is
 * the delay. Enabled by the first `eventLoop` request, so that cases that do
 * not ask for it do not pay for the timer.
 */
const LOOP_RESOLUTION_MS = 10
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
/** A percentile of the event-loop delay in ms (the histogram holds the timer's whole interval: minus the resolution). */
const loopPercentile = (p) => Math.max(0, loopDelay.percentile(p) / 1e6 - LOOP_RESOLUTION_MS)

serveParent(
  { url: server.url, pid: process.pid },
  {
    cpu: () => {
      const { user, system } = process.cpuUsage()
      return { micros: user + system, user, system, at: performance.now(), delayMicros: delayByOthersMicros() }
    },
    heap: async () => ({ ...(await settledHeap()), rooms: server.rooms() }),
    rooms: () => server.rooms(),
    /** Event-loop delay p50 / p99 / max in ms since the last reset; `reset` starts a new window. */
    eventLoop: (reset = false) => {
      loopDelay.enable() // no-op when enabled
      const delay = { p50: loopPercentile(50), p99: loopPercentile(99), max: Math.max(0, loopDelay.max / 1e6 - LOOP_RESOLUTION_MS) }
      if (reset) loopDelay.reset()
      return delay
    },
    /** Prometheus text of Concord's relay ('' for the others). */
    metrics: async () => (server.metrics ? server.metrics() : ''),
  },
  () => server.close(),
)
