/**
 * Reconnect storm after a relay restart: `clients` clients in teams of 10
 * (lib/teamClients.mjs), each with its team's 20 docs subscribed over one
 * multiplexed socket, synced, each doc holding one edit of every team
 * member, all acked. The relay (SQLite, durable acks, pinned to one core) is
 * killed with SIGKILL and started again on the same port and data. As soon
 * as it listens, every client reconnects at once (the worst case: no
 * backoff spreads them) and subscribes all of its docs again with their
 * state vectors — in one `resume`, as the engine does with a relay that
 * announces it — and sends its awareness state of each doc that shows
 * presence: by default the one record on screen, as the web app's record
 * store does (`presence: 'viewed'`); `'every-doc'` as a `SyncClient` that
 * opens docs with `user` (lib/teamClients.mjs).
 *
 * Measured, from starting the relay process again: until every client has,
 * for each of its docs, the relay's sync step 1 answered (when the relay
 * lacks something; a `resumed` entry without one needs no answer), the step
 * 2 answering its own state vector, and an ack covering its edits. Also
 * the part of it the relay took to start listening, the relay's CPU over
 * the storm, and missing-dependency resyncs (a second relay step 1 on one
 * subscription, or `error` missing-dependencies) — there should be none,
 * as nothing was lost.
 *
 * @module bench/storm
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startChild } from './lib/processes.mjs'
import { median, sleep, withTimeout } from './lib/stats.mjs'
import { TeamClients } from './lib/teamClients.mjs'
import { LOAD_HOST, SERVER_HOST } from './fanout.mjs'

const THIS_MODULE = fileURLToPath(import.meta.url)
const TEAM_SIZE = 10

/** Runs the storm `repeats` times on fresh processes; medians of the figures. */
export const reconnectStorm = async ({
  clients = 1000,
  docsPerTeam = 20,
  repeats = 3,
  loadProcesses = 4,
  presence = 'viewed',
  cores = null,
  log = () => {},
}) => {
  const runs = []
  for (let rep = 0; rep < repeats; rep++) {
    const run = await stormOnce({ clients, docsPerTeam, loadProcesses, presence, cores })
    runs.push(run)
    log(
      `  storm ${clients} clients × ${docsPerTeam} docs, presence ${presence} #${rep + 1}: ${run.ms.toFixed(0)} ms from restart (relay listening after ${run.listenMs.toFixed(0)} ms), ` +
        `relay CPU ${run.relayCpuMs.toFixed(0)} ms, ${run.resyncs} resyncs, ${run.missingDependencies} missing-dependency errors` +
        (run.errors.length ? `, errors: ${run.errors.slice(0, 3).join('; ')}` : ''),
    )
  }
  const pick = (key) => median(runs.map((r) => r[key]))
  return {
    config: { clients, docsPerTeam, teamSize: TEAM_SIZE, repeats, loadProcesses, presence },
    runs,
    median: {
      ms: pick('ms'),
      listenMs: pick('listenMs'),
      relayCpuMs: pick('relayCpuMs'),
      loadCpuMs: pick('loadCpuMs'),
      resyncs: pick('resyncs'),
      missingDependencies: pick('missingDependencies'),
    },
  }
}

/** One storm on fresh processes; `serverExecArgv` goes to the restarted relay (e.g. `--cpu-prof`). */
export const stormOnce = async ({ clients, docsPerTeam, loadProcesses, presence, cores, serverExecArgv = [] }) => {
  const teams = Math.ceil(clients / TEAM_SIZE)
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-storm-'))
  const serverConfig = { kind: 'concord', storage: 'sqlite', dataDir }
  let server = await startChild(SERVER_HOST, [JSON.stringify(serverConfig)], { core: cores?.server ?? null })
  const url = server.info.url
  const loads = []
  try {
    const processes = Math.max(1, Math.min(loadProcesses, teams))
    for (let i = 0; i < processes; i++) loads.push(await startChild(LOAD_HOST, [], { core: cores?.load ?? null }))
    const call = (name, params = {}) => Promise.all(loads.map((l) => l.call('run', THIS_MODULE, name, params)))
    const per = Math.ceil(teams / processes)
    await withTimeout(
      Promise.all(
        loads.map((l, i) =>
          l.call('run', THIS_MODULE, 'stormConnect', {
            url,
            firstTeam: i * per,
            teams: Math.max(0, Math.min(per, teams - i * per)),
            docsPerTeam,
            presence,
          }),
        ),
      ),
      60_000 + clients * 60,
      `connecting and seeding ${clients} storm clients`,
    )

    // kill -9, then start again on the same port and data
    const killed = new Promise((resolve) => server.child.once('exit', resolve))
    server.child.kill('SIGKILL')
    await killed
    await withTimeout(call('stormAwaitClosed'), 30_000, 'storm clients noticing the relay is gone')
    const port = Number(new URL(url).port)
    const restarted = performance.now()
    server = await startChild(SERVER_HOST, [JSON.stringify({ ...serverConfig, relayOptions: { port } })], {
      core: cores?.server ?? null,
      execArgv: serverExecArgv,
    })
    const listening = performance.now()
    const loadCpu0 = await call('stormCpu')
    const reconnected = await withTimeout(call('stormReconnect'), 120_000, `reconnecting ${clients} storm clients`)
    const done = performance.now()
    const relayCpu = await server.call('cpu')
    const loadCpu1 = await call('stormCpu')
    const sum = (list, f) => list.reduce((n, x) => n + f(x), 0)
    return {
      clients: teams * TEAM_SIZE,
      ms: done - restarted,
      listenMs: listening - restarted,
      // the restarted relay's whole CPU time: start-up and the storm
      relayCpuMs: relayCpu.micros / 1000,
      loadCpuMs: (sum(loadCpu1, (c) => c) - sum(loadCpu0, (c) => c)) / 1000,
      resyncs: sum(reconnected, (r) => r.resyncs),
      missingDependencies: sum(reconnected, (r) => r.missingDependencies),
      errors: reconnected.flatMap((r) => r.errors),
    }
  } finally {
    await Promise.all(loads.map((l) => l.call('run', THIS_MODULE, 'stormClose').catch(() => {})))
    await Promise.all(loads.map((l) => l.stop()))
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------
// load-process side

let group = null
let open = 0
let onAllClosed = null

/** Connects this process's teams, gives every doc one edit per client and waits until all are delivered and acked. */
export const stormConnect = async ({ url, firstTeam, teams, docsPerTeam, presence }) => {
  group = new TeamClients({
    url,
    firstTeam,
    teams,
    teamSize: TEAM_SIZE,
    docsPerTeam,
    presence,
    onClosed: () => {
      if (--open === 0) onAllClosed?.()
    },
  })
  await group.connect()
  open = group.clients.length
  group.editEveryDoc()
  const until = performance.now() + 60_000
  while ((group.unacked > 0 || group.inFlight > 0) && performance.now() < until) await sleep(20)
  if (group.unacked > 0 || group.inFlight > 0)
    throw new Error(`storm seed: ${group.unacked} docs unacked, ${group.inFlight} edits undelivered`)
  return group.clients.length
}

/** Resolves once every socket of this process saw the relay go. */
export const stormAwaitClosed = () => (open === 0 ? true : new Promise((resolve) => (onAllClosed = () => resolve(true))))

/** This process's CPU time in µs. */
export const stormCpu = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** Reconnects every client at once; resolves when each has all its docs synced again. */
export const stormReconnect = async () => {
  const before = { resyncs: group.counts.resyncs, missing: group.counts.missingDependencies }
  await group.connect({ concurrency: group.clients.length })
  return {
    resyncs: group.counts.resyncs - before.resyncs,
    missingDependencies: group.counts.missingDependencies - before.missing,
    errors: group.errors,
  }
}

/** Closes every socket. */
export const stormClose = () => {
  group?.close()
  group = null
  return true
}
