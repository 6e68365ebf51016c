/**
 * A snapshot of the catalog's most recently updated records, kept in a small
 * synchronous key/value store (the browser's `localStorage`), so the first
 * screen of a list can show the moment the app starts — before IndexedDB has
 * even opened its database, which alone costs 50–150 ms on a cold start with
 * thousands of records on the device.
 *
 * The snapshot is derived data: rewritten (throttled) while the catalog
 * changes and when the store closes, removed at sign-out, and only ever used
 * for an early page marked `complete: false` until the real catalog is loaded.
 *
 * @module catalog/FirstScreen
 */
import type { CatalogEntry } from '../model/CatalogEntry.js'
import { compile, type CatalogPage, type CatalogQuery } from './Catalog.js'

/** The synchronous key/value store the snapshot lives in (`localStorage` satisfies it). */
export interface KeyValueStore {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** Records kept in the snapshot. */
export const FIRST_SCREEN_SIZE = 200

interface Snapshot {
  v: 1
  /** Number of visible (not archived, not deleted) catalog entries when written. */
  total: number
  entries: Array<Omit<CatalogEntry, 'stateVector' | 'viewed'>>
}

const EMPTY_STATE_VECTOR = new Uint8Array([0])

/** `globalThis.localStorage`, or null when missing or when reading it throws (sandboxed frames). */
export const defaultKeyValueStore = (): KeyValueStore | null => {
  try {
    const storage = (globalThis as { localStorage?: KeyValueStore }).localStorage
    return storage ?? null
  } catch {
    return null
  }
}

/** Reads and writes the first-screen snapshot of one user's workspace. */
export class FirstScreen {
  constructor(
    private readonly store: KeyValueStore | null,
    private readonly key: string,
  ) {}

  /**
   * A page for `query` from the snapshot, or null when the snapshot cannot
   * answer it (no snapshot, another sort, archived or deleted records asked
   * for, or not enough matches in it).
   */
  page(query: CatalogQuery): CatalogPage | null {
    if (this.store === null) return null
    if ((query.sort?.by ?? 'updatedAt') !== 'updatedAt' || (query.sort?.direction ?? 'desc') !== 'desc') return null
    if (query.includeArchived || query.includeDeleted) return null
    let snapshot: Snapshot
    try {
      const raw = this.store.getItem(this.key)
      if (raw === null) return null
      snapshot = JSON.parse(raw) as Snapshot
      if (snapshot?.v !== 1 || !Array.isArray(snapshot.entries)) return null
    } catch {
      return null
    }
    const offset = Math.max(0, query.offset ?? 0)
    const limit = Math.max(0, query.limit ?? 50)
    const matches = compile(query)
    const found: CatalogEntry[] = []
    let seen = 0
    for (const slim of snapshot.entries) {
      const entry: CatalogEntry = { ...slim, stateVector: EMPTY_STATE_VECTOR }
      if (!matches(entry)) continue
      if (seen++ >= offset) found.push(entry)
      if (found.length >= limit) break
    }
    const coversAll = snapshot.entries.length >= snapshot.total
    if (found.length < limit && !coversAll) return null
    const unfiltered = query.type === undefined && query.where === undefined && query.search === undefined && query.pending === undefined
    const total = unfiltered ? snapshot.total : offset + found.length
    return { entries: found, total, complete: false }
  }

  /** Writes the snapshot: the newest visible entries (`sortedNewestFirst` is the catalog sorted by updatedAt, newest first). */
  write(sortedNewestFirst: readonly CatalogEntry[]): void {
    if (this.store === null) return
    const entries: Snapshot['entries'] = []
    let total = 0
    for (const entry of sortedNewestFirst) {
      if (entry.archived || entry.deleted || entry.updatedAt === null) continue
      total++
      if (entries.length < FIRST_SCREEN_SIZE) {
        const { stateVector: _stateVector, viewed: _viewed, ...slim } = entry
        entries.push(slim)
      }
    }
    try {
      this.store.setItem(this.key, JSON.stringify({ v: 1, total, entries } satisfies Snapshot))
    } catch {
      // Full or unavailable: the first screen then comes from IndexedDB, a little later.
    }
  }

  /** Removes the snapshot (sign-out). */
  remove(): void {
    try {
      this.store?.removeItem(this.key)
    } catch {
      // nothing to do
    }
  }
}
