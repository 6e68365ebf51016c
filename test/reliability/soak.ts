/**
 * Soak: a real relay process on SQLite under steady, mixed use for many
 * minutes, its memory sampled over time; memory that keeps growing once the
 * relay is warm is a leak.
 *
 * The use, all by engine {@link SyncClient}s on loopback, every choice from
 * one seeded `lib0/prng` generator:
 *
 * - **steady editors**: three clients that stay connected and edit a few
 *   hot docs all the time (a word inserted into the text, a range deleted
 *   once it is long; one of 50 map keys overwritten). A Yjs doc keeps an
 *   item for every edit, deleted or overwritten ones too, so a doc edited
 *   without end grows without end; the hot docs are therefore replaced by
 *   new ones every {@link HOT_GENERATION_MS} (every client flushes and closes
 *   the old ones, which the relay then unloads): what the relay holds for
 *   them stays bounded, and growth left over is the relay's own;
 * - **reconnecting clients**: two clients that edit the hot docs too and
 *   drop their connection every few seconds (`reconnect()`), and one that is
 *   closed and replaced by a new client (new Yjs client id) every few seconds;
 * - **room churn**: a client that keeps opening docs — one of a pool of
 *   cold docs, or a brand-new one — writes one entry, waits for its ack and
 *   closes it; the relay unloads idle rooms after `--idle-unload-ms 1000`,
 *   so rooms are loaded from and unloaded to SQLite all the time.
 *
 * Before the use, 24 MB are written in docs of their own, so the relay's
 * SQLite page cache (16 MB, `--sqlite-cache-mb`) is full from the start
 * ({@link fillPageCache}).
 *
 * Every `sampleMs` the relay's V8 heap after full garbage collections
 * (asked for through its inspector: the relay runs with
 * `--inspect=127.0.0.1:0`, `lib/relayInspector.ts`), then its resident set
 * (`VmRSS` from `/proc/PID/status`) are recorded with the rooms open. The verdict fits a
 * least-squares line to the **lowest sample of each minute** after the
 * warm-up (the first 20 % of the run) and reports its slope as growth per
 * hour: the hot docs grow for a minute before they are replaced, and the
 * resident set has spikes (buffers, allocator slack), so a leak shows in the
 * floor a minute reaches, not in single samples.
 *
 * At the end the use stops, every client flushes (all its changes acked) and a
 * fresh client must read every hot doc exactly as the steady editors hold it.
 *
 * @module test/reliability/soak
 */
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { SyncClient, type DocHandle } from '@concord/engine'
import { startRelay, type RelayProcess } from '../helpers/relayProcess.js'
import { RelayInspector } from './lib/relayInspector.js'
import { RELAY_START_TIMEOUT_MS } from './lib/runOptions.js'

/** How long and how a soak runs. */
export interface SoakOptions {
  seed: number
  /** Length of the use, minutes (may be fractional). */
  minutes: number
  /** Time between memory samples, ms. */
  sampleMs: number
  dataDir: string
  /** Called with each sample as it is taken (the samples so far survive a failure). */
  onSample?: (sample: SoakSample) => void
}

/** One memory sample of the relay. */
export interface SoakSample {
  /** Seconds since the use started. */
  t: number
  rssBytes: number
  /** The main thread's V8 heap after full garbage collections. */
  heapUsedBytes: number
  roomsOpen: number
  /** Edits made by all clients so far. */
  edits: number
}

/** A least-squares line through (seconds, bytes) points. */
export interface Trend {
  /** Growth, bytes per hour. */
  perHour: number
  /** Points it was fitted to (one per minute after the warm-up: each minute's lowest sample). */
  samples: number
}

/** What a soak did and saw. */
export interface SoakFigures {
  samples: SoakSample[]
  /** The trends after the warm-up. */
  rss: Trend
  heap: Trend
  edits: number
  reconnects: number
  clientsReplaced: number
  docsChurned: number
  newDocs: number
  /** Seconds from stopping the use to every client acked. */
  finalFlushSeconds: number
}

/** The share of the run left out of the trend: caches, JIT and pools fill up first. */
export const WARM_UP_SHARE = 0.2
const HOT_DOCS = 4
/** How long a set of hot docs is edited before new ones replace it, ms. */
const HOT_GENERATION_MS = 60_000
/** The trend is fitted to the lowest sample of each window this long: one generation of hot docs. */
const TREND_WINDOW_SECONDS = HOT_GENERATION_MS / 1000
const COLD_DOCS = 300
/** The relay's SQLite page cache, MiB (`--sqlite-cache-mb`, its default). */
const SQLITE_CACHE_MB = 16
/** Bytes written before the use to fill the page cache (see {@link fillPageCache}): half again its size. */
const FILL_BYTES = SQLITE_CACHE_MB * 1024 * 1024 * 1.5
const FILL_DOC_BYTES = 64 * 1024
const MAP_KEYS = 50
/** Text longer than this gets a range deleted, so hot docs stay bounded. */
const MAX_TEXT = 2_000

/**
 * The lowest value of each whole `windowSeconds` window (by time, from the
 * first sample's), at the window's lowest sample's time: the floor a
 * sawtooth reaches, to fit a trend to. Windows without samples, and a last
 * window the samples end in before it is over (its floor is not reached
 * yet), are left out.
 */
export const windowMinima = (
  times: readonly number[],
  values: readonly number[],
  windowSeconds: number,
): { times: number[]; values: number[] } => {
  const lowest = new Map<number, number>()
  const whole = Math.floor((times.at(-1)! - times[0]) / windowSeconds)
  for (let i = 0; i < times.length; i++) {
    const window = Math.floor((times[i] - times[0]) / windowSeconds)
    if (window >= whole) break
    const at = lowest.get(window)
    if (at === undefined || values[i] < values[at]) lowest.set(window, i)
  }
  const picked = [...lowest.values()].sort((a, b) => a - b)
  return { times: picked.map((i) => times[i]), values: picked.map((i) => values[i]) }
}

/** Fits a least-squares line to `values` over `times` (seconds). */
export const fitTrend = (times: readonly number[], values: readonly number[]): Trend => {
  const n = times.length
  const meanT = times.reduce((a, b) => a + b, 0) / n
  const meanV = values.reduce((a, b) => a + b, 0) / n
  let covariance = 0
  let variance = 0
  for (let i = 0; i < n; i++) {
    covariance += (times[i] - meanT) * (values[i] - meanV)
    variance += (times[i] - meanT) ** 2
  }
  return { perHour: variance === 0 ? 0 : (covariance / variance) * 3600, samples: n }
}

/** The relay's resident set, bytes (`VmRSS` of `/proc/PID/status`). */
const residentBytes = (pid: number): number => {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`)
  return Number(kb) * 1024
}

/** A metric's value from the relay's `/metrics` text. */
const metric = (text: string, name: string): number => {
  const value = new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text)?.[1]
  if (value === undefined) throw new Error(`the relay's /metrics has no ${name}`)
  return Number(value)
}

const sampleRelay = async (relay: RelayProcess, inspector: RelayInspector, t: number, edits: number): Promise<SoakSample> => {
  if (relay.child.exitCode !== null || relay.child.signalCode !== null)
    throw new Error(`the relay exited (${relay.child.exitCode ?? relay.child.signalCode}):\n${relay.output().slice(-4000)}`)
  const heap = await inspector.heapAfterGc()
  // A connection of its own each time: a kept-alive one may be closed by the relay just as it is reused.
  const text = await (await fetch(`${relay.url}/metrics`, { headers: { connection: 'close' } })).text()
  return {
    t,
    rssBytes: residentBytes(relay.child.pid!),
    heapUsedBytes: heap.usedBytes,
    roomsOpen: metric(text, 'concord_rooms_open'),
    edits,
  }
}

/**
 * Writes {@link FILL_BYTES} in docs of their own (`prefix`-0, -1, …) through
 * `client`, each acked before the next: SQLite keeps the pages a connection
 * wrote in its page cache, so afterwards the cache is at its size and stays
 * there. Without this it fills during the run, at the pace the database
 * grows — tens of MB an hour at the soak's rate of edits, which is memory
 * the relay was configured to use, not a leak.
 */
const fillPageCache = async (client: SyncClient, prefix: string, gen: prng.PRNG): Promise<void> => {
  for (let i = 0, written = 0; written < FILL_BYTES; i++, written += FILL_DOC_BYTES) {
    const name = `${prefix}-${i}`
    const handle = client.open(name)
    handle.doc.getText('body').insert(0, prng.word(gen, FILL_DOC_BYTES, FILL_DOC_BYTES))
    await client.flush(name)
    client.closeDoc(name)
  }
}

/** Resolves after `ms`: the pace of the use (the soak is a load over time, not a test of timing). */
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs the soak against a relay it starts on `dataDir`; stops it at the end. */
export const runSoak = async (options: SoakOptions): Promise<SoakFigures> => {
  const gen = prng.create(options.seed)
  const relay = await startRelay({
    dataDir: options.dataDir,
    startTimeoutMs: RELAY_START_TIMEOUT_MS,
    args: ['--idle-unload-ms', '1000', '--sqlite-cache-mb', String(SQLITE_CACHE_MB)],
    nodeArgs: ['--inspect=127.0.0.1:0'],
  })
  const inspector = await RelayInspector.connect(relay.output())
  const newClient = (): SyncClient =>
    new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, reconnect: { minDelay: 10, maxDelay: 200 } })
  let generation = 0
  const hotNamesOf = (g: number): string[] => Array.from({ length: HOT_DOCS }, (_, i) => `soak-${options.seed}/hot-${g}-${i}`)
  let hotNames = hotNamesOf(0)
  const counts = { edits: 0, reconnects: 0, clientsReplaced: 0, docsChurned: 0, newDocs: 0 }
  const steady = Array.from({ length: 3 }, newClient)
  const reconnecting = Array.from({ length: 2 }, newClient)
  const replaced = { client: newClient() }
  const churner = newClient()
  const everyClient = (): SyncClient[] => [...steady, ...reconnecting, replaced.client, churner]
  let running = true

  /** One edit of a hot doc through `client`. */
  const edit = (client: SyncClient): void => {
    const name = prng.oneOf(gen, hotNames)
    const handle: DocHandle = client.get(name) ?? client.open(name)
    const text = handle.doc.getText('body')
    handle.doc.transact(() => {
      if (text.length > MAX_TEXT) text.delete(prng.uint32(gen, 0, text.length - 200), 200)
      text.insert(prng.uint32(gen, 0, text.length), `${prng.word(gen, 1, 8)} `)
      handle.doc.getMap('m').set(`k${prng.uint32(gen, 0, MAP_KEYS - 1)}`, counts.edits)
    })
    counts.edits++
  }

  const editLoop = async (clients: () => SyncClient[]): Promise<void> => {
    while (running) {
      for (const client of clients()) edit(client)
      await pause(prng.uint32(gen, 10, 40))
    }
  }
  const reconnectLoop = async (): Promise<void> => {
    while (running) {
      await pause(prng.uint32(gen, 1_000, 5_000))
      if (!running) return
      prng.oneOf(gen, reconnecting).reconnect()
      counts.reconnects++
    }
  }
  const replaceLoop = async (): Promise<void> => {
    while (running) {
      await pause(prng.uint32(gen, 2_000, 8_000))
      if (!running) return
      const old = replaced.client
      await old.flush()
      replaced.client = newClient()
      old.close()
      counts.clientsReplaced++
    }
  }
  /** Moves the editing to new hot docs every {@link HOT_GENERATION_MS}; every client flushes and closes the old ones. */
  const generationLoop = async (): Promise<void> => {
    while (running) {
      await pause(HOT_GENERATION_MS)
      if (!running) return
      const old = hotNames
      hotNames = hotNamesOf(++generation)
      for (const client of everyClient())
        for (const name of old) {
          if (client.isClosed || client.get(name) === undefined) continue
          try {
            await client.flush(name)
          } catch (error) {
            if (client.isClosed) continue // replaced meanwhile
            throw error
          }
          client.closeDoc(name)
        }
    }
  }
  const churnLoop = async (): Promise<void> => {
    while (running) {
      const name = prng.bool(gen)
        ? `soak-${options.seed}/cold-${prng.uint32(gen, 0, COLD_DOCS - 1)}`
        : `soak-${options.seed}/new-${counts.newDocs++}`
      const handle = churner.open(name)
      handle.doc.getMap('m').set(`churn-${counts.docsChurned}`, counts.docsChurned)
      await churner.flush(name)
      churner.closeDoc(name)
      counts.docsChurned++
      await pause(prng.uint32(gen, 20, 200))
    }
  }

  await fillPageCache(churner, `soak-${options.seed}/fill`, gen)
  const started = performance.now()
  const seconds = (): number => (performance.now() - started) / 1000
  const samples: SoakSample[] = [await sampleRelay(relay, inspector, 0, 0)]
  const loops = [
    editLoop(() => steady),
    editLoop(() => [...reconnecting, replaced.client]),
    reconnectLoop(),
    replaceLoop(),
    churnLoop(),
    generationLoop(),
  ]
  try {
    const end = started + options.minutes * 60_000
    while (performance.now() < end) {
      await pause(Math.min(options.sampleMs, Math.max(0, end - performance.now())))
      const sample = await sampleRelay(relay, inspector, seconds(), counts.edits)
      samples.push(sample)
      options.onSample?.(sample)
    }
    running = false
    await Promise.all(loops)
    const flushStarted = performance.now()
    await Promise.all(everyClient().map((client) => client.flush()))
    const finalFlushSeconds = (performance.now() - flushStarted) / 1000
    await checkConverged(relay, steady[0], hotNames)
    const afterWarmUp = samples.filter((sample) => sample.t >= options.minutes * 60 * WARM_UP_SHARE)
    const times = afterWarmUp.map((sample) => sample.t)
    const floorTrend = (values: number[]): Trend => {
      const floor = windowMinima(times, values, TREND_WINDOW_SECONDS)
      return fitTrend(floor.times, floor.values)
    }
    return {
      samples,
      rss: floorTrend(afterWarmUp.map((sample) => sample.rssBytes)),
      heap: floorTrend(afterWarmUp.map((sample) => sample.heapUsedBytes)),
      ...counts,
      finalFlushSeconds,
    }
  } finally {
    running = false
    for (const client of everyClient()) client.close()
    inspector.close()
    await relay.stop()
  }
}

/**
 * Resolves once `a` and `b` hold the same snapshot (state vector and delete
 * set: a deletion alone does not move the state vector), checking on each
 * update of either; rejects after `timeoutMs`.
 */
const sameState = (a: Y.Doc, b: Y.Doc, what: string, timeoutMs: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const equal = (): boolean => Y.equalSnapshots(Y.snapshot(a), Y.snapshot(b))
    const done = (error?: Error): void => {
      clearTimeout(timer)
      a.off('update', check)
      b.off('update', check)
      if (error === undefined) resolve()
      else reject(error)
    }
    const check = (): void => {
      if (equal()) done()
    }
    const timer = setTimeout(() => done(new Error(`${what}: not the same state after ${timeoutMs / 1000} s`)), timeoutMs)
    a.on('update', check)
    b.on('update', check)
    check()
  })

/** A fresh client must read every hot doc as `editor` holds it (snapshot, text and map) once the editor has caught up. */
const checkConverged = async (relay: RelayProcess, editor: SyncClient, hotNames: readonly string[]): Promise<void> => {
  const reader = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never })
  try {
    for (const name of hotNames) {
      const fresh = reader.open(name)
      await fresh.synced
      const held = (editor.get(name) ?? editor.open(name)).doc
      await sameState(held, fresh.doc, name, 30_000)
      const text = (doc: Y.Doc): string => doc.getText('body').toString()
      // Sorted: each replica lists map keys in the order it first saw them.
      const map = (doc: Y.Doc): string => JSON.stringify(Object.entries(doc.getMap('m').toJSON()).sort(([a], [b]) => (a < b ? -1 : 1)))
      if (text(fresh.doc) !== text(held) || map(fresh.doc) !== map(held))
        throw new Error(`${name}: a fresh client reads a different text or map than the editors hold`)
    }
  } finally {
    reader.close()
  }
}
