/**
 * One record doc open in a {@link RecordStore}: its Y.Doc synced through the
 * store's SyncClient, persisted through the storage port, shared with other
 * tabs, and mirrored into the catalog.
 *
 * Internal: apps hold {@link RecordHandle}s, which reference an OpenRecord.
 *
 * This class wires the record's parts together and keeps what they share
 * (pending fields, what is saved, what was viewed, own client ids):
 *
 * - `RecordWriter`: the persistence pipeline (queue, meta, compaction,
 *   "saved" after the transaction completed, retry with backoff).
 * - `RecordHistory`: validated writes with their history entries, typing
 *   bursts, merge settling.
 * - `RecordTabSharing`: edits, saved notes and catch-ups shared with the
 *   other tabs.
 *
 * Failures never throw into the app: the record keeps working in memory and
 * the store reports a `storage-error`.
 *
 * Over 400 lines because it also declares the two ports that name it
 * ({@link RecordHost}, what the store provides; {@link RecordListener},
 * what a handle listens to) and routes every event of its doc and sync
 * handle to the parts above.
 *
 * @module records/OpenRecord
 */
import * as Y from 'yjs'
import {
  RESCUED_ORIGIN,
  STORAGE_ORIGIN,
  TAB_ORIGIN,
  UPDATED_AT_ORIGIN,
  changeSourceOf,
  isBookkeeping,
  type ChangeSource,
} from '../model/origins.js'
import type { UnsavedEdits } from './UnsavedRescue.js'
import type { DocHandle } from '../sync/DocHandle.js'
import type { SyncClient } from '../sync/SyncClient.js'
import type { SyncError } from '../sync/SyncError.js'
import type { BackoffOptions } from '../sync/backoff.js'
import { stateVectorOf, type StateVector } from '../protocol/stateVector.js'
import type { AuthorInfo } from '../protocol/messages.js'
import {
  StorageError,
  StorageFailure,
  classifyStorageError,
  type RecordMeta,
  type RecordStorage,
  type StorageBackend,
} from '../persistence/Storage.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { FieldClocks } from '../model/fieldClocks.js'
import { RECORD_MAP, RecordKey, readRecord, recordType, type ValidatedPatch } from '../model/recordDoc.js'
import type { RecordSchema, SchemaRegistry } from '../model/schema.js'
import type { TabChannel } from '../tabs/TabChannel.js'
import { historyArray } from '../history/historyLog.js'
import type { Merge } from '../history/readHistory.js'
import type { TypingRecorder } from '../history/TypingRecorder.js'
import type { RecordSummary } from '../history/summary.js'
import { summarizeRecord } from './recordSummary.js'
import { FieldPending } from './FieldPending.js'
import { SavedState } from './SavedState.js'
import { RecordWriter, type WriterOwner } from './RecordWriter.js'
import { RecordHistory } from './RecordHistory.js'
import { RecordTabSharing } from './RecordTabSharing.js'
import { catalogEntryOf } from './catalogEntry.js'
import { ownClientsOf } from './ownClients.js'

/** What an OpenRecord needs from its store. */
export interface RecordHost {
  readonly client: SyncClient
  readonly userId: string
  readonly tabs: TabChannel
  readonly schemas: SchemaRegistry
  readonly compactAfter: number
  readonly updatedAtResolution: number
  /** History entries kept per record before older ones are compacted. */
  readonly historyLimit: number
  /** Pause that ends a burst of direct text / list edits (one history entry), ms. */
  readonly historyIdleMs?: number
  /** The user may only read: merges are left to writers' devices to settle. */
  readonly readOnly?: boolean
  now(): number
  /** Delays before a record's storage is written again after a failure. Default: `STORAGE_RETRY` (jittered backoff). */
  readonly storageRetry?: BackoffOptions
  /** Starts the tab-save fallback timer (`TAB_SAVE_FALLBACK_MS`, see `records/RecordTabSharing`); returns its cancel function. */
  tabSaveTimer(write: () => void, delayMs: number): () => void
  /** A "while you were away" summary of the record (after it synced). */
  summary(record: OpenRecord, summary: RecordSummary): void
  /** Of a record removed to free space: what this device had seen of it (its catalog entry kept it), else undefined. */
  keptViewed?(id: string): Uint8Array | undefined
  /** Storage of this record failed (report it). */
  storageFailed(record: OpenRecord, error: StorageError): void
  /**
   * The record's catalog entry may have changed. `now`: write the entry at
   * once (its pending state flipped, or the record's own storage is being
   * written, so the catalog's pending count goes to disk with it).
   */
  changed(record: OpenRecord, now: boolean): void
  /**
   * Writes the record's catalog entry now, durably; resolves once it is
   * committed (or failed, which is reported). Awaited before the first
   * write of changes the relay lacks, so the catalog lists the record as
   * pending whenever such changes are on disk.
   */
  catalogStored(record: OpenRecord): Promise<void>
  /** refs, pending or saved state changed: the store decides about idle closing. */
  stateChanged(record: OpenRecord): void
  /** A sync error of the record. */
  syncError(record: OpenRecord, error: SyncError): void
  /**
   * Whether this tab sends the catch-up after a (re)subscribe — what the
   * relay lacks, including other tabs' edits — or leaves it to the tab that
   * holds the outbox duty (so it is not sent once per tab).
   */
  sendsCatchUp(): boolean
}

/** Listener interface a RecordHandle registers. */
export interface RecordListener {
  /** Whether the handle shows this user's presence in the record (see {@link OpenRecord.addListener}). */
  readonly presence: boolean
  change(source: ChangeSource): void
  pending(count: number, fields: string[]): void
  saved(isSaved: boolean): void
  error(error: SyncError | StorageError): void
  summary(summary: RecordSummary): void
  /** The relay bound client ids to users (`added`): who wrote what may read differently now. */
  authors(added: AuthorInfo[]): void
  /**
   * The store replaced this record by a fresh copy loaded from storage
   * (another tab discarded its unsynced changes): follow it. Returns false
   * when the listener's handle is closed already.
   */
  moved(record: OpenRecord): boolean
}

export class OpenRecord {
  readonly id: string
  readonly name: string
  readonly doc: Y.Doc
  readonly sync: DocHandle
  /** False when the record lives in the in-memory fallback (nothing is saved on this device). */
  readonly durable: boolean
  /** The open handles' listeners; add and remove them with {@link addListener} and {@link removeListener}. */
  readonly listeners = new Set<RecordListener>()
  /** History entries of text typed (and list items pushed) directly into the record's shared types. */
  readonly typing: TypingRecorder
  /** Validated writes, typing bursts and merge settling, with their history entries. */
  private readonly history: RecordHistory
  /** Open RecordHandles. */
  refs = 0
  closed = false
  /** Another tab is discarding the record's unsynced changes: nothing is sent or stored any more (see {@link park}). */
  parked = false
  /** Whether the store set this user's presence in the record (and takes it away with the last handle that shows it). */
  private showsPresence = false

  private schemaCache: RecordSchema | undefined
  private readonly host: RecordHost
  private readonly fieldPending: FieldPending
  private readonly saved: SavedState
  /** Writes the doc and its meta to the record's database. */
  private readonly writer: RecordWriter
  /** Shares the record with the other tabs (messages for this record go to it). */
  readonly tabShare: RecordTabSharing
  /** What the user has seen of the record: the state when it was last synced live (persisted). */
  private viewed: StateVector
  /**
   * Nothing of the record was on this device when it opened: its first sync
   * brings what it is, not news (no "while you were away" summary).
   */
  private newHere: boolean
  /**
   * Yjs client ids this device wrote the record with, this one included once
   * it writes, other tabs' once their edits arrive (persisted): only their
   * changes count as pending (the sync handle's `ownClients`).
   */
  private readonly ownClients: Set<number>
  private lastSaved = false
  private lastPending = 0
  private lastPendingFields = ''
  /** The catalog entry listing this record as pending is committed (since pending last was 0). */
  private catalogListsPending = false

  /**
   * Opens a record: loads it from `backend` (falling back to `fallback` in
   * memory when that fails), then opens it on the sync client.
   */
  static async open(host: RecordHost, workspaceId: string, id: string, backend: StorageBackend, durable: boolean): Promise<OpenRecord> {
    const name = `${workspaceId}/${id}`
    if (host.client.get(name) !== undefined) {
      throw new Error(`record "${id}": doc "${name}" is already open on the SyncClient outside the record store; close it first`)
    }
    let storage: RecordStorage | null = null
    let loaded: { updates: Uint8Array[]; meta: RecordMeta } = { updates: [], meta: {} }
    let failure: StorageError | null = null
    try {
      storage = await backend.openRecord(id)
      loaded = await storage.load()
    } catch (error) {
      failure = classifyStorageError(error, `opening record "${id}"`)
      storage?.close()
      storage = null
    }
    if (host.client.get(name) !== undefined) {
      storage?.close()
      throw new Error(`record "${id}": doc "${name}" was opened on the SyncClient outside the record store meanwhile`)
    }
    if (loaded.updates.length === 0 && loaded.meta.viewed === undefined) {
      // Removed to free space: not new here. Once it synced, what changed since this device last saw it is the news.
      const viewed = host.keptViewed?.(id)
      if (viewed !== undefined) loaded = { ...loaded, meta: { ...loaded.meta, viewed } }
    }
    return new OpenRecord(host, name, id, backend, durable, storage, loaded, failure)
  }

  private constructor(
    host: RecordHost,
    name: string,
    id: string,
    backend: StorageBackend,
    durable: boolean,
    storage: RecordStorage | null,
    loaded: { updates: Uint8Array[]; meta: RecordMeta },
    failure: StorageError | null,
  ) {
    this.host = host
    this.name = name
    this.id = id
    this.durable = durable
    // the doc name as guid: a random one costs ~30 getRandomValues calls (lib0 uuidv4) per opened record
    this.doc = new Y.Doc({ guid: name })
    const broken: unknown[] = []
    this.doc.transact(() => {
      for (const update of loaded.updates) {
        try {
          Y.applyUpdate(this.doc, update, STORAGE_ORIGIN)
        } catch (error) {
          broken.push(error)
        }
      }
    }, STORAGE_ORIGIN)
    this.fieldPending = new FieldPending(loaded.meta.fieldClocks)
    this.saved = new SavedState(failure === null ? stateVectorOf(this.doc) : new Map())
    this.writer = new RecordWriter({
      id,
      doc: this.doc,
      backend,
      storage,
      saved: this.saved,
      compactAfter: host.compactAfter,
      retry: host.storageRetry,
      meta: {
        acked: () => Y.encodeStateVector(new Map(this.sync.ackedStateVector)),
        fieldClocks: () => this.fieldPending.serialize(),
        authors: () => [...this.sync.authors.values()].map((a): AuthorInfo => ({ ...a })),
        viewed: () => Y.encodeStateVector(this.viewed),
        ownClients: () => [...this.ownClients],
      },
      owner: this.writerOwner,
    })
    this.ownClients = ownClientsOf(
      loaded.meta,
      stateVectorOf(this.doc),
      loaded.meta.acked !== undefined ? Y.decodeStateVector(loaded.meta.acked) : new Map(),
    )
    if (loaded.meta.ownClients === undefined) this.writer.metaChangedLater('ownClients')
    this.sync = host.client.open(name, {
      doc: this.doc,
      ackedStateVector: loaded.meta.acked,
      ownClients: this.ownClients,
      skipSendOrigins: [TAB_ORIGIN],
      sendsCatchUp: () => host.sendsCatchUp(),
      authors: loaded.meta.authors,
      presence: false, // shown while a handle that shows it is open (addListener)
    })
    this.tabShare = new RecordTabSharing({
      id,
      doc: this.doc,
      sync: this.sync,
      tabs: host.tabs,
      fieldPending: this.fieldPending,
      saved: this.saved,
      writer: this.writer,
      tabSaveTimer: (write, delayMs) => host.tabSaveTimer(write, delayMs),
      sendsCatchUp: () => host.sendsCatchUp(),
      parked: () => this.parked,
      noteOwnClient: (client) => this.noteOwnClient(client),
      ownClients: () => [...this.ownClients],
      checkPending: () => this.checkPending(),
      checkSaved: () => this.checkSaved(),
    })
    this.viewed = loaded.meta.viewed !== undefined ? Y.decodeStateVector(loaded.meta.viewed) : stateVectorOf(this.doc)
    if (loaded.meta.viewed === undefined) this.writer.metaChangedLater('viewed')
    this.newHere = loaded.meta.viewed === undefined && loaded.updates.length === 0
    this.schemaCache = host.schemas.get(recordType(this.doc) ?? '')
    this.history = new RecordHistory(this.doc, {
      client: host.client,
      authors: () => this.sync.authors,
      now: () => host.now(),
      historyLimit: host.historyLimit,
      historyIdleMs: host.historyIdleMs,
      schema: () => this.schema,
      active: () => !this.closed && !this.parked,
      settles: host.readOnly !== true,
      connected: () => this.sync.isSynced && this.sync.sendsLiveEdits,
      acked: () => this.sync.ackedStateVector,
    })
    this.typing = this.history.typing
    if (this.schemaCache !== undefined) this.typing.watch(this.schemaCache)
    // Defined before any update arrives: the first one into an empty doc (a record fetched whole) would otherwise
    // change a placeholder type, which `transaction.changed` holds instead of this array.
    historyArray(this.doc)
    this.doc.on('update', this.onUpdate)
    this.sync.on('pending', this.onPending)
    this.sync.on('ack', this.onAck)
    this.sync.on('error', this.onSyncError)
    this.sync.on('authors', this.onAuthors)
    this.sync.on('synced', this.onSynced)
    this.sync.on('catch-up-deferred', this.onCatchUpDeferred)
    this.lastSaved = this.isSaved
    this.lastPending = this.sync.pending
    this.lastPendingFields = this.pendingFields.join('\u0000')
    // Ask other tabs for edits they have not written to storage yet.
    this.tabShare.requestEdits()
    if (failure !== null) queueMicrotask(() => this.writer.fail(failure))
    else if (broken.length > 0) {
      queueMicrotask(() =>
        this.host.storageFailed(
          this,
          new StorageError(
            StorageFailure.failed,
            `record "${id}": ${broken.length} stored update(s) could not be applied and were skipped: ${String(broken[0])}`,
            broken[0],
          ),
        ),
      )
    }
    this.writer.compactIfLong(loaded.updates.length)
    // Merges that arrived while no device had the record open (pulled into storage, or on the relay) settle now.
    this.history.scheduleSettle()
  }

  /** The schema of the record's type, if registered. */
  get schema(): RecordSchema | undefined {
    if (this.schemaCache === undefined) {
      const type = recordType(this.doc)
      if (type !== null) this.schemaCache = this.host.schemas.get(type)
      if (this.schemaCache !== undefined) this.typing.watch(this.schemaCache)
    }
    return this.schemaCache
  }

  /** Whether every change of the doc is stored on this device (IndexedDB transaction completed). */
  get isSaved(): boolean {
    return this.durable && this.writer.allWritten
  }

  /** Last storage failure, null while storage works. */
  get storageError(): StorageError | null {
    return this.writer.storageError
  }

  /** Fields with changes the relay has not durably stored. */
  get pendingFields(): string[] {
    return this.sync.pending === 0 ? [] : this.fieldPending.pendingFields(this.sync.ackedStateVector)
  }

  /** Whether storage operations are queued or running. */
  get busy(): boolean {
    return this.writer.busy
  }

  /** The catalog entry of this record now. */
  entry(): CatalogEntry {
    return catalogEntryOf(this.doc, this.id, this.schema, this.sync.pending, this.pendingFields)
  }

  /**
   * Writes a validated patch and its history entries in one transaction
   * (`restoreOf`: field → entry id whose value a restore brings back).
   */
  write(patch: ValidatedPatch, origin: unknown, restoreOf?: Record<string, string>): void {
    this.history.write(patch, origin, restoreOf)
  }

  /** Settles what the text-merge rule asks for (see {@link RecordHistory.settleMerges}). */
  settleMerges(): void {
    this.history.settleMerges()
  }

  /** Records that a text merge stands as merged (see {@link RecordHistory.keepMerge}). */
  keepMerge(merge: Merge): void {
    this.history.keepMerge(merge)
  }

  /** The user of the store this record is open in. */
  get userId(): string {
    return this.host.userId
  }

  /**
   * Runs `write` in one transaction, with the store's clock and history
   * bound: for writes of the record itself (archive, comments).
   */
  transact(write: (now: number, maxEntries: number) => void, origin: unknown): void {
    this.history.transact(write, origin)
  }

  /**
   * Takes over what `parked` (this record's doc from before a discard that
   * did not happen) holds beyond this doc — edits that had not reached
   * storage when it was parked — with its pending-field notes: stored and
   * sent like any change of this tab.
   */
  adoptFrom(parked: OpenRecord): void {
    if (this.closed) return
    const missing = Y.encodeStateAsUpdate(parked.doc, Y.encodeStateVector(this.doc))
    this.fieldPending.merge(parked.fieldPending.serialize())
    this.writer.metaChanged('fieldClocks')
    for (const client of parked.ownClients) this.noteOwnClient(client)
    Y.applyUpdate(this.doc, missing)
    this.checkPending()
  }

  /**
   * What of the doc may not be stored yet, with its pending-field notes and
   * this device's client ids (kept while the page goes, see
   * `records/UnsavedRescue`); null when everything is stored, or nothing is
   * stored on this device anyway.
   */
  unstoredEdits(): UnsavedEdits | null {
    if (this.closed || this.parked || !this.durable || !this.writer.holdsUnstored) return null
    return {
      update: Y.encodeStateAsUpdate(this.doc, Y.encodeStateVector(this.saved.stateVector)),
      fieldClocks: this.fieldPending.serialize(),
      ownClients: [...this.ownClients],
    }
  }

  /**
   * Takes over edits a page of this device had not stored when it went:
   * stored and sent like this tab's changes, pending under the client ids
   * they were written with.
   */
  adoptRescued(edits: UnsavedEdits): void {
    if (this.closed || this.parked) return
    this.fieldPending.merge(edits.fieldClocks)
    this.writer.metaChanged('fieldClocks')
    for (const client of edits.ownClients) this.noteOwnClient(client)
    Y.applyUpdate(this.doc, edits.update, RESCUED_ORIGIN)
    this.checkPending()
  }

  /**
   * A handle opened (or moved here from a reloaded copy). While at least one
   * handle with `presence` is open, the record's awareness shows the
   * client's `user`; a record that only idles in memory, or is open for a
   * read or an update, shows nobody (see {@link removeListener}).
   */
  addListener(listener: RecordListener): void {
    this.listeners.add(listener)
    if (listener.presence) this.updatePresence()
  }

  /**
   * A handle closed. When no handle that shows presence is left, the local
   * awareness state goes to null, so the others see this user leave at
   * once although the record stays in memory until it is idle long enough.
   */
  removeListener(listener: RecordListener): void {
    this.listeners.delete(listener)
    this.updatePresence()
  }

  /** Shows or takes away this user's presence after the handles changed (see {@link addListener}). */
  private updatePresence(): void {
    if (this.closed || this.parked) return
    const awareness = this.sync.awareness
    const state = awareness.getLocalState()
    const wanted = [...this.listeners].some((listener) => listener.presence)
    if (wanted && !this.showsPresence) {
      this.showsPresence = true
      const user = this.host.client.user
      if (user !== undefined && (state === null || state.user === undefined)) awareness.setLocalState({ ...state, user: { ...user } })
    } else if (!wanted && (this.showsPresence || this.listeners.size === 0)) {
      this.showsPresence = false
      if (state !== null) awareness.setLocalState(null)
    }
  }

  /** Whether `client` is one this device wrote the record with (this tab's, another tab's, or before a reload). */
  wroteWith(client: number): boolean {
    return client === this.doc.clientID || this.ownClients.has(client)
  }

  /** `client` wrote changes of this device (this tab's or another's): they count as pending until acked, also after a reload. */
  private noteOwnClient(client: number): void {
    if (this.ownClients.has(client)) return
    this.ownClients.add(client)
    this.writer.metaChanged('ownClients')
    this.sync.addOwnClients([client])
  }

  /**
   * Another tab is discarding the record's unsynced changes: from now on
   * this doc sends nothing to the relay (its sync handle is closed), writes
   * nothing to storage and shares no edits with other tabs. It stays
   * readable until the store replaces it by a copy loaded from storage and
   * closes it without writing.
   */
  park(): void {
    if (this.closed || this.parked) return
    this.parked = true
    this.tabShare.pause()
    this.writer.stop()
    this.sync.close()
  }

  /**
   * Writes the whole state again now (after a storage failure). Resolves
   * with the failure that remains — null once the record is stored again —
   * and never rejects; a failed retry is reported again (`storage-error`).
   */
  async retryStorage(): Promise<StorageError | null> {
    if (this.closed || this.parked) return null
    const failure = await this.writer.retryNow()
    return this.closed || this.parked ? null : failure
  }

  /** Resolves when queued storage operations are done. */
  async settled(): Promise<void> {
    if (!this.closed) await this.writer.settled()
  }

  /**
   * Closes the record: waits for queued writes, compacts a long log,
   * closes storage and the sync handle, destroys the doc.
   * `discard`: close at once without writing (sign-out with wipe).
   */
  async close({ discard = false }: { discard?: boolean } = {}): Promise<void> {
    if (this.closed) return
    if (!discard) {
      this.typing.flush()
      await this.writer.finish()
    }
    if (this.closed) return
    this.closed = true
    this.history.destroy()
    this.writer.stop()
    this.tabShare.stop()
    this.doc.off('update', this.onUpdate)
    this.sync.off('pending', this.onPending)
    this.sync.off('ack', this.onAck)
    this.sync.off('error', this.onSyncError)
    this.sync.off('authors', this.onAuthors)
    this.sync.off('synced', this.onSynced)
    this.sync.off('catch-up-deferred', this.onCatchUpDeferred)
    this.sync.close()
    this.listeners.clear()
    this.doc.destroy()
  }

  // ---------------------------------------------------------------------------

  private readonly onUpdate = (update: Uint8Array, origin: unknown, doc: Y.Doc, transaction: Y.Transaction): void => {
    if (this.closed) return
    if (this.parked) {
      // Dropped with this doc when the store reloads the record; the view still shows it.
      for (const listener of this.listeners) listener.change(changeSourceOf(origin, this.host.client) === 'tab' ? 'tab' : 'local')
      return
    }
    const source = changeSourceOf(origin, this.host.client)
    const local = transaction.local && source === 'local'
    let clocks: FieldClocks | null = null
    // Rescued edits come with their own notes and client ids (adoptRescued): this client wrote nothing.
    if (local && origin !== RESCUED_ORIGIN) {
      clocks = this.fieldPending.noteTransaction(doc, transaction)
      if (clocks !== null) this.writer.metaChanged('fieldClocks')
      this.noteOwnClient(doc.clientID)
    }
    if (this.sync.isSynced && source !== 'storage') {
      // Seen live: not news for the next "while you were away" summary.
      this.viewed = stateVectorOf(doc)
      this.writer.metaChanged('viewed')
    }
    if (source !== 'tab' && source !== 'storage') this.writer.queueUpdate(update)
    if (local) {
      this.tabShare.postEdit(update, clocks, this.sync.sendsLiveEdits)
      if (!isBookkeeping(origin)) this.touch()
    } else if (source === 'remote') this.keepLatestTouch()
    if (this.schemaCache === undefined) void this.schema
    if (source !== 'storage' && transaction.changed.has(historyArray(doc))) this.history.scheduleSettle()
    for (const listener of this.listeners) listener.change(source)
    this.checkPending()
    this.checkSaved()
    this.host.changed(this, false)
  }

  /** Writes `updatedAt` / `updatedBy` after a local edit, at most once per resolution. */
  private touch(): void {
    const record = this.doc.getMap<unknown>(RECORD_MAP)
    if (record.get(RecordKey.type) === undefined) return // not a record (yet)
    const now = this.host.now()
    const last = record.get(RecordKey.updatedAt)
    if (typeof last === 'number' && now - last < this.host.updatedAtResolution && now >= last) return
    this.lastTouch = Math.max(this.lastTouch, now)
    // Runs as its own transaction after this one (Yjs queues transactions started from observers).
    this.doc.transact(() => {
      record.set(RecordKey.updatedAt, now)
      record.set(RecordKey.updatedBy, this.host.userId)
    }, UPDATED_AT_ORIGIN)
  }

  /** The latest `updatedAt` this replica wrote (0: none since it opened the record). */
  private lastTouch = 0

  /**
   * Concurrent writes of `updatedAt` keep one value by client id, not the
   * latest: someone's offline edits of an hour ago could leave a record
   * sorted as if nothing happened since. When a merge leaves an older value
   * than this replica's own last write, that write is made again (only the
   * replica that wrote the later time knows it: the other value is gone).
   */
  private keepLatestTouch(): void {
    const record = this.doc.getMap<unknown>(RECORD_MAP)
    const current = record.get(RecordKey.updatedAt)
    if (this.lastTouch === 0 || typeof current !== 'number' || current >= this.lastTouch) return
    const at = this.lastTouch
    this.doc.transact(() => {
      record.set(RecordKey.updatedAt, at)
      record.set(RecordKey.updatedBy, this.host.userId)
    }, UPDATED_AT_ORIGIN)
  }

  private readonly onPending = (): void => this.checkPending()

  private readonly onAuthors = (added: AuthorInfo[]): void => {
    this.writer.metaChanged('authors')
    for (const listener of this.listeners) listener.authors(added)
  }

  private readonly onCatchUpDeferred = (relayStateVector: Uint8Array): void => this.tabShare.catchUpDeferred(relayStateVector)

  /** Synced with the relay (after opening or a reconnect): say what others changed since this device last had the record. */
  private readonly onSynced = (synced: boolean): void => {
    if (!synced || this.closed) return
    const summary = this.newHere
      ? null
      : summarizeRecord(this.doc, {
          recordId: this.id,
          authors: this.sync.authors,
          since: this.viewed,
          userId: this.host.userId,
          ownClients: this.ownClients,
          fields: readRecord(this.doc, this.id, this.schema).fields,
          schema: this.schema,
        })
    this.newHere = false
    this.viewed = stateVectorOf(this.doc)
    this.writer.metaChanged('viewed')
    if (summary === null) return
    for (const listener of this.listeners) listener.summary(summary)
    this.host.summary(this, summary)
  }

  private readonly onAck = (acked: ReadonlyMap<number, number>): void => {
    this.writer.metaChanged('acked')
    if (this.fieldPending.prune(acked)) this.writer.metaChanged('fieldClocks')
    // The relay acks only this tab's connection: the other tabs holding this tab's edits learn it from here.
    this.tabShare.postAcked(acked)
    this.checkPending()
  }

  private readonly onSyncError = (error: SyncError): void => {
    for (const listener of this.listeners) listener.error(error)
    this.host.syncError(this, error)
  }

  private checkPending(): void {
    if (this.closed) return
    const pending = this.sync.pending
    const fields = this.pendingFields
    const key = fields.join('\u0000')
    if (pending === this.lastPending && key === this.lastPendingFields) return
    const flipped = pending > 0 !== this.lastPending > 0
    if (pending === 0) this.catalogListsPending = false
    this.lastPending = pending
    this.lastPendingFields = key
    for (const listener of this.listeners) listener.pending(pending, fields)
    this.host.changed(this, flipped)
    if (flipped) this.host.stateChanged(this)
  }

  private checkSaved(): void {
    if (this.closed) return
    const saved = this.isSaved
    if (saved === this.lastSaved) return
    this.lastSaved = saved
    for (const listener of this.listeners) listener.saved(saved)
    this.host.stateChanged(this)
  }

  /** What the writer tells this record. */
  private readonly writerOwner: WriterOwner = {
    mustListPending: () => this.sync.pending > 0 && !this.catalogListsPending,
    listPending: async () => {
      await this.host.catalogStored(this)
      this.catalogListsPending = this.sync.pending > 0
    },
    writing: () => this.host.changed(this, true),
    saved: () => {
      this.tabShare.postSaved()
      this.checkSaved()
    },
    failed: (error, report) => {
      if (report) {
        for (const listener of this.listeners) listener.error(error)
        this.host.storageFailed(this, error)
      }
      this.tabShare.postSaveFailed()
      this.checkSaved()
    },
    settledDown: () => {
      this.checkSaved()
      this.host.stateChanged(this)
    },
  }
}
