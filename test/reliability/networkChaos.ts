/**
 * Convergence under network chaos: whatever the network and relay restarts
 * do while clients edit, once the network heals every replica is the same.
 *
 * One real relay process (SQLite) and, for a whole run, five engine clients,
 * each behind its own fault-injecting proxy (`lib/faultProxy.ts`: delays and
 * cuts within a connection, partitions, old update frames replayed on later
 * connections — duplicated, reordered, ahead of their dependencies):
 *
 * - three {@link SyncClient}s editing a plain doc (text inserts and deletes,
 *   map sets);
 * - two tabs of one user: {@link RecordStore}s with tab sharing on
 *   (BroadcastChannel, one fake-indexeddb), each with its own connection,
 *   editing one ticket record (text, enum and list fields).
 *
 * A run is a series of small **schedules**, each with its own seed (drawn
 * from the run's seed) and its own two docs: 8–20 random steps of edits,
 * cuts, partitions, heals, delays, reconnects and — in some schedules — a
 * relay restart (SIGKILL or SIGTERM, then a start on the same data). Then
 * everything heals, and the schedule waits until every handle's `pending`
 * is 0, it is synced, and all replicas of a doc have equal Yjs snapshots
 * (state vector and delete set: equal snapshots of the same history are
 * equal content); the time from healing to that is the schedule's
 * convergence time. A fresh client then reads both docs from the relay (the
 * room's state) and must hold the same snapshot, with no pending structs
 * anywhere. When the clients changed a doc meanwhile (the engine writes a
 * typing burst's history entry once typing pauses, after the schedule's
 * last edit), the schedule waits for convergence again and reads again. A schedule that does not converge in 15 s, or whose fresh read
 * differs, is a divergence: the run throws, naming the run's seed and the
 * schedule's seed, which `runChaosSchedules({ scheduleSeeds: [seed] })`
 * replays on its own.
 *
 * Seeds make every choice; the timing of real sockets and processes is not
 * seeded, so a replay repeats the schedule, not necessarily each interleaving.
 *
 * @module test/reliability/networkChaos
 */
import { IDBFactory } from 'fake-indexeddb'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { RecordStore, SyncClient, type DocHandle, type RecordHandle } from '@concord/engine'
import { appSchemas } from '../../apps/web/src/lib/schemas.js'
import { startRelay } from '../helpers/relayProcess.js'
import { RELAY_START_TIMEOUT_MS } from './lib/runOptions.js'
import { startFaultProxy, type FaultProxy } from './lib/faultProxy.js'

/** How big a run is. */
export interface ChaosRunOptions {
  /** Seed of the run; the schedules' seeds are drawn from it. */
  seed: number
  /** Number of schedules (the run also stops when `minutes` are up). */
  schedules: number
  /** Stop starting new schedules after this many minutes (0: no limit). */
  minutes: number
  dataDir: string
  /** Run exactly these schedule seeds instead of drawing them (to replay a failure). */
  scheduleSeeds?: readonly number[]
  /** Chance that a schedule restarts the relay. Default 0.04. */
  restartChance?: number
  /** Whether the clients resume their docs together after a reconnect (`SyncClientOptions.resume`). Default true, as in the engine. */
  resume?: boolean
}

/** What a run did and saw. */
export interface ChaosRunFigures {
  schedules: number
  /** Time from healing to convergence, per schedule, ms. */
  convergeMs: number[]
  edits: number
  cuts: number
  partitions: number
  replayed: number
  restarts: number
  /** Errors the clients reported, by code (e.g. `missing-dependencies` after a replayed frame). */
  errors: Record<string, number>
  /** Schedules whose clients changed a doc between converging and the relay's read (the engine's own later writes), read again. */
  changedAfterConverging: number
}

/** A schedule that did not converge, or converged to something other than the relay's state. */
export class DivergenceError extends Error {}

/** Largest time a schedule may take to converge after healing. */
const CONVERGE_TIMEOUT_MS = 15_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether two docs hold the same state: equal state vectors and delete sets. */
const sameState = (a: Y.Doc, b: Y.Doc): boolean => Y.equalSnapshots(Y.snapshot(a), Y.snapshot(b))

const hasPendingStructs = (doc: Y.Doc): boolean => doc.store.pendingStructs !== null || doc.store.pendingDs !== null

const TICKET_STATUSES = ['open', 'in_progress', 'done', 'cancelled'] as const
const TICKET_PRIORITIES = ['none', 'low', 'medium', 'high', 'urgent'] as const
const RELAY_ARGS = ['--checkpoint-updates', '20']

/** How two replicas' snapshots differ, for a divergence's message: both state vectors, and whether the delete sets are equal. */
const describeDifference = (relay: Y.Doc, client: Y.Doc): string => {
  const sv = (doc: Y.Doc): string => JSON.stringify([...Y.decodeStateVector(Y.encodeStateVector(doc))])
  const ds = (doc: Y.Doc): string =>
    JSON.stringify([...Y.snapshot(doc).ds.clients].map(([c, items]) => [c, items.map((i) => [i.clock, i.len])]))
  return `relay state vector ${sv(relay)}, client's ${sv(client)}; delete sets ${ds(relay) === ds(client) ? 'equal' : `relay ${ds(relay)}, client's ${ds(client)}`}`
}

/** What a handle knows, for a divergence's message. */
const describeHandle = (h: DocHandle): string =>
  `"${h.name}" pending ${h.pending}, synced ${h.isSynced}, sends live edits ${h.sendsLiveEdits}, parked ${h.isParked}, ` +
  `error ${h.error?.code ?? 'none'}, acked ${JSON.stringify([...h.ackedStateVector])}, doc ${JSON.stringify([...Y.decodeStateVector(Y.encodeStateVector(h.doc))])}`

/** The docs of `client` with pending changes, and what their handles know, for a divergence's message. */
const describePending = (client: SyncClient): string =>
  client.docNames
    .map((name) => client.get(name))
    .filter((handle): handle is DocHandle => handle !== undefined && handle.pending !== 0)
    .map(describeHandle)
    .join('; ')

/** Resolves when `record` holds its record (another tab or the relay brought it), checked at every `change`. */
const holdsRecord = (record: RecordHandle): Promise<void> =>
  new Promise((resolve) => {
    const check = (): boolean => {
      return record.read().type !== null
    }
    if (check()) return resolve()
    const listener = (): void => {
      if (!check()) return
      record.off('change', listener)
      resolve()
    }
    record.on('change', listener)
  })

/** Runs schedules until done; throws {@link DivergenceError} (naming both seeds) on the first divergence. */
export const runChaosSchedules = async (options: ChaosRunOptions): Promise<ChaosRunFigures> => {
  const runGen = prng.create(options.seed)
  /** The generator of the schedule running now: the proxies draw from it too. */
  let gen = runGen
  const random = (): number => prng.real53(gen)
  const int = (n: number): number => Math.floor(random() * n)
  const pick = <T>(values: readonly T[]): T => values[int(values.length)]
  const figures: ChaosRunFigures = {
    schedules: 0,
    convergeMs: [],
    edits: 0,
    cuts: 0,
    partitions: 0,
    replayed: 0,
    restarts: 0,
    errors: {},
    changedAfterConverging: 0,
  }
  const workspaceId = `chaos-${options.seed}`

  let relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: options.dataDir, args: RELAY_ARGS })
  const proxies: FaultProxy[] = []
  for (let i = 0; i < 5; i++) proxies.push(await startFaultProxy(random, { replayChance: 0.3 }))
  for (const proxy of proxies) proxy.retarget(relay.wsUrl)
  const newClient = (url: string): SyncClient => {
    const client = new SyncClient({
      url,
      WebSocket: WebSocket as never,
      reconnect: { minDelay: 5, maxDelay: 60, random },
      resume: options.resume ?? true,
    })
    client.on('error', (error) => {
      figures.errors[error.code] = (figures.errors[error.code] ?? 0) + 1
    })
    return client
  }
  const plainClients = proxies.slice(0, 3).map((proxy) => newClient(proxy.wsUrl))
  const tabClients = proxies.slice(3).map((proxy) => newClient(proxy.wsUrl))
  const indexedDB = new IDBFactory()
  const tabs = tabClients.map(
    (client) => new RecordStore({ client, userId: 'ada', workspaceId, schemas: appSchemas, indexedDB, storage: undefined, tabs: true }),
  )
  const allClients = [...plainClients, ...tabClients]

  const restartRelay = async (): Promise<void> => {
    figures.restarts++
    if (random() < 0.5) await relay.kill()
    else await relay.stop()
    relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: options.dataDir, args: RELAY_ARGS })
    for (const proxy of proxies) proxy.retarget(relay.wsUrl)
  }

  /** One schedule: edits and faults, heal, converge, compare with a fresh read. */
  const runSchedule = async (index: number, scheduleSeed: number): Promise<void> => {
    gen = prng.create(scheduleSeed)
    const context = `seed ${options.seed}, schedule ${index} (schedule seed ${scheduleSeed}; replay it alone with CHAOS_SEED=${options.seed} CHAOS_SCHEDULE_SEED=${scheduleSeed})`
    const docName = `${workspaceId}/plain-${index}`
    const recordId = `T-${index}`
    const handles: DocHandle[] = plainClients.map((client) => client.open(docName))
    await Promise.all(tabs.map((tab) => tab.ready))
    const first = await tabs[0].create('ticket', { title: `ticket ${index}` }, { id: recordId })
    const records: RecordHandle[] = [first, await tabs[1].open(recordId)]
    await holdsRecord(records[1])
    try {
      for (const proxy of proxies) proxy.setMaxDelay(pick([0, 0, 2, 10, 30]))
      const restartAt = random() < (options.restartChance ?? 0.04) ? int(8) : -1
      const steps = 8 + int(13)
      for (let step = 0; step < steps; step++) {
        if (step === restartAt) await restartRelay()
        const roll = random()
        if (roll < 0.35) {
          const doc = pick(handles).doc
          const text = doc.getText('t')
          const what = random()
          if (what < 0.5 || text.length === 0) text.insert(int(text.length + 1), pick(['a', 'bc', 'def ', 'ghij']))
          else if (what < 0.75) {
            const at = int(text.length)
            text.delete(at, 1 + int(Math.min(3, text.length - at)))
          } else doc.getMap('m').set(`k${int(5)}`, int(1000))
          figures.edits++
        } else if (roll < 0.55) {
          const record = pick(records)
          const what = random()
          if (what < 0.4) {
            const title = record.text('title')
            title.insert(int(title.length + 1), pick(['x', 'yz ']))
          } else if (what < 0.7) record.set('status', pick(TICKET_STATUSES))
          else if (what < 0.85) record.set('priority', pick(TICKET_PRIORITIES))
          else record.set('labels', ['l1', 'l2', 'l3'].slice(0, int(4)))
          figures.edits++
        } else if (roll < 0.63) {
          pick(proxies).cut()
        } else if (roll < 0.7) {
          pick(proxies).partition()
          figures.partitions++
        } else if (roll < 0.8) {
          pick(proxies).heal()
        } else if (roll < 0.84) {
          pick(allClients).reconnect()
        } else {
          await sleep(int(9)) // lets frames, reconnects and commits of the steps so far happen in between (the race on purpose)
        }
      }

      // Heal: the relay is up (restarts are awaited), every proxy passes traffic again.
      for (const proxy of proxies) {
        proxy.heal()
        proxy.setMaxDelay(0)
      }
      const healed = performance.now()
      const converged = (): string | null => {
        for (const h of handles) {
          if (h.pending !== 0) return `plain client pending ${h.pending}: ${describeHandle(h)}`
          if (!h.isSynced) return 'plain client not synced'
          if (hasPendingStructs(h.doc)) return 'plain client has pending structs'
          if (!sameState(h.doc, handles[0].doc))
            return `plain replicas differ: ${describeDifference(handles[0].doc, h.doc).replace(/relay/g, 'first replica')}; ${describeHandle(handles[0])}; ${describeHandle(h)}`
        }
        for (const [i, r] of records.entries()) {
          if (r.pending !== 0) return `tab ${i} pending ${r.pending}: ${records.map((t) => describeHandle(t.sync)).join('; ')}`
          if (!r.sync.isSynced) return 'tab not synced'
          if (hasPendingStructs(r.doc)) return 'tab has pending structs'
          if (!sameState(r.doc, records[0].doc))
            return `tab replicas differ: ${describeDifference(records[0].doc, r.doc).replace(/relay/g, 'first tab')}; ${describeHandle(records[0].sync)}; ${describeHandle(r.sync)}`
        }
        for (const [i, c] of allClients.entries()) if (c.pending !== 0) return `client ${i} pending ${c.pending}: ${describePending(c)}`
        return null
      }
      // Checked every few ms: convergence is many events on many objects (pending, synced, updates of both docs).
      const waitConverged = async (): Promise<void> => {
        let waiting = converged()
        while (waiting !== null) {
          if (performance.now() - healed > CONVERGE_TIMEOUT_MS) {
            throw new DivergenceError(`${context}: not converged ${CONVERGE_TIMEOUT_MS} ms after healing: ${waiting}`)
          }
          await sleep(2)
          waiting = converged()
        }
      }
      await waitConverged()
      figures.convergeMs.push(performance.now() - healed)

      /** The relay's rooms, read by a fresh client straight from the relay: null when they hold what the clients hold, else how they differ. */
      const readFromRelay = async (): Promise<string | null> => {
        const fresh = newClient(relay.wsUrl)
        try {
          const freshPlain = fresh.open(docName)
          const freshRecord = fresh.open(`${workspaceId}/${recordId}`)
          await Promise.all([freshPlain.synced, freshRecord.synced])
          if (hasPendingStructs(freshPlain.doc) || hasPendingStructs(freshRecord.doc)) {
            throw new DivergenceError(`${context}: the relay's state has pending structs`)
          }
          if (!sameState(freshPlain.doc, handles[0].doc)) {
            return `${context}: the relay's plain doc differs from the clients' (relay "${freshPlain.doc.getText('t').toString()}", clients "${handles[0].doc.getText('t').toString()}")`
          }
          if (!sameState(freshRecord.doc, records[0].doc)) {
            return (
              `${context}: the relay's record differs from the tabs' (${describeDifference(freshRecord.doc, records[0].doc)}; ` +
              `tabs: ${records.map((t) => describeHandle(t.sync)).join('; ')})`
            )
          }
          return null
        } finally {
          fresh.close()
        }
      }
      for (;;) {
        const plainBefore = Y.snapshot(handles[0].doc)
        const tabsBefore = Y.snapshot(records[0].doc)
        const difference = await readFromRelay()
        if (difference === null) break
        // The engine may change a record after it converged — a typing burst's history entry is
        // appended once typing pauses — and the read above may have raced that change: then the
        // new state converges and the relay is read again. Otherwise the relay differs.
        const moved =
          !Y.equalSnapshots(plainBefore, Y.snapshot(handles[0].doc)) || !Y.equalSnapshots(tabsBefore, Y.snapshot(records[0].doc))
        if (!moved) throw new DivergenceError(difference)
        figures.changedAfterConverging++
        await waitConverged()
      }
    } finally {
      for (const client of plainClients) client.closeDoc(docName)
      for (const record of records) record.close()
    }
  }

  const deadline = options.minutes > 0 ? Date.now() + options.minutes * 60_000 : Infinity
  try {
    // Each schedule's seed is drawn as it starts (the same sequence as drawing them all first): a
    // run bounded by `minutes` asks for an unbounded number of schedules.
    const count = options.scheduleSeeds?.length ?? options.schedules
    for (let index = 0; index < count; index++) {
      if (Date.now() >= deadline) break
      const scheduleSeed = options.scheduleSeeds?.[index] ?? prng.uint32(runGen, 0, 0x7fffffff)
      await runSchedule(index, scheduleSeed)
      figures.schedules++
    }
    for (const proxy of proxies) {
      figures.cuts += proxy.stats.cuts
      figures.replayed += proxy.stats.replayed
    }
    return figures
  } finally {
    for (const tab of tabs) await tab.close()
    for (const client of allClients) client.close()
    for (const proxy of proxies) await proxy.close()
    await relay.stop()
  }
}
