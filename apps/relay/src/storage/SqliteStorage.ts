/**
 * SQLite storage adapter on better-sqlite3: one file, one connection, the
 * relay's default storage.
 *
 * Schema (version 2, kept in `PRAGMA user_version`; version 1 files are
 * upgraded in place by adding the tables of version 2):
 *
 * ```sql
 * docs        (doc TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID
 * checkpoints (doc TEXT PRIMARY KEY, state BLOB NOT NULL, upto_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL)
 * updates     (doc TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq)) WITHOUT ROWID
 * authors     (doc TEXT NOT NULL, client_id INTEGER NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (doc, client_id)) WITHOUT ROWID
 * presence    (workspace TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (workspace, user_id)) WITHOUT ROWID
 * ```
 *
 * - `docs` has one row per stored doc. It is the source of `listDocs` and
 *   holds the last sequence number ever given out, so sequence numbers never
 *   go back, even after a checkpoint deleted every logged update.
 * - `checkpoints` holds at most one full Yjs state per doc and the sequence
 *   number it covers. States can be large, so it stays a rowid table (big
 *   rows do not bloat the primary-key b-tree).
 * - `updates` is the append-only log, clustered by `(doc, seq)`: loading a
 *   doc is one range scan, and a checkpoint deletes a contiguous range.
 *   Yjs updates are mostly small (keystrokes, tens of bytes), which is where
 *   `WITHOUT ROWID` pays; the occasional big update just overflows.
 *
 * Durability: WAL journal with `synchronous = FULL` by default, so a commit
 * that returned survives kill -9 and power loss. `synchronous: 'normal'`
 * survives a process crash but may lose the last commits on power loss.
 * `appendUpdates` commits a whole batch of docs in one transaction (group
 * commit: one fsync for many updates).
 *
 * better-sqlite3 is synchronous; the methods are `async` so that every
 * failure (including "storage is closed") rejects the returned promise
 * instead of throwing.
 *
 * @example
 * ```ts
 * const storage = SqliteStorage.open('/var/lib/concord/concord.sqlite')
 * const lastSeqs = await storage.appendUpdates([{ doc: 'notes', updates: [update] }])
 * ```
 *
 * @module storage/SqliteStorage
 */

import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import type { AppendResult, DocSeq, DocUpdates, PresenceRecord, Storage, StoredDoc } from './Storage.js'
import { assertBatch, assertBytes, assertCheckpointSeq, assertDocName, assertPresence, closedError } from './validation.js'

/** Options of `SqliteStorage`. */
export interface SqliteStorageOptions {
  /**
   * `'full'` (default): a returned commit survives power loss.
   * `'normal'`: faster; survives a process crash, may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal'
  /** How long a statement waits for a lock held by another connection before failing with `SQLITE_BUSY`. Default 5000 ms. */
  busyTimeoutMs?: number
}

/** The schema version this code writes and understands. */
export const SQLITE_SCHEMA_VERSION = 2

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS docs (
    doc TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS checkpoints (
    doc TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    upto_seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS updates (
    doc TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
  ) WITHOUT ROWID;
`

/** Tables added in schema version 2. */
const SCHEMA_V2 = `
  CREATE TABLE IF NOT EXISTS authors (
    doc TEXT NOT NULL,
    client_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (doc, client_id)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS presence (
    workspace TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (workspace, user_id)
  ) WITHOUT ROWID;
`

/** better-sqlite3 returns a fresh `Buffer` per BLOB; expose it as a plain `Uint8Array` without copying. */
const toBytes = (buf: Buffer): Uint8Array => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)

/** Prepared statements, created once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    lastSeq: db.prepare<[string], { last_seq: number }>('SELECT last_seq FROM docs WHERE doc = ?'),
    setLastSeq: db.prepare<[string, number]>(
      'INSERT INTO docs (doc, last_seq) VALUES (?, ?) ON CONFLICT (doc) DO UPDATE SET last_seq = excluded.last_seq',
    ),
    ensureDoc: db.prepare<[string]>('INSERT OR IGNORE INTO docs (doc, last_seq) VALUES (?, 0)'),
    insertUpdate: db.prepare<[string, number, Uint8Array]>('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)'),
    selectUpdates: db.prepare<[string], { data: Buffer }>('SELECT data FROM updates WHERE doc = ? ORDER BY seq'),
    deleteUpdatesUpTo: db.prepare<[string, number]>('DELETE FROM updates WHERE doc = ? AND seq <= ?'),
    selectCheckpoint: db.prepare<[string], { state: Buffer; upto_seq: number }>('SELECT state, upto_seq FROM checkpoints WHERE doc = ?'),
    checkpointSeq: db.prepare<[string], { upto_seq: number }>('SELECT upto_seq FROM checkpoints WHERE doc = ?'),
    upsertCheckpoint: db.prepare<[string, Uint8Array, number, number]>(
      `INSERT INTO checkpoints (doc, state, upto_seq, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (doc) DO UPDATE SET state = excluded.state, upto_seq = excluded.upto_seq, updated_at = excluded.updated_at`,
    ),
    // Docs sort by UTF-8 bytes, so the names starting with a prefix are contiguous from the prefix on.
    docsFrom: db.prepare<[string], { doc: string }>('SELECT doc FROM docs WHERE doc >= ? ORDER BY doc'),
    docSeqsFrom: db.prepare<[string], { doc: string; last_seq: number }>('SELECT doc, last_seq FROM docs WHERE doc >= ? ORDER BY doc'),
    insertAuthor: db.prepare<[string, number, string, string]>(
      'INSERT OR REPLACE INTO authors (doc, client_id, user_id, name) VALUES (?, ?, ?, ?)',
    ),
    selectAuthors: db.prepare<[string], { client_id: number; user_id: string; name: string }>(
      'SELECT client_id, user_id, name FROM authors WHERE doc = ?',
    ),
    upsertPresence: db.prepare<[string, string, string, number]>(
      `INSERT INTO presence (workspace, user_id, name, last_seen) VALUES (?, ?, ?, ?)
       ON CONFLICT (workspace, user_id) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen
       WHERE excluded.last_seen >= presence.last_seen`,
    ),
    selectPresence: db.prepare<[string], { user_id: string; name: string; last_seen: number }>(
      'SELECT user_id, name, last_seen FROM presence WHERE workspace = ? ORDER BY last_seen DESC',
    ),
    ping: db.prepare('SELECT 1'),
  }
}

/** Creates the schema on a new file, checks the version of an existing one. */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new Error(`schema version ${version} is newer than this relay understands (${SQLITE_SCHEMA_VERSION})`)
    }
    if (version < 1) db.exec(SCHEMA)
    if (version < 2) db.exec(SCHEMA_V2)
    if (version < SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`)
  }).immediate()
}

/** Opens the file and configures the connection; throws an `Error` naming the file when that fails. */
function openDatabase(file: string, options: SqliteStorageOptions): Database.Database {
  const synchronous = options.synchronous ?? 'full'
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new TypeError(`synchronous must be 'full' or 'normal', got ${String(synchronous)}`)
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TypeError(`busyTimeoutMs must be a non-negative integer, got ${String(busyTimeoutMs)}`)
  }
  let db: Database.Database | undefined
  try {
    const inMemory = file === ':memory:'
    if (!inMemory) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
    db = new Database(file)
    db.pragma(`busy_timeout = ${busyTimeoutMs}`)
    const mode = db.pragma('journal_mode = WAL', { simple: true })
    if (!inMemory && mode !== 'wal') throw new Error(`could not enable WAL journal mode (got ${String(mode)})`)
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`)
    migrate(db)
    return db
  } catch (cause) {
    db?.close()
    const reason = cause instanceof Error ? cause.message : String(cause)
    throw new Error(`cannot open SQLite storage at ${file}: ${reason}`, { cause })
  }
}

/** A `Storage` in one SQLite file. */
export class SqliteStorage implements Storage {
  /** Adapter name for logs and metrics. */
  readonly kind = 'sqlite'
  /** Path of the database file. */
  readonly file: string
  #db: Database.Database | null
  readonly #stmt: ReturnType<typeof prepareStatements>

  /**
   * Opens (creating if needed, with its parent directory) the database file.
   * Throws an `Error` naming the file when it cannot be opened, is not a
   * database, or has a newer schema.
   */
  constructor(file: string, options: SqliteStorageOptions = {}) {
    this.file = file
    this.#db = openDatabase(file, options)
    this.#stmt = prepareStatements(this.#db)
  }

  /** Same as `new SqliteStorage(file, options)`. */
  static open(file: string, options?: SqliteStorageOptions): SqliteStorage {
    return new SqliteStorage(file, options)
  }

  /** Loads a doc's checkpoint and the log appended after it, from one consistent snapshot. */
  async loadDoc(doc: string): Promise<StoredDoc> {
    const db = this.#open()
    assertDocName(doc)
    return db.transaction((): StoredDoc => {
      const checkpoint = this.#stmt.selectCheckpoint.get(doc)
      const lastSeq = this.#stmt.lastSeq.get(doc)?.last_seq ?? 0
      let logBytes = 0
      const updates = this.#stmt.selectUpdates.all(doc).map(({ data }) => {
        logBytes += data.byteLength
        return toBytes(data)
      })
      const authors = this.#stmt.selectAuthors
        .all(doc)
        .map(({ client_id, user_id, name }) => ({ clientId: client_id, userId: user_id, name }))
      return { checkpoint: checkpoint === undefined ? null : toBytes(checkpoint.state), updates, lastSeq, logBytes, authors }
    })()
  }

  /** Appends the updates of several docs in one transaction (one durable commit). */
  async appendUpdates(batch: DocUpdates[]): Promise<AppendResult> {
    const db = this.#open()
    assertBatch(batch)
    const result: AppendResult = new Map()
    if (batch.length === 0) return result
    db.transaction(() => {
      for (const { doc, updates, authors } of batch) {
        let seq = this.#stmt.lastSeq.get(doc)?.last_seq ?? 0
        for (const data of updates) this.#stmt.insertUpdate.run(doc, ++seq, data)
        if (updates.length > 0) this.#stmt.setLastSeq.run(doc, seq)
        if (authors !== undefined && authors.length > 0) {
          this.#stmt.ensureDoc.run(doc)
          for (const a of authors) this.#stmt.insertAuthor.run(doc, a.clientId, a.userId, a.name)
        }
        result.set(doc, seq)
      }
    }).immediate()
    return result
  }

  /** Replaces the doc's checkpoint and deletes the log entries with seq ≤ `uptoSeq`, in one transaction. */
  async writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void> {
    const db = this.#open()
    assertDocName(doc)
    assertBytes(state, `checkpoint state of doc "${doc}"`)
    db.transaction(() => {
      const lastSeq = this.#stmt.lastSeq.get(doc)?.last_seq ?? 0
      const checkpointSeq = this.#stmt.checkpointSeq.get(doc)?.upto_seq ?? 0
      assertCheckpointSeq(doc, uptoSeq, checkpointSeq, lastSeq)
      this.#stmt.ensureDoc.run(doc)
      this.#stmt.upsertCheckpoint.run(doc, state, uptoSeq, Date.now())
      this.#stmt.deleteUpdatesUpTo.run(doc, uptoSeq)
    }).immediate()
  }

  /** Names of stored docs starting with `prefix` (taken literally, no wildcards), sorted. */
  async listDocs(prefix: string): Promise<string[]> {
    this.#open()
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    const docs: string[] = []
    for (const { doc } of this.#stmt.docsFrom.iterate(prefix)) {
      if (!doc.startsWith(prefix)) break
      docs.push(doc)
    }
    // Same order as every other adapter: JavaScript string order (SQLite sorts by UTF-8 bytes).
    return docs.sort()
  }

  async listDocSeqs(prefix: string): Promise<DocSeq[]> {
    this.#open()
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    const docs: DocSeq[] = []
    for (const { doc, last_seq } of this.#stmt.docSeqsFrom.iterate(prefix)) {
      if (!doc.startsWith(prefix)) break
      docs.push({ doc, lastSeq: last_seq })
    }
    // Same order as every other adapter: JavaScript string order (SQLite sorts by UTF-8 bytes).
    return docs.sort((a, b) => (a.doc < b.doc ? -1 : a.doc > b.doc ? 1 : 0))
  }

  /** Upserts last-seen records in one transaction; `lastSeen` never moves back. */
  async recordPresence(workspace: string, records: PresenceRecord[]): Promise<void> {
    const db = this.#open()
    assertPresence(workspace, records)
    if (records.length === 0) return
    db.transaction(() => {
      for (const r of records) this.#stmt.upsertPresence.run(workspace, r.userId, r.name, Math.round(r.lastSeen))
    }).immediate()
  }

  /** Users seen in a workspace, most recent first. */
  async listPresence(workspace: string): Promise<PresenceRecord[]> {
    this.#open()
    return this.#stmt.selectPresence.all(workspace).map(({ user_id, name, last_seen }) => ({ userId: user_id, name, lastSeen: last_seen }))
  }

  /** Resolves when a trivial query succeeds. */
  async ping(): Promise<void> {
    this.#open()
    this.#stmt.ping.get()
  }

  /** Closes the connection (checkpointing the WAL). Idempotent; later calls reject. */
  async close(): Promise<void> {
    const db = this.#db
    this.#db = null
    db?.close()
  }

  #open(): Database.Database {
    if (this.#db === null) throw closedError(this.kind)
    return this.#db
  }
}
