/**
 * The offline-first record store: typed records of one user in one
 * workspace, persisted on this device, synced through one SyncClient,
 * listed from a local catalog, shared between tabs.
 *
 * - Records are Yjs docs named `<workspaceId>/<recordId>` with client-made
 *   ids. Schemas map fields to Yjs types and validate every write.
 * - Record docs open lazily (`open`, `create`) and close when idle; records
 *   with changes the relay has not stored stay open (so they sync) — also
 *   the ones edited before a reload.
 * - Every record persists in its own IndexedDB database (y-indexeddb's
 *   format), named per user and workspace. "Saved" means the IndexedDB
 *   transaction completed. The relay's acked state vector is stored with the
 *   record, so pending counts are right before the relay answers.
 * - The catalog (one IndexedDB store) lists, filters and sorts every record
 *   without opening them. `pull()` fills it on a new device over the one
 *   socket (`listDocs` + pipelined `fetchDoc`).
 * - Storage failures never throw into the app: the store works in memory and
 *   emits `storage-error`.
 * - Tabs of the same user share edits at once over BroadcastChannel; pending
 *   counts agree and nothing is counted or sent twice.
 *
 * @example
 *   const client = new SyncClient({ url: location.origin, user })
 *   const store = new RecordStore({ client, userId: user.id, workspaceId: 'acme' })
 *   store.on('storage-error', (e) => banner(`Not saving on this device: ${e.reason}`))
 *   store.on('pending', (n) => (title.textContent = n ? `${n} unsynced` : 'All synced'))
 *   await store.ready
 *   const t = await store.create('ticket', { title: 'Login fails', status: 'open' })
 *   const page = store.list({ type: 'ticket', where: { status: 'open' }, limit: 50 })
 *   t.close()
 *   const result = await store.signOut({ wipe: true })
 *   if (!result.signedOut) askUser(result.unsynced)
 *
 * @module records/RecordStore
 */
import * as Y from 'yjs'
import { ObservableV2 } from 'lib0/observable'
import type { SyncClient } from '../sync/SyncClient.js'
import type { SyncError } from '../sync/SyncError.js'
import { countMissing, maxStateVector } from '../protocol/stateVector.js'
import { Catalog, type CatalogPage, type CatalogQuery } from '../catalog/Catalog.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import { FirstScreen, defaultKeyValueStore, type KeyValueStore } from '../catalog/FirstScreen.js'
import { IndexedDbStorage, databasePrefix } from '../persistence/IndexedDbStorage.js'
import { MemoryStorage } from '../persistence/MemoryStorage.js'
import {
  StorageError,
  StorageFailure,
  classifyStorageError,
  type CatalogStorage,
  type RecordStorage,
  type StorageBackend,
} from '../persistence/Storage.js'
import { TabChannel, holdOutboxDuty, type BroadcastChannelConstructor, type TabMessage } from '../tabs/TabChannel.js'
import { FieldPending } from './FieldPending.js'
import { OpenRecord, stateVectorOf, type RecordHost } from './OpenRecord.js'
import { RecordHandle } from './RecordHandle.js'
import { FETCH_ORIGIN, RECORD_WRITE_ORIGIN } from '../model/origins.js'
import { catalogEntryOf } from './catalogEntry.js'
import { DiscardError, discardUnsynced, type DiscardResult } from './discard.js'
import { writeWithHistory } from '../history/recordWrites.js'
import { DEFAULT_MAX_HISTORY } from '../history/historyLog.js'
import { summarizeSince, type RecordSummary } from '../history/summary.js'
import { RecordValidationError, initRecord, readRecord, recordType, validatePatch, type RecordSnapshot } from '../model/recordDoc.js'
import { SchemaRegistry, newRecordId, recordIdSchema, type RecordSchema } from '../model/schema.js'

/** Options of {@link RecordStore}. */
export interface RecordStoreOptions {
  /** The one sync client of the app; every record doc syncs through it. */
  client: SyncClient
  /** The signed-in user: partitions local databases and is written as `createdBy` / `updatedBy`. */
  userId: string
  /** The workspace; record docs are `<workspaceId>/<recordId>`. A doc-name segment. */
  workspaceId: string
  /**
   * Where records live on this device. Default: {@link IndexedDbStorage}
   * (falls back to memory with a `storage-error` when IndexedDB is unavailable).
   */
  storage?: StorageBackend
  /** IndexedDB factory for the default storage (fake-indexeddb in Node tests; null: none). */
  indexedDB?: IDBFactory | null
  /** App schemas, in addition to the built-in `project` and `ticket`. */
  schemas?: readonly RecordSchema[]
  /** Close a record doc this long after its last handle closed (if nothing is pending). Default 30 000 ms. */
  idleTimeout?: number
  /** Replace a record's update log by one row once it has more rows than this. Default 64. */
  compactAfter?: number
  /** `updatedAt` is rewritten after local edits at most this often. Default 10 000 ms. */
  updatedAtResolution?: number
  /** History entries kept per record before the oldest are compacted into a summary entry. Default 500. */
  historyLimit?: number
  /** Text typed (list items pushed) directly into a field's shared type is one history entry until a pause this long. Default 1 500 ms. */
  historyIdleMs?: number
  /** Share edits with other tabs (BroadcastChannel). Default true; pass a class to replace BroadcastChannel. */
  tabs?: boolean | BroadcastChannelConstructor
  /**
   * Where the first-screen snapshot lives (see `store.query`). Default: the
   * browser's `localStorage` when records are stored in IndexedDB (the
   * default storage); `null` turns it off.
   */
  firstScreenCache?: KeyValueStore | null
  /**
   * A live catalog: the store watches the workspace on the relay
   * (`client.watchCatalog`) and fetches each record others changed as soon as
   * the relay stored the change, so lists show records others create, edit,
   * archive or delete within a second, without polling. After every
   * (re)connect it catches up with {@link RecordStore.pull}. Default false
   * (call `pull()` yourself).
   */
  live?: boolean
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number
  /**
   * Starts the timer after which this tab writes the edits of another tab
   * that their author has not confirmed as saved (`TAB_SAVE_FALLBACK_MS`,
   * 2 s); returns its cancel function. For tests. Default: `setTimeout`.
   */
  tabSaveTimer?: (write: () => void, delayMs: number) => () => void
}

/** A storage failure, as reported by the `storage-error` event. */
export interface StorageErrorEvent {
  /** `unavailable`, `quota`, `closed` or `failed`. */
  kind: StorageFailure
  /** Human-readable reason. */
  reason: string
  /** The record concerned, or null for the catalog / the whole store. */
  recordId: string | null
  error: StorageError
}

/** Result of {@link RecordStore.retryStorage}. */
export interface StorageRetryResult {
  /** Everything open is saved on this device again (`persistent` and no `failures`). */
  ok: boolean
  /** False: the store runs in memory (IndexedDB was unavailable at start-up); retrying cannot help. */
  persistent: boolean
  /** What still fails (a record, or `recordId: null` for the catalog / the whole store); each was emitted again as `storage-error`. */
  failures: StorageErrorEvent[]
}

/** A record with changes not durably on the relay. */
export interface UnsyncedRecord {
  id: string
  type: string | null
  title: string
  pending: number
  pendingFields: string[]
}

/** Result of {@link RecordStore.signOut}. */
export type SignOutResult =
  | { signedOut: true; wiped: boolean; error?: StorageError }
  | { signedOut: false; reason: 'unsynced'; unsynced: UnsyncedRecord[] }

/** Options of {@link RecordStore.pull}. */
export interface PullOptions {
  /** Fetches in flight at once over the socket. Default 32. */
  concurrency?: number
  signal?: AbortSignal
  /** Called after each record. */
  onProgress?: (done: number, total: number) => void
  /**
   * Emit a `summary` ("while you were offline…") for every fetched record
   * others changed since this device last had it — and for records new to
   * this device, unless the catalog was empty (a first pull on a new device
   * brings everything; that is not news). Default false: the records are
   * still marked as had (a later summary does not repeat what this pull
   * brought), e.g. for pulls while online that keep the list fresh.
   */
  summarize?: boolean
}

/** Result of {@link RecordStore.pull}. */
export interface PullResult {
  /** Records the relay listed. */
  listed: number
  /** Records fetched (the rest were open, and sync by themselves). */
  fetched: number
  /** Records whose local copy changed. */
  changed: number
  failed: Array<{ id: string; error: Error }>
  /** With `summarize`: the summaries emitted, in the order they were. */
  summaries: RecordSummary[]
}

/** Events of a {@link RecordStore}. */
export interface RecordStoreEvents {
  /** The workspace's pending total changed (sum over all records, open or not). */
  pending: (total: number) => void
  /** Catalog entries changed (ids). Re-run list queries. */
  catalog: (ids: string[]) => void
  /** Local storage failed; the store keeps working in memory. */
  'storage-error': (event: StorageErrorEvent) => void
  /** A record's sync error (e.g. permission denied). */
  'sync-error': (error: SyncError, recordId: string) => void
  /** "While you were offline…": what others changed in a record since this device last saw it (after it synced). */
  summary: (summary: RecordSummary) => void
  /** Another tab of this user signed out and wiped this workspace; this store is closed. */
  'signed-out': () => void
  /**
   * Another tab of this user discarded the unsynced changes of record `id`;
   * if it is open here, it was loaded again from storage (its handles emit
   * `reloaded`). Errors shown for the record's changes no longer apply.
   */
  discarded: (id: string) => void
}

const EMPTY_STATE_VECTOR = new Uint8Array([0])
/** Records a live catalog fetches at once; more changed records wait for their turn. */
const LIVE_FETCH_CONCURRENCY = 16
/**
 * A record parked because another tab announced a discard of its unsynced
 * changes comes back (loaded from storage) after this long even if that tab
 * never says it is done (it was closed or crashed meanwhile), ms.
 */
const PARK_TIMEOUT_MS = 60_000

/** `setTimeout`, returning its cancel function. */
const startTimer = (callback: () => void, delayMs: number): (() => void) => {
  const timer = setTimeout(callback, delayMs)
  return () => clearTimeout(timer)
}

/** What a record's own database holds, as read by `RecordStore.eachStored`. */
interface StoredSummary {
  id: string
  pending: number
  pendingFields: string[]
  /** Encoded state vector of the stored doc. */
  stateVector: Uint8Array
  /** Its catalog entry. */
  entry: CatalogEntry
}

/** A record another tab is discarding the unsynced changes of (see {@link RecordStore.park}). */
interface ParkedRecord {
  /** The record's doc here, parked (undefined: it was not open). */
  readonly taken: Promise<OpenRecord | undefined>
  /** Lets opening the record go ahead. */
  readonly release: () => void
  readonly timer: ReturnType<typeof setTimeout>
}

/** The record store. See the module documentation. */
export class RecordStore extends ObservableV2<RecordStoreEvents> {
  readonly client: SyncClient
  readonly userId: string
  readonly workspaceId: string
  readonly schemas: SchemaRegistry
  /** The local catalog (list queries: {@link list}). */
  readonly catalog: Catalog
  /** Resolves when the catalog is loaded (never rejects; storage failures become `storage-error`). */
  readonly ready: Promise<void>
  /**
   * Resolves (never rejects) when, after {@link ready}, the catalog has been
   * checked in the background against the record databases on this device:
   * records stored here that the catalog does not list (its write was lost)
   * are listed again, read from their own databases — with their pending
   * changes, which then sync, count in `pending` and `unsynced()`, and stop
   * a wipe. Needs `indexedDB.databases()`; without it nothing is found.
   */
  readonly reconciled: Promise<void>

  private backend: StorageBackend
  private durable = true
  private catalogStorage: CatalogStorage | null = null
  private catalogOpened: Promise<CatalogStorage | null>
  private resolveCatalogOpened!: (storage: CatalogStorage | null) => void
  private readonly tabs: TabChannel
  private readonly host: RecordHost
  private readonly records = new Map<string, OpenRecord>()
  private readonly opening = new Map<string, Promise<OpenRecord>>()
  /** Idle records still writing their last changes / compacting; reopening waits for them. */
  private readonly closingRecords = new Map<string, Promise<void>>()
  private readonly idleTimers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly parked = new Map<string, ParkedRecord>()
  private readonly idleTimeout: number
  private readonly dirty = new Set<OpenRecord>()
  private dirtyTimer: ReturnType<typeof setTimeout> | null = null
  private releaseOutbox: (() => void) | null = null
  private outboxHeld = false
  private lastTotal = 0
  private closing: Promise<void> | null = null
  private lastStoreError: StorageError | null = null
  private readonly firstScreen: FirstScreen
  private firstScreenTimer: ReturnType<typeof setTimeout> | null = null
  /** Stops the live catalog's watch (see {@link RecordStoreOptions.live}). */
  private stopLive: (() => void) | null = null
  /** Live catalog: records others changed, waiting to be fetched. */
  private readonly liveQueue = new Set<string>()
  /** Live catalog: records being fetched (one fetch per record at a time). */
  private readonly liveFetching = new Set<string>()
  /** Live catalog: the catch-up `pull()` running, and whether another is due after it. */
  private catchingUp: Promise<void> | null = null
  private catchUpAgain = false

  constructor(options: RecordStoreOptions) {
    super()
    const workspace = recordIdSchema.safeParse(options.workspaceId)
    if (!workspace.success) throw new Error(`RecordStore: workspaceId "${options.workspaceId}" must be one doc-name segment`)
    if (typeof options.userId !== 'string' || options.userId === '') throw new Error('RecordStore: userId is required')
    this.client = options.client
    this.userId = options.userId
    this.workspaceId = options.workspaceId
    this.schemas = new SchemaRegistry(options.schemas)
    this.idleTimeout = options.idleTimeout ?? 30_000
    this.backend =
      options.storage ??
      new IndexedDbStorage({ userId: options.userId, workspaceId: options.workspaceId, indexedDB: options.indexedDB })
    const channelName = databasePrefix(options.userId, options.workspaceId)
    this.firstScreen = new FirstScreen(
      options.firstScreenCache !== undefined ? options.firstScreenCache : options.storage === undefined ? defaultKeyValueStore() : null,
      `${channelName}first-screen`,
    )
    this.tabs = new TabChannel(
      channelName,
      options.tabs === false ? null : typeof options.tabs === 'function' ? options.tabs : undefined,
    )
    this.tabs.on('message', this.onTabMessage)
    this.catalog = new Catalog((error) => this.reportStorage(null, error))
    this.catalog.on('change', (ids) => {
      this.scheduleFirstScreen()
      this.emit('catalog', [ids])
    })
    this.catalog.on('pending', () => this.updateTotal())
    const now = options.now ?? Date.now
    const store = this
    this.host = {
      client: this.client,
      userId: this.userId,
      tabs: this.tabs,
      schemas: this.schemas,
      compactAfter: options.compactAfter ?? 64,
      updatedAtResolution: options.updatedAtResolution ?? 10_000,
      historyLimit: options.historyLimit ?? DEFAULT_MAX_HISTORY,
      historyIdleMs: options.historyIdleMs,
      now,
      tabSaveTimer: options.tabSaveTimer ?? startTimer,
      summary: (record, summary) => store.emit('summary', [summary]),
      sendsCatchUp: () => store.outboxHeld || !store.tabs.enabled,
      storageFailed: (record, error) => store.reportStorage(record.id, error),
      changed: (record, urgent) => store.markDirty(record, urgent),
      catalogStored: (record) => store.storeEntry(record),
      stateChanged: (record) => store.checkIdle(record),
      syncError: (record, error) => store.emit('sync-error', [error, record.id]),
    }
    this.catalogOpened = new Promise((resolve) => (this.resolveCatalogOpened = resolve))
    this.ready = this.start(channelName)
    this.reconciled = this.ready.then(() => this.reconcile())
    if (options.live) {
      void this.ready.then(() => {
        if (this.closing) return
        this.stopLive = this.client.watchCatalog(this.workspaceId, {
          changed: (names) => this.fetchChanged(names),
          watching: () => this.catchUp(),
        })
      })
    }
  }

  /** `'indexeddb'`, `'memory'` (fallback or configured), or the adapter's kind. */
  get storageKind(): string {
    return this.backend.kind
  }

  /** Whether records are saved on this device (false after falling back to memory). */
  get persistent(): boolean {
    return this.durable
  }

  /** Pending total of the workspace: every record, open or not. */
  get pending(): number {
    return this.lastTotal
  }

  /** Ids of the record docs open right now. */
  get openIds(): string[] {
    return [...this.records.keys()]
  }

  /**
   * Creates a record of `type`. Values are validated first: an unknown field
   * or a wrong value rejects with {@link RecordValidationError} and nothing
   * is created.
   */
  async create(type: string, values: Record<string, unknown> = {}, options: { id?: string } = {}): Promise<RecordHandle> {
    const schema = this.schemas.get(type)
    const id = options.id ?? newRecordId()
    if (schema === undefined) {
      throw new RecordValidationError(type, id, [
        { field: '', message: `unknown record type; registered: ${this.schemas.types.join(', ')}` },
      ])
    }
    checkId(id)
    const validated = validatePatch(schema, id, values)
    await this.ready
    this.assertOpen()
    if (this.catalog.get(id)?.type != null) throw new Error(`record "${id}" already exists`)
    const handle = await this.open(id)
    const record = handle.openRecord!
    if (recordType(record.doc) !== null) {
      handle.close()
      throw new Error(`record "${id}" already exists`)
    }
    const now = this.host.now()
    record.doc.transact(() => {
      // The values first: initRecord writes `type` last, so its item ends the creation (see isBlank).
      writeWithHistory(record.doc, validated, { now, maxEntries: this.host.historyLimit })
      initRecord(record.doc, schema, this.userId, now)
    }, RECORD_WRITE_ORIGIN)
    return handle
  }

  /**
   * Opens a record (loading it from this device; it syncs with the relay
   * from then on). An id that exists nowhere yet opens an empty doc whose
   * `type` is null until the relay's copy arrives.
   */
  async open(id: string): Promise<RecordHandle> {
    checkId(id)
    await this.ready
    this.assertOpen()
    const record = await this.acquire(id)
    this.assertOpen()
    record.refs++
    this.checkIdle(record)
    return new RecordHandle(record, (_handle, open) => {
      open.refs--
      this.checkIdle(open)
    })
  }

  /** Reads a record (opening it briefly if needed). */
  async read(id: string): Promise<RecordSnapshot> {
    const handle = await this.open(id)
    try {
      return handle.read()
    } finally {
      handle.close()
    }
  }

  /**
   * Updates fields of a record (opening it briefly if needed).
   *
   * @throws (rejects) {@link RecordValidationError}; nothing is written.
   */
  async update(id: string, patch: Record<string, unknown>): Promise<void> {
    const handle = await this.open(id)
    try {
      handle.update(patch)
    } finally {
      handle.close()
    }
  }

  /** Archives (or un-archives) a record. */
  async archive(id: string, archived = true): Promise<void> {
    const handle = await this.open(id)
    try {
      handle.archive(archived)
    } finally {
      handle.close()
    }
  }

  /** Marks a record deleted (a synced tombstone; `false` restores it). */
  async delete(id: string, deleted = true): Promise<void> {
    const handle = await this.open(id)
    try {
      handle.remove(deleted)
    } finally {
      handle.close()
    }
  }

  /** Lists records from the catalog without opening them. Call after {@link ready} (before, it lists what is loaded so far). */
  list(query: CatalogQuery = {}): CatalogPage {
    this.flushDirty()
    return this.catalog.query(query)
  }

  /**
   * Like {@link list}, but without waiting for the whole catalog: right
   * after start-up, a query sorted by `updatedAt` (the default) is answered
   * at once from the first-screen snapshot (the newest 200 records, kept in
   * `localStorage`), or else by reading just its first page through the
   * catalog's index, so the first screen shows while the rest loads. Such an
   * early page has `complete: false` (its `total` is not final); listen to
   * `catalog` events or await {@link ready} and list again for the exact one.
   */
  async query(query: CatalogQuery = {}): Promise<CatalogPage> {
    if (!this.catalog.loaded) {
      const snapshot = this.firstScreen.page(query)
      if (snapshot !== null) return snapshot
      const storage = await this.catalogOpened
      if (!this.catalog.loaded && storage !== null) {
        try {
          const early = await this.catalog.earlyPage(storage, query)
          if (early !== null && !this.catalog.loaded) return early
        } catch {
          // fall through: wait for the full catalog
        }
      }
      await this.ready
    }
    return this.list(query)
  }

  /** Every record with changes not durably stored on the relay. */
  unsynced(): UnsyncedRecord[] {
    this.flushDirty()
    const out = new Map<string, UnsyncedRecord>()
    for (const entry of this.catalog.all()) {
      if (entry.pending > 0) out.set(entry.id, unsyncedOf(entry))
    }
    for (const record of this.records.values()) {
      if (record.sync.pending > 0) out.set(record.id, unsyncedOf(record.entry()))
      else out.delete(record.id)
    }
    return [...out.values()]
  }

  /**
   * Throws away this device's changes to record `id` that the relay has not
   * stored and brings the record back to the relay's state (a record the
   * relay never stored is removed from this device). Close the record's
   * handles in this tab first; other tabs park the record meanwhile and
   * then load it again from storage (their handles emit `reloaded`). See
   * `records/discard`.
   *
   * @throws (rejects) {@link DiscardError} when offline or while handles are
   *   open; SyncError when the relay refuses to read the record.
   */
  async discardUnsynced(id: string, options: { signal?: AbortSignal } = {}): Promise<DiscardResult> {
    checkId(id)
    await this.ready
    this.assertOpen()
    const result = await discardUnsynced(
      {
        client: this.client,
        workspaceId: this.workspaceId,
        schemas: this.schemas,
        catalog: this.catalog,
        backend: this.backend,
        tabs: this.tabs,
        pendingFields: (recordId) => this.unsynced().find((r) => r.id === recordId)?.pendingFields ?? [],
        whileClosed: (recordId, rewrite) => this.whileClosed(recordId, rewrite),
      },
      id,
      options,
    )
    this.updateTotal()
    return result
  }

  /** Resolves when every open record is durably on the relay. */
  async flush(): Promise<void> {
    await Promise.all([...this.records.values()].map((record) => record.sync.flush()))
  }

  /** Resolves when every queued local write (records and catalog) is committed. */
  async settled(): Promise<void> {
    this.flushDirty()
    await Promise.all([...this.records.values()].map((record) => record.settled()))
    await this.catalog.flush()
  }

  /**
   * Tries record `id` again after the relay rejected it (a permanent sync
   * error, e.g. once the user got permission or the oversize content was
   * removed): clears the error and subscribes again when online, so its
   * pending changes go out. Returns false when the record is not open in
   * this tab or not parked (opening it again retries by itself).
   */
  retry(id: string): boolean {
    const record = this.records.get(id)
    if (record === undefined || !record.sync.isParked) return false
    record.sync.retry()
    return true
  }

  /**
   * Tries storage again now: writes the whole state of every open record
   * whose storage failed, and the catalog's unwritten entries. Never
   * rejects; resolves with whether everything is saved on this device
   * again. What still fails is reported again as `storage-error` and listed
   * in `failures`. A store running in memory (`persistent === false`,
   * IndexedDB was unavailable at start-up) cannot retry: it resolves with
   * `persistent: false` at once (only a new store, e.g. after a reload, can
   * use IndexedDB again).
   */
  async retryStorage(): Promise<StorageRetryResult> {
    await this.ready
    if (!this.durable) {
      const error = this.lastStoreError ?? new StorageError(StorageFailure.unavailable, 'IndexedDB is unavailable: records are kept in memory only')
      return { ok: false, persistent: false, failures: [storageEvent(null, error)] }
    }
    const failures: StorageErrorEvent[] = []
    const records = [...this.records.values()]
    const errors = await Promise.all(records.map((record) => record.retryStorage()))
    errors.forEach((error, i) => {
      if (error !== null) failures.push(storageEvent(records[i]!.id, error))
    })
    this.flushDirty()
    this.lastStoreError = null // report a catalog failure again
    const catalogFailure = await this.catalog.flush()
    if (catalogFailure !== null) failures.push(storageEvent(null, classifyStorageError(catalogFailure, 'catalog')))
    return { ok: failures.length === 0, persistent: true, failures }
  }

  /**
   * Brings every record of the workspace onto this device without
   * subscribing to them: lists the relay's docs under `<workspaceId>/` and
   * fetches what this device lacks of each (pipelined over the one socket),
   * storing it and filling the catalog. Open records are skipped (they sync
   * by themselves). Waits for the connection when offline.
   */
  async pull(options: PullOptions = {}): Promise<PullResult> {
    await this.ready
    this.assertOpen()
    const prefix = `${this.workspaceId}/`
    const names = await this.client.listDocs(prefix, { signal: options.signal })
    const ids = names
      .map((name) => name.slice(prefix.length))
      .filter((id) => id.length > 0 && !id.includes('/') && recordIdSchema.safeParse(id).success)
    const result: PullResult = { listed: ids.length, fetched: 0, changed: 0, failed: [], summaries: [] }
    // A first pull on a new device brings every record: that is not news.
    const summarizeNew = options.summarize === true && this.catalog.all().some((entry) => entry.type !== null)
    const batch: CatalogEntry[] = []
    const summaries: RecordSummary[] = []
    // Summaries go out once their records are listed (an app shows their titles).
    const flushBatch = (): void => {
      if (batch.length > 0) this.catalog.set(batch.splice(0))
      for (const summary of summaries.splice(0)) {
        result.summaries.push(summary)
        if (!this.closing) this.emit('summary', [summary])
      }
    }
    let next = 0
    let done = 0
    const worker = async (): Promise<void> => {
      while (next < ids.length && !this.closing) {
        const id = ids[next++]!
        try {
          const pulled = await this.pullOne(id, options.signal, options.summarize === true ? { summarizeNew } : null)
          if (pulled !== undefined) result.fetched++
          if (pulled?.entry) {
            result.changed++
            batch.push(pulled.entry)
            if (batch.length >= 200) flushBatch()
          }
          if (pulled?.summary) summaries.push(pulled.summary)
        } catch (error) {
          if (options.signal?.aborted) throw error
          result.failed.push({ id, error: error instanceof Error ? error : new Error(String(error)) })
        }
        options.onProgress?.(++done, ids.length)
      }
    }
    try {
      await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 32) }, worker))
    } finally {
      flushBatch()
      await this.catalog.flush()
    }
    return result
  }

  /**
   * Signs out. With `wipe: true` it deletes this user's databases of the
   * workspace — but if records hold changes the relay has not stored, it
   * refuses and returns them, unless `discardUnsynced: true`. Other tabs of
   * the user close their stores (`signed-out` event). The store is closed
   * afterwards either way (except when it refused).
   */
  async signOut(options: { wipe?: boolean; discardUnsynced?: boolean } = {}): Promise<SignOutResult> {
    await this.ready
    if (!options.wipe) {
      await this.close()
      return { signedOut: true, wiped: false }
    }
    if (!options.discardUnsynced) {
      // Records on this device the catalog does not list (its write was lost, or another tab just created them) count too.
      await this.reconciled
      const uncatalogued = await this.uncatalogued()
      if (uncatalogued.length > 0) this.catalog.set(uncatalogued)
    }
    const unsynced = this.unsynced()
    if (unsynced.length > 0 && !options.discardUnsynced) return { signedOut: false, reason: 'unsynced', unsynced }
    const ids = new Set([...this.catalog.all().map((e) => e.id), ...this.records.keys()])
    this.tabs.post({ t: 'wiped' })
    this.firstScreen.remove()
    await this.shutdown({ discard: true })
    try {
      await this.backend.wipe([...ids])
      return { signedOut: true, wiped: true }
    } catch (error) {
      const storageError = classifyStorageError(error, 'wiping local data')
      return { signedOut: true, wiped: false, error: storageError }
    }
  }

  /** Writes what is queued, closes every record doc and the catalog. Does not close the SyncClient. Idempotent. */
  close(): Promise<void> {
    return this.shutdown({ discard: false })
  }

  // ---------------------------------------------------------------------------

  private async start(lockName: string): Promise<void> {
    try {
      this.catalogStorage = await this.backend.openCatalog()
      this.resolveCatalogOpened(this.catalogStorage)
      await this.catalog.attach(this.catalogStorage)
      this.catalogStorage.onLost = (error) => this.reportStorage(null, error)
    } catch (error) {
      this.resolveCatalogOpened(null)
      const storageError = classifyStorageError(error, 'opening local storage')
      this.catalogStorage?.close()
      this.catalogStorage = null
      // Keep working in memory; nothing is saved on this device from now on.
      this.backend = new MemoryStorage()
      this.durable = false
      this.reportStorage(null, new StorageError(StorageFailure.unavailable, storageError.message, storageError))
      try {
        this.catalogStorage = await this.backend.openCatalog()
        await this.catalog.attach(this.catalogStorage)
      } catch {
        this.catalog.markLoaded() // memory storage does not fail
      }
    }
    await this.verifyPending()
    if (this.closing) return
    this.releaseOutbox = holdOutboxDuty(`concord-outbox/${lockName}`, () => this.takeOutboxDuty())
    this.updateTotal()
  }

  /**
   * Recomputes the pending count of every record the catalog lists as
   * pending from the record's own storage (its updates and acked state
   * vector), so the workspace total is exact at `ready` even if the
   * catalog's last write lagged behind the record's.
   */
  private async verifyPending(): Promise<void> {
    const fixed: CatalogEntry[] = []
    await this.eachStored(this.catalog.pendingIds(), (stored) => {
      const entry = this.catalog.get(stored.id)
      if (entry === undefined) return
      if (stored.pending !== entry.pending || stored.pendingFields.join() !== entry.pendingFields.join()) {
        fixed.push({ ...entry, pending: stored.pending, pendingFields: stored.pendingFields, stateVector: stored.stateVector })
      }
    })
    this.catalog.set(fixed)
  }

  /**
   * Lists again the records stored on this device that the catalog does
   * not list (see {@link reconciled}); the outbox-duty tab opens those with
   * pending changes, so they sync.
   */
  private async reconcile(): Promise<void> {
    if (this.closing || !this.durable) return
    let found: CatalogEntry[]
    try {
      found = await this.uncatalogued()
    } catch {
      return // listing is a safety net; the catalog stays as it is
    }
    if (this.closing || found.length === 0) return
    this.catalog.set(found)
    this.tabs.post({ t: 'catalog', entries: found, removed: [] })
    if (this.outboxHeld) {
      for (const entry of found) {
        if (entry.pending > 0 && !this.records.has(entry.id)) void this.acquire(entry.id).then((r) => this.checkIdle(r), () => {})
      }
    }
    this.updateTotal()
  }

  /**
   * Catalog entries, computed from their own databases, of the records
   * stored on this device that the catalog does not list (empty when the
   * storage cannot list its records). Only those databases are opened.
   */
  private async uncatalogued(): Promise<CatalogEntry[]> {
    if (!this.durable || this.backend.listRecords === undefined) return []
    const ids = (await this.backend.listRecords()) ?? []
    const missing = ids.filter((id) => this.catalog.get(id) === undefined && recordIdSchema.safeParse(id).success)
    const found: CatalogEntry[] = []
    await this.eachStored(missing, (stored) => {
      // A database without a record and without changes: opened for an id that exists nowhere.
      if (stored.entry.type === null && stored.pending === 0) return
      if (this.catalog.get(stored.id) === undefined) found.push(stored.entry)
    })
    return found
  }

  /**
   * Reads records from their own databases (8 at a time; records open or
   * opening here are skipped — their live state is newer) and passes what
   * they hold to `use`. Unreadable ones are skipped: opening the record
   * reports the failure.
   */
  private async eachStored(ids: readonly string[], use: (stored: StoredSummary) => void): Promise<void> {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < ids.length && !this.closing) {
        const id = ids[next++]!
        if (this.records.has(id) || this.opening.has(id)) continue
        let storage: RecordStorage | null = null
        const doc = new Y.Doc()
        try {
          storage = await this.backend.openRecord(id)
          const stored = await storage.load()
          doc.transact(() => {
            for (const update of stored.updates) Y.applyUpdate(doc, update)
          })
          const acked = stored.meta.acked ? Y.decodeStateVector(stored.meta.acked) : new Map<number, number>()
          const pending = countMissing(stateVectorOf(doc), acked)
          const pendingFields = pending === 0 ? [] : new FieldPending(stored.meta.fieldClocks).pendingFields(acked)
          use({
            id,
            pending,
            pendingFields,
            stateVector: Y.encodeStateVector(doc),
            entry: catalogEntryOf(doc, id, this.schemas.get(recordType(doc) ?? ''), pending, pendingFields),
          })
        } catch {
          // Unreadable now: skipped.
        } finally {
          storage?.close()
          doc.destroy()
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
  }

  /**
   * This tab now makes sure every record with unsynced changes is open (so
   * it syncs), and sends the catch-up for every tab: what the previous
   * holder may not have sent goes out now.
   */
  private takeOutboxDuty(): void {
    if (this.closing) return
    this.outboxHeld = true
    for (const record of this.records.values()) record.sync.resendPending()
    for (const id of this.catalog.pendingIds()) {
      if (!this.records.has(id)) void this.acquire(id).then((record) => this.checkIdle(record), () => {})
    }
  }

  private acquire(id: string): Promise<OpenRecord> {
    const open = this.records.get(id)
    if (open !== undefined) {
      this.cancelIdle(id)
      return Promise.resolve(open)
    }
    let opening = this.opening.get(id)
    if (opening === undefined) {
      const previous = this.closingRecords.get(id) ?? Promise.resolve()
      opening = previous.then(() => OpenRecord.open(this.host, this.workspaceId, id, this.backend, this.durable)).then((record) => {
        this.opening.delete(id)
        if (this.closing) {
          void record.close({ discard: true })
          throw new Error('the RecordStore is closed')
        }
        this.records.set(id, record)
        this.markDirty(record, false)
        return record
      })
      opening.catch(() => this.opening.delete(id))
      this.opening.set(id, opening)
    }
    return opening
  }

  /** Closes record `id` without writing (refused while handles are open); opening it again waits for `run`. */
  private async whileClosed<T>(id: string, run: () => Promise<T>): Promise<T> {
    await this.opening.get(id)?.catch(() => undefined)
    this.assertOpen()
    const open = this.records.get(id)
    if (open !== undefined && open.refs > 0) {
      throw new DiscardError('open', id, `record "${id}" is open (${open.refs} handle(s)); close it before discarding its changes`)
    }
    const previous = this.closingRecords.get(id) ?? Promise.resolve()
    const running = (async () => {
      if (open !== undefined) {
        this.cancelIdle(id)
        this.records.delete(id)
        this.dirty.delete(open)
        await open.close({ discard: true })
      }
      await previous
      return run()
    })()
    const gate = running.then(
      () => undefined,
      () => undefined,
    )
    this.closingRecords.set(id, gate)
    void gate.then(() => {
      if (this.closingRecords.get(id) === gate) this.closingRecords.delete(id)
    })
    return running
  }

  /** Live catalog: the relay stored changes of these docs; fetch the records that are not open (open ones sync themselves). */
  private fetchChanged(names: readonly string[]): void {
    if (this.closing) return
    const prefix = `${this.workspaceId}/`
    for (const name of names) {
      if (!name.startsWith(prefix)) continue
      const id = name.slice(prefix.length)
      if (id.includes('/') || !recordIdSchema.safeParse(id).success) continue
      this.liveQueue.add(id)
    }
    this.pumpLive()
  }

  /** Starts fetches of queued records, at most {@link LIVE_FETCH_CONCURRENCY} at once and one per record. */
  private pumpLive(): void {
    for (const id of this.liveQueue) {
      if (this.closing || this.liveFetching.size >= LIVE_FETCH_CONCURRENCY) return
      if (this.liveFetching.has(id)) continue // queued again while fetched: fetched again after
      this.liveQueue.delete(id)
      this.liveFetching.add(id)
      void this.pullOne(id, undefined, null)
        .then(
          (result) => {
            if (result?.entry && !this.closing) this.catalog.set([result.entry])
          },
          () => {
            // Offline meanwhile (or refused): the catch-up after the next connect fetches it.
          },
        )
        .finally(() => {
          this.liveFetching.delete(id)
          this.pumpLive()
        })
    }
  }

  /** Live catalog: the watch is in place on a new connection; fetch what changed while it was not. */
  private catchUp(): void {
    if (this.closing) return
    if (this.catchingUp) {
      this.catchUpAgain = true
      return
    }
    // What others changed while this device was not watching is news: summarized (the app's digest).
    this.catchingUp = this.pull({ summarize: true })
      .then(
        () => undefined,
        () => undefined, // offline again or closed: the next connect catches up
      )
      .finally(() => {
        this.catchingUp = null
        if (this.catchUpAgain && !this.closing) {
          this.catchUpAgain = false
          this.catchUp()
        }
      })
  }

  /**
   * Fetches what this device lacks of record `id` and stores it. Resolves
   * with its new catalog entry (null: nothing changed, or not a record) and,
   * when `summarize` is given, what others changed since this device last
   * had it; undefined when the record is open (it syncs by itself).
   */
  private async pullOne(
    id: string,
    signal: AbortSignal | undefined,
    summarize: { summarizeNew: boolean } | null,
  ): Promise<{ entry: CatalogEntry | null; summary: RecordSummary | null } | undefined> {
    if (this.records.has(id) || this.opening.has(id)) return undefined
    const entry = this.catalog.get(id)
    const known = entry?.local ? entry.stateVector : EMPTY_STATE_VECTOR
    const fetched = await this.client.fetchDoc(`${this.workspaceId}/${id}`, known, { signal })
    if (this.records.has(id) || this.opening.has(id) || this.closing) return undefined
    if (entry?.local && isEmptyUpdate(fetched.update)) return { entry: null, summary: null }
    const storage = await this.backend.openRecord(id)
    const doc = new Y.Doc()
    try {
      const stored = await storage.load()
      doc.transact(() => {
        for (const update of stored.updates) Y.applyUpdate(doc, update)
      }, FETCH_ORIGIN)
      // What this device had of the record: what it was last told about, else what it stored.
      const had = stored.meta.viewed !== undefined ? Y.decodeStateVector(stored.meta.viewed) : stateVectorOf(doc)
      const newHere = stored.updates.length === 0 && stored.meta.viewed === undefined
      doc.transact(() => Y.applyUpdate(doc, fetched.update), FETCH_ORIGIN)
      // What the relay sent is on the relay: never this device's pending changes, even the part
      // its storage commit has not covered yet (a record fetched while someone types in it).
      const acked = maxStateVector(
        maxStateVector(stored.meta.acked ? Y.decodeStateVector(stored.meta.acked) : new Map(), Y.decodeStateVector(fetched.stateVector)),
        Y.parseUpdateMeta(fetched.update).to,
      )
      const authors = new Map((stored.meta.authors ?? []).map((a) => [a.clientId, a]))
      for (const a of fetched.authors) authors.set(a.clientId, a)
      await storage.write(isEmptyUpdate(fetched.update) ? [] : [fetched.update], {
        acked: Y.encodeStateVector(acked),
        authors: [...authors.values()],
        // This device has it now: a later summary (when the record opens, say) does not repeat it.
        viewed: Y.encodeStateVector(doc),
      })
      if (stored.updates.length + 1 > this.host.compactAfter) {
        // A record others keep changing is fetched again and again (live lists): keep its log short.
        await storage.compact((rows) => {
          doc.transact(() => {
            for (const row of rows) Y.applyUpdate(doc, row)
          }, FETCH_ORIGIN)
          return Y.encodeStateAsUpdate(doc)
        })
      }
      const pending = countMissing(stateVectorOf(doc), acked)
      const fields = pending === 0 ? [] : new FieldPending(stored.meta.fieldClocks).pendingFields(acked)
      const schema = this.schemas.get(recordType(doc) ?? '')
      const fresh = catalogEntryOf(doc, id, schema, pending, fields)
      if (fresh.type === null) return { entry: null, summary: null } // not a record (yet)
      const summary =
        summarize === null || (newHere && !summarize.summarizeNew)
          ? null
          : summarizeSince(doc, {
              recordId: id,
              authors,
              since: had,
              userId: this.userId,
              ownClients: new Set(stored.meta.ownClients ?? []),
              fields: readRecord(doc, id, schema).fields,
              created: newHere,
              schema,
            })
      return { entry: fresh, summary }
    } finally {
      storage.close()
      doc.destroy()
    }
  }

  private readonly onTabMessage = (message: TabMessage): void => {
    if (this.closing) return
    switch (message.t) {
      case 'update': {
        const record = this.records.get(message.id)
        record?.applyFromTab(message.update, message.fieldClocks, message.sent === false)
        record?.noteTabEdit(message.update)
        return
      }
      case 'sync-request': {
        const record = this.records.get(message.id)
        if (record !== undefined) this.tabs.post({ t: 'sync-reply', to: message.from, id: message.id, ...record.replyTo(message.stateVector) })
        return
      }
      case 'sync-reply':
        // What a reply brings was sent by its authors, or goes out with the next catch-up.
        this.records.get(message.id)?.applyFromTab(message.update, message.fieldClocks)
        return
      case 'catch-up': {
        if (!this.outboxHeld) return
        // Another tab left the relay's step 1 to this one: send what the relay lacks (opening the record does).
        const record = this.records.get(message.id)
        if (record !== undefined) record.sync.catchUp(message.stateVector)
        else if (!this.opening.has(message.id)) void this.acquire(message.id).then((r) => this.checkIdle(r), () => {})
        return
      }
      case 'saved':
        this.records.get(message.id)?.savedByTab(message.stateVector)
        return
      case 'save-failed':
        this.records.get(message.id)?.saveUnconfirmed()
        return
      case 'catalog': {
        const entries = message.entries.filter((entry) => !this.records.has(entry.id))
        this.catalog.set(entries, { persist: false })
        this.catalog.remove(message.removed.filter((id) => !this.records.has(id)), { persist: false })
        if (this.outboxHeld) {
          // A record another tab edited has changes pending: make sure it syncs even if that tab closes.
          for (const entry of entries) if (entry.pending > 0 && !this.opening.has(entry.id)) void this.acquire(entry.id).then((r) => this.checkIdle(r), () => {})
        }
        return
      }
      case 'discarding':
        this.park(message.id)
        return
      case 'discarded':
        void this.unpark(message.id, message.done).then(() => {
          if (message.done && !this.closing) this.emit('discarded', [message.id])
        })
        return
      case 'wiped':
        void this.shutdown({ discard: true }).then(() => this.emit('signed-out', []))
        return
    }
  }

  /**
   * Another tab is discarding record `id`'s unsynced changes: its doc here
   * (once open, if it is opening) stops sending and storing at once (see
   * `OpenRecord.park`) and leaves {@link records}, so no tab message, ack
   * or duty reaches it; opening the record waits for {@link unpark}.
   */
  private park(id: string): void {
    if (this.parked.has(id) || this.closing) return
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const opening = this.opening.get(id)
    const taken = (opening ?? Promise.resolve(this.records.get(id))).then(
      (record) => {
        if (record === undefined || this.records.get(id) !== record) return undefined
        this.cancelIdle(id)
        this.records.delete(id)
        this.dirty.delete(record)
        record.park()
        this.updateTotal()
        return record
      },
      () => undefined,
    )
    const timer = setTimeout(() => void this.unpark(id, false), PARK_TIMEOUT_MS)
    this.parked.set(id, { taken, release, timer })
    const previous = this.closingRecords.get(id) ?? Promise.resolve()
    const gated = Promise.all([previous, gate]).then(() => undefined)
    this.closingRecords.set(id, gated)
    void gated.then(() => {
      if (this.closingRecords.get(id) === gated) this.closingRecords.delete(id)
    })
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
  private async unpark(id: string, done: boolean): Promise<void> {
    const parked = this.parked.get(id)
    if (parked === undefined) return
    this.parked.delete(id)
    clearTimeout(parked.timer)
    const old = await parked.taken
    parked.release()
    const wanted =
      (old !== undefined && (old.listeners.size > 0 || !done)) || (this.outboxHeld && (this.catalog.get(id)?.pending ?? 0) > 0)
    const fresh = wanted && !this.closing ? await this.acquire(id).catch(() => undefined) : undefined
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
    if (fresh !== undefined) this.checkIdle(fresh)
  }

  /** Rewrites the first-screen snapshot, at most once a second. */
  private scheduleFirstScreen(): void {
    if (!this.catalog.loaded || !this.durable || this.closing || this.firstScreenTimer !== null) return
    this.firstScreenTimer = setTimeout(() => {
      this.firstScreenTimer = null
      if (!this.closing && this.durable) this.firstScreen.write(this.catalog.newestFirst())
    }, 1_000)
  }

  private markDirty(record: OpenRecord, now: boolean): void {
    if (this.records.get(record.id) !== record) return
    this.dirty.add(record)
    this.updateTotal()
    if (now) {
      this.flushDirty()
      void this.catalog.flush()
      return
    }
    this.dirtyTimer ??= setTimeout(() => {
      this.dirtyTimer = null
      this.flushDirty()
    }, 50)
  }

  /** Writes the catalog entry of `record` now; resolves when committed (or failed, reported). */
  private async storeEntry(record: OpenRecord): Promise<void> {
    if (this.records.get(record.id) !== record || this.closing) return
    this.dirty.add(record)
    this.flushDirty()
    await this.catalog.flush()
  }

  /** Writes the catalog entries of changed open records. */
  private flushDirty(): void {
    if (this.dirtyTimer !== null) {
      clearTimeout(this.dirtyTimer)
      this.dirtyTimer = null
    }
    if (this.dirty.size === 0) return
    const entries: CatalogEntry[] = []
    for (const record of this.dirty) {
      if (record.closed) continue
      const entry = record.entry()
      if (entry.type === null && this.catalog.get(entry.id) === undefined) continue // not a record (yet)
      entries.push(entry)
    }
    this.dirty.clear()
    this.catalog.set(entries)
    if (entries.length > 0) this.tabs.post({ t: 'catalog', entries, removed: [] })
  }

  /** Pending total: catalog entries, with live counts for open records. */
  private updateTotal(): void {
    let total = this.catalog.pending
    for (const record of this.records.values()) total += record.sync.pending - (this.catalog.get(record.id)?.pending ?? 0)
    if (total === this.lastTotal) return
    this.lastTotal = total
    this.emit('pending', [total])
  }

  private checkIdle(record: OpenRecord): void {
    if (this.records.get(record.id) !== record) return
    this.updateTotal()
    const idle =
      record.refs === 0 &&
      record.sync.pending === 0 &&
      !record.busy &&
      (record.isSaved || record.storageError !== null || !record.durable)
    if (!idle) {
      this.cancelIdle(record.id)
      return
    }
    if (this.idleTimers.has(record.id)) return
    this.idleTimers.set(
      record.id,
      setTimeout(() => {
        this.idleTimers.delete(record.id)
        if (record.refs > 0 || record.sync.pending > 0 || this.records.get(record.id) !== record) return
        this.flushDirty()
        this.records.delete(record.id)
        const closing = record.close().finally(() => {
          if (this.closingRecords.get(record.id) === closing) this.closingRecords.delete(record.id)
        })
        this.closingRecords.set(record.id, closing)
      }, this.idleTimeout),
    )
  }

  private cancelIdle(id: string): void {
    const timer = this.idleTimers.get(id)
    if (timer !== undefined) clearTimeout(timer)
    this.idleTimers.delete(id)
  }

  private reportStorage(recordId: string | null, error: unknown): void {
    const storageError = classifyStorageError(error, recordId === null ? 'catalog' : `record "${recordId}"`)
    if (recordId === null) {
      if (this.lastStoreError?.message === storageError.message) return
      this.lastStoreError = storageError
    }
    this.emit('storage-error', [storageEvent(recordId, storageError)])
  }

  private assertOpen(): void {
    if (this.closing) throw new Error('the RecordStore is closed')
  }

  private shutdown({ discard }: { discard: boolean }): Promise<void> {
    this.closing ??= (async () => {
      this.stopLive?.()
      this.stopLive = null
      this.liveQueue.clear()
      this.releaseOutbox?.()
      this.releaseOutbox = null
      for (const timer of this.idleTimers.values()) clearTimeout(timer)
      this.idleTimers.clear()
      if (!discard) this.flushDirty()
      if (this.dirtyTimer !== null) clearTimeout(this.dirtyTimer)
      this.dirtyTimer = null
      if (this.firstScreenTimer !== null) clearTimeout(this.firstScreenTimer)
      this.firstScreenTimer = null
      for (const parked of this.parked.values()) {
        clearTimeout(parked.timer)
        parked.release()
        void parked.taken.then((record) => record?.close({ discard: true }))
      }
      this.parked.clear()
      await Promise.allSettled([...this.opening.values(), ...this.closingRecords.values()])
      const records = [...this.records.values()]
      this.records.clear()
      await Promise.all(records.map((record) => record.close({ discard })))
      if (!discard) {
        await this.catalog.flush()
        if (this.catalog.loaded && this.durable) this.firstScreen.write(this.catalog.newestFirst())
      }
      this.catalog.detach()
      this.catalogStorage?.close()
      this.catalogStorage = null
      if (discard) this.catalog.clear()
      this.tabs.destroy()
      this.catalog.destroy()
    })()
    return this.closing
  }
}

const checkId = (id: string): void => {
  const result = recordIdSchema.safeParse(id)
  if (!result.success) throw new Error(`invalid record id "${String(id).slice(0, 80)}": ${result.error.issues[0]?.message ?? 'invalid'}`)
}

const storageEvent = (recordId: string | null, error: StorageError): StorageErrorEvent => ({
  kind: error.kind,
  reason: error.message,
  recordId,
  error,
})

const unsyncedOf = (entry: CatalogEntry): UnsyncedRecord => ({
  id: entry.id,
  type: entry.type,
  title: entry.title,
  pending: entry.pending,
  pendingFields: entry.pendingFields,
})

/** An update that carries no structs and no deletions. */
const isEmptyUpdate = (update: Uint8Array): boolean => {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}
