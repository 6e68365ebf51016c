/**
 * Case 1, relay fan-out: `rooms × clients` raw protocol clients in a load
 * process, each appending one character per update to its own Y.Text in its
 * room's doc; every update is delivered to the other clients of the room.
 *
 * Two phases per run, on a freshly started server:
 *
 * 1. **Fixed offered load**: updates are sent round-robin at a rate that
 *    makes `offeredDeliveries` deliveries per second. After a warm-up at
 *    that load (`warmupMs`, 2 s by default: long enough that every server
 *    runs optimised code and has worked off the backlog of its clients
 *    connecting, i.e. a server in its steady state), over `measureMs`:
 *    the server process's CPU time (its own `process.cpuUsage()`, over IPC)
 *    ÷ messages delivered to other clients, and the latency of every
 *    delivery (send → receipt, same clock: both ends live in the load
 *    process). For Concord also the latency of the durable ack.
 * 2. **Saturation**: every client keeps `window` updates in flight (sent, not
 *    yet received by every other client of its room) for `saturationMs`;
 *    updates/s = fully delivered updates ÷ time. Server and load-process CPU
 *    utilisation tell which side was the bottleneck.
 *
 * Each run also reports for how much of the measurement window other
 * processes kept the server's and the load generator's main threads from
 * running (run-queue wait minus the process's own helper threads' run time,
 * from /proc): other work on a shared machine. A run above `maxInterference`
 * is repeated (up to `retries` times). So is, once all repetitions ran, a run
 * during which the machine itself ran slow: a fixed piece of CPU work timed
 * on both cores before and after each run (`cpuProbe`, lib/processes.mjs)
 * took more than `maxSlowdown` times the quickest seen in this process —
 * other tenants of a shared host, which the run-queue figures do not show.
 * Of a run and its repetition, the one on the quicker machine is kept.
 *
 * Case 6 (relay overhead vs the physical limit) uses the same runs, see
 * `physicalLimit` below.
 *
 * @module bench/fanout
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { pinnedCommand, delayByOthersMicros, startChild } from './lib/processes.mjs'
import { alternate, median, quantile, sleep, withTimeout } from './lib/stats.mjs'
import {
  EMPTY_STATE_VECTOR,
  EMPTY_UPDATE,
  SYNC_STEP1,
  SYNC_STEP2,
  SYNC_UPDATE,
  protocols,
  readStateVectorClock,
  forEachUpdateId,
  textAppendUpdate,
} from './lib/wire.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
export const SERVER_HOST = path.join(here, 'serverHost.mjs')
export const LOAD_HOST = path.join(here, 'loadHost.mjs')
const THIS_MODULE = fileURLToPath(import.meta.url)

/** Fan-out contenders: which server, which wire protocol the clients speak. */
export const FANOUT_CONTENDERS = {
  floor: { label: 'raw ws floor', server: { kind: 'floor' }, protocol: 'yws', handshake: false },
  'y-websocket-server': { label: '@y/websocket-server', server: { kind: 'y-websocket-server' }, protocol: 'yws', handshake: true },
  hocuspocus: { label: 'Hocuspocus', server: { kind: 'hocuspocus' }, protocol: 'hocuspocus', handshake: true },
  concord: { label: 'Concord (SQLite, durable acks)', server: { kind: 'concord', storage: 'sqlite' }, protocol: 'mux', handshake: true },
  // diagnostics, not in the default run: what storage and acks cost
  'concord-memory': {
    label: 'Concord (memory storage, acks)',
    server: { kind: 'concord', storage: 'memory' },
    protocol: 'mux',
    handshake: true,
  },
  'concord-yws': {
    label: 'Concord y-websocket endpoint (SQLite, no acks)',
    server: { kind: 'concord', storage: 'sqlite' },
    protocol: 'yws',
    handshake: true,
  },
  'concord-yws-memory': {
    label: 'Concord y-websocket endpoint (memory, no acks)',
    server: { kind: 'concord', storage: 'memory' },
    protocol: 'yws',
    handshake: true,
  },
}

/**
 * Runs one fan-out configuration for every contender, `repeats` times with
 * alternating order, each run on a fresh server process.
 *
 * @returns {Promise<{ config, contenders: Record<string, { runs, median }> }>}
 */
export const fanOut = async ({
  rooms,
  clients,
  contenders = ['floor', 'y-websocket-server', 'hocuspocus', 'concord'],
  repeats = 5,
  offeredDeliveries = 10_000,
  warmupMs = 2000,
  measureMs = 2000,
  saturationMs = 1500,
  window = 2,
  cores = null,
  serverExecArgv = [],
  relayOptions,
  maxInterference = 0.05,
  maxSlowdown = Infinity, // no probe reruns unless the caller sets a threshold (run.mjs: FANOUT_MAX_SLOWDOWN)
  retries = 0,
  log = () => {},
}) => {
  if (clients < 2) throw new Error('fan-out needs at least two clients per room')
  const runs = Object.fromEntries(contenders.map((name) => [name, []]))
  const once = async (name) => {
    const result = await fanOutOnce({
      contender: FANOUT_CONTENDERS[name],
      params: { rooms, clients, offeredDeliveries, warmupMs, measureMs, saturationMs, window },
      cores,
      serverExecArgv,
      relayOptions,
    })
    quickestProbe.server = Math.min(quickestProbe.server, result.probe.server)
    quickestProbe.load = Math.min(quickestProbe.load, result.probe.load)
    return result
  }
  for (let rep = 0; rep < repeats; rep++) {
    for (const name of alternate(contenders, rep)) {
      let result
      for (let attempt = 0; ; attempt++) {
        result = await once(name)
        result.attempts = attempt + 1
        const disturbed = Math.max(result.interference.server ?? 0, result.interference.load ?? 0)
        if (disturbed <= maxInterference || attempt >= retries) break
        log(`  ${rooms}×${clients} ${name}: other processes delayed it ${(disturbed * 100).toFixed(1)}% of the window; running again`)
      }
      runs[name].push(result)
      log(
        `  ${rooms}×${clients} ${name} #${rep + 1}: ${result.cpuPerDelivered.toFixed(2)} µs/delivered, p99 ${result.p99.toFixed(2)} ms, ${Math.round(result.saturation.updatesPerSec)} updates/s` +
          (result.interference.server === null
            ? ''
            : `, delayed by other processes ${(result.interference.server * 100).toFixed(1)}% / ${(result.interference.load * 100).toFixed(1)}%`),
      )
    }
  }
  // Runs the machine slowed (their CPU probes against the quickest this process saw) go once more,
  // up to `retries` times; the run on the quicker machine is kept. The criterion is the probe, never
  // the figures measured, and it is the same for every contender.
  let slowedRuns = 0
  for (const name of contenders) {
    const list = runs[name]
    for (let i = 0; i < list.length; i++) {
      for (let again = 0; slowdownOf(list[i]) > maxSlowdown && again < retries; again++) {
        if (again === 0) slowedRuns++
        log(
          `  ${rooms}×${clients} ${name} #${i + 1}: the machine ran ${slowdownOf(list[i]).toFixed(2)}× slower than its quickest; running again`,
        )
        const retry = await once(name)
        retry.attempts = list[i].attempts + 1
        log(
          `  ${rooms}×${clients} ${name} #${i + 1} again: ${retry.cpuPerDelivered.toFixed(2)} µs/delivered, p99 ${retry.p99.toFixed(2)} ms (machine ${slowdownOf(retry).toFixed(2)}×)`,
        )
        if (slowdownOf(retry) < slowdownOf(list[i])) list[i] = retry
        else list[i].attempts = retry.attempts
      }
    }
  }
  const summary = {}
  for (const [name, list] of Object.entries(runs)) {
    const pick = (f) => median(list.map(f))
    summary[name] = {
      runs: list,
      median: {
        cpuPerDelivered: pick((r) => r.cpuPerDelivered),
        cpuPerUpdate: pick((r) => r.cpuPerUpdate),
        p50: pick((r) => r.p50),
        p99: pick((r) => r.p99),
        ackP50: pick((r) => r.ackP50),
        ackP99: pick((r) => r.ackP99),
        deliveredPerSec: pick((r) => r.deliveredPerSec),
        serverUtil: pick((r) => r.serverUtil),
        updatesPerSec: pick((r) => r.saturation.updatesPerSec),
        satDeliveredPerSec: pick((r) => r.saturation.deliveredPerSec),
        satServerUtil: pick((r) => r.saturation.serverUtil),
        satLoadUtil: pick((r) => r.saturation.loadUtil),
        interference: pick((r) => Math.max(r.interference.server ?? 0, r.interference.load ?? 0)),
        attempts: list.reduce((n, r) => n + r.attempts, 0),
      },
    }
  }
  return { config: { rooms, clients, offeredDeliveries, measureMs, saturationMs, window, repeats }, contenders: summary, slowedRuns }
}

/** The quickest CPU probe seen on each core in this process (see `cpuProbe` in lib/processes.mjs). */
const quickestProbe = { server: Infinity, load: Infinity }

/** How much slower than its quickest the machine ran during `result` (the larger of both cores' ratios). */
const slowdownOf = (result) => Math.max(result.probe.server / quickestProbe.server, result.probe.load / quickestProbe.load)

/** One run: fresh server process, fresh load process. */
export const fanOutOnce = async ({ contender, params, cores, serverExecArgv = [], relayOptions }) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-fanout-'))
  const serverConfig = { ...contender.server, dataDir, ...(relayOptions ? { relayOptions } : {}) }
  const server = await startChild(SERVER_HOST, [JSON.stringify(serverConfig)], {
    core: cores?.server ?? null,
    execArgv: serverExecArgv,
  })
  let load
  try {
    load = await startChild(LOAD_HOST, [], { core: cores?.load ?? null })
    load.handle('serverCpu', () => server.call('cpu'))
    const budget = 30_000 + params.warmupMs + params.measureMs + params.saturationMs
    // the same CPU work on both cores before and after the run: the slower of each pair is the run's
    const probe = async () => {
      const [onServer, onLoad] = await Promise.all([server.call('probe'), load.call('probe')])
      return { server: onServer, load: onLoad }
    }
    const before = await probe()
    const result = await withTimeout(
      load.call('run', THIS_MODULE, 'fanOutLoad', {
        ...params,
        cores,
        url: server.info.url,
        protocol: contender.protocol,
        handshake: contender.handshake,
      }),
      budget,
      `fan-out ${params.rooms}×${params.clients} against ${contender.label}`,
    )
    const after = await probe()
    result.probe = { server: Math.max(before.server, after.server), load: Math.max(before.load, after.load) }
    if (contender.server.kind === 'concord') result.relay = parseRelayMetrics(await server.call('metrics'))
    return result
  } finally {
    await load?.stop()
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Counters of interest from Concord's Prometheus text (whole run, both phases). */
export const parseRelayMetrics = (text) => {
  const value = (pattern) => {
    const m = new RegExp(`^${pattern} ([0-9.e+]+)$`, 'm').exec(text)
    return m ? Number(m[1]) : NaN
  }
  return {
    updatesCommitted: value('concord_updates_committed_total'),
    commits: value('concord_commit_duration_seconds_count'),
    commitSeconds: value('concord_commit_duration_seconds_sum'),
    acks: value('concord_acks_sent_total'),
    syncOut: value('concord_messages_out_total\\{type="sync"\\}'),
  }
}

/**
 * Load-process side of one run (see the module documentation). Every loop is
 * bounded: by time (timers) and by count (`maxPerClient` updates per client).
 * With `p.urls` (several instances of one relay) the clients are placed by
 * `p.layout`: `'clients'` (the default) spreads the clients of each room over
 * the instances (client i of room r on instance (r + i) mod n), `'rooms'`
 * puts all of a room's clients on one instance, rooms round-robin (room r on
 * instance r mod n); latencies are also split into deliveries within one
 * instance and across two (scaleout.mjs).
 */
export const fanOutLoad = async (p, parent) => {
  const proto = protocols[p.protocol]
  const peers = p.clients - 1
  const total = p.rooms * p.clients
  const fixedRate = p.offeredDeliveries / peers // updates per second, all clients together
  const fixedCount = Math.ceil((fixedRate * (p.warmupMs + p.measureMs)) / 1000 / total) + 2
  const maxPerClient = fixedCount + Math.max(40, Math.ceil(150_000 / total))
  const byId = new Map()
  const state = { delivered: 0, completed: 0, sent: 0, errors: [], saturating: false }
  const latencies = []
  // With several relay instances (`p.urls`): the latencies of deliveries whose sender reached the same instance, and another
  const urls = p.urls ?? [p.url]
  const sameInstance = []
  const crossInstance = []
  const ackLatencies = []
  let windowStart = Infinity
  let windowEnd = Infinity

  const send = (c) => {
    if (c.clock >= maxPerClient || c.ws.readyState !== WebSocket.OPEN) return false
    const clock = c.clock++
    c.sent[clock] = performance.now()
    c.remaining[clock] = peers
    c.inflight++
    state.sent++
    c.ws.send(proto.sync(c.doc, SYNC_UPDATE, textAppendUpdate(c.id, clock, c.key, 'x')))
    return true
  }

  /** Client `c` received the update `clock` of `client` at `now`. */
  const receive = (c, client, clock, now) => {
    const s = byId.get(client)
    if (s === undefined || s === c) return // an echo of our own update
    const seen = (c.seen[s.index] ??= new Uint8Array(maxPerClient))
    if (seen[clock] === 1) return // already counted (several instances may send an update twice)
    seen[clock] = 1
    state.delivered++
    const sentAt = s.sent[clock]
    if (sentAt >= windowStart && sentAt <= windowEnd) {
      latencies.push(now - sentAt)
      ;(s.instance === c.instance ? sameInstance : crossInstance).push(now - sentAt)
    }
    if (--s.remaining[clock] === 0) {
      s.inflight--
      state.completed++
      if (state.saturating && s.inflight < p.window) send(s)
    }
  }

  const onMessage = (c, data) => {
    const now = performance.now()
    const m = proto.parse(data, c.doc)
    switch (m.kind) {
      case 'update':
        forEachUpdateId(m.decoder, (client, clock) => receive(c, client, clock, now))
        return
      case 'step1':
        c.ws.send(proto.sync(c.doc, SYNC_STEP2, EMPTY_UPDATE))
        return
      case 'step2':
        if (!c.ready) {
          c.ready = true
          c.onReady()
        }
        return
      case 'ack': {
        if (c.acked >= c.clock) return
        const clock = readStateVectorClock(m.decoder, c.id)
        for (let k = Math.max(0, c.acked); k < clock; k++) {
          const sentAt = c.sent[k]
          if (sentAt >= windowStart && sentAt <= windowEnd) ackLatencies.push(now - sentAt)
        }
        if (clock > c.acked) c.acked = clock
        return
      }
      case 'error':
        if (state.errors.length < 10) state.errors.push(m.error)
        return
    }
  }

  // connect every client and finish its handshake
  const all = []
  for (let r = 0; r < p.rooms; r++) {
    for (let i = 0; i < p.clients; i++) {
      const index = r * p.clients + i
      const doc = `bench/room-${r}`
      const c = {
        index,
        doc,
        instance: p.layout === 'rooms' ? r % urls.length : (r + i) % urls.length,
        id: 1000 + index,
        key: `t${i}`,
        clock: 0,
        acked: 0,
        inflight: 0,
        ready: false,
        sent: new Float64Array(maxPerClient),
        /** Per sender (by index), the clocks of its updates this client received. */
        seen: [],
        remaining: new Uint16Array(maxPerClient),
        ws: null,
        onReady: null,
      }
      byId.set(c.id, c)
      all.push(c)
    }
  }
  await withTimeout(
    Promise.all(
      all.map(
        (c) =>
          new Promise((resolve, reject) => {
            c.onReady = resolve
            c.ws = new WebSocket(urls[c.instance] + proto.path(c.doc), { perMessageDeflate: false })
            c.ws.on('message', (data) => onMessage(c, data))
            c.ws.on('error', reject)
            c.ws.on('open', () => {
              if (!p.handshake) {
                c.ready = true
                resolve()
                return
              }
              if (p.protocol === 'mux') c.ws.send(proto.subscribe(c.doc))
              if (p.protocol === 'hocuspocus') c.ws.send(proto.auth(c.doc))
              c.ws.send(proto.sync(c.doc, SYNC_STEP1, EMPTY_STATE_VECTOR))
            })
          }),
      ),
    ),
    20_000,
    'connecting the fan-out clients',
  )

  const drain = async (ms) => {
    const until = performance.now() + ms
    while (performance.now() < until && all.some((c) => c.inflight > 0)) await sleep(10)
  }

  // phase 1: fixed offered load
  let sentInPhase = 0
  let rr = 0
  const phaseStart = performance.now()
  const ticker = setInterval(() => {
    const due = Math.floor(((performance.now() - phaseStart) / 1000) * fixedRate)
    while (sentInPhase < due) {
      const c = all[rr++ % total]
      if (!send(c)) break
      sentInPhase++
    }
  }, 1)
  await sleep(p.warmupMs)
  windowStart = performance.now()
  const delivered0 = state.delivered
  const sent0 = state.sent
  const loadWait0 = delayByOthersMicros()
  const cpu0 = await parent.call('serverCpu')
  await sleep(p.measureMs)
  windowEnd = performance.now()
  const delivered1 = state.delivered
  const sent1 = state.sent
  const cpu1 = await parent.call('serverCpu')
  const loadWait1 = delayByOthersMicros()
  clearInterval(ticker)
  await drain(3000)
  const lost = all.reduce((n, c) => n + c.inflight, 0)

  // phase 2: saturation
  await sleep(100)
  const loadCpuS0 = process.cpuUsage()
  const satCpu0 = await parent.call('serverCpu')
  const satStart = performance.now()
  const completedS0 = state.completed
  const deliveredS0 = state.delivered
  state.saturating = true
  for (const c of all) while (c.inflight < p.window && send(c));
  await sleep(p.saturationMs)
  const satEnd = performance.now()
  const completedS1 = state.completed
  const deliveredS1 = state.delivered
  state.saturating = false
  const satCpu1 = await parent.call('serverCpu')
  const loadCpuS1 = process.cpuUsage(loadCpuS0)
  await drain(3000)

  for (const c of all) c.ws.terminate()

  const cpuMicros = cpu1.micros - cpu0.micros
  // share of the window in which other processes kept the server's and the load
  // generator's main threads from running (lib/processes.mjs)
  const windowMicros = (windowEnd - windowStart) * 1000
  const waited = (a, b) => (a === null || b === null ? null : Math.max(0, b - a) / windowMicros)
  const interference = { server: waited(cpu0.delayMicros, cpu1.delayMicros), load: waited(loadWait0, loadWait1) }
  const delivered = delivered1 - delivered0
  const satSeconds = (satEnd - satStart) / 1000
  const satServerSeconds = (satCpu1.at - satCpu0.at) / 1000
  return {
    delivered,
    interference,
    updatesSent: sent1 - sent0,
    lost,
    errors: state.errors,
    deliveredPerSec: delivered / ((cpu1.at - cpu0.at) / 1000),
    cpuPerDelivered: cpuMicros / delivered,
    cpuPerUpdate: (cpuMicros / delivered) * peers,
    serverUtil: cpuMicros / (cpu1.at - cpu0.at) / 1000,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    samples: latencies.length,
    ackP50: quantile(ackLatencies, 0.5),
    ackP99: quantile(ackLatencies, 0.99),
    /** Deliveries between clients of the same instance, and of two different instances (none with one instance). */
    sameInstance: { p50: quantile(sameInstance, 0.5), p99: quantile(sameInstance, 0.99), samples: sameInstance.length },
    crossInstance: { p50: quantile(crossInstance, 0.5), p99: quantile(crossInstance, 0.99), samples: crossInstance.length },
    saturation: {
      updatesPerSec: (completedS1 - completedS0) / satSeconds,
      deliveredPerSec: (deliveredS1 - deliveredS0) / satSeconds,
      serverUtil: (satCpu1.micros - satCpu0.micros) / satServerSeconds / 1e6,
      loadUtil: (loadCpuS1.user + loadCpuS1.system) / satSeconds / 1e6,
    },
  }
}

/**
 * The physical limit of case 6 for one configuration: the CPU of
 * `Y.applyUpdate` per update (the same update stream, applied in a process
 * pinned like the servers) plus the raw floor's CPU per update (receiving it
 * and sending it to every other client of the room).
 */
export const applyCost = ({ rooms, clients, repeats = 5, totalUpdates = 20_000, cores = null }) => {
  const perClient = Math.max(2, Math.ceil(totalUpdates / (rooms * clients)))
  const command = [
    ...pinnedCommand(cores?.server),
    process.execPath,
    path.join(here, 'applyCost.mjs'),
    JSON.stringify({ rooms, clients, perClient, repeats }),
  ]
  const out = execFileSync(command[0], command.slice(1), { encoding: 'utf8' })
  return JSON.parse(out)
}
