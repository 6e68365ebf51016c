/**
 * The persistence pipeline of one open record: what its doc holds goes to
 * the record's own database, and "saved" means the database transaction
 * completed.
 *
 * - **Queue.** Every update to store is queued; queued updates of one
 *   microtask go out in one storage transaction, together with the record's
 *   meta (acked state vector, pending-field notes, authors, what was viewed,
 *   own client ids) when those changed.
 * - **Saved.** When the transaction has completed, the clock ranges of the
 *   updates it wrote are saved (see {@link SavedState}).
 * - **One at a time.** Operations on the storage run one at a time, in order.
 * - **Compaction.** When the log grows past `compactAfter` rows, the write
 *   replaces the log with one row (the doc's full state) instead of
 *   appending.
 * - **Retry.** A failure never throws: the record keeps working in memory,
 *   its owner reports the failure, and the whole state is written again
 *   after a jittered, growing delay (`sync/backoff`), except when the
 *   database was closed underneath (e.g. by a sign-out in another tab).
 *
 * @example
 *   const writer = new RecordWriter({ id, doc, backend, storage, saved, compactAfter: 64, meta, owner })
 *   writer.queueUpdate(update) // written in the next microtask
 *   await writer.settled()
 *
 * @module records/RecordWriter
 */
import * as Y from 'yjs'
import { Backoff, type BackoffOptions } from '../sync/backoff.js'
import { countMissing, stateVectorOf, type StateVector } from '../protocol/stateVector.js'
import {
  StorageFailure,
  classifyStorageError,
  type RecordMeta,
  type RecordStorage,
  type StorageBackend,
  type StorageError,
} from '../persistence/Storage.js'
import { STORAGE_ORIGIN } from '../model/origins.js'
import type { SavedState } from './SavedState.js'

/** Delays before writing again after a storage failure, ms: jittered, from up to 1 s growing to up to 60 s. */
export const STORAGE_RETRY: Readonly<BackoffOptions> = { minDelay: 1_000, maxDelay: 60_000 }

/** The parts of a record's meta, each read when it is written. */
export type MetaSource = { readonly [K in keyof RecordMeta]-?: () => NonNullable<RecordMeta[K]> }

/** A part of a record's meta. */
export type MetaKey = keyof RecordMeta

/** Every part of a record's meta, in the order they are written. */
const META_KEYS: readonly MetaKey[] = ['acked', 'fieldClocks', 'authors', 'viewed', 'ownClients']

/** What a {@link RecordWriter} tells the record it writes. */
export interface WriterOwner {
  /**
   * Whether queued updates hold changes the relay lacks while the catalog
   * does not list the record as pending yet: then {@link listPending} runs
   * before they are written.
   */
  mustListPending(): boolean
  /**
   * Writes the catalog entry that lists the record as pending, durably
   * (start-up, the outbox duty and sign-out go by it, so it is never
   * missing while such changes are on disk). Resolves once committed.
   */
  listPending(): Promise<void>
  /** A write starts: the catalog entry (with this pending count) is written alongside. */
  writing(): void
  /** A write completed: `saved` grew. */
  saved(): void
  /** Storage failed: keep working in memory; `report`: tell the app (the first failure, or a retry it asked for). */
  failed(error: StorageError, report: boolean): void
  /** The queue of storage operations drained, or storage works again: saved state and idleness may have changed. */
  settledDown(): void
}

/** Options of a {@link RecordWriter}. */
export interface RecordWriterOptions {
  readonly id: string
  readonly doc: Y.Doc
  /** Where the record's database is opened again after a failure. */
  readonly backend: StorageBackend
  /** The record's database; null when opening it failed. */
  readonly storage: RecordStorage | null
  /** What of the doc is known to be stored. */
  readonly saved: SavedState
  /** Replace the update log by one row once it has more rows than this. */
  readonly compactAfter: number
  readonly meta: MetaSource
  readonly owner: WriterOwner
  /** Delays before a retry after a failure. Default {@link STORAGE_RETRY}. */
  readonly retry?: BackoffOptions
}

/** Writes one record's doc to its database. See the module documentation. */
export class RecordWriter {
  /** Last storage failure, null while storage works. */
  storageError: StorageError | null = null

  private readonly id: string
  private readonly doc: Y.Doc
  private readonly backend: StorageBackend
  private readonly savedState: SavedState
  private readonly compactAfter: number
  private readonly meta: MetaSource
  private readonly owner: WriterOwner
  private readonly retryDelays: Backoff
  private storage: RecordStorage | null
  private queue: Uint8Array[] = []
  private readonly dirtyMeta = new Set<MetaKey>()
  private writeScheduled = false
  private ops: Promise<void> = Promise.resolve()
  private opsRunning = 0
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  /** The doc's state vector when {@link merge} last encoded its full state (for a compaction). */
  private mergedSV: StateVector | null = null
  /** Parked or closed: nothing is written any more. */
  private stopped = false
  /** A write of queued updates is under way (its transaction has not completed). */
  private writingUpdates = false

  constructor(options: RecordWriterOptions) {
    this.id = options.id
    this.doc = options.doc
    this.backend = options.backend
    this.storage = options.storage
    this.savedState = options.saved
    this.compactAfter = options.compactAfter
    this.meta = options.meta
    this.owner = options.owner
    this.retryDelays = new Backoff(options.retry ?? STORAGE_RETRY)
    if (this.storage !== null) this.storage.onLost = (error) => this.fail(error)
  }

  /** Whether the record's database is open (nothing is written while it is not). */
  get hasStorage(): boolean {
    return this.storage !== null
  }

  /** Rows in the record's update log (0 without storage). */
  get rowCount(): number {
    return this.storage?.rowCount ?? 0
  }

  /** Whether everything the doc holds is written (queued updates included) and storage works. */
  get allWritten(): boolean {
    return this.storageError === null && this.queue.length === 0 && this.unsavedClocks() === 0
  }

  /** Whether storage operations are queued or running. */
  get busy(): boolean {
    if (this.opsRunning > 0 || this.writeScheduled) return true
    if (this.storage === null || this.storageError !== null) return false // nothing can be written until a retry
    return this.queue.length > 0 || this.dirtyMeta.size > 0
  }

  /**
   * Whether edits may not be stored yet: queued, in a write that has not
   * completed, beyond the saved state, or not written since storage failed.
   */
  get holdsUnstored(): boolean {
    return this.queue.length > 0 || this.writingUpdates || this.storageError !== null || this.unsavedClocks() > 0
  }

  /** Clock ticks the doc holds beyond what is known to be stored. */
  unsavedClocks(): number {
    return countMissing(stateVectorOf(this.doc), this.savedState.stateVector)
  }

  /** Queues `update` for the next write. */
  queueUpdate(update: Uint8Array): void {
    this.queue.push(update)
    this.scheduleWrite()
  }

  /** Part `key` of the meta changed: written with the next write. */
  metaChanged(key: MetaKey): void {
    this.dirtyMeta.add(key)
    this.scheduleWrite()
  }

  /** Part `key` of the meta is not stored yet: written with the next write, which this does not schedule. */
  metaChangedLater(key: MetaKey): void {
    this.dirtyMeta.add(key)
  }

  /**
   * Writes what the doc holds beyond what is known to be stored — edits
   * other tabs made and did not confirm (their write failed, or their tab
   * froze or closed first).
   */
  writeUnsaved(): boolean {
    // While storage fails, its retry writes the whole state anyway.
    if (this.stopped || this.storage === null || this.storageError !== null) return false
    if (this.unsavedClocks() === 0) return false
    this.queueUpdate(Y.encodeStateAsUpdate(this.doc, Y.encodeStateVector(this.savedState.stateVector)))
    return true
  }

  /** Compacts the log once the doc is loaded, if it is longer than `compactAfter` rows. */
  compactIfLong(loadedRows: number): void {
    if (this.storage !== null && loadedRows > this.compactAfter) void this.enqueue(() => this.compactNow())
  }

  /**
   * Writes the whole state again now (after a storage failure). Resolves
   * with the failure that remains — null once the record is stored again —
   * and never rejects; a failed retry is reported again.
   */
  async retryNow(): Promise<StorageError | null> {
    if (this.stopped || this.storageError === null) return null
    this.cancelRetry()
    await this.enqueue(() => this.recover(), true)
    return this.stopped ? null : this.storageError
  }

  /** Resolves when queued storage operations are done. */
  async settled(): Promise<void> {
    while (this.busy && !this.stopped) {
      if (this.writeScheduled) await Promise.resolve()
      else if (this.queue.length > 0 || this.dirtyMeta.size > 0) await this.enqueue(() => this.writeNow())
      else await this.ops
    }
  }

  /** Writes what is queued, then compacts a log of more than one row (the record closes). */
  async finish(): Promise<void> {
    await this.settled()
    if (this.storage !== null && this.storageError === null && this.storage.rowCount > 1) {
      await this.enqueue(() => this.compactNow())
    }
  }

  /** Stops writing at once and closes the database (the record is parked or closed); what is queued is dropped. */
  stop(): void {
    this.stopped = true
    this.cancelRetry()
    this.queue.length = 0
    this.storage?.close()
    this.storage = null
  }

  /**
   * A storage operation failed: keep working in memory, report (the first
   * failure, or every one when `reportAgain`), and retry with backoff.
   */
  fail(error: unknown, reportAgain = false): void {
    if (this.stopped) return
    const storageError = classifyStorageError(error, `record "${this.id}"`)
    const first = this.storageError === null
    this.storageError = storageError
    if (storageError.kind === StorageFailure.closed) {
      this.storage?.close()
      this.storage = null
    }
    this.owner.failed(storageError, first || reportAgain)
    // A database deleted underneath (sign-out elsewhere) must not be recreated behind the user's back.
    if (storageError.kind !== StorageFailure.closed) this.scheduleRetry()
  }

  // ---------------------------------------------------------------------------

  private cancelRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.retryTimer = null
  }

  private scheduleWrite(): void {
    if (this.writeScheduled || this.stopped) return
    this.writeScheduled = true
    queueMicrotask(() => {
      this.writeScheduled = false
      void this.enqueue(() => this.writeNow())
    })
  }

  /**
   * Runs storage operations one at a time, in order. Never rejects: a
   * failure goes to {@link fail} (`reportAgain`: reported even when storage
   * had failed before, for a retry the app asked for).
   */
  private enqueue(op: () => Promise<void>, reportAgain = false): Promise<void> {
    this.opsRunning++
    const run = this.ops.then(op).catch((error: unknown) => this.fail(error, reportAgain))
    this.ops = run.finally(() => {
      this.opsRunning--
      if (this.opsRunning === 0) this.owner.settledDown()
    })
    return this.ops
  }

  /** The meta parts that changed (all of them with `all`), read now; undefined when none did. */
  private takeMeta(all = false): RecordMeta | undefined {
    const keys = META_KEYS.filter((key) => all || this.dirtyMeta.has(key))
    this.dirtyMeta.clear()
    if (keys.length === 0) return undefined
    const meta: Record<string, unknown> = {}
    for (const key of keys) meta[key] = this.meta[key]()
    return meta as RecordMeta
  }

  private async writeNow(): Promise<void> {
    if (this.stopped || this.storage === null || this.storageError !== null) return
    if (this.queue.length > 0 && this.owner.mustListPending()) {
      await this.owner.listPending()
      if (this.stopped || this.storage === null || this.storageError !== null) return
    }
    const updates = this.queue.splice(0)
    const meta = this.takeMeta()
    if (updates.length === 0 && meta === undefined) return
    this.owner.writing()
    let compacted: StateVector | null = null
    this.writingUpdates = updates.length > 0
    try {
      if (this.storage.rowCount + updates.length > this.compactAfter) {
        compacted = await this.compactStorage(this.storage)
        if (meta !== undefined) await this.storage.write([], meta)
      } else {
        await this.storage.write(updates, meta)
      }
    } catch (error) {
      // What did not reach the disk goes with the next write (a retry writes everything).
      for (const key of Object.keys(meta ?? {}) as MetaKey[]) this.dirtyMeta.add(key)
      throw error
    } finally {
      this.writingUpdates = false
    }
    if (compacted !== null) this.savedState.addStateVector(compacted)
    else for (const update of updates) this.savedState.addUpdate(update)
    this.owner.saved()
  }

  private async compactNow(): Promise<void> {
    if (this.stopped || this.storage === null || this.storageError !== null) return
    this.queue.length = 0
    this.savedState.addStateVector(await this.compactStorage(this.storage))
    this.owner.saved()
  }

  /** Replaces the stored log by the doc's full state; resolves with the state vector written. */
  private async compactStorage(storage: RecordStorage): Promise<StateVector> {
    this.mergedSV = null
    await storage.compact(this.merge)
    // A storage that wrote without calling `merge` wrote nothing of the doc.
    const written = this.mergedSV ?? new Map<number, number>()
    this.mergedSV = null
    return written
  }

  /** Applies rows other tabs appended, and returns the doc's full state. */
  private readonly merge = (rows: Uint8Array[]): Uint8Array => {
    this.doc.transact(() => {
      for (const row of rows) {
        try {
          Y.applyUpdate(this.doc, row, STORAGE_ORIGIN)
        } catch {
          // a broken row: it is dropped by the compaction; the doc keeps everything else
        }
      }
    }, STORAGE_ORIGIN)
    this.mergedSV = stateVectorOf(this.doc)
    return Y.encodeStateAsUpdate(this.doc)
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.stopped) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      void this.enqueue(() => this.recover())
    }, this.retryDelays.next())
  }

  /** Writes the whole state (and meta) again; clears the failure when it worked. */
  private async recover(): Promise<void> {
    if (this.stopped || this.storageError === null) return
    this.storage ??= await this.backend.openRecord(this.id)
    this.storage.onLost = (error) => this.fail(error)
    this.queue.length = 0
    const written = await this.compactStorage(this.storage)
    await this.storage.write([], this.takeMeta(true))
    this.savedState.addStateVector(written)
    this.storageError = null
    this.retryDelays.reset()
    this.owner.saved()
    this.owner.settledDown()
  }
}
