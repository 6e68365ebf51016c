/**
 * Concord engine: the public surface — what an app needs and nothing else.
 *
 * - sync: {@link SyncClient} and its {@link DocHandle}s (one socket, acks, presence);
 * - records: {@link RecordStore} and {@link RecordHandle}, the app's schemas
 *   ({@link defineSchema}, {@link field}), comments, history and summaries as
 *   read through them;
 * - local storage: the {@link StorageBackend} port and its adapters;
 * - the catalog, presence, errors and their codes;
 * - the wire protocol as the `protocol` namespace (also `@concord/engine/protocol`).
 *
 * Names the engine's own tests and tools need (doc layout constants, low-level
 * history writers, database names) are in `@concord/engine/internal`; apps do
 * not import them.
 *
 * @example
 *   import { RecordStore, SyncClient, defineSchema, field } from '@concord/engine'
 *   const noteSchema = defineSchema({ type: 'note', version: 1, title: 'title', fields: { title: field.text() } })
 *   const client = new SyncClient({ url: 'wss://sync.example.com' })
 *   const store = new RecordStore({ client, userId: 'ada', workspaceId: 'acme', schemas: [noteSchema] })
 *   const note = await store.create('note', { title: 'Hello' })
 *
 * @module @concord/engine
 */

// Sync: one connection to the relay, a handle per doc.
export { SyncClient, ConnectionStatus } from './sync/SyncClient.js'
export type { SyncClientOptions, SyncClientEvents, CatalogWatchListener } from './sync/SyncClient.js'
export type { DocHandle, DocHandleEvents, OpenDocOptions, UserInfo } from './sync/DocHandle.js'
export { FIRST_LIST_PAGE } from './sync/RelayRequests.js'
export type { FetchedDoc, ListDocsOptions, ListedDoc, RelayRequestOptions } from './sync/RelayRequests.js'
export type { BackoffOptions } from './sync/backoff.js'
export type { WebSocketLike, WebSocketConstructor } from './sync/socket.js'
export type { AuthorInfo, PresenceInfo } from './protocol/messages.js'
export type { StateVector } from './protocol/index.js'

// Records: the offline-first store and its typed handles.
export { RecordStore } from './records/RecordStore.js'
export type {
  RecordStoreOptions,
  RecordStoreEvents,
  StorageErrorEvent,
  StorageRetryResult,
  UnsyncedRecord,
  SignOutResult,
  PullOptions,
  PullResult,
} from './records/RecordStore.js'
export { RecordHandle } from './records/RecordHandle.js'
export type { RecordHandleEvents } from './records/RecordHandle.js'
export type { ChangeSource } from './model/origins.js'
export type { RecordSnapshot, ValidationProblem } from './model/recordDoc.js'
export type { DiscardResult } from './records/discard.js'
export type { StorageSpace } from './records/StorageSpace.js'
export type { EvictResult, KeptReason } from './records/evict.js'
export { MAX_COMMENT_LENGTH } from './records/comments.js'
export type { Comment, CommentActivity } from './records/comments.js'

// Schemas: how an app defines its record types.
export { FieldKind, field, defineSchema, newRecordId, recordIdSchema, SchemaRegistry } from './model/schema.js'
export type { FieldSpec, TextFieldSpec, ScalarFieldSpec, ListFieldSpec, FieldValue, FieldValues, RecordSchema } from './model/schema.js'

// Local storage: the port and its adapters.
export { IndexedDbStorage } from './persistence/IndexedDbStorage.js'
export type { IndexedDbStorageOptions } from './persistence/IndexedDbStorage.js'
export { MemoryStorage } from './persistence/MemoryStorage.js'
export type {
  StorageBackend,
  RecordStorage,
  CatalogStorage,
  CatalogScan,
  StoredRecord,
  RecordMeta,
  RecordInbox,
  SpaceEstimate,
} from './persistence/Storage.js'
export type { FieldClocks } from './model/fieldClocks.js'

// Catalog: the local list of a workspace's records.
export { Catalog } from './catalog/Catalog.js'
export type { CatalogQuery, CatalogPage, CatalogEvents } from './catalog/Catalog.js'
export type { CatalogEntry } from './model/CatalogEntry.js'
export type { KeyValueStore } from './catalog/FirstScreen.js'

// Tabs.
export type { BroadcastChannelConstructor } from './tabs/TabChannel.js'

// History and summaries, as read through a record handle or the store.
export type {
  RecordHistory,
  HistoryEntry,
  FieldHistoryEntry,
  CompactedHistoryEntry,
  Merge,
  MergeSide,
  EntryAuthor,
} from './history/readHistory.js'
export type { TextEdit } from './history/textMerge.js'
export type { CommentsSummary, FieldChangeSummary, MergeSummary, RecordSummary, SummarizeOptions, SummaryUser } from './history/summary.js'

// Presence: who views a record, who is in a workspace.
export { RecordPresence } from './presence/RecordPresence.js'
export type { Viewer, RecordPresenceEvents } from './presence/RecordPresence.js'
export { WorkspacePresence } from './presence/WorkspacePresence.js'
export type { WorkspacePerson, WorkspacePresenceOptions, WorkspacePresenceEvents, RememberedPerson } from './presence/WorkspacePresence.js'

// Errors and their codes.
export { SyncError } from './sync/SyncError.js'
export { ErrorCode, PERMANENT_ERRORS } from './protocol/index.js'
export { RecordValidationError } from './model/recordDoc.js'
export { DiscardError, DiscardRefusal } from './records/discard.js'
export { CommentError } from './records/comments.js'
export { StorageError, StorageFailure } from './persistence/Storage.js'

/** The wire protocol (message types, codes, encoders, state-vector arithmetic); also at `@concord/engine/protocol`. */
export * as protocol from './protocol/index.js'
