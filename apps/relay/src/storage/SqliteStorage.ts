/**
 * SQLite storage adapter, the relay's default storage: one file (schema in
 * `SqliteDatabase.ts`), written by one connection **in a worker thread**
 * and read by a second one on the calling thread.
 *
 * better-sqlite3 is synchronous, and a commit with `synchronous = FULL`
 * waits for an fsync. On the relay's own thread every commit would stop
 * fan-out, acks and timers for that long; here the main thread posts each
 * write (and every call but a load) to the worker (`sqliteWorker.ts`) and
 * goes on, and the worker answers when SQLite returned. The durability
 * contract does not change:
 *
 * - `appendUpdates` resolves only after the transaction committed in the
 *   worker; a failed commit rejects with SQLite's error (same message and
 *   `code`, e.g. `SQLITE_FULL` "database or disk is full") and stores nothing.
 * - The worker performs calls in the order they were made. Appends that
 *   queue up while a commit runs are stored together in the next
 *   transaction.
 * - Loads read on the calling thread, over a second connection that only
 *   reads (WAL lets it read while the worker writes; it never waits for a
 *   lock): a small doc's read takes ~40 µs, less than handing it to the
 *   worker and back (~140 µs, *spot*), and the doc is applied on this thread
 *   anyway. A `loadDoc` made after an `appendUpdates` or `writeCheckpoint`
 *   resolved sees it (the commit is visible to every new read). A load of a
 *   doc with a write still in flight, or one that found the file locked,
 *   goes to the worker instead, behind that write: it sees exactly the calls
 *   made before it. Loads sent in one turn cross together (`load-many`).
 * - Arguments are checked here, before anything crosses the thread, with
 *   the same errors as every adapter (`validation.ts`).
 *
 * If the worker thread dies (native crash, out of memory, a bug), every call
 * in flight and every later call rejects with
 * `SQLite storage worker stopped …` and `ping` fails, so `/readyz` answers
 * 503. The worker is **not restarted**: a commit in flight when it died may or
 * may not be on disk, and only a fresh start (which reloads every doc from the
 * file) knows. Nothing acked is lost; unacked updates are still pending in the
 * clients, which send them again to the restarted relay.
 *
 * Opening checks the file synchronously on the calling thread first (open,
 * create or upgrade the schema, close), so a bad path, a file that is not a
 * database or a newer schema still throw from `open` as before.
 *
 * @example
 * ```ts
 * const storage = SqliteStorage.open('/var/lib/concord/concord.sqlite')
 * const lastSeqs = await storage.appendUpdates([{ doc: 'notes', updates: [update] }])
 * await storage.close()
 * ```
 *
 * @module storage/SqliteStorage
 */

import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { SqliteDatabase, isBusy, type SqliteConnectionOptions } from './SqliteDatabase.js'
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
import { assertBatch, assertBytes, assertDocName, assertListing, assertPresence, closedError } from './validation.js'
import {
  deserializeError,
  packBytes,
  unpackBytes,
  type AppendEntry,
  type SqliteCall,
  type SqliteResponse,
  type SqliteResults,
  type SqliteWorkerData,
} from './sqliteWorkerProtocol.js'

export { SQLITE_SCHEMA_VERSION } from './SqliteDatabase.js'

/** Options of `SqliteStorage`. */
export interface SqliteStorageOptions extends SqliteConnectionOptions {
  /**
   * Module the storage worker runs. Default: the compiled `sqliteWorker.js`
   * of this package (see {@link defaultWorkerUrl}). Tests pass a stand-in to
   * see how the adapter handles a worker that dies.
   */
  workerUrl?: URL
}

/**
 * Where the compiled worker module is. Next to this module when it runs
 * compiled: in `dist` (embedding programs, profiled benchmarks) or in
 * `bundle` (`npm start`, the integration tests, the benchmarks), whose
 * `sqliteWorker.js` is an entry of its own. When this module
 * runs from its TypeScript source (vitest transforms `src` on the fly), the
 * worker cannot: a worker thread is a plain Node.js thread, Node 20 cannot
 * load `.ts`, and vitest's transform does not reach into it. It then runs the
 * compiled worker from `apps/relay/dist`, after the same up-to-date check as
 * `tsc -b` (every source older than the project's `tsconfig.tsbuildinfo`), so
 * that tests never silently run an old worker; `npx tsc -b apps/relay` fixes
 * the error this throws.
 */
function defaultWorkerUrl(): URL {
  const own = new URL(import.meta.url)
  if (own.pathname.endsWith('.js')) return new URL('./sqliteWorker.js', own)
  const compiled = new URL('../../dist/storage/sqliteWorker.js', own)
  const buildInfo = fileURLToPath(new URL('../../tsconfig.tsbuildinfo', own))
  const builtAt = fs.existsSync(buildInfo) && fs.existsSync(compiled) ? fs.statSync(buildInfo).mtimeMs : -1
  for (const module of ['sqliteWorker', 'SqliteDatabase', 'framedLog', 'sqliteWorkerProtocol', 'validation']) {
    const source = fileURLToPath(new URL(`./${module}.ts`, own))
    if (fs.statSync(source).mtimeMs > builtAt) {
      throw new Error(`the compiled SQLite storage worker is missing or older than ${source}: run \`npx tsc -b apps/relay\``)
    }
  }
  return compiled
}

/** A call waiting for the worker's answer. */
interface PendingCall {
  resolve: (value: SqliteResults[keyof SqliteResults]) => void
  reject: (error: Error) => void
}

/** A `loadDoc` call not yet sent to the worker. */
interface PendingLoad {
  doc: string
  resolve: (stored: StoredDoc) => void
  reject: (error: Error) => void
}

/**
 * Page cache of the connection that reads loads, MiB: a doc's read touches
 * a few pages, and loads read as fast with 1 MiB as with 16 (*spot*, 100-row
 * docs, commits in between), so the reader adds little to the worker's
 * `cacheMb`.
 */
export const READER_CACHE_MB = 1

/** Most docs of one `load-many` message: bounds the work (and the answer) the worker does in one go. */
export const LOADS_PER_REQUEST = 128

/** A loaded doc from its byte strings (the checkpoint first when `hasCheckpoint`, then the log). */
function storedDoc(hasCheckpoint: boolean, chunks: Uint8Array[], lastSeq: number, authors: AuthorBinding[]): StoredDoc {
  const checkpoint = hasCheckpoint ? chunks[0] : null
  const updates = hasCheckpoint ? chunks.slice(1) : chunks
  const logBytes = updates.reduce((sum, update) => sum + update.byteLength, 0)
  return { checkpoint, updates, lastSeq, logBytes, authors }
}

/**
 * Lifecycle of the worker, as seen from the main thread.
 * - `running`: calls are posted to the worker.
 * - `closing`: `close()` was called; the worker finishes earlier calls, closes the connection and exits. New calls reject.
 * - `closed`: the worker exited after closing. Calls reject.
 * - `failed`: the worker died (or could not open the file); every call rejects with `error`.
 */
type WorkerState = { kind: 'running' } | { kind: 'closing' } | { kind: 'closed' } | { kind: 'failed'; error: Error }

/** A `Storage` in one SQLite file, served by a worker thread. */
export class SqliteStorage implements Storage {
  /** Adapter name for logs and metrics. */
  readonly kind = 'sqlite'
  /** Path of the database file. */
  readonly file: string
  /**
   * The schema version the file had when this open upgraded it to
   * {@link SQLITE_SCHEMA_VERSION} (relays older than the new version refuse
   * it from now on), or null: a new file, or one already at this version.
   */
  readonly upgradedFrom: number | null
  readonly #worker: Worker
  #state: WorkerState = { kind: 'running' }
  readonly #pending = new Map<number, PendingCall>()
  #nextId = 1
  /** Resolves when the worker thread has exited, for whatever reason. */
  readonly #exited: Promise<void>
  #closing: Promise<void> | null = null
  /** Loads sent to the worker in this turn, sent together at its end. */
  #loads: PendingLoad[] = []
  /** The connection on this thread that answers loads; null for `:memory:` (private to the worker's connection) or once closing. */
  #reader: SqliteDatabase | null
  /** Docs with an append or a checkpoint in flight in the worker, and how many: their loads go to the worker, behind them. */
  readonly #writing = new Map<string, number>()

  /**
   * Checks (creating if needed, with its parent directory) the database file
   * and starts the worker on it. Throws an `Error` naming the file when it
   * cannot be opened, is not a database, or has a newer schema.
   */
  constructor(file: string, options: SqliteStorageOptions = {}) {
    this.file = file
    const { workerUrl, ...connection } = options
    const url = workerUrl ?? defaultWorkerUrl()
    // Fail here, on the caller's thread, with the same errors as a direct open; the
    // connection stays open to answer loads. (A `:memory:` database is private to its
    // connection: the worker gets its own, and answers the loads too.)
    const checked = SqliteDatabase.open(file, connection)
    this.upgradedFrom = checked.upgradedFrom
    if (file === ':memory:') {
      checked.close()
      this.#reader = null
    } else {
      this.#reader = checked.readOnly(READER_CACHE_MB)
    }
    const workerData: SqliteWorkerData = { file, options: connection }
    try {
      this.#worker = new Worker(url, { workerData })
    } catch (error) {
      this.#reader?.close()
      throw error
    }
    // An idle storage does not keep the process alive; a call in flight does (`#call` refs, `#settle` unrefs).
    this.#worker.unref()
    this.#worker.on('message', (response: SqliteResponse) => this.#settle(response))
    this.#worker.on('error', (error) => this.#fail(error))
    this.#worker.on('messageerror', (error) => this.#fail(error))
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        this.#fail(new Error(`exit code ${code}`))
        resolve()
      })
    })
  }

  /** Same as `new SqliteStorage(file, options)`. */
  static open(file: string, options?: SqliteStorageOptions): SqliteStorage {
    return new SqliteStorage(file, options)
  }

  /**
   * Loads a doc's checkpoint and the log appended after it, from one
   * consistent snapshot: read on this thread, unless the doc has a write in
   * flight or the file is locked (see the module documentation). Loads that
   * go to the worker in the same turn go together (`load-many`, at most
   * {@link LOADS_PER_REQUEST} docs a message).
   */
  loadDoc(doc: string): Promise<StoredDoc> {
    try {
      this.#assertUsable()
      assertDocName(doc)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#reader !== null && !this.#writing.has(doc)) {
      try {
        return Promise.resolve(this.#reader.loadDoc(doc))
      } catch (error) {
        if (!isBusy(error)) return Promise.reject(error)
      }
    }
    return new Promise((resolve, reject) => {
      this.#loads.push({ doc, resolve, reject })
      if (this.#loads.length === 1) queueMicrotask(() => this.#sendLoads())
    })
  }

  /** Sends the loads asked for since the last call. */
  #sendLoads(): void {
    const loads = this.#loads
    this.#loads = []
    for (let start = 0; start < loads.length; start += LOADS_PER_REQUEST) {
      const batch = loads.slice(start, start + LOADS_PER_REQUEST)
      try {
        this.#assertUsable()
      } catch (error) {
        for (const load of batch) load.reject(error as Error)
        continue
      }
      if (batch.length === 1) {
        const [{ doc, resolve, reject }] = batch
        this.#call<'load'>({ op: 'load', doc }).then(({ hasCheckpoint, data, lastSeq, authors }) => {
          resolve(storedDoc(hasCheckpoint, unpackBytes(data), lastSeq, authors))
        }, reject)
        continue
      }
      this.#call<'load-many'>({ op: 'load-many', docs: batch.map(({ doc }) => doc) }).then(
        ({ docs, data }) => {
          const chunks = unpackBytes(data)
          let next = 0
          docs.forEach((entry, k) => {
            if (!entry.ok) return batch[k].reject(deserializeError(entry.error))
            batch[k].resolve(storedDoc(entry.hasCheckpoint, chunks.slice(next, (next += entry.count)), entry.lastSeq, entry.authors))
          })
        },
        (error: Error) => {
          for (const load of batch) load.reject(error)
        },
      )
    }
  }

  /** Appends the updates of several docs in one transaction (one durable commit). */
  async appendUpdates(batch: DocUpdates[]): Promise<AppendResult> {
    this.#assertUsable()
    assertBatch(batch)
    if (batch.length === 0) return new Map()
    // The updates are still in use by the caller (fan-out, retries): they are
    // copied once into a buffer that is transferred, not shared.
    const docs = batch.map(({ doc, updates, authors }): AppendEntry => ({ doc, updateCount: updates.length, ...(authors && { authors }) }))
    const data = packBytes(batch.flatMap(({ updates }) => updates))
    return this.#writingTo(
      docs.map(({ doc }) => doc),
      this.#call<'append'>({ op: 'append', docs, data }, [data.buffer]),
    )
  }

  /** Replaces the doc's checkpoint and deletes the log entries with seq ≤ `uptoSeq`, in one transaction. */
  async writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void> {
    this.#assertUsable()
    assertDocName(doc)
    assertBytes(state, `checkpoint state of doc "${doc}"`)
    const packed = packBytes([state])
    await this.#writingTo([doc], this.#call<'checkpoint'>({ op: 'checkpoint', doc, state: packed, uptoSeq }, [packed.buffer]))
  }

  /** Counts `docs` as written until `write` settles (their loads go to the worker meanwhile), and returns it. */
  #writingTo<T>(docs: readonly string[], write: Promise<T>): Promise<T> {
    for (const doc of docs) this.#writing.set(doc, (this.#writing.get(doc) ?? 0) + 1)
    const done = (): void => {
      for (const doc of docs) {
        const left = this.#writing.get(doc)! - 1
        if (left === 0) this.#writing.delete(doc)
        else this.#writing.set(doc, left)
      }
    }
    write.then(done, done)
    return write
  }

  /** Names of stored docs starting with `prefix` (taken literally, no wildcards), sorted. */
  async listDocs(prefix: string): Promise<string[]> {
    this.#assertUsable()
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    return this.#call<'list-docs'>({ op: 'list-docs', prefix })
  }

  /** Stored docs starting with `prefix` with their last sequence numbers, in the order of `listDocs`; with `page`, that page. */
  async listDocSeqs(prefix: string, page?: ListPage): Promise<DocSeq[]> {
    this.#assertUsable()
    assertListing(prefix, page)
    return this.#call<'list-doc-seqs'>(page === undefined ? { op: 'list-doc-seqs', prefix } : { op: 'list-doc-seqs', prefix, page })
  }

  /** Upserts last-seen records of every workspace in one transaction (one fsync); `lastSeen` never moves back. */
  async recordPresence(batch: readonly WorkspacePresence[]): Promise<void> {
    this.#assertUsable()
    assertPresence(batch)
    if (batch.every(({ records }) => records.length === 0)) return
    await this.#call<'record-presence'>({ op: 'record-presence', batch })
  }

  /** Users seen in a workspace, most recent first. */
  async listPresence(workspace: string): Promise<PresenceRecord[]> {
    this.#assertUsable()
    return this.#call<'list-presence'>({ op: 'list-presence', workspace })
  }

  /** Resolves when the worker answers a trivial query. */
  async ping(): Promise<void> {
    this.#assertUsable()
    await this.#call<'ping'>({ op: 'ping' })
  }

  /**
   * Lets the worker finish the calls made before, closes the connection
   * (checkpointing the WAL) and waits for the thread to end. Idempotent;
   * later calls reject.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown()
    return this.#closing
  }

  async #shutDown(): Promise<void> {
    if (this.#state.kind !== 'running') return
    // closed before the worker's connection, which is then the last one and checkpoints the WAL
    this.#reader?.close()
    this.#reader = null
    const closed = this.#call<'close'>({ op: 'close' })
    this.#state = { kind: 'closing' }
    // Keep the process alive until the thread is gone (a caller may `await close()` last).
    this.#worker.ref()
    try {
      await closed
    } finally {
      await this.#exited
    }
  }

  /** Throws unless calls can be posted (rejecting the caller's promise: every method is async). */
  #assertUsable(): void {
    if (this.#state.kind === 'failed') throw this.#state.error
    if (this.#state.kind !== 'running') throw closedError(this.kind)
  }

  /** Posts `call` to the worker; resolves with its answer. */
  #call<Op extends SqliteCall['op']>(call: SqliteCall & { op: Op }, transfer: ArrayBuffer[] = []): Promise<SqliteResults[Op]> {
    // loads asked for earlier go first: calls reach the worker in the order they were made
    if (this.#loads.length > 0 && call.op !== 'load' && call.op !== 'load-many') this.#sendLoads()
    const id = this.#nextId++
    return new Promise<SqliteResults[Op]>((resolve, reject) => {
      // Posting throws only for a value that cannot be cloned; the call then never reached the worker.
      this.#worker.postMessage({ ...call, id }, transfer)
      this.#pending.set(id, { resolve: resolve as PendingCall['resolve'], reject })
      if (this.#pending.size === 1) this.#worker.ref()
    })
  }

  /** Settles the call the worker answered. */
  #settle(response: SqliteResponse): void {
    const call = this.#pending.get(response.id)
    if (call === undefined) return
    this.#pending.delete(response.id)
    if (this.#pending.size === 0 && this.#state.kind === 'running') this.#worker.unref()
    if (response.ok) call.resolve(response.value)
    else call.reject(deserializeError(response.error))
  }

  /** The worker is gone (or unusable): rejects every call in flight and, unless it was closing, every later call. */
  #fail(cause: Error): void {
    const state = this.#state
    if (state.kind === 'failed' || state.kind === 'closed') return
    const error =
      state.kind === 'closing'
        ? closedError(this.kind)
        : new Error(`SQLite storage worker stopped (${cause.message}); ${this.file} is unavailable until the relay restarts`, { cause })
    this.#state = state.kind === 'closing' ? { kind: 'closed' } : { kind: 'failed', error }
    this.#reader?.close()
    this.#reader = null
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const call of pending) call.reject(error)
  }
}
