/**
 * The life of each record doc in one tab's store: one entry per record id,
 * holding its {@link RecordState} and what that state needs, and the only
 * place where a record moves from one state to another.
 *
 * A record without an entry is closed (nothing of it is in memory). Which
 * state may follow which is the table {@link NEXT_STATES}; any other move
 * throws a {@link LifecycleError} (a bug in the store, never the app's
 * fault).
 *
 * The usual path is closed → opening → open ⇄ idle → closing → closed.
 * Besides: any record in memory, loading or closing may be parked (another
 * tab discards its changes), and a parked one is closing once that tab is
 * done; an open, idle or closed record may be closing for a rewrite of its
 * storage (a discard in this tab); a closing or parked record is opened
 * again only after it is closed; the store closing ends every state.
 *
 * @example
 *   const lifecycle = new RecordLifecycle()
 *   lifecycle.toOpening('T-1', loading)
 *   lifecycle.toOpen('T-1', record)
 *   lifecycle.stateOf('T-1') // 'open'
 *
 * @module records/RecordLifecycle
 */
import type { OpenRecord } from './OpenRecord.js'

/** The states of a record doc in a store. A record with no entry is closed. */
export const RecordState = {
  /** Being loaded from storage (after whatever closed it before has finished). */
  opening: 'opening',
  /** In memory and in use: handles are open, changes are pending or being written. */
  open: 'open',
  /** In memory with nothing holding it: it closes when its idle timer fires, unless used again first. */
  idle: 'idle',
  /** Leaving memory: writing its last changes and compacting, or rewritten while closed (a discard); reopening waits. */
  closing: 'closing',
  /** Another tab is discarding its unsynced changes: nothing is sent or stored; reopening waits until that tab is done. */
  parked: 'parked',
} as const

/** One of the {@link RecordState} values. */
export type RecordState = (typeof RecordState)[keyof typeof RecordState]

/** What a record in each state holds. */
export type RecordEntry =
  | {
      readonly state: typeof RecordState.opening
      /** Resolves with the record once loaded (rejects when it cannot be opened). */
      readonly loading: Promise<OpenRecord>
    }
  | {
      readonly state: typeof RecordState.open
      readonly record: OpenRecord
      /** Its catalog entry changed since the catalog was last written. */
      catalogDirty: boolean
    }
  | {
      readonly state: typeof RecordState.idle
      readonly record: OpenRecord
      catalogDirty: boolean
      /** Stops the idle timer. */
      readonly cancelTimer: () => void
    }
  | {
      readonly state: typeof RecordState.closing
      /** Resolves (never rejects) when the record may be opened again. */
      readonly done: Promise<void>
    }
  | {
      readonly state: typeof RecordState.parked
      /** The record's doc here, parked (undefined: it was not open). */
      readonly taken: Promise<OpenRecord | undefined>
      /** Resolves (never rejects) once {@link release} was called and what closed the record before is done. */
      readonly done: Promise<void>
      /** Lets opening the record go ahead. */
      readonly release: () => void
      /** Stops the timer that unparks the record should its discarding tab never say it is done. */
      readonly cancelTimer: () => void
    }

/** The state of a record with no entry. */
export const CLOSED = 'closed'
/** A record's state, `closed` included. */
export type RecordStateOrClosed = RecordState | typeof CLOSED

/** Which state may follow which. */
export const NEXT_STATES: Readonly<Record<RecordStateOrClosed, readonly RecordStateOrClosed[]>> = {
  closed: ['opening', 'closing', 'parked'],
  opening: ['open', 'parked', 'closed'],
  open: ['idle', 'closing', 'parked', 'closed'],
  idle: ['open', 'closing', 'parked', 'closed'],
  closing: ['closing', 'parked', 'closed'],
  parked: ['closing', 'closed'],
}

/** A move between two states that {@link NEXT_STATES} does not allow. */
export class LifecycleError extends Error {
  constructor(
    readonly recordId: string,
    readonly from: RecordStateOrClosed,
    readonly to: RecordStateOrClosed,
  ) {
    super(`record "${recordId}": cannot go from ${from} to ${to} (allowed: ${NEXT_STATES[from].join(', ') || 'none'})`)
    this.name = 'LifecycleError'
  }
}

type EntryOf<S extends RecordState> = Extract<RecordEntry, { state: S }>

/** The entries of every record in a store, and their checked transitions. */
export class RecordLifecycle {
  private readonly entries = new Map<string, RecordEntry>()

  /** The state of record `id` (`closed` when it has no entry). */
  stateOf(id: string): RecordStateOrClosed {
    return this.entries.get(id)?.state ?? CLOSED
  }

  /** The entry of record `id`, if it is not closed. */
  get(id: string): RecordEntry | undefined {
    return this.entries.get(id)
  }

  /** The entry of record `id` when it is in `state`. */
  getIn<S extends RecordState>(id: string, state: S): EntryOf<S> | undefined {
    const entry = this.entries.get(id)
    return entry?.state === state ? (entry as EntryOf<S>) : undefined
  }

  /** The record `id` in memory and usable (open or idle), if it is. */
  recordOf(id: string): OpenRecord | undefined {
    const entry = this.entries.get(id)
    return entry?.state === RecordState.open || entry?.state === RecordState.idle ? entry.record : undefined
  }

  /** Whether `record` is the one in memory for its id (not replaced, parked or closed meanwhile). */
  isCurrent(record: OpenRecord): boolean {
    return this.recordOf(record.id) === record
  }

  /** Every record in memory and usable (open or idle). */
  records(): OpenRecord[] {
    const out: OpenRecord[] = []
    for (const entry of this.entries.values()) {
      if (entry.state === RecordState.open || entry.state === RecordState.idle) out.push(entry.record)
    }
    return out
  }

  /** Ids of the records in memory and usable (open or idle). */
  openIds(): string[] {
    return this.records().map((record) => record.id)
  }

  /** Every entry in `state`. */
  allIn<S extends RecordState>(state: S): Array<[string, EntryOf<S>]> {
    const out: Array<[string, EntryOf<S>]> = []
    for (const [id, entry] of this.entries) if (entry.state === state) out.push([id, entry as EntryOf<S>])
    return out
  }

  /** Record `id` starts loading. */
  toOpening(id: string, loading: Promise<OpenRecord>): void {
    this.move(id, { state: RecordState.opening, loading })
  }

  /** Record `id` is loaded (or in use again after being idle). */
  toOpen(id: string, record: OpenRecord): void {
    const before = this.entries.get(id)
    if (before?.state === RecordState.idle) before.cancelTimer()
    const catalogDirty = before?.state === RecordState.idle ? before.catalogDirty : false
    this.move(id, { state: RecordState.open, record, catalogDirty })
  }

  /** Nothing holds record `id` any more; `cancelTimer` stops the timer that closes it. */
  toIdle(id: string, record: OpenRecord, cancelTimer: () => void): void {
    const before = this.entries.get(id)
    const catalogDirty = before?.state === RecordState.open ? before.catalogDirty : false
    this.move(id, { state: RecordState.idle, record, catalogDirty, cancelTimer })
  }

  /** Record `id` is leaving memory (or being rewritten while closed) until `done`; then its entry goes. */
  toClosing(id: string, done: Promise<void>): void {
    this.cancelTimerOf(id)
    const entry = { state: RecordState.closing, done } as const
    this.move(id, entry)
    void done.then(() => {
      if (this.entries.get(id) === entry) this.entries.delete(id)
    })
  }

  /** Another tab discards record `id`'s unsynced changes. */
  toParked(id: string, parked: Omit<EntryOf<typeof RecordState.parked>, 'state'>): void {
    this.cancelTimerOf(id)
    this.move(id, { state: RecordState.parked, ...parked })
  }

  /** Record `id` is out of memory (its entry goes). */
  toClosed(id: string): void {
    this.cancelTimerOf(id)
    this.check(id, CLOSED)
    this.entries.delete(id)
  }

  /** Every entry goes (the store closes); returns them, for their owner to end what they hold. */
  clear(): RecordEntry[] {
    const all = [...this.entries.values()]
    for (const entry of all) if (entry.state === RecordState.idle || entry.state === RecordState.parked) entry.cancelTimer()
    this.entries.clear()
    return all
  }

  private cancelTimerOf(id: string): void {
    const entry = this.entries.get(id)
    if (entry?.state === RecordState.idle || entry?.state === RecordState.parked) entry.cancelTimer()
  }

  private check(id: string, to: RecordStateOrClosed): void {
    const from = this.stateOf(id)
    if (!NEXT_STATES[from].includes(to)) throw new LifecycleError(id, from, to)
  }

  private move(id: string, entry: RecordEntry): void {
    this.check(id, entry.state)
    this.entries.set(id, entry)
  }
}
