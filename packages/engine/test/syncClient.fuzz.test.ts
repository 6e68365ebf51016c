/**
 * Seeded randomized convergence: several clients edit several docs while the
 * network drops, reconnects and the relay acks at random moments. At the end
 * every replica must be identical, every pending count 0 and every flush
 * resolved. One generator (`lib0/prng`) drives everything, the clients'
 * reconnect jitter included. Each run tries the fixed seeds plus a fresh one
 * (printed in its test name); replay a seed with `SEED=<n>`, run more fixed
 * seeds with `FUZZ_SEEDS=400`, and pin a failing seed below as a named test:
 * `npx vitest run packages/engine/test/syncClient.fuzz.test.ts`. A second
 * set of seeds also closes docs and opens them again with the same Y.Doc.
 */
import { afterEach, describe, expect, test, vi } from 'vitest'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import type { DocHandle, SyncClient } from '../src/index.js'
import { Harness, track } from './helpers.js'

const h = new Harness()
afterEach(() => {
  h.cleanup()
  vi.useRealTimers()
})

const DOCS = ['acme/T-1', 'acme/T-2']

/**
 * `reopen`: also closes a doc's handle now and then and opens it again with
 * the same Y.Doc (holding whatever was not acked), online or offline — a
 * doc opened while online subscribes with a `resume` of that doc alone.
 */
const run = async (seed: number, { steps = 150, reopen = false } = {}) => {
  vi.useFakeTimers()
  const gen = prng.create(seed)
  const random = (): number => prng.real53(gen)
  const int = (n: number) => prng.uint32(gen, 0, n - 1)
  const relay = h.relay()
  const clients: SyncClient[] = []
  const handles: DocHandle[] = []
  const flushes: Array<{ handle: DocHandle; flush: ReturnType<typeof track> }> = []
  const pendingSeen: number[] = []
  for (let i = 0; i < 3; i++) {
    const client = h.client(relay, { reconnect: { random } })

    clients.push(client)
    for (const name of DOCS) handles.push(open(client, name, new Y.Doc()))
  }
  function open(client: SyncClient, name: string, doc: Y.Doc): DocHandle {
    const handle = client.open(name, { doc })
    handle.on('pending', (n) => pendingSeen.push(n))
    return handle
  }
  const tick = async (ms: number) => {
    vi.advanceTimersByTime(ms)
    await relay.settle()
  }

  for (let step = 0; step < steps; step++) {
    const roll = random()
    const handle = handles[int(handles.length)]!
    const text = handle.doc.getText('t')
    if (roll < 0.2) {
      text.insert(int(text.length + 1), String.fromCharCode(97 + int(26)).repeat(1 + int(3)))
    } else if (roll < 0.3) {
      if (text.length > 0) {
        const at = int(text.length)
        text.delete(at, 1 + int(Math.min(3, text.length - at))) // delete-only: needs the marker
      }
    } else if (roll < 0.4) {
      handle.doc.getMap('fields').set(`f${int(4)}`, int(100))
    } else if (roll < 0.5) {
      flushes.push({ handle, flush: track(handle.flush()) })
    } else if (roll < 0.65) {
      await relay.settle()
    } else if (roll < 0.72) {
      relay.ack(DOCS[int(DOCS.length)])
    } else if (roll < 0.76) {
      relay.accepting = false
      relay.dropAll()
    } else if (roll < 0.82) {
      relay.accepting = true
    } else if (roll < 0.85) {
      clients[int(clients.length)]!.reconnect()
    } else if (reopen && roll < 0.9) {
      const at = handles.indexOf(handle)
      const client = clients[Math.floor(at / DOCS.length)]!
      handle.close()
      if (random() < 0.3) await relay.settle()
      handles[at] = open(client, handle.name, handle.doc)
    } else {
      await tick(int(300))
    }
  }

  relay.accepting = true
  await relay.settle() // a drop in flight must land before statuses mean anything
  for (let i = 0; i < 1_000 && clients.some((c) => c.status !== 'online'); i++) await tick(50)
  await relay.settle()
  relay.ack()
  await relay.settle()

  for (const name of DOCS) {
    const reference = relay.doc(name)
    for (const handle of handles.filter((x) => x.name === name)) {
      expect(handle.doc.getText('t').toString()).toBe(reference.getText('t').toString())
      expect(handle.doc.getMap('fields').toJSON()).toEqual(reference.getMap('fields').toJSON())
      expect(Y.decodeStateVector(Y.encodeStateVector(handle.doc))).toEqual(Y.decodeStateVector(Y.encodeStateVector(reference)))
      expect(handle.pending).toBe(0)
      expect(handle.isSynced).toBe(true)
    }
  }
  expect(clients.map((c) => c.pending)).toEqual([0, 0, 0])
  // a closed handle's flushes were rejected; every open handle's resolved
  expect(flushes.filter((f) => handles.includes(f.handle)).every((f) => f.flush.resolved)).toBe(true)
  expect(pendingSeen.every((n) => n >= 0)).toBe(true)
}

describe('randomized convergence', () => {
  const seeds = Array.from({ length: Number(process.env.FUZZ_SEEDS ?? 25) }, (_, i) => 1_000 + i * 7_919)
  test.each(seeds)('seed %i', async (seed) => {
    await run(seed)
  })
  const fresh = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  test(`fresh seed ${fresh} (replay: SEED=${fresh} npx vitest run packages/engine/test/syncClient.fuzz.test.ts -t "fresh seed")`, async () => {
    await run(fresh)
  })
})

describe('randomized convergence, docs closed and opened again', () => {
  const seeds = Array.from({ length: Number(process.env.FUZZ_SEEDS ?? 25) }, (_, i) => 2_000 + i * 7_919)
  test.each(seeds)('reopen seed %i', async (seed) => {
    await run(seed, { reopen: true })
  })
  const fresh = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  test(`reopen, fresh seed ${fresh} (replay: SEED=${fresh} npx vitest run packages/engine/test/syncClient.fuzz.test.ts -t "reopen, fresh seed")`, async () => {
    await run(fresh, { reopen: true })
  })
})
