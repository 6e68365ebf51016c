/**
 * Seeded randomized history test, shared by the in-process relay run
 * (packages/engine/test/history.fuzz.test.ts) and the real relay run
 * (test/history-relay.test.ts). It only talks to the peers through the
 * record API it is given, so both engine copies (src and dist) work.
 *
 * K peers edit one ticket: random scalar sets (status, priority), text
 * edits through the record API (title: a run of 0–2 of its words replaced
 * by a new word `tNNN`, so concurrent replacements collide), typing directly into the
 * description's `Y.Text` (insertions at word boundaries; a burst ends when
 * the driver flushes it — run with a long `historyIdleMs` so no timer ends it
 * in between), random disconnects. After healing it checks that
 *
 * 1. every peer derives the identical history (entries, authors, merges);
 * 2. every pair of scalar writes of the same field that were concurrent —
 *    judged by an oracle independent of the history code: neither writer's
 *    state vector covered the other's entry — is split across two sides of
 *    one merge, and each side's value is its tip's value;
 * 3. every pair of concurrent typing bursts (same oracle; a burst's state
 *    vector is taken at its first keystroke, where its base is chosen) is
 *    split across two sides of one text merge, and the final text holds
 *    every word both bursts typed;
 * 4. the side a merge kept holds the current value;
 * 5. restoring a losing side makes its value the field's value on every
 *    peer — when the run left no merge with a losing side, the driver makes
 *    one (two peers offline set priority to different values), so every run
 *    restores once;
 * 6. the title — a single-line field — converged to a value made of whole
 *    words someone wrote, each once (never an interleaving of two
 *    replacements, nor a settlement's text doubled), and no collision in it
 *    is left unsettled (not in `compacting` runs, which leave the title
 *    alone: a bound of 10 compacts its merges away as they happen);
 * 7. every entry written is counted exactly once: live, or in the (merged)
 *    compaction summaries — also when peers compacted different ranges
 *    offline (run with a small `historyLimit` for that; merges whose base
 *    was compacted are not shown as merges, so `compacting` skips checks 2
 *    and 3).
 */
import { expect } from 'vitest'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import type { Merge, RecordHandle } from '../src/index.js'

/** What the driver uses of a record handle (structural, so the dist build's handles fit too). */
export type FuzzHandle = Pick<RecordHandle, 'history' | 'set' | 'get' | 'read' | 'restore' | 'doc' | 'text' | 'flushHistory'>

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

/** A typing burst in the description: the words typed, and what its writer had seen at the first keystroke. */
interface Burst {
  peer: number
  words: string[]
  seen: Map<number, number>
}

/** A burst whose entry was written. */
type TypedBurst = Burst & { id: string; client: number; clock: number }

const STATUS = ['open', 'in_progress', 'done', 'cancelled']
const PRIORITY = ['none', 'low', 'medium', 'high', 'urgent']

/** Entry id → (client, clock): ids are `<client base36>.<clock base36>`. */
const idOf = (id: string): { client: number; clock: number } => {
  const [client, clock] = id.split('.')
  return { client: parseInt(client!, 36), clock: parseInt(clock!, 36) }
}

const comparable = (h: FuzzHandle) => JSON.stringify(h.history())

/**
 * Entries in a history: live changes plus the count of the compacted ones —
 * of every field but the title, whose settlements the peers write
 * themselves (the title has its own checks), and without the description's
 * settlements (`descriptionRewrites` runs, which do not compact).
 */
const countedEntries = (h: FuzzHandle): number =>
  h
    .history()
    .entries.reduce(
      (n, e) => n + (e.kind === 'compacted' ? e.count - (e.fields.title ?? 0) : e.field === 'title' || e.mode === 'auto' ? 0 : 1),
      0,
    )

/** What a run did: the suites check that it tested something. */
export interface FuzzResult {
  /** Scalar merges the random steps made (before any merge the driver made for the restore). */
  merges: number
  /** Text merges of the description. */
  textMerges: number
  /** Pairs of concurrent typing bursts checked against the text merges (0 when compacting). */
  concurrentBursts: number
  /** Typing bursts written. */
  bursts: number
  /** Scalar writes. */
  writes: number
  /** Entries in the compaction summaries. */
  compacted: number
  /** Restores made and checked (1 per run). */
  restored: number
  /** Merges of the title whose edits collided (settled on the later change). */
  titleCollisions: number
  /** Merges of the description whose edits collided (settled on both versions; `descriptionRewrites` runs). */
  descriptionCollisions: number
  /** Whether the run left no losing side, so the driver made the merge it restored. */
  forced: boolean
  /** What a person sees at the end (the fields, and each merge's field and summary): the same for a seed every time. */
  outcome: string
}

/** Options of {@link runHistoryFuzz}. */
export interface FuzzOptions {
  steps?: number
  /** The peers compact (small `historyLimit`): skip the concurrency oracle (check 2). */
  compacting?: boolean
  /**
   * Half the title edits type a word into the title's `Y.Text` instead (a
   * typing burst, ended like the description's), so settlements meet typing
   * whose entry is not written yet. Drawn from a generator of its own: the
   * seeds' other steps stay those they always drew.
   */
  titleTyping?: boolean
  /**
   * Half the typing steps replace one or two words of the description
   * (deleted, a new word typed in their place) instead of inserting one, so
   * concurrent bursts collide and the description settles on both versions
   * of its line. Drawn from a generator of its own. Such runs check that the
   * description converges settled (nothing left unsettled, whole words only),
   * not that every typed word stays: a later burst may delete it.
   */
  descriptionRewrites?: boolean
  /**
   * The description starts as a text longer than the length up to which
   * entries keep both texts whole (a pasted log, 2,600 characters of
   * filler words), so every description entry keeps one copy of it.
   */
  longDescription?: boolean
}

/**
 * Most settlements (entries of the rule's value, written by the peers
 * themselves) one run may write. A run writes a few dozen at most; replicas
 * settling one merge against each other forever would otherwise never give
 * control back (the in-process relay delivers as promise jobs, which no
 * timeout interrupts).
 */
const SETTLEMENT_CAP = 100

/** The history array of a record doc (see `history/historyLog`). */
const HISTORY_ARRAY = 'concord:history'

/**
 * Counts the settlements every peer writes and, past
 * {@link SETTLEMENT_CAP}, takes every peer offline so the exchange stops;
 * `check()` (after each wait on the relay) then throws.
 */
const settlementGuard = (peers: readonly FuzzPeer[]) => {
  let written = 0
  let tripped = false
  for (const peer of peers) {
    peer.handle.doc.getArray<{ m?: string }>(HISTORY_ARRAY).observe((event) => {
      if (!event.transaction.local || tripped) return
      for (const change of event.changes.delta) {
        for (const entry of change.insert ?? []) if ((entry as { m?: string }).m === 'auto') written++
      }
      if (written <= SETTLEMENT_CAP) return
      tripped = true
      // After this transaction: going offline drops the sockets.
      queueMicrotask(() => {
        for (const p of peers) if (p.online) p.goOffline()
      })
    })
  }
  return {
    check(): void {
      if (tripped) throw new Error(`did not settle after ${SETTLEMENT_CAP} settlements: the peers keep settling merges against each other`)
    },
  }
}

/** Lets timers and I/O run (a macrotask), so a test's timeout can end a run that does not converge. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0))

/**
 * Heals, then lets every peer settle what the text-merge rule asks for at
 * once (`flushHistory`) until no replica changes any more: settlements
 * written by several peers at the same time are cleaned up in the next round.
 */
const settleAll = async (env: FuzzEnv, guard: { check(): void }): Promise<void> => {
  const states = () => env.peers.map((p) => Y.encodeStateVector(p.handle.doc).join(',')).join('|')
  await env.heal()
  guard.check()
  for (let round = 0; round < 10; round++) {
    await yieldToEventLoop()
    const before = states()
    for (const peer of env.peers) peer.handle.flushHistory()
    await env.heal()
    guard.check()
    if (states() === before) return
  }
  throw new Error('the peers kept settling merges after 10 rounds')
}

/** Runs one seed; throws with the seed in the message on failure. */
export const runHistoryFuzz = async (
  seed: number,
  env: FuzzEnv,
  { steps = 60, compacting = false, titleTyping = false, descriptionRewrites = false, longDescription = false }: FuzzOptions = {},
): Promise<FuzzResult> => {
  const gen = prng.create(seed)
  /** With `FUZZ_TRACE=1`: the title's entries, as the first peer reads them. */
  const traceTitle = () => {
    if (process.env.FUZZ_TRACE !== '1') return
    for (const e of env.peers[0]!.handle.history().entries) {
      if (e.kind !== 'change' || e.field !== 'title') continue
      const { id, base, seen, at, mode, live, prev, value, hunks } = e
      console.log(JSON.stringify({ id, base, seen, at, mode, live, prev, value, hunks }))
    }
  }
  const writes: Write[] = []
  const { peers } = env
  if (longDescription) {
    // Each word after a space, as the driver types them (a word typed at 0 goes before the first one, not into it).
    peers[0]!.handle.set('description', Array.from({ length: 300 }, (_, k) => ` w${900_000 + k}`).join(''))
    await env.settle()
  }
  // Which of two concurrent insertions at one place goes first is decided by their writers' client ids: drawn from
  // the seed (a generator of their own, so the steps stay those the seed always drew), a seed replays the same run.
  const ids = prng.create(seed ^ 0x5eed)
  const typing = prng.create(seed ^ 0x7e7)
  const rewriting = prng.create(seed ^ 0xde5c)
  const drawn = new Set<number>()
  for (const peer of peers) {
    let id = prng.uint32(ids, 1, 2 ** 32 - 1)
    while (drawn.has(id)) id = prng.uint32(ids, 1, 2 ** 32 - 1)
    drawn.add(id)
    peer.handle.doc.clientID = id
  }
  const guard = settlementGuard(peers)
  /** Entries written, by anyone (each `set` whose value changed writes one, each typing burst one). */
  let written = countedEntries(peers[0]!.handle)
  /** Entries `h` itself wrote since `before` (others' entries may arrive meanwhile: the in-process relay delivers at once). */
  const newEntries = (h: FuzzHandle, before: Set<string>) =>
    h.history().entries.filter((e) => !before.has(e.id) && e.kind === 'change' && e.mode !== 'auto' && e.author.clientId === h.doc.clientID)
  const open: Array<Burst | undefined> = peers.map(() => undefined)
  const typed: TypedBurst[] = []
  const typedIds = new Set<string>()
  let words = 0
  const titleWords = new Set(['Login', 'fails'])
  /** Ends the driver's burst of peer `i` if the recorder wrote its entry (a flush, or a burst at its longest). */
  const closeBurst = (i: number): void => {
    const burst = open[i]
    if (burst === undefined) return
    const handle = peers[i]!.handle
    const mine = handle.history().entries.filter(
      (e) =>
        e.kind === 'change' &&
        e.field === 'description' &&
        e.mode !== 'auto' && // a settlement the peer wrote once the burst's entry was in
        !typedIds.has(e.id) &&
        idOf(e.id).client === handle.doc.clientID,
    )
    if (mine.length === 0) return
    if (mine.length > 1) throw new Error(`one typing burst of peer ${i} wrote ${mine.length} entries`)
    const id = mine[0]!.id
    typedIds.add(id)
    typed.push({ ...burst, id, ...idOf(id) })
    written++
    open[i] = undefined
  }
  try {
    for (let step = 0; step < steps; step++) {
      for (let k = 0; k < peers.length; k++) closeBurst(k)
      const i = prng.uint32(gen, 0, peers.length - 1)
      const peer = peers[i]!
      const roll = prng.real53(gen)
      if (roll < 0.4) {
        const field = prng.bool(gen) ? 'status' : 'priority'
        const value = prng.oneOf(gen, field === 'status' ? STATUS : PRIORITY)
        const before = new Set(peer.handle.history().entries.map((e) => e.id))
        const seen = Y.decodeStateVector(Y.encodeStateVector(peer.handle.doc))
        peer.handle.set(field, value)
        const added = newEntries(peer.handle, before)
        written += added.length
        for (const e of added) writes.push({ peer: i, id: e.id, field, value, ...idOf(e.id), seen })
      } else if (roll < 0.55) {
        // With a bound of 10 the title's merges are compacted away as they happen; those runs leave the title alone.
        if (compacting) continue
        const tokens = String(peer.handle.get('title')).split(' ').filter(Boolean)
        const at = prng.uint32(gen, 0, tokens.length)
        const word = `t${String(titleWords.size).padStart(3, '0')}`
        titleWords.add(word)
        const replaced = prng.uint32(gen, 0, 2)
        if (titleTyping && prng.bool(typing)) {
          // Typed: " tNNN" at a word boundary, the burst left open until a flush or a write of the title ends it.
          const text = peer.handle.text('title')
          const current = text.toString()
          const boundaries = [0, current.length, ...[...current].flatMap((c, k) => (c === ' ' ? [k] : []))]
          const place = prng.oneOf(typing, boundaries)
          text.insert(place, place === 0 ? `${word} ` : ` ${word}`)
          if (process.env.FUZZ_TRACE === '1')
            console.log(`typed ${word} by ${peer.handle.doc.clientID.toString(36)} at ${place} of "${current}" step ${step}`)
        } else {
          tokens.splice(at, Math.min(tokens.length - at, replaced), word)
          peer.handle.set('title', tokens.join(' '))
        }
      } else if (roll < 0.75) {
        // Typing: one word inserted at a word boundary (so no one splits another's word).
        const text = peer.handle.text('description')
        const current = text.toString()
        const boundaries = [0, current.length, ...[...current].flatMap((c, k) => (c === ' ' ? [k] : []))]
        const word = `w${words++}`
        let burst = open[i]
        if (burst === undefined) open[i] = burst = { peer: i, words: [], seen: Y.decodeStateVector(Y.encodeStateVector(peer.handle.doc)) }
        burst.words.push(word)
        const place = prng.oneOf(gen, boundaries)
        const follows = current.slice(place).match(/^ [^ \n]+( [^ \n]+)?/)
        if (descriptionRewrites && follows !== null && prng.bool(rewriting)) {
          // Rewritten: the one or two words after `place` (with their spaces) replaced by the new one.
          const gone = prng.bool(rewriting) || follows[1] === undefined ? follows[0].length : follows[0].length - follows[1].length
          text.delete(place, gone)
        }
        text.insert(place, ` ${word}`)
        closeBurst(i)
      } else if (roll < 0.8) {
        peer.handle.flushHistory()
        closeBurst(i)
      } else if (roll < 0.9) {
        if (peer.online) peer.goOffline()
        else peer.goOnline()
      } else {
        await env.settle()
        guard.check()
      }
    }
    for (let k = 0; k < peers.length; k++) {
      peers[k]!.handle.flushHistory()
      closeBurst(k)
      // Words others deleted before the burst's entry was written leave it nothing to record.
      const text = String(peers[k]!.handle.get('description') ?? '').split(/[ \n]/)
      if (descriptionRewrites && open[k] !== undefined && !open[k]!.words.some((w) => text.includes(w))) open[k] = undefined
      if (open[k] !== undefined) throw new Error(`the typing burst of peer ${k} wrote no entry`)
    }
    await settleAll(env, guard)
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
        const merge = scalarMerges.find(
          (m) => m.field === x.field && sideOf(m, x.id) !== -1 && sideOf(m, y.id) !== -1 && sideOf(m, x.id) !== sideOf(m, y.id),
        )
        if (merge === undefined)
          throw new Error(`concurrent writes ${x.id} (${String(x.value)}) and ${y.id} (${String(y.value)}) of ${x.field} are not a merge`)
      }
    }
    // Concurrent typing bursts: two sides of one text merge, and every word of both in the text.
    const textMerges = history.merges.filter((m) => m.fieldKind === 'text' && m.field === 'description')
    const description = String(peers[0]!.handle.get('description') ?? '')
    const finalWords = new Set(description.split(' '))
    let concurrentBursts = 0
    for (const x of compacting ? [] : typed) {
      for (const y of typed) {
        if (x === y || x.id >= y.id) continue
        if (!present.has(x.id) || !present.has(y.id)) continue
        const xSawY = (x.seen.get(y.client) ?? 0) > y.clock
        const ySawX = (y.seen.get(x.client) ?? 0) > x.clock
        if (xSawY || ySawX) continue
        concurrentBursts++
        if (descriptionRewrites) continue // a later burst may have deleted the words; checked below instead
        const merge = textMerges.find((m) => sideOf(m, x.id) !== -1 && sideOf(m, y.id) !== -1 && sideOf(m, x.id) !== sideOf(m, y.id))
        if (merge === undefined) throw new Error(`concurrent typing bursts ${x.id} and ${y.id} of description are not a text merge`)
        expect(merge.kept).toBeNull()
        expect(merge.summary).toMatch(/both contributions were merged/)
        for (const word of [...x.words, ...y.words]) {
          if (!finalWords.has(word))
            throw new Error(`"${word}" typed in burst ${x.words.includes(word) ? x.id : y.id} is not in the final text`)
        }
      }
    }
    // The description: whole words, the same everywhere, no collision left unsettled.
    const descriptionDue = peers[0]!.handle.history().unsettled.description
    if (descriptionDue !== undefined && !compacting)
      throw new Error(`the description "${description}" is not settled: it should be "${descriptionDue}"`)
    for (const token of description.split(/[ \n]/).filter(Boolean))
      if (!/^w[0-9]+$/.test(token)) throw new Error(`the description "${description}" holds "${token}", which nobody typed`)
    // The title: whole words someone wrote, each once, the same everywhere; no collision left unsettled.
    const title = String(peers[0]!.handle.get('title'))
    const due = peers[0]!.handle.history().unsettled.title
    if (due !== undefined && !compacting) throw new Error(`the title "${title}" is not settled: it should be "${due}"`)
    const titleTokens = title.split(' ').filter(Boolean)
    for (const token of titleTokens)
      if (!titleWords.has(token)) throw new Error(`the title "${title}" holds "${token}", which nobody wrote`)
    if (new Set(titleTokens).size !== titleTokens.length) throw new Error(`the title "${title}" holds a word twice`)
    const titleMerges = history.merges.filter((m) => m.field === 'title')
    const titleCollisions = titleMerges.filter((m) => m.conflict).length
    // The kept side holds the current value.
    let current = peers[0]!.handle.read().fields
    for (const m of scalarMerges) {
      if (m.kept !== null) expect(m.sides[m.kept]!.value).toEqual(current[m.field])
    }
    // Restore a losing side of the last merge that has one; make one when there is none.
    const losing = () => {
      current = peers[0]!.handle.read().fields
      return [...peers[0]!.handle.history().merges.filter((m) => m.fieldKind === 'scalar')]
        .reverse()
        .map((m) => ({ m, side: m.sides.find((s, k) => k !== m.kept && JSON.stringify(s.value) !== JSON.stringify(current[m.field])) }))
        .find((t) => t.side !== undefined)
    }
    let target = losing()
    const forced = target === undefined
    if (forced) {
      const [p, q] = [peers[0]!, peers[1 % peers.length]!]
      for (const x of [p, q]) if (x.online) x.goOffline()
      const now = p.handle.get('priority')
      const [vp, vq] = PRIORITY.filter((v) => v !== now)
      for (const [x, v] of [
        [p, vp],
        [q, vq],
      ] as const) {
        const before = new Set(x.handle.history().entries.map((e) => e.id))
        x.handle.set('priority', v)
        written += newEntries(x.handle, before).length
      }
      await settleAll(env, guard)
      target = losing()
      if (target === undefined) throw new Error('two peers offline set priority to different values: no merge with a losing side')
    }
    let restored = 0
    if (target !== undefined) {
      const restorer = peers[prng.uint32(gen, 0, peers.length - 1)]!
      const before = new Set(restorer.handle.history().entries.map((e) => e.id))
      restorer.handle.restore(target.side!)
      written += newEntries(restorer.handle, before).length
      await settleAll(env, guard)
      expect(countedEntries(peers[0]!.handle), 'every entry counted once after the restore').toBe(written)
      for (const peer of peers) {
        expect(peer.handle.get(target.m.field), 'restored value').toEqual(target.side!.value)
        expect(comparable(peer.handle)).toBe(comparable(peers[0]!.handle))
      }
      const last = restorer.handle.history().entries.filter((e) => e.kind === 'change' && e.restoreOf !== undefined)
      expect(last.at(-1)).toMatchObject({ restoreOf: target.side!.tip.id, value: target.side!.value })
      restored++
    }
    traceTitle()
    const compacted = peers[0]!.handle.history().entries.reduce((n, e) => n + (e.kind === 'compacted' ? e.count : 0), 0)
    const outcome = JSON.stringify({
      fields: peers[0]!.handle.read().fields,
      merges: peers[0]!.handle.history().merges.map((m) => [m.field, m.summary]),
    })
    return {
      outcome,
      merges: scalarMerges.length,
      textMerges: textMerges.length,
      concurrentBursts,
      bursts: typed.length,
      writes: writes.length,
      compacted,
      restored,
      forced,
      titleCollisions,
      descriptionCollisions: textMerges.filter((m) => m.conflict).length,
    }
  } catch (error) {
    traceTitle()
    const message = error instanceof Error ? error.message : String(error)
    throw new Error(`history fuzz seed ${seed} failed: ${message}`, { cause: error })
  }
}
