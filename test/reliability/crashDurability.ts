/**
 * Crash durability: nothing the relay acknowledged is lost when it is killed
 * with SIGKILL, at any moment, again and again.
 *
 * Engine clients ({@link SyncClient}) write uniquely identifiable changes —
 * map entry `w<writer>.<n>` = `n` plus a text insertion, one transaction each
 * — to several docs of a real relay process on SQLite. A change counts as
 * acked only when its doc handle's `ack` event (the relay's durable ack, see
 * docs/PROTOCOL.md) covers the change's clock. Each cycle starts the relay on
 * the same data dir with `--checkpoint-updates` small (the log is compacted
 * into a checkpoint every few commits), lets the writers work, and kills it
 * with SIGKILL, at one of three kinds of moment, chosen by the seed:
 *
 * - `timed`: a random time after `listening` while writes flow (a group
 *   commit is in flight most of the time);
 * - `compaction`: right after the relay logged a compaction (`log compacted
 *   into checkpoint`), plus 0–3 ms (after 1.5 s without one: then, counted
 *   as `timed`), while the next commit and compaction of
 *   the same writes are under way;
 * - `startup`: 0–30 ms after `listening`, while reconnecting clients
 *   resubscribe, rooms load and catch-up updates are committed.
 *
 * Half the writers reach the relay through a proxy that also cuts their
 * connections at random (`faultProxy.ts`); the others through one that only
 * follows the relay to its new port.
 *
 * After every kill, before the restart: the SQLite file is opened read-only
 * (`storedDocs.ts`), `PRAGMA integrity_check` must be `ok` and every change
 * acked so far must be in the doc rebuilt from checkpoint + log. At the end
 * the relay is started once more, the writers flush (every change acked),
 * and the writers, a fresh client, the stored file and a freshly started
 * relay (after a clean SIGTERM) must hold the same state.
 *
 * @module test/reliability/crashDurability
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { SyncClient, type DocHandle } from '@concord/engine'
import { startRelay, type RelayProcess } from '../helpers/relayProcess.js'
import { RELAY_START_TIMEOUT_MS } from './lib/runOptions.js'
import { startFaultProxy, type FaultProxy } from './lib/faultProxy.js'
import { readStoredState, type StoredState } from './lib/storedDocs.js'

/** How big a run is. */
export interface CrashRunOptions {
  seed: number
  /** Kill/restart cycles (the run also stops when `minutes` are up). */
  cycles: number
  /** Stop starting new cycles after this many minutes (0: no limit). */
  minutes: number
  /** Data dir of the relay (empty or from an earlier run of the same writers: doc names are per seed). */
  dataDir: string
  writers?: number
  docs?: number
  /** `--checkpoint-updates` of the relay: compaction every this many logged updates. Default 2. */
  checkpointUpdates?: number
}

/** Kinds of moment the relay is killed at. */
export const KillMoment = { timed: 'timed', compaction: 'compaction', startup: 'startup' } as const
export type KillMoment = (typeof KillMoment)[keyof typeof KillMoment]

/** What a run did and saw. */
export interface CrashRunFigures {
  cycles: number
  kills: Record<KillMoment, number>
  /** Changes made; of them, acked while the relay was being killed (the rest were acked after the last start). */
  changes: number
  ackedDuringKills: number
  /** Kills at which some change had been made but not acked yet (a commit could be in flight). */
  killsWithUnacked: number
  /** Compactions the relay logged over all cycles (fewer than ran: a kill loses the log lines still buffered). */
  compactionsLogged: number
  /** Compactions found committed in the file after the kills: docs whose checkpoint is newer than at the previous kill. */
  compactionsStored: number
  /** Cycles after which the file held at least one newer checkpoint. */
  cyclesWithCompaction: number
  /** Connection cuts made by the flaky proxy. */
  cuts: number
  /** Time from spawn to `listening`, per start, ms. */
  startMs: number[]
  /** Time from the final start until every writer's flush resolved, ms. */
  flushMs: number
}

/** One change a writer made, identifiable in the stored doc. */
interface Change {
  doc: string
  key: string
  value: number
  /** Yjs client id and its clock after the change: acked when the ack's state vector reaches `clock`. */
  client: number
  clock: number
}

/** A client writing to every doc, with the changes it made and which of them are acked. */
class Writer {
  readonly client: SyncClient
  readonly handles: DocHandle[]
  /** Changes not acked yet, per doc. */
  private readonly unacked = new Map<string, Change[]>()
  readonly acked: Change[] = []
  readonly made: Change[] = []
  private next = 0

  constructor(
    readonly id: number,
    url: string,
    docNames: readonly string[],
    random: () => number,
  ) {
    this.client = new SyncClient({ url, WebSocket: WebSocket as never, reconnect: { minDelay: 10, maxDelay: 100, random } })
    this.handles = docNames.map((name) => {
      const handle = this.client.open(name)
      this.unacked.set(name, [])
      handle.on('ack', (acked) => {
        const waiting = this.unacked.get(name)!
        const still = waiting.filter((change) => (acked.get(change.client) ?? 0) < change.clock)
        for (const change of waiting) if (!still.includes(change)) this.acked.push(change)
        this.unacked.set(name, still)
      })
      return handle
    })
  }

  /** Makes one change on `handle`'s doc. */
  write(handle: DocHandle): void {
    const doc = handle.doc
    const value = this.next++
    const key = `w${this.id}.${value}`
    doc.transact(() => {
      doc.getMap('w').set(key, value)
      doc.getText('t').insert(0, `${key} `)
    })
    const change: Change = { doc: handle.name, key, value, client: doc.clientID, clock: Y.getState(doc.store, doc.clientID) }
    this.made.push(change)
    this.unacked.get(handle.name)!.push(change)
  }

  get unackedCount(): number {
    let n = 0
    for (const list of this.unacked.values()) n += list.length
    return n
  }
}

/**
 * Most changes a writer keeps unacked before it waits (skips its turns): in a long run the
 * relay is down or catching up much of the time, and without a bound the backlog grows with
 * every cycle (one long run's final flush took 75 s). Large backlogs do get through (the
 * engine sends them in parts, see `large-backlog.test.ts`), but these writers all insert at
 * position 0 of the same texts, and Yjs integrates such concurrent inserts in time that
 * grows with the square of the backlog, on the relay and on every client alike.
 */
const MAX_UNACKED_PER_WRITER = 500

/** A failed check, with everything needed to replay it. */
export class DurabilityError extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Checks the file a kill left: sound, and holding every acked change. Returns what it read. */
const checkStored = (dataDir: string, writers: readonly Writer[], context: string): StoredState => {
  const stored = readStoredState(dataDir)
  if (stored.integrity !== 'ok') throw new DurabilityError(`${context}: PRAGMA integrity_check: ${stored.integrity}`)
  const lost: string[] = []
  for (const writer of writers) {
    for (const change of writer.acked) {
      const doc = stored.docs.get(change.doc)
      const present =
        doc !== undefined && doc.getMap('w').get(change.key) === change.value && Y.getState(doc.store, change.client) >= change.clock
      if (!present) lost.push(`${change.doc} ${change.key} (client ${change.client} clock ${change.clock})`)
    }
  }
  if (lost.length > 0)
    throw new DurabilityError(`${context}: ${lost.length} acked changes missing from the stored file: ${lost.slice(0, 5).join(', ')}`)
  return stored
}

/** Content and state vector of a doc, for comparing replicas. */
const fingerprint = (doc: Y.Doc): string =>
  JSON.stringify({
    sv: [...Y.decodeStateVector(Y.encodeStateVector(doc))].sort((a, b) => a[0] - b[0]),
    w: Object.entries(doc.getMap('w').toJSON()).sort(([a], [b]) => (a < b ? -1 : 1)),
    t: doc.getText('t').toString(),
  })

/** Runs the suite; throws {@link DurabilityError} (naming the seed and cycle) on the first lost acked change or unsound file. */
export const runCrashDurability = async (options: CrashRunOptions): Promise<CrashRunFigures> => {
  const gen = prng.create(options.seed)
  const random = (): number => prng.real53(gen)
  const between = (min: number, max: number): number => min + random() * (max - min)
  const docNames = Array.from({ length: options.docs ?? 6 }, (_, i) => `crash-${options.seed}/d${i}`)
  const relayArgs = ['--checkpoint-updates', String(options.checkpointUpdates ?? 2), '--log-level', 'debug']
  const steadyProxy = await startFaultProxy(random)
  const flakyProxy = await startFaultProxy(random)
  const proxies: FaultProxy[] = [steadyProxy, flakyProxy]
  const writerCount = options.writers ?? 4
  const writers = Array.from(
    { length: writerCount },
    (_, i) => new Writer(i, (i % 2 === 0 ? steadyProxy : flakyProxy).wsUrl, docNames, random),
  )
  const figures: CrashRunFigures = {
    cycles: 0,
    kills: { timed: 0, compaction: 0, startup: 0 },
    changes: 0,
    ackedDuringKills: 0,
    killsWithUnacked: 0,
    compactionsLogged: 0,
    compactionsStored: 0,
    cyclesWithCompaction: 0,
    cuts: 0,
    startMs: [],
    flushMs: 0,
  }
  let relay: RelayProcess | null = null
  /** Counts the relay's compaction log lines; `onCompaction` is called for each. */
  let onCompaction: (() => void) | null = null
  const start = async (): Promise<RelayProcess> => {
    const started = performance.now()
    const process = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: options.dataDir, args: relayArgs })
    figures.startMs.push(performance.now() - started)
    process.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = chunk.toString().split('log compacted into checkpoint').length - 1
      figures.compactionsLogged += lines
      if (lines > 0) onCompaction?.()
    })
    for (const proxy of proxies) proxy.retarget(process.wsUrl)
    return process
  }
  /**
   * Writes at random (1–3 changes every 0–4 ms, random writers and docs) until `done()`; the flaky proxy cuts now and then.
   * A writer with {@link MAX_UNACKED_PER_WRITER} changes not acked yet skips its turn.
   */
  const writeUntil = async (done: () => boolean): Promise<void> => {
    while (!done()) {
      for (let n = prng.uint32(gen, 1, 3); n > 0; n--) {
        const writer = writers[prng.uint32(gen, 0, writers.length - 1)]
        const handle = writer.handles[prng.uint32(gen, 0, writer.handles.length - 1)]
        if (writer.unackedCount < MAX_UNACKED_PER_WRITER) writer.write(handle)
      }
      if (random() < 0.01) flakyProxy.cut()
      await sleep(between(0, 4)) // paces the load: commits, compactions and kills land between writes
    }
  }
  const deadline = options.minutes > 0 ? Date.now() + options.minutes * 60_000 : Infinity
  /** Checkpoint stamps of the file at the previous kill. */
  let checkpointStamps = new Map<string, number>()
  try {
    for (let cycle = 0; cycle < options.cycles && Date.now() < deadline; cycle++) {
      const context = `seed ${options.seed}, cycle ${cycle}`
      relay = await start()
      const planned = ([KillMoment.timed, KillMoment.compaction, KillMoment.startup] as const)[prng.uint32(gen, 0, 2)]
      /** What the kill's moment turned out to be: a planned compaction kill with no compaction in time is a timed one. */
      let moment: KillMoment = planned === KillMoment.compaction ? KillMoment.timed : planned
      let until: number
      if (planned === KillMoment.startup) {
        until = performance.now() + between(0, 30)
      } else if (planned === KillMoment.timed) {
        until = performance.now() + between(50, 500)
      } else {
        // Right after a compaction (the writes keep coming, so the next commit and compaction are under way);
        // a relay that logs none in 1.5 s is killed then.
        until = performance.now() + 1_500
        onCompaction = () => {
          onCompaction = null
          moment = KillMoment.compaction
          until = Math.min(until, performance.now() + between(0, 3))
        }
      }
      await writeUntil(() => performance.now() >= until)
      onCompaction = null
      if (writers.some((w) => w.unackedCount > 0)) figures.killsWithUnacked++
      await relay.kill()
      relay = null
      figures.kills[moment]++
      figures.cycles++
      const stored = checkStored(options.dataDir, writers, `${context} (killed at a ${moment} moment)`)
      let compacted = 0
      for (const [doc, stamp] of stored.checkpointStamps) if (checkpointStamps.get(doc) !== stamp) compacted++
      checkpointStamps = stored.checkpointStamps
      figures.compactionsStored += compacted
      if (compacted > 0) figures.cyclesWithCompaction++
    }

    // The end: a last start, every writer's changes acked, every replica the same.
    figures.ackedDuringKills = writers.reduce((n, w) => n + w.acked.length, 0)
    relay = await start()
    const flushStarted = performance.now()
    await Promise.all(writers.map((w) => w.client.flush()))
    figures.flushMs = performance.now() - flushStarted
    const context = `seed ${options.seed}, after ${figures.cycles} cycles`
    for (const writer of writers) {
      if (writer.unackedCount > 0)
        throw new DurabilityError(`${context}: writer ${writer.id} has ${writer.unackedCount} unacked changes after flush`)
    }
    const fresh = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never })
    const freshHandles = docNames.map((name) => fresh.open(name))
    await Promise.all(freshHandles.map((h) => h.synced))
    const expected = new Map(freshHandles.map((h) => [h.name, fingerprint(h.doc)]))
    fresh.close()
    // Every change ever made (acked or not before) is in the relay's doc.
    for (const writer of writers) {
      for (const change of writer.made) {
        const doc = freshHandles.find((h) => h.name === change.doc)!.doc
        if (doc.getMap('w').get(change.key) !== change.value)
          throw new DurabilityError(`${context}: ${change.doc} ${change.key} never reached the relay`)
      }
    }
    const compare = (who: string, name: string, doc: Y.Doc): void => {
      if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null)
        throw new DurabilityError(`${context}: ${who} has pending structs in ${name}`)
      if (fingerprint(doc) !== expected.get(name)) throw new DurabilityError(`${context}: ${who} differs from a fresh client in ${name}`)
    }
    // The writers have everything the relay has once their handles caught up (all edits went through the relay).
    await Promise.all(writers.flatMap((w) => w.handles.map((h) => h.synced)))
    for (const writer of writers) {
      await Promise.all(writer.handles.map((h) => waitForFingerprint(h.doc, expected.get(h.name)!)))
      for (const handle of writer.handles) compare(`writer ${writer.id}`, handle.name, handle.doc)
    }
    await relay.stop()
    relay = null
    const stored = readStoredState(options.dataDir)
    if (stored.integrity !== 'ok') throw new DurabilityError(`${context}: integrity_check after SIGTERM: ${stored.integrity}`)
    for (const name of docNames) compare('the stored file', name, stored.docs.get(name) ?? new Y.Doc())
    // A relay started afresh on the same data serves the same state.
    for (const writer of writers) writer.client.close()
    relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: options.dataDir, args: relayArgs })
    const last = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never })
    const lastHandles = docNames.map((name) => last.open(name))
    await Promise.all(lastHandles.map((h) => h.synced))
    for (const handle of lastHandles) compare('a fresh client of a restarted relay', handle.name, handle.doc)
    last.close()
    figures.changes = writers.reduce((n, w) => n + w.made.length, 0)
    figures.cuts = flakyProxy.stats.cuts
    return figures
  } finally {
    for (const writer of writers) writer.client.close()
    await relay?.stop()
    for (const proxy of proxies) await proxy.close()
  }
}

/** Resolves once `doc`'s fingerprint is `expected` (checked on every update), or after 10 s (the caller then reports the difference). */
const waitForFingerprint = (doc: Y.Doc, expected: string): Promise<void> =>
  new Promise((resolve) => {
    if (fingerprint(doc) === expected) return resolve()
    const timer = setTimeout(done, 10_000)
    function done(): void {
      clearTimeout(timer)
      doc.off('update', check)
      resolve()
    }
    function check(): void {
      if (fingerprint(doc) === expected) done()
    }
    doc.on('update', check)
  })
