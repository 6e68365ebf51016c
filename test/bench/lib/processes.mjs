/**
 * Child processes for the benchmarks: every server and every load generator
 * runs in its own process, optionally pinned to one core with `taskset`, and
 * talks to the orchestrator over IPC with a tiny request/response protocol.
 *
 * @example
 *   const server = await startChild(SERVER_HOST, [JSON.stringify({ kind: 'floor' })], { core: 0 })
 *   const { userMicros } = await server.call('cpu')
 *   await server.stop()
 *
 * @module bench/lib/processes
 */
import { execFileSync, fork } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { withTimeout } from './stats.mjs'

let tasksetPath
/** True when `taskset` exists and the machine has at least two cores. */
export const canPin = () => {
  if (tasksetPath === undefined) {
    try {
      tasksetPath = execFileSync('which', ['taskset'], { encoding: 'utf8' }).trim() || null
    } catch {
      tasksetPath = null
    }
  }
  return tasksetPath !== null && os.cpus().length >= 2
}

/** Pins every thread of process `pid` (and threads it creates later) to `core`. */
export const pinProcess = (pid, core) => {
  if (!canPin()) return false
  execFileSync(tasksetPath, ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' })
  return true
}

/**
 * Scheduling priority (nice value) of the benchmark's processes on a shared
 * machine. With Linux's autogroup scheduling, nice values only count within a
 * session, so run.mjs starts itself in a new session (`setsid`) and gives that
 * session's group this nice value ({@link prioritizeSession}); every
 * contender inherits the same priority. Needs root; otherwise it stays at 0.
 */
export const BENCH_NICE = -15

/** Gives this process's scheduling group (autogroup) the benchmark priority; false when not possible. */
export const prioritizeSession = (nice = BENCH_NICE) => {
  try {
    writeFileSync('/proc/self/autogroup', String(nice))
    return readFileSync('/proc/self/autogroup', 'utf8').includes(`nice ${nice}`)
  } catch {
    return false
  }
}

/** Command prefix that starts a program pinned to `core` (empty when pinning is off). */
export const pinnedCommand = (core) => (core === null || core === undefined || !canPin() ? [] : [tasksetPath, '-c', String(core)])

/**
 * Request/response over a process IPC channel. Both sides register handlers
 * with `handle(name, fn)` and call the other side with `call(name, ...args)`.
 */
export const connectRpc = (endpoint) => {
  let nextId = 0
  const waiting = new Map()
  const handlers = new Map()
  const onMessage = async (message) => {
    if (message === null || typeof message !== 'object' || !('rpc' in message)) return
    if (message.rpc === 'res') {
      const w = waiting.get(message.id)
      if (!w) return
      waiting.delete(message.id)
      if (message.error) w.reject(new Error(message.error))
      else w.resolve(message.result)
      return
    }
    const handler = handlers.get(message.method)
    try {
      if (!handler) throw new Error(`no handler for "${message.method}"`)
      const result = await handler(...message.args)
      endpoint.send({ rpc: 'res', id: message.id, result })
    } catch (error) {
      endpoint.send({ rpc: 'res', id: message.id, error: error instanceof Error ? error.stack : String(error) })
    }
  }
  endpoint.on('message', onMessage)
  return {
    call: (method, ...args) =>
      new Promise((resolve, reject) => {
        const id = ++nextId
        waiting.set(id, { resolve, reject })
        endpoint.send({ rpc: 'req', id, method, args }, (error) => {
          if (error) {
            waiting.delete(id)
            reject(error)
          }
        })
      }),
    handle: (method, fn) => handlers.set(method, fn),
    failAll: (error) => {
      for (const w of waiting.values()) w.reject(error)
      waiting.clear()
    },
    detach: () => endpoint.off('message', onMessage),
  }
}

/**
 * Forks `script` with `--expose-gc`, pins it to `core` (when given and
 * possible) and resolves once it sent `{ ready: info }`.
 *
 * @returns {Promise<{ child, info, call, handle, stop }>}
 */
export const startChild = async (script, args = [], { core = null, execArgv = [], startTimeoutMs = 30_000 } = {}) => {
  const child = fork(script, args, {
    execArgv: ['--expose-gc', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  if (core !== null) pinProcess(child.pid, core)
  const rpc = connectRpc(child)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  exited.then(({ code, signal }) => rpc.failAll(new Error(`${script} exited (code ${code}, signal ${signal})`)))
  const info = await withTimeout(
    new Promise((resolve, reject) => {
      child.once('error', reject)
      exited.then(({ code }) => reject(new Error(`${script} exited with code ${code} before it was ready`)))
      const onReady = (message) => {
        if (message && typeof message === 'object' && 'ready' in message) {
          child.off('message', onReady)
          resolve(message.ready)
        }
      }
      child.on('message', onReady)
    }),
    startTimeoutMs,
    `starting ${script}`,
  )
  // threads created during start-up follow the main thread; pin once more to be sure
  if (core !== null) pinProcess(child.pid, core)
  let stopping
  const stop = (timeoutMs = 15_000) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      rpc.call('stop').catch(() => {})
      await exited
      clearTimeout(timer)
    })()
    return stopping
  }
  return { child, info, call: rpc.call, handle: rpc.handle, stop }
}

/**
 * A fixed piece of CPU work (integer arithmetic over a 4 MiB array, read and
 * written in a scattered order, so that caches and memory count as well as
 * the core), timed: the quickest of `rounds` runs, in ms. On a shared virtual
 * machine the same work takes longer while other tenants load the host,
 * which neither a process's own CPU time nor its run-queue wait shows (this
 * hypervisor reports no steal time); comparing probes taken on the same core
 * tells a slowed run from a quiet one.
 */
export const cpuProbe = (rounds = 5) => {
  probeData ??= new Int32Array(1 << 20)
  const mask = probeData.length - 1
  let quickest = Infinity
  let x = 1
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    for (let i = 0; i < 1_000_000; i++) {
      const j = Math.imul(i, 7919) & mask
      x = (Math.imul(x, 1664525) + probeData[j] + 1013904223) | 0
      probeData[j] = x
    }
    quickest = Math.min(quickest, performance.now() - t0)
  }
  return quickest
}
/** The probe's array (made at its first use), which also keeps its loop from being optimised away. */
let probeData = null

/**
 * The child side: registers `handlers` (plus `probe`, see {@link cpuProbe},
 * and `stop`, which runs `onStop` and exits) and tells the parent it is
 * ready with `info`.
 */
export const serveParent = (info, handlers, onStop = async () => {}) => {
  const rpc = connectRpc(process)
  rpc.handle('probe', () => cpuProbe())
  for (const [name, fn] of Object.entries(handlers)) rpc.handle(name, fn)
  rpc.handle('stop', async () => {
    await onStop()
    setImmediate(() => process.exit(0))
    return true
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: info })
  return rpc
}

/**
 * How long this process's main thread has been delayed by *other* processes,
 * in microseconds, or null where /proc is unavailable: its run-queue wait
 * (runnable, not running; /proc/self/task/<tid>/schedstat) minus the time the
 * process's own other threads (V8's GC and compiler helpers) ran, since on a
 * pinned core those are what the main thread waits for first.
 */
export const delayByOthersMicros = () => {
  try {
    let mainWait = 0
    let othersRun = 0
    for (const tid of readdirSync('/proc/self/task')) {
      let fields
      try {
        fields = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')
      } catch {
        continue // the thread just ended
      }
      if (Number(tid) === process.pid) mainWait = Number(fields[1]) / 1000
      else othersRun += Number(fields[0]) / 1000
    }
    return mainWait - othersRun
  } catch {
    return null
  }
}

/** Heap figures after forced garbage collection (needs `--expose-gc`). */
export const settledHeap = async () => {
  for (let i = 0; i < 4; i++) {
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss }
}
