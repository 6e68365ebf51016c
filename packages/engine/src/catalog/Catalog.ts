/**
 * The local catalog: one entry per record of the workspace, held in memory
 * and persisted in one IndexedDB object store, so that lists can be filtered
 * and sorted over thousands of records without opening one database per
 * record.
 *
 * The record store keeps it current: whenever a record doc changes (local
 * edit, relay, other tab, bulk fetch) its entry is recomputed and written in
 * a batch. The workspace's pending total is the sum of the entries' pending
 * counts, so records that are not open still count.
 *
 * @example
 *   const page = store.catalog.query({
 *     type: 'ticket',
 *     where: { status: 'open', labels: 'bug' },
 *     sort: { by: 'updatedAt', direction: 'desc' },
 *     limit: 50,
 *   })
 *   page.entries // first screen; page.total: all matches
 *
 * @module catalog/Catalog
 */
import { ObservableV2 } from 'lib0/observable'
import type { CatalogStorage } from '../persistence/Storage.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'

/** A list query over the catalog. */
export interface CatalogQuery {
  /** Only these record types. */
  type?: string | readonly string[]
  /**
   * Field conditions, all of which must hold: a value means equality (for a
   * list field: the list contains it), an array means "one of", a function
   * is a predicate. Keys are catalog fields of the schema, or `id`, `title`.
   */
  where?: Record<string, unknown>
  /** A substring of the title, compared as {@link searchText} writes both: any case, accents or not, white space as one space. */
  search?: string
  /** Only records with (true) or without (false) changes not on the relay. */
  pending?: boolean
  /** Include archived records. Default false. */
  includeArchived?: boolean
  /** Include deleted records. Default false. */
  includeDeleted?: boolean
  /** Sort key: `updatedAt` (default), `createdAt`, `title`, `pending`, `id`, or a catalog field. */
  sort?: { by: string; direction?: 'asc' | 'desc' }
  /** Entries to skip. Default 0. */
  offset?: number
  /** Most entries returned. Default 50. */
  limit?: number
}

/** A page of query results. */
export interface CatalogPage {
  entries: CatalogEntry[]
  /** Number of entries matching the query (all pages). A lower bound when `complete` is false. */
  total: number
  /**
   * False for an early page read before the whole catalog was loaded (see
   * `RecordStore.query`): the entries are right, `total` is not final.
   */
  complete: boolean
}

/** Events of a {@link Catalog}. */
export interface CatalogEvents {
  /** Entries were added, changed or removed (their ids). */
  change: (ids: string[]) => void
  /** The pending total changed. */
  pending: (total: number) => void
}

/** The in-memory catalog with write-behind persistence. */
export class Catalog extends ObservableV2<CatalogEvents> {
  private readonly entries = new Map<string, CatalogEntry>()
  private storage: CatalogStorage | null = null
  private dirty = new Map<string, CatalogEntry | null>()
  private flushTimer: ReturnType<typeof setTimeout> | null = null
  private flushing: Promise<void> | null = null
  /** The batch holds an entry that turned pending or stopped being: write it durably (`strict`). */
  private strict = false
  private pendingTotal = 0
  private sortCache = new Map<string, CatalogEntry[]>()
  private isLoaded = false

  /**
   * @param onError storage failures (the catalog keeps working in memory)
   * @param writeDelay ms to batch writes
   */
  constructor(
    private readonly onError: (error: unknown) => void,
    private readonly writeDelay = 50,
  ) {
    super()
  }

  /** Number of entries. */
  get size(): number {
    return this.entries.size
  }

  /** Whether every entry is in memory (after {@link attach}). */
  get loaded(): boolean {
    return this.isLoaded
  }

  /** Sum of the pending counts of all entries. */
  get pending(): number {
    return this.pendingTotal
  }

  /** Loads the entries from storage; later changes are written to it. */
  async attach(storage: CatalogStorage): Promise<void> {
    this.storage = storage
    const loaded = await storage.loadAll()
    const fresh = loaded.filter((entry) => !this.entries.has(entry.id))
    for (const entry of fresh) {
      this.entries.set(entry.id, entry)
      this.pendingTotal += entry.pending
    }
    this.isLoaded = true
    this.changed(
      fresh.map((e) => e.id),
      true,
    )
  }

  /** Marks the catalog as loaded without storage (storage unavailable). */
  markLoaded(): void {
    this.isLoaded = true
  }

  /**
   * The first page of `query` read through the storage's `updatedAt` index,
   * before the whole catalog is loaded. Null when the query cannot be served
   * that way (another sort key, or storage without index scans).
   */
  async earlyPage(storage: CatalogStorage, query: CatalogQuery): Promise<CatalogPage | null> {
    const by = query.sort?.by ?? 'updatedAt'
    if (by !== 'updatedAt' || storage.scanByUpdatedAt === undefined) return null
    const limit = Math.max(0, query.limit ?? 50)
    const offset = Math.max(0, query.offset ?? 0)
    const filtered = query.type !== undefined || query.where !== undefined || query.search !== undefined || query.pending !== undefined
    const [entries, count] = await Promise.all([
      storage.scanByUpdatedAt({ direction: query.sort?.direction ?? 'desc', offset, limit, filter: compile(query) }),
      filtered || storage.count === undefined ? Promise.resolve(null) : storage.count(),
    ])
    // Unfiltered: every entry counts except archived / deleted ones, which the count includes: not final.
    return { entries, total: Math.max(count ?? 0, offset + entries.length), complete: false }
  }

  /** Stops writing to storage (it failed or the store closes). Entries stay in memory. */
  detach(): void {
    this.storage = null
  }

  /** The entry of a record. */
  get(id: string): CatalogEntry | undefined {
    return this.entries.get(id)
  }

  /** Every entry (unordered). */
  all(): CatalogEntry[] {
    return [...this.entries.values()]
  }

  /** Ids of records with changes not durably on the relay. */
  pendingIds(): string[] {
    const out: string[] = []
    for (const entry of this.entries.values()) if (entry.pending > 0) out.push(entry.id)
    return out
  }

  /**
   * Adds or replaces entries. `persist: false` for entries another tab
   * already wrote. Writes are batched; a change of a record from or to
   * "pending" is written at once, with durability `strict`. An entry without
   * `relaySeq` keeps the one the replaced entry had: the record's content
   * only grows, so it still holds what the relay had stored then. One
   * without `openedAt` keeps the replaced entry's too.
   */
  set(entries: readonly CatalogEntry[], { persist = true }: { persist?: boolean } = {}): void {
    if (entries.length === 0) return
    let urgent = false
    for (const given of entries) {
      const before = this.entries.get(given.id)
      const keepsSeq = given.local && given.relaySeq === undefined && before?.relaySeq !== undefined
      const keepsOpened = given.openedAt === undefined && before?.openedAt !== undefined
      const entry =
        keepsSeq || keepsOpened
          ? { ...given, ...(keepsSeq ? { relaySeq: before.relaySeq } : {}), ...(keepsOpened ? { openedAt: before.openedAt } : {}) }
          : given
      if ((before?.pending ?? 0) > 0 !== entry.pending > 0) urgent = true
      this.pendingTotal += entry.pending - (before?.pending ?? 0)
      this.entries.set(entry.id, entry)
      if (persist) this.dirty.set(entry.id, entry)
    }
    this.changed(entries.map((e) => e.id))
    if (persist && urgent) this.strict = true
    if (persist) this.scheduleFlush(urgent ? 0 : this.writeDelay)
  }

  /** Removes entries. */
  remove(ids: readonly string[], { persist = true }: { persist?: boolean } = {}): void {
    const removed = ids.filter((id) => {
      const entry = this.entries.get(id)
      if (entry === undefined) return false
      this.pendingTotal -= entry.pending
      return this.entries.delete(id)
    })
    if (removed.length === 0) return
    if (persist) for (const id of removed) this.dirty.set(id, null)
    this.changed(removed)
    if (persist) this.scheduleFlush(this.writeDelay)
  }

  /** Forgets everything in memory (sign-out). */
  clear(): void {
    const ids = [...this.entries.keys()]
    this.entries.clear()
    this.pendingTotal = 0
    this.dirty.clear()
    if (this.flushTimer !== null) clearTimeout(this.flushTimer)
    this.flushTimer = null
    this.changed(ids)
  }

  /**
   * Writes every batched change now; resolves when stored (or failed), with
   * the failure (already passed to `onError`) or null.
   */
  async flush(): Promise<unknown> {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer)
      this.flushTimer = null
    }
    while (this.flushing !== null) await this.flushing
    if (this.dirty.size === 0 || this.storage === null) return null
    const batch = this.dirty
    this.dirty = new Map()
    const storage = this.storage
    const puts = [...batch.values()].filter((e): e is CatalogEntry => e !== null)
    const removes = [...batch].filter(([, e]) => e === null).map(([id]) => id)
    const strict = this.strict
    this.strict = false
    let failure: unknown = null
    this.flushing = (async () => {
      try {
        await storage.put(puts, { strict })
        await storage.remove(removes)
      } catch (error) {
        // Keep the batch for the next flush (newer changes of the same entries win).
        for (const [id, entry] of batch) if (!this.dirty.has(id)) this.dirty.set(id, entry)
        if (strict) this.strict = true
        failure = error ?? new Error('catalog write failed')
        this.onError(error)
      } finally {
        this.flushing = null
      }
    })()
    await this.flushing
    return failure
  }

  /** Runs a list query. */
  query(query: CatalogQuery = {}): CatalogPage {
    const sorted = this.sorted(query.sort?.by ?? 'updatedAt', query.sort?.direction ?? 'desc')
    const offset = Math.max(0, query.offset ?? 0)
    const limit = Math.max(0, query.limit ?? 50)
    const matches = compile(query)
    const entries: CatalogEntry[] = []
    let total = 0
    for (const entry of sorted) {
      if (!matches(entry)) continue
      if (total >= offset && entries.length < limit) entries.push(entry)
      total++
    }
    return { entries, total, complete: this.isLoaded }
  }

  /** Every entry, newest `updatedAt` first (cached until the next change). */
  newestFirst(): readonly CatalogEntry[] {
    return this.sorted('updatedAt', 'desc')
  }

  override destroy(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer)
    this.flushTimer = null
    super.destroy()
  }

  private sorted(by: string, direction: 'asc' | 'desc'): CatalogEntry[] {
    const key = `${by}\u0000${direction}`
    let sorted = this.sortCache.get(key)
    if (sorted === undefined) {
      const value = sortValue(by)
      const sign = direction === 'asc' ? 1 : -1
      sorted = [...this.entries.values()].sort((a, b) => {
        const c = compareValues(value(a), value(b))
        return c !== 0 ? c * sign : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
      })
      this.sortCache.set(key, sorted)
    }
    return sorted
  }

  private lastEmittedTotal = 0

  private changed(ids: string[], force = false): void {
    this.sortCache.clear()
    if (this.pendingTotal !== this.lastEmittedTotal || force) {
      this.lastEmittedTotal = this.pendingTotal
      this.emit('pending', [this.pendingTotal])
    }
    if (ids.length > 0) this.emit('change', [ids])
  }

  private scheduleFlush(delay: number): void {
    if (this.storage === null) return
    if (this.flushTimer !== null) {
      if (delay > 0) return
      clearTimeout(this.flushTimer)
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null
      void this.flush()
    }, delay)
  }
}

const sortValue = (by: string): ((entry: CatalogEntry) => unknown) => {
  switch (by) {
    case 'updatedAt':
    case 'createdAt':
    case 'title':
    case 'pending':
    case 'id':
    case 'type':
      return (entry) => entry[by]
    default:
      return (entry) => entry.fields[by]
  }
}

/** How texts are ordered: as people read them — "2" before "10", case and accents second. Fixed, not the device's locale. */
const textOrder = new Intl.Collator('en', { numeric: true })

/** Orders null/undefined last (ascending), numbers numerically, everything else as text ({@link textOrder}). */
const compareValues = (a: unknown, b: unknown): number => {
  const aMissing = a === null || a === undefined
  const bMissing = b === null || b === undefined
  if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1
  if (typeof a === 'number' && typeof b === 'number') return a - b
  const sa = typeof a === 'string' ? a : JSON.stringify(a)
  const sb = typeof b === 'string' ? b : JSON.stringify(b)
  return sa === sb ? 0 : textOrder.compare(sa, sb) || (sa < sb ? -1 : 1)
}

/**
 * Text as a search compares it: lower case, letters without their accents
 * ("Überprüfung" and "uberprufung" are the same), every run of white space
 * one space.
 */
export const searchText = (text: string): string => text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ')

/** Titles as {@link searchText} writes them, kept while titles repeat from query to query. */
const searchTitles = new Map<string, string>()
const SEARCH_TITLES_KEPT = 50_000

const searchTitle = (title: string): string => {
  let text = searchTitles.get(title)
  if (text === undefined) {
    if (searchTitles.size >= SEARCH_TITLES_KEPT) searchTitles.clear()
    searchTitles.set(title, (text = searchText(title)))
  }
  return text
}

/** The predicate of a query's filters (type, where, search, pending, archived, deleted). */
export const compile = (query: CatalogQuery): ((entry: CatalogEntry) => boolean) => {
  const types = query.type === undefined ? null : new Set(typeof query.type === 'string' ? [query.type] : query.type)
  const search = searchText(query.search?.trim() ?? '') || null
  const conditions = Object.entries(query.where ?? {}).map(([key, condition]) => {
    const read = key === 'id' || key === 'title' ? (e: CatalogEntry) => e[key] : (e: CatalogEntry) => e.fields[key]
    return (entry: CatalogEntry): boolean => matchesCondition(read(entry), condition)
  })
  return (entry) => {
    if (!query.includeDeleted && entry.deleted) return false
    if (!query.includeArchived && entry.archived) return false
    if (types !== null && (entry.type === null || !types.has(entry.type))) return false
    if (query.pending !== undefined && entry.pending > 0 !== query.pending) return false
    if (search !== null && !searchTitle(entry.title).includes(search)) return false
    for (const condition of conditions) if (!condition(entry)) return false
    return true
  }
}

const matchesCondition = (value: unknown, condition: unknown): boolean => {
  if (typeof condition === 'function') return Boolean((condition as (v: unknown) => unknown)(value))
  if (Array.isArray(condition)) return condition.some((c) => matchesCondition(value, c))
  if (Array.isArray(value)) return value.includes(condition)
  return value === condition
}
