/**
 * Doc lifecycle on the relay: rooms are loaded on subscribe and unloaded
 * when idle, and neither leaks memory nor loses state.
 *
 * - **Memory**: docs are opened, written, flushed and closed through a relay
 *   in a process of its own (`lib/relayHeapHost.mjs`, `--expose-gc`,
 *   rooms unloaded after 50 ms idle). After a warm-up of 500 docs the heap
 *   is measured (after full GCs, with every room unloaded); then N more docs
 *   go through the same; the heap must be back within 10% of the first
 *   measurement. N is 1,000 in `npm test`, 10,000 in the long run
 *   (`npm run test:chaos -- --suite lifecycle`).
 * - **Open during unload**: 1,000 seeded interleavings, 25 at a time: a
 *   client writes a doc, flushes and closes it, and after a random 0–100 ms
 *   (around the 50 ms idle unload, so the new subscription lands before,
 *   during or after the room's unload) another client opens it and must see
 *   that write; it writes again and closes, and a third open after another
 *   random wait must see the second write.
 *
 * A fresh seed each run (replay: `CHAOS_SEED=<seed> npx vitest run test/reliability/lifecycle.test.ts`).
 */
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as prng from 'lib0/prng'
import { SyncClient } from '@concord/engine'
import { makeTempDir, removeDir } from '../helpers/relayProcess.js'
import { envInt, isLongRun, report, runSeed } from './lib/runOptions.js'

const HOST = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib/relayHeapHost.mjs')
const IDLE_UNLOAD_MS = 50

let host: ChildProcess
let url: string
let dataDir: string
/** Sends `message` to the relay host and resolves with its answer. */
const ask = <T>(message: string): Promise<T> =>
  new Promise((resolve) => {
    host.once('message', (answer) => resolve(answer as T))
    host.send(message)
  })

beforeAll(async () => {
  dataDir = makeTempDir('concord-lifecycle-')
  host = fork(HOST, [dataDir, String(IDLE_UNLOAD_MS)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  url = (await new Promise<{ url: string }>((resolve) => host.once('message', (m) => resolve(m as { url: string })))).url.replace(
    /^http/,
    'ws',
  )
})
afterAll(async () => {
  const exited = new Promise((resolve) => host.once('exit', resolve))
  host.send('close')
  await exited
  removeDir(dataDir)
})

const newClient = (): SyncClient => new SyncClient({ url, WebSocket: WebSocket as never })

/** Resolves when the relay has no room loaded (checked every 50 ms, up to 30 s). */
const allUnloaded = async (): Promise<void> => {
  const deadline = Date.now() + 30_000
  while ((await ask<{ roomsOpen: number }>('rooms')).roomsOpen > 0) {
    if (Date.now() > deadline) throw new Error('rooms still loaded 30 s after their docs were closed')
    await new Promise((resolve) => setTimeout(resolve, 50)) // polls the relay's gauge: the unload has no event outside the relay
  }
}

/** Opens, writes, flushes and closes `count` docs named `<prefix>-<n>`, 100 at a time over one client. */
const openWriteClose = async (prefix: string, count: number): Promise<void> => {
  const client = newClient()
  try {
    for (let start = 0; start < count; start += 100) {
      const names = Array.from({ length: Math.min(100, count - start) }, (_, i) => `life/${prefix}-${start + i}`)
      for (const [i, name] of names.entries())
        client
          .open(name)
          .doc.getMap('m')
          .set('v', start + i)
      await client.flush()
      for (const name of names) client.closeDoc(name)
    }
  } finally {
    client.close()
  }
}

describe('doc lifecycle on the relay', () => {
  const docs = envInt('CHAOS_LIFECYCLE_DOCS', isLongRun() ? 10_000 : 1_000)
  const timeout = isLongRun() ? 24 * 3_600_000 : 120_000

  it(`opening and closing ${docs} docs leaves the relay's heap within 10% of where it was`, { timeout }, async () => {
    await openWriteClose('warm', 500)
    await allUnloaded()
    const before = await ask<{ heapUsed: number }>('heap')
    const started = performance.now()
    await openWriteClose('cycle', docs)
    const seconds = (performance.now() - started) / 1000
    await allUnloaded()
    const after = await ask<{ heapUsed: number; roomsOpen: number }>('heap')
    const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)
    report(
      'lifecycle',
      `${docs} docs opened, written, flushed and closed in ${seconds.toFixed(1)} s; relay heap after full GC ${mb(before.heapUsed)} MB before, ` +
        `${mb(after.heapUsed)} MB after (${(((after.heapUsed - before.heapUsed) / before.heapUsed) * 100).toFixed(1)}%), rooms open ${after.roomsOpen}`,
    )
    expect(after.heapUsed).toBeLessThanOrEqual(before.heapUsed * 1.1)
  })

  const seed = runSeed()
  it(`seed ${seed}: 1,000 opens during unload see the latest state`, { timeout }, async () => {
    const gen = prng.create(seed)
    /** A random wait around the idle unload: drives the open-during-unload race on purpose. */
    const wait = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, prng.uint32(gen, 0, 2 * IDLE_UNLOAD_MS)))
    const clients = [newClient(), newClient(), newClient()]
    const mismatches: string[] = []
    /** Writes `value` to `name` with `client`, waits for the durable ack, closes the doc. */
    const writeAndClose = async (client: SyncClient, name: string, value: number): Promise<void> => {
      client.open(name).doc.getMap('m').set('v', value)
      await client.flush(name)
      client.closeDoc(name)
    }
    /** Opens `name` with `client` and checks it holds `value`. */
    const check = async (client: SyncClient, name: string, value: number, round: string): Promise<void> => {
      const handle = client.open(name)
      await handle.synced
      const seen = handle.doc.getMap('m').get('v')
      if (seen !== value) mismatches.push(`${name} ${round}: saw ${String(seen)}, wrote ${value}`)
    }
    const interleaving = async (k: number): Promise<void> => {
      const name = `life/unload-${seed}-${k}`
      const first = prng.uint32(gen, 0, 1_000_000)
      await writeAndClose(clients[0], name, first)
      await wait()
      await check(clients[1], name, first, 'first open')
      clients[1]
        .open(name)
        .doc.getMap('m')
        .set('v', first + 1)
      await clients[1].flush(name)
      clients[1].closeDoc(name)
      await wait()
      await check(clients[2], name, first + 1, 'second open')
      clients[2].closeDoc(name)
    }
    try {
      for (let start = 0; start < 1_000; start += 25) {
        await Promise.all(Array.from({ length: 25 }, (_, i) => interleaving(start + i)))
      }
    } finally {
      for (const client of clients) client.close()
    }
    report('lifecycle', `seed ${seed}: 1000 opens during unload, ${mismatches.length} saw an older state`)
    expect(mismatches, `seed ${seed}`).toEqual([])
  })
})
