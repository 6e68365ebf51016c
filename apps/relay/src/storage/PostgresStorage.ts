/**
 * PostgreSQL storage adapter (`pg`): the store of record when several relay
 * instances share one database (`--storage postgres --database-url …`).
 *
 * Schema (version 2, kept in `concord_schema`; every table is prefixed so the
 * relay can share a database with other applications; version 2 added
 * `concord_webhooks`, created when a relay of this version first opens a
 * version 1 database):
 *
 * ```sql
 * concord_docs        (doc TEXT PRIMARY KEY, last_seq BIGINT NOT NULL)
 * concord_checkpoints (doc TEXT PRIMARY KEY, state BYTEA NOT NULL, upto_seq BIGINT NOT NULL, updated_at BIGINT NOT NULL)
 * concord_updates     (doc TEXT, seq BIGINT, data BYTEA NOT NULL, PRIMARY KEY (doc, seq))
 * concord_authors     (doc TEXT, client_id BIGINT, user_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (doc, client_id))
 * concord_presence    (workspace TEXT, user_id TEXT, name TEXT NOT NULL, last_seen BIGINT NOT NULL, PRIMARY KEY (workspace, user_id))
 * concord_webhooks    (id TEXT PRIMARY KEY, workspace TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,
 *                      created_at BIGINT NOT NULL, created_by TEXT NOT NULL)
 * ```
 *
 * `concord_webhooks` holds the webhook subscriptions every instance shares
 * (`SharedWebhookStore` of `webhooks/WebhookSubscriptions`).
 *
 * Text keys use the `"C"` collation (byte order), like SQLite.
 *
 * **Sequence numbers** are handed out inside the committing statement: the
 * doc's `concord_docs` row is upserted with `last_seq = last_seq + n`, which
 * locks the row until the commit, and the updates are logged with the numbers
 * just below the new `last_seq`. Two instances appending to one doc therefore
 * queue on that row, and every doc's numbers are unique and gap-free whichever
 * instance committed them. A group commit locks its docs' rows **sorted by
 * name** (byte order), so two instances committing overlapping sets of docs
 * take the locks in the same order and never deadlock.
 *
 * **Group commit:** one append statement is in flight per instance;
 * `appendUpdates` calls made while it runs are stored together by the next
 * one (one transaction, one WAL flush). The whole commit is a single
 * statement (docs, log, author bindings as data-modifying CTEs), so it is
 * atomic without `BEGIN`/`COMMIT` round trips, and it resolves only once
 * PostgreSQL reported the commit (with the default `synchronous_commit = on`,
 * flushed to its WAL). A failed commit rejects every call in it and stores
 * nothing; the relay's commit queue retries. (When the connection breaks
 * while the commit statement runs, whether it committed is unknown: the call
 * rejects, the retry may log the same updates a second time under new
 * numbers, and loading applies them once — Yjs skips what a doc has.)
 *
 * **Checkpoints** (`writeCheckpoint`) run in their own transaction under a
 * per-doc advisory lock, so one doc is compacted by one instance at a time.
 * They do not lock the doc's row (appends to the doc go on meanwhile) and
 * delete only log entries with `seq ≤ uptoSeq`: an update another instance
 * commits during compaction has a larger number and stays.
 *
 * **Author bindings** are unique per (doc, client id). A binding is stored in
 * the commit of the updates that made it, under the doc's row lock, so
 * bindings of one client id are serialized across instances and a later
 * commit's binding replaces an earlier one (the port's rule). The relay binds
 * an id only when the doc holds no content of it; an instance that has not yet
 * seen another instance's content of that id could bind it again, which only a
 * Yjs client id collision across users (or a client replaying someone else's
 * id) makes possible — the last commit's binding then wins, and both
 * instances' author checks use the stored binding after the next load.
 *
 * **Reads** (`loadDoc`) are one statement, so checkpoint, log, `lastSeq` and
 * bindings come from one snapshot even while another instance compacts. The
 * log arrives as one framed value (storage/framedLog), row by row only when
 * it is too large for one.
 *
 * Connections come from a `pg.Pool`; when PostgreSQL is unreachable every call
 * (and `ping`, hence `/readyz`) rejects, and works again once it is back.
 *
 * @example
 * ```ts
 * const storage = await PostgresStorage.open('postgres://concord@db/concord')
 * const lastSeqs = await storage.appendUpdates([{ doc: 'notes', updates: [update] }])
 * await storage.close()
 * ```
 *
 * @module storage/PostgresStorage
 */

import pg from 'pg'
import type {
  AppendResult,
  AuthorBinding,
  DocSeq,
  DocUpdates,
  ListPage,
  PresenceRecord,
  Storage,
  StoredDoc,
  WorkspacePresence,
} from './Storage.js'
import type { WebhookSubscription } from '../webhooks/WebhookSubscriptions.js'
import { assertBatch, assertBytes, assertCheckpointSeq, assertDocName, assertListing, assertPresence, closedError } from './validation.js'
import { unframeLog } from './framedLog.js'

/** The schema version this code writes and understands. */
export const POSTGRES_SCHEMA_VERSION = 2

/** A webhook subscription as `concord_webhooks` holds it: the subscriptions of `webhooks/WebhookSubscriptions`. */
export type StoredWebhook = WebhookSubscription

/** First key of the relay's advisory locks ("Conc"); the second names what is locked. */
const LOCK_CLASS_SCHEMA = 0x436f6e63
/** Advisory lock class of compaction; the second key is `hashtext(doc)`. */
const LOCK_CLASS_COMPACTION = LOCK_CLASS_SCHEMA + 1
/** Advisory lock class of a workspace's webhook subscriptions; the second key is `hashtext(workspace)`. */
const LOCK_CLASS_WEBHOOKS = LOCK_CLASS_SCHEMA + 2

/** The table that records the schema version (one row; none yet in a new database). */
const SCHEMA_VERSION_TABLE = `
  CREATE TABLE IF NOT EXISTS concord_schema (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version INTEGER NOT NULL
  )
`

/** The tables of the current schema version (each created only if missing: also what brings an older database up to date). */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS concord_docs (
    doc TEXT COLLATE "C" PRIMARY KEY,
    last_seq BIGINT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS concord_checkpoints (
    doc TEXT COLLATE "C" PRIMARY KEY,
    state BYTEA NOT NULL,
    upto_seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS concord_updates (
    doc TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (doc, seq)
  );
  CREATE TABLE IF NOT EXISTS concord_authors (
    doc TEXT COLLATE "C" NOT NULL,
    client_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (doc, client_id)
  );
  CREATE TABLE IF NOT EXISTS concord_presence (
    workspace TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (workspace, user_id)
  );
  CREATE TABLE IF NOT EXISTS concord_webhooks (
    id TEXT COLLATE "C" PRIMARY KEY,
    workspace TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
  );
`

/**
 * One group commit. `$1`/`$2`: each written doc and how many updates it gets
 * (docs with updates or bindings); `$3`–`$5`: every update with its doc and
 * its 1-based position among that doc's updates in this commit; `$6`–`$9`:
 * author bindings; `$10`: docs of the batch that write nothing (their
 * `last_seq` is only read). Returns each doc's `last_seq` after the commit.
 */
const APPEND_SQL = `
  WITH batch AS (
    SELECT doc, n FROM unnest($1::text[], $2::int[]) AS b(doc, n)
  ), bumped AS (
    INSERT INTO concord_docs AS d (doc, last_seq)
    SELECT doc, n FROM batch ORDER BY doc COLLATE "C"
    ON CONFLICT (doc) DO UPDATE SET last_seq = d.last_seq + excluded.last_seq
    RETURNING d.doc, d.last_seq
  ), logged AS (
    INSERT INTO concord_updates (doc, seq, data)
    SELECT u.doc, bumped.last_seq - batch.n + u.k, substring($5::bytea FROM u.start FOR u.len)
    FROM unnest($3::text[], $4::int[], $11::int[], $12::int[]) AS u(doc, k, start, len)
    JOIN bumped ON bumped.doc = u.doc
    JOIN batch ON batch.doc = u.doc
  ), bound AS (
    INSERT INTO concord_authors AS a (doc, client_id, user_id, name)
    SELECT * FROM unnest($6::text[], $7::bigint[], $8::text[], $9::text[])
    ON CONFLICT (doc, client_id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name
  )
  SELECT doc, last_seq FROM bumped
  UNION ALL
  SELECT doc, last_seq FROM concord_docs WHERE doc = ANY($10::text[])
`

/**
 * Checkpoint, `last_seq`, log and bindings of one doc in one snapshot, tagged
 * by `part`, with the log selected by `log`.
 */
const loadSql = (log: string): string => `
  SELECT 0 AS part, upto_seq AS seq, state AS data, NULL::bigint AS client_id, NULL::text AS user_id, NULL::text AS name
    FROM concord_checkpoints WHERE doc = $1
  UNION ALL SELECT 1, last_seq, NULL, NULL, NULL, NULL FROM concord_docs WHERE doc = $1
  UNION ALL ${log}
  UNION ALL SELECT 3, NULL, NULL, client_id, user_id, name FROM concord_authors WHERE doc = $1
  ORDER BY part, seq
`

/** A doc in one statement, its log (part 2) as one framed value (see storage/framedLog), NULL when the log is empty. */
const LOAD_SQL = loadSql(
  `SELECT 2, NULL, string_agg(int8send(seq) || int4send(octet_length(data)) || data, ''::bytea ORDER BY seq), NULL, NULL, NULL
    FROM concord_updates WHERE doc = $1`,
)

/**
 * The same with the log row by row (part 4): for a log too large for one
 * value (PostgreSQL's limit is 1 GB, and the text protocol sends a bytea as
 * hex, twice its size).
 */
const LOAD_ROWS_SQL = loadSql('SELECT 4, seq, data, NULL, NULL, NULL FROM concord_updates WHERE doc = $1')

/** Whether `error` is PostgreSQL refusing a value over its size limits (a string or bytea over 1 GB, an allocation too large). */
const isTooLarge = (error: unknown): boolean =>
  (error as { code?: unknown } | null)?.code === '54000' ||
  /invalid memory alloc request size/.test(String((error as Error | null)?.message))

/** A row of {@link LOAD_SQL} (BIGINTs arrive as strings). */
interface LoadRow {
  part: number
  seq: string | null
  data: Buffer | null
  client_id: string | null
  user_id: string | null
  name: string | null
}

/** Options of {@link PostgresStorage}. */
export interface PostgresStorageOptions {
  /** Most connections the pool opens. Default 4 (one append, checkpoints, loads). */
  maxConnections?: number
  /** How long getting a connection may take before the call fails, ms. Default 5000. */
  connectTimeoutMs?: number
}

/** An `appendUpdates` call waiting for its group commit. */
interface PendingAppend {
  batch: DocUpdates[]
  resolve: (result: AppendResult) => void
  reject: (error: Error) => void
}

/** pg hands out plain `Buffer`s; expose them as `Uint8Array` views without copying (as the SQLite adapter does). */
const toBytes = (buf: Buffer): Uint8Array => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparsable URL)'
  }
}

/** A `Storage` in a PostgreSQL database, shareable by several relay instances. */
export class PostgresStorage implements Storage {
  /** Adapter name for logs and metrics. */
  readonly kind = 'postgres'
  /** The database URL, password hidden. */
  readonly target: string
  readonly #pool: pg.Pool
  /** Settles once the schema is checked (created or verified); rejects when that failed. */
  readonly #ready: Promise<void>
  #closed = false
  #closing: Promise<void> | null = null
  /** Appends waiting for the next group commit. */
  #queue: PendingAppend[] = []
  /** The group-commit loop, while it runs. */
  #writing: Promise<void> | null = null
  /** Every other call in flight, awaited by `close`. */
  readonly #inFlight = new Set<Promise<unknown>>()

  /**
   * Creates the pool and starts checking the schema; calls wait for that
   * check. {@link PostgresStorage.open} also waits for it, so a bad URL or an
   * unreachable server fails there.
   */
  constructor(url: string, options: PostgresStorageOptions = {}) {
    this.target = redactUrl(url)
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
    })
    // An idle connection that breaks (server restarted) is dropped by the
    // pool and reported here; the next call opens a new one. Without a
    // listener the error would end the process.
    this.#pool.on('error', () => undefined)
    this.#ready = this.#migrate()
    // Callers see the failure through their calls (and `open`); never as an unhandled rejection.
    this.#ready.catch(() => undefined)
  }

  /**
   * Connects, creates or checks the schema, and returns the storage. Rejects
   * with an `Error` naming the database (password hidden) when it is
   * unreachable, refuses the login, or has a newer schema.
   */
  static async open(url: string, options?: PostgresStorageOptions): Promise<PostgresStorage> {
    const storage = new PostgresStorage(url, options)
    try {
      await storage.#ready
    } catch (error) {
      await storage.close()
      throw error
    }
    return storage
  }

  /** Loads a doc's checkpoint and the log appended after it, from one snapshot. */
  async loadDoc(doc: string): Promise<StoredDoc> {
    this.#assertOpen()
    assertDocName(doc)
    let rows: LoadRow[]
    try {
      rows = (await this.#query<LoadRow>(LOAD_SQL, [doc])).rows
    } catch (error) {
      if (!isTooLarge(error)) throw error
      rows = (await this.#query<LoadRow>(LOAD_ROWS_SQL, [doc])).rows
    }
    const stored: StoredDoc = { checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] }
    for (const row of rows) {
      if (row.part === 0) stored.checkpoint = toBytes(row.data!)
      else if (row.part === 1) stored.lastSeq = Number(row.seq)
      else if (row.part === 2) {
        if (row.data !== null) stored.updates = unframeLog(row.data)
      } else if (row.part === 4) stored.updates.push(toBytes(row.data!))
      else stored.authors.push({ clientId: Number(row.client_id), userId: row.user_id!, name: row.name! })
    }
    for (const update of stored.updates) stored.logBytes += update.byteLength
    return stored
  }

  /** Appends the updates of several docs in one commit, shared with the calls queued alongside it. */
  async appendUpdates(batch: DocUpdates[]): Promise<AppendResult> {
    this.#assertOpen()
    assertBatch(batch)
    if (batch.length === 0) return new Map()
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ batch, resolve, reject })
      this.#writing ??= this.#drainQueue()
    })
  }

  /**
   * Replaces the doc's checkpoint and deletes the log entries with
   * seq ≤ `uptoSeq`, in one transaction under the doc's compaction lock.
   */
  async writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void> {
    this.#assertOpen()
    assertDocName(doc)
    assertBytes(state, `checkpoint state of doc "${doc}"`)
    await this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS_COMPACTION, doc])
      // Read after the lock: a compaction that held it has committed by now.
      const { rows } = await client.query<{ last_seq: string | null; upto_seq: string | null }>(
        `SELECT (SELECT last_seq FROM concord_docs WHERE doc = $1) AS last_seq,
                (SELECT upto_seq FROM concord_checkpoints WHERE doc = $1) AS upto_seq`,
        [doc],
      )
      assertCheckpointSeq(doc, uptoSeq, Number(rows[0].upto_seq ?? 0), Number(rows[0].last_seq ?? 0))
      await client.query(
        `WITH listed AS (
           INSERT INTO concord_docs (doc, last_seq) VALUES ($1, 0) ON CONFLICT (doc) DO NOTHING
         ), saved AS (
           INSERT INTO concord_checkpoints (doc, state, upto_seq, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (doc) DO UPDATE SET state = excluded.state, upto_seq = excluded.upto_seq, updated_at = excluded.updated_at
         )
         DELETE FROM concord_updates WHERE doc = $1 AND seq <= $3`,
        [doc, state, uptoSeq, Date.now()],
      )
    })
  }

  /**
   * The logged updates of `doc` with a sequence number above `afterSeq`, in
   * order, with the doc's last number and its author bindings; null when a checkpoint already covers
   * some of them (the log no longer holds them: load the whole doc instead).
   * One statement, one snapshot. Used by the cluster layer to fill a gap.
   */
  async updatesSince(doc: string, afterSeq: number): Promise<{ updates: Uint8Array[]; lastSeq: number; authors: AuthorBinding[] } | null> {
    this.#assertOpen()
    assertDocName(doc)
    const { rows } = await this.#query<LoadRow>(
      `SELECT 0 AS part, upto_seq AS seq, NULL::bytea AS data, NULL::bigint AS client_id, NULL::text AS user_id, NULL::text AS name
         FROM concord_checkpoints WHERE doc = $1
       UNION ALL SELECT 1, last_seq, NULL, NULL, NULL, NULL FROM concord_docs WHERE doc = $1
       UNION ALL SELECT 2, seq, data, NULL, NULL, NULL FROM concord_updates WHERE doc = $1 AND seq > $2
       UNION ALL SELECT 3, NULL, NULL, client_id, user_id, name FROM concord_authors WHERE doc = $1
       ORDER BY part, seq`,
      [doc, afterSeq],
    )
    const since = { updates: [] as Uint8Array[], lastSeq: 0, authors: [] as AuthorBinding[] }
    for (const row of rows) {
      if (row.part === 0 && Number(row.seq) > afterSeq) return null
      if (row.part === 1) since.lastSeq = Number(row.seq)
      else if (row.part === 2) since.updates.push(toBytes(row.data!))
      else if (row.part === 3) since.authors.push({ clientId: Number(row.client_id), userId: row.user_id!, name: row.name! })
    }
    return since
  }

  /** The last sequence number of each of `docs` (0 for a doc never stored), in one statement. */
  async lastSeqs(docs: readonly string[]): Promise<Map<string, number>> {
    this.#assertOpen()
    const seqs = new Map<string, number>(docs.map((doc) => [doc, 0]))
    if (docs.length === 0) return seqs
    const { rows } = await this.#query<{ doc: string; last_seq: string }>(
      'SELECT doc, last_seq FROM concord_docs WHERE doc = ANY($1::text[])',
      [docs],
    )
    for (const { doc, last_seq } of rows) seqs.set(doc, Number(last_seq))
    return seqs
  }

  /** Names of stored docs starting with `prefix` (taken literally, no wildcards), sorted. */
  async listDocs(prefix: string): Promise<string[]> {
    return (await this.listDocSeqs(prefix)).map(({ doc }) => doc)
  }

  /** Stored docs starting with `prefix` with their last sequence numbers, in the order of {@link listDocs}; with `page`, that page. */
  async listDocSeqs(prefix: string, page?: ListPage): Promise<DocSeq[]> {
    this.#assertOpen()
    assertListing(prefix, page)
    // `doc >= prefix` lets the primary key start the scan at the prefix.
    const { rows } =
      page === undefined
        ? await this.#query<{ doc: string; last_seq: string }>(
            'SELECT doc, last_seq FROM concord_docs WHERE doc >= $1 AND starts_with(doc, $1)',
            [prefix],
          )
        : await this.#query<{ doc: string; last_seq: string }>(
            'SELECT doc, last_seq FROM concord_docs WHERE doc >= $1 AND starts_with(doc, $1) AND doc > $2 ORDER BY doc LIMIT $3',
            [prefix, page.after, page.limit],
          )
    // Same order as every other adapter: JavaScript string order (PostgreSQL's "C" order is UTF-8 byte order).
    return rows
      .map(({ doc, last_seq }) => ({ doc, lastSeq: Number(last_seq) }))
      .sort((a, b) => (a.doc < b.doc ? -1 : a.doc > b.doc ? 1 : 0))
  }

  /** Upserts last-seen records of every workspace in one statement; `lastSeen` never moves back. */
  async recordPresence(batch: readonly WorkspacePresence[]): Promise<void> {
    this.#assertOpen()
    assertPresence(batch)
    // One row per workspace and user (an upsert cannot touch a row twice): the latest record wins, as applied in order.
    const latest = new Map<string, { workspace: string; record: PresenceRecord }>()
    for (const { workspace, records } of batch) {
      for (const record of records) {
        const key = JSON.stringify([workspace, record.userId])
        const seen = latest.get(key)
        if (seen === undefined || record.lastSeen >= seen.record.lastSeen) latest.set(key, { workspace, record })
      }
    }
    if (latest.size === 0) return
    const rows = [...latest.values()]
    await this.#query(
      `INSERT INTO concord_presence AS p (workspace, user_id, name, last_seen)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
       ON CONFLICT (workspace, user_id) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen
       WHERE excluded.last_seen >= p.last_seen`,
      [
        rows.map((r) => r.workspace),
        rows.map((r) => r.record.userId),
        rows.map((r) => r.record.name),
        rows.map((r) => Math.round(r.record.lastSeen)),
      ],
    )
  }

  /** Users seen in a workspace, most recent first. */
  async listPresence(workspace: string): Promise<PresenceRecord[]> {
    this.#assertOpen()
    const { rows } = await this.#query<{ user_id: string; name: string; last_seen: string }>(
      'SELECT user_id, name, last_seen FROM concord_presence WHERE workspace = $1 ORDER BY last_seen DESC',
      [workspace],
    )
    return rows.map(({ user_id, name, last_seen }) => ({ userId: user_id, name, lastSeen: Number(last_seen) }))
  }

  /** Every webhook subscription, oldest first. */
  async listWebhooks(): Promise<StoredWebhook[]> {
    this.#assertOpen()
    const { rows } = await this.#query<{
      id: string
      workspace: string
      url: string
      secret: string
      created_at: string
      created_by: string
    }>('SELECT id, workspace, url, secret, created_at, created_by FROM concord_webhooks ORDER BY created_at, id')
    return rows.map((row) => ({
      id: row.id,
      workspace: row.workspace,
      url: row.url,
      secret: row.secret,
      createdAt: Number(row.created_at),
      createdBy: row.created_by,
    }))
  }

  /**
   * Stores a webhook subscription unless its workspace has `maxPerWorkspace`
   * already or its id exists; false then. Inserts into one workspace take
   * turns on an advisory lock, so two instances creating subscriptions at the
   * same moment cannot both count the same rows and pass the limit.
   */
  async insertWebhook(webhook: StoredWebhook, maxPerWorkspace: number): Promise<boolean> {
    this.#assertOpen()
    let stored = false
    await this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS_WEBHOOKS, webhook.workspace])
      // Counted after the lock: an insert that held it has committed by now.
      const { rowCount } = await client.query(
        `INSERT INTO concord_webhooks (id, workspace, url, secret, created_at, created_by)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE (SELECT count(*) FROM concord_webhooks WHERE workspace = $2) < $7
         ON CONFLICT (id) DO NOTHING`,
        [
          webhook.id,
          webhook.workspace,
          webhook.url,
          webhook.secret,
          webhook.createdAt,
          webhook.createdBy,
          Number.isFinite(maxPerWorkspace) ? maxPerWorkspace : Number.MAX_SAFE_INTEGER,
        ],
      )
      stored = rowCount === 1
    })
    return stored
  }

  /** Deletes a webhook subscription; false when it did not exist. */
  async deleteWebhook(id: string): Promise<boolean> {
    this.#assertOpen()
    const { rowCount } = await this.#query('DELETE FROM concord_webhooks WHERE id = $1', [id])
    return rowCount === 1
  }

  /** Resolves when PostgreSQL answers a trivial query. */
  async ping(): Promise<void> {
    this.#assertOpen()
    await this.#query('SELECT 1')
  }

  /** Lets the calls made before finish, then closes the pool. Idempotent; later calls reject. */
  close(): Promise<void> {
    this.#closed = true
    this.#closing ??= this.#shutDown()
    return this.#closing
  }

  async #shutDown(): Promise<void> {
    await this.#writing
    await Promise.allSettled([...this.#inFlight])
    await this.#pool.end()
  }

  /** Throws (rejecting the caller's promise: every method is async) once closed. */
  #assertOpen(): void {
    if (this.#closed) throw closedError(this.kind)
  }

  /** Runs one statement on a pooled connection once the schema is ready. */
  async #query<Row extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<Row>> {
    const result = this.#ready.then(() => this.#pool.query<Row>(sql, values))
    this.#inFlight.add(result)
    try {
      return await result
    } finally {
      this.#inFlight.delete(result)
    }
  }

  /** Runs `body` in a transaction on one connection; rolls back when it throws. */
  async #transaction(body: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const done = this.#ready.then(async () => {
      const client = await this.#pool.connect()
      let broken: Error | undefined
      try {
        await client.query('BEGIN')
        await body(client)
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError))
        throw error
      } finally {
        // A connection whose rollback failed is unusable: the pool drops it.
        client.release(broken)
      }
    })
    this.#inFlight.add(done)
    try {
      await done
    } finally {
      this.#inFlight.delete(done)
    }
  }

  /** The group-commit loop: stores everything queued, one commit at a time, until the queue is empty. */
  async #drainQueue(): Promise<void> {
    while (this.#queue.length > 0) {
      const group = this.#queue.splice(0)
      try {
        await this.#ready
        const results = await this.#commit(group.map(({ batch }) => batch))
        group.forEach(({ resolve }, i) => resolve(results[i]))
      } catch (error) {
        for (const { reject } of group) reject(error as Error)
      }
    }
    this.#writing = null
  }

  /** Stores several `appendUpdates` batches in one statement, in order; returns each batch's result. */
  async #commit(batches: DocUpdates[][]): Promise<AppendResult[]> {
    /** Updates and bindings per doc, in call order. */
    const docs = new Map<string, { updates: Uint8Array[]; authors: Map<number, AuthorBinding> }>()
    for (const batch of batches) {
      for (const { doc, updates, authors } of batch) {
        let entry = docs.get(doc)
        if (entry === undefined) docs.set(doc, (entry = { updates: [], authors: new Map() }))
        entry.updates.push(...updates)
        // One binding per client id (an upsert cannot touch a row twice): the latest replaces earlier ones, as in order.
        for (const author of authors ?? []) entry.authors.set(author.clientId, author)
      }
    }
    const written = { docs: [] as string[], counts: [] as number[] }
    // the updates go as one bytea (a Buffer parameter is sent in binary; an array of them would be hex text)
    const log = {
      docs: [] as string[],
      positions: [] as number[],
      data: [] as Uint8Array[],
      starts: [] as number[],
      lengths: [] as number[],
    }
    let logBytes = 0
    const bindings = { docs: [] as string[], clientIds: [] as number[], userIds: [] as string[], names: [] as string[] }
    const readOnly: string[] = []
    for (const [doc, { updates, authors }] of docs) {
      if (updates.length === 0 && authors.size === 0) {
        readOnly.push(doc)
        continue
      }
      written.docs.push(doc)
      written.counts.push(updates.length)
      updates.forEach((data, i) => {
        log.docs.push(doc)
        log.positions.push(i + 1)
        log.data.push(data)
        log.starts.push(logBytes + 1)
        log.lengths.push(data.byteLength)
        logBytes += data.byteLength
      })
      for (const { clientId, userId, name } of authors.values()) {
        bindings.docs.push(doc)
        bindings.clientIds.push(clientId)
        bindings.userIds.push(userId)
        bindings.names.push(name)
      }
    }
    const { rows } = await this.#pool.query<{ doc: string; last_seq: string }>(APPEND_SQL, [
      written.docs,
      written.counts,
      log.docs,
      log.positions,
      Buffer.concat(log.data, logBytes),
      bindings.docs,
      bindings.clientIds,
      bindings.userIds,
      bindings.names,
      readOnly,
      log.starts,
      log.lengths,
    ])
    const lastSeqs = new Map(rows.map(({ doc, last_seq }) => [doc, Number(last_seq)]))
    // Walk the batches in order from each doc's number before this commit.
    const seqs = new Map<string, number>()
    for (const [doc, { updates }] of docs) seqs.set(doc, (lastSeqs.get(doc) ?? 0) - updates.length)
    return batches.map((batch) => {
      const result: AppendResult = new Map()
      for (const { doc, updates } of batch) {
        const seq = seqs.get(doc)! + updates.length
        seqs.set(doc, seq)
        result.set(doc, seq)
      }
      return result
    })
  }

  /**
   * Creates the schema in a new database, checks the version of an existing
   * one. Instances starting together serialize on an advisory lock.
   */
  async #migrate(): Promise<void> {
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (cause) {
      throw new Error(`cannot open PostgreSQL storage at ${this.target}: ${(cause as Error).message}`, { cause })
    }
    try {
      await client.query('BEGIN')
      await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_CLASS_SCHEMA])
      await client.query(SCHEMA_VERSION_TABLE)
      const { rows } = await client.query<{ version: number }>('SELECT version FROM concord_schema')
      const version = rows[0]?.version ?? 0
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new Error(`schema version ${version} is newer than this relay understands (${POSTGRES_SCHEMA_VERSION})`)
      }
      if (version < POSTGRES_SCHEMA_VERSION) {
        await client.query(SCHEMA)
        await client.query(
          'INSERT INTO concord_schema (version) VALUES ($1) ON CONFLICT (singleton) DO UPDATE SET version = excluded.version',
          [POSTGRES_SCHEMA_VERSION],
        )
      }
      await client.query('COMMIT')
      client.release()
    } catch (cause) {
      await client.query('ROLLBACK').catch(() => undefined)
      client.release(cause as Error)
      throw new Error(`cannot open PostgreSQL storage at ${this.target}: ${(cause as Error).message}`, { cause })
    }
  }
}
