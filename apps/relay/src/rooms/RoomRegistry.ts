/**
 * Opens, shares and unloads rooms.
 *
 * - `acquire(name)` returns the room once it is loaded from storage; every
 *   caller for the same name gets the same room and the same load.
 * - `release(room)` drops a reference; a room with no references unloads
 *   after `idleUnloadMs`, and only once everything it holds is stored.
 * - An `acquire` that arrives while a room waits to unload keeps it: the
 *   room object is reused, so there is no load/unload race and no stale copy.
 * - `onOpen(listener)` hears of every room once it is loaded, before any
 *   peer gets it (webhooks watch record changes this way).
 * - Every `dormantAfterMs / 2` the registry puts rooms whose doc was not used
 *   since its last look to sleep (see `Room.sleep`): a loaded room nobody
 *   writes to holds its doc encoded within `dormantAfterMs`. The sweep runs
 *   in slices of a few ms (`inSlices`), so deliveries never wait for it.
 * - Every 3 s one timer drops the presence states of every room that nobody
 *   renewed for 30 s (`Room.expirePresence`, y-protocols' outdated timeout),
 *   in slices too, instead of a timer in every room's Awareness.
 * - A keep-alive (a presence renewal that changes nothing) waits in its room
 *   for ~3 s, or until the room's next change: a timer every 250 ms sends
 *   the rooms whose keep-alives waited that long (`Room.sendRenewals`), so
 *   several reach each peer in one message, spread over time as they came.
 *
 * @module rooms/RoomRegistry
 */
import type { AuthorBinding, DocSeq, Storage } from '../storage/Storage.js'
import type { RelayMetrics } from '../observability/metrics.js'
import type { Logger } from '../observability/logger.js'
import { Room, type RoomHooks } from './Room.js'
import { snapshotOfStored } from './snapshotOfStored.js'
import type { CommitQueue } from './CommitQueue.js'
import type { DocLimits } from '../security/docGuard.js'
import { inSlices } from '../inSlices.js'

/** How often outdated presence states are looked for, ms: y-protocols' own interval (its `outdatedTimeout` / 10). */
const PRESENCE_CHECK_MS = 3000
/**
 * How long a room's first keep-alive waits for others before they are sent,
 * ms, and how often rooms are looked at for that. Clients renew every
 * 15–18 s and drop a state not renewed for 30 s: waiting ≤ ~3.3 s keeps a
 * renewal well within that at every peer.
 */
const RENEWAL_WAIT_MS = 3000
const RENEWAL_CHECK_MS = 250

/** The cluster layer as the registry sees it: it follows every loaded room while it is in memory. */
export interface RoomFollower {
  /** `room` was loaded from storage (its `lastSeq` is what it holds). */
  follow(room: Room): void
  /** `room` is unloaded. */
  unfollow(room: Room): void
  /** Presence states of `room` changed on this instance. */
  awarenessChanged(room: Room, update: Uint8Array): void
}

/** Options of {@link RoomRegistry}. */
export interface RoomRegistryOptions {
  /** Delay between the last peer leaving and the room unloading, ms. Default 10 000. */
  idleUnloadMs?: number
  /** How long a loaded room's doc goes unused before the room holds it only encoded (dormant), ms, at most; 0: never. Default 10 000. */
  dormantAfterMs?: number
  /** Longest run of the sleep sweep in one event-loop turn, ms (see `inSlices`). Default 2. */
  sweepSliceMs?: number
  /** Limits checked against each room's doc. Default: those of `DEFAULT_LIMITS`. */
  docLimits?: DocLimits
  /** Runs the send of a room's presence changes of one turn (see the `Room` hook of that name). Default: `setImmediate`. */
  scheduleAwarenessSend?: (send: () => void) => void
  /** The cluster layer, when several relay instances share the storage. */
  follower?: RoomFollower
}

interface Entry {
  room: Room
  /** Resolves once the room is loaded; null once it is (an idle room keeps no promise). */
  ready: Promise<Room> | null
}

/** All rooms of one relay. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Entry>()
  private readonly idleUnloadMs: number
  private readonly docLimits: DocLimits | undefined
  private readonly scheduleAwarenessSend: ((send: () => void) => void) | undefined
  private readonly openListeners: Array<(room: Room) => void> = []
  private readonly follower: RoomFollower | null
  /** The hooks of every room (one object for all: they take the room as an argument). */
  private readonly roomHooks: RoomHooks
  /** Drops outdated presence states of every room (see {@link expirePresence}). */
  private readonly presenceTimer: ReturnType<typeof setInterval>
  /** Rooms with keep-alives waiting, in the order they started waiting (see {@link sendRenewals}). */
  private readonly renewing = new Set<Room>()
  /** Sends the keep-alives that waited long enough (see {@link sendRenewals}). */
  private readonly renewalTimer: ReturnType<typeof setInterval>
  /** True while {@link expirePresence} runs. */
  private expiring = false
  /** Puts unused rooms to sleep (see {@link sleepUnused}); null when rooms never go dormant. */
  private readonly sleepTimer: ReturnType<typeof setInterval> | null
  /** Longest slice of a sweep, ms (see `inSlices`); undefined: its default. */
  private readonly sweepSliceMs: number | undefined
  /** A sweep is running. */
  private sweeping = false

  constructor(
    private readonly storage: Storage,
    private readonly commits: CommitQueue,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
    options: RoomRegistryOptions = {},
  ) {
    this.idleUnloadMs = options.idleUnloadMs ?? 10_000
    this.docLimits = options.docLimits
    this.scheduleAwarenessSend = options.scheduleAwarenessSend
    this.follower = options.follower ?? null
    const follower = this.follower
    const onUpdate: RoomHooks['onUpdate'] = (r, update, from) => this.commits.enqueue(r, update, from)
    const onWake: RoomHooks['onWake'] = () => this.metrics.roomsWoken.inc()
    const onRenewalWaiting: RoomHooks['onRenewalWaiting'] = (r) => void this.renewing.add(r)
    this.roomHooks =
      follower === null
        ? { onUpdate, onWake, onRenewalWaiting, scheduleAwarenessSend: this.scheduleAwarenessSend }
        : {
            onUpdate,
            onWake,
            onRenewalWaiting,
            scheduleAwarenessSend: this.scheduleAwarenessSend,
            onAwareness: (r, update) => follower.awarenessChanged(r, update),
          }
    const dormantAfterMs = options.dormantAfterMs ?? 10_000
    this.sweepSliceMs = options.sweepSliceMs
    // one timer for all rooms, and it does not keep the process alive
    this.sleepTimer =
      dormantAfterMs > 0
        ? setInterval(
            () => void this.sweep().catch((err: unknown) => this.log.error({ err }, 'sleep sweep failed')),
            Math.max(1, dormantAfterMs / 2),
          ).unref()
        : null
    this.presenceTimer = setInterval(
      () => void this.expirePresence().catch((err: unknown) => this.log.error({ err }, 'presence sweep failed')),
      PRESENCE_CHECK_MS,
    ).unref()
    this.renewalTimer = setInterval(() => this.sendRenewals(), RENEWAL_CHECK_MS).unref()
  }

  /**
   * Sends the keep-alives of every room whose first waiting keep-alive
   * arrived at least `RENEWAL_WAIT_MS` ago (`Room.sendRenewals`); a timer
   * runs it every `RENEWAL_CHECK_MS`, so rooms are sent as their keep-alives
   * came, spread over time. Returns how many rooms sent.
   */
  sendRenewals(now: number = performance.now()): number {
    let sent = 0
    for (const room of this.renewing) {
      if (room.renewalsSince !== 0 && now - room.renewalsSince < RENEWAL_WAIT_MS && !room.closed) continue
      this.renewing.delete(room)
      if (room.sendRenewals()) sent++
    }
    return sent
  }

  /**
   * Drops the presence states that nobody renewed for y-protocols' outdated
   * timeout in every room (`Room.expirePresence`), in slices of a few ms.
   * Resolves with the number of states dropped; null when a sweep is
   * already running.
   */
  async expirePresence(now: () => number = Date.now): Promise<number | null> {
    if (this.expiring) return null
    this.expiring = true
    let removed = 0
    const check = ({ room }: Entry): void => {
      if (!room.closed) removed += room.expirePresence(now())
    }
    try {
      await inSlices(this.rooms.values(), check, { sliceMs: this.sweepSliceMs })
    } finally {
      this.expiring = false
    }
    return removed
  }

  /**
   * Puts every loaded room whose doc was not used since the last call, and
   * whose updates are all stored, to sleep; counts the dormant rooms. Returns
   * how many rooms are dormant. All rooms in one go: the timer runs
   * {@link sweep}, which does the same in slices.
   */
  sleepUnused(): number {
    let dormant = 0
    for (const entry of this.rooms.values()) if (this.sleepIfUnused(entry)) dormant++
    this.metrics.roomsDormant.set(dormant)
    return dormant
  }

  /**
   * {@link sleepUnused} spread over event-loop turns (see `inSlices`): with
   * thousands of rooms, putting those unused to sleep takes hundreds of ms,
   * and deliveries must not wait for it. Resolves with the number of rooms
   * found dormant; while one sweep runs, another resolves with null at once.
   */
  async sweep(): Promise<number | null> {
    if (this.sweeping) return null
    this.sweeping = true
    let dormant = 0
    try {
      await inSlices(this.rooms.values(), (entry) => void (this.sleepIfUnused(entry) && dormant++), { sliceMs: this.sweepSliceMs })
    } finally {
      this.sweeping = false
    }
    this.metrics.roomsDormant.set(dormant)
    return dormant
  }

  /** Puts a loaded room to sleep if unused (`Room.sleep`); true when it is dormant. */
  private sleepIfUnused({ room, ready }: Entry): boolean {
    if (ready !== null || room.closed) return false // loading, or gone
    room.sleep(this.commits.isBusy(room))
    return room.isDormant
  }

  /** Number of rooms in memory (loading, open or waiting to unload). */
  get size(): number {
    return this.rooms.size
  }

  /** Calls `listener` with every room once it is loaded from storage, before any caller of {@link acquire} gets it. */
  onOpen(listener: (room: Room) => void): void {
    this.openListeners.push(listener)
  }

  /** The room if it is in memory. */
  peek(name: string): Room | undefined {
    return this.rooms.get(name)?.room
  }

  /** Names of rooms in memory. */
  names(): string[] {
    return [...this.rooms.keys()]
  }

  /**
   * Takes a reference to the room `name`, loading it from storage first if
   * needed. Rejects (and takes no reference) when loading fails.
   */
  async acquire(name: string): Promise<Room> {
    let entry = this.rooms.get(name)
    if (!entry) {
      const room = new Room(name, this.roomHooks, this.log, this.docLimits)
      const ready = this.load(room)
      const created: Entry = { room, ready }
      ready.then(
        () => (created.ready = null),
        () => {},
      )
      entry = created
      this.rooms.set(name, entry)
      this.metrics.roomsOpen.set(this.rooms.size)
    }
    const room = entry.room
    room.refs++
    if (room.unloadTimer) {
      clearTimeout(room.unloadTimer)
      room.unloadTimer = null
    }
    try {
      return await (entry.ready ?? room)
    } catch (error) {
      room.refs--
      throw error
    }
  }

  /** Drops a reference taken by {@link acquire}. */
  release(room: Room): void {
    room.refs--
    if (room.refs > 0 || room.closed) return
    if (room.unloadTimer) clearTimeout(room.unloadTimer)
    room.unloadTimer = setTimeout(() => {
      room.unloadTimer = null
      void this.unload(room)
    }, this.idleUnloadMs)
  }

  /**
   * The part of a doc's state a client lacks (`stateVector` = what it has),
   * the durably stored state vector and the sequence number of the last
   * stored update (the answer holds everything stored up to it), without
   * opening a room: a doc in memory answers from its room; any other doc
   * from storage (every update of an unloaded room is stored, because rooms
   * unload only when idle).
   */
  async snapshot(
    name: string,
    stateVector: Uint8Array,
  ): Promise<{ update: Uint8Array; durableStateVector: Uint8Array; lastSeq: number; authors: AuthorBinding[]; workMs: number }> {
    // the relay's own time for this answer: its synchronous parts, not the time it waited behind other work
    let workMs = 0
    const timed = <T>(work: () => T): T => {
      const started = performance.now()
      try {
        return work()
      } finally {
        workMs += performance.now() - started
      }
    }
    const entry = this.rooms.get(name)
    if (entry) {
      const room = await (entry.ready ?? entry.room)
      if (!room.closed) {
        const update = timed(() => room.encodeState(stateVector))
        const { durableStateVector, lastSeq } = room
        return { update, durableStateVector, lastSeq, authors: [...room.authors.values()], workMs }
      }
    }
    // a storage that reads on the relay's thread (MemoryStorage, SQLite's loads) does it inside this call
    const stored = await timed(() => this.storage.loadDoc(name))
    const answer = timed(() => snapshotOfStored(stored, stateVector))
    return { ...answer, lastSeq: stored.lastSeq, workMs }
  }

  /** Stored doc names starting with `prefix`, plus docs in memory (sorted, deduplicated). */
  async list(prefix: string): Promise<string[]> {
    const stored = await this.storage.listDocs(prefix)
    const inMemory = this.names().filter((name) => name.startsWith(prefix))
    if (inMemory.length === 0) return stored
    return [...new Set([...stored, ...inMemory])].sort()
  }

  /**
   * One page of the docs of {@link list}, each with the sequence number of
   * its last stored update (for a loaded room, the newest of what storage
   * and the room report; 0 for a doc nothing was stored of yet): the first
   * `limit` docs after `after`, and whether more follow. Storage reads only
   * this page (and one doc more, to tell), so the first page of a long
   * listing comes as fast as a short one.
   */
  async listSeqsPage(prefix: string, after: string, limit: number): Promise<{ docs: DocSeq[]; more: boolean }> {
    const stored = await this.storage.listDocSeqs(prefix, { after, limit: limit + 1 })
    // the rows read cover the names up to the last one when more follow; later pages cover the rest
    const bound = stored.length > limit ? stored[stored.length - 1]!.doc : null
    const seqs = new Map<string, number>()
    for (const { doc, lastSeq } of stored) seqs.set(doc, lastSeq)
    for (const name of this.names()) {
      if (!name.startsWith(prefix) || name <= after || (bound !== null && name > bound)) continue
      seqs.set(name, Math.max(seqs.get(name) ?? 0, this.peek(name)?.lastSeq ?? 0))
    }
    const docs = [...seqs.keys()].sort().map((doc) => ({ doc, lastSeq: seqs.get(doc)! }))
    return { docs: docs.slice(0, limit), more: docs.length > limit }
  }

  /** Stops the registry's timers (sleep sweep, presence check, keep-alives), sending the keep-alives waiting; {@link unloadAll} does too. */
  stopTimers(): void {
    if (this.sleepTimer !== null) clearInterval(this.sleepTimer)
    clearInterval(this.presenceTimer)
    clearInterval(this.renewalTimer)
    this.sendRenewals(Infinity)
  }

  /** Unloads every room with no references after storing what it holds (shutdown). */
  async unloadAll(): Promise<void> {
    this.stopTimers()
    await this.commits.whenIdle()
    for (const { room } of [...this.rooms.values()]) {
      this.rooms.delete(room.name)
      this.follower?.unfollow(room)
      room.destroy()
    }
    this.metrics.roomsOpen.set(0)
    this.metrics.roomsDormant.set(0)
  }

  private async load(room: Room): Promise<Room> {
    const started = performance.now()
    try {
      const stored = await this.storage.loadDoc(room.name)
      // a relay that keeps loaded docs awake (`dormantAfterMs` 0) makes every doc at once
      room.load(stored, this.sleepTimer !== null)
      for (const listener of this.openListeners) listener(room)
      this.follower?.follow(room)
      room.debug({ updates: stored.updates.length, ms: Math.round(performance.now() - started) }, 'room loaded')
      return room
    } catch (error) {
      room.log.error({ err: error }, 'room failed to load from storage')
      if (this.rooms.get(room.name)?.room === room) this.rooms.delete(room.name)
      this.metrics.roomsOpen.set(this.rooms.size)
      room.destroy()
      throw error
    }
  }

  private async unload(room: Room): Promise<void> {
    await this.commits.whenRoomIdle(room)
    if (room.refs > 0 || room.closed) return
    if (this.rooms.get(room.name)?.room !== room) return
    this.rooms.delete(room.name)
    this.metrics.roomsOpen.set(this.rooms.size)
    this.follower?.unfollow(room)
    room.destroy()
    room.debug({}, 'room unloaded')
  }
}
