/**
 * Profiled runs of Concord's relay (`node --cpu-prof`), summarised by
 * component (profile.mjs): what its CPU goes to in each relay case —
 * fan-out, cold load, offline reconnect, capacity and the reconnect storm.
 *
 * The V8 profiler samples the main thread's wall time while it runs, so time
 * the relay spends blocked in a synchronous SQLite commit (the fsync of
 * `synchronous=FULL`) shows up under SQLite even though it is not CPU time.
 * The memory-storage run next to it shows the CPU without storage.
 *
 * @module bench/profiles
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { capacityStep } from './capacity.mjs'
import { FANOUT_CONTENDERS, fanOutOnce } from './fanout.mjs'
import { summarizeProfile } from './profile.mjs'
import { offlineReconnect } from './reconnect.mjs'
import { stormOnce } from './storm.mjs'
import { coldLoad } from './syncCore.mjs'

const profileOf = async (run) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-prof-'))
  try {
    const result = await run(['--cpu-prof', `--cpu-prof-dir=${dir}`])
    // One profile per thread (`CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile`): the relay's main
    // thread is thread 0; the SQLite storage worker's own profile is left out (its fsync waits are not CPU).
    const files = readdirSync(dir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    if (files.length !== 1) throw new Error(`expected one main-thread profile, found ${files.length} in ${readdirSync(dir).join(', ')}`)
    const summary = summarizeProfile(path.join(dir, files[0]), { top: 12 })
    const inclusive = (pattern) => summary.inclusive((f) => pattern.test(`${f.functionName} ${f.url}`)).share
    return {
      result,
      busyMs: summary.busyMs,
      byComponent: summary.byComponent,
      topFunctions: summary.topFunctions,
      inclusive: {
        commit: inclusive(/^commit .*CommitQueue/),
        sqlite: inclusive(/better-sqlite3|^appendUpdates .*SqliteStorage/),
        acks: inclusive(/^(sendAck|markDurable|encodeAck) /),
        applyUpdate: inclusive(/^applyUpdate .*yjs/),
        fanOutSend: inclusive(/^(sendUpdate|handleUpdate) .*(Room|MuxConnection|YwsConnection)/),
        wsSend: inclusive(/^send .*ws\/lib\/websocket/),
        loadDoc: inclusive(/^(loadDoc|load) .*(SqliteStorage|Room)/),
        resume: inclusive(/connections\/ResumeAnswers|^resume .*MuxConnection/),
        awareness: inclusive(/security\/awarenessFilter|y-protocols\/awareness/),
        compression: inclusive(/^(deflateRawSync|inflateRawSync|zlibBufferSync) /),
        upgrades: inclusive(/^handleUpgrade /),
        metrics: inclusive(/prom-client|observability\/metrics/),
        moduleLoading: inclusive(/compileSourceTextModule|compileForInternalLoader|wrapSafe|Module\._compile|loadESM|link/),
      },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Profiles of one fan-out run per configuration, Concord on SQLite and on memory storage. */
export const profileFanOut = async ({ configs, cores, measureMs = 3000, names = ['concord', 'concord-memory'] }) => {
  const out = []
  for (const { rooms, clients } of configs) {
    for (const name of names) {
      const p = await profileOf((execArgv) =>
        fanOutOnce({
          contender: FANOUT_CONTENDERS[name],
          params: { rooms, clients, offeredDeliveries: 10_000, warmupMs: 2000, measureMs, saturationMs: 10, window: 2 },
          cores,
          serverExecArgv: execArgv,
        }),
      )
      out.push({ rooms, clients, name, ...p })
    }
  }
  return out
}

/** Profile of the relay during one offline reconnect with the engine. */
export const profileReconnect = async ({ records, edits, cores }) =>
  profileOf((execArgv) => offlineReconnect({ records, edits, repeats: 1, contenders: ['concord'], cores, serverExecArgv: execArgv }))

/** Profile of a relay serving one cold-load run (start-up, the first open, the warm-up docs and the timed ones). */
export const profileColdLoad = async ({ count, cores }) =>
  profileOf((execArgv) => coldLoad({ counts: [count], repeats: 1, cores, serverExecArgv: execArgv }))

/** Profile of the relay during one capacity step (connecting the clients, the warm-up and the measured windows). */
export const profileCapacity = async ({ clients, cores, windows = 1, warmupMs = 2000, measureMs = 6000 }) =>
  profileOf((execArgv) =>
    capacityStep({
      clients,
      windows,
      warmupMs,
      measureMs,
      editMeanMs: 5000,
      docsPerTeam: 20,
      loadProcesses: 4,
      cores,
      serverExecArgv: execArgv,
    }),
  )

/** Profile of the restarted relay during one reconnect storm (start-up included). */
export const profileStorm = async ({ clients, docsPerTeam, loadProcesses, cores }) =>
  profileOf((execArgv) => stormOnce({ clients, docsPerTeam, loadProcesses, presence: 'viewed', cores, serverExecArgv: execArgv }))
