/**
 * What of a record doc is stored on this device, as a state vector that only
 * ever covers clock ranges known to be in the record's database: the state
 * loaded from it, the updates a completed transaction wrote (merged where
 * they continue what is covered already; other ranges wait until the gap
 * before them is covered), full states a compaction wrote, and the saved
 * state vectors other tabs announce (which follow the same rule, and cover
 * the same database).
 *
 * An edit another tab made and this tab holds only in memory is therefore
 * not covered until its author (or this tab) wrote it.
 *
 * @example
 *   const saved = new SavedState(stateVectorOf(doc))   // after loading
 *   await storage.write(updates)
 *   for (const update of updates) saved.addUpdate(update)
 *   countMissing(stateVectorOf(doc), saved.stateVector) // 0: everything saved
 *
 * @module records/SavedState
 */
import * as Y from 'yjs'
import type { StateVector } from '../protocol/stateVector.js'

export class SavedState {
  private readonly covered: StateVector
  /** Written ranges `[start, end)` beyond {@link covered}, per client, waiting for the gap before them. */
  private readonly ahead = new Map<number, Array<[number, number]>>()

  constructor(initial: StateVector = new Map()) {
    this.covered = new Map(initial)
  }

  /** Every clock below it (per client) is stored. */
  get stateVector(): StateVector {
    return this.covered
  }

  /** `update` (one Yjs transaction's update, or a diff from a covered state) was written. */
  addUpdate(update: Uint8Array): void {
    let meta: { from: Map<number, number>; to: Map<number, number> }
    try {
      meta = Y.parseUpdateMeta(update)
    } catch {
      return // unreadable: covers nothing
    }
    for (const [client, start] of meta.from) this.addRange(client, start, meta.to.get(client) ?? start)
  }

  /** Everything below `stateVector` is stored (a full state written, or another tab's saved state). */
  addStateVector(stateVector: StateVector): void {
    for (const [client, clock] of stateVector) this.addRange(client, 0, clock)
  }

  private addRange(client: number, start: number, end: number): void {
    if (end <= start) return
    const covered = this.covered.get(client) ?? 0
    if (end <= covered) return
    if (start > covered) {
      const ranges = this.ahead.get(client) ?? []
      ranges.push([start, end])
      this.ahead.set(client, ranges)
      return
    }
    let clock = end
    const ranges = this.ahead.get(client)
    if (ranges !== undefined) {
      // Absorb written ranges that now continue the covered part.
      ranges.sort((a, b) => a[0] - b[0])
      const rest: Array<[number, number]> = []
      for (const range of ranges) {
        if (range[0] <= clock) clock = Math.max(clock, range[1])
        else rest.push(range)
      }
      if (rest.length > 0) this.ahead.set(client, rest)
      else this.ahead.delete(client)
    }
    this.covered.set(client, clock)
  }
}
