/**
 * Case 2, cold load: a doc with `count` stored updates (single-character
 * appends, each its own row in the SQLite log, seeded directly) is
 * synced by a fresh client from a freshly started relay process, so the doc
 * comes from SQLite, not from memory. Timed from `client.open()` to
 * `handle.synced`, over a real loopback WebSocket.
 *
 * The floor: a freshly started Node process (cold JIT, like the relay) that
 * applies the same updates to an empty Y.Doc in one transaction, in memory
 * (applyFloor.mjs, pinned like the relay).
 *
 * @module bench/syncCore
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { SyncClient } from '../../packages/engine/dist/index.js'
import { pinnedCommand, startChild } from './lib/processes.mjs'
import { alternate, median, withTimeout } from './lib/stats.mjs'
import { EMPTY_STATE_VECTOR, SYNC_STEP1, protocols } from './lib/wire.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const SERVER_HOST = path.join(here, 'serverHost.mjs')

/**
 * Docs of the same size a cold-doc run opens (and applications the floor
 * makes) before the timed ones. With three, neither side's code was
 * optimised yet: the floor's 1,000-update application took 3–30 ms from
 * process to process, ~1 ms once warm.
 */
export const COLD_WARM_UPS = 30

/** Starts Concord's relay (SQLite in `dataDir`) in its own process. */
const startRelay = (dataDir, { checkpointUpdates, core = null, execArgv = [] } = {}) =>
  startChild(SERVER_HOST, [JSON.stringify({ kind: 'concord', storage: 'sqlite', dataDir, checkpointUpdates })], { core, execArgv })

const newClient = (url) => new SyncClient({ url, WebSocket })

/** Resolves once the relay's `/readyz` answers 200 (storage answered a ping). */
const relayReady = async (url) => {
  const readyz = new URL('/readyz', url.replace(/^ws/, 'http'))
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await fetch(readyz)).ok) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`${readyz} did not answer 200`)
}

/** `count` single-character appends to Y.Text `body`, one Yjs update each, as the engine sends them. */
const makeUpdates = (count) => {
  const doc = new Y.Doc()
  doc.clientID = 4242
  const updates = []
  doc.on('update', (u) => updates.push(u))
  const text = doc.getText('body')
  for (let i = 0; i < count; i++) text.insert(text.length, String(i % 10))
  doc.destroy()
  return updates
}

/**
 * Stores `updates` as doc `name` the way the relay would have: one log row
 * per update, and — when `checkpointUpdates` is set — a checkpoint of the
 * first ⌊N / checkpointUpdates⌋ × checkpointUpdates updates with only the
 * rest in the log (what the relay's compaction leaves after one update per commit).
 */
const seedDoc = async (storage, name, updates, checkpointUpdates) => {
  const covered = checkpointUpdates ? Math.floor(updates.length / checkpointUpdates) * checkpointUpdates : 0
  if (covered > 0) {
    const doc = new Y.Doc()
    Y.transact(doc, () => {
      for (const u of updates.slice(0, covered)) Y.applyUpdate(doc, u)
    })
    const state = Y.encodeStateAsUpdate(doc)
    doc.destroy()
    const seq = (await storage.appendUpdates([{ doc: name, updates: [state] }])).get(name)
    await storage.writeCheckpoint(name, state, seq)
  }
  if (covered < updates.length) await storage.appendUpdates([{ doc: name, updates: updates.slice(covered) }])
}

/**
 * The relay's part of cold-doc opens, without the engine: a raw multiplexed
 * client, connected and having opened one other doc, sends subscribe + sync
 * step 1 for each doc in turn and waits for step 2 with the whole doc.
 * Returns the time of each open.
 */
const rawOpens = async (url, docs) => {
  const proto = protocols.mux
  const ws = new WebSocket(url.replace(/^http/, 'ws') + proto.path(docs[0]), { perMessageDeflate: false })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const open = (name) =>
    new Promise((resolve) => {
      const onMessage = (data) => {
        const m = proto.parse(data)
        if (m.doc === name && m.kind === 'step2') {
          ws.off('message', onMessage)
          resolve()
        }
      }
      ws.on('message', onMessage)
      ws.send(proto.subscribe(name))
      ws.send(proto.sync(name, SYNC_STEP1, EMPTY_STATE_VECTOR))
    })
  await withTimeout(open('bench/raw-warm-up'), 30_000, 'raw client warm-up')
  const times = []
  for (const doc of docs) {
    const started = performance.now()
    await withTimeout(open(doc), 30_000, `raw client open of ${doc}`)
    times.push(performance.now() - started)
  }
  ws.terminate()
  return times
}

/** Writes length-prefixed updates to a file for applyFloor.mjs. */
const writeUpdateFile = (file, updates) =>
  writeFileSync(
    file,
    Buffer.concat(
      updates.flatMap((u) => {
        const header = Buffer.alloc(4)
        header.writeUInt32LE(u.byteLength)
        return [header, Buffer.from(u)]
      }),
    ),
  )

/**
 * Cold load for each count in `counts`, `repeats` times (order of counts
 * alternating), each time on a freshly started relay:
 *
 * - **cold process**: a new client connects and opens doc A — relay process,
 *   its JIT, its SQLite connection and the doc are all cold. Floor: a fresh
 *   process applying the updates (cold JIT).
 * - **cold doc**: the same client, now connected, waits for the relay's
 *   `/readyz` (its storage thread started), opens `warmUps` docs of the
 *   same content (so that the relay and the client run optimised code, as a
 *   relay that has been up for a while does), then opens `timedDocs` more,
 *   one after the other, each timed: only the doc is cold — the everyday case of
 *   opening a record that is not in the relay's memory. Floor: applying the
 *   updates `timedDocs` times, each timed, after `warmUps` applications in
 *   the same process. Also the relay's part alone: a raw protocol client
 *   opening `timedDocs` docs of the same content — subscribe, step 1, step 2.
 *
 * Figures are medians over all timed opens (`repeats` × `timedDocs`).
 *
 * @returns {Promise<{ checkpointUpdates, repeats, warmUps, timedDocs, results: Array<{ count, coldProcessMs, coldProcessFloorMs, coldDocMs, coldDocFloorMs, coldDocRawMs }> }>}
 */
export const coldLoad = async ({
  counts = [1, 100, 1000, 10_000],
  repeats = 5,
  warmUps = COLD_WARM_UPS,
  timedDocs = 5,
  checkpointUpdates = 1_000_000,
  cores = null,
  serverExecArgv = [],
  log = () => {},
}) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-cold-'))
  const relayCore = cores?.server ?? null
  const name = (kind, count) => `bench/${kind}-${count}`
  const series = (kind, n) => Array.from({ length: n }, (_, i) => `${kind}${i + 1}`)
  const warmKinds = series('w', warmUps)
  const timedKinds = series('c', timedDocs)
  const rawKinds = series('r', timedDocs)
  try {
    const written = new Map(counts.map((count) => [count, makeUpdates(count)]))
    const { SqliteStorage } = await import('../../apps/relay/dist/index.js')
    const storage = SqliteStorage.open(path.join(dir, 'concord.sqlite'))
    for (const count of counts) {
      for (const kind of ['a', ...warmKinds, ...timedKinds, ...rawKinds]) {
        await seedDoc(storage, name(kind, count), written.get(count), checkpointUpdates < count ? checkpointUpdates : 0)
      }
    }
    await storage.close()
    let host

    const coldProcess = new Map(counts.map((c) => [c, []]))
    const coldDoc = new Map(counts.map((c) => [c, []]))
    const coldDocRaw = new Map(counts.map((c) => [c, []]))
    for (let rep = 0; rep < repeats; rep++) {
      for (const count of alternate(counts, rep)) {
        host = await startRelay(dir, { checkpointUpdates, core: relayCore, execArgv: serverExecArgv })
        try {
          const started = performance.now()
          const client = newClient(host.info.url)
          const a = client.open(name('a', count))
          await withTimeout(a.synced, 30_000, `cold load of ${count} updates`)
          coldProcess.get(count).push(performance.now() - started)
          // warm relay: also ready (its storage worker answered /readyz's ping), not still starting that thread;
          // asked before the warm-ups, whose opens then separate the check's HTTP exchange from the timed ones
          await relayReady(host.info.url)
          for (const warm of warmKinds) await withTimeout(client.open(name(warm, count)).synced, 30_000, 'warm-up doc')
          for (const kind of timedKinds) {
            const startedC = performance.now()
            const c = client.open(name(kind, count))
            await withTimeout(c.synced, 30_000, `cold load of ${count} updates`)
            coldDoc.get(count).push(performance.now() - startedC)
            if (c.doc.getText('body').length !== count) throw new Error('cold load returned an incomplete doc')
          }
          if (a.doc.getText('body').length !== count) throw new Error('cold load returned an incomplete doc')
          client.close()
          coldDocRaw.get(count).push(
            ...(await rawOpens(
              host.info.url,
              rawKinds.map((kind) => name(kind, count)),
            )),
          )
        } finally {
          await host.stop()
        }
      }
    }
    const results = []
    for (const count of counts) {
      const file = path.join(dir, `updates-${count}.bin`)
      writeUpdateFile(file, written.get(count))
      const floor = (warm) => {
        const runs = []
        const command = [
          ...pinnedCommand(relayCore),
          process.execPath,
          path.join(here, 'applyFloor.mjs'),
          file,
          ...(warm ? [`--warm=${warmUps}`, `--timed=${timedDocs}`] : []),
        ]
        for (let i = 0; i < repeats; i++) {
          const result = JSON.parse(execFileSync(command[0], command.slice(1), { encoding: 'utf8' }))
          if (result.length !== count) throw new Error('the floor applied an incomplete doc')
          runs.push(...result.ms)
        }
        return runs
      }
      const coldDocFloor = floor(true)
      const r = {
        count,
        coldProcessMs: median(coldProcess.get(count)),
        coldProcessFloorMs: median(floor(false)),
        coldDocMs: median(coldDoc.get(count)),
        coldDocFloorMs: median(coldDocFloor),
        coldDocRawMs: median(coldDocRaw.get(count)),
        runs: {
          coldProcess: coldProcess.get(count),
          coldDoc: coldDoc.get(count),
          coldDocRaw: coldDocRaw.get(count),
          coldDocFloor,
        },
      }
      results.push(r)
      log(
        `  cold load ${count} updates (checkpoint every ${checkpointUpdates}): cold process ${r.coldProcessMs.toFixed(1)} ms (floor ${r.coldProcessFloorMs.toFixed(2)}), cold doc ${r.coldDocMs.toFixed(2)} ms (raw client ${r.coldDocRawMs.toFixed(2)}, floor ${r.coldDocFloorMs.toFixed(2)})`,
      )
    }
    return { checkpointUpdates, repeats, warmUps, timedDocs, results }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
