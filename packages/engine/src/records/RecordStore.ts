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
 * - Every record opened here persists in its own IndexedDB database
 *   (y-indexeddb's format), named per user and workspace; records a pull
 *   brought and nobody opened yet share one inbox database until they are
 *   first opened. "Saved" means the IndexedDB
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
 *   const ticketSchema = defineSchema({ type: 'ticket', version: 1, title: 'title', fields: { title: field.text(), status: field.enum(['open', 'done'], 'open') } })
 *   const client = new SyncClient({ url: location.origin, user })
 *   const store = new RecordStore({ client, userId: user.id, workspaceId: 'acme', schemas: [ticketSchema] })
 *   store.on('storage-error', (e) => banner(`Not saving on this device: ${e.reason}`))
 *   store.on('pending', (n) => (title.textContent = n ? `${n} unsynced` : 'All synced'))
 *   await store.ready
 *   const t = await store.create('ticket', { title: 'Login fails', status: 'open' })
 *   const page = store.list({ type: 'ticket', where: { status: 'open' }, limit: 50 })
 *   t.close()
 *   const result = await store.signOut({ wipe: true })
 *   if (!result.signedOut) askUser(result.unsynced)
 *
 * Structure: this class is a facade. The state of every record doc (opening,
 * open, idle, closing, parked) is one entry of a `RecordLifecycle`, moved by
 * a `RecordPool`; each open record writes through its own `RecordWriter`;
 * a `TabCoordinator` holds the outbox duty and handles the other tabs'
 * messages; a `Reconciliation` checks pending counts, lists uncatalogued
 * records again, pulls and runs the live catalog; a `CatalogMirror` keeps
 * the catalog entries of open records and the pending total.
 *
 * This file is over 400 lines because it is the whole public API of the
 * store, each method with its documentation; the work is in the modules
 * above.
 *
 * @module records/RecordStore
 */
import { ObservableV2 } from 'lib0/observable'
import type { SyncClient } from '../sync/SyncClient.js'
import { Catalog, type CatalogPage, type CatalogQuery } from '../catalog/Catalog.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import { FirstScreen, defaultKeyValueStore, type KeyValueStore } from '../catalog/FirstScreen.js'
import { IndexedDbStorage, databasePrefix } from '../persistence/IndexedDbStorage.js'
import { MemoryStorage } from '../persistence/MemoryStorage.js'
import { StorageError, StorageFailure, classifyStorageError, type CatalogStorage, type StorageBackend } from '../persistence/Storage.js'
import { TabChannel } from '../tabs/TabChannel.js'
import type { RecordHost } from './OpenRecord.js'
import { RecordHandle } from './RecordHandle.js'
import { RECORD_WRITE_ORIGIN } from '../model/origins.js'
import { discardUnsynced, type DiscardResult } from './discard.js'
import { writeWithHistory } from '../history/recordWrites.js'
import { DEFAULT_MAX_HISTORY } from '../history/historyLog.js'
import { RecordValidationError, initRecord, recordType, validatePatch, type RecordSnapshot } from '../model/recordDoc.js'
import { SchemaRegistry, isRecordId, newRecordId, recordIdSchema } from '../model/schema.js'
import { RecordState } from './RecordLifecycle.js'
import { RecordPool } from './RecordPool.js'
import { CatalogMirror } from './CatalogMirror.js'
import { TabCoordinator } from './TabCoordinator.js'
import { Reconciliation } from './Reconciliation.js'
import { UnsavedRescue, type UnsavedEdits } from './UnsavedRescue.js'
import { StorageSpaceWatch, type StorageSpace } from './StorageSpace.js'
import { evictRecords, unusedRecords, type EvictResult } from './evict.js'
import type {
  PullOptions,
  PullResult,
  RecordStoreEvents,
  RecordStoreOptions,
  SignOutResult,
  StorageErrorEvent,
  StorageRetryResult,
  UnsyncedRecord,
} from './recordStoreTypes.js'

export type {
  PullOptions,
  PullResult,
  RecordStoreEvents,
  RecordStoreOptions,
  SignOutResult,
  StorageErrorEvent,
  StorageRetryResult,
  UnsyncedRecord,
} from './recordStoreTypes.js'

const DAY_MS = 24 * 60 * 60 * 1000

/** Records removed per round when the space runs low (then the space is read again). */
const EVICT_BATCH = 50

/** `setTimeout`, returning its cancel function. */
const startTimer = (callback: () => void, delayMs: number): (() => void) => {
  const timer = setTimeout(callback, delayMs)
  return () => clearTimeout(timer)
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
  /** The live catalog caught up with the relay at least once since this store opened. */
  private caughtUpOnce = false
  private catalogStorage: CatalogStorage | null = null
  private catalogOpened: Promise<CatalogStorage | null>
  private resolveCatalogOpened!: (storage: CatalogStorage | null) => void
  /** Early first-page reads (see {@link query}) that the catalog's full load waits for. */
  private earlyReads = 0
  private earlyReadsDone: (() => void) | null = null
  private readonly tabs: TabChannel
  private readonly host: RecordHost
  /** The record docs in memory, each in one state of its lifecycle. */
  private readonly pool: RecordPool
  /** The catalog entries of open records, and the pending total. */
  private readonly mirror: CatalogMirror
  /** The outbox duty and the other tabs' messages. */
  private readonly tabCoordinator: TabCoordinator
  /** Pending checks, uncatalogued records, pull, live catalog. */
  private readonly reconciliation: Reconciliation
  private closing: Promise<void> | null = null
  private lastStoreError: StorageError | null = null
  private readonly firstScreen: FirstScreen
  /** Edits not stored yet, kept while the page goes and taken over at the next start. */
  private readonly rescue: UnsavedRescue
  private firstScreenTimer: ReturnType<typeof setTimeout> | null = null
  /** Stops the live catalog's watch (see {@link RecordStoreOptions.live}). */
  private stopLive: (() => void) | null = null
  /** Stops keeping the client's clock offset (see {@link keepClockOffset}). */
  private clockListener: (() => void) | null = null
  /** Reads the storage space now and then (see {@link storageSpace}). */
  private readonly space: StorageSpaceWatch
  /** Removes unused records when the space runs low (see {@link freeSpace}). */
  private readonly autoEvict: boolean
  /** How long a record nobody changed or opened here counts as used. */
  private readonly evictAfterMs: number
  private freeingSpace = false

  constructor(options: RecordStoreOptions) {
    super()
    const workspace = recordIdSchema.safeParse(options.workspaceId)
    if (!workspace.success) throw new Error(`RecordStore: workspaceId "${options.workspaceId}" must be one doc-name segment`)
    if (typeof options.userId !== 'string' || options.userId === '') throw new Error('RecordStore: userId is required')
    this.client = options.client
    this.userId = options.userId
    this.workspaceId = options.workspaceId
    this.schemas = new SchemaRegistry(options.schemas)
    this.backend =
      options.storage ?? new IndexedDbStorage({ userId: options.userId, workspaceId: options.workspaceId, indexedDB: options.indexedDB })
    const channelName = databasePrefix(options.userId, options.workspaceId)
    this.firstScreen = new FirstScreen(
      options.firstScreenCache !== undefined ? options.firstScreenCache : options.storage === undefined ? defaultKeyValueStore() : null,
      `${channelName}first-screen`,
    )
    this.rescue = new UnsavedRescue(
      options.unsavedRescue !== undefined ? options.unsavedRescue : options.storage === undefined ? defaultKeyValueStore() : null,
      channelName,
    )
    this.tabs = new TabChannel(channelName, options.tabs === false ? null : typeof options.tabs === 'function' ? options.tabs : undefined)
    this.catalog = new Catalog((error) => this.reportStorage(null, error))
    const isClosing = (): boolean => this.closing !== null
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
      readOnly: options.readOnly === true,
      now: options.now ?? (() => store.client.relayTime()),
      tabSaveTimer: options.tabSaveTimer ?? startTimer,
      summary: (record, summary) => store.emit('summary', [summary]),
      keptViewed: (id) => {
        const entry = store.catalog.get(id)
        return entry?.evicted === true ? entry.viewed : undefined
      },
      sendsCatchUp: () => store.tabCoordinator.sendsCatchUp,
      storageFailed: (record, error) => store.reportStorage(record.id, error),
      changed: (record, urgent) => store.mirror.markDirty(record, urgent),
      catalogStored: (record) => (store.closing ? Promise.resolve() : store.mirror.store(record)),
      stateChanged: (record) => store.pool.settle(record),
      syncError: (record, error) => store.emit('sync-error', [error, record.id]),
    }
    this.pool = new RecordPool({
      record: this.host,
      workspaceId: this.workspaceId,
      idleTimeout: options.idleTimeout ?? 30_000,
      backend: () => this.backend,
      durable: () => this.durable,
      isClosing,
      opened: (record) => this.mirror.markDirty(record, false),
      flushCatalog: () => this.mirror.flush(),
      updateTotal: () => this.mirror.updateTotal(),
      holdsOutbox: () => this.tabCoordinator.holdsOutbox,
      cataloguedPending: (id) => this.catalog.get(id)?.pending ?? 0,
    })
    this.mirror = new CatalogMirror(this.catalog, this.pool.lifecycle, this.tabs, (total) => this.emit('pending', [total]))
    this.tabCoordinator = new TabCoordinator({
      tabs: this.tabs,
      catalog: this.catalog,
      pool: this.pool,
      isClosing,
      discarded: (id) => this.emit('discarded', [id]),
      wiped: () => void this.shutdown({ discard: true }).then(() => this.emit('signed-out', [])),
    })
    this.reconciliation = new Reconciliation({
      client: this.client,
      workspaceId: this.workspaceId,
      userId: this.userId,
      schemas: this.schemas,
      compactAfter: this.host.compactAfter,
      catalog: this.catalog,
      backend: () => this.backend,
      durable: () => this.durable,
      isClosing,
      whenReady: () => this.ready,
      inMemory: (id) => this.inMemory(id),
      listed: (entries) => this.tabs.post({ t: 'catalog', entries, removed: [] }),
      ensureSyncing: (id) => this.tabCoordinator.ensureSyncing(id),
      summary: (summary) => this.emit('summary', [summary]),
      updateTotal: () => this.mirror.updateTotal(),
      caughtUp: () => {
        if (this.caughtUpOnce) return
        this.caughtUpOnce = true
        this.emit('caught-up', [])
      },
    })
    this.space = new StorageSpaceWatch(() => this.backend.estimate?.() ?? Promise.resolve(null), {
      warnAt: options.storageWarnAt ?? 0.8,
      intervalMs: options.storageCheckMs ?? 10_000,
      changed: (space) => this.emit('storage-space', [space]),
      read: (space) => {
        if (space.low) void this.freeSpace(space)
      },
    })
    this.autoEvict = options.evictUnused !== false
    this.evictAfterMs = options.evictAfterMs ?? 30 * DAY_MS
    this.catalog.on('change', (ids) => {
      this.scheduleFirstScreen()
      // Whatever changed an entry wrote to this device's storage (an edit, a fetch, another tab's edit).
      if (this.durable) this.space.soon()
      this.emit('catalog', [ids])
    })
    this.catalog.on('pending', () => this.mirror.updateTotal())
    this.keepClockOffset(
      options.clockOffsetCache !== undefined ? options.clockOffsetCache : options.storage === undefined ? defaultKeyValueStore() : null,
    )
    this.catalogOpened = new Promise((resolve) => (this.resolveCatalogOpened = resolve))
    this.ready = this.start(channelName)
    this.reconciled = this.ready.then(() => this.reconciliation.reconcile())
    if (options.live) {
      // Watching at once: the catch-up's listing goes out while the catalog loads (a pull reads it before
      // comparing), so a new device's first screen does not wait for both in turn.
      this.stopLive = this.client.watchCatalog(this.workspaceId, {
        changed: (names) =>
          void this.ready.then(
            () => this.reconciliation.fetchChanged(names),
            () => undefined,
          ),
        watching: () => this.reconciliation.catchUp(),
      })
    }
    if (typeof addEventListener === 'function' && typeof document !== 'undefined') {
      addEventListener('pagehide', this.onPageHide)
      addEventListener('pageshow', this.onPageShow)
      document.addEventListener('visibilitychange', this.onVisibility)
    }
  }

  /**
   * Writes what of the open records is not stored yet to the rescue stash
   * (see `records/UnsavedRescue`), synchronously; the store does this itself
   * while its page goes (`pagehide`, a hidden page). Typing bursts end
   * first, so their history entries are kept too. Returns false when the
   * stash could not be written (storage full or unavailable).
   */
  keepUnstored(): boolean {
    if (this.closing !== null || !this.durable) return true
    const records = new Map<string, UnsavedEdits>()
    for (const record of this.pool.lifecycle.records()) {
      record.typing.flush()
      const edits = record.unstoredEdits()
      if (edits !== null) records.set(record.id, edits)
    }
    return this.rescue.write(records)
  }

  private readonly onPageHide = (): void => void this.keepUnstored()

  /** After every `pagehide` listener ran (the app's last writes included), and when a tab goes to the background. */
  private readonly onVisibility = (): void => {
    if (document.visibilityState === 'hidden') this.keepUnstored()
    else this.rescue.write(new Map()) // shown again: this page stores its own edits
  }

  private readonly onPageShow = (event: PageTransitionEvent): void => {
    if (event.persisted) this.rescue.write(new Map())
  }

  /**
   * Takes over what pages of this device had not stored when they went
   * (see `records/UnsavedRescue`): each record's edits are applied as this
   * device's changes, stored and sent; the stash goes once every record is
   * stored (a failing storage keeps it for the next start).
   */
  private async takeOverUnstored(): Promise<void> {
    const parts = this.rescue.read()
    if (parts.size === 0) return
    const byRecord = new Map<string, UnsavedEdits[]>()
    for (const records of parts.values()) {
      for (const [id, edits] of records) if (isRecordId(id)) byRecord.set(id, [...(byRecord.get(id) ?? []), edits])
    }
    // Applied before the store is ready (lists and counts show them from the start); stored in the background.
    const adopted = await Promise.all(
      [...byRecord].map(async ([id, list]) => {
        try {
          const record = await this.pool.acquire(id)
          for (const edits of list) {
            try {
              record.adoptRescued(edits)
            } catch {
              // an update Yjs cannot read: nothing of it can be taken over, ever
            }
          }
          return record
        } catch {
          return null // the store closed, or the record's database cannot be opened: tried again at the next start
        }
      }),
    )
    this.mirror.flush() // the catalog lists them as pending before the store is ready
    void Promise.all(
      adopted.map(async (record) => {
        if (record === null) return false
        await record.settled()
        const stored = record.isSaved
        this.pool.settle(record)
        return stored
      }),
    ).then((stored) => {
      if (stored.every(Boolean) && this.closing === null) this.rescue.remove(parts.keys())
    })
  }

  /**
   * With `live`: whether the catalog has caught up with the relay since this
   * store opened (the first catch-up pull completed; `caught-up` says when).
   * Until then a list lacks what others made while this device was away — on
   * a new device, everything: say "getting …", not "none yet".
   */
  get caughtUp(): boolean {
    return this.caughtUpOnce
  }

  /** `'indexeddb'`, `'memory'` (fallback or configured), or the adapter's kind. */
  get storageKind(): string {
    return this.backend.kind
  }

  /** Whether records are saved on this device (false after falling back to memory). */
  get persistent(): boolean {
    return this.durable
  }

  /**
   * This device's storage as last read (`navigator.storage.estimate()`): the
   * site's usage, the browser's quota for it, whether the browser keeps the
   * data when the disk runs low, and whether the usage reached
   * `storageWarnAt` of the quota (`low`: once the quota is exhausted, new
   * changes are kept in memory only). Null until read, and where the
   * browser does not say (or the store runs in memory). Read at start-up and
   * after changes were stored (at most every `storageCheckMs`); the
   * `storage-space` event tells of a new reading.
   */
  get storageSpace(): StorageSpace | null {
    return this.space.current
  }

  /** Reads the storage space now (see {@link storageSpace}); never rejects. */
  checkStorageSpace(): Promise<StorageSpace | null> {
    return this.durable ? this.space.check() : Promise.resolve(null)
  }

  /**
   * Asks the browser to keep this site's data when the disk runs low
   * (`navigator.storage.persist()`; Chromium decides by itself, Firefox asks
   * the person), then reads the storage space again. Resolves with whether
   * the data is kept; never rejects.
   */
  async requestPersistence(): Promise<boolean> {
    await this.ready
    if (!this.durable || this.backend.persist === undefined) return false
    const kept = await this.backend.persist().catch(() => false)
    await this.space.check()
    return kept
  }

  /**
   * Removes records from this device to free space (records.md, "Storage
   * space"): the records `ids`, or without them every record nobody changed
   * or opened here for `evictAfterMs`, least recently used first. Only
   * records whose every change is on the relay and that no tab has open are
   * removed; their catalog entries stay (`evicted`), and opening one online
   * fetches it again. Resolves with what was removed and what was kept, and why.
   */
  async evict(ids?: readonly string[]): Promise<EvictResult> {
    await this.ready
    if (!this.durable || this.closing) return { evicted: [], kept: (ids ?? []).map((id) => ({ id, reason: 'unsupported' as const })) }
    const chosen = ids ?? unusedRecords(this.catalog, (id) => this.inMemory(id), this.host.now() - this.evictAfterMs)
    return evictRecords(
      {
        catalog: this.catalog,
        backend: this.backend,
        inMemory: (id) => this.inMemory(id),
        listed: (entries) => this.tabs.post({ t: 'catalog', entries, removed: [] }),
      },
      chosen,
    )
  }

  /**
   * The space ran low: removes unused records (see {@link evict}) in
   * batches, reading the space again after each, until it is no longer low
   * or none is left. One run at a time.
   */
  private async freeSpace(low: StorageSpace): Promise<void> {
    if (this.freeingSpace || !this.autoEvict) return
    this.freeingSpace = true
    try {
      let space: StorageSpace | null = low
      while (space?.low === true && !this.closing) {
        const unused = unusedRecords(this.catalog, (id) => this.inMemory(id), this.host.now() - this.evictAfterMs)
        if (unused.length === 0) break
        const { evicted } = await this.evict(unused.slice(0, EVICT_BATCH))
        if (evicted.length === 0) break
        this.emit('evicted', [evicted])
        space = await this.space.check()
      }
    } catch {
      // A failed removal leaves the record stored; the next low reading tries again.
    } finally {
      this.freeingSpace = false
    }
  }

  /** A record is open for someone to see: it counts as used (see {@link evict}). */
  private noteOpened(id: string): void {
    const entry = this.catalog.get(id)
    if (entry === undefined) return
    const opened = { ...entry, openedAt: this.host.now() }
    // An entry listed before its record arrived stays in memory only, as the pull keeps it.
    this.catalog.set([opened], { persist: entry.local || entry.evicted === true })
    this.tabs.post({ t: 'catalog', entries: [opened], removed: [] })
  }

  /** The record is in memory in this tab (open, idle or opening). */
  private inMemory(id: string): boolean {
    const state = this.pool.lifecycle.stateOf(id)
    return state === RecordState.open || state === RecordState.idle || state === RecordState.opening
  }

  /** Pending total of the workspace: every record, open or not. */
  get pending(): number {
    return this.mirror.total
  }

  /** Ids of the record docs open right now. */
  get openIds(): string[] {
    return this.pool.lifecycle.openIds()
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
   *
   * While the handle is open, the record's presence shows this user (the
   * client's `user`); when the last handle that shows it closes, the user
   * leaves the record's presence at once, although the record stays in
   * memory for `idleTimeout`. `presence: false` opens a handle that shows
   * nobody (work in the background: {@link read}, {@link update},
   * {@link archive} and {@link delete} open their records so).
   */
  async open(id: string, { presence = true }: { presence?: boolean } = {}): Promise<RecordHandle> {
    checkId(id)
    await this.ready
    this.assertOpen()
    const record = await this.pool.acquire(id)
    this.assertOpen()
    record.refs++
    this.pool.settle(record)
    if (presence) this.noteOpened(id)
    return new RecordHandle(
      record,
      (_handle, open) => {
        open.refs--
        this.pool.settle(open)
      },
      presence,
    )
  }

  /**
   * Opens a record for work in the background (no presence). A record the
   * catalog lists but this device does not store (removed to free space, or
   * listed before it arrived) holds nothing until the relay answers: while
   * online, that answer is waited for (not past the connection's loss).
   */
  private async openForWork(id: string): Promise<RecordHandle> {
    const handle = await this.open(id, { presence: false })
    const entry = this.catalog.get(id)
    if (entry !== undefined && !entry.local && this.client.status === 'online') {
      let onStatus: ((status: string) => void) | undefined
      const lost = new Promise<void>((resolve) => {
        onStatus = (status) => {
          if (status === 'offline') resolve()
        }
        this.client.on('status', onStatus)
      })
      try {
        await Promise.race([handle.sync.synced.catch(() => undefined), lost]) // closed, refused or offline: what is there
      } finally {
        this.client.off('status', onStatus!)
      }
    }
    return handle
  }

  /** Reads a record (opening it briefly if needed). */
  async read(id: string): Promise<RecordSnapshot> {
    const handle = await this.openForWork(id)
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
    const handle = await this.openForWork(id)
    try {
      handle.update(patch)
    } finally {
      handle.close()
    }
  }

  /** Archives (or un-archives) a record. */
  async archive(id: string, archived = true): Promise<void> {
    const handle = await this.openForWork(id)
    try {
      handle.archive(archived)
    } finally {
      handle.close()
    }
  }

  /** Marks a record deleted (a synced tombstone; `false` restores it). */
  async delete(id: string, deleted = true): Promise<void> {
    const handle = await this.openForWork(id)
    try {
      handle.remove(deleted)
    } finally {
      handle.close()
    }
  }

  /** Lists records from the catalog without opening them. Call after {@link ready} (before, it lists what is loaded so far). */
  list(query: CatalogQuery = {}): CatalogPage {
    this.mirror.flush()
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
      // The full load waits for this read: its chunks would share the main thread with the index scan's steps.
      this.earlyReads++
      try {
        const storage = await this.catalogOpened
        if (!this.catalog.loaded && storage !== null) {
          try {
            const early = await this.catalog.earlyPage(storage, query)
            if (early !== null && !this.catalog.loaded) return early
          } catch {
            // fall through: wait for the full catalog
          }
        }
      } finally {
        if (--this.earlyReads === 0) this.earlyReadsDone?.()
      }
      await this.ready
    }
    return this.list(query)
  }

  /** Every record with changes not durably stored on the relay. */
  unsynced(): UnsyncedRecord[] {
    this.mirror.flush()
    const out = new Map<string, UnsyncedRecord>()
    for (const entry of this.catalog.all()) {
      if (entry.pending > 0) out.set(entry.id, unsyncedOf(entry))
    }
    for (const record of this.pool.lifecycle.records()) {
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
    let result: DiscardResult
    try {
      result = await discardUnsynced(
        {
          client: this.client,
          workspaceId: this.workspaceId,
          schemas: this.schemas,
          catalog: this.catalog,
          backend: this.backend,
          tabs: this.tabs,
          pendingFields: (recordId) => this.unsynced().find((r) => r.id === recordId)?.pendingFields ?? [],
          whileClosed: (recordId, rewrite) => this.pool.whileClosed(recordId, rewrite),
        },
        id,
        options,
      )
    } finally {
      // What a page kept of the record while it went must not bring the discarded changes back.
      this.rescue.forget(id)
    }
    this.mirror.updateTotal()
    return result
  }

  /** Resolves when every open record is durably on the relay. */
  async flush(): Promise<void> {
    await Promise.all(this.pool.lifecycle.records().map((record) => record.sync.flush()))
  }

  /** Resolves when every queued local write (records and catalog) is committed. */
  async settled(): Promise<void> {
    this.mirror.flush()
    await Promise.all(this.pool.lifecycle.records().map((record) => record.settled()))
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
    const record = this.pool.lifecycle.recordOf(id)
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
      const error =
        this.lastStoreError ?? new StorageError(StorageFailure.unavailable, 'IndexedDB is unavailable: records are kept in memory only')
      return { ok: false, persistent: false, failures: [storageEvent(null, error)] }
    }
    const failures: StorageErrorEvent[] = []
    const records = this.pool.lifecycle.records()
    const errors = await Promise.all(records.map((record) => record.retryStorage()))
    errors.forEach((error, i) => {
      if (error !== null) failures.push(storageEvent(records[i]!.id, error))
    })
    this.mirror.flush()
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
    return this.reconciliation.pull(options)
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
      const uncatalogued = await this.reconciliation.uncatalogued()
      if (uncatalogued.length > 0) this.catalog.set(uncatalogued)
    }
    const unsynced = this.unsynced()
    if (unsynced.length > 0 && !options.discardUnsynced) return { signedOut: false, reason: 'unsynced', unsynced }
    const ids = new Set([...this.catalog.all().map((e) => e.id), ...this.pool.lifecycle.openIds()])
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
      if (this.earlyReads > 0) await new Promise<void>((resolve) => (this.earlyReadsDone = resolve))
      this.earlyReadsDone = null
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
    await this.reconciliation.verifyPending()
    if (this.closing) return
    if (this.durable) await this.takeOverUnstored()
    if (this.closing) return
    this.tabCoordinator.start(lockName)
    this.mirror.updateTotal()
    if (this.durable) void this.space.check()
  }

  /** Rewrites the first-screen snapshot, at most once a second. */
  private scheduleFirstScreen(): void {
    if (!this.catalog.loaded || !this.durable || this.closing || this.firstScreenTimer !== null) return
    this.firstScreenTimer = setTimeout(() => {
      this.firstScreenTimer = null
      if (!this.closing && this.durable) this.firstScreen.write(this.catalog.newestFirst())
    }, 1_000)
  }

  private reportStorage(recordId: string | null, error: unknown): void {
    const storageError = classifyStorageError(error, recordId === null ? 'catalog' : `record "${recordId}"`)
    if (recordId === null) {
      if (this.lastStoreError?.message === storageError.message) return
      this.lastStoreError = storageError
    }
    this.emit('storage-error', [storageEvent(recordId, storageError)])
    if (storageError.kind === StorageFailure.quota) void this.space.check()
  }

  private assertOpen(): void {
    if (this.closing) throw new Error('the RecordStore is closed')
  }

  /**
   * The time the store stamps changes with (`at` of history entries, comments,
   * `createdAt`/`updatedAt`): this device's clock corrected to the relay's
   * (`client.relayTime()`), so times from several devices compare, and
   * "5 min ago" said of anyone's change is right on a device whose clock is off.
   */
  now(): number {
    return this.host.now()
  }

  /**
   * Starts from the clock offset kept on this device (an offline start knows
   * its clock is off before the relay answers) and keeps the one the relay's
   * `hello` tells.
   */
  private keepClockOffset(cache: KeyValueStore | null): void {
    if (cache === null) return
    const key = `concord-clock-offset ${this.client.url}`
    try {
      const kept = Number(cache.getItem(key) ?? 'NaN')
      if (Number.isFinite(kept)) this.client.assumeClockOffset(kept)
    } catch {
      // a storage that cannot be read (sandboxed frame): start from the device's clock
    }
    const keep = (offset: number): void => {
      try {
        if (offset === 0) cache.removeItem(key)
        else cache.setItem(key, String(offset))
      } catch {
        // a full or blocked storage: the offset is measured again at the next connection
      }
    }
    this.client.on('clock-offset', keep)
    if (this.client.relay?.time != null) keep(this.client.clockOffset) // the relay answered before this store
    this.clockListener = () => this.client.off('clock-offset', keep)
  }

  private shutdown({ discard }: { discard: boolean }): Promise<void> {
    this.clockListener?.()
    this.clockListener = null
    this.space.close()
    if (typeof removeEventListener === 'function' && typeof document !== 'undefined') {
      removeEventListener('pagehide', this.onPageHide)
      removeEventListener('pageshow', this.onPageShow)
      document.removeEventListener('visibilitychange', this.onVisibility)
    }
    // The device's data goes: nothing of it may come back at the next start.
    if (discard) this.rescue.clear()
    this.closing ??= (async () => {
      this.stopLive?.()
      this.stopLive = null
      this.reconciliation.stop()
      this.tabCoordinator.stop()
      if (!discard) this.mirror.flush()
      this.mirror.cancelBatch()
      if (this.firstScreenTimer !== null) clearTimeout(this.firstScreenTimer)
      this.firstScreenTimer = null
      await this.pool.closeAll({ discard })
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
