/**
 * Case 2, cold load: a doc with `count` stored updates (each written by the
 * engine as its own update, so each is its own row in the SQLite log) is
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
import { SyncClient } from '../../packages/engine/dist/index.js'
import { pinnedCommand, startChild } from './lib/processes.mjs'
import { alternate, median } from './lib/stats.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const SERVER_HOST = path.join(here, 'serverHost.mjs')

/** Starts Concord's relay (SQLite in `dataDir`) in its own process. */
const startRelay = (dataDir, { checkpointUpdates, core = null } = {}) =>
  startChild(SERVER_HOST, [JSON.stringify({ kind: 'concord', storage: 'sqlite', dataDir, checkpointUpdates })], { core })

const newClient = (url) => new SyncClient({ url, WebSocket })

/** Writes `count` single-character updates into one doc through the engine; returns them. */
const writeUpdates = async (url, name, count) => {
  const client = newClient(url)
  const h = client.open(name)
  await h.synced
  const updates = []
  h.doc.on('update', (u) => updates.push(u))
  const text = h.doc.getText('body')
  for (let i = 0; i < count; i++) {
    text.insert(text.length, String(i % 10))
    if (i % 500 === 499) await new Promise((r) => setImmediate(r))
  }
  await client.flush()
  client.close()
  return updates
}

/** Copies doc `from` to doc `to` in storage exactly as stored: checkpoint (if any), then the log, row by row. */
const replicate = async (storage, from, to) => {
  const stored = await storage.loadDoc(from)
  if (stored.checkpoint) {
    const seq = (await storage.appendUpdates([{ doc: to, updates: [stored.checkpoint] }])).get(to)
    await storage.writeCheckpoint(to, stored.checkpoint, seq)
  }
  if (stored.updates.length > 0) await storage.appendUpdates([{ doc: to, updates: stored.updates }])
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
 * - **cold doc**: the same client, now connected, opens doc B (same content)
 *   so the relay has served one such doc, then doc C (same content): only the
 *   doc is cold — the everyday case of opening a record that is not in the
 *   relay's memory. Floor: applying the updates in a warm process.
 *
 * @returns {Promise<{ checkpointUpdates, repeats, results: Array<{ count, coldProcessMs, coldProcessFloorMs, coldDocMs, coldDocFloorMs }> }>}
 */
export const coldLoad = async ({ counts = [1, 100, 1000, 10_000], repeats = 5, checkpointUpdates = 1_000_000, cores = null, log = () => {} }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-cold-'))
  const relayCore = cores?.server ?? null
  const name = (kind, count) => `bench/${kind}-${count}`
  try {
    let host = await startRelay(dir, { checkpointUpdates, core: relayCore })
    const written = new Map()
    for (const count of counts) written.set(count, await writeUpdates(host.info.url, name('a', count), count))
    await host.stop()
    const { SqliteStorage } = await import('../../apps/relay/dist/index.js')
    const storage = SqliteStorage.open(path.join(dir, 'concord.sqlite'))
    for (const count of counts) {
      await replicate(storage, name('a', count), name('b', count))
      await replicate(storage, name('a', count), name('c', count))
    }
    await storage.close()

    const coldProcess = new Map(counts.map((c) => [c, []]))
    const coldDoc = new Map(counts.map((c) => [c, []]))
    for (let rep = 0; rep < repeats; rep++) {
      for (const count of alternate(counts, rep)) {
        host = await startRelay(dir, { checkpointUpdates, core: relayCore })
        try {
          const started = performance.now()
          const client = newClient(host.info.url)
          const a = client.open(name('a', count))
          await a.synced
          coldProcess.get(count).push(performance.now() - started)
          await client.open(name('b', count)).synced
          const startedC = performance.now()
          const c = client.open(name('c', count))
          await c.synced
          coldDoc.get(count).push(performance.now() - startedC)
          if (a.doc.getText('body').length !== count || c.doc.getText('body').length !== count) {
            throw new Error('cold load returned an incomplete doc')
          }
          client.close()
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
        const command = [...pinnedCommand(relayCore), process.execPath, '--expose-gc', path.join(here, 'applyFloor.mjs'), file, ...(warm ? ['--warm'] : [])]
        for (let i = 0; i < repeats; i++) {
          const result = JSON.parse(execFileSync(command[0], command.slice(1), { encoding: 'utf8' }))
          if (result.length !== count) throw new Error('the floor applied an incomplete doc')
          runs.push(result.ms)
        }
        return runs
      }
      const r = {
        count,
        coldProcessMs: median(coldProcess.get(count)),
        coldProcessFloorMs: median(floor(false)),
        coldDocMs: median(coldDoc.get(count)),
        coldDocFloorMs: median(floor(true)),
        runs: { coldProcess: coldProcess.get(count), coldDoc: coldDoc.get(count) },
      }
      results.push(r)
      log(
        `  cold load ${count} updates (checkpoint every ${checkpointUpdates}): cold process ${r.coldProcessMs.toFixed(1)} ms (floor ${r.coldProcessFloorMs.toFixed(2)}), cold doc ${r.coldDocMs.toFixed(2)} ms (floor ${r.coldDocFloorMs.toFixed(2)})`,
      )
    }
    return { checkpointUpdates, repeats, results }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
