/**
 * Periodic work over every room or connection, spread over event-loop turns.
 *
 * A sweep that visits thousands of rooms or sockets in one go holds the event
 * loop for its whole length: putting ~2,400 unused rooms to sleep (each
 * encoding its doc) or pinging 2,000 connections took the relay's loop for
 * 100–300 ms at a time, and every delivery due meanwhile waited that long.
 * {@link inSlices} runs the same work in slices of at most `sliceMs`, and
 * lets the loop serve sockets between them (`setImmediate`).
 *
 * ```ts
 * await inSlices(this.rooms.values(), (entry) => entry.room.sleep(), { sliceMs: 2 })
 * ```
 *
 * The iterable is read lazily, one slice at a time: a `Map` or `Set` changed
 * between slices goes on from where it was (entries deleted meanwhile are
 * skipped, entries added meanwhile are visited), as its iterator does.
 *
 * @module inSlices
 */
// the module's own `setImmediate`, not the global: a test that fakes the global clock must not stop a sweep
import { setImmediate } from 'node:timers'

/** Options of {@link inSlices}. */
export interface SliceOptions {
  /** Longest run of `each` calls in one event-loop turn, ms; at least one item per turn. Default 2. */
  sliceMs?: number
  /** Clock, ms (tests). Default `performance.now`. */
  now?: () => number
}

/**
 * Calls `each` for every item, at least one per event-loop turn and no more
 * than fit in `sliceMs` (the first slice runs at once, synchronously).
 * Resolves once every item was visited; an exception thrown by `each` ends
 * the sweep and rejects.
 */
export const inSlices = <T>(items: Iterable<T>, each: (item: T) => void, options: SliceOptions = {}): Promise<void> => {
  const sliceMs = options.sliceMs ?? 2
  const now = options.now ?? (() => performance.now())
  const iterator = items[Symbol.iterator]()
  return new Promise<void>((resolve, reject) => {
    const slice = (): void => {
      try {
        const end = now() + sliceMs
        do {
          const next = iterator.next()
          if (next.done === true) return resolve()
          each(next.value)
        } while (now() < end)
      } catch (error) {
        return reject(error as Error)
      }
      setImmediate(slice)
    }
    slice()
  })
}
