/**
 * The options and events of a {@link DocHandle} (`client.open(name, options)`):
 * its public contract, kept apart from the class so the class reads as
 * behaviour. All are exported from sync/DocHandle as well.
 *
 * @module sync/docHandleTypes
 */
import type * as Y from 'yjs'
import type { AuthorInfo } from '../protocol/messages.js'
import type { SyncError } from './SyncError.js'

/** Who is editing: put into the awareness state field `user`. */
export interface UserInfo {
  /** Stable user id. */
  id: string
  /** Display name. */
  name: string
  /** Display colour, e.g. `'#30bced'`. */
  color?: string
}

/** Options of `client.open(name, options)`. */
export interface OpenDocOptions {
  /**
   * The Y.Doc to sync, e.g. one already loaded from IndexedDB. The handle
   * never destroys a doc passed in. Default: a new Y.Doc, destroyed when the
   * handle closes.
   */
  doc?: Y.Doc
  /**
   * Encoded state vector the relay is already known to have stored (as
   * received in an earlier `ack` event and persisted by the caller), so the
   * pending count is right before the first ack of this session arrives.
   * Default: nothing acked, i.e. every own change counts as pending.
   */
  ackedStateVector?: Uint8Array
  /**
   * Yjs client ids this device wrote the doc with in earlier sessions or
   * other tabs (persisted by the caller from `DocHandle.ownClients`): only
   * their changes count as pending; changes of other client ids came from
   * the relay and are pending only for their author. Client ids of updates
   * applied later (other than from the relay or a `skipSendOrigins` origin)
   * are added as they come. Default: every client id the doc holds at
   * `open`, i.e. everything not acked counts — except a client id the relay
   * then sends more changes of (its writer is elsewhere).
   */
  ownClients?: Iterable<number>
  /**
   * Transaction origins whose updates are not sent to the relay as they
   * happen, because something else sends them: e.g. updates another tab of
   * the same user made (that tab sends its own edits). Their client ids
   * count as pending only once named with {@link DocHandle.addOwnClients};
   * then they go out in the state-vector exchange after every (re)subscribe
   * and with {@link DocHandle.resendPending}.
   */
  skipSendOrigins?: Iterable<unknown>
  /**
   * Whether this handle answers the relay's sync step 1 with what the relay
   * lacks (the catch-up after every (re)subscribe); asked each time a step 1
   * arrives. Default: always. Return false when another party sends the
   * catch-up for this doc — e.g. the one tab of the same user that holds the
   * outbox duty, so changes held by several tabs are not sent once per tab.
   * An unanswered step 1 is reported with the `catch-up-deferred` event;
   * until the relay has caught up (nothing pending), local edits then wait
   * in the doc instead of going out (see {@link DocHandle.sendsLiveEdits}).
   */
  sendsCatchUp?: () => boolean
  /**
   * Author bindings known from an earlier session (persisted by the caller
   * from `authors` events), so attribution works offline and after a reload.
   */
  authors?: readonly AuthorInfo[]
  /**
   * Whether the client's `user` goes into this doc's awareness at open, so
   * others see this client present in the doc. Default: true. With false
   * the local state stays empty — nothing is sent — until the app sets
   * one; the record store opens records this way and shows presence only
   * while a handle of the record is open.
   */
  presence?: boolean
}

/** Events of a {@link DocHandle}. */
export interface DocHandleEvents {
  /** The pending count changed. */
  pending: (count: number) => void
  /**
   * `isSynced` changed: `true` when the relay's sync step 2 arrived on the
   * current connection, `false` on disconnect, permanent error or close.
   */
  synced: (isSynced: boolean) => void
  /** The relay reported an error for this doc (or the client could not apply a message). */
  error: (error: SyncError) => void
  /** The relay acknowledged durable storage; the argument is the merged acked state vector. */
  ack: (ackedStateVector: ReadonlyMap<number, number>) => void
  /**
   * The relay sent author bindings (Yjs client id → user) this handle did
   * not know yet; the argument holds only the new or changed ones.
   */
  authors: (added: AuthorInfo[]) => void
  /**
   * The relay's sync step 1 arrived and was left unanswered
   * (`sendsCatchUp` returned false); the argument is the relay's encoded
   * state vector, for whoever sends the catch-up ({@link DocHandle.catchUp}).
   */
  'catch-up-deferred': (relayStateVector: Uint8Array) => void
}
