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
 * over `measureMs`: p99 of send → receipt of every edit delivery, the
 * relay's CPU (its `process.cpuUsage()`) ÷ wall time, its event-loop delay
 * p99 (`perf_hooks.monitorEventLoopDelay` in the server host), the
 * awareness messages and edit deliveries per second the relay sent (counted
 * on receipt by the clients), and the load generators' CPU.
 *
 * The clients are spread over `loadProcesses` processes pinned to the other
 * core, whole teams per process (so sender and receivers of a delivery share
 * a clock); their summed CPU tells whether the load side kept up.
 *
 * @module bench/capacity
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
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
 * Runs every step `repeats` times (each on fresh processes) and returns the
 * median figures per step, plus the largest client count whose median p99
 * is within the limit (`capacity`; 0 when none is). Steps after one whose
 * median p99 is over twice the limit are skipped (marked `skipped`).
 */
export const capacity = async ({
  steps = [250, 500, 1000, 1500, 2000, 2500],
  repeats = 3,
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
      results.push({ clients, runs: [], median: {}, skipped: `p99 over ${2 * CAPACITY_P99_LIMIT_MS} ms at ${overloadedAt} clients` })
      continue
    }
    const runs = []
    for (let rep = 0; rep < repeats; rep++) {
      const run = await capacityOnce({ clients, warmupMs, measureMs, editMeanMs, docsPerTeam, loadProcesses, cores })
      runs.push(run)
      log(
        `  ${clients} clients #${rep + 1}: p99 ${run.p99.toFixed(1)} ms, relay CPU ${(run.relayCpu * 100).toFixed(0)}%, ` +
          `event-loop delay p99 ${run.eventLoopP99.toFixed(1)} ms, ${Math.round(run.awarenessPerSec)} awareness/s, ` +
          `${Math.round(run.deliveriesPerSec)} deliveries/s, load CPU ${(run.loadCpu * 100).toFixed(0)}%` +
          (run.errors.length ? `, errors: ${run.errors.slice(0, 3).join('; ')}` : ''),
      )
    }
    const pick = (key) => median(runs.map((r) => r[key]))
    results.push({
      clients,
      runs,
      median: {
        p50: pick('p50'),
        p99: pick('p99'),
        relayCpu: pick('relayCpu'),
        eventLoopP99: pick('eventLoopP99'),
        awarenessPerSec: pick('awarenessPerSec'),
        deliveriesPerSec: pick('deliveriesPerSec'),
        loadCpu: pick('loadCpu'),
        connectMs: pick('connectMs'),
      },
    })
    if (pick('p99') > 2 * CAPACITY_P99_LIMIT_MS) overloadedAt = clients
  }
  const within = results.filter((r) => !r.skipped && r.median.p99 <= CAPACITY_P99_LIMIT_MS).map((r) => r.clients)
  return {
    config: { steps, repeats, warmupMs, measureMs, editMeanMs, teamSize: TEAM_SIZE, docsPerTeam, loadProcesses },
    steps: results,
    capacity: within.length ? Math.max(...within) : 0,
  }
}

/** One step: a fresh relay, `clients` clients over the load processes. */
export const capacityOnce = async ({ clients, warmupMs, measureMs, editMeanMs, docsPerTeam, loadProcesses, cores }) => {
  const teams = Math.ceil(clients / TEAM_SIZE)
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-capacity-'))
  const server = await startChild(SERVER_HOST, [JSON.stringify({ kind: 'concord', storage: 'sqlite', dataDir })], {
    core: cores?.server ?? null,
  })
  const loads = []
  try {
    const processes = Math.max(1, Math.min(loadProcesses, teams))
    for (let i = 0; i < processes; i++) loads.push(await startChild(LOAD_HOST, [], { core: cores?.load ?? null }))
    const call = (name, params = {}) => Promise.all(loads.map((l, i) => l.call('run', THIS_MODULE, name, { ...params, part: i })))
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
    const cpu0 = await server.call('cpu')
    await server.call('eventLoop', true)
    const start = await call('capacityMark', { which: 'start' })
    await sleep(measureMs)
    const end = await call('capacityMark', { which: 'end' })
    const cpu1 = await server.call('cpu')
    const loop = await server.call('eventLoop')
    const finished = await withTimeout(call('capacityFinish'), 30_000, 'stopping the capacity clients')
    const relay = parseRelayMetrics(await server.call('metrics'))

    const seconds = (cpu1.at - cpu0.at) / 1000
    const sum = (list, f) => list.reduce((n, x) => n + f(x), 0)
    const counted = (key) => sum(end, (m) => m.counts[key]) - sum(start, (m) => m.counts[key])
    const latencies = finished.flatMap((f) => f.latencies)
    const windowSeconds = sum(end, (m) => m.at) / end.length / 1000 - sum(start, (m) => m.at) / start.length / 1000
    return {
      clients: teams * TEAM_SIZE,
      connectMs,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      samples: latencies.length,
      relayCpu: (cpu1.micros - cpu0.micros) / 1e6 / seconds,
      eventLoopP99: loop.p99,
      eventLoopMax: loop.max,
      awarenessPerSec: counted('awarenessIn') / windowSeconds,
      deliveriesPerSec: counted('deliveries') / windowSeconds,
      editsPerSec: counted('editsSent') / windowSeconds,
      awarenessSentPerSec: counted('awarenessSent') / windowSeconds,
      loadCpu: (sum(end, (m) => m.cpuMicros) - sum(start, (m) => m.cpuMicros)) / 1e6 / windowSeconds,
      lost: sum(finished, (f) => f.inFlight),
      resyncs: sum(finished, (f) => f.counts.resyncs),
      errors: finished.flatMap((f) => f.errors),
      /** The relay's own counters over the whole run (connect, warm-up, window). */
      relay,
    }
  } finally {
    await Promise.all(loads.map((l) => l.stop()))
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------
// load-process side: one TeamClients group per load process

let group = null

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

/** Starts or ends the measurement window. */
export const capacityMark = ({ which }) => group.mark(which)

/** Stops the load, waits (bounded) for deliveries in flight, returns the window's latencies. */
export const capacityFinish = async () => {
  group.stopLoad()
  const until = performance.now() + 5000
  while (group.inFlight > 0 && performance.now() < until) await sleep(50)
  const result = {
    latencies: group.latencies.map((l) => Math.round(l * 100) / 100),
    inFlight: group.inFlight,
    counts: group.counts,
    errors: group.errors,
  }
  group.close()
  group = null
  return result
}
