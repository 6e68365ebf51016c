/**
 * Capacity: how many clients one relay core serves with p99 delivery
 * latency ≤ 100 ms. Teams of 10 clients share 20 docs; every client has its
 * team's 20 docs subscribed over one multiplexed socket and edits a random
 * one of them every ~5 s, with the awareness keep-alives and pings the
 * engine sends (lib/teamClients.mjs documents exactly what goes on the wire).
 * Concord's relay runs on SQLite with durable acks, pinned to one core.
 *
 * For each client count (a step), on a freshly started relay:
 * connect every client (untimed), run the load for `warmupMs`, then measure
 * `windows` consecutive windows of `measureMs` each: p99 of send → receipt
 * of every edit delivery, the relay's CPU (its `process.cpuUsage()`) ÷ wall
 * time and how long other processes delayed it, its event-loop delay p99
 * (`perf_hooks.monitorEventLoopDelay` in the server host), the awareness
 * messages and edit deliveries per second the relay sent (counted on
 * receipt by the clients), and the load generators' CPU. A step's figures
 * are the medians over its windows: connecting thousands of clients anew
 * for every repetition would double the run time.
 *
 * The clients are spread over `loadProcesses` processes pinned to the other
 * core, whole teams per process (so sender and receivers of a delivery share
 * a clock); their summed CPU and their worst event-loop delay p99 tell
 * whether the load side kept up.
 *
 * @module bench/capacity
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { startChild } from './lib/processes.mjs'
import { median, quantile, sleep, withTimeout } from './lib/stats.mjs'
import { TeamClients } from './lib/teamClients.mjs'
import { LOAD_HOST, SERVER_HOST, parseRelayMetrics } from './fanout.mjs'

const THIS_MODULE = fileURLToPath(import.meta.url)
const TEAM_SIZE = 10
/** The published target: p99 delivery latency at most this many ms. */
export const CAPACITY_P99_LIMIT_MS = 100
/**
 * Load CPU (the load processes together, 1 = their core) from which a step
 * counts as bound by the load generator: its latencies then tell about the
 * load side as much as about the relay.
 */
export const LOAD_SATURATED = 0.9

/**
 * Runs every step on a fresh relay and returns, per step, the median
 * figures over `windows` consecutive measurement windows, plus the largest
 * client count whose median p99 is within the limit (`capacity`; 0 when none
 * is). Steps after one whose median p99 is over twice the limit are skipped
 * (marked `skipped`).
 */
export const capacity = async ({
  steps = [250, 500, 1000, 1500, 2000, 2500],
  windows = 3,
  warmupMs = 3000,
  measureMs = 10_000,
  editMeanMs = 5000,
  docsPerTeam = 20,
  loadProcesses = 4,
  cores = null,
  log = () => {},
}) => {
  const results = []
  let overloadedAt = null
  for (const clients of steps) {
    if (overloadedAt !== null) {
      // bounded run time: a relay already far over the limit is not loaded further
      results.push({ clients, windows: [], median: {}, skipped: `p99 over ${2 * CAPACITY_P99_LIMIT_MS} ms at ${overloadedAt} clients` })
      continue
    }
    const step = await capacityStep({ clients, windows, warmupMs, measureMs, editMeanMs, docsPerTeam, loadProcesses, cores })
    step.windows.forEach((w, k) =>
      log(
        `  ${clients} clients, window ${k + 1}: p99 ${w.p99.toFixed(1)} ms, relay CPU ${(w.relayCpu * 100).toFixed(0)}% ` +
          `(delayed by others ${(w.interference * 100).toFixed(1)}%), event-loop delay p99 ${w.eventLoopP99.toFixed(1)} ms, ` +
          `${Math.round(w.awarenessPerSec)} awareness/s, ${Math.round(w.deliveriesPerSec)} deliveries/s, ` +
          `load CPU ${(w.loadCpu * 100).toFixed(0)}% (event-loop delay p99 ${w.loadEventLoopP99.toFixed(1)} ms)`,
      ),
    )
    if (step.errors.length) log(`  ${clients} clients: errors: ${step.errors.slice(0, 3).join('; ')}`)
    const pick = (key) => median(step.windows.map((w) => w[key]))
    results.push({
      ...step,
      median: {
        p50: pick('p50'),
        p99: pick('p99'),
        relayCpu: pick('relayCpu'),
        eventLoopP99: pick('eventLoopP99'),
        awarenessPerSec: pick('awarenessPerSec'),
        deliveriesPerSec: pick('deliveriesPerSec'),
        loadCpu: pick('loadCpu'),
        loadEventLoopP99: pick('loadEventLoopP99'),
        interference: pick('interference'),
      },
    })
    if (pick('p99') > 2 * CAPACITY_P99_LIMIT_MS) overloadedAt = clients
  }
  const within = results.filter((r) => !r.skipped && r.median.p99 <= CAPACITY_P99_LIMIT_MS).map((r) => r.clients)
  const capacityClients = within.length ? Math.max(...within) : 0
  // the first step over the limit, if the load generator was saturated in it: the capacity is then a lower bound
  const firstOver = results.find((r) => !r.skipped && r.clients > capacityClients && r.median.p99 > CAPACITY_P99_LIMIT_MS)
  return {
    config: { steps, windows, warmupMs, measureMs, editMeanMs, teamSize: TEAM_SIZE, docsPerTeam, loadProcesses },
    steps: results,
    capacity: capacityClients,
    loadBoundAt: firstOver && firstOver.median.loadCpu >= LOAD_SATURATED ? firstOver.clients : null,
  }
}

/**
 * One step: a fresh relay, `clients` clients over the load processes, the
 * load warmed up for `warmupMs`, then `windows` windows of `measureMs`.
 */
export const capacityStep = async ({
  clients,
  windows,
  warmupMs,
  measureMs,
  editMeanMs,
  docsPerTeam,
  loadProcesses,
  cores,
  serverExecArgv = [],
}) => {
  const teams = Math.ceil(clients / TEAM_SIZE)
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-capacity-'))
  const server = await startChild(SERVER_HOST, [JSON.stringify({ kind: 'concord', storage: 'sqlite', dataDir })], {
    core: cores?.server ?? null,
    execArgv: serverExecArgv,
  })
  const loads = []
  try {
    const processes = Math.max(1, Math.min(loadProcesses, teams))
    for (let i = 0; i < processes; i++) loads.push(await startChild(LOAD_HOST, [], { core: cores?.load ?? null }))
    const call = (name, params = {}) => Promise.all(loads.map((l) => l.call('run', THIS_MODULE, name, params)))
    // whole teams per process
    const per = Math.ceil(teams / processes)
    const connectStart = performance.now()
    await withTimeout(
      Promise.all(
        loads.map((l, i) =>
          l.call('run', THIS_MODULE, 'capacityConnect', {
            url: server.info.url,
            firstTeam: i * per,
            teams: Math.max(0, Math.min(per, teams - i * per)),
            docsPerTeam,
            editMeanMs,
          }),
        ),
      ),
      60_000 + clients * 40,
      `connecting ${clients} capacity clients`,
    )
    const connectMs = performance.now() - connectStart
    await call('capacityStart')
    await sleep(warmupMs)
    const measured = []
    for (let k = 0; k < windows; k++) measured.push(await measureWindow(server, call, measureMs))
    // the latencies of each window's edits, once the last of them arrived
    const finished = await withTimeout(call('capacityFinish'), 30_000, 'stopping the capacity clients')
    const sum = (list, f) => list.reduce((n, x) => n + f(x), 0)
    measured.forEach((window, k) => {
      const latencies = finished.flatMap((f) => f.latencies[k])
      Object.assign(window, { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), samples: latencies.length })
    })
    return {
      clients: teams * TEAM_SIZE,
      connectMs,
      windows: measured,
      lost: sum(finished, (f) => f.inFlight),
      resyncs: sum(finished, (f) => f.counts.resyncs),
      /** Awareness messages received over the whole step, announcements on subscribe included. */
      awarenessReceived: sum(finished, (f) => f.counts.awarenessIn),
      errors: finished.flatMap((f) => f.errors),
      /** The relay's own counters over the whole step (connect, warm-up, windows). */
      relay: parseRelayMetrics(await server.call('metrics')),
    }
  } finally {
    await Promise.all(loads.map((l) => l.stop()))
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** One measurement window of a running step (see the module documentation); its latencies come at the end of the step. */
const measureWindow = async (server, call, measureMs) => {
  const cpu0 = await server.call('cpu')
  await server.call('eventLoop', true)
  const start = await call('capacityMark', { which: 'start' })
  await sleep(measureMs)
  const end = await call('capacityMark', { which: 'end' })
  const cpu1 = await server.call('cpu')
  const loop = await server.call('eventLoop')
  const seconds = (cpu1.at - cpu0.at) / 1000
  const sum = (list, f) => list.reduce((n, x) => n + f(x), 0)
  const counted = (key) => sum(end, (m) => m.counts[key]) - sum(start, (m) => m.counts[key])
  const windowSeconds = sum(end, (m) => m.at) / end.length / 1000 - sum(start, (m) => m.at) / start.length / 1000
  return {
    relayCpu: (cpu1.micros - cpu0.micros) / 1e6 / seconds,
    // share of the window in which other processes kept the relay's main thread from running (lib/processes.mjs)
    interference: cpu0.delayMicros === null ? NaN : Math.max(0, cpu1.delayMicros - cpu0.delayMicros) / 1e6 / seconds,
    eventLoopP99: loop.p99,
    eventLoopMax: loop.max,
    awarenessPerSec: counted('awarenessIn') / windowSeconds,
    deliveriesPerSec: counted('deliveries') / windowSeconds,
    editsPerSec: counted('editsSent') / windowSeconds,
    awarenessSentPerSec: counted('awarenessSent') / windowSeconds,
    loadCpu: (sum(end, (m) => m.cpuMicros) - sum(start, (m) => m.cpuMicros)) / 1e6 / windowSeconds,
    loadEventLoopP99: Math.max(...end.map((m) => m.eventLoopP99)),
  }
}

// ---------------------------------------------------------------------------
// load-process side: one TeamClients group per load process

let group = null
/** The load process's own event-loop delay over the window: late timers here would show as latency. */
let loadLoop = null

/** Connects this process's teams; resolves when every doc is synced. */
export const capacityConnect = async ({ url, firstTeam, teams, docsPerTeam, editMeanMs }) => {
  group = new TeamClients({ url, firstTeam, teams, teamSize: TEAM_SIZE, docsPerTeam, editMeanMs })
  await group.connect()
  return group.clients.length
}

/** Starts edits, keep-alives and pings. */
export const capacityStart = () => {
  group.startLoad()
  return true
}

/** Starts or ends a measurement window; the end also returns this process's event-loop delay p99 over it. */
export const capacityMark = ({ which }) => {
  if (which === 'start') {
    loadLoop = monitorEventLoopDelay({ resolution: 10 })
    loadLoop.enable()
    return group.mark(which)
  }
  loadLoop.disable()
  return {
    ...group.mark(which),
    // the histogram holds the timer's whole interval: minus its resolution
    eventLoopP99: Math.max(0, loadLoop.percentile(99) / 1e6 - 10),
  }
}

/** Stops the load, waits (bounded) for deliveries in flight and returns each window's latencies. */
export const capacityFinish = async () => {
  group.stopLoad()
  const until = performance.now() + 5000
  while (group.inFlight > 0 && performance.now() < until) await sleep(50)
  const result = {
    latencies: group.windows.map((w) => w.latencies.map((l) => Math.round(l * 100) / 100)),
    inFlight: group.inFlight,
    counts: group.counts,
    errors: group.errors,
  }
  group.close()
  group = null
  return result
}
