/**
 * Concord engine: the public surface.
 *
 * @example
 *   import { SyncClient } from '@concord/engine'
 *   const client = new SyncClient({ url: 'wss://sync.example.com' })
 *   const handle = client.open('acme/T-1')
 *
 * @module @concord/engine
 */
export { SyncClient, ConnectionStatus } from './sync/SyncClient.js'
export type { SyncClientOptions, SyncClientEvents, CatalogWatchListener } from './sync/SyncClient.js'
export type { DocHandle, DocHandleEvents, OpenDocOptions, UserInfo } from './sync/DocHandle.js'
export type { FetchedDoc, ListDocsOptions, RelayRequestOptions } from './sync/RelayRequests.js'
export { SyncError } from './sync/SyncError.js'
export type { BackoffOptions } from './sync/backoff.js'
export type { WebSocketLike, WebSocketConstructor } from './sync/socket.js'
export { META_MAP_NAME } from './model/metaMap.js'

// Records: schemas, typed record docs, the offline-first store.
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
export { DiscardError, DiscardRefusal } from './records/discard.js'
export type { DiscardResult } from './records/discard.js'
export { RecordHandle } from './records/RecordHandle.js'
export type { RecordHandleEvents } from './records/RecordHandle.js'
export {
  STORAGE_ORIGIN,
  FETCH_ORIGIN,
  UPDATED_AT_ORIGIN,
  RECORD_WRITE_ORIGIN,
  TYPING_HISTORY_ORIGIN,
  TAB_ORIGIN,
  DELETE_MARKER_ORIGIN,
  isConcordOrigin,
  changeSourceOf,
} from './model/origins.js'
export type { ChangeSource, ConcordOrigin, OriginSource } from './model/origins.js'
export {
  FieldKind,
  field,
  defineSchema,
  projectSchema,
  ticketSchema,
  newRecordId,
  recordIdSchema,
  SchemaRegistry,
} from './model/schema.js'
export type {
  FieldSpec,
  TextFieldSpec,
  ScalarFieldSpec,
  ListFieldSpec,
  FieldValue,
  FieldValues,
  RecordSchema,
  TicketFields,
  ProjectFields,
} from './model/schema.js'
export {
  RecordValidationError,
  RECORD_MAP,
  FIELDS_MAP,
  TEXT_PREFIX,
  LIST_PREFIX,
  COMMENTS_ARRAY,
  readRecord,
  initRecord,
  isBlank,
} from './model/recordDoc.js'
export { CommentError, MAX_COMMENT_LENGTH, readComments, commentActivity } from './records/comments.js'
export type { Comment, CommentActivity, StoredCommentEvent } from './records/comments.js'
export { catalogEntryOf } from './records/catalogEntry.js'
export type { RecordSnapshot, ValidationProblem } from './model/recordDoc.js'

// Local storage: the port and its adapters.
export { IndexedDbStorage, databasePrefix, recordDatabaseName, catalogDatabaseName } from './persistence/IndexedDbStorage.js'
export type { IndexedDbStorageOptions } from './persistence/IndexedDbStorage.js'
export { MemoryStorage } from './persistence/MemoryStorage.js'
export { StorageError, StorageFailure } from './persistence/Storage.js'
export type { StorageBackend, RecordStorage, CatalogStorage, CatalogScan, StoredRecord, RecordMeta } from './persistence/Storage.js'

// Catalog.
export { Catalog } from './catalog/Catalog.js'
export type { CatalogQuery, CatalogPage, CatalogEvents } from './catalog/Catalog.js'
export type { CatalogEntry } from './model/CatalogEntry.js'
export { FIRST_SCREEN_SIZE } from './catalog/FirstScreen.js'
export type { KeyValueStore } from './catalog/FirstScreen.js'

// Tabs.
export type { BroadcastChannelConstructor } from './tabs/TabChannel.js'

/** The wire protocol (message types, codes, encoders, state-vector arithmetic); also at `@concord/engine/protocol`. */
export * as protocol from './protocol/index.js'
export {
  ErrorCode,
  PERMANENT_ERRORS,
  MUX_PATH,
  MAX_DOC_NAME_LENGTH,
  validateDocName,
  countMissing,
  type StateVector,
} from './protocol/index.js'

// History: field-level merge history, reconnect summaries.
export {
  HISTORY_ARRAY,
  DEFAULT_MAX_HISTORY,
  appendFieldChanges,
  compactHistory,
  locatedEntries,
} from './history/historyLog.js'
export type { StoredEntry, FieldChange, AppendOptions } from './history/historyLog.js'
export { readHistory } from './history/readHistory.js'
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
export { writeWithHistory } from './history/recordWrites.js'
export { summarizeSince } from './history/summary.js'
export type { FieldChangeSummary, MergeSummary, RecordSummary, SummarizeOptions, SummaryUser } from './history/summary.js'

// Presence.
export { RecordPresence, EDITING_FIELD } from './presence/RecordPresence.js'
export type { Viewer, RecordPresenceEvents } from './presence/RecordPresence.js'
export { WorkspacePresence, workspacePresenceDoc } from './presence/WorkspacePresence.js'
export type { WorkspacePerson, WorkspacePresenceOptions, WorkspacePresenceEvents, RememberedPerson } from './presence/WorkspacePresence.js'
export type { AuthorInfo, PresenceInfo } from './protocol/messages.js'
