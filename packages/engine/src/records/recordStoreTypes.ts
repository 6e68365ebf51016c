/**
 * The options, events and results of a `RecordStore` (re-exported by
 * `records/RecordStore`, where apps import them from).
 *
 * @module records/recordStoreTypes
 */
import type { SyncClient } from '../sync/SyncClient.js'
import type { SyncError } from '../sync/SyncError.js'
import type { KeyValueStore } from '../catalog/FirstScreen.js'
import type { StorageBackend, StorageError, StorageFailure } from '../persistence/Storage.js'
import type { BroadcastChannelConstructor } from '../tabs/TabChannel.js'
import type { RecordSummary } from '../history/summary.js'
import type { RecordSchema } from '../model/schema.js'
import type { StorageSpace } from './StorageSpace.js'

/** Options of `RecordStore`. */
export interface RecordStoreOptions {
  /** The one sync client of the app; every record doc syncs through it. */
  client: SyncClient
  /** The signed-in user: partitions local databases and is written as `createdBy` / `updatedBy`. */
  userId: string
  /** The workspace; record docs are `<workspaceId>/<recordId>`. A doc-name segment. */
  workspaceId: string
  /**
   * Where records live on this device. Default: `IndexedDbStorage`
   * (falls back to memory with a `storage-error` when IndexedDB is unavailable).
   */
  storage?: StorageBackend
  /** IndexedDB factory for the default storage (fake-indexeddb in Node tests; null: none). */
  indexedDB?: IDBFactory | null
  /** The record types this store knows (see `defineSchema`); the engine has no built-in ones. */
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
   * Where edits not stored yet are kept while the page goes, for the next
   * start to take over (see `records/UnsavedRescue`). Default: the browser's
   * `localStorage` when records are stored in IndexedDB; `null` turns it off.
   */
  unsavedRescue?: KeyValueStore | null
  /**
   * A live catalog: the store watches the workspace on the relay
   * (`client.watchCatalog`) and fetches each record others changed as soon as
   * the relay stored the change, so lists show records others create, edit,
   * archive or delete within a second, without polling. After every
   * (re)connect it catches up with `store.pull()`. Default false
   * (call `pull()` yourself).
   */
  live?: boolean
  /**
   * Where the offset of this device's clock from the relay's is kept between
   * starts (see `store.now()`). Default: the browser's `localStorage` when
   * records are stored in IndexedDB; `null` turns it off.
   */
  clockOffsetCache?: KeyValueStore | null
  /** Clock, for tests. Default `client.relayTime` (this device's clock corrected to the relay's). */
  now?: () => number
  /**
   * Starts the timer after which this tab writes the edits of another tab
   * that their author has not confirmed as saved (`TAB_SAVE_FALLBACK_MS`,
   * 2 s); returns its cancel function. For tests. Default: `setTimeout`.
   */
  tabSaveTimer?: (write: () => void, delayMs: number) => () => void
  /**
   * Share of the browser's quota for the site from which the storage space
   * counts as low (`store.storageSpace.low`, the `storage-space` event): the
   * app warns before saving fails. Default 0.8.
   */
  storageWarnAt?: number
  /** Fewest milliseconds between two checks of the storage space after changes were stored. Default 10 000. */
  storageCheckMs?: number
  /**
   * When the storage space runs low, remove records nobody changed or opened
   * here for `evictAfterMs` from this device, least recently used first
   * (only records whose every change is on the relay and that no tab has
   * open; `store.evict`). Default true.
   */
  evictUnused?: boolean
  /** How long a record nobody changed or opened here counts as used. Default 30 days. */
  evictAfterMs?: number
  /**
   * This user may only read the workspace (the relay refuses its writes): the
   * store writes nothing by itself — merges of concurrent changes are settled
   * by writers' devices, not this one, whose settlement the relay would
   * refuse. Default false.
   */
  readOnly?: boolean
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

/** Result of `store.retryStorage()`. */
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

/** Result of `store.signOut()`. */
export type SignOutResult =
  { signedOut: true; wiped: boolean; error?: StorageError } | { signedOut: false; reason: 'unsynced'; unsynced: UnsyncedRecord[] }

/** Options of `store.pull()`. */
export interface PullOptions {
  /**
   * Fetches in flight at once (pipelined over the socket). Default 64. A
   * record bound for the storage's inbox frees its slot once fetched (up to
   * 1,000 wait there to be stored, many per transaction); one stored in a
   * database of its own, once stored.
   */
  concurrency?: number
  signal?: AbortSignal
  /** Called after each record; `total`: the records listed so far (it grows while the relay's list comes in pages). */
  onProgress?: (done: number, total: number) => void
  /**
   * Emit a `summary` ("while you were away…") for every fetched record
   * others changed since this device last had it — and for records new to
   * this device, unless the catalog was empty (a first pull on a new device
   * brings everything; that is not news). Default false: the records are
   * still marked as had (a later summary does not repeat what this pull
   * brought), e.g. for pulls while online that keep the list fresh.
   */
  summarize?: boolean
}

/** Result of `store.pull()`. */
export interface PullResult {
  /** Records the relay listed. */
  listed: number
  /** Records fetched (the rest were open, and sync by themselves, or unchanged). */
  fetched: number
  /**
   * Records not fetched because the relay stored no change of them since
   * this device last fetched them (their change sequence is the one it
   * remembers; see `CatalogEntry.relaySeq`). Always 0 on a new device.
   */
  unchanged: number
  /** Records whose local copy changed. */
  changed: number
  failed: Array<{ id: string; error: Error }>
  /** With `summarize`: the summaries emitted, in the order they were. */
  summaries: RecordSummary[]
}

/** Events of a `RecordStore`. */
export interface RecordStoreEvents {
  /** The workspace's pending total changed (sum over all records, open or not). */
  pending: (total: number) => void
  /** Catalog entries changed (ids). Re-run list queries. */
  catalog: (ids: string[]) => void
  /** With `live`: the catalog caught up with the relay for the first time since the store opened (`RecordStore.caughtUp`). */
  'caught-up': () => void
  /** Local storage failed; the store keeps working in memory. */
  'storage-error': (event: StorageErrorEvent) => void
  /** A new reading of this device's storage space (`RecordStore.storageSpace`): the first, `low` or `persisted` changed, or the usage moved. */
  'storage-space': (space: StorageSpace) => void
  /** Records were removed from this device because the storage space ran low (`store.evict`); their entries say `evicted`. */
  evicted: (ids: string[]) => void
  /** A record's sync error (e.g. permission denied). */
  'sync-error': (error: SyncError, recordId: string) => void
  /** "While you were away…": what others changed in a record since this device last saw it (after it synced). */
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
