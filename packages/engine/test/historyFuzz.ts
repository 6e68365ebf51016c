/**
 * Seeded randomized history test, shared by the FakeRelay run
 * (packages/engine/test/history.fuzz.test.ts) and the real relay run
 * (test/history-relay.test.ts). It only talks to the peers through the
 * record API it is given, so both engine copies (src and dist) work.
 *
 * K peers edit one ticket: random scalar sets (status, priority) and text
 * edits (title), random disconnects. After healing it checks that
 *
 * 1. every peer derives the identical history (entries, authors, merges);
 * 2. every pair of scalar writes of the same field that were concurrent —
 *    judged by an oracle independent of the history code: neither writer's
 *    state vector covered the other's entry — is split across two sides of
 *    one merge, and each side's value is its tip's value;
 * 3. the side a merge kept holds the current value;
 * 4. restoring a losing side makes its value the field's value on every peer;
 * 5. every entry written is counted exactly once: live, or in the (merged)
 *    compaction summaries — also when peers compacted different ranges
 *    offline (run with a small `historyLimit` for that; merges whose base
 *    was compacted are not shown as merges, so `compacting` skips check 2).
 */
import { expect } from 'vitest'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import type { Merge, RecordHandle } from '../src/index.js'

/** What the driver uses of a record handle (structural, so the dist build's handles fit too). */
export type FuzzHandle = Pick<RecordHandle, 'history' | 'set' | 'get' | 'read' | 'restore' | 'doc'>

/** One participant. */
export interface FuzzPeer {
  handle: FuzzHandle
  online: boolean
  goOffline(): void
  goOnline(): void
}

/** What the driver needs from the environment. */
export interface FuzzEnv {
  peers: FuzzPeer[]
  /** Lets in-flight messages arrive (does not need to converge). */
  settle(): Promise<void>
  /** Every peer online, waits until all replicas and author maps converged. */
  heal(): Promise<void>
}

interface Write {
  peer: number
  id: string
  field: string
  value: unknown
  client: number
  clock: number
  seen: Map<number, number>
}

const STATUS = ['open', 'in_progress', 'done', 'cancelled']
const PRIORITY = ['none', 'low', 'medium', 'high', 'urgent']

/** Entry id → (client, clock): ids are `<client base36>.<clock base36>`. */
const idOf = (id: string): { client: number; clock: number } => {
  const [client, clock] = id.split('.')
  return { client: parseInt(client!, 36), clock: parseInt(clock!, 36) }
}

const comparable = (h: FuzzHandle) => JSON.stringify(h.history())

/** Entries in a history: live changes plus the count of the compacted ones. */
const countedEntries = (h: FuzzHandle): number =>
  h.history().entries.reduce((n, e) => n + (e.kind === 'compacted' ? e.count : 1), 0)

/** Options of {@link runHistoryFuzz}. */
export interface FuzzOptions {
  steps?: number
  /** The peers compact (small `historyLimit`): skip the concurrency oracle (check 2). */
  compacting?: boolean
}

/** Runs one seed; throws with the seed in the message on failure. */
export const runHistoryFuzz = async (
  seed: number,
  env: FuzzEnv,
  { steps = 60, compacting = false }: FuzzOptions = {},
): Promise<{ merges: number; writes: number; compacted: number }> => {
  const gen = prng.create(seed)
  const writes: Write[] = []
  const { peers } = env
  /** Entries written, by anyone (each `set` whose value changed writes one). */
  let written = countedEntries(peers[0]!.handle)
  const newEntries = (h: FuzzHandle, before: Set<string>) => h.history().entries.filter((e) => !before.has(e.id) && e.kind === 'change')
  try {
    for (let step = 0; step < steps; step++) {
      const i = prng.uint32(gen, 0, peers.length - 1)
      const peer = peers[i]!
      const roll = prng.real53(gen)
      if (roll < 0.5) {
        const field = prng.bool(gen) ? 'status' : 'priority'
        const value = prng.oneOf(gen, field === 'status' ? STATUS : PRIORITY)
        const before = new Set(peer.handle.history().entries.map((e) => e.id))
        const seen = Y.decodeStateVector(Y.encodeStateVector(peer.handle.doc))
        peer.handle.set(field, value)
        const added = newEntries(peer.handle, before)
        written += added.length
        for (const e of added) writes.push({ peer: i, id: e.id, field, value, ...idOf(e.id), seen })
      } else if (roll < 0.75) {
        const title = String(peer.handle.get('title'))
        const at = prng.uint32(gen, 0, title.length)
        const cut = Math.min(title.length - at, prng.uint32(gen, 0, 2))
        const before = new Set(peer.handle.history().entries.map((e) => e.id))
        peer.handle.set('title', title.slice(0, at) + prng.word(gen, 1, 3) + title.slice(at + cut))
        written += newEntries(peer.handle, before).length
      } else if (roll < 0.9) {
        if (peer.online) peer.goOffline()
        else peer.goOnline()
      } else {
        await env.settle()
      }
    }
    await env.heal()
    const first = comparable(peers[0]!.handle)
    for (const peer of peers) expect(comparable(peer.handle), 'identical histories').toBe(first)
    expect(countedEntries(peers[0]!.handle), 'every entry counted once (live or compacted)').toBe(written)
    const history = peers[0]!.handle.history()
    const sideOf = (merge: Merge, id: string) => merge.sides.findIndex((s) => s.entryIds.includes(id))
    const scalarMerges = history.merges.filter((m) => m.fieldKind === 'scalar')
    for (const m of scalarMerges) {
      for (const side of m.sides) expect(side.value).toEqual(side.tip.value)
    }
    // Oracle: concurrent writes of the same field land on different sides of one merge.
    const present = new Set(history.entries.map((e) => e.id))
    for (const x of compacting ? [] : writes) {
      for (const y of writes) {
        if (x === y || x.field !== y.field || x.id >= y.id) continue
        if (!present.has(x.id) || !present.has(y.id)) continue // compacted
        const xSawY = (x.seen.get(y.client) ?? 0) > y.clock
        const ySawX = (y.seen.get(x.client) ?? 0) > x.clock
        if (xSawY || ySawX) continue
        const merge = scalarMerges.find((m) => m.field === x.field && sideOf(m, x.id) !== -1 && sideOf(m, y.id) !== -1 && sideOf(m, x.id) !== sideOf(m, y.id))
        if (merge === undefined) throw new Error(`concurrent writes ${x.id} (${String(x.value)}) and ${y.id} (${String(y.value)}) of ${x.field} are not a merge`)
      }
    }
    // The kept side holds the current value.
    const current = peers[0]!.handle.read().fields
    for (const m of scalarMerges) {
      if (m.kept !== null) expect(m.sides[m.kept]!.value).toEqual(current[m.field])
    }
    // Restore a losing side of the last merge that has one.
    const target = [...scalarMerges]
      .reverse()
      .map((m) => ({ m, side: m.sides.find((s, k) => k !== m.kept && JSON.stringify(s.value) !== JSON.stringify(current[m.field])) }))
      .find((t) => t.side !== undefined)
    if (target !== undefined) {
      const restorer = peers[prng.uint32(gen, 0, peers.length - 1)]!
      const before = new Set(restorer.handle.history().entries.map((e) => e.id))
      restorer.handle.restore(target.side!)
      written += newEntries(restorer.handle, before).length
      await env.heal()
      expect(countedEntries(peers[0]!.handle), 'every entry counted once after the restore').toBe(written)
      for (const peer of peers) {
        expect(peer.handle.get(target.m.field), 'restored value').toEqual(target.side!.value)
        expect(comparable(peer.handle)).toBe(comparable(peers[0]!.handle))
      }
      const last = restorer.handle.history().entries.filter((e) => e.kind === 'change' && e.restoreOf !== undefined)
      expect(last.at(-1)).toMatchObject({ restoreOf: target.side!.tip.id, value: target.side!.value })
    }
    const compacted = peers[0]!.handle.history().entries.reduce((n, e) => n + (e.kind === 'compacted' ? e.count : 0), 0)
    return { merges: scalarMerges.length, writes: writes.length, compacted }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    throw new Error(`history fuzz seed ${seed} failed: ${message}`, { cause: error })
  }
}
