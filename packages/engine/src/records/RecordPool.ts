/**
 * The record docs one store has in memory: opens them on demand (one load
 * per record, after whatever closed it before), closes them when idle,
 * parks the ones another tab discards and loads them again afterwards, and
 * closes a record for a rewrite of its storage (a discard in this tab).
 * Every record's state is one entry of a {@link RecordLifecycle}; this class
 * decides when a record moves, the lifecycle checks that it may.
 *
 * @module records/RecordPool
 */
import type { StorageBackend } from '../persistence/Storage.js'
import { DiscardError } from './discard.js'
import { OpenRecord, type RecordHost } from './OpenRecord.js'
import { RecordLifecycle, RecordState } from './RecordLifecycle.js'

/**
 * A record parked because another tab announced a discard of its unsynced
 * changes comes back (loaded from storage) after this long even if that tab
 * never says it is done (it was closed or crashed meanwhile), ms.
 */
export const PARK_TIMEOUT_MS = 60_000

/** What a {@link RecordPool} needs from its store. */
export interface RecordPoolHost {
  /** What every {@link OpenRecord} of the store is given. */
  readonly record: RecordHost
  readonly workspaceId: string
  /** Close a record this long after nothing holds it any more, ms. */
  readonly idleTimeout: number
  /** Where records are stored (it changes once, when storage falls back to memory). */
  backend(): StorageBackend
  /** Whether records are saved on this device. */
  durable(): boolean
  /** Whether the store is closing (or closed). */
  isClosing(): boolean
  /** A record was loaded and is open: its catalog entry may be new. */
  opened(record: OpenRecord): void
  /** Write the catalog entries of changed records now (before one of them leaves memory). */
  flushCatalog(): void
  /** Open records changed: recompute the pending total. */
  updateTotal(): void
  /** Whether this tab makes sure that records with pending changes sync (it holds the outbox duty). */
  holdsOutbox(): boolean
  /** The pending count the catalog lists for record `id`. */
  cataloguedPending(id: string): number
}

/** Opens, idles, parks and closes the record docs of a store. See the module documentation. */
export class RecordPool {
  /** The state of every record in memory (or on its way in or out). */
  readonly lifecycle = new RecordLifecycle()
  private readonly host: RecordPoolHost

  constructor(host: RecordPoolHost) {
    this.host = host
  }

  /**
   * The record `id`, opened if needed (after a closing or a park of it has
   * finished). Rejects when it cannot be opened or the store closes.
   */
  acquire(id: string): Promise<OpenRecord> {
    const entry = this.lifecycle.get(id)
    switch (entry?.state) {
      case RecordState.open:
        return Promise.resolve(entry.record)
      case RecordState.idle:
        this.lifecycle.toOpen(id, entry.record)
        return Promise.resolve(entry.record)
      case RecordState.opening:
        return entry.loading
      case RecordState.closing:
      case RecordState.parked:
        return entry.done.then(() => {
          if (this.host.isClosing()) throw new Error('the RecordStore is closed')
          return this.acquire(id)
        })
      case undefined:
        return this.load(id)
    }
  }

  /**
   * Decides whether `record` is idle (no handles, nothing pending or being
   * written, and saved — or unsaveable): an idle record closes after
   * `idleTimeout` unless it is used again first. Called whenever its
   * handles, pending or saved state change.
   */
  settle(record: OpenRecord): void {
    if (!this.lifecycle.isCurrent(record)) return
    this.host.updateTotal()
    const idle =
      record.refs === 0 && record.sync.pending === 0 && !record.busy && (record.isSaved || record.storageError !== null || !record.durable)
    const state = this.lifecycle.stateOf(record.id)
    if (!idle) {
      if (state === RecordState.idle) this.lifecycle.toOpen(record.id, record)
      return
    }
    if (state === RecordState.idle) return
    const timer = setTimeout(() => this.closeIdle(record), this.host.idleTimeout)
    this.lifecycle.toIdle(record.id, record, () => clearTimeout(timer))
  }

  /**
   * Another tab is discarding record `id`'s unsynced changes: its doc here
   * (once loaded, if it is opening) stops sending and storing at once (see
   * `OpenRecord.park`) and is no longer current, so no tab message, ack or
   * duty reaches it; opening the record waits for {@link unpark}.
   */
  park(id: string): void {
    if (this.host.isClosing()) return
    const entry = this.lifecycle.get(id)
    if (entry?.state === RecordState.parked) return
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const previous = entry?.state === RecordState.closing ? entry.done : Promise.resolve()
    const inMemory = entry?.state === RecordState.open || entry?.state === RecordState.idle ? entry.record : undefined
    const taken: Promise<OpenRecord | undefined> =
      entry?.state === RecordState.opening
        ? entry.loading.then(
            (record) => {
              this.parkRecord(record)
              return record
            },
            () => undefined,
          )
        : Promise.resolve(inMemory)
    const timer = setTimeout(() => void this.unpark(id, false), PARK_TIMEOUT_MS)
    const done = Promise.all([previous, gate]).then(() => undefined)
    this.lifecycle.toParked(id, { taken, done, release, cancelTimer: () => clearTimeout(timer) })
    if (inMemory !== undefined) this.parkRecord(inMemory)
  }

  /**
   * The discard of record `id` in another tab is over (or it never said so
   * in time): the record is loaded again from storage — when handles are
   * open here, or when this tab holds the outbox duty and the record still
   * has pending changes (the discard failed) — the handles move to the new
   * doc, and the parked one is closed without writing. When the discard did
   * not happen (`done` false: it failed, or its tab never said), the parked
   * doc's state is applied to the new one as a local change, so edits that
   * had not reached storage when the record was parked are stored and sent,
   * not lost.
   */
  async unpark(id: string, done: boolean): Promise<void> {
    const parked = this.lifecycle.getIn(id, RecordState.parked)
    if (parked === undefined) return
    this.lifecycle.toClosing(id, parked.done)
    const old = await parked.taken
    parked.release()
    const wanted =
      (old !== undefined && (old.listeners.size > 0 || !done)) || (this.host.holdsOutbox() && this.host.cataloguedPending(id) > 0)
    const fresh = wanted && !this.host.isClosing() ? await this.acquire(id).catch(() => undefined) : undefined
    if (old !== undefined && fresh !== undefined && !done) {
      fresh.adoptFrom(old)
    }
    if (old !== undefined) {
      if (fresh !== undefined) {
        for (const listener of [...old.listeners]) {
          old.listeners.delete(listener)
          if (listener.moved(fresh)) fresh.refs++
        }
      }
      await old.close({ discard: true })
    }
    if (fresh !== undefined) this.settle(fresh)
  }

  /**
   * Closes record `id` without writing (refused while handles are open)
   * and runs `run` once whatever closed it before is done; opening the
   * record again waits for `run`.
   *
   * @throws (rejects) {@link DiscardError} `open` while handles are open.
   */
  async whileClosed<T>(id: string, run: () => Promise<T>): Promise<T> {
    for (;;) {
      const entry = this.lifecycle.get(id)
      if (entry?.state === RecordState.opening) await entry.loading.catch(() => undefined)
      else if (entry?.state === RecordState.parked) await entry.done
      else break
    }
    if (this.host.isClosing()) throw new Error('the RecordStore is closed')
    const open = this.lifecycle.recordOf(id)
    if (open !== undefined && open.refs > 0) {
      throw new DiscardError('open', id, `record "${id}" is open (${open.refs} handle(s)); close it before discarding its changes`)
    }
    const before = this.lifecycle.get(id)
    const previous = before?.state === RecordState.closing ? before.done : Promise.resolve()
    const running = (async () => {
      if (open !== undefined) await open.close({ discard: true })
      await previous
      return run()
    })()
    this.lifecycle.toClosing(
      id,
      running.then(
        () => undefined,
        () => undefined,
      ),
    )
    return running
  }

  /**
   * Closes every record (the store closes): parked ones without writing,
   * the others after what is loading or closing has finished — writing
   * their queued changes first unless `discard`.
   */
  async closeAll({ discard }: { discard: boolean }): Promise<void> {
    const waits: Array<Promise<unknown>> = []
    for (const [id, entry] of this.lifecycle.allIn(RecordState.parked)) {
      this.lifecycle.toClosed(id)
      entry.release()
      waits.push(entry.done)
      void entry.taken.then((record) => record?.close({ discard: true }))
    }
    for (const [id, entry] of this.lifecycle.allIn(RecordState.idle)) this.lifecycle.toOpen(id, entry.record)
    for (const [, entry] of this.lifecycle.allIn(RecordState.opening)) waits.push(entry.loading)
    for (const [, entry] of this.lifecycle.allIn(RecordState.closing)) waits.push(entry.done)
    await Promise.allSettled(waits)
    const records = this.lifecycle.records()
    this.lifecycle.clear()
    await Promise.all(records.map((record) => record.close({ discard })))
  }

  /** Loads record `id` from storage and makes it open (unless it was parked meanwhile: the park takes it). */
  private load(id: string): Promise<OpenRecord> {
    const loading: Promise<OpenRecord> = OpenRecord.open(
      this.host.record,
      this.host.workspaceId,
      id,
      this.host.backend(),
      this.host.durable(),
    ).then(
      (record) => {
        const stillOpening = this.lifecycle.getIn(id, RecordState.opening)?.loading === loading
        if (this.host.isClosing()) {
          if (stillOpening) this.lifecycle.toClosed(id)
          void record.close({ discard: true })
          throw new Error('the RecordStore is closed')
        }
        if (stillOpening) {
          this.lifecycle.toOpen(id, record)
          this.host.opened(record)
        }
        return record
      },
      (error: unknown) => {
        if (this.lifecycle.getIn(id, RecordState.opening)?.loading === loading) this.lifecycle.toClosed(id)
        throw error
      },
    )
    this.lifecycle.toOpening(id, loading)
    return loading
  }

  /** The idle timer of `record` fired: it leaves memory unless it is in use again. */
  private closeIdle(record: OpenRecord): void {
    if (this.lifecycle.getIn(record.id, RecordState.idle)?.record !== record) return
    if (record.refs > 0 || record.sync.pending > 0) {
      this.lifecycle.toOpen(record.id, record)
      return
    }
    this.host.flushCatalog()
    this.lifecycle.toClosing(
      record.id,
      record.close().catch(() => undefined),
    )
  }

  /** Stops `record` sending and storing (another tab discards its changes). */
  private parkRecord(record: OpenRecord): void {
    record.park()
    this.host.updateTotal()
  }
}
