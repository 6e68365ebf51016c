/**
 * The relay applies presence entries it has decoded and filtered straight to
 * the room's Awareness (`applyAwarenessEntries`) instead of encoding them for
 * y-protocols to parse again. It must do exactly what y-protocols'
 * `applyAwarenessUpdate` does: the same states and clocks, the same `change`
 * and `update` events, for random sequences of new, repeated, older and
 * removed states. A fresh seed every run (replay with SEED=).
 */
import { describe, expect, it } from 'vitest'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  applyAwarenessEntries,
  encodeAwarenessEntries,
  encodeAwarenessStates,
  stateJson,
  type AwarenessEntry,
} from '../src/security/awarenessFilter.js'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))

type Event = { kind: string; added: number[]; updated: number[]; removed: number[]; origin: unknown }

/** An Awareness without a local state (as the relay's), recording its events. */
const recorded = (): { awareness: awarenessProtocol.Awareness; events: Event[] } => {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awareness.setLocalState(null)
  const events: Event[] = []
  for (const kind of ['change', 'update'] as const) {
    awareness.on(kind, ({ added, updated, removed }: Omit<Event, 'kind' | 'origin'>, origin: unknown) =>
      events.push({ kind, added: [...added], updated: [...updated], removed: [...removed], origin }),
    )
  }
  return { awareness, events }
}

const snapshot = (awareness: awarenessProtocol.Awareness) =>
  [...awareness.meta.keys()]
    .filter((id) => id !== awareness.clientID) // each Awareness's own (empty) local state
    .sort((a, b) => a - b)
    .map((id) => ({ id, clock: awareness.meta.get(id)!.clock, state: awareness.states.get(id) ?? null }))

const STATES: Array<Record<string, unknown> | null> = [
  null,
  { user: { id: 'ada', name: 'Ada', color: 'hsl(10 65% 45%)' } },
  { user: { id: 'ada', name: 'Ada', color: 'hsl(10 65% 45%)' }, field: 'title' },
  { user: { id: 'bob', name: 'Bob' }, cursor: { anchor: 3, head: 7 } },
  { typing: true, n: 1e21 },
]

describe(`applyAwarenessEntries (SEED=${SEED})`, () => {
  it('does what y-protocols’ applyAwarenessUpdate does with the same entries: states, clocks and events', () => {
    const gen = prng.create(SEED)
    const ours = recorded()
    const theirs = recorded()
    const origin = { source: 'peer' }
    for (let round = 0; round < 400; round++) {
      const entries: AwarenessEntry[] = []
      const count = prng.int32(gen, 1, 4)
      const ids = new Set<number>()
      for (let i = 0; i < count; i++) {
        const clientId = prng.int32(gen, 1, 6)
        if (ids.has(clientId)) continue // the relay applies one entry per id (the last one sent)
        ids.add(clientId)
        const held = theirs.awareness.meta.get(clientId)?.clock ?? 0
        const clock = Math.max(0, held + prng.int32(gen, -1, 2))
        const template = prng.oneOf(gen, STATES)
        // a fresh object, as decoding a message makes one
        const state = template === null ? null : (JSON.parse(JSON.stringify(template)) as Record<string, unknown>)
        entries.push({ clientId, clock, state, size: 0 })
      }
      awarenessProtocol.applyAwarenessUpdate(theirs.awareness, encodeAwarenessEntries(entries), origin)
      applyAwarenessEntries(ours.awareness, entries, origin)
      expect(snapshot(ours.awareness), `SEED=${SEED} round ${round}`).toEqual(snapshot(theirs.awareness))
      expect(ours.events, `SEED=${SEED} round ${round}`).toEqual(theirs.events)
    }
    expect(ours.events.length).toBeGreaterThan(100)
  })

  it('a keep-alive (the same state at a newer clock) keeps the state object held, and counts as updated, not changed', () => {
    const { awareness, events } = recorded()
    const first = { user: { id: 'ada', name: 'Ada' } }
    applyAwarenessEntries(awareness, [{ clientId: 7, clock: 1, state: first, size: 0 }], null)
    applyAwarenessEntries(awareness, [{ clientId: 7, clock: 2, state: { user: { id: 'ada', name: 'Ada' } }, size: 0 }], null)
    expect(awareness.states.get(7)).toBe(first)
    expect(awareness.meta.get(7)!.clock).toBe(2)
    expect(events.map((e) => [e.kind, e.added, e.updated, e.removed])).toEqual([
      ['change', [7], [], []],
      ['update', [7], [], []],
      ['update', [], [7], []],
    ])
  })

  it('encodes the held states byte for byte as y-protocols does, each state’s JSON made once', () => {
    const { awareness } = recorded()
    const entries: AwarenessEntry[] = STATES.filter((s) => s !== null).map((state, i) => ({
      clientId: 10 + i,
      clock: i + 1,
      state,
      size: 0,
    }))
    applyAwarenessEntries(awareness, entries, null)
    const ids = [...awareness.states.keys()]
    expect(encodeAwarenessStates(awareness, ids)).toEqual(awarenessProtocol.encodeAwarenessUpdate(awareness, ids))
    const state = awareness.states.get(10) as Record<string, unknown>
    expect(stateJson(state)).toBe(JSON.stringify(state))
    expect(stateJson(null)).toBe('null')
  })
})
