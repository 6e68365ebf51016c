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

/** What `loadDoc` returns. A doc that was never stored loads as `{ checkpoint: null, updates: [], lastSeq: 0, logBytes: 0 }`. */
export interface StoredDoc {
  /** The latest checkpoint, or null when the doc has none. */
  checkpoint: Uint8Array | null
  /** Updates appended after the checkpoint, oldest first. */
  updates: Uint8Array[]
  /** Sequence number of the last logged update (0 when the log is empty and nothing was ever logged). */
  lastSeq: number
  /** Total bytes of `updates`. */
  logBytes: number
}

/** Updates of one doc inside a group commit. */
export interface DocUpdates {
  doc: string
  updates: Uint8Array[]
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
  /** Resolves when storage is reachable (used by `/readyz`). */
  ping(): Promise<void>
  /** Closes the storage. Idempotent. Calls after close reject. */
  close(): Promise<void>
}
