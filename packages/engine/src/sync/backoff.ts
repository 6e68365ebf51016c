/**
 * Exponential backoff with full jitter and a cap, for reconnecting.
 *
 * The n-th delay (n = 0, 1, 2 …) is drawn uniformly from
 * `[0, min(maxDelay, minDelay · factor^n)]` ("full jitter"), so many clients
 * that lost the same relay do not come back in lockstep. Call
 * {@link Backoff.reset} once a connection proved healthy.
 *
 * @example
 *   const backoff = new Backoff({ minDelay: 250, maxDelay: 10_000 })
 *   setTimeout(connect, backoff.next())
 *
 * @module sync/backoff
 */

/** Reconnect timing. All durations are in milliseconds. */
export interface BackoffOptions {
  /** Upper bound of the first delay. Default 250. */
  minDelay?: number
  /** Cap of every delay. Default 10 000. */
  maxDelay?: number
  /** Growth of the upper bound per failed attempt. Default 2. */
  factor?: number
  /**
   * Random source returning numbers in `[0, 1)`. Default `Math.random`.
   * Tests inject a deterministic one.
   */
  random?: () => number
}

/** Exponential backoff state: counts failed attempts and draws the next delay. */
export class Backoff {
  readonly minDelay: number
  readonly maxDelay: number
  readonly factor: number
  private readonly random: () => number
  private attempts = 0

  constructor(options: BackoffOptions = {}) {
    this.minDelay = options.minDelay ?? 250
    this.maxDelay = options.maxDelay ?? 10_000
    this.factor = options.factor ?? 2
    this.random = options.random ?? Math.random
    if (!(this.minDelay >= 0) || !(this.maxDelay >= this.minDelay) || !(this.factor >= 1)) {
      throw new Error(
        `invalid reconnect options: need 0 <= minDelay <= maxDelay and factor >= 1 ` +
          `(got minDelay=${this.minDelay}, maxDelay=${this.maxDelay}, factor=${this.factor})`,
      )
    }
  }

  /** Number of delays drawn since the last reset. */
  get attempt(): number {
    return this.attempts
  }

  /** Upper bound of the next delay, before jitter. */
  get ceiling(): number {
    const grown = this.minDelay * Math.pow(this.factor, this.attempts)
    // `grown` overflows to Infinity after enough attempts (0 · Infinity is NaN).
    return this.minDelay === 0 ? 0 : Number.isFinite(grown) ? Math.min(this.maxDelay, grown) : this.maxDelay
  }

  /** Draws the delay before the next attempt and counts the attempt. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceiling)
    this.attempts++
    return delay
  }

  /** Starts over from `minDelay`, after a connection succeeded. */
  reset(): void {
    this.attempts = 0
  }
}
