/**
 * Checks of updates against the doc they are applied to
 * (`src/security/docGuard.ts`): nesting depth of shared types across
 * updates, and map entries without an origin per key across updates. Both
 * see what a per-update check cannot; legitimate traffic (random edits by
 * several peers, concurrent offline sets of one new key) passes.
 *
 * Seeded: a fresh seed every run, printed; replay one with
 * `SEED=<n> npx vitest run apps/relay/test/docGuard.test.ts`.
 */
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { DocGuard, type DocLimits } from '../src/security/docGuard.js'
import { readUpdateItems, validateUpdateV1, type UpdateLimits } from '../src/security/validateUpdate.js'
import { Room, type RoomPeer } from '../src/rooms/Room.js'
import { silentLogger } from '../src/observability/logger.js'
import { craftRandomUpdate, mutate, randomEditCorpus } from '../../../test/fuzz/updateCorpus.js'

const SEED = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`docGuard tests: seed ${SEED} (replay with SEED=${SEED})`)

/** The relay's defaults. */
const LIMITS: DocLimits = { maxTypeDepth: 100, maxKeyConflicts: 1000, maxKeyWalk: 1_000_000 }

const bytes = (write: (e: encoding.Encoder) => void): Uint8Array => {
  const e = encoding.createEncoder()
  write(e)
  return encoding.toUint8Array(e)
}

type Id = [client: number, clock: number]

/** One item of a crafted update. */
interface Crafted {
  /** Content ref: 7 = a Y.Array, 8 = `Any` null. */
  ref: 7 | 8
  origin?: Id
  rightOrigin?: Id
  /** Explicit parent (only written without origins): a root name or a type item. */
  parent?: string | Id
  key?: string
}

/** An update of one client's items from `clock` on, and an empty delete set. */
const craft = (client: number, clock: number, items: Crafted[]): Uint8Array =>
  bytes((e) => {
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, items.length)
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
    for (const item of items) {
      encoding.writeUint8(e, item.ref | (item.key !== undefined ? 0x20 : 0) | (item.rightOrigin ? 0x40 : 0) | (item.origin ? 0x80 : 0))
      if (item.origin) item.origin.forEach((n) => encoding.writeVarUint(e, n))
      if (item.rightOrigin) item.rightOrigin.forEach((n) => encoding.writeVarUint(e, n))
      if (!item.origin && !item.rightOrigin) {
        if (typeof item.parent === 'string') {
          encoding.writeVarUint(e, 1)
          encoding.writeVarString(e, item.parent)
        } else {
          encoding.writeVarUint(e, 0)
          item.parent!.forEach((n) => encoding.writeVarUint(e, n))
        }
        if (item.key !== undefined) encoding.writeVarString(e, item.key)
      }
      if (item.ref === 7) encoding.writeVarUint(e, 0)
      else {
        encoding.writeVarUint(e, 1)
        encoding.writeUint8(e, 126)
      }
    }
    encoding.writeVarUint(e, 0)
  })

/** A doc behind a guard, applying updates the way the relay does: validate, check, apply. */
class Guarded {
  readonly doc = new Y.Doc()
  readonly guard: DocGuard
  private readonly updateLimits: UpdateLimits

  constructor(limits: DocLimits) {
    this.guard = new DocGuard(this.doc, limits)
    this.updateLimits = { maxTypeDepth: limits.maxTypeDepth, maxKeyConflicts: limits.maxKeyConflicts }
  }

  /** Applies `update` unless refused; returns the refusal reason or null. */
  apply(update: Uint8Array): string | null {
    const valid = validateUpdateV1(update, this.updateLimits)
    if (!valid.ok) return `invalid: ${valid.reason}`
    const check = this.guard.check(update, valid)
    if (!check.ok) return check.reason
    Y.applyUpdate(this.doc, update)
    check.applied()
    return null
  }
}

/** Depth of the deepest shared type of `doc` (root types are 0), iteratively. */
const deepestType = (doc: Y.Doc): number => {
  let deepest = 0
  const stack: Array<[Y.AbstractType<any>, number]> = [...doc.share.values()].map((t) => [t, 0])
  while (stack.length > 0) {
    const [type, depth] = stack.pop()!
    deepest = Math.max(deepest, depth)
    for (let item = type._start; item !== null; item = item.right) {
      if (item.content instanceof Y.ContentType) stack.push([item.content.type, depth + 1])
    }
    for (const last of type._map.values()) {
      for (let item: Y.Item | null = last; item !== null; item = item.left) {
        if (item.content instanceof Y.ContentType) stack.push([item.content.type, depth + 1])
      }
    }
  }
  return deepest
}

/** `n` nested Y.Arrays of `client` from `clock` on, the first in `parent`, each next one an explicit child of the previous. */
const nest = (n: number, client: number, clock: number, parent: string | Id): Uint8Array =>
  craft(
    client,
    clock,
    Array.from({ length: n }, (_, i) => ({ ref: 7, parent: i === 0 ? parent : [client, clock + i - 1] })),
  )

describe('readUpdateItems', () => {
  it('reads every item of seeded random edits as Yjs decodes it', () => {
    const corpus = randomEditCorpus(prng.create(SEED), 300)
    let items = 0
    for (const update of corpus.updates) {
      const read = readUpdateItems(update)
      expect(read, `seed ${SEED}`).not.toBe(null)
      const decoded = Y.decodeUpdate(update).structs.filter((s): s is Y.Item => s instanceof Y.Item)
      expect(read!.length).toBe(decoded.length)
      read!.forEach((item, i) => {
        const yjs = decoded[i]
        expect({ ...item }).toEqual({
          client: yjs.id.client,
          clock: yjs.id.clock,
          length: yjs.length,
          isType: yjs.content instanceof Y.ContentType,
          origin: yjs.origin && { client: yjs.origin.client, clock: yjs.origin.clock },
          rightOrigin: yjs.rightOrigin && { client: yjs.rightOrigin.client, clock: yjs.rightOrigin.clock },
          parent:
            yjs.parent === null
              ? null
              : typeof yjs.parent === 'string'
                ? { root: yjs.parent }
                : { client: (yjs.parent as Y.ID).client, clock: (yjs.parent as Y.ID).clock },
          parentSub: yjs.origin === null && yjs.rightOrigin === null ? yjs.parentSub : null,
        })
      })
      items += read!.length
    }
    expect(items).toBeGreaterThan(100)
  })
})

describe('nesting depth against the doc', () => {
  it('a nest built over several shallow updates is refused once it would pass the limit; nothing of the refused update is applied', () => {
    const guarded = new Guarded(LIMITS)
    // the attack of the relay fuzzer, scaled down: updates of 30 levels, each continuing the previous one
    const refusals: Array<string | null> = []
    for (let part = 0; part < 5; part++) {
      refusals.push(guarded.apply(nest(30, 7, part * 30, part === 0 ? 'root' : [7, part * 30 - 1])))
    }
    expect(refusals.slice(0, 3)).toEqual([null, null, null])
    expect(refusals[3]).toMatch(/nested deeper than 100 in this doc/)
    expect(Y.getState(guarded.doc.store, 7)).toBe(90)
    expect(deepestType(guarded.doc)).toBe(90)
    // up to the limit exactly is fine
    expect(guarded.apply(nest(10, 7, 90, [7, 89]))).toBe(null)
    expect(deepestType(guarded.doc)).toBe(100)
    expect(guarded.apply(nest(1, 7, 100, [7, 99]))).toMatch(/nested deeper/)
    // a sibling at the limit, and non-type content in the deepest type, are fine
    expect(guarded.apply(nest(1, 7, 100, [7, 98]))).toBe(null)
    expect(guarded.apply(craft(7, 101, [{ ref: 8, parent: [7, 99] }]))).toBe(null)
  })

  it('nesting through origins (a type placed after an item of the parent, no explicit parent) counts too, within one update and across updates', () => {
    // level i: an Any item in the previous type, then a Y.Array whose origin is that item (so Yjs puts it in the same type)
    const levels = (n: number, clock: number, first: string | Id): Crafted[] => {
      const items: Crafted[] = []
      for (let i = 0; i < n; i++) {
        const parent: string | Id = i === 0 ? first : [9, clock + 2 * i - 1]
        items.push({ ref: 8, parent })
        items.push({ ref: 7, origin: [9, clock + 2 * i] })
      }
      return items
    }
    // the per-update validator cannot see this nest: no type item names another as its parent
    const deep = craft(9, 0, levels(150, 0, 'root'))
    expect(validateUpdateV1(deep).ok).toBe(true)
    expect(new Guarded(LIMITS).apply(deep)).toMatch(/nested deeper than 100/)

    const guarded = new Guarded(LIMITS)
    expect(guarded.apply(craft(9, 0, levels(60, 0, 'root')))).toBe(null)
    expect(deepestType(guarded.doc)).toBe(60)
    expect(guarded.apply(craft(9, 120, levels(60, 120, [9, 119])))).toMatch(/nested deeper than 100/)
    expect(guarded.apply(craft(9, 120, levels(40, 120, [9, 119])))).toBe(null)
    expect(deepestType(guarded.doc)).toBe(100)
  })

  it('parents are found whatever the order of clients in the update, and a type the update refers to in the doc by a right origin', () => {
    const guarded = new Guarded({ ...LIMITS, maxTypeDepth: 5 })
    expect(guarded.apply(nest(4, 1, 0, 'root'))).toBe(null) // depths 1..4
    // client 3 (written first) nests in client 2's type, which nests in the doc's deepest type
    const twoClients = bytes((e) => {
      encoding.writeVarUint(e, 2)
      for (const [client, parent] of [
        [3, [2, 0]],
        [2, [1, 3]],
      ] as const) {
        encoding.writeVarUint(e, 1)
        encoding.writeVarUint(e, client)
        encoding.writeVarUint(e, 0)
        encoding.writeUint8(e, 7)
        encoding.writeVarUint(e, 0)
        parent.forEach((n) => encoding.writeVarUint(e, n))
        encoding.writeVarUint(e, 0)
      }
      encoding.writeVarUint(e, 0)
    })
    expect(guarded.apply(twoClients)).toMatch(/nested deeper than 5/)
    // an Any item in the depth-4 type, then a type before it (right origin only): depth 5, fine; one more level is not
    expect(
      guarded.apply(
        craft(4, 0, [
          { ref: 8, parent: [1, 3] },
          { ref: 7, rightOrigin: [4, 0] },
        ]),
      ),
    ).toBe(null)
    expect(guarded.apply(craft(4, 2, [{ ref: 7, parent: [4, 1] }]))).toMatch(/nested deeper than 5/)
  })

  it('nests made by Yjs within the limit pass; one level more is refused', () => {
    const client = new Y.Doc()
    const guarded = new Guarded({ ...LIMITS, maxTypeDepth: 20 })
    const updates: Uint8Array[] = []
    client.on('update', (u: Uint8Array) => updates.push(u))
    let map = client.getMap<unknown>('root')
    for (let depth = 1; depth <= 21; depth++) {
      const child = new Y.Map<unknown>()
      map.set('child', child)
      child.set('depth', depth)
      map = child
    }
    const results = updates.map((u) => guarded.apply(u))
    expect(results.slice(0, 40).every((r) => r === null)).toBe(true) // 20 levels: a set of the child and of its depth each
    expect(results[40]).toMatch(/nested deeper than 20/)
    expect(deepestType(guarded.doc)).toBe(20)
  })
})

describe('map entries without an origin against the doc', () => {
  /** `n` entries of root map `m`, key `k`, without origins, of `client` from `clock` on. */
  const blind = (n: number, client: number, clock = 0, key = 'k'): Uint8Array =>
    craft(
      client,
      clock,
      Array.from({ length: n }, () => ({ ref: 8, parent: 'm', key })),
    )

  it('the fuzzer attack (updates of 1000 entries for one key) is refused from the update that passes the limit, and refused fast', () => {
    const guarded = new Guarded(LIMITS)
    const walked: number[] = []
    const times: number[] = []
    const results: Array<string | null> = []
    for (let part = 0; part < 6; part++) {
      const before = guarded.guard.walked
      const started = performance.now()
      results.push(guarded.apply(blind(1000, 5_000_000 + part)))
      times.push(performance.now() - started)
      walked.push(guarded.guard.walked - before)
    }
    console.log(
      `  refusals: ${walked.slice(1).join(', ')} entries walked; ${times
        .slice(1)
        .map((t) => t.toFixed(1))
        .join(', ')} ms`,
    )
    expect(results[0]).toBe(null)
    for (const r of results.slice(1))
      expect(r).toMatch(
        /more than 1000 entries without an origin for one map key in this doc \(the key "k" has 1000, the update adds 1000\)/,
      )
    // fast: the key's history (1000 entries) is walked once, then its count is kept, whatever the refused updates hold
    expect(walked.slice(1).reduce((a, b) => a + b)).toBeLessThanOrEqual(1000)
    // other keys of the same map are not affected
    expect(guarded.apply(blind(5, 6_000_000, 0, 'other'))).toBe(null)
  })

  it('small updates add up: the count is kept per key across updates', () => {
    const guarded = new Guarded({ ...LIMITS, maxKeyConflicts: 10 })
    for (let i = 0; i < 10; i++) expect(guarded.apply(blind(1, 100 + i))).toBe(null)
    expect(guarded.apply(blind(1, 200))).toMatch(/more than 10 entries/)
    // a normal set (origin = the current value) is always fine
    const current = (guarded.doc.getMap('m') as Y.Map<unknown>)._map.get('k')!
    expect(guarded.apply(craft(300, 0, [{ ref: 8, origin: [current.id.client, current.id.clock], key: 'k' }]))).toBe(null)
  })

  it('a doc that already holds entries (loaded from storage) is counted by walking the key history once', () => {
    const source = new Guarded(LIMITS)
    for (let i = 0; i < 8; i++) expect(source.apply(blind(1, 100 + i))).toBe(null)
    const loaded = new Guarded({ ...LIMITS, maxKeyConflicts: 10 })
    Y.applyUpdate(loaded.doc, Y.encodeStateAsUpdate(source.doc))
    expect(loaded.apply(blind(3, 500))).toMatch(/the key "k" has 8, the update adds 3/)
    expect(loaded.apply(blind(2, 500))).toBe(null)
    expect(loaded.apply(blind(1, 600))).toMatch(/has 10, the update adds 1/)
  })

  it('entries with only a right origin in a map key count as entries without an origin', () => {
    const guarded = new Guarded({ ...LIMITS, maxKeyConflicts: 3 })
    expect(guarded.apply(blind(1, 1))).toBe(null)
    const first = [1, 0] as Id
    expect(
      guarded.apply(
        craft(2, 0, [
          { ref: 8, rightOrigin: first },
          { ref: 8, rightOrigin: first },
        ]),
      ),
    ).toBe(null)
    expect(guarded.apply(craft(3, 0, [{ ref: 8, rightOrigin: first }]))).toMatch(/more than 3 entries/)
    // in an array, an insert at the start (right origin only) is ordinary
    const list = new Guarded({ ...LIMITS, maxKeyConflicts: 3 })
    expect(list.apply(craft(1, 0, [{ ref: 8, parent: 'list' }]))).toBe(null)
    for (let i = 0; i < 10; i++) expect(list.apply(craft(10 + i, 0, [{ ref: 8, rightOrigin: [1, 0] }]))).toBe(null)
  })

  it('maps of the update itself (a new Y.Map with keys) are checked against the update only', () => {
    const guarded = new Guarded({ ...LIMITS, maxKeyConflicts: 2 })
    const items: Crafted[] = [
      { ref: 7, parent: 'root', key: 'child' },
      ...Array.from({ length: 3 }, () => ({ ref: 8 as const, parent: [1, 0] as Id, key: 'x' })),
    ]
    expect(guarded.apply(craft(1, 0, items))).toMatch(/invalid: more than 2 origin-less entries/) // the per-update check
    expect(guarded.apply(craft(1, 0, items.slice(0, 3)))).toBe(null)
    expect(guarded.apply(craft(2, 0, [{ ref: 8, parent: [1, 0], key: 'x' }]))).toMatch(/more than 2 entries without an origin/)
  })

  it('several clients offline setting the same new key: every update is accepted, one by one and merged', () => {
    const peers = Array.from({ length: 12 }, (_, i) => {
      const doc = new Y.Doc()
      doc.clientID = 1000 + i
      return doc
    })
    // a shared history first: the key exists, everyone has it
    peers[0].getMap('settings').set('title', 'draft')
    const base = Y.encodeStateAsUpdate(peers[0])
    for (const peer of peers.slice(1)) Y.applyUpdate(peer, base)
    const offline: Uint8Array[] = []
    peers.forEach((peer, i) => {
      const settings = peer.getMap<unknown>('settings')
      const before = Y.encodeStateVector(peer)
      settings.set('status', `set by ${i}`) // a key none of them has seen: no origin
      settings.set('status', `changed by ${i}`) // the second set has the first as its origin
      settings.set('title', `title ${i}`) // an existing key: origin = the value they saw
      offline.push(Y.encodeStateAsUpdate(peer, before))
    })
    const limits = { ...LIMITS, maxKeyConflicts: 12 }
    const relay = new Guarded(limits)
    expect(relay.apply(base)).toBe(null)
    for (const update of offline) expect(relay.apply(update)).toBe(null)
    // the same changes merged into one update (a client's sync step 2 to a relay that lost them)
    const merged = new Guarded(limits)
    expect(merged.apply(Y.mergeUpdates([base, ...offline]))).toBe(null)
    const expected = new Y.Doc()
    Y.applyUpdate(expected, Y.mergeUpdates([base, ...offline]))
    expect(relay.doc.getMap('settings').toJSON()).toEqual(expected.getMap('settings').toJSON())
    expect(merged.doc.getMap('settings').toJSON()).toEqual(expected.getMap('settings').toJSON())
    // a 13th client setting the same key blind is over this (small) limit
    const late = new Y.Doc()
    late.clientID = 5000
    late.getMap('settings').set('status', 'late')
    expect(relay.apply(Y.encodeStateAsUpdate(late))).toMatch(/more than 12 entries/)
  })
})

describe('walks along map-key histories', () => {
  /** `n` entries of `client` from `clock` on whose origin is `origin` (Yjs takes parent and key from it). */
  const after = (origin: Id, n: number, client: number, clock = 0): Uint8Array =>
    craft(
      client,
      clock,
      Array.from({ length: n }, () => ({ ref: 8, origin, key: 'k' })),
    )

  it('entries naming an old value of the key as their origin (the origin-less attack with origins) are bounded per update', () => {
    const guarded = new Guarded(LIMITS)
    expect(guarded.apply(craft(1, 0, [{ ref: 8, parent: 'm', key: 'k' }]))).toBe(null)
    const results: Array<string | null> = []
    const walked: number[] = []
    const times: number[] = []
    for (let part = 0; part < 6; part++) {
      const before = guarded.guard.walked
      const started = performance.now()
      results.push(guarded.apply(after([1, 0], 1000, 5_000_000 + part)))
      times.push(performance.now() - started)
      walked.push(guarded.guard.walked - before)
    }
    console.log(`  walks: ${walked.join(', ')} entries; ${times.map((t) => t.toFixed(1)).join(', ')} ms`)
    // the 1st walks nothing (the origin is the current value), the 2nd 1000 × 1000, the 3rd would walk 1000 × 2000
    expect(results.slice(0, 2)).toEqual([null, null])
    for (const r of results.slice(2)) expect(r).toMatch(/walk more than 1000000 entries of map-key histories/)
    // refused fast: the guard stops just past the bound (1000 entries × 1001 history entries), it does not walk the whole history
    expect(walked).toEqual([0, 1000, 1001, 1001, 1001, 1001])
    // fewer such entries per update still pass, each within the bound
    expect(guarded.apply(after([1, 0], 450, 6_000_000))).toBe(null) // 450 × 2000
    expect(guarded.apply(after([1, 0], 450, 6_000_001))).toMatch(/walk more than/) // 450 × 2450
  })

  it('an update that repeats structs the doc has and attaches new entries to an old one of its own client is walked too', () => {
    const guarded = new Guarded({ ...LIMITS, maxKeyWalk: 100 })
    const first: Crafted = { ref: 8, parent: 'm', key: 'k' }
    expect(guarded.apply(craft(1, 0, [first]))).toBe(null)
    expect(guarded.apply(after([1, 0], 1, 2))).toBe(null) // client 2 sets the key after client 1
    // client 1's section starts at clock 0 (which the doc has); its 150 new entries each walk past client 2's
    const update = craft(1, 0, [first, ...Array.from({ length: 150 }, (): Crafted => ({ ref: 8, origin: [1, 0], key: 'k' }))])
    expect(guarded.apply(update)).toMatch(/walk more than 100 entries/)
    expect(guarded.apply(craft(1, 0, [first, ...Array.from({ length: 50 }, (): Crafted => ({ ref: 8, origin: [1, 0], key: 'k' }))]))).toBe(
      null,
    )
  })

  it('origin-less entries on a key with a long history cost that history each', () => {
    const guarded = new Guarded({ ...LIMITS, maxKeyWalk: 10_000 })
    // a history of 3000 ordinary sets by alternating clients (so they do not merge)
    expect(guarded.apply(craft(1, 0, [{ ref: 8, parent: 'm', key: 'k' }]))).toBe(null)
    let last: Id = [1, 0]
    for (let i = 1; i < 3000; i++) {
      const client = 10 + (i % 2)
      const clock = Y.getState(guarded.doc.store, client)
      expect(guarded.apply(after(last, 1, client, clock))).toBe(null)
      last = [client, clock]
    }
    expect(guarded.apply(craft(99, 0, [{ ref: 8, parent: 'm', key: 'k' }]))).toBe(null) // one blind entry: 3000 steps
    expect(
      guarded.apply(
        craft(
          98,
          0,
          [1, 2, 3, 4].map(() => ({ ref: 8 as const, parent: 'm', key: 'k' })),
        ),
      ),
    ).toMatch(/walk more than 10000/)
  })

  it('clients that were offline while others changed a key: their concurrent sets pass', () => {
    const peers = Array.from({ length: 6 }, (_, i) => {
      const doc = new Y.Doc()
      doc.clientID = 100 + i
      return doc
    })
    peers[0].getMap('m').set('k', 0)
    const base = Y.encodeStateAsUpdate(peers[0])
    for (const peer of peers) Y.applyUpdate(peer, base)
    const relay = new Guarded({ ...LIMITS, maxKeyWalk: 1000 })
    expect(relay.apply(base)).toBe(null)
    // each peer, offline, sets the key 50 times; they sync one after the other
    const offline = peers.map((peer) => {
      const before = Y.encodeStateVector(peer)
      for (let i = 0; i < 50; i++) peer.getMap('m').set('k', `${peer.clientID}:${i}`)
      return Y.encodeStateAsUpdate(peer, before)
    })
    for (const update of offline) expect(relay.apply(update)).toBe(null)
    const expected = new Y.Doc()
    for (const update of [base, ...offline]) Y.applyUpdate(expected, update)
    expect(relay.doc.getMap('m').get('k')).toBe(expected.getMap('m').get('k'))
  })
})

describe('legitimate traffic', () => {
  it('every update of seeded random edits by three peers (every Yjs type, nesting, subdocs, undo/redo, merges) passes with the default limits', () => {
    const corpus = randomEditCorpus(prng.create(SEED + 1), 400)
    const guarded = new Guarded(LIMITS)
    const plain = new Y.Doc()
    for (const update of corpus.updates) {
      expect(guarded.apply(update), `seed ${SEED + 1}`).toBe(null)
      Y.applyUpdate(plain, update)
    }
    expect(Y.encodeStateAsUpdate(guarded.doc)).toEqual(Y.encodeStateAsUpdate(plain))
  })
})

describe('hostile input', () => {
  it('structurally valid random updates and mutations of real ones, applied in sequence: the guard never throws', () => {
    const gen = prng.create(SEED + 2)
    const corpus = randomEditCorpus(prng.create(SEED + 3), 150).updates
    let checked = 0
    for (let round = 0; round < 20; round++) {
      const guarded = new Guarded({ ...LIMITS, maxTypeDepth: 3, maxKeyConflicts: 2, maxKeyWalk: 50 })
      for (let i = 0; i < 100; i++) {
        const input = prng.bool(gen) ? craftRandomUpdate(gen) : mutate(gen, prng.oneOf(gen, corpus), prng.oneOf(gen, corpus)).bytes
        const valid = validateUpdateV1(input, { maxTypeDepth: 3, maxKeyConflicts: 2 })
        if (!valid.ok) continue
        let check: ReturnType<DocGuard['check']>
        try {
          check = guarded.guard.check(input, valid)
        } catch (error) {
          throw new Error(`seed ${SEED + 2}: the guard threw ${(error as Error).message} on ${Buffer.from(input).toString('hex')}`)
        }
        checked++
        if (!check.ok) continue
        try {
          Y.applyUpdate(guarded.doc, input)
        } catch {
          continue // Yjs throws on some valid shapes against some docs; the relay closes such a connection
        }
        guarded.doc.store.pendingStructs = null // as the relay does
        guarded.doc.store.pendingDs = null
        check.applied()
      }
    }
    expect(checked).toBeGreaterThan(500)
  })
})

describe('Room.applyPeerUpdate', () => {
  const peer: RoomPeer = {
    id: 'p1',
    identity: { userId: 'u1', name: 'u1', access: new Map(), expiresAt: null, anonymous: true },
    sendUpdate: () => {},
    sendAwareness: () => {},
    sendAck: () => {},
    sendAuthors: () => {},
    mayWrite: () => true,
    awarenessBytes: { held: 0, max: Infinity },
  }

  it('refuses an update over a doc limit before Yjs sees it: nothing applied, stored or broadcast', () => {
    const stored: Uint8Array[] = []
    const room = new Room('w/nest', { onUpdate: (_room, update) => stored.push(update) }, silentLogger(), { ...LIMITS, maxTypeDepth: 3 })
    const apply = (update: Uint8Array) => {
      const valid = validateUpdateV1(update, room.updateLimits)
      if (!valid.ok) throw new Error(valid.reason)
      return room.applyPeerUpdate(peer, update, valid)
    }
    expect(apply(nest(3, 1, 0, 'root'))).toBe('applied')
    expect(stored).toHaveLength(1)
    expect(apply(nest(1, 1, 3, [1, 2]))).toEqual({ refused: 'shared types would be nested deeper than 3 in this doc' })
    expect(stored).toHaveLength(1)
    expect(Y.getState(room.doc.store, 1)).toBe(3)
    expect(room.authors.get(1)?.userId).toBe('u1')
    room.destroy()
  })
})
