/**
 * The storage port of the record store: where record docs, their acked state
 * vectors and the catalog live on this device.
 *
 * Adapters: {@link IndexedDbStorage} (the browser; y-indexeddb's on-disk
 * format) and {@link MemoryStorage} (tests, and the fallback when IndexedDB
 * is unavailable). Both pass `packages/engine/test/storageContract.ts`.
 *
 * Every promise resolves only after the data is committed (IndexedDB: the
 * transaction's `complete` event), so "saved on this device" is never claimed
 * early. Failures reject with a {@link StorageError} that says why.
 *
 * @module persistence/Storage
 */
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { FieldClocks } from '../model/fieldClocks.js'
import type { AuthorInfo } from '../protocol/messages.js'

/** Bookkeeping kept next to a record's updates. */
export interface RecordMeta {
  /** Encoded state vector the relay durably stored (from its last ack). */
  acked?: Uint8Array
  /** Pending-field notes (see FieldPending). */
  fieldClocks?: FieldClocks
  /** Author bindings the relay sent (Yjs client id → user), for history offline and after a reload. */
  authors?: AuthorInfo[]
  /** Encoded state vector of what the user last saw of the record (for "while you were away" summaries). */
  viewed?: Uint8Array
  /**
   * Yjs client ids this device wrote the record with (every page load is a
   * new one), so its own edits are told apart from others' also after a
   * reload and before the relay has bound them to the user.
   */
  ownClients?: number[]
}

/** A record as loaded from storage. */
export interface StoredRecord {
  /** The update log, oldest first. Apply all of them. */
  updates: Uint8Array[]
  meta: RecordMeta
}

/** Storage of one record doc. */
export interface RecordStorage {
  /** Reads the update log and the meta in one consistent snapshot. */
  load(): Promise<StoredRecord>
  /** Appends updates and/or replaces meta keys in one transaction; resolves when committed. */
  write(updates: readonly Uint8Array[], meta?: RecordMeta): Promise<void>
  /**
   * Replaces the update log by one row, atomically: reads every row (also
   * rows other tabs appended), passes them to `merge`, which applies them to
   * the live doc and returns its full state, and stores that instead.
   */
  compact(merge: (rows: Uint8Array[]) => Uint8Array): Promise<void>
  /** Rows in the update log, as far as this instance knows. */
  readonly rowCount: number
  /**
   * Optional: true when this open created the storage — nothing was stored
   * for the record before, so a `load` would find it empty and can be left
   * out (a new device filling itself opens thousands of such records).
   */
  readonly created?: boolean
  /** Called when the storage went away underneath (another tab deleted it, the browser closed it). */
  onLost: ((error: StorageError) => void) | null
  /** Closes the connection. Pending writes still complete. */
  close(): void
}

/** A scan of catalog entries by `updatedAt`, for the first screen before the whole catalog is loaded. */
export interface CatalogScan {
  /** `'desc'`: newest first. */
  direction: 'asc' | 'desc'
  /** Matching entries to skip. */
  offset: number
  /** Matching entries to return. */
  limit: number
  /** Which entries match. */
  filter: (entry: CatalogEntry) => boolean
}

/** Storage of the catalog (one entry per record of the workspace). */
export interface CatalogStorage {
  /** Every entry. */
  loadAll(): Promise<CatalogEntry[]>
  /**
   * Optional: entries in `updatedAt` order (entries without one are left
   * out), reading only as many as needed. Lets the first screen show before
   * `loadAll` finished.
   */
  scanByUpdatedAt?(scan: CatalogScan): Promise<CatalogEntry[]>
  /** Optional: number of entries. */
  count?(): Promise<number>
  /**
   * Writes entries in one transaction; resolves when committed. `strict`:
   * flushed to disk before it resolves (IndexedDB durability `strict`; the
   * default may be relaxed, as the catalog can be rebuilt from the records).
   */
  put(entries: readonly CatalogEntry[], options?: { strict?: boolean }): Promise<void>
  /** Removes entries in one transaction. */
  remove(ids: readonly string[]): Promise<void>
  onLost: ((error: StorageError) => void) | null
  close(): void
}

/**
 * Records fetched from the relay that have not been opened on this device
 * yet, kept together instead of one database each (a new device stores
 * thousands of them at once). One entry per record: its updates merged into
 * one, with the meta the pull keeps (`acked`, `authors`, `viewed`). Opening
 * a record ({@link StorageBackend.openRecord}) moves its entry into the
 * record's own storage first, so callers never read the inbox themselves
 * except to pull.
 */
export interface RecordInbox {
  /** What the inbox holds of a record (one update, oldest-first log of one row); undefined when nothing. */
  get(recordId: string): Promise<StoredRecord | undefined>
  /**
   * Merges `update` into the record's entry (`Y.mergeUpdates`, in the same
   * transaction that reads the entry, so writes of other tabs are kept) and
   * merges `meta`: state vectors by their maximum, authors by client id.
   * Puts made while a transaction is running share the next one. Resolves
   * when committed (durability `strict`): from then on the record is
   * available offline.
   */
  put(recordId: string, update: Uint8Array, meta: Pick<RecordMeta, 'acked' | 'authors' | 'viewed'>): Promise<void>
}

/** What the browser says of the site's storage (`navigator.storage.estimate()` and `persisted()`). */
export interface SpaceEstimate {
  /** Bytes the site uses, all of its storage as the browser counts it (IndexedDB, caches, service worker). */
  usage: number
  /** Bytes the browser lets the site use. */
  quota: number
  /** Whether the browser keeps the data when the disk runs low (granted `persist()`); null: unknown. */
  persisted: boolean | null
}

/** All local storage of one user in one workspace. */
export interface StorageBackend {
  /** `'indexeddb'` or `'memory'`. */
  readonly kind: string
  /**
   * Opens (creating if needed) the storage of a record. With an
   * {@link inbox}: what the inbox holds of the record is written into the
   * record's storage first, then removed from the inbox.
   */
  openRecord(recordId: string): Promise<RecordStorage>
  /**
   * Optional: where a pull stores records that have no storage of their own
   * yet (see {@link RecordInbox}). Without it, pulled records are written
   * into their own storage.
   */
  readonly inbox?: RecordInbox
  /** Opens the catalog. */
  openCatalog(): Promise<CatalogStorage>
  /**
   * Optional: ids of every record stored on this device for this user and
   * workspace (in their own storage or in the inbox), whether the catalog
   * lists them or not. Resolves with null
   * when the adapter cannot list them (IndexedDB without `databases()`).
   */
  listRecords?(): Promise<string[] | null>
  /**
   * Deletes every database of this user and workspace: the records listed
   * (plus any others found), the inbox and the catalog. Open connections are closed first.
   */
  wipe(recordIds: readonly string[]): Promise<void>
  /**
   * Optional: how much of the room the browser gives the site is used, and
   * whether the data is kept when the disk runs low; null when the platform
   * does not say (no `navigator.storage`).
   */
  estimate?(): Promise<SpaceEstimate | null>
  /**
   * Optional: removes what this device stores of a record (its own storage
   * and its inbox entry), to free space — unless it is open, here or in
   * another tab (IndexedDB: every open holds a Web Lock; without Web Locks
   * nothing is removed), and only if `check` accepts what is stored (it is
   * called with every stored update and the meta, while no one can open the
   * record). Resolves with whether the record was removed.
   */
  removeRecord?(recordId: string, check: (stored: StoredRecord) => boolean): Promise<boolean>
  /** Optional: asks the browser to keep the data when the disk runs low (`navigator.storage.persist()`); resolves with whether it will. */
  persist?(): Promise<boolean>
}

/** Why storage failed. */
export const StorageFailure = {
  /** IndexedDB is missing or refuses to open (private mode, disabled, broken profile). */
  unavailable: 'unavailable',
  /** The browser's storage quota is exhausted. */
  quota: 'quota',
  /** The database was closed or deleted underneath (another tab signed out, the browser evicted it). */
  closed: 'closed',
  /** Any other failure of a read or write. */
  failed: 'failed',
} as const
export type StorageFailure = (typeof StorageFailure)[keyof typeof StorageFailure]

/** A storage operation failed. */
export class StorageError extends Error {
  readonly kind: StorageFailure
  override readonly cause: unknown

  constructor(kind: StorageFailure, message: string, cause?: unknown) {
    super(message)
    this.name = 'StorageError'
    this.kind = kind
    this.cause = cause
  }
}

/** Classifies a DOMException / error thrown by IndexedDB. */
export const classifyStorageError = (error: unknown, doing: string): StorageError => {
  if (error instanceof StorageError) return error
  const name = (error as { name?: string } | null)?.name ?? ''
  const message = (error as { message?: string } | null)?.message || name || String(error)
  if (name === 'QuotaExceededError' || /quota/i.test(message)) {
    return new StorageError(StorageFailure.quota, `${doing}: the browser's storage quota for this site is exhausted (${message})`, error)
  }
  if (name === 'InvalidStateError' || /clos/i.test(message)) {
    return new StorageError(StorageFailure.closed, `${doing}: the database was closed (${message})`, error)
  }
  return new StorageError(StorageFailure.failed, `${doing}: ${name ? name + ': ' : ''}${message}`, error)
}
