/**
 * The relay's storage port. Every adapter (memory, SQLite, PostgreSQL…)
 * implements it and passes the contract suite in `apps/relay/test/storageContract.ts`.
 *
 * Data model per doc: at most one checkpoint (a full Yjs state produced by
 * `Y.encodeStateAsUpdate` of the relay's room doc) plus an append-only log of
 * Yjs updates, each with a sequence number that increases within the doc.
 * Loading a doc = applying the checkpoint, then every logged update in order.
 *
 * @module storage
 */

/**
 * Which user wrote with a Yjs client id in a doc. The relay binds a client id
 * to the authenticated user of the connection that first sends structs for
 * it, and refuses structs for that client id from anyone else.
 */
export interface AuthorBinding {
  clientId: number
  userId: string
  /** Display name at binding time. */
  name: string
}

/** The last time a user was seen in a workspace. */
export interface PresenceRecord {
  userId: string
  name: string
  /** ms since epoch */
  lastSeen: number
}

/** Last-seen records of one workspace (see {@link Storage.recordPresence}). */
export interface WorkspacePresence {
  workspace: string
  records: PresenceRecord[]
}

/** What `loadDoc` returns. A doc that was never stored loads as `{ checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] }`. */
export interface StoredDoc {
  /** The latest checkpoint, or null when the doc has none. */
  checkpoint: Uint8Array | null
  /** Updates appended after the checkpoint, oldest first. */
  updates: Uint8Array[]
  /** Sequence number of the last logged update (0 when the log is empty and nothing was ever logged). */
  lastSeq: number
  /** Total bytes of `updates`. */
  logBytes: number
  /** Author bindings of the doc, in no particular order. */
  authors: AuthorBinding[]
}

/** Updates of one doc inside a group commit. */
export interface DocUpdates {
  doc: string
  updates: Uint8Array[]
  /**
   * Author bindings made by these updates; stored in the same commit. A
   * binding for a client id already bound replaces the stored one: the relay
   * binds an id only when the doc has no content of it, so a stored binding
   * it replaces bound nothing (older relays bound ids announced in awareness).
   */
  authors?: AuthorBinding[]
}

/** A stored doc and the sequence number of the last update ever logged for it (0: none). */
export interface DocSeq {
  doc: string
  lastSeq: number
}

/**
 * One page of a listing: the first `limit` docs whose names sort after
 * `after` (`''`: from the start). Adapters read only that page, so a listing
 * of many docs costs one read per page. Pages follow the names' UTF-8 byte
 * order, which for the names the relay accepts (ASCII, see `validateDocName`)
 * is the JavaScript string order that every listing is sorted by.
 */
export interface ListPage {
  after: string
  /** A positive integer. */
  limit: number
}

/** Result of a group commit, per doc: the last sequence number now stored. */
export type AppendResult = Map<string, number>

/** The storage port. */
export interface Storage {
  /** Short adapter name for logs and metrics (`memory`, `sqlite`…). */
  readonly kind: string
  /** Loads a doc's checkpoint and the log appended after it. */
  loadDoc(doc: string): Promise<StoredDoc>
  /**
   * Appends the updates of one or more docs in a single atomic, durable
   * commit (group commit). Resolves only after the commit returned; rejects
   * without storing anything when it fails.
   */
  appendUpdates(batch: DocUpdates[]): Promise<AppendResult>
  /**
   * Atomically replaces the doc's checkpoint with `state` and deletes the
   * logged updates with sequence number ≤ `uptoSeq` (they are contained in
   * `state`). Updates with a larger sequence number stay.
   */
  writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void>
  /** Names of stored docs starting with `prefix`, sorted. */
  listDocs(prefix: string): Promise<string[]>
  /**
   * The same docs as {@link listDocs}, each with the sequence number of its
   * last logged update (as `loadDoc` reports it: checkpoints do not move it),
   * so a client can tell which docs changed since it last looked. With
   * `page`, only that page of them.
   */
  listDocSeqs(prefix: string, page?: ListPage): Promise<DocSeq[]>
  /**
   * Records (upserts) when users were last seen, for any number of
   * workspaces in one transaction (all or nothing); a record never moves
   * `lastSeen` back.
   */
  recordPresence(batch: readonly WorkspacePresence[]): Promise<void>
  /** Every user seen in a workspace, most recent first. */
  listPresence(workspace: string): Promise<PresenceRecord[]>
  /** Resolves when storage is reachable (used by `/readyz`). */
  ping(): Promise<void>
  /** Closes the storage. Idempotent. Calls after close reject. */
  close(): Promise<void>
}
