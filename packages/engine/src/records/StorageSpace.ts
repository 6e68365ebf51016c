/**
 * How much of the room the browser gives the site this device's data takes,
 * so the app can warn before saving fails (the quota runs out: changes are
 * then kept in the tab only) and say whether the browser may clear the data
 * when the disk runs low.
 *
 * The store checks at start-up, and after changes were stored at most once
 * per `intervalMs` (the estimate is an asynchronous call into the browser;
 * a burst of typing or a pull of thousands of records makes one check, not
 * thousands). It tells of a new reading only when it matters: the first one,
 * `low` or `persisted` changing, or the usage or the quota moving by 1 % of the quota.
 *
 * @example
 *   const watch = new StorageSpaceWatch(() => backend.estimate(), { warnAt: 0.8, intervalMs: 10_000, changed: show })
 *   await watch.check()            // now
 *   watch.soon()                   // after a write: within intervalMs
 *
 * @module records/StorageSpace
 */
import type { SpaceEstimate } from '../persistence/Storage.js'

/** The storage of this device as the store last read it. */
export interface StorageSpace extends SpaceEstimate {
  /** The usage reached the warning share of the quota (`storageWarnAt`): saving may soon fail. */
  low: boolean
}

/** Options of {@link StorageSpaceWatch}. */
export interface StorageSpaceOptions {
  /** Share of the quota from which the space counts as low (0–1). */
  warnAt: number
  /** Fewest milliseconds between two checks that {@link StorageSpaceWatch.soon} asks for. */
  intervalMs: number
  /** A reading worth telling of. */
  changed: (space: StorageSpace) => void
  /** Every reading, told of or not. */
  read?: (space: StorageSpace) => void
}

/** Share of the quota the usage must move by before a reading is told of again. */
const USAGE_STEP = 0.01

/** Reads the storage space now and then; see the module documentation. */
export class StorageSpaceWatch {
  /** The last reading told of (null: none yet, or the browser says nothing). */
  current: StorageSpace | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private lastCheck = -Infinity
  private running: Promise<StorageSpace | null> | null = null
  private closed = false

  constructor(
    private readonly estimate: () => Promise<SpaceEstimate | null>,
    private readonly options: StorageSpaceOptions,
  ) {
    if (!(options.warnAt > 0 && options.warnAt <= 1))
      throw new Error(`storageWarnAt must be a share of the quota in (0, 1], not ${options.warnAt}`)
  }

  /**
   * Reads the space now (a check already running is shared) and resolves
   * with that reading — {@link current} changes only when it is worth
   * telling of. Never rejects: a failing estimate resolves with the last
   * reading told of.
   */
  check(): Promise<StorageSpace | null> {
    if (this.closed) return Promise.resolve(this.current)
    this.running ??= this.read().finally(() => (this.running = null))
    return this.running
  }

  /** Asks for a check within the interval: at once when the last one is that old, else when it will be. */
  soon(): void {
    if (this.closed || this.timer !== null) return
    const wait = Math.max(0, this.lastCheck + this.options.intervalMs - Date.now())
    this.timer = setTimeout(() => {
      this.timer = null
      void this.check()
    }, wait)
  }

  /** Stops checking. */
  close(): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private async read(): Promise<StorageSpace | null> {
    this.lastCheck = Date.now()
    let estimate: SpaceEstimate | null
    try {
      estimate = await this.estimate()
    } catch {
      estimate = null
    }
    if (this.closed || estimate === null || !(estimate.quota > 0) || !(estimate.usage >= 0)) return this.current
    const space: StorageSpace = { ...estimate, low: estimate.usage >= this.options.warnAt * estimate.quota }
    const before = this.current
    if (
      before === null ||
      before.low !== space.low ||
      before.persisted !== space.persisted ||
      Math.abs(before.usage - space.usage) >= USAGE_STEP * space.quota ||
      // Browsers count the free disk in the quota, so it moves with every write anywhere on the disk.
      Math.abs(before.quota - space.quota) >= USAGE_STEP * space.quota
    ) {
      this.current = space
      this.options.changed(space)
    }
    this.options.read?.(space)
    return space
  }
}
