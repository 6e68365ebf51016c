/**
 * How many structs of catch-ups in parts a client may send to the relay
 * without pausing between parts: a token bucket of structs, one per client,
 * shared by all its docs.
 *
 * Why: the relay applies a message in one go and charges the time to the
 * connection's apply budget (by default 250 ms per second, bursts of up to
 * 1 s); a connection over it is closed. A catch-up larger than one part
 * (`sync/updateParts`) goes out a part at a time, each once the previous one
 * is acked. While this allowance holds the next part's structs, that part
 * goes at once; beyond it the handle idles after each part in proportion to
 * the part's round trip (what the relay's time could have been, at most).
 * A few catch-ups of a few thousand structs (ten records each edited a
 * thousand times offline) so cost no more than their round trips, and a long
 * backlog is still paced by what the relay's answers show.
 *
 * The sizes are conservative: the relay applies a part of 1,000 small edits
 * in 2–20 ms, so the default burst (16,000 structs) is a fraction of the
 * relay's burst, and the refill (4,000 per second) a fraction of its rate,
 * even at 50 µs per struct.
 *
 * @example
 * ```ts
 * const allowance = new CatchUpAllowance()
 * allowance.charge(first.structs) // the first part goes out at once regardless
 * if (allowance.take(next.structs)) send(next) // else idle, then charge and send
 * ```
 *
 * @module sync/catchUpAllowance
 */

/** Structs the allowance holds when full. */
export const CATCH_UP_BURST_STRUCTS = 16_000
/** Structs the allowance regains per second. */
export const CATCH_UP_STRUCTS_PER_SECOND = 4_000

/** A token bucket of structs; see the module documentation. */
export class CatchUpAllowance {
  private tokens: number
  private updatedAt: number

  constructor(
    private readonly burst = CATCH_UP_BURST_STRUCTS,
    private readonly perSecond = CATCH_UP_STRUCTS_PER_SECOND,
    /** Milliseconds from any fixed origin (tests pass their own clock). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst
    this.updatedAt = now()
  }

  /** Structs the allowance holds now (negative after charges beyond it). */
  get available(): number {
    this.refill()
    return this.tokens
  }

  /** Counts `structs` sent regardless of the allowance (it may go below zero). */
  charge(structs: number): void {
    this.refill()
    this.tokens -= structs
  }

  /** Takes `structs` and returns true when the allowance holds them; otherwise takes nothing and returns false. */
  take(structs: number): boolean {
    this.refill()
    if (this.tokens < Math.min(structs, this.burst)) return false
    this.tokens -= structs
    return true
  }

  private refill(): void {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.perSecond) / 1000)
    this.updatedAt = now
  }
}
