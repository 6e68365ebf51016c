// Sync-core measurements: cold sync of a doc with 10,000 stored updates, and
// relay heap per open idle room. Prints a JSON result; run.mjs formats it.
import { execFileSync, fork } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { SyncClient } from '../../packages/engine/dist/index.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Starts relayHost.mjs; resolves with { url, child, ask(msg) }. */
export const startHost = (kind, dataDir, extra = []) =>
  new Promise((resolve, reject) => {
    const child = fork(path.join(here, 'relayHost.mjs'), [kind, dataDir, ...extra], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child.once('error', reject)
    child.once('message', ({ url }) => {
      const ask = (msg) =>
        new Promise((r) => {
          child.once('message', r)
          child.send(msg)
        })
      resolve({ url: url.replace(/^http/, 'ws'), child, ask, stop: () => new Promise((r) => { child.once('exit', r); child.send('stop') }) })
    })
  })

const newClient = (url) => new SyncClient({ url, WebSocket })

/** Writes `count` single-character updates into one doc through the engine. */
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

export const coldSync = async ({ count = 10_000, repeats = 5, checkpointUpdates }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-'))
  const extra = checkpointUpdates ? [`checkpointUpdates=${checkpointUpdates}`] : []
  try {
    let host = await startHost('sqlite', dir, extra)
    const updates = await writeUpdates(host.url, 'bench/cold', count)
    await host.stop()
    const times = []
    for (let i = 0; i < repeats; i++) {
      host = await startHost('sqlite', dir, extra)
      const started = performance.now()
      const client = newClient(host.url)
      const h = client.open('bench/cold')
      await h.synced
      times.push(performance.now() - started)
      if (h.doc.getText('body').length !== count) throw new Error('cold sync returned incomplete doc')
      client.close()
      await host.stop()
    }
    // floor: a fresh process applies the same updates to an empty doc in one
    // transaction, in memory (cold JIT, like the freshly started relay)
    const file = path.join(dir, 'updates.bin')
    writeFileSync(file, Buffer.concat(updates.flatMap((u) => {
      const header = Buffer.alloc(4)
      header.writeUInt32LE(u.byteLength)
      return [header, Buffer.from(u)]
    })))
    const floor = []
    for (let i = 0; i < repeats; i++) {
      const out = execFileSync(process.execPath, [path.join(here, 'applyFloor.mjs'), file], { encoding: 'utf8' })
      const result = JSON.parse(out)
      if (result.length !== count) throw new Error('floor applied an incomplete doc')
      floor.push(result.ms)
    }
    return { count, repeats, ms: median(times), floorMs: median(floor), checkpointUpdates: checkpointUpdates ?? 500 }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const idleRoomMemory = async ({ rooms = 1000 } = {}) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-'))
  try {
    const seedHost = await startHost('sqlite', dir)
    // seed small ticket docs
    const seeder = newClient(seedHost.url)
    for (let i = 0; i < rooms; i++) {
      const h = seeder.open(`mem/t${i}`)
      h.doc.getText('title').insert(0, `Ticket ${i}: printer on floor 3 is jammed`)
      h.doc.getText('description').insert(0, 'Steps: open tray 2, remove paper, restart. Still jams.')
      h.doc.getMap('fields').set('status', 'open')
      h.doc.getMap('fields').set('priority', 'p2')
    }
    await seeder.flush()
    seeder.close()
    await seedHost.stop()
    // a fresh relay with nothing loaded, then one open subscription per doc
    const host = await startHost('sqlite', dir)
    const before = await host.ask('heap')
    const holder = newClient(host.url)
    const handles = []
    for (let i = 0; i < rooms; i++) handles.push(holder.open(`mem/t${i}`))
    await Promise.all(handles.map((h) => h.synced))
    await holder.flush()
    const after = await host.ask('heap')
    holder.close()
    await host.stop()
    return { rooms, bytesPerRoom: Math.round((after.heapUsed - before.heapUsed) / rooms), roomsBefore: before.rooms, roomsAfter: after.rooms }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
