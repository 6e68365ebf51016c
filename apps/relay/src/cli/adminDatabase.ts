/**
 * Read access to a relay's SQLite file for the admin commands, from a
 * connection of their own next to the relay's (WAL mode lets it read while
 * the relay writes: each read is one consistent snapshot). Writes go
 * through `SqliteDatabase`, the relay's own storage code, so that the
 * commands keep the storage's invariants.
 *
 * @module cli/adminDatabase
 */
import Database from 'better-sqlite3'
import * as Y from 'yjs'
import { LAST_SEQ } from '../storage/SqliteDatabase.js'
import type { AuthorBinding } from '../storage/Storage.js'

/** Everything stored for one doc. */
export interface DocRows {
  checkpoint: { bytes: number; uptoSeq: number; updatedAt: number } | null
  /** Logged updates after the checkpoint, oldest first. */
  updates: Uint8Array[]
  logBytes: number
  lastSeq: number
  authors: AuthorBinding[]
  /** The doc's merged state (checkpoint and log) as one Yjs update. */
  state: Uint8Array
}

/** A reading connection to a relay database. */
export class AdminDatabase {
  readonly #db: Database.Database

  constructor(file: string) {
    this.#db = new Database(file, { fileMustExist: true })
    this.#db.pragma('busy_timeout = 5000')
  }

  /** The raw connection (for `VACUUM INTO`). */
  get connection(): Database.Database {
    return this.#db
  }

  /** Names of stored docs starting with `prefix`, sorted. */
  listDocs(prefix: string): string[] {
    return this.#db
      .prepare<[string], { doc: string }>('SELECT doc FROM docs WHERE doc >= ? ORDER BY doc')
      .all(prefix)
      .map(({ doc }) => doc)
      .filter((doc) => doc.startsWith(prefix))
      .sort()
  }

  /** A doc's rows from one snapshot, or null when nothing is stored under that name. */
  readDoc(doc: string): DocRows | null {
    return this.#db.transaction((): DocRows | null => {
      const lastSeq = this.#db.prepare<[string], { last_seq: number }>(`SELECT ${LAST_SEQ} AS last_seq FROM docs WHERE doc = ?`).get(doc)
      if (lastSeq === undefined) return null
      const checkpoint = this.#db
        .prepare<[string], { state: Buffer; upto_seq: number; updated_at: number }>(
          'SELECT state, upto_seq, updated_at FROM checkpoints WHERE doc = ?',
        )
        .get(doc)
      const updates = this.#db
        .prepare<[string], { data: Buffer }>('SELECT data FROM updates WHERE doc = ? ORDER BY seq')
        .all(doc)
        .map(({ data }) => new Uint8Array(data))
      const authors = this.#db
        .prepare<[string], { client_id: number; user_id: string; name: string }>(
          'SELECT client_id, user_id, name FROM authors WHERE doc = ?',
        )
        .all(doc)
        .map(({ client_id, user_id, name }) => ({ clientId: client_id, userId: user_id, name }))
      const parts = checkpoint ? [new Uint8Array(checkpoint.state), ...updates] : updates
      return {
        checkpoint: checkpoint
          ? { bytes: checkpoint.state.byteLength, uptoSeq: checkpoint.upto_seq, updatedAt: checkpoint.updated_at }
          : null,
        updates,
        logBytes: updates.reduce((sum, u) => sum + u.byteLength, 0),
        lastSeq: lastSeq.last_seq,
        authors,
        state: mergeState(parts),
      }
    })()
  }

  close(): void {
    this.#db.close()
  }
}

/** The state of a doc made of `updates`, as one update (what the relay's room holds after loading them). */
export const mergeState = (updates: readonly Uint8Array[]): Uint8Array => {
  const doc = new Y.Doc({ gc: true })
  for (const update of updates) Y.applyUpdate(doc, update)
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return state
}
