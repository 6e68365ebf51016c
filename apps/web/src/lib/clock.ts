/**
 * The time "5 min ago" is measured from: the signed-in workspace's clock,
 * which is this device's corrected to the relay's (`store.now()`), the clock
 * every change is stamped with. On a device whose clock runs an hour ahead,
 * comparing others' changes with its own clock would call all of them an
 * hour old.
 *
 * @example
 *   const stop = useClock(() => store.now()) // while the workspace is open
 *   relativeTime(entry.at, now()) // "just now"
 *
 * @module lib/clock
 */
let source: () => number = Date.now

/** The time to compare stamped times with (ms since the Unix epoch). */
export const now = (): number => source()

/** Measures time with `clock` until the returned function is called (then with this device's clock again). */
export const useClock = (clock: () => number): (() => void) => {
  source = clock
  return () => {
    if (source === clock) source = Date.now
  }
}
