/**
 * Concord engine internals for the engine's own tests, the browser test page,
 * tools and the relay's HTTP API (which writes records as a client does): names that describe how records are laid out in a Y.Doc and
 * stored on the device, and the low-level history writers. Not a stable
 * API — an app imports `@concord/engine` only.
 *
 * @example
 *   import { initRecord, readRecord } from '@concord/engine/internal'
 *   doc.transact(() => initRecord(doc, ticketSchema, 'ada', Date.now())) // a record written without a store
 *   readRecord(doc, 'T-1', ticketSchema).fields.status // 'open'
 *
 * @module @concord/engine/internal
 */

// How a record lives in its Y.Doc.
export {
  FIELDS_MAP,
  TEXT_PREFIX,
  LIST_PREFIX,
  RECORD_MAP,
  RecordKey,
  initRecord,
  readRecord,
  rebaseText,
  validatePatch,
} from './model/recordDoc.js'
export type { ValidatedPatch } from './model/recordDoc.js'
export { META_MAP_NAME } from './model/metaMap.js'
export { FETCH_ORIGIN } from './model/origins.js'
export { catalogEntryOf } from './records/catalogEntry.js'

// How records and the catalog are stored on the device.
export { recordDatabaseName, catalogDatabaseName, inboxDatabaseName } from './persistence/IndexedDbStorage.js'

// The field-level history log, below `RecordHandle`.
export { HISTORY_ARRAY, DEFAULT_MAX_HISTORY, appendFieldChanges } from './history/historyLog.js'
export { readHistory } from './history/readHistory.js'
export { writeWithHistory } from './history/recordWrites.js'
export { laterValues } from './history/laterValues.js'

// Retry timing (exponential backoff with full jitter), for the relay's outgoing requests.
export { Backoff } from './sync/backoff.js'

// The presence doc of a workspace.
export { workspacePresenceDoc } from './presence/WorkspacePresence.js'
