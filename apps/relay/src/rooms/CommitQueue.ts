/**
 * Group commit: every update applied to a room is queued here; one storage
 * transaction stores everything queued since the previous commit started,
 * across all rooms. Updates that arrive while a commit runs go into the
 * next one. Acks go out only after the commit returned, and only to the
 * peers waiting for that commit — those whose updates it stored, and those
 * that asked for an ack while it was the room's latest ({@link
 * CommitQueue.ackAfterCommit}) — once each per commit. A peer that only
 * receives a doc gets no ack of others' commits: a client counts only its
 * own changes as pending.
 *
 * A failed commit acks nothing: its updates go back to the front of the
 * queue and the commit is retried with backoff until it succeeds (or the
 * relay is force-stopped). Clients keep showing those updates as pending.
 * Until a commit succeeds again, {@link CommitQueue.failure} holds the last
 * error's message (the relay's `/readyz` answers 503 with it); the first
 * commit that succeeds after failures logs so (info), once.
 *
 * @module rooms/CommitQueue
 */
import type { AuthorBinding, Storage, DocUpdates } from '../storage/Storage.js'
import type { RelayMetrics } from '../observability/metrics.js'
import type { Logger } from '../observability/logger.js'
import type { Room, RoomPeer } from './Room.js'

/** Options of {@link CommitQueue}. */
export interface CommitQueueOptions {
  /** Compact a doc's log into a checkpoint once it holds this many updates. Default 500. */
  checkpointUpdates?: number
  /** …or this many bytes. Default 1 MiB. */
  checkpointBytes?: number
  /** First retry delay after a failed commit, ms. Default 50. */
  retryMinDelay?: number
  /** Longest retry delay, ms. Default 5000. */
  retryMaxDelay?: number
  /**
   * Commit window, ms: a commit starts this long after the first update
   * queued for it, so one commit (one fsync, one round of acks) carries the
   * updates of that window. It delays durable acks, never delivery to other
   * clients. 0 = commit on the next tick. Default 4.
   */
  commitDelayMs?: number
  /**
   * Starts a commit once its window is over. Default: a timer of
   * `commitDelayMs` (`setImmediate` when 0). A relay run in-process by a test
   * harness passes its own (e.g. `queueMicrotask`) so commits need no timers.
   */
  scheduleCommit?: (commit: () => void) => void
}

/** Hears of every stored batch of a room (the cluster layer publishes it to the other relay instances). */
export interface CommitObserver {
  /**
   * `room`'s `updates` (and `authors` bindings) were stored under sequence
   * numbers `fromSeq`…`toSeq` (none when `fromSeq > toSeq`: bindings only).
   * Called after the room recorded the commit, before it may be compacted.
   */
  committed(room: Room, fromSeq: number, toSeq: number, updates: readonly Uint8Array[], authors: readonly AuthorBinding[]): void
}

interface RoomBatch {
  room: Room
  updates: Uint8Array[]
  bytes: number
  /** Peers acked once this batch is stored: the senders of its updates, and peers that asked to be acked after it. */
  ackTo: Set<RoomPeer>
}

/** The relay's group-commit queue. */
export class CommitQueue {
  private queued = new Map<Room, RoomBatch>()
  private inflight: Map<Room, RoomBatch> | null = null
  private scheduled = false
  private running: Promise<void> | null = null
  private retryDelay = 0
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private idleWaiters: Array<() => void> = []
  /** The message of the last commit's error while commits fail; null once one succeeded (or none failed). */
  private lastFailure: string | null = null
  /** Commits failed since the last that succeeded, and when the first of them failed (`performance.now()`). */
  private failedCommits = 0
  private failingSince = 0
  private readonly commitListeners: Array<(docs: string[], lastSeqs: ReadonlyMap<string, number>) => void> = []
  private stopped = false
  /** The cluster layer, when several relay instances share the storage; null on a single relay. */
  private observer: CommitObserver | null = null
  private readonly checkpointUpdates: number
  private readonly checkpointBytes: number
  private readonly retryMinDelay: number
  private readonly retryMaxDelay: number
  private readonly commitDelayMs: number
  private readonly scheduleCommit: ((commit: () => void) => void) | null
  /**
   * Runs the marking of one commit's rooms as durable, which acks their
   * peers. The relay sets it so that a connection's acks of one commit go
   * out in one batch (connections/batches).
   */
  acksTogether: (mark: () => void) => void = (mark) => mark()

  constructor(
    private readonly storage: Storage,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
    options: CommitQueueOptions = {},
  ) {
    this.checkpointUpdates = options.checkpointUpdates ?? 500
    this.checkpointBytes = options.checkpointBytes ?? 1024 * 1024
    this.retryMinDelay = options.retryMinDelay ?? 50
    this.retryMaxDelay = options.retryMaxDelay ?? 5000
    this.commitDelayMs = options.commitDelayMs ?? 4
    this.scheduleCommit = options.scheduleCommit ?? null
  }

  /**
   * Queues an update of `room` for the next commit; `from` (the peer that
   * sent it, null for the relay's own) is acked once that commit is stored.
   */
  enqueue(room: Room, update: Uint8Array, from: RoomPeer | null): void {
    let batch = this.queued.get(room)
    if (!batch) this.queued.set(room, (batch = { room, updates: [], bytes: 0, ackTo: new Set() }))
    batch.updates.push(update)
    batch.bytes += update.byteLength
    if (from !== null) batch.ackTo.add(from)
    this.metrics.updateQueued()
    this.schedule()
  }

  /**
   * Acks `peer` once everything `room`'s doc holds now is stored: after the
   * commit of the room's latest batch (queued, else being committed).
   * Returns false when nothing of the room waits for storage — then its
   * durable state vector covers the doc already and the caller acks at once.
   */
  ackAfterCommit(room: Room, peer: RoomPeer): boolean {
    const batch = this.queued.get(room) ?? this.inflight?.get(room)
    if (batch === undefined) return false
    batch.ackTo.add(peer)
    return true
  }

  /**
   * Calls `listener` after every successful commit with the names of the docs
   * whose updates it stored (not docs whose commit held author bindings only)
   * and the last sequence number of each doc of the commit.
   */
  onCommit(listener: (docs: string[], lastSeqs: ReadonlyMap<string, number>) => void): void {
    this.commitListeners.push(listener)
  }

  /** Tells `observer` about every stored batch from now on. */
  setObserver(observer: CommitObserver): void {
    this.observer = observer
  }

  /** True while `room` has updates queued or being committed. */
  isBusy(room: Room): boolean {
    return this.queued.has(room) || (this.inflight?.has(room) ?? false)
  }

  /**
   * Why storage commits are failing (the last error's message) while they
   * are — updates are then kept in memory, retried and not acked; null when
   * the last commit succeeded.
   */
  get failure(): string | null {
    return this.lastFailure
  }

  /** True while anything is queued or being committed. */
  get busy(): boolean {
    return this.queued.size > 0 || this.inflight !== null
  }

  /** Resolves when nothing is queued or being committed. */
  whenIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Resolves when `room` has nothing queued or being committed. */
  async whenRoomIdle(room: Room): Promise<void> {
    while (this.isBusy(room)) await this.whenIdle()
  }

  /** Stops retrying (used on forced shutdown). Queued updates are dropped from memory, not stored. */
  stop(): void {
    this.stopped = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.retryTimer || this.stopped) return
    this.scheduled = true
    const run = (): void => {
      this.scheduled = false
      if (!this.running) this.running = this.commit().finally(() => this.afterCommit())
    }
    if (this.scheduleCommit) this.scheduleCommit(run)
    else if (this.commitDelayMs > 0) setTimeout(run, this.commitDelayMs)
    else setImmediate(run)
  }

  private afterCommit(): void {
    this.running = null
    if (this.queued.size > 0 && !this.retryTimer) {
      this.schedule()
    } else if (!this.busy) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  private async commit(): Promise<void> {
    if (this.queued.size === 0) return
    const batches = this.queued
    this.queued = new Map()
    this.inflight = batches
    // Everything applied to a room's doc so far is in this batch or in an
    // earlier, committed one: this state vector is durable once we return.
    const stateVectors = new Map<Room, Uint8Array>()
    const entries: DocUpdates[] = []
    let count = 0
    const authors = new Map<Room, AuthorBinding[]>()
    for (const batch of batches.values()) {
      stateVectors.set(batch.room, batch.room.stateVector())
      const bindings = batch.room.takePendingAuthors()
      authors.set(batch.room, bindings)
      entries.push(
        bindings.length > 0
          ? { doc: batch.room.name, updates: batch.updates, authors: bindings }
          : { doc: batch.room.name, updates: batch.updates },
      )
      count += batch.updates.length
    }
    const started = performance.now()
    const observeDuration = () => this.metrics.commitDuration.observe((performance.now() - started) / 1000)
    let result: Map<string, number>
    try {
      result = await this.storage.appendUpdates(entries)
    } catch (error) {
      observeDuration()
      this.inflight = null
      for (const [room, bindings] of authors) room.restorePendingAuthors(bindings)
      this.requeue(batches)
      this.metrics.commitFailures.inc()
      this.lastFailure = error instanceof Error ? error.message : String(error)
      if (this.failedCommits++ === 0) this.failingSince = performance.now()
      this.retryDelay = Math.min(this.retryMaxDelay, Math.max(this.retryMinDelay, this.retryDelay * 2))
      this.log.error(
        { err: error, docs: entries.length, updates: count, retryInMs: this.retryDelay },
        'storage commit failed; updates kept in memory and retried, nothing acked',
      )
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null
          this.schedule()
        }, this.retryDelay)
      }
      return
    }
    observeDuration()
    this.retryDelay = 0
    this.lastFailure = null
    if (this.failedCommits > 0) {
      const failingForMs = Math.round(performance.now() - this.failingSince)
      this.log.info(
        { failedCommits: this.failedCommits, failingForMs, docs: entries.length, updates: count },
        'storage commits succeed again: the updates kept in memory are stored and acked',
      )
      this.failedCommits = 0
    }
    this.inflight = null
    this.metrics.committed(count)
    const stored = [...batches.values()].filter((batch) => batch.updates.length > 0).map((batch) => batch.room.name)
    if (stored.length > 0) {
      for (const listener of this.commitListeners) {
        try {
          listener(stored, result)
        } catch (error) {
          this.log.error({ err: error }, 'commit listener failed')
        }
      }
    }
    // Every room of the commit is marked durable (and its peers acked) before anything is awaited:
    // from `inflight = null` on, `ackAfterCommit` answers from the rooms' durable state vectors,
    // which must already include this commit — a checkpoint awaited between two rooms once let a
    // peer get the second room's older durable state as its ack, and then no ack of this commit.
    const compact: Room[] = []
    this.acksTogether(() => {
      for (const batch of batches.values()) {
        const room = batch.room
        const lastSeq = result.get(room.name) ?? room.lastSeq
        room.markDurable(stateVectors.get(room)!, lastSeq, batch.updates.length, batch.bytes, batch.ackTo)
        if (this.observer !== null)
          this.observer.committed(room, lastSeq - batch.updates.length + 1, lastSeq, batch.updates, authors.get(room)!)
        if (room.logCount >= this.checkpointUpdates || room.logBytes >= this.checkpointBytes) compact.push(room)
      }
    })
    for (const room of compact) await this.checkpoint(room)
  }

  /** Compacts a room's log into a checkpoint made from the room's own doc. */
  private async checkpoint(room: Room): Promise<void> {
    if (room.closed) return
    const state = room.encodeState()
    const uptoSeq = room.lastSeq
    try {
      await this.storage.writeCheckpoint(room.name, state, uptoSeq)
      room.logCount = 0
      room.logBytes = 0
      room.byteSize = state.byteLength
      this.metrics.checkpoints.inc()
      room.debug({ uptoSeq, bytes: state.byteLength }, 'log compacted into checkpoint')
    } catch (error) {
      room.log.warn({ err: error }, 'checkpoint failed; the update log stays as it is')
    }
  }

  private requeue(batches: Map<Room, RoomBatch>): void {
    // Failed updates go first, then whatever arrived meanwhile: order per doc is kept.
    for (const [room, later] of this.queued) {
      const failed = batches.get(room)
      if (failed) {
        failed.updates.push(...later.updates)
        failed.bytes += later.bytes
        for (const peer of later.ackTo) failed.ackTo.add(peer)
      } else {
        batches.set(room, later)
      }
    }
    this.queued = batches
  }
}
