/**
 * IndexedDB storage of a user's records in one workspace.
 *
 * Each record is its own database in **y-indexeddb's format** — object stores
 * `updates` (auto-increment keys, one Yjs update per row) and `custom` — so
 * `new IndexeddbPersistence(name, doc)` from y-indexeddb opens the same data.
 * What this adapter adds to y-indexeddb:
 *
 * - every write resolves when its transaction **completed** (durability
 *   `strict`), which is what "saved on this device" is based on; y-indexeddb
 *   fires and forgets;
 * - the acked state vector and pending-field notes are written in the same
 *   transaction as the updates they belong to (keys `concord:acked` and
 *   `concord:fieldClocks` of `custom`);
 * - loading appends nothing (y-indexeddb adds a full-state row on every
 *   load), and `compact` replaces the log by one row atomically;
 * - failures reject with a classified {@link StorageError} instead of
 *   throwing inside Yjs observers or leaving unhandled rejections;
 * - a connection closes itself on `versionchange`, so another tab can delete
 *   the database at sign-out.
 *
 * Records fetched by a pull and never opened here are kept together in the
 * **inbox** ({@link IdbRecordInbox}) instead: one database for all of them.
 * Opening a record moves its inbox entry into the record's own database
 * first (written there, then removed from the inbox), so everything that
 * opens records sees y-indexeddb's format only.
 *
 * Database names are partitioned by user and workspace:
 *
 *     concord/<userId>/<workspaceId>/record/<recordId>
 *     concord/<userId>/<workspaceId>/inbox
 *     concord/<userId>/<workspaceId>/catalog
 *
 * (user and workspace ids are URI-encoded.)
 *
 * @example
 *   const storage = new IndexedDbStorage({ userId: 'u1', workspaceId: 'acme' })
 *   const store = new RecordStore({ client, userId: 'u1', workspaceId: 'acme', storage })
 *
 * @module persistence/IndexedDbStorage
 */
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { FieldClocks } from '../model/fieldClocks.js'
import type { AuthorInfo } from '../protocol/messages.js'
import { deleteDatabase, openDatabase, ownBytes, transact } from './idb.js'
import { IdbRecordInbox } from './IdbRecordInbox.js'
import {
  StorageError,
  StorageFailure,
  type SpaceEstimate,
  classifyStorageError,
  type CatalogScan,
  type CatalogStorage,
  type RecordMeta,
  type RecordStorage,
  type StorageBackend,
  type StoredRecord,
} from './Storage.js'

/** y-indexeddb's store of updates. */
export const UPDATES_STORE = 'updates'
/** y-indexeddb's store of custom key/values. */
export const CUSTOM_STORE = 'custom'
/** Key of the acked state vector in the `custom` store. */
export const ACKED_KEY = 'concord:acked'
/** Key of the pending-field notes in the `custom` store. */
export const FIELD_CLOCKS_KEY = 'concord:fieldClocks'
/** Key of the author bindings in the `custom` store. */
export const AUTHORS_KEY = 'concord:authors'
/** Key of the last-viewed state vector in the `custom` store. */
export const VIEWED_KEY = 'concord:viewed'
/** Key of this device's Yjs client ids of the record in the `custom` store. */
export const OWN_CLIENTS_KEY = 'concord:own-clients'
/** Object store of the catalog database. */
export const CATALOG_STORE = 'records'
/** Catalog entries read per transaction when loading. */
const CATALOG_CHUNK = 1000

/** Options of {@link IndexedDbStorage}. */
export interface IndexedDbStorageOptions {
  userId: string
  workspaceId: string
  /**
   * The IndexedDB factory. Default `globalThis.indexedDB` (pass
   * fake-indexeddb's in Node tests); `null` means "no IndexedDB".
   */
  indexedDB?: IDBFactory | null
}

/** Prefix of every database of a user in a workspace. */
export const databasePrefix = (userId: string, workspaceId: string): string =>
  `concord/${encodeURIComponent(userId)}/${encodeURIComponent(workspaceId)}/`

/** Name of a record's database. */
export const recordDatabaseName = (userId: string, workspaceId: string, recordId: string): string =>
  `${databasePrefix(userId, workspaceId)}record/${recordId}`

/** Name of the inbox database (records pulled, not opened yet). */
export const inboxDatabaseName = (userId: string, workspaceId: string): string => `${databasePrefix(userId, workspaceId)}inbox`

/** Name of the catalog database. */
export const catalogDatabaseName = (userId: string, workspaceId: string): string => `${databasePrefix(userId, workspaceId)}catalog`

/** IndexedDB adapter of the storage port. */
export class IndexedDbStorage implements StorageBackend {
  readonly kind = 'indexeddb'
  readonly prefix: string
  /** Records pulled and never opened here (undefined without IndexedDB). */
  readonly inbox: IdbRecordInbox | undefined
  private readonly factory: IDBFactory | undefined
  private readonly userId: string
  private readonly workspaceId: string
  private readonly open = new Set<{ close(): void }>()

  constructor(options: IndexedDbStorageOptions) {
    this.userId = options.userId
    this.workspaceId = options.workspaceId
    this.prefix = databasePrefix(options.userId, options.workspaceId)
    this.factory = options.indexedDB === null ? undefined : (options.indexedDB ?? globalIndexedDB())
    this.inbox = this.factory === undefined ? undefined : new IdbRecordInbox(this.factory, inboxDatabaseName(this.userId, this.workspaceId))
  }

  async openRecord(recordId: string): Promise<RecordStorage> {
    const name = recordDatabaseName(this.userId, this.workspaceId, recordId)
    // Held while open, in every tab: a record is never removed to free space while someone has it open.
    const release = await holdLock(recordLockName(name), 'shared')
    let created = false
    let db: IDBDatabase
    try {
      db = await openDatabase(this.factory, name, undefined, (db) => {
        // Neither store yet: the database is new (or was never written), it holds nothing.
        created = db.objectStoreNames.length === 0
        if (!db.objectStoreNames.contains(UPDATES_STORE)) db.createObjectStore(UPDATES_STORE, { autoIncrement: true })
        if (!db.objectStoreNames.contains(CUSTOM_STORE)) db.createObjectStore(CUSTOM_STORE)
      })
    } catch (error) {
      release()
      throw error
    }
    const storage = new IdbRecordStorage(db, name, created, () => {
      this.open.delete(storage)
      release()
    })
    this.open.add(storage)
    if (this.inbox !== undefined) {
      // First open of a pulled record: its content is in the inbox. Moved before anyone reads the storage.
      try {
        if (await this.inbox.moveInto(recordId, storage, !created)) storage.created = false
      } catch (error) {
        storage.close()
        throw error
      }
    }
    return storage
  }

  async openCatalog(): Promise<CatalogStorage> {
    const name = catalogDatabaseName(this.userId, this.workspaceId)
    const db = await openDatabase(this.factory, name, 1, (db) => {
      if (!db.objectStoreNames.contains(CATALOG_STORE)) {
        const store = db.createObjectStore(CATALOG_STORE, { keyPath: 'id' })
        store.createIndex('updatedAt', 'updatedAt')
      }
    })
    const storage = new IdbCatalogStorage(db, name, () => this.open.delete(storage))
    this.open.add(storage)
    return storage
  }

  /**
   * Ids of the records of this user and workspace: their databases, from
   * `indexedDB.databases()` (Chromium 71+, Firefox 126+, Safari 14+,
   * fake-indexeddb), and the inbox's entries; null where `databases()` is
   * missing or fails.
   */
  async listRecords(): Promise<string[] | null> {
    const names = await this.databaseNames()
    if (names === null) return null
    const prefix = `${this.prefix}record/`
    const ids = new Set(names.filter((name) => name.startsWith(prefix)).map((name) => name.slice(prefix.length)))
    for (const id of (await this.inbox?.ids()) ?? []) ids.add(id)
    return [...ids]
  }

  async wipe(recordIds: readonly string[]): Promise<void> {
    for (const storage of [...this.open]) storage.close()
    this.inbox?.close()
    const names = new Set(recordIds.map((id) => recordDatabaseName(this.userId, this.workspaceId, id)))
    names.add(catalogDatabaseName(this.userId, this.workspaceId))
    names.add(inboxDatabaseName(this.userId, this.workspaceId))
    // Listing is a bonus; the catalog's ids are the main source.
    for (const name of (await this.databaseNames()) ?? []) if (name.startsWith(this.prefix)) names.add(name)
    const failures: unknown[] = []
    await Promise.all([...names].map((name) => deleteDatabase(this.factory, name).catch((error: unknown) => failures.push(error))))
    if (failures.length > 0) {
      throw new StorageError(
        StorageFailure.failed,
        `could not delete ${failures.length} of ${names.size} databases: ${String(failures[0])}`,
        failures[0],
      )
    }
  }

  /**
   * Removes the record's database and inbox entry (see
   * {@link StorageBackend.removeRecord}) while holding its lock exclusively:
   * no tab has it open (each open holds the lock shared) and none can open
   * it until the removal is done. Without Web Locks nothing is removed.
   */
  async removeRecord(recordId: string, check: (stored: StoredRecord) => boolean): Promise<boolean> {
    const locks = webLocks()
    if (locks === undefined || this.factory === undefined) return false
    const factory = this.factory
    const name = recordDatabaseName(this.userId, this.workspaceId, recordId)
    return locks.request(recordLockName(name), { mode: 'exclusive', ifAvailable: true }, async (lock) => {
      if (lock === null) return false // open somewhere
      const names = await this.databaseNames()
      if (names === null || names.includes(name)) {
        const db = await openDatabase(factory, name, undefined, (db) => {
          if (!db.objectStoreNames.contains(UPDATES_STORE)) db.createObjectStore(UPDATES_STORE, { autoIncrement: true })
          if (!db.objectStoreNames.contains(CUSTOM_STORE)) db.createObjectStore(CUSTOM_STORE)
        })
        const storage = new IdbRecordStorage(db, name, false, () => undefined)
        let stored: StoredRecord
        try {
          stored = await storage.load()
        } finally {
          storage.close()
        }
        if (!check(stored)) return false
      }
      // The inbox entry first: one a pull changed meanwhile stays, and so does the database (nothing is half removed).
      if (this.inbox !== undefined && !(await this.inbox.removeChecked(recordId, (entry) => entry === undefined || check(entry))))
        return false
      if (names === null || names.includes(name)) await deleteDatabase(factory, name)
      return true
    })
  }

  /**
   * The site's storage as the browser counts it (`navigator.storage`:
   * Chromium 61+, Firefox 57+, Safari 17+); null where it says nothing
   * (Node, older browsers, IndexedDB unavailable).
   */
  async estimate(): Promise<SpaceEstimate | null> {
    const manager = storageManager()
    if (this.factory === undefined || typeof manager?.estimate !== 'function') return null
    const { usage, quota } = await manager.estimate()
    if (typeof usage !== 'number' || typeof quota !== 'number') return null
    const persisted = typeof manager.persisted === 'function' ? await manager.persisted().catch(() => null) : null
    return { usage, quota, persisted }
  }

  /** Asks the browser to keep the site's data when the disk runs low; false where it cannot be asked or says no. */
  async persist(): Promise<boolean> {
    const manager = storageManager()
    if (this.factory === undefined || typeof manager?.persist !== 'function') return false
    return manager.persist().catch(() => false)
  }

  /** Names of every database of the origin, or null when they cannot be listed. */
  private async databaseNames(): Promise<string[] | null> {
    const factory = this.factory as (IDBFactory & { databases?: () => Promise<Array<{ name?: string }>> }) | undefined
    if (typeof factory?.databases !== 'function') return null
    try {
      return (await factory.databases()).flatMap((info) => (info.name === undefined ? [] : [info.name]))
    } catch {
      return null
    }
  }
}

/** `globalThis.indexedDB`, or undefined when missing or when merely reading it throws (some privacy modes). */
const globalIndexedDB = (): IDBFactory | undefined => {
  try {
    return (globalThis as { indexedDB?: IDBFactory }).indexedDB ?? undefined
  } catch {
    return undefined
  }
}

/** The Web Locks API (`navigator.locks`: Chromium 69+, Firefox 96+, Safari 15.4+), or undefined where there is none. */
const webLocks = (): LockManager | undefined => {
  try {
    return (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks ?? undefined
  } catch {
    return undefined
  }
}

/** The Web Lock every open of a record holds shared, and its removal exclusively. */
const recordLockName = (databaseName: string): string => `concord-record ${databaseName}`

/** Waits for a Web Lock and holds it until the returned function is called; without Web Locks, holds nothing. */
const holdLock = (name: string, mode: LockMode): Promise<() => void> => {
  const locks = webLocks()
  if (locks === undefined) return Promise.resolve(() => undefined)
  return new Promise((granted, failed) => {
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    locks
      .request(name, { mode }, () => {
        granted(release)
        return held
      })
      .catch(failed)
  })
}

/** `navigator.storage`, or undefined where there is none. */
const storageManager = (): Partial<StorageManager> | undefined => {
  try {
    return (globalThis as { navigator?: { storage?: Partial<StorageManager> } }).navigator?.storage ?? undefined
  } catch {
    return undefined
  }
}

/** Shared handling of a connection that may be closed underneath. */
abstract class IdbConnection {
  onLost: ((error: StorageError) => void) | null = null
  protected closed = false

  constructor(
    protected readonly db: IDBDatabase,
    protected readonly name: string,
    private readonly forget: () => void,
  ) {
    db.onversionchange = () => {
      // Another tab deletes (sign-out) or upgrades this database: let it.
      this.lose(new StorageError(StorageFailure.closed, `"${name}" is being deleted or upgraded by another tab`))
    }
    ;(db as IDBDatabase & { onclose: (() => void) | null }).onclose = () => {
      this.lose(new StorageError(StorageFailure.closed, `the browser closed "${name}" (storage cleared or evicted?)`))
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.forget()
    this.db.close()
  }

  protected guard(doing: string): StorageError | null {
    return this.closed ? new StorageError(StorageFailure.closed, `${doing}: "${this.name}" is closed`) : null
  }

  private lose(error: StorageError): void {
    if (this.closed) return
    this.close()
    this.onLost?.(error)
  }
}

class IdbRecordStorage extends IdbConnection implements RecordStorage {
  rowCount = 0

  constructor(
    db: IDBDatabase,
    name: string,
    /** This open created the database, and nothing was moved into it from the inbox. */
    public created: boolean,
    forget: () => void,
  ) {
    super(db, name, forget)
  }

  async load(): Promise<StoredRecord> {
    const closed = this.guard('loading')
    if (closed) throw closed
    const out: { updates: Uint8Array[]; acked: unknown; fieldClocks: unknown; authors: unknown; viewed: unknown; ownClients: unknown } = {
      updates: [],
      acked: undefined,
      fieldClocks: undefined,
      authors: undefined,
      viewed: undefined,
      ownClients: undefined,
    }
    await transact(this.db, [UPDATES_STORE, CUSTOM_STORE], 'readonly', `loading "${this.name}"`, (tx) => {
      const updates = tx.objectStore(UPDATES_STORE).getAll()
      updates.onsuccess = () => (out.updates = updates.result as Uint8Array[])
      const custom = tx.objectStore(CUSTOM_STORE)
      const acked = custom.get(ACKED_KEY)
      acked.onsuccess = () => (out.acked = acked.result)
      const clocks = custom.get(FIELD_CLOCKS_KEY)
      clocks.onsuccess = () => (out.fieldClocks = clocks.result)
      const authors = custom.get(AUTHORS_KEY)
      authors.onsuccess = () => (out.authors = authors.result)
      const viewed = custom.get(VIEWED_KEY)
      viewed.onsuccess = () => (out.viewed = viewed.result)
      const own = custom.get(OWN_CLIENTS_KEY)
      own.onsuccess = () => (out.ownClients = own.result)
    })
    this.rowCount = out.updates.length
    const meta: RecordMeta = {}
    if (out.acked instanceof Uint8Array) meta.acked = out.acked
    if (Array.isArray(out.fieldClocks)) meta.fieldClocks = out.fieldClocks as FieldClocks
    if (Array.isArray(out.authors)) meta.authors = out.authors as AuthorInfo[]
    if (out.viewed instanceof Uint8Array) meta.viewed = out.viewed
    if (Array.isArray(out.ownClients)) meta.ownClients = out.ownClients.filter((c): c is number => Number.isInteger(c))
    return { updates: out.updates.map(toUint8Array), meta }
  }

  async write(updates: readonly Uint8Array[], meta: RecordMeta = {}): Promise<void> {
    const closed = this.guard('saving')
    if (closed) throw closed
    if (updates.length === 0 && Object.values(meta).every((value) => value === undefined)) return
    await transact(this.db, [UPDATES_STORE, CUSTOM_STORE], 'readwrite', `saving "${this.name}"`, (tx) => {
      const store = tx.objectStore(UPDATES_STORE)
      for (const update of updates) store.add(ownBytes(update))
      const custom = tx.objectStore(CUSTOM_STORE)
      if (meta.acked !== undefined) custom.put(ownBytes(meta.acked), ACKED_KEY)
      if (meta.fieldClocks !== undefined) custom.put(meta.fieldClocks, FIELD_CLOCKS_KEY)
      if (meta.authors !== undefined) custom.put(meta.authors, AUTHORS_KEY)
      if (meta.viewed !== undefined) custom.put(ownBytes(meta.viewed), VIEWED_KEY)
      if (meta.ownClients !== undefined) custom.put(meta.ownClients, OWN_CLIENTS_KEY)
    })
    this.rowCount += updates.length
  }

  async compact(merge: (rows: Uint8Array[]) => Uint8Array): Promise<void> {
    const closed = this.guard('compacting')
    if (closed) throw closed
    let mergeError: unknown = null
    try {
      await transact(this.db, [UPDATES_STORE], 'readwrite', `compacting "${this.name}"`, (tx) => {
        const store = tx.objectStore(UPDATES_STORE)
        const rows = store.getAll()
        rows.onsuccess = () => {
          let state: Uint8Array
          try {
            state = merge((rows.result as unknown[]).map(toUint8Array))
          } catch (error) {
            mergeError = error
            tx.abort()
            return
          }
          store.clear()
          store.add(state)
        }
      })
    } catch (error) {
      throw mergeError === null ? error : classifyStorageError(mergeError, `compacting "${this.name}"`)
    }
    this.rowCount = 1
  }
}

class IdbCatalogStorage extends IdbConnection implements CatalogStorage {
  async loadAll(): Promise<CatalogEntry[]> {
    // In chunks, each its own transaction, so that other reads (the first
    // screen's index scan, record loads) are not queued behind one long getAll.
    const entries: CatalogEntry[] = []
    let after: IDBValidKey | null = null
    for (;;) {
      const closed = this.guard('loading the catalog')
      if (closed) throw closed
      const chunk: { rows: CatalogEntry[] } = { rows: [] }
      const range: IDBKeyRange | null = after === null ? null : IDBKeyRange.lowerBound(after, true)
      await transact(this.db, [CATALOG_STORE], 'readonly', `loading "${this.name}"`, (tx) => {
        const req = tx.objectStore(CATALOG_STORE).getAll(range, CATALOG_CHUNK)
        req.onsuccess = () => (chunk.rows = req.result as CatalogEntry[])
      })
      for (const row of chunk.rows) entries.push(row)
      if (chunk.rows.length < CATALOG_CHUNK) return entries
      after = chunk.rows[chunk.rows.length - 1]!.id
    }
  }

  async scanByUpdatedAt({ direction, offset, limit, filter }: CatalogScan): Promise<CatalogEntry[]> {
    const closed = this.guard('reading the catalog')
    if (closed) throw closed
    const out: CatalogEntry[] = []
    let skipped = 0
    await transact(this.db, [CATALOG_STORE], 'readonly', `reading "${this.name}"`, (tx) => {
      const cursor = tx
        .objectStore(CATALOG_STORE)
        .index('updatedAt')
        .openCursor(null, direction === 'desc' ? 'prev' : 'next')
      cursor.onsuccess = () => {
        const at = cursor.result
        if (at === null || out.length >= limit) return
        const entry = at.value as CatalogEntry
        if (filter(entry)) {
          if (skipped < offset) skipped++
          else out.push(entry)
        }
        if (out.length < limit) at.continue()
      }
    })
    return out
  }

  async count(): Promise<number> {
    const closed = this.guard('reading the catalog')
    if (closed) throw closed
    const out = { count: 0 }
    await transact(this.db, [CATALOG_STORE], 'readonly', `reading "${this.name}"`, (tx) => {
      const req = tx.objectStore(CATALOG_STORE).count()
      req.onsuccess = () => (out.count = req.result)
    })
    return out.count
  }

  async put(entries: readonly CatalogEntry[], { strict = false }: { strict?: boolean } = {}): Promise<void> {
    const closed = this.guard('saving the catalog')
    if (closed) throw closed
    if (entries.length === 0) return
    await transact(
      this.db,
      [CATALOG_STORE],
      'readwrite',
      `saving "${this.name}"`,
      (tx) => {
        const store = tx.objectStore(CATALOG_STORE)
        for (const entry of entries) store.put(entry)
      },
      // The catalog is derived from the record databases and can be rebuilt;
      // `strict` for entries that turn pending (see RecordStore), which must
      // not be lost while the record's pending changes are on disk.
      strict ? 'strict' : 'relaxed',
    )
  }

  async remove(ids: readonly string[]): Promise<void> {
    const closed = this.guard('saving the catalog')
    if (closed) throw closed
    if (ids.length === 0) return
    await transact(this.db, [CATALOG_STORE], 'readwrite', `saving "${this.name}"`, (tx) => {
      const store = tx.objectStore(CATALOG_STORE)
      for (const id of ids) store.delete(id)
    })
  }
}

/** Rows written by other code may come back as ArrayBuffer or a typed-array view. */
const toUint8Array = (row: unknown): Uint8Array => {
  if (row instanceof Uint8Array) return row
  if (row instanceof ArrayBuffer) return new Uint8Array(row)
  if (ArrayBuffer.isView(row)) return new Uint8Array(row.buffer, row.byteOffset, row.byteLength)
  throw classifyStorageError(new Error(`unexpected row of type ${typeof row} in the update log`), 'loading')
}
