/**
 * What a {@link DocHandle} knows the relay has of its doc on the current
 * subscription, so a catch-up sends what the relay lacks and not what it has
 * or is already receiving:
 *
 * - the relay's state vector, from its sync step 1 on this subscription or
 *   as reported by another party (another tab's `catch-up-deferred`);
 * - per Yjs client id, the contiguous clock range this handle sent since
 *   subscribing (live edits, step 2, catch-ups).
 *
 * Everything is forgotten on (re)subscribe. A second step 1 on the same
 * subscription means the relay asks to resync (it refused an update whose
 * dependencies it lacked): what was sent may not have been applied, so the
 * sent ranges are forgotten then and only the relay's own state counts.
 *
 * @example
 *   known.reset()                       // subscribed
 *   known.step1Arrived(relayStateVector)
 *   const base = known.base(acked)      // send what the doc holds beyond `base`
 *   known.noteSentBeyond(base, stateVectorOf(doc))
 *
 * @module sync/KnownRelayState
 */
import * as Y from 'yjs'
import { maxStateVector, type StateVector } from '../protocol/stateVector.js'

/** The relay's known state and this handle's sends on the current subscription. See the module documentation. */
export class KnownRelayState {
  /** The relay's state vector as learnt on the current subscription (its step 1, or another tab's); null until known. */
  private relayState: StateVector | null = null
  /** Per client id, the contiguous clock range this handle sent on the current subscription. */
  private readonly sentRanges = new Map<number, { from: number; to: number }>()
  /** Whether the relay's step 1 arrived on the current subscription (a later one asks to resync). */
  private step1Seen = false

  /** Whether the relay's state vector is known on this subscription. */
  get known(): boolean {
    return this.relayState !== null
  }

  /** A new subscription: nothing is known and nothing was sent on it. */
  reset(): void {
    this.relayState = null
    this.sentRanges.clear()
    this.step1Seen = false
  }

  /** The relay's sync step 1 on this subscription; a later one asks to resync, so what was sent no longer counts. */
  step1Arrived(stateVector: StateVector): void {
    if (this.step1Seen) this.sentRanges.clear()
    this.step1Seen = true
    this.learn(stateVector)
  }

  /** The relay is known to have `stateVector` (merged with what was known). */
  learn(stateVector: StateVector): void {
    this.relayState = this.relayState === null ? stateVector : maxStateVector(this.relayState, stateVector)
  }

  /**
   * What the relay has or is receiving on this subscription, per client id:
   * its known state vector and `acked`, extended by the range this handle
   * sent where that range starts within what the relay has (so nothing is
   * skipped). A new map.
   */
  base(acked: StateVector): StateVector {
    const base = maxStateVector(this.relayState ?? new Map<number, number>(), acked)
    for (const [client, { from, to }] of this.sentRanges) {
      const has = base.get(client) ?? 0
      if (from <= has && to > has) base.set(client, to)
    }
    return base
  }

  /** Everything the doc holds (`docState`) beyond `base` went out. */
  noteSentBeyond(base: StateVector, docState: StateVector): void {
    for (const [client, clock] of docState) this.noteSent(client, base.get(client) ?? 0, clock)
  }

  /** A Yjs update went out. */
  noteSentUpdate(update: Uint8Array): void {
    const { from, to } = Y.parseUpdateMeta(update)
    for (const [client, end] of to) this.noteSent(client, from.get(client) ?? 0, end)
  }

  /** Notes that clocks `from` … `to - 1` of `client` went out on this subscription (kept only where contiguous). */
  private noteSent(client: number, from: number, to: number): void {
    if (to <= from) return
    const sent = this.sentRanges.get(client)
    if (sent === undefined || from > sent.to || to < sent.from) {
      // Disjoint ranges: keep the lower one, the one more likely to start within what the relay has.
      if (sent === undefined || from < sent.from) this.sentRanges.set(client, { from, to })
      return
    }
    sent.from = Math.min(sent.from, from)
    sent.to = Math.max(sent.to, to)
  }
}
