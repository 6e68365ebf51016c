/**
 * Catch-ups in parts and the client's allowance of structs
 * (`sync/catchUpAllowance`): while it lasts, each next part of a catch-up
 * goes as soon as the previous one is acked; beyond it, a part waits an idle
 * time after the ack, as a long backlog always did. Idle timers are faked
 * and never advanced unless a test says so: a part sent without advancing
 * them was sent without idling.
 */
import { afterEach, describe, expect, it, test, vi } from 'vitest'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType } from '../src/protocol/index.js'
import { CatchUpAllowance } from '../src/sync/catchUpAllowance.js'
import type { TestRelay } from './relayHarness.js'
import { Harness } from './helpers.js'

describe('CatchUpAllowance', () => {
  it('starts full, takes what it holds, refuses more without taking, and refills at its rate up to the burst', () => {
    let now = 0
    const allowance = new CatchUpAllowance(1000, 100, () => now)
    expect(allowance.take(600)).toBe(true)
    expect(allowance.take(600)).toBe(false)
    expect(allowance.available).toBe(400)
    now += 2000 // 200 regained
    expect(allowance.take(600)).toBe(true)
    expect(allowance.available).toBe(0)
    now += 60_000
    expect(allowance.available).toBe(1000)
  })

  it('a charge may take it below zero; a part larger than the burst is taken only when it is full', () => {
    let now = 0
    const allowance = new CatchUpAllowance(1000, 100, () => now)
    allowance.charge(1500)
    expect(allowance.available).toBe(-500)
    expect(allowance.take(0)).toBe(false)
    now += 14_000 // back to 900
    expect(allowance.take(5000)).toBe(false)
    now += 1000
    expect(allowance.take(5000)).toBe(true)
    expect(allowance.available).toBe(-4000)
  })
})

const h = new Harness()
afterEach(() => {
  vi.useRealTimers()
  return h.cleanup()
})

/** A doc holding `structs` separate text items, made before any client synced it (an offline backlog). */
const backlog = (structs: number): Y.Doc => {
  const doc = new Y.Doc()
  const text = doc.getText('body')
  // each insert at the start is its own item (it cannot merge with the one typed before it)
  for (let i = 0; i < structs; i++) text.insert(0, 'x')
  return doc
}

/** Sync messages carrying content (step 2 or update) that clients sent for `doc`. */
const contentSent = (relay: TestRelay, doc: string): number =>
  relay.messages({ type: MessageType.sync, doc }).filter((m) => m.syncType !== syncProtocol.messageYjsSyncStep1).length

test('three records with 1,500 offline edits each: every second part goes as soon as the first is acked, without idling', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  const relay = h.relay()
  const client = h.client(relay)
  const names = ['acme/T-1', 'acme/T-2', 'acme/T-3']
  const handles = names.map((name) => client.open(name, { doc: backlog(1500) }))
  await relay.settle()
  for (const name of names) expect(contentSent(relay, name)).toBe(1)

  relay.ack()
  await relay.settle()
  for (const name of names) expect(contentSent(relay, name)).toBe(2)

  relay.ack()
  await relay.settle()
  for (const handle of handles) expect(handle.pending).toBe(0)
})

test('beyond the allowance, the next part waits an idle time after the ack; the backlog still gets through', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  const relay = h.relay()
  const client = h.client(relay)
  const name = 'acme/T-1'
  const handle = client.open(name, { doc: backlog(20_000) })
  await relay.settle()
  // Parts sent on acks alone, without any timer running.
  let sent = contentSent(relay, name)
  for (;;) {
    relay.ack()
    await relay.settle()
    const now = contentSent(relay, name)
    if (now === sent) break
    sent = now
  }
  // 1,000 structs a part: the burst of 16,000, and not the whole backlog
  expect(sent).toBeGreaterThanOrEqual(16)
  expect(sent).toBeLessThan(20)
  expect(handle.pending).toBeGreaterThan(0)

  for (let round = 0; round < 40 && handle.pending > 0; round++) {
    await vi.advanceTimersByTimeAsync(60_000)
    relay.ack()
    await relay.settle()
  }
  expect(handle.pending).toBe(0)
  expect(contentSent(relay, name)).toBe(20)
  expect(relay.doc(name).getText('body').toString()).toBe(handle.doc.getText('body').toString())
})
