/**
 * One better-sqlite3 connection to the relay's SQLite file, with the schema
 * and the synchronous operations behind `SqliteStorage`. It runs inside the
 * storage worker (`sqliteWorker.ts`), which writes; on the main thread,
 * `SqliteStorage` opens one to check the file before starting the worker and
 * keeps it to read loads ({@link SqliteDatabase.readOnly}).
 *
 * Schema (version 3, kept in `PRAGMA user_version`; older files are upgraded
 * in place: version 1 by adding the tables of version 2, version 2 by
 * recording the new version — its rows already mean what version 3's do):
 *
 * ```sql
 * docs        (doc TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID
 * checkpoints (doc TEXT PRIMARY KEY, state BLOB NOT NULL, upto_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL)
 * updates     (doc TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq)) WITHOUT ROWID
 * authors     (doc TEXT NOT NULL, client_id INTEGER NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (doc, client_id)) WITHOUT ROWID
 * presence    (workspace TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (workspace, user_id)) WITHOUT ROWID
 * ```
 *
 * - `docs` has one row per stored doc. It is the source of `listDocs`, and
 *   its `last_seq` is a floor: a doc's last sequence number is the larger of
 *   it and the highest `seq` in the doc's log (read from the log's primary
 *   key, one seek). An append therefore writes only the log (the `docs` row
 *   is written once, when the doc is created: a third fewer WAL pages per
 *   commit than moving `last_seq` on every append), and a checkpoint, which
 *   deletes log entries, first records the last number in `last_seq`, so
 *   sequence numbers never go back, even after every logged update is gone.
 *   (In version 2 every append moved `last_seq`; a version 2 relay would
 *   hand out used numbers on a version 3 file, and it refuses one.)
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
 * `appendBatches` stores several group commits in one transaction (one
 * fsync for all of them).
 *
 * Arguments are not validated here: `SqliteStorage` checks them on the main
 * thread before they cross to the worker.
 *
 * @module storage/SqliteDatabase
 */

import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import type { AppendResult, DocSeq, DocUpdates, ListPage, PresenceRecord, StoredDoc, WorkspacePresence } from './Storage.js'
import { unframeLog } from './framedLog.js'
import { assertCheckpointSeq } from './validation.js'

/** How the connection is configured (also options of `SqliteStorage`). */
export interface SqliteConnectionOptions {
  /**
   * `'full'` (default): a returned commit survives power loss.
   * `'normal'`: faster; survives a process crash, may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal'
  /** How long a statement waits for a lock held by another connection before failing with `SQLITE_BUSY`. Default 5000 ms. */
  busyTimeoutMs?: number
  /**
   * Most memory the connection's page cache holds, MiB (SQLite's
   * `cache_size`). Default {@link DEFAULT_SQLITE_CACHE_MB}. The cache fills
   * as pages are read and written and then stays at this size, so it is
   * part of the relay's steady memory, not growth.
   */
  cacheMb?: number
}

/** Default size of a connection's page cache, MiB: better-sqlite3's own default (`SQLITE_DEFAULT_CACHE_SIZE=-16000`), made explicit. */
export const DEFAULT_SQLITE_CACHE_MB = 16

/** The schema version this code writes and understands. */
export const SQLITE_SCHEMA_VERSION = 3

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

/**
 * A doc's log as one BLOB of frames (storage/framedLog: each row's sequence
 * number and length in bytes, then its bytes), or null when the SQLite
 * library lacks `unhex` (3.41) or `octet_length` (3.43) — better-sqlite3
 * bundles a newer one, but it can be built against the system's. The log is
 * then read row by row.
 *
 * Concatenation goes through SQLite's text type, which keeps a BLOB's bytes
 * as they are only in a UTF-8 database: `SqliteDatabase` checks the encoding.
 * No ORDER BY: sorting in the aggregate costs a temporary b-tree (~1 ms for
 * 10,000 rows), the scan of the primary key yields the rows in order anyway,
 * and `unframeLog` checks.
 */
function prepareFramedLog(db: Database.Database): Database.Statement<[string], Buffer | null> | null {
  try {
    return db
      .prepare<[string], Buffer | null>(
        "SELECT CAST(group_concat(unhex(printf('%016X%08X', seq, octet_length(data))) || data, '') AS BLOB) FROM updates WHERE doc = ?",
      )
      .pluck()
  } catch (error) {
    if (/no such function/.test(String((error as Error | null)?.message))) return null
    throw error
  }
}

/**
 * A doc's last sequence number as an expression over its `docs` row: the
 * floor kept there or the highest `seq` of its log, whichever is larger
 * (`max(seq)` over the primary key's `(doc, seq)` prefix is one seek).
 */
export const LAST_SEQ = 'max(docs.last_seq, coalesce((SELECT max(u.seq) FROM updates u WHERE u.doc = docs.doc), 0))'

/** Prepared statements, created once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    // a stored doc's last sequence number (see the schema above); no row for a doc never stored
    lastSeq: db.prepare<[string], { last_seq: number }>(`SELECT ${LAST_SEQ} AS last_seq FROM docs WHERE doc = ?`),
    setLastSeq: db.prepare<[string, number]>(
      'INSERT INTO docs (doc, last_seq) VALUES (?, ?) ON CONFLICT (doc) DO UPDATE SET last_seq = excluded.last_seq',
    ),
    ensureDoc: db.prepare<[string]>('INSERT OR IGNORE INTO docs (doc, last_seq) VALUES (?, 0)'),
    insertUpdate: db.prepare<[string, number, Uint8Array]>('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)'),
    // plucked: each row is its Buffer, not an object holding it (a 10,000-row log reads in ~4 ms instead of 7–19)
    selectUpdates: db.prepare<[string], Buffer>('SELECT data FROM updates WHERE doc = ? ORDER BY seq').pluck(),
    // The same log as one BLOB of frames: see `prepareFramedLog`.
    selectFramedLog: prepareFramedLog(db),
    deleteUpdatesUpTo: db.prepare<[string, number]>('DELETE FROM updates WHERE doc = ? AND seq <= ?'),
    selectCheckpoint: db.prepare<[string], { state: Buffer; upto_seq: number }>('SELECT state, upto_seq FROM checkpoints WHERE doc = ?'),
    checkpointSeq: db.prepare<[string], { upto_seq: number }>('SELECT upto_seq FROM checkpoints WHERE doc = ?'),
    upsertCheckpoint: db.prepare<[string, Uint8Array, number, number]>(
      `INSERT INTO checkpoints (doc, state, upto_seq, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (doc) DO UPDATE SET state = excluded.state, upto_seq = excluded.upto_seq, updated_at = excluded.updated_at`,
    ),
    // Docs sort by UTF-8 bytes, so the names starting with a prefix are contiguous from the prefix on.
    docsFrom: db.prepare<[string], { doc: string }>('SELECT doc FROM docs WHERE doc >= ? ORDER BY doc'),
    docSeqsFrom: db.prepare<[string], { doc: string; last_seq: number }>(
      `SELECT doc, ${LAST_SEQ} AS last_seq FROM docs WHERE doc >= ? ORDER BY doc`,
    ),
    // one page: from the prefix on, after a name, at most so many
    docSeqsPage: db.prepare<[string, string, number], { doc: string; last_seq: number }>(
      `SELECT doc, ${LAST_SEQ} AS last_seq FROM docs WHERE doc >= ? AND doc > ? ORDER BY doc LIMIT ?`,
    ),
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

/**
 * Creates the schema on a new file, checks the version of an existing one.
 * A file already at this version needs no write lock (the storage worker
 * opens a file that the main thread has just migrated, maybe while another
 * process writes to it).
 */
function migrate(db: Database.Database): number | null {
  if (db.pragma('user_version', { simple: true }) === SQLITE_SCHEMA_VERSION) return null
  return db
    .transaction((): number | null => {
      const version = db.pragma('user_version', { simple: true }) as number
      if (version > SQLITE_SCHEMA_VERSION) {
        throw new Error(`schema version ${version} is newer than this relay understands (${SQLITE_SCHEMA_VERSION})`)
      }
      if (version < 1) db.exec(SCHEMA)
      if (version < 2) db.exec(SCHEMA_V2)
      // version 3 changed what `docs.last_seq` means (a floor), not the tables: a version 2 file's rows are valid
      if (version < SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`)
      // version 0 is a new file (or one created by another relay a moment ago): nothing was upgraded
      return version >= 1 && version < SQLITE_SCHEMA_VERSION ? version : null
    })
    .immediate()
}

/**
 * Opens the file and configures the connection; throws an `Error` naming the
 * file when that fails. Returns the connection and the schema version the
 * file was upgraded from (null: new, or already at this version).
 */
function openDatabase(file: string, options: SqliteConnectionOptions): { db: Database.Database; upgradedFrom: number | null } {
  const synchronous = options.synchronous ?? 'full'
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new TypeError(`synchronous must be 'full' or 'normal', got ${String(synchronous)}`)
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TypeError(`busyTimeoutMs must be a non-negative integer, got ${String(busyTimeoutMs)}`)
  }
  const cacheMb = options.cacheMb ?? DEFAULT_SQLITE_CACHE_MB
  if (!Number.isInteger(cacheMb) || cacheMb < 1) throw new TypeError(`cacheMb must be a positive integer, got ${String(cacheMb)}`)
  let db: Database.Database | undefined
  try {
    const inMemory = file === ':memory:'
    if (!inMemory) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
    db = new Database(file)
    db.pragma(`busy_timeout = ${busyTimeoutMs}`)
    db.pragma(`cache_size = ${-cacheMb * 1024}`) // negative: KiB, not pages
    const mode = db.pragma('journal_mode = WAL', { simple: true })
    if (!inMemory && mode !== 'wal') throw new Error(`could not enable WAL journal mode (got ${String(mode)})`)
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`)
    const upgradedFrom = migrate(db)
    return { db, upgradedFrom }
  } catch (cause) {
    db?.close()
    const message = cause instanceof Error ? cause.message : String(cause)
    const notDirectory = file === ':memory:' ? null : fileInTheWay(path.dirname(path.resolve(file)))
    const unwritable = file === ':memory:' || notDirectory !== null ? null : whyNotWritable(file)
    const reason =
      notDirectory !== null ? `${notDirectory} is not a directory` : unwritable === null ? message : `${unwritable} (${message})`
    throw new SqliteOpenError(file, reason, cause)
  }
}

/** The database file could not be opened: `reason` says why without naming the file again (the message does). */
export class SqliteOpenError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    cause: unknown,
  ) {
    super(`cannot open SQLite storage at ${file}: ${reason}`, { cause })
  }
}

/** The first of `dir` and its parents that exists but is not a directory (a file where the data dir should be), or null. */
const fileInTheWay = (dir: string): string | null => {
  for (let current = dir; path.dirname(current) !== current; current = path.dirname(current)) {
    let stat: fs.Stats | undefined
    try {
      stat = fs.statSync(current, { throwIfNoEntry: false })
    } catch {
      continue // ENOTDIR: a parent is a file, found further up; anything else, further up too
    }
    if (stat !== undefined) return stat.isDirectory() ? null : current
  }
  return null
}

/**
 * Why the relay could not write `file` or create files next to it (a
 * read-only file system, missing permissions, no space left), or null when it
 * could: SQLite's own message for these is only "unable to open database
 * file", "disk I/O error" or "attempt to write a readonly database". Besides
 * asking `access(2)`, it creates and removes a small file in the directory: a
 * file system that turned read-only after an error (ext4 `errors=remount-ro`)
 * refuses writes while `access` still says yes.
 */
export function whyNotWritable(file: string): string | null {
  const dir = path.dirname(path.resolve(file))
  const explain = (error: unknown, target: string): string | null => {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EROFS') return `${dir} is on a read-only file system; the relay writes its database there`
    if (code === 'EACCES' || code === 'EPERM') return `${target} is not writable by this process`
    if (code === 'ENOSPC' || code === 'EDQUOT') return `no space left for ${dir}`
    return null
  }
  for (const target of [dir, file]) {
    try {
      fs.accessSync(target, fs.constants.W_OK)
    } catch (error) {
      const reason = explain(error, target)
      if (reason !== null) return reason
    }
  }
  const probe = `${path.resolve(file)}.write-check-${process.pid}`
  try {
    fs.writeFileSync(probe, 'x')
    fs.rmSync(probe, { force: true })
  } catch (error) {
    return explain(error, dir)
  }
  return null
}

/** Whether `error` is SQLite's "the database is locked" (`SQLITE_BUSY` and its extended codes). */
export const isBusy = (error: unknown): boolean => /^SQLITE_BUSY/.test(String((error as { code?: unknown } | null)?.code))

/** Whether `error` is SQLite's "string or blob too big" (a value over `SQLITE_MAX_LENGTH`, 1 GB). */
const isTooBig = (error: unknown): boolean => String((error as { code?: unknown } | null)?.code) === 'SQLITE_TOOBIG'

/** An open connection with its prepared statements. Every method runs synchronously. */
export class SqliteDatabase {
  readonly #db: Database.Database
  readonly #stmt: ReturnType<typeof prepareStatements>
  /** The hot transactions, wrapped once (better-sqlite3 builds a wrapper per `transaction()` call: ~5–15 µs). */
  readonly #loadDoc: (doc: string) => StoredDoc
  readonly #appendBatches: { immediate: (batches: readonly DocUpdates[][]) => AppendResult[] }

  /** The schema version this connection upgraded the file from when it opened it, or null (a new file, or one already at {@link SQLITE_SCHEMA_VERSION}). */
  readonly upgradedFrom: number | null

  private constructor(db: Database.Database, upgradedFrom: number | null) {
    this.#db = db
    this.upgradedFrom = upgradedFrom
    const stmt = (this.#stmt = prepareStatements(db))
    const framedLog = db.pragma('encoding', { simple: true }) === 'UTF-8' ? stmt.selectFramedLog : null
    /**
     * A doc's log, in sequence order: read as one framed BLOB and split into
     * views of it (see storage/framedLog); row by row in a database of
     * another encoding, with an SQLite library too old for the framing
     * query, or for a log over SQLite's 1 GB value limit.
     */
    const readLog = (doc: string): Uint8Array[] => {
      if (framedLog !== null) {
        try {
          const framed = framedLog.get(doc)
          return framed == null ? [] : unframeLog(framed)
        } catch (error) {
          if (!isTooBig(error)) throw error
        }
      }
      return stmt.selectUpdates.all(doc).map(toBytes)
    }
    this.#loadDoc = db.transaction((doc: string): StoredDoc => {
      const checkpoint = stmt.selectCheckpoint.get(doc)
      const lastSeq = stmt.lastSeq.get(doc)?.last_seq ?? 0
      const updates = readLog(doc)
      let logBytes = 0
      for (const update of updates) logBytes += update.byteLength
      const authors = stmt.selectAuthors.all(doc).map(({ client_id, user_id, name }) => ({ clientId: client_id, userId: user_id, name }))
      return { checkpoint: checkpoint === undefined ? null : toBytes(checkpoint.state), updates, lastSeq, logBytes, authors }
    })
    this.#appendBatches = db.transaction((batches: readonly DocUpdates[][]) =>
      batches.map((batch) => {
        const result: AppendResult = new Map()
        for (const { doc, updates, authors } of batch) {
          const stored = stmt.lastSeq.get(doc)
          let seq = stored?.last_seq ?? 0
          // the docs row is written once, when the doc is created; appends move only the log
          if (stored === undefined && (updates.length > 0 || (authors !== undefined && authors.length > 0))) stmt.ensureDoc.run(doc)
          for (const data of updates) stmt.insertUpdate.run(doc, ++seq, data)
          if (authors !== undefined) for (const a of authors) stmt.insertAuthor.run(doc, a.clientId, a.userId, a.name)
          result.set(doc, seq)
        }
        return result
      }),
    )
  }

  /**
   * Opens (creating if needed, with its parent directory) the database file,
   * creating or upgrading the schema. Throws an `Error` naming the file when
   * it cannot be opened, is not a database, or has a newer schema, and a
   * `TypeError` for bad options.
   */
  static open(file: string, options: SqliteConnectionOptions = {}): SqliteDatabase {
    const { db, upgradedFrom } = openDatabase(file, options)
    return new SqliteDatabase(db, upgradedFrom)
  }

  /** Loads a doc's checkpoint and the log appended after it, from one consistent snapshot. */
  loadDoc(doc: string): StoredDoc {
    return this.#loadDoc(doc)
  }

  /**
   * Stores several group commits in one transaction, in order (a doc in a
   * later batch continues the sequence numbers of an earlier one), and
   * returns each batch's result. Either every batch is stored or none.
   */
  appendBatches(batches: readonly DocUpdates[][]): AppendResult[] {
    return this.#appendBatches.immediate(batches)
  }

  /** Replaces the doc's checkpoint and deletes the log entries with seq ≤ `uptoSeq`, in one transaction. */
  writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): void {
    this.#db
      .transaction(() => {
        const lastSeq = this.#stmt.lastSeq.get(doc)?.last_seq ?? 0
        const checkpointSeq = this.#stmt.checkpointSeq.get(doc)?.upto_seq ?? 0
        assertCheckpointSeq(doc, uptoSeq, checkpointSeq, lastSeq)
        // the log entries deleted below may hold the last number: keep it in the floor first
        this.#stmt.setLastSeq.run(doc, lastSeq)
        this.#stmt.upsertCheckpoint.run(doc, state, uptoSeq, Date.now())
        this.#stmt.deleteUpdatesUpTo.run(doc, uptoSeq)
      })
      .immediate()
  }

  /** Names of stored docs starting with `prefix` (taken literally, no wildcards), sorted. */
  listDocs(prefix: string): string[] {
    const docs: string[] = []
    for (const { doc } of this.#stmt.docsFrom.iterate(prefix)) {
      if (!doc.startsWith(prefix)) break
      docs.push(doc)
    }
    // Same order as every other adapter: JavaScript string order (SQLite sorts by UTF-8 bytes).
    return docs.sort()
  }

  /**
   * Stored docs starting with `prefix` with their last sequence numbers, in
   * the order of {@link listDocs}; with `page`, only that page (read with
   * `LIMIT`: the pages of a long listing cost a read each, not the whole list).
   */
  listDocSeqs(prefix: string, page?: ListPage): DocSeq[] {
    const docs: DocSeq[] = []
    const rows =
      page === undefined ? this.#stmt.docSeqsFrom.iterate(prefix) : this.#stmt.docSeqsPage.iterate(prefix, page.after, page.limit)
    for (const { doc, last_seq } of rows) {
      if (!doc.startsWith(prefix)) break
      docs.push({ doc, lastSeq: last_seq })
    }
    // Same order as every other adapter: JavaScript string order (SQLite sorts by UTF-8 bytes).
    return docs.sort((a, b) => (a.doc < b.doc ? -1 : a.doc > b.doc ? 1 : 0))
  }

  /** Upserts last-seen records in one transaction; `lastSeen` never moves back. */
  recordPresence(batch: readonly WorkspacePresence[]): void {
    this.#db
      .transaction(() => {
        for (const { workspace, records } of batch) {
          for (const r of records) this.#stmt.upsertPresence.run(workspace, r.userId, r.name, Math.round(r.lastSeen))
        }
      })
      .immediate()
  }

  /** Users seen in a workspace, most recent first. */
  listPresence(workspace: string): PresenceRecord[] {
    return this.#stmt.selectPresence.all(workspace).map(({ user_id, name, last_seen }) => ({ userId: user_id, name, lastSeen: last_seen }))
  }

  /** Runs a trivial query; throws when the connection is unusable. */
  ping(): void {
    this.#stmt.ping.get()
  }

  /**
   * Makes this a connection that only reads and never waits for a lock
   * (`query_only`, `busy_timeout = 0`): a read that would have to wait
   * throws `SQLITE_BUSY` at once (see {@link isBusy}). Its page cache holds
   * at most `cacheMb` MiB.
   */
  readOnly(cacheMb: number): this {
    this.#db.pragma(`cache_size = ${-cacheMb * 1024}`)
    this.#db.pragma('busy_timeout = 0')
    this.#db.pragma('query_only = ON')
    return this
  }

  /** Closes the connection (checkpointing the WAL). */
  close(): void {
    this.#db.close()
  }
}
