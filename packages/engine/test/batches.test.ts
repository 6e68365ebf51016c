/**
 * `batch` messages (docs/PROTOCOL.md "Batches"): what `encodeBatches` packs
 * and `readBatch` gives back, DEFLATE between fflate (the engine) and Node's
 * zlib (the relay) both ways, and what a reader refuses.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { deflateSync, inflateSync } from 'fflate'
import * as decoding from 'lib0/decoding'
import * as prng from 'lib0/prng'
import { describe, expect, test } from 'vitest'
import {
  BatchFlags,
  MessageType,
  decodeMessage,
  encodeBatch,
  encodeBatchFrame,
  encodeBatchList,
  encodeBatches,
  encodePing,
  encodeSubscribe,
  readBatch,
} from '../src/protocol/index.js'

/** Reads a frame: its messages when it is a batch (and whether it was deflated), else itself. */
const unpack = (
  frame: Uint8Array,
  inflate: (bytes: Uint8Array) => Uint8Array = inflateSync,
): { messages: Uint8Array[]; deflated: boolean } => {
  const { type, body } = decodeMessage(frame)
  if (type !== MessageType.batch) return { messages: [frame], deflated: false }
  const deflated = (decoding.peekVarUint(body) & BatchFlags.deflated) !== 0
  return { messages: readBatch(body, inflate), deflated }
}

const subscribes = (n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => encodeSubscribe(`acme/ticket-${String(i).padStart(4, '0')}`))

describe('batches', () => {
  test('many messages go in one deflated batch and come back in order', () => {
    const messages = subscribes(200)
    const frames = encodeBatches(messages, 1024 * 1024, deflateSync)
    expect(frames).toHaveLength(1)
    const { messages: back, deflated } = unpack(frames[0])
    expect(deflated).toBe(true)
    expect(back).toEqual(messages)
    expect(frames[0].byteLength).toBeLessThan(messages.reduce((n, m) => n + m.byteLength, 0) / 3)
  })

  test('batches stay within the largest frame, also once inflated, and carry every message in order', () => {
    const messages = subscribes(500)
    const maxBytes = 2000
    const frames = encodeBatches(messages, maxBytes, deflateSync)
    expect(frames.length).toBeGreaterThan(5)
    const back: Uint8Array[] = []
    for (const frame of frames) {
      expect(frame.byteLength).toBeLessThanOrEqual(maxBytes)
      // inflated with the relay's cap: the largest frame
      back.push(...unpack(frame, (bytes) => inflateRawSync(bytes, { maxOutputLength: maxBytes })).messages)
    }
    expect(back).toEqual(messages)
  })

  test('a lone message, and one larger than a batch may be, go as they are', () => {
    const big = new Uint8Array(5000).fill(MessageType.sync)
    expect(encodeBatches([encodePing()], 1000, deflateSync)).toEqual([encodePing()])
    const frames = encodeBatches([encodePing(), big, encodePing(), encodePing()], 1000, deflateSync)
    expect(frames.map((f) => unpack(f).messages)).toEqual([[encodePing()], [big], [encodePing(), encodePing()]])
    expect(encodeBatches([], 1000, deflateSync)).toEqual([])
  })

  test('a payload that does not shrink is sent as it is; a small one is not deflated at all', () => {
    const gen = prng.create(7)
    const noise = (): Uint8Array => prng.uint8Array(gen, 4000)
    let deflateCalls = 0
    const counting = (bytes: Uint8Array): Uint8Array => {
      deflateCalls++
      return deflateSync(bytes)
    }
    const messages = [noise(), noise()]
    expect(unpack(encodeBatch(messages, counting))).toEqual({ messages, deflated: false })
    expect(deflateCalls).toBe(1) // tried, and it did not shrink
    deflateCalls = 0
    expect(unpack(encodeBatch([encodePing(), encodePing()], counting)).deflated).toBe(false)
    expect(deflateCalls).toBe(0)
  })

  test("the relay's zlib and the engine's fflate read each other's batches", () => {
    const messages = subscribes(100)
    const fromRelay = encodeBatch(messages, (bytes) => deflateRawSync(bytes))
    expect(unpack(fromRelay, inflateSync)).toEqual({ messages, deflated: true })
    const fromEngine = encodeBatch(messages, deflateSync)
    expect(unpack(fromEngine, (bytes) => inflateRawSync(bytes))).toEqual({ messages, deflated: true })
  })

  test.each([
    [
      'a batch inside a batch',
      () => encodeBatchFrame(0, encodeBatchList([encodePing(), encodeBatch([encodePing(), encodePing()], null)])),
      /inside a batch/,
    ],
    ['unknown flags', () => encodeBatchFrame(2, encodeBatchList([encodePing()])), /unknown batch flags/],
    ['an empty message', () => encodeBatchFrame(0, encodeBatchList([new Uint8Array(0)])), /empty message/],
    ['bytes after the last message', () => encodeBatchFrame(0, Uint8Array.of(...encodeBatchList([encodePing()]), 1)), /bytes after/],
    ['a count beyond its messages', () => encodeBatchFrame(0, Uint8Array.of(3, ...encodeBatchList([encodePing()]).subarray(1))), /./],
  ])('a reader refuses %s', (_what, make, error) => {
    const { body } = decodeMessage(make())
    expect(() => readBatch(body, inflateSync)).toThrow(error)
  })
})
