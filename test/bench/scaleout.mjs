/**
 * Scale-out: Concord's relay as 1, 2 and 3 instances on one PostgreSQL
 * database, linked through Redis (`--storage postgres --database-url
 * --redis-url`), both real servers this case starts and stops itself
 * (`test/helpers/postgresServer.mjs`, `test/helpers/redisServer.mjs`).
 *
 * The load is case 1's fan-out (`fanOutLoad` in fanout.mjs): `rooms ×
 * clients` raw protocol clients, each appending to its own Y.Text in its
 * room's doc, placed on the instances in two layouts (a load balancer
 * without sticky sessions lands somewhere between them):
 *
 * - **rooms spread** (`'rooms'`): all clients of a room on one instance,
 *   rooms round-robin (room r on instance r mod n): many docs divided among
 *   the instances, which is what scale-out is for; the target is judged on
 *   this layout;
 * - **clients spread** (`'clients'`): the clients of every room spread over
 *   the instances (client i of room r on instance (r + i) mod n), so with
 *   n > 1 most deliveries cross from one instance to another through Redis.
 *
 * With one instance both layouts are the same: that run is made once and is
 * the baseline of both. Per run, on fresh relay processes and a fresh
 * database:
 *
 * - **fixed offered load** (`offeredDeliveries` per second): the relays'
 *   CPU summed over the instances ÷ messages delivered, and the latency of
 *   every delivery, split into those whose sender reached the same instance
 *   as the receiver and those that crossed;
 * - **saturation**: every client keeps `window` updates in flight;
 *   updates/s fully delivered, and again the relays' CPU per delivered
 *   message (at saturation commits carry many updates each, so this one
 *   shows the per-message cost rather than the per-commit one).
 *
 * The relay instances and the load process are not pinned to one core
 * each: while this case runs, the orchestrator (whose affinity PostgreSQL,
 * Redis and every child inherit) may run on every core, and the instances
 * share them with each other, with PostgreSQL, Redis and the load generator. On a machine with fewer cores than instances + load the
 * throughput cannot grow with the instance count; a flat CPU per delivered
 * message is what says that it would with more cores.
 *
 * When `postgres`/`redis-server` are missing the case returns `{ skipped }`
 * with the reason.
 *
 * @module bench/scaleout
 */
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { postgresUnavailable, PostgresServer } from '../helpers/postgresServer.mjs'
import { redisUnavailable, RedisServer } from '../helpers/redisServer.mjs'
import { LOAD_HOST, SERVER_HOST, parseRelayMetrics } from './fanout.mjs'
import { pinProcess, startChild } from './lib/processes.mjs'
import { alternate, median, withTimeout } from './lib/stats.mjs'

const FANOUT_MODULE = fileURLToPath(new URL('./fanout.mjs', import.meta.url))

/** The published target: throughput with 3 instances ≥ this × one instance's. */
export const SCALEOUT_TARGET = 2.5

/** The layouts of clients over instances, in the order they are reported (see the module documentation). */
export const SCALEOUT_LAYOUTS = ['rooms', 'clients']

/**
 * Runs every instance count in every layout `repeats` times (alternating
 * order; one instance once per repeat, shared by the layouts) and returns per
 * layout and count the runs and their medians, per layout the throughput
 * ratio of the largest count to 1 instance, the ratio the target is judged on
 * (rooms spread) and the machine's core count.
 */
export const scaleOut = async ({
  instanceCounts = [1, 2, 3],
  layouts = SCALEOUT_LAYOUTS,
  rooms = 12,
  clients = 6,
  offeredDeliveries = 3000,
  warmupMs = 500,
  measureMs = 2000,
  saturationMs = 1500,
  window = 16,
  repeats = 3,
  cores = null,
  log = () => {},
}) => {
  const unavailable = postgresUnavailable() ?? redisUnavailable()
  if (unavailable !== null) return { skipped: unavailable.replace(/ tests skipped/, ' missing') }
  const config = { instanceCounts, layouts, rooms, clients, offeredDeliveries, warmupMs, measureMs, saturationMs, window, repeats }
  // a pinned orchestrator runs on the load core: every core for this case, and back afterwards
  if (cores !== null) pinProcess(process.pid, `0-${os.cpus().length - 1}`)
  const [pg, redis] = await Promise.all([PostgresServer.start(), RedisServer.start()])
  // one list of runs per layout and count; the 1-instance runs are one list shared by every layout
  const single = []
  const runs = Object.fromEntries(
    layouts.map((layout) => [layout, Object.fromEntries(instanceCounts.map((n) => [n, n === 1 ? single : []]))]),
  )
  try {
    for (let rep = 0; rep < repeats; rep++) {
      for (const n of alternate(instanceCounts, rep)) {
        for (const layout of n === 1 ? [layouts[0]] : alternate(layouts, rep)) {
          const result = await scaleOutOnce({ instances: n, layout, databaseUrl: await pg.createDatabase(), redisUrl: redis.url, config })
          runs[layout][n].push(result)
          log(
            `  ${n} instance${n > 1 ? 's' : ''}${n > 1 ? `, ${layout} spread` : ''} #${rep + 1}: ${Math.round(result.saturation.updatesPerSec)} updates/s at saturation, ` +
              `${result.cpuPerDelivered.toFixed(2)} µs relay CPU per delivered message, ` +
              `same-instance p50/p99 ${result.sameInstance.p50.toFixed(2)}/${result.sameInstance.p99.toFixed(2)} ms` +
              (result.crossInstance.samples > 0
                ? `, cross-instance ${result.crossInstance.p50.toFixed(2)}/${result.crossInstance.p99.toFixed(2)} ms`
                : '') +
              (result.lost > 0 || result.errors.length > 0
                ? ` — ${result.lost} lost, errors: ${result.errors.slice(0, 3).join('; ')}`
                : ''),
          )
        }
      }
    }
  } finally {
    await Promise.all([pg.destroy(), redis.destroy()])
    if (cores !== null) pinProcess(process.pid, cores.load)
  }
  const largest = Math.max(...instanceCounts)
  const byLayout = {}
  for (const layout of layouts) {
    const counts = Object.fromEntries(Object.entries(runs[layout]).map(([n, list]) => [n, { runs: list, median: medians(list) }]))
    byLayout[layout] = { counts, throughputRatio: counts[largest].median.updatesPerSec / counts[1]?.median.updatesPerSec }
  }
  return {
    config,
    cores: os.cpus().length,
    layouts: byLayout,
    largest,
    /** The target's ratio: rooms spread when measured, else the first layout. */
    throughputRatio: (byLayout.rooms ?? byLayout[layouts[0]]).throughputRatio,
  }
}

/** The medians reported of a list of runs of one layout and instance count. */
const medians = (list) => {
  const pick = (f) => median(list.map(f))
  return {
    updatesPerSec: pick((r) => r.saturation.updatesPerSec),
    satServerUtil: pick((r) => r.saturation.serverUtil),
    satLoadUtil: pick((r) => r.saturation.loadUtil),
    cpuPerDelivered: pick((r) => r.cpuPerDelivered),
    satCpuPerDelivered: pick((r) => (r.saturation.serverUtil * 1e6) / r.saturation.deliveredPerSec),
    serverUtil: pick((r) => r.serverUtil),
    sameP50: pick((r) => r.sameInstance.p50),
    sameP99: pick((r) => r.sameInstance.p99),
    crossP50: pick((r) => r.crossInstance.p50),
    crossP99: pick((r) => r.crossInstance.p99),
    ackP99: pick((r) => r.ackP99),
  }
}

/**
 * One run: `instances` fresh relay processes on a fresh database, one load
 * process placing its clients by `layout`. `serverExecArgv`: node flags of
 * every relay process (e.g. `--cpu-prof`).
 */
export const scaleOutOnce = async ({ instances, layout, databaseUrl, redisUrl, config, serverExecArgv = [] }) => {
  const servers = []
  let load
  try {
    // one after the other: the first creates the schema
    for (let i = 0; i < instances; i++) {
      const serverConfig = { kind: 'concord', storage: 'postgres', databaseUrl, redisUrl }
      servers.push(await startChild(SERVER_HOST, [JSON.stringify(serverConfig)], { core: null, execArgv: serverExecArgv }))
    }
    load = await startChild(LOAD_HOST, [], { core: null })
    // the relays' CPU summed over the instances; the window's length from the first one's clock
    load.handle('serverCpu', async () => {
      const each = await Promise.all(servers.map((s) => s.call('cpu')))
      const sum = (f) => each.reduce((n, c) => n + f(c), 0)
      return {
        micros: sum((c) => c.micros),
        user: sum((c) => c.user),
        system: sum((c) => c.system),
        at: each[0].at,
        delayMicros: each.some((c) => c.delayMicros === null) ? null : sum((c) => c.delayMicros),
      }
    })
    const { rooms, clients, offeredDeliveries, warmupMs, measureMs, saturationMs, window } = config
    const result = await withTimeout(
      load.call('run', FANOUT_MODULE, 'fanOutLoad', {
        rooms,
        clients,
        offeredDeliveries,
        warmupMs,
        measureMs,
        saturationMs,
        window,
        cores: null,
        urls: servers.map((s) => s.info.url),
        layout,
        protocol: 'mux',
        handshake: true,
      }),
      30_000 + warmupMs + measureMs + saturationMs,
      `scale-out with ${instances} instance(s), ${layout} spread`,
    )
    // each instance's commits over the whole run (both phases)
    result.relays = await Promise.all(servers.map(async (s) => parseRelayMetrics(await s.call('metrics'))))
    return result
  } finally {
    await load?.stop()
    for (const server of servers) await server.stop()
  }
}
