// `npm run bench [-- --quick] [-- --only=fanout,cold,reconnect,memory,overhead,startup,capacity,storm,idle,newdevice,scaleout,profile]`
//
// Runs every benchmark case side by side with the servers people
// use today, prints the report and writes it to docs/benchmarks.md (and the
// raw figures to test-artifacts/bench-results.json). Each server runs in its
// own process pinned to core 0, each load generator in another pinned to
// core 1 (this orchestrator pins itself there too); contender order
// alternates between repetitions; figures are medians.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { CAPACITY_P99_LIMIT_MS, LOAD_SATURATED, capacity } from './capacity.mjs'
import { FANOUT_CONTENDERS, applyCost, fanOut } from './fanout.mjs'
import { idleTab } from './idle.mjs'
import { newDevice } from './newdevice.mjs'
import { BENCH_NICE, canPin, pinProcess, prioritizeSession } from './lib/processes.mjs'
import { bytes, fmt, int } from './lib/stats.mjs'
import { relayMemory } from './memory.mjs'
import { profileCapacity, profileColdLoad, profileFanOut, profileReconnect, profileStorm } from './profiles.mjs'
import { offlineReconnect } from './reconnect.mjs'
import { SCALEOUT_TARGET, scaleOut } from './scaleout.mjs'
import { reconnectStorm } from './storm.mjs'
import { COLD_WARM_UPS, coldLoad } from './syncCore.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const argv = process.argv.slice(2)

// On Linux the scheduler groups processes by session (autogroup), so the
// benchmark runs in a session of its own whose group gets a higher priority
// than the rest of a shared machine (see lib/processes.mjs). Re-run this
// script under `setsid` once; signals are passed on.
const renderArg = argv.find((a) => a.startsWith('--render='))
if (
  !renderArg &&
  !process.env.CONCORD_BENCH_SESSION &&
  !argv.includes('--no-priority') &&
  existsSync('/proc/self/autogroup') &&
  existsSync('/usr/bin/setsid')
) {
  const child = spawn('/usr/bin/setsid', [process.execPath, fileURLToPath(import.meta.url), ...argv], {
    stdio: 'inherit',
    env: { ...process.env, CONCORD_BENCH_SESSION: '1' },
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))))
  process.exit(code)
}
// `--render=FILE` writes the report again from the raw figures of an earlier
// run (test-artifacts/bench-results.json) without measuring anything.
const rendered = renderArg ? JSON.parse(readFileSync(renderArg.slice('--render='.length), 'utf8')) : null
const log = (s) => process.stderr.write(s + '\n')
const meta = rendered?.meta ?? {
  quick: argv.includes('--quick'),
  only:
    argv
      .find((a) => a.startsWith('--only='))
      ?.slice('--only='.length)
      .split(',') ?? null,
  prioritized: !argv.includes('--no-priority') && prioritizeSession(),
  pinned: canPin() && !argv.includes('--no-pin'),
  loadBefore: os.loadavg(),
  date: new Date().toISOString().slice(0, 16).replace('T', ' '),
}
const { quick, prioritized, pinned, loadBefore } = meta
const only = meta.only ? new Set(meta.only) : null
const wants = (name) => !rendered && (only === null || only.has(name))

const startedAt = performance.now()
if (!rendered && loadBefore[0] > os.cpus().length / 2) {
  log(
    `warning: load average ${loadBefore[0].toFixed(2)} on ${os.cpus().length} cores — other work on this machine will disturb the figures`,
  )
}
if (pinned && !rendered) pinProcess(process.pid, 1)
const cores = pinned ? { server: 0, load: 1 } : null

/** Settings of a default and a quick run. */
const S = quick
  ? { repeats: 3, warmupMs: 1000, measureMs: 600, saturationMs: 500, small: 200, big: 20, records: 1000, diagRepeats: 0, profile: false }
  : { repeats: 5, warmupMs: 2000, measureMs: 1200, saturationMs: 800, small: 500, big: 50, records: 10_000, diagRepeats: 2, profile: true }
const FANOUT_CONFIGS = [
  { rooms: 10, clients: 10 },
  { rooms: 100, clients: 5 },
  { rooms: 1, clients: 100 },
]
const FANOUT_MAIN = ['floor', 'y-websocket-server', 'hocuspocus', 'concord']
/** How often a fan-out run is repeated at most while the machine ran slow during it (see fanout.mjs). */
const FANOUT_RETRIES = 2
/** A run during which the machine's CPU probe took more than this times its quickest is repeated. */
const FANOUT_MAX_SLOWDOWN = 1.25
const FANOUT_DIAG = ['concord-memory', 'concord-yws-memory']
/** The cold-load size and capacity step profiled (full runs only). */
const PROFILED_COLD_COUNT = 10_000
const PROFILED_CAPACITY_CLIENTS = 2000
const RECONNECT_CONFIGS = [
  { records: 1000, edits: 10 },
  { records: 10, edits: 1000 },
]
const COLD_COUNTS = [1, 100, 1000, 10_000]
/** Capacity, reconnect storm, idle tab, new device and scale-out: full and quick settings. */
const C = quick
  ? {
      capacity: { steps: [250, 1000], windows: 1, warmupMs: 1500, measureMs: 5000 },
      storm: { clients: 250, repeats: 1 },
      idle: { records: 1000, idleMs: 20_000 },
      newdevice: { records: 1000, repeats: 1 },
      scaleout: { rooms: 6, clients: 6, offeredDeliveries: 1000, warmupMs: 300, measureMs: 1000, saturationMs: 1000, repeats: 1 },
    }
  : {
      capacity: { steps: [250, 500, 1000, 1500, 2000, 2500], windows: 3, warmupMs: 2000, measureMs: 6000 },
      storm: { clients: 1000, repeats: 3 },
      idle: { records: 10_000, idleMs: 60_000 },
      newdevice: { records: 10_000, repeats: 5 },
      scaleout: { rooms: 12, clients: 6, offeredDeliveries: 1500, warmupMs: 500, measureMs: 3000, saturationMs: 2000, repeats: 3 },
    }

const results = rendered ?? { meta, settings: S }

// ---------------------------------------------------------------------------
// run the cases

if (wants('fanout') || wants('overhead')) {
  results.fanout = []
  for (const config of FANOUT_CONFIGS) {
    log(`fan-out ${config.rooms} rooms × ${config.clients} clients…`)
    const r = await fanOut({
      ...config,
      contenders: FANOUT_MAIN,
      repeats: S.repeats,
      retries: FANOUT_RETRIES,
      maxSlowdown: FANOUT_MAX_SLOWDOWN,
      ...pick(S, 'warmupMs', 'measureMs', 'saturationMs'),
      cores,
      log,
    })
    if (S.diagRepeats > 0) {
      log(`  diagnostics: Concord without SQLite, without acks…`)
      const d = await fanOut({
        ...config,
        contenders: FANOUT_DIAG,
        repeats: S.diagRepeats,
        retries: FANOUT_RETRIES,
        maxSlowdown: FANOUT_MAX_SLOWDOWN,
        ...pick(S, 'warmupMs', 'measureMs', 'saturationMs'),
        cores,
        log,
      })
      Object.assign(r.contenders, d.contenders)
      r.slowedRuns += d.slowedRuns
    }
    results.fanout.push(r)
  }
}
if (wants('overhead')) {
  log('overhead: cost of Y.applyUpdate for the same update streams…')
  results.applyCost = FANOUT_CONFIGS.map((c) => ({ ...c, ...applyCost({ ...c, repeats: S.repeats, cores }) }))
}
if (wants('cold')) {
  log('cold load from SQLite…')
  results.cold = await coldLoad({ counts: COLD_COUNTS, repeats: S.repeats, cores, log })
  results.coldCompacted = await coldLoad({ counts: [10_000], repeats: S.repeats, checkpointUpdates: 500, cores, log })
}
if (wants('reconnect')) {
  results.reconnect = []
  for (const config of RECONNECT_CONFIGS) {
    log(`offline reconnect ${config.records} records × ${config.edits} edits…`)
    results.reconnect.push(await offlineReconnect({ ...config, repeats: S.repeats, cores, log }))
  }
}
if (wants('memory')) {
  log('relay memory…')
  results.memory = await relayMemory({ small: S.small, big: S.big, repeats: S.repeats, cores, log })
}
if (wants('startup')) {
  // Case 4: the Chromium record-store harness (recordStore.mjs, built alongside the record store).
  const file = path.join(here, 'recordStore.mjs')
  if (existsSync(file)) {
    log('client start-up in Chromium (recordStore.mjs)…')
    try {
      const { recordStoreBench } = await import(pathToFileURL(file).href)
      results.startup = await recordStoreBench({ records: S.records, runs: S.repeats, plainList: true, log: (line) => log(`  ${line}`) })
    } catch (error) {
      results.startup = { error: String(error?.stack ?? error) }
    }
  }
}
if (wants('capacity')) {
  log('capacity: teams of 10 clients on 20 shared docs, stepping the client count…')
  results.capacity = await capacity({ ...C.capacity, cores, log })
}
if (wants('storm')) {
  log(`reconnect storm: ${int(C.storm.clients)} clients × 20 docs after kill -9 and restart of the relay…`)
  results.storm = await reconnectStorm({ ...C.storm, presence: 'viewed', cores, log })
  if (!quick) {
    log('reconnect storm, diagnostic: presence in every doc…')
    results.stormEveryDoc = await reconnectStorm({ ...C.storm, presence: 'every-doc', cores, log })
  }
}
if (wants('idle')) {
  log(`idle tab: a RecordStore on ${int(C.idle.records)} records, idle ${C.idle.idleMs / 1000} s, then a reconnect…`)
  results.idle = await idleTab({ ...C.idle, cores, log })
}
if (wants('newdevice')) {
  log(`new device: Chromium on a fresh profile against a relay holding ${int(C.newdevice.records)} records…`)
  try {
    results.newdevice = await newDevice({ ...C.newdevice, cores, log })
  } catch (error) {
    results.newdevice = { error: String(error?.stack ?? error) }
  }
}
if (wants('scaleout')) {
  log(
    `scale-out: 1, 2 and 3 relay instances on PostgreSQL + Redis, ${C.scaleout.rooms} rooms × ${C.scaleout.clients} clients, rooms spread and clients spread over them…`,
  )
  results.scaleout = await scaleOut({ ...C.scaleout, cores, log })
  if (results.scaleout.skipped) log(`  skipped: ${results.scaleout.skipped}`)
}
if (S.profile && wants('profile')) {
  log('profiles (--cpu-prof) of Concord in each relay case…')
  results.profiles = {
    fanout: await profileFanOut({ configs: FANOUT_CONFIGS, cores, measureMs: 2000 }),
    reconnect: await profileReconnect({ ...RECONNECT_CONFIGS[0], cores }),
    cases: [
      {
        what: `Cold load, ${int(PROFILED_COLD_COUNT)} stored updates`,
        scope: `whole relay process: start-up, the first open, ${int(COLD_WARM_UPS)} warm-up docs and the timed ones`,
        ...(await profileColdLoad({ count: PROFILED_COLD_COUNT, cores })),
      },
      {
        what: `Reconnect ${int(RECONNECT_CONFIGS[1].records)}×${int(RECONNECT_CONFIGS[1].edits)}`,
        scope: 'whole relay process: start-up, the warm-up reconnect and the timed one',
        ...(await profileReconnect({ ...RECONNECT_CONFIGS[1], cores })),
      },
      {
        what: `Capacity, ${int(PROFILED_CAPACITY_CLIENTS)} clients`,
        scope: 'whole relay process: the clients connecting and subscribing, 2 s of load and one window of 6 s',
        ...(await profileCapacity({ clients: PROFILED_CAPACITY_CLIENTS, cores })),
      },
      {
        what: `Reconnect storm, ${int(C.storm.clients)} clients`,
        scope: 'the restarted relay: start-up and the storm',
        ...(await profileStorm({ clients: C.storm.clients, docsPerTeam: 20, loadProcesses: 4, cores })),
      },
    ],
  }
}
if (!rendered) {
  results.seconds = (performance.now() - startedAt) / 1000
  meta.loadAfter = os.loadavg()
  // saved before the report is written: a run's figures survive a mistake in the report's code
  mkdirSync(path.join(root, 'test-artifacts'), { recursive: true })
  writeFileSync(path.join(root, 'test-artifacts/bench-results.json'), JSON.stringify(results, null, 2))
}
const { loadAfter } = meta

// ---------------------------------------------------------------------------
// report

/** A cost difference: `~N µs`, or `no measurable cost` when noise made it ≤ 0. */
function part(micros) {
  return micros > 0 ? `~${fmt(micros)} µs` : 'no measurable cost (≤ 0 µs)'
}

function pick(o, ...keys) {
  return Object.fromEntries(keys.map((k) => [k, o[k]]))
}
const x = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—')
const ms = (n) => (Number.isFinite(n) ? `${fmt(n)} ms` : '—')
const targets = []
/**
 * The targets table's groups in the order it lists them, each with the case
 * (section) it belongs to.
 */
const TARGET_GROUPS = {
  'fanout-cpu': 1,
  'fanout-p99': 1,
  'ack-p99': 1,
  reconnect: 3,
  cold: 2,
  memory: 5,
  overhead: 6,
  capacity: 7,
  storm: 8,
  idle: 9,
  startup: 4,
  newdevice: 10,
  scaleout: 11,
}
const GROUP_ORDER = Object.keys(TARGET_GROUPS)
/**
 * A published target: `value` must be at most `limit` (at least, with
 * `atLeast`); `unit` is `x` (a ratio), `ms`, `s`, or what the value counts
 * (`clients`, `frames`, …). A value that is not a finite number is "not measured".
 */
const target = (group, what, limit, value, { unit = 'x', atLeast = false } = {}) => {
  const met = Number.isFinite(value) ? (atLeast ? value >= limit : value <= limit) : null
  targets.push({ caseNo: TARGET_GROUPS[group], group, what, limit, value, unit, atLeast, met })
  return met
}
const mark = (met) => (met === null ? 'not measured' : met ? '**met**' : '**missed**')
const table = (head, rows) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')

const sections = []
const section = (caseNo, text) => sections.push({ caseNo, text })

if (results.fanout) {
  const parts = []
  for (const r of results.fanout) {
    const { rooms, clients } = r.config
    const c = r.contenders
    const floor = c.floor.median
    const label = `${rooms}×${clients}`
    const rows = Object.entries(c).map(([name, v]) => {
      const m = v.median
      const diag = !FANOUT_MAIN.includes(name)
      return [
        diag ? `_${FANOUT_CONTENDERS[name].label}_ (diagnostic, ${S.diagRepeats} runs)` : FANOUT_CONTENDERS[name].label,
        fmt(m.cpuPerDelivered),
        x(m.cpuPerDelivered / floor.cpuPerDelivered),
        fmt(m.p50),
        fmt(m.p99),
        x(m.p99 / floor.p99),
        Number.isFinite(m.ackP50) ? `${fmt(m.ackP50)} / ${fmt(m.ackP99)}` : '—',
        int(m.updatesPerSec),
        `${Math.round(m.satServerUtil * 100)}% / ${Math.round(m.satLoadUtil * 100)}%`,
        Number.isFinite(m.interference) ? `${(m.interference * 100).toFixed(1)}%` : '—',
      ]
    })
    const k = c.concord.median
    target('fanout-cpu', `Fan-out ${label}: relay CPU per delivered message vs raw floor`, 1.5, k.cpuPerDelivered / floor.cpuPerDelivered)
    target(
      'fanout-cpu',
      `Fan-out ${label}: … vs @y/websocket-server`,
      0.8,
      k.cpuPerDelivered / c['y-websocket-server'].median.cpuPerDelivered,
    )
    target('fanout-cpu', `Fan-out ${label}: … vs Hocuspocus`, 0.6, k.cpuPerDelivered / c.hocuspocus.median.cpuPerDelivered)
    target('fanout-p99', `Fan-out ${label}: p99 latency vs the floor's`, 1.5, k.p99 / floor.p99)
    if (rooms === 10 && clients === 10) target('ack-p99', `Durable ack latency p99 at ${label}`, 10, k.ackP99, { unit: 'ms' })
    const d = (name) => c[name]?.median.cpuPerDelivered
    const decomposition =
      d('concord-memory') && d('concord-yws-memory')
        ? `\n\nWhere Concord's ${fmt(k.cpuPerDelivered)} µs go (diagnostic rows; differences of a few µs are within run-to-run noise): ${part(k.cpuPerDelivered - d('concord-memory'))} SQLite commits (SQLite − memory storage), ` +
          `${part(d('concord-memory') - d('concord-yws-memory'))} durable acks (memory storage with acks − y-websocket endpoint without), ` +
          `${fmt(d('concord-yws-memory'))} µs everything else (Yjs, relay code, metrics, sockets) against @y/websocket-server's ${fmt(c['y-websocket-server'].median.cpuPerDelivered)} µs and the floor's ${fmt(floor.cpuPerDelivered)} µs.`
        : ''
    parts.push(
      `### ${rooms} room${rooms > 1 ? 's' : ''} × ${clients} clients\n\n` +
        `Offered load ${int(r.config.offeredDeliveries)} deliveries/s (${int(r.config.offeredDeliveries / (clients - 1))} updates/s); ` +
        `measured over ${r.config.measureMs / 1000} s after a ${S.warmupMs / 1000} s warm-up; saturation over ${r.config.saturationMs / 1000} s with ${r.config.window} updates in flight per client.\n\n` +
        table(
          [
            'server',
            'CPU µs / delivered msg',
            'vs floor',
            'p50 ms',
            'p99 ms',
            'p99 vs floor',
            'durable ack p50 / p99 ms',
            'updates/s at saturation',
            'server / load CPU at saturation',
            'delayed by others',
          ],
          rows,
        ) +
        decomposition,
    )
  }
  const slowed = results.fanout.map((r) => r.slowedRuns)
  const slowedNote = slowed.some((n) => n === undefined)
    ? '(These results predate the probe.)'
    : `In this run ${slowed.reduce((a, b) => a + b, 0)} of ${int(results.fanout.reduce((n, r) => n + Object.values(r.contenders).reduce((m, v) => m + v.runs.length, 0), 0))} runs were run again for it.`
  section(
    1,
    `## 1. Relay fan-out\n\n` +
      `Rooms × clients; every client appends one character per update to its own Y.Text in its room's doc; each update is delivered to the other clients of the room. ` +
      `**CPU per delivered message** is the server process's own \`process.cpuUsage()\` over the measurement window ÷ updates delivered to other clients in it ` +
      `(echoes to the sender, SyncStatus replies and acks are the server's cost, not deliveries). Latency is send → receipt at each other client. ` +
      `Concord runs with durable acks on SQLite (WAL, \`synchronous=FULL\`, group commit); its clients speak the multiplexed protocol and receive acks. ` +
      `Updates/s at saturation are bounded by whichever process hits 100% first — the *server / load CPU* column says which. ` +
      `Other work ran on this shared machine during the run (see the load average above); it perturbs latency tails and, through cold caches, CPU per message by ±20% from run to run — compare rows of one table, not figures across runs. ` +
      `*Delayed by others* is the larger share of the window in which other processes kept the server's or the load generator's main thread from running (run-queue wait minus the run time of the process's own GC and compiler threads on the same pinned core); for Concord on SQLite it also counts kernel I/O work that its own fsyncs cause on that core. ` +
      `Other tenants of this virtual machine's host slow it without showing there (no steal time is reported), so each run also times a fixed piece of CPU work on both cores before and after it; once all runs of a table are done, a run during which that work took more than ${FANOUT_MAX_SLOWDOWN}× the quickest time seen on its core in this benchmark is run again (up to ${FANOUT_RETRIES} times), and of the two the run on the quicker machine is kept — the same rule for every server, judged on the probe, never on the figures. ` +
      `${slowedNote}\n\n` +
      parts.join('\n\n'),
  )
}

if (results.applyCost && results.fanout) {
  const rows = results.fanout.map((r, i) => {
    const a = results.applyCost[i]
    const k = r.contenders.concord.median
    const f = r.contenders.floor.median
    const limit = a.microsPerUpdate + f.cpuPerUpdate
    target(
      'overhead',
      `Overhead ${r.config.rooms}×${r.config.clients}: relay CPU per update ÷ (Y.applyUpdate + raw send)`,
      1.3,
      k.cpuPerUpdate / limit,
    )
    return [
      `${r.config.rooms}×${r.config.clients}`,
      fmt(k.cpuPerUpdate),
      fmt(a.microsPerUpdate),
      fmt(f.cpuPerUpdate),
      fmt(limit),
      x(k.cpuPerUpdate / limit),
    ]
  })
  section(
    6,
    `## 6. Relay overhead vs the physical limit\n\n` +
      `CPU per update received = CPU per delivered message × (clients − 1), from the fan-out runs above at the fixed offered load. ` +
      `The physical limit is the cost of \`Y.applyUpdate\` for the same update stream (warm, in a process pinned like the servers, no observers) ` +
      `plus the raw floor's CPU per update (receiving it and sending it to every other client of the room).\n\n` +
      table(['config', 'Concord µs / update', 'Y.applyUpdate µs', 'raw send µs (floor)', 'limit µs', 'ratio (target ≤ 1.3×)'], rows),
  )
}

/** Cold-load limits: a doc of one stored update may take 3× the floor (fixed costs dominate), bigger docs 1.3×. */
const COLD_LIMIT = 1.3
const COLD_SINGLE_LIMIT = 3
if (results.cold) {
  const rows = results.cold.results.map((r) => {
    target(
      'cold',
      `Cold load, ${int(r.count)} stored update${r.count === 1 ? '' : 's'} (cold doc, warm relay) vs in-memory floor`,
      r.count === 1 ? COLD_SINGLE_LIMIT : COLD_LIMIT,
      r.coldDocMs / r.coldDocFloorMs,
    )
    return [
      int(r.count),
      ms(r.coldDocMs),
      ms(r.coldDocFloorMs),
      x(r.coldDocMs / r.coldDocFloorMs),
      `${ms(r.coldDocRawMs)} (${x(r.coldDocRawMs / r.coldDocFloorMs)})`,
      ms(r.coldProcessMs),
      ms(r.coldProcessFloorMs),
      x(r.coldProcessMs / r.coldProcessFloorMs),
    ]
  })
  for (const r of results.coldCompacted?.results ?? []) {
    rows.push([
      `${int(r.count)}, default compaction (checkpoint every 500)`,
      ms(r.coldDocMs),
      ms(r.coldDocFloorMs),
      x(r.coldDocMs / r.coldDocFloorMs),
      `${ms(r.coldDocRawMs)} (${x(r.coldDocRawMs / r.coldDocFloorMs)})`,
      ms(r.coldProcessMs),
      ms(r.coldProcessFloorMs),
      x(r.coldProcessMs / r.coldProcessFloorMs),
    ])
  }
  section(
    2,
    `## 2. Cold load from SQLite\n\n` +
      `A doc of N single-character updates, each its own row in the SQLite log (seeded directly; no checkpoint), is opened by a client and timed from \`client.open()\` to \`handle.synced\` over a real loopback WebSocket, on a freshly started relay:\n\n` +
      `- **cold doc** (the target): the client is connected, the relay answers \`/readyz\` (its storage thread is up) and has then served ${int(results.cold.warmUps ?? 3)} docs of the same size; then it opens ${int(results.cold.timedDocs ?? 1)} more, one after the other, each timed: only the doc is cold — opening a record the relay has not loaded. Floor: applying the same N updates to an empty \`Y.Doc\` in one transaction, timed ${int(results.cold.timedDocs ?? 1)} times after ${int(results.cold.warmUps ?? 3)} warm-up applications in the same process (the same number of warm-ups as the relay's; with only three, neither side's code is optimised yet and the floor of 1,000 updates reads 3–30 ms from process to process, ~1 ms warm). *Relay alone*: the same opens by a raw protocol client (subscribe, step 1 → step 2), i.e. without the engine's client-side work. Each figure is the median of all timed opens (${int(results.cold.timedDocs ?? 1)} per fresh relay or floor process, ${int(results.cold.repeats)} of those).\n` +
      `- **cold process** (the earlier figure): a new client connects to the just-started relay and opens the doc — process, JIT, SQLite connection and doc all cold. Floor: a freshly started process applying the same updates (cold JIT).\n\n` +
      table(
        [
          'stored updates',
          'cold doc: Concord',
          'floor (warm)',
          `ratio (target ≤ ${COLD_LIMIT}×, one update ≤ ${COLD_SINGLE_LIMIT}×)`,
          'relay alone (raw client)',
          'cold process: Concord',
          'floor (fresh process)',
          'ratio',
        ],
        rows,
      ),
  )
}

if (results.reconnect) {
  const parts = []
  for (const r of results.reconnect) {
    const c = r.contenders
    const y = c['y-websocket'].median
    const k = c.concord.median
    const label = `${int(r.config.records)} records × ${int(r.config.edits)} edits`
    target('reconnect', `Reconnect ${label}: time to all acked vs y-websocket`, 0.5, k.ms / y.ms)
    target('reconnect', `Reconnect ${label}: bytes on the wire vs Σ Yjs diffs`, 1.1, k.bytes / k.diffBytes)
    const rows = Object.entries(c).map(([name, v]) => {
      const m = v.median
      return [
        reconnectLabel(name),
        ms(m.ms),
        x(m.ms / y.ms),
        `${bytes(m.bytes)} (${bytes(m.bytesUp)} up)`,
        x(m.bytes / m.diffBytes),
        int(m.sockets),
        ms(m.serverCpuMs),
        ms(m.clientCpuMs),
      ]
    })
    parts.push(
      `### ${label}\n\nΣ of the Yjs diffs the server lacked: ${bytes(k.diffBytes)}.\n\n` +
        table(
          ['client', 'time to all acked', 'vs y-websocket', 'bytes on the wire', 'vs Σ diffs', 'sockets', 'server CPU', 'client CPU'],
          rows,
        ),
    )
  }
  section(
    3,
    `## 3. Offline reconnect\n\n` +
      `The server holds every record (a small ticket); the client made the edits offline (typing words, deleting, setting fields, adding comments; each edit its own transaction). ` +
      `Each run starts a fresh server holding twice as many records; before the timed reconnect, a client of the same kind reconnects the other half (untimed, the same edits), so that the server runs optimised code as one that has been up for a while does — the timed records themselves are still cold on it. (A freshly started server spends about half of such a reconnect compiling; a restart is the reconnect storm's case.) ` +
      `Timed from creating the client to everything acknowledged; bytes are TCP payload both ways (WebSocket upgrade requests and responses, frame headers, masks, messages) until then. ` +
      `**Concord**: the engine's \`SyncClient\` on one socket, done when \`flush()\` resolves — the relay's acks say the edits are committed to SQLite. ` +
      `**y-websocket**: the stock \`WebsocketProvider\`, one socket per record, against the same Concord relay; y-websocket has no acks, so it counts as done as soon as the relay has *applied* (not stored) its step 2 — a sync step 1 probe after the provider's \`sync\` event proves that. ` +
      `**Hocuspocus**: in memory (records loaded by \`onLoadDocument\` from a map), one socket, a minimal client speaking its protocol like its provider (auth, step 1, awareness, step 2 in answer to the server's step 1; \`@hocuspocus/provider\` is not installed); done when each step 2 has its \`SyncStatus\` (applied, not stored). Hocuspocus echoes every applied update back to its sender, which shows in its bytes.\n\n` +
      parts.join('\n\n'),
  )
}

function reconnectLabel(name) {
  return (
    {
      concord: 'Concord engine (1 socket, durable acks)',
      'y-websocket': 'y-websocket (1 socket per record)',
      hocuspocus: 'Hocuspocus (1 socket)',
    }[name] ?? name
  )
}

if (results.memory) {
  const c = results.memory.contenders
  const baselines = ['y-websocket-server', 'hocuspocus']
  const best = (key) => Math.min(...baselines.map((b) => c[b].median[key]))
  const bestName = (key) => baselines.reduce((a, b) => (c[a].median[key] <= c[b].median[key] ? a : b))
  target('memory', 'Memory per open idle room vs best baseline', 0.8, c.concord.median.smallRoomBytes / best('smallRoomBytes'))
  target('memory', 'Memory per loaded 1,000-edit doc vs best baseline', 0.8, c.concord.median.bigDocBytes / best('bigDocBytes'))
  const labels = {
    concord: 'Concord (loaded from SQLite, 1 multiplexed socket)',
    'concord-yws': 'Concord (loaded from SQLite, 1 socket per doc)',
    'concord-awake': '_Concord, rooms kept awake (`--dormant-after-ms 0`)_ (diagnostic)',
    'y-websocket-server': '@y/websocket-server (1 socket per doc)',
    hocuspocus: 'Hocuspocus (1 socket)',
  }
  const rows = Object.entries(c).map(([name, v]) => [
    labels[name],
    bytes(v.median.smallRoomBytes),
    x(v.median.smallRoomBytes / best('smallRoomBytes')),
    bytes(v.median.bigDocBytes),
    x(v.median.bigDocBytes / best('bigDocBytes')),
  ])
  section(
    5,
    `## 5. Relay memory\n\n` +
      `Server memory (\`heapUsed\` + \`external\` after forced GC: a dormant room's encoded state is an ArrayBuffer, outside the heap) with ${int(results.memory.config.small)} open idle rooms (a small ticket doc, one subscriber each), then with ${int(results.memory.config.big)} more rooms each holding a ticket after ${int(results.memory.config.edits)} edits by five people (${bytes(results.memory.config.bigDocStateBytes)} encoded); growth ÷ rooms. ` +
      `Concord is measured once its rooms went dormant: nobody wrote to them for its default \`--dormant-after-ms\` (10 s), so each holds its doc as encoded state instead of a \`Y.Doc\`, with its subscribers, presence and author bindings (the next edit makes the \`Y.Doc\` again). ` +
      `Best baseline: ${labels[bestName('smallRoomBytes')]} for idle rooms, ${labels[bestName('bigDocBytes')]} for 1,000-edit docs. Socket objects count where a protocol needs one socket per doc.\n\n` +
      table(['server', 'memory per idle room', 'vs best baseline', 'memory per 1,000-edit doc', 'vs best baseline'], rows),
  )
}

{
  const s = results.startup
  const label = `${int(s?.records ?? S.records)} records`
  let body
  if (!s || s.skipped || s.error) {
    body = !s
      ? `<!-- case 4: filled in by test/bench/recordStore.mjs -->\nNot measured in this run (\`test/bench/recordStore.mjs\` is missing or \`--only\` left it out).`
      : s.skipped
        ? `Not measured: ${s.skipped}.`
        : `recordStore.mjs failed: \`${String(s.error).split('\n')[0]}\``
    target('startup', `Client start-up (${label}): list the first screen`, 200, NaN, { unit: 'ms' })
    target('startup', `Client start-up (${label}): open one record`, 20, NaN, { unit: 'ms' })
  } else {
    target('startup', `Client start-up (${label}): list the first screen (cold start, as the app does it)`, 200, s.firstScreenMs, {
      unit: 'ms',
    })
    target('startup', `Client start-up (${label}): list the first screen without the localStorage snapshot`, 200, s.firstScreenIdbMs, {
      unit: 'ms',
    })
    target('startup', `Client start-up (${label}): open one record`, 20, s.openMs, { unit: 'ms' })
    body =
      `Built by the record store's harness (\`test/bench/recordStore.mjs\`): ${label} stored in a Chromium profile (real IndexedDB, ${s.chromium}); every timed run starts a new browser process on that profile (a cold start of the app; the OS file cache is warm) and times in the page (the test page, minified as a production build of the app is). Stored once in ${fmt(s.seedMs / 1000)} s.\n\n` +
      table(
        ['measure', 'Concord record store', 'plain y-indexeddb'],
        [
          [
            'list the first screen (50 tickets by updatedAt), cold start',
            `${ms(s.firstScreenMs)} (from the snapshot an earlier session left in localStorage)`,
            s.plainFirstScreenMs === null ? '—' : `${ms(s.plainFirstScreenMs)} (opens every record)`,
          ],
          ['… without the localStorage snapshot (catalog index in IndexedDB)', ms(s.firstScreenIdbMs), '—'],
          ['whole catalog in memory, cold start', ms(s.catalogReadyMs), '—'],
          ['filtered, re-sorted list over the loaded catalog', ms(s.filterMs), '—'],
          ['open one record (median / p95)', `${ms(s.openMs)} / ${ms(s.openP95Ms)}`, `${ms(s.plainOpenMs)} / ${ms(s.plainOpenP95Ms)}`],
        ],
      ) +
      (s.plainFirstScreenMs
        ? `\n\nPlain y-indexeddb needs ${fmt(s.plainFirstScreenMs / s.records)} ms per record to list them (the issue quotes ~4 ms per doc as published).`
        : '')
  }
  section(4, `## 4. Client start-up with ${label} (Chromium)\n\n${body}`)
}

if (results.capacity) {
  const r = results.capacity
  const k = r.config
  target(
    'capacity',
    `Capacity: largest client count with p99 delivery ≤ ${CAPACITY_P99_LIMIT_MS} ms (teams of ${k.teamSize} on ${k.docsPerTeam} docs, one relay core)`,
    2000,
    r.capacity,
    {
      unit: 'clients',
      atLeast: true,
    },
  )
  const pct = (share) => (Number.isFinite(share) ? `${Math.round(share * 100)}%` : '—')
  const rows = r.steps.map((step) => {
    const m = step.median
    return step.skipped
      ? [int(step.clients), `not run: ${step.skipped}`, '', '', '', '', '', '']
      : [
          int(step.clients),
          `${fmt(m.p50)} / ${fmt(m.p99)}`,
          m.p99 <= CAPACITY_P99_LIMIT_MS ? 'yes' : m.loadCpu >= LOAD_SATURATED ? '**no** (load generator saturated)' : '**no**',
          `${pct(m.relayCpu)} / ${Number.isFinite(m.interference) ? `${(m.interference * 100).toFixed(1)}%` : '—'}`,
          fmt(m.eventLoopP99),
          int(m.awarenessPerSec),
          int(m.deliveriesPerSec),
          `${pct(m.loadCpu)} / ${fmt(m.loadEventLoopP99)}`,
        ]
  })
  section(
    7,
    `## 7. Capacity: clients per relay core\n\n` +
      `Teams of ${k.teamSize} clients share ${k.docsPerTeam} docs; every client has its team's ${k.docsPerTeam} docs subscribed over one multiplexed socket and edits a random one every ~${k.editMeanMs / 1000} s (each delay uniform in 0.5–1.5 × that; one character appended, a \`sync update\`). ` +
      `Like the engine's \`SyncClient\` opened with a \`user\`, each client announces an awareness state (\`{ user: { id, name, color } }\`, ~60 B) on every doc it subscribes and renews it every 15 s on every doc (the y-protocols keep-alive \`DocAwareness\` sends), and sends a \`ping\` every 15 s; keep-alives and pings of different clients are spread by a random phase. ` +
      `The clients are raw protocol clients (\`test/bench/lib/teamClients.mjs\`), whole teams per load process, in ${k.loadProcesses} processes pinned to the other core. ` +
      `Concord's relay runs on SQLite with durable acks on one core. Per step, on a fresh relay: all clients connect and sync (untimed), the load runs ${k.warmupMs / 1000} s, then ${k.windows > 1 ? `${k.windows} consecutive windows of ${k.measureMs / 1000} s are measured; figures are medians over the windows` : `${k.measureMs / 1000} s are measured`}. ` +
      `**Delivery latency**: send → receipt at each other member of the team. **Relay CPU**: its \`process.cpuUsage()\` ÷ wall time (100% = the core); *delayed by others*: the share of the window in which other processes kept the relay's main thread from running (as in case 1). **Event-loop delay p99**: \`perf_hooks.monitorEventLoopDelay\` in the relay's process (10 ms resolution, the resolution subtracted). ` +
      `Awareness messages and edit deliveries per second are what the relay sent, counted on receipt. **Load CPU**: the load processes' CPU together ÷ wall time, and the worst of their event-loop delays p99; near 100%, or with delays near the relay's, the load generator, not the relay, would be the limit. ` +
      `A step is not run once a smaller one had a p99 over twice the limit.\n\n` +
      `Capacity (largest count with p99 ≤ ${CAPACITY_P99_LIMIT_MS} ms): **${int(r.capacity)} clients**` +
      (r.loadBoundAt
        ? ` — a lower bound: at ${int(r.loadBoundAt)} clients the load generators used ≥ ${LOAD_SATURATED * 100}% of their core, so that step's latencies are the load side's as much as the relay's. (A raw client costs ~25 µs of CPU per message received, mostly Node's socket reads and the kernel; one core receives ~40,000 messages/s.)`
        : '.') +
      `\n\n` +
      table(
        [
          'clients',
          'delivery p50 / p99 ms',
          `p99 ≤ ${CAPACITY_P99_LIMIT_MS} ms`,
          'relay CPU / delayed by others',
          'event-loop delay p99 ms',
          'awareness msgs/s sent',
          'edit deliveries/s sent',
          'load CPU / event-loop delay p99 ms',
        ],
        rows,
      ),
  )
}

if (results.storm) {
  const r = results.storm
  const k = r.config
  const m = r.median
  target('storm', `Reconnect storm: ${int(k.clients)} clients × ${k.docsPerTeam} docs resynced after a relay restart`, 2, m.ms / 1000, {
    unit: 's',
  })
  section(
    8,
    `## 8. Reconnect storm after a relay restart\n\n` +
      `${int(k.clients)} clients in teams of ${k.teamSize}, each with its team's ${k.docsPerTeam} docs subscribed over one multiplexed socket (the capacity case's clients, there with presence in every doc), synced; every doc holds one edit of each team member, all acked. ` +
      `The relay (SQLite, durable acks, one core) is killed with SIGKILL and started again on the same port and data; once it listens every client reconnects at once (no backoff spreads them: the worst case) and, as the engine does, subscribes its ${k.docsPerTeam} docs again with their state vectors in one \`resume\` message, then sends its awareness state of each doc that shows presence. ` +
      `Where presence shows is the row: in the record on screen, as the web app does (the record store shows a user only in records a handle holds open; the other docs are held without presence) — the target's row; and, as a diagnostic, in every doc, as a \`SyncClient\` opening docs with \`user\` does (presence is then most of the relay's work per client-doc pair). ` +
      `Timed from starting the relay process until every client has, for every doc, its entry of the relay's \`resumed\` answer (or the per-doc messages it stands for): the relay's sync step 1 answered when the relay lacks something, the step 2 answering the client's state vector, and an ack covering its edits. ` +
      `*Resyncs* count a second relay step 1 on one subscription (the relay asking again for missing dependencies), plus \`missing-dependencies\` errors; nothing was lost, so there should be none. Medians of ${k.repeats} run${k.repeats > 1 ? 's' : ''}.\n\n` +
      table(
        [
          'presence',
          'time to all resynced (target ≤ 2 s)',
          'of it: relay start-up until listening',
          'relay CPU (start-up and storm)',
          'load CPU',
          'resyncs',
          'missing-dependency errors',
        ],
        [
          ['in the record on screen (target)', m],
          ...(results.stormEveryDoc ? [['in every doc (diagnostic)', results.stormEveryDoc.median]] : []),
        ].map(([label, x]) => [
          label,
          ms(x.ms),
          ms(x.listenMs),
          ms(x.relayCpuMs),
          ms(x.loadCpuMs),
          int(x.resyncs),
          int(x.missingDependencies),
        ]),
      ),
  )
}

if (results.idle) {
  const r = results.idle
  const k = r.config
  const m = r.median
  target('idle', `Idle tab (${int(k.records)} records, ${k.idleMs / 1000} s): frames beyond heartbeats`, 0, m.idleOtherFrames, {
    unit: 'frames',
  })
  target('idle', `Idle tab: reconnect with nothing changed, per-record requests`, 0, m.reconnectPerRecordRequests, { unit: 'requests' })
  const [run] = r.runs
  const kinds = (byType) =>
    Object.entries(byType)
      .map(([kind, n]) => `${kind} ×${int(n)}`)
      .join(', ') || 'none'
  section(
    9,
    `## 9. Idle tab\n\n` +
      `The engine in Node set up as the web app does it: a \`SyncClient\` with the user, a \`RecordStore\` with \`live: true\` (records in the engine's \`MemoryStorage\`), a \`WorkspacePresence\`; the relay (SQLite, one core) holds ${int(k.records)} tickets of the workspace. ` +
      `The store fills itself from the relay (untimed; ${fmt(m.fillMs / 1000)} s); once the socket was quiet for a second it stays idle for ${k.idleMs / 1000} s, then its socket is cut with nothing changed on either side and it reconnects, measured until the socket is quiet for a second again. ` +
      `Frames are WebSocket messages both ways by message type; heartbeats are \`ping\`/\`pong\`, WebSocket ping/pong control frames and awareness keep-alives (the presence doc's unchanged state, renewed every 15 s). Bytes are TCP payload both ways. Per-record requests are \`fetch\` and \`subscribe\` of record docs. ` +
      `Medians of ${k.repeats} run${k.repeats > 1 ? 's' : ''}.\n\n` +
      table(
        ['phase', 'frames', 'beyond heartbeats', 'bytes', 'per-record requests', 'relay CPU', 'what went over the socket (one run)'],
        [
          [
            `idle ${k.idleMs / 1000} s`,
            int(m.idleFrames),
            int(m.idleOtherFrames),
            bytes(m.idleBytes),
            '—',
            ms(m.idleRelayCpuMs),
            kinds(run.idle.byType),
          ],
          [
            `reconnect (${ms(m.reconnectMs)} until quiet)`,
            int(m.reconnectFrames),
            '—',
            bytes(m.reconnectBytes),
            int(m.reconnectPerRecordRequests),
            '—',
            kinds(run.reconnect.byType),
          ],
        ],
      ),
  )
}

{
  const d = results.newdevice
  const label = `${int(d?.config?.records ?? C.newdevice.records)} records`
  const measured = d && !d.skipped && !d.error
  target('newdevice', `New device (${label}, Chromium): every record available offline`, 10, measured ? d.median.allMs / 1000 : NaN, {
    unit: 's',
  })
  target('newdevice', `New device (${label}, Chromium): first screen`, 1, measured ? d.median.firstScreenMs / 1000 : NaN, { unit: 's' })
  const body = !d
    ? 'Not measured in this run (`--only` left it out).'
    : d.skipped
      ? `Not measured: ${d.skipped}.`
      : d.error
        ? `newdevice.mjs failed: \`${String(d.error).split('\n')[0]}\``
        : `The app opened for the first time on a device: Chromium on a fresh profile directory (real IndexedDB on disk) opens the test page (the engine's browser bundle, minified as a production build of the app is) against a relay (SQLite, one core) holding ${label} of the workspace; the page's first \`RecordStore\`, set up as the app does (\`live: true\`), fills itself — \`list-docs\`, then pipelined \`fetch\`es over the one socket, the records stored in the inbox database (many per transaction; a record gets a database of its own when first opened). ` +
          `Timed in the page from navigation start: until the list shows a first screen (50 tickets by updatedAt — whichever have arrived), and until every record is available offline (the catalog lists all and is written; the records stored are counted). Chromium runs on the load generators' core. Medians of ${d.config.repeats} run${d.config.repeats > 1 ? 's' : ''}, each with a fresh relay and profile.\n\n` +
          table(
            ['measure', 'Concord record store', 'target'],
            [
              ['first screen', ms(d.median.firstScreenMs), '≤ 1 s'],
              ['every record available offline', ms(d.median.allMs), '≤ 10 s'],
            ],
          )
  section(10, `## 10. New device with ${label} (Chromium)\n\n${body}`)
}

if (results.scaleout) {
  const r = results.scaleout
  const what = (k) => `Scale-out: updates/s at saturation with ${k} relay instances vs 1, rooms spread (PostgreSQL + Redis)`
  if (r.skipped) {
    target('scaleout', what(3), SCALEOUT_TARGET, NaN, { atLeast: true })
    section(11, `## 11. Scale-out on PostgreSQL + Redis\n\nNot measured: ${r.skipped}.`)
  } else {
    const k = r.config
    // results of a run from before the rooms-spread layout have one layout, clients spread
    const layouts = r.layouts ?? { clients: { counts: r.counts, throughputRatio: r.throughputRatio } }
    const judged = layouts.rooms !== undefined ? 'rooms spread' : 'clients spread'
    target('scaleout', `${what(r.largest).replace('rooms spread', judged)}, ${r.cores} cores`, SCALEOUT_TARGET, r.throughputRatio, {
      atLeast: true,
    })
    const pair = (a, b) => (Number.isFinite(a) ? `${fmt(a)} / ${fmt(b)}` : '—')
    const LAYOUT_NAMES = { rooms: 'rooms spread', clients: 'clients spread' }
    const row = (label, n, m, one) => [
      label,
      n,
      int(m.updatesPerSec),
      x(m.updatesPerSec / one.updatesPerSec),
      `${fmt(m.cpuPerDelivered)} / ${fmt(m.satCpuPerDelivered)}`,
      `${x(m.cpuPerDelivered / one.cpuPerDelivered)} / ${x(m.satCpuPerDelivered / one.satCpuPerDelivered)}`,
      `${Math.round(m.satServerUtil * 100)}% / ${Math.round(m.satLoadUtil * 100)}%`,
      pair(m.sameP50, m.sameP99),
      pair(m.crossP50, m.crossP99),
      // no crossing deliveries: null once the results went through JSON (`--render`), and null − x is −x
      Number.isFinite(m.crossP50) ? pair(m.crossP50 - m.sameP50, m.crossP99 - m.sameP99) : '—',
    ]
    const [first] = Object.values(layouts)
    const one = first.counts[1].median
    const rows = [row('either', 1, one, one)]
    for (const [layout, { counts }] of Object.entries(layouts)) {
      for (const [n, { median: m }] of Object.entries(counts)) if (Number(n) > 1) rows.push(row(LAYOUT_NAMES[layout], Number(n), m, one))
    }
    const ratios = Object.entries(layouts)
      .map(([layout, l]) => `${LAYOUT_NAMES[layout]} ${x(l.throughputRatio)}`)
      .join(', ')
    section(
      11,
      `## 11. Scale-out on PostgreSQL + Redis\n\n` +
        `Concord's relay as 1, 2 and 3 instances on one PostgreSQL 15 database, linked through one Redis (\`--storage postgres --database-url --redis-url\`), both started by the case; case 1's fan-out load with ${k.rooms} rooms × ${k.clients} clients in two layouts: **rooms spread** — all clients of a room on one instance, rooms round-robin (room r on instance r mod n): many docs divided among the instances, what scale-out is for, and the layout the target is judged on; **clients spread** — the clients of every room spread over the instances (client i of room r on instance (r + i) mod n), so that most deliveries cross from one instance to another through Redis. A load balancer without sticky sessions lands somewhere between the two. With one instance the layouts are the same (one run, the baseline of both). ` +
        `Per run, on fresh processes and a fresh database: a fixed offered load of ${int(k.offeredDeliveries)} deliveries/s measured over ${k.measureMs / 1000} s after a ${k.warmupMs / 1000} s warm-up (**relay CPU per delivered message**: the instances' \`process.cpuUsage()\` summed ÷ messages delivered; latency send → receipt, split into deliveries whose sender reached the same instance as the receiver and those that crossed), then saturation over ${k.saturationMs / 1000} s with ${k.window} updates in flight per client (enough that the extra latency of crossing instances does not bound it) and the relays' CPU per delivered message again (commits then carry many updates each: the per-message cost, where the fixed load shows mostly the per-commit one). ` +
        `**This machine has ${r.cores} cores**, shared by the instances (not pinned), PostgreSQL, Redis and the load generator: with PostgreSQL and Redis on the same cores, throughput cannot reach ${SCALEOUT_TARGET}× here whatever the relay does, so the raw ratio (${ratios} at ${r.largest} instances) is reported as measured; the per-core figure — relay CPU per delivered message staying flat as instances are added — is what shows whether it would with a core per instance. ` +
        `Medians of ${k.repeats} run${k.repeats > 1 ? 's' : ''}.\n\n` +
        table(
          [
            'layout',
            'instances',
            'updates/s at saturation',
            'vs 1 instance',
            'relay CPU µs / delivered msg, fixed load / saturation (all instances)',
            'vs 1 instance',
            'relays / load CPU at saturation (100% = one core)',
            'same-instance p50 / p99 ms',
            'cross-instance p50 / p99 ms',
            'extra for crossing p50 / p99 ms',
          ],
          rows,
        ),
    )
  }
}

/** The profiles come after every numbered case. */
const PROFILES_SECTION = 100
if (results.profiles) section(PROFILES_SECTION, profileSection(results.profiles))

function profileSection(p) {
  const comp = (list, name) => list.find((c) => c.name === name)?.share ?? 0
  const pct = (n) => `${(n * 100).toFixed(0)}%`
  const rows = p.fanout.map((f) => [
    `${f.rooms}×${f.clients}, ${f.name === 'concord' ? 'SQLite' : 'memory'}`,
    fmt(f.result.cpuPerDelivered),
    pct(f.inclusive.sqlite),
    pct(comp(f.byComponent, 'Node core (net, streams, timers)') + comp(f.byComponent, 'native (no script)') + comp(f.byComponent, 'ws')),
    pct(comp(f.byComponent, 'Yjs') + comp(f.byComponent, 'lib0 (encoding)') + comp(f.byComponent, 'y-protocols')),
    pct(f.inclusive.acks),
    pct(f.inclusive.metrics),
    pct(comp(f.byComponent, 'GC')),
    f.result.relay ? fmt(f.result.relay.acks / f.result.relay.updatesCommitted) : '—',
    f.result.relay ? fmt(f.result.relay.updatesCommitted / f.result.relay.commits) : '—',
  ])
  const r = p.reconnect
  const top = (list) =>
    list
      .slice(0, 6)
      .map((t) => `\`${t.name}\` ${pct(t.share)}`)
      .join(', ')
  return (
    `## Profiles of Concord's relay (\`--cpu-prof\`)\n\n` +
    `One profiled run each (figures from a profiled run are a little higher than above). Shares are of the relay's sampled busy time; the V8 profiler samples wall time on the main thread. SQLite runs on its own storage thread, whose profile is not included: the SQLite share is the main thread's side of it (handing commits to that thread and taking their answers). The memory-storage run shows the CPU without storage.\n\n` +
    table(
      [
        'run',
        'CPU µs / delivered',
        'SQLite (main-thread side)',
        'sockets (ws, Node streams, syscalls)',
        'Yjs + lib0 + y-protocols',
        'acks',
        'metrics (prom-client)',
        'GC',
        'acks sent per update',
        'updates per commit',
      ],
      rows,
    ) +
    `\n\nTop functions by self time — ${p.fanout.map((f) => `**${f.rooms}×${f.clients} ${f.name === 'concord' ? 'SQLite' : 'memory'}**: ${top(f.topFunctions)}`).join('; ')}.\n\n` +
    `Reconnect ${int(RECONNECT_CONFIGS[0].records)}×${RECONNECT_CONFIGS[0].edits} (relay side, whole process: start-up, the warm-up reconnect and the timed one): ${top(r.topFunctions)}; loading docs from SQLite ${pct(r.inclusive.loadDoc)}, commits ${pct(r.inclusive.commit)}, acks ${pct(r.inclusive.acks)}, module loading ${pct(r.inclusive.moduleLoading)}.` +
    (p.cases?.length ? `\n\n${caseProfiles(p.cases)}` : '')
  )
}

/** The other cases' profiles: one row each, over the relay process's whole life or the part named. */
function caseProfiles(cases) {
  const pct = (n) => `${(n * 100).toFixed(0)}%`
  const comp = (c, ...names) => names.reduce((sum, name) => sum + (c.byComponent.find((k) => k.name === name)?.share ?? 0), 0)
  const rows = cases.map((c) => [
    `${c.what} (${c.scope})`,
    `${int(c.busyMs)} ms`,
    pct(comp(c, 'relay code', 'engine protocol code')),
    pct(comp(c, 'Yjs', 'lib0 (encoding)', 'y-protocols')),
    pct(comp(c, 'Node core (net, streams, timers)', 'ws')),
    pct(comp(c, 'GC')),
    pct(c.inclusive.moduleLoading),
    [
      ['loading docs', c.inclusive.loadDoc],
      ['commits', c.inclusive.commit],
      ['answering resumes', c.inclusive.resume],
      ['presence', c.inclusive.awareness],
      ['compressing', c.inclusive.compression],
      ['HTTP upgrades', c.inclusive.upgrades],
    ]
      .filter(([, share]) => share >= 0.01)
      .map(([name, share]) => `${name} ${pct(share)}`)
      .join(', ') || '—',
    c.topFunctions
      .slice(0, 4)
      .map((t) => `\`${t.name}\` ${pct(t.share)}`)
      .join(', '),
  ])
  return (
    `The other relay cases, one profiled run each (the client side of cold load and reconnect runs in the load process, not here). *Node core + ws* is the JavaScript of Node's sockets, streams and timers and of \`ws\` (the system calls below it count as native, not shown); *module loading* and the inclusive shares count a sample in every function on its stack, so they overlap the columns before them. The V8 profiler sees neither the kernel nor V8's own threads (compiling, parallel GC), which in a restarted relay on one core take a large share: see item 0 under *Fan-out CPU* below for a \`perf\` profile.\n\n` +
    table(
      [
        'run',
        'busy (main thread)',
        'relay code',
        'Yjs + lib0 + y-protocols',
        'Node core + ws',
        'GC',
        'module loading',
        'inclusive: where it goes',
        'top functions by self time',
      ],
      rows,
    )
  )
}

const findings = readFileSync(path.join(here, 'findings.md'), 'utf8').trim()
/** A measured value in its unit (see `target`). */
const inUnit = (n, unit) => (unit === 'x' ? x(n) : unit === 'ms' ? `${fmt(n)} ms` : unit === 's' ? `${fmt(n)} s` : `${int(n)} ${unit}`)
const fmtTarget = (t) => {
  const value = Number.isFinite(t.value) ? inUnit(t.value, t.unit) : '—'
  const round = `${t.limit.toLocaleString('en-US')}${t.unit === 'x' ? '×' : ` ${t.unit}`}`
  const limit = t.atLeast ? `≥ ${round}` : t.limit === 0 ? `no ${t.unit}` : `≤ ${round}`
  return [String(t.caseNo), t.what, limit, value, mark(t.met)]
}
const met = targets.filter((t) => t.met === true).length
const missed = targets.filter((t) => t.met === false).length
const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
const md =
  `# Benchmarks

Generated by \`npm run bench${quick ? ' -- --quick' : ''}\`${only ? ` (only: ${[...only].join(', ')})` : ''} on ${meta.date} UTC in ${fmt(results.seconds)} s:
${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}; load average (1/5/15 min) ${loadBefore.map((l) => l.toFixed(2)).join(' / ')} before the run, ${loadAfter.map((l) => l.toFixed(2)).join(' / ')} after it.
${pinned ? 'Servers pinned to core 0, load generators (and this orchestrator) to core 1 with `taskset`.' : 'Not pinned (no `taskset` or fewer than two cores).'} ` +
  `${prioritized ? `All benchmark processes run in a session of their own whose scheduling group has nice ${BENCH_NICE}, so that other work on this shared machine delays them less. ` : ''}` +
  `Contender order alternates between repetitions; figures are medians of ${S.repeats} runs, each on freshly started processes. ` +
  `Absolute numbers drift on a shared machine; the ratios against baselines measured in the same run are what we quote. ` +
  `Baselines: a raw \`ws\` relay forwarding frames with no Yjs work (the floor), \`@y/websocket-server@0.1.1\` (\`setupWSConnection\`, in memory), \`@hocuspocus/server@3.4.4\` (in memory, no extensions), \`y-websocket@3.1.0\` as the one-socket-per-doc client.

## Targets

${met} met, ${missed} missed${targets.some((t) => t.met === null) ? `, ${targets.filter((t) => t.met === null).length} not measured` : ''}. These are the project's published targets; none is relaxed here.

${table(['case', 'target', 'limit', 'measured', ''], targets.sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group)).map(fmtTarget))}

${sections
  .sort((a, b) => a.caseNo - b.caseNo)
  .map((s) => s.text)
  .join('\n\n')}

${findings}

## Method and reproduction

- \`npm run bench\` (this run: ${fmt(results.seconds)} s) or \`npm run bench -- --quick\` (3 runs, shorter windows, fewer rooms, no diagnostics or profiles; capacity, storm and idle tab smaller and once); \`-- --only=fanout,overhead,cold,reconnect,memory,startup,capacity,storm,idle,newdevice,scaleout,profile\` runs a subset (\`scaleout\` too, which needs PostgreSQL 15 and \`redis-server\`). Raw figures of the last run: \`test-artifacts/bench-results.json\`; \`node test/bench/run.mjs --render=test-artifacts/bench-results.json\` writes this page again from them (e.g. after editing \`findings.md\`).
- Harness: \`test/bench/\` — \`serverHost.mjs\` (one server per process: floor, @y/websocket-server, Hocuspocus, Concord), \`loadHost.mjs\` (load generators), \`fanout.mjs\`, \`syncCore.mjs\` (cold load), \`reconnect.mjs\`, \`memory.mjs\`, \`capacity.mjs\` + \`storm.mjs\` (raw team clients in \`lib/teamClients.mjs\`), \`scaleout.mjs\` (several instances on PostgreSQL + Redis, started with \`test/helpers/postgresServer.mjs\` and \`redisServer.mjs\`), \`idle.mjs\` + \`newdevice.mjs\` (records seeded by \`lib/records.mjs\`; the new device with \`recordStore.mjs\`'s Chromium page), \`applyCost.mjs\`/\`applyFloor.mjs\` (floors), \`profiles.mjs\` + \`profile.mjs\` (\`--cpu-prof\` summaries; \`node test/bench/profile.mjs FILE.cpuprofile\` for any profile), \`findings.md\` (the analysis below the tables). \`test/bench-smoke.test.ts\` runs a tiny case of each in \`npm test\`.
- Fan-out clients are raw protocol clients (no Y.Doc): updates are hand-encoded Yjs updates byte-identical to what Yjs writes (checked by the smoke test), recognised on delivery by (client id, clock). Every load loop is bounded in time and in count; everything runs on 127.0.0.1.
- SQLite files live in \`os.tmpdir()\` (a real disk here, fsync ≈ 0.2 ms).
`
writeFileSync(path.join(root, 'docs/benchmarks.md'), md)
process.stdout.write(md)
log(`\nbench finished in ${fmt((performance.now() - startedAt) / 1000)} s`)
