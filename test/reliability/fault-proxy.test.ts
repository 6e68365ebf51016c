/**
 * The network chaos suite's fault proxy keeps the order of frames within a
 * connection, as TCP does, whatever delays it adds: it may delay frames and
 * cut connections, never reorder them. (A timer per frame once let a later
 * frame overtake an earlier one, so an update could reach the relay before
 * the `resume` that subscribed its doc and draw `not-subscribed`.)
 *
 * The delays are seeded (`lib0/prng`, a fresh seed per run, printed;
 * `CHAOS_SEED=<seed>` replays them).
 */
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import * as prng from 'lib0/prng'
import { startFaultProxy, type FaultProxy } from './lib/faultProxy.js'
import { runSeed } from './lib/runOptions.js'

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Frames sent each way. */
const FRAMES = 400

const frameOf = (n: number): Buffer => {
  const frame = Buffer.alloc(4)
  frame.writeUInt32BE(n)
  return frame
}

/** Resolves with the numbers of the first `count` frames `socket` receives, in arrival order. */
const collect = (socket: WebSocket, count: number): Promise<number[]> =>
  new Promise((resolve) => {
    const got: number[] = []
    socket.on('message', (data: Buffer) => {
      got.push(data.readUInt32BE(0))
      if (got.length === count) resolve(got)
    })
  })

/** Sends frames 0 … FRAMES − 1 in bursts of 1–8, with a pause of 0–3 ms (drawn from `gen`) between bursts. */
const sendInBursts = async (socket: WebSocket, gen: prng.PRNG): Promise<void> => {
  for (let n = 0; n < FRAMES;) {
    const burst = prng.uint32(gen, 1, 8)
    for (let k = 0; k < burst && n < FRAMES; k++) socket.send(frameOf(n++))
    await new Promise((resolve) => setTimeout(resolve, prng.uint32(gen, 0, 3)))
  }
}

describe('fault proxy', () => {
  const seed = runSeed()
  it(`seed ${seed}: frames keep their order within a connection under random delays, both ways`, { timeout: 60_000 }, async () => {
    const gen = prng.create(seed)
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    cleanups.push(() => new Promise((resolve) => server.close(resolve)))
    const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve))

    const proxy: FaultProxy = await startFaultProxy(() => prng.real53(gen), { maxDelayMs: 20 })
    cleanups.push(() => proxy.close())
    proxy.retarget(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)

    const client = new WebSocket(proxy.wsUrl)
    cleanups.push(() => client.terminate())
    await new Promise((resolve, reject) => {
      client.once('open', resolve)
      client.once('error', reject)
    })
    const relaySide = await accepted
    const atRelay = collect(relaySide, FRAMES)
    const atClient = collect(client, FRAMES)
    await Promise.all([sendInBursts(client, gen), sendInBursts(relaySide, gen)])

    const inOrder = Array.from({ length: FRAMES }, (_, n) => n)
    expect(await atRelay).toEqual(inOrder)
    expect(await atClient).toEqual(inOrder)
  })
})
