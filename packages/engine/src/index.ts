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
export type { SyncClientOptions, SyncClientEvents } from './sync/SyncClient.js'
export type { DocHandle, DocHandleEvents, OpenDocOptions, UserInfo } from './sync/DocHandle.js'
export type { FetchedDoc, ListDocsOptions, RelayRequestOptions } from './sync/RelayRequests.js'
export { SyncError } from './sync/SyncError.js'
export type { BackoffOptions } from './sync/backoff.js'
export type { WebSocketLike, WebSocketConstructor } from './sync/socket.js'
export { META_MAP_NAME, DELETE_MARKER_ORIGIN } from './sync/PendingTracker.js'

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
