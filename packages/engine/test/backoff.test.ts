import * as prng from 'lib0/prng'
import { describe, expect, test } from 'vitest'
import { Backoff } from '../src/sync/backoff.js'
import { relayUrl } from '../src/sync/relayUrl.js'

describe('Backoff', () => {
  test('the ceiling grows by factor and is capped; full jitter scales it', () => {
    const top = new Backoff({ minDelay: 250, maxDelay: 10_000, factor: 2, random: () => 0.999_999 })
    const delays = Array.from({ length: 9 }, () => top.next())
    expect(delays).toEqual([249, 499, 999, 1_999, 3_999, 7_999, 9_999, 9_999, 9_999])
    const half = new Backoff({ random: () => 0.5 })
    expect(Array.from({ length: 8 }, () => half.next())).toEqual([125, 250, 500, 1_000, 2_000, 4_000, 5_000, 5_000])
    const zero = new Backoff({ random: () => 0 })
    expect(Array.from({ length: 5 }, () => zero.next())).toEqual([0, 0, 0, 0, 0])
  })

  // A fresh seed every run (in the test name); replay one with SEED=<n>.
  const seed = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  test(`every delay stays within [0, ceiling] for any random source (SEED=${seed})`, () => {
    const gen = prng.create(seed)
    const random = () => prng.real53(gen)
    const backoff = new Backoff({ minDelay: 100, maxDelay: 3_000, factor: 3, random })
    for (let i = 0; i < 200; i++) {
      const ceiling = backoff.ceiling
      const delay = backoff.next()
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThanOrEqual(ceiling)
      expect(ceiling).toBeLessThanOrEqual(3_000)
    }
    expect(backoff.ceiling).toBe(3_000) // also after overflow of factor^attempt
  })

  test('reset() starts over from minDelay', () => {
    const backoff = new Backoff({ minDelay: 100, maxDelay: 1_000, random: () => 0.999_999 })
    backoff.next()
    backoff.next()
    expect(backoff.attempt).toBe(2)
    backoff.reset()
    expect(backoff.attempt).toBe(0)
    expect(backoff.next()).toBe(99)
  })

  test('rejects nonsensical options', () => {
    expect(() => new Backoff({ minDelay: 500, maxDelay: 100 })).toThrow(/minDelay <= maxDelay/)
    expect(() => new Backoff({ factor: 0.5 })).toThrow(/factor >= 1/)
    expect(() => new Backoff({ minDelay: -1 })).toThrow(/invalid reconnect options/)
  })
})

describe('relayUrl', () => {
  test('maps http(s) to ws(s), appends the endpoint and the token', () => {
    expect(relayUrl('ws://localhost:8787')).toBe('ws://localhost:8787/.concord/v1')
    expect(relayUrl('wss://sync.example.com/')).toBe('wss://sync.example.com/.concord/v1')
    expect(relayUrl('http://127.0.0.1:1234')).toBe('ws://127.0.0.1:1234/.concord/v1')
    expect(relayUrl('https://example.com/prefix//')).toBe('wss://example.com/prefix/.concord/v1')
    expect(relayUrl('ws://h:1', 'tok/en?=')).toBe('ws://h:1/.concord/v1?token=tok%2Fen%3F%3D')
  })

  test('rejects relative URLs and other schemes', () => {
    expect(() => relayUrl('localhost:8787')).toThrow(/scheme must be/)
    expect(() => relayUrl('/relay')).toThrow(/invalid relay url/)
    expect(() => relayUrl('ftp://example.com')).toThrow(/scheme must be/)
  })
})
