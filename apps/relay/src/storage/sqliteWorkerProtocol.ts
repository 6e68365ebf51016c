/**
 * Messages between `SqliteStorage` (main thread) and its storage worker
 * (`sqliteWorker.ts`), and the helpers both sides use to encode them.
 *
 * The main thread posts one {@link SqliteRequest} per storage call, each with
 * a fresh `id`; the worker answers every request with one
 * {@link SqliteResponse} carrying the same `id`, in the order the requests
 * arrived. Byte strings (updates, checkpoints) travel packed into a single
 * `ArrayBuffer` that is transferred, not cloned ({@link packBytes}); errors
 * travel as {@link SerializedError} because a structured clone drops the
 * `code` of a `SqliteError` (`SQLITE_FULL`, `SQLITE_BUSY`…).
 *
 * @example
 * ```ts
 * const data = packBytes(updates)
 * worker.postMessage({ id: 1, op: 'append', docs: [{ doc: 'notes', updateCount: updates.length }], data }, [data.buffer])
 * ```
 *
 * @module storage/sqliteWorkerProtocol
 */

import type { AppendResult, AuthorBinding, DocSeq, ListPage, PresenceRecord, WorkspacePresence } from './Storage.js'
import type { SqliteConnectionOptions } from './SqliteDatabase.js'

/** What the worker is started with (`workerData`). */
export interface SqliteWorkerData {
  file: string
  options: SqliteConnectionOptions
}

/** Byte strings laid end to end in one buffer, so they cross threads as one transfer. */
export interface PackedBytes {
  buffer: ArrayBuffer
  /** Length of each byte string, in order. */
  lengths: number[]
}

/** One doc of an `append` request; its updates are the next `updateCount` byte strings of the request's `data`. */
export interface AppendEntry {
  doc: string
  updateCount: number
  authors?: AuthorBinding[]
}

/** A loaded doc as the worker sends it: `data` holds the checkpoint (when `hasCheckpoint`), then the log. */
export interface PackedDoc {
  hasCheckpoint: boolean
  data: PackedBytes
  lastSeq: number
  authors: AuthorBinding[]
}

/**
 * One doc of a `load-many` answer: where its byte strings are in the answer's
 * `data` (the next `count` of them: the checkpoint when `hasCheckpoint`, then
 * the log), or the error loading it threw.
 */
export type LoadManyEntry =
  { ok: true; hasCheckpoint: boolean; count: number; lastSeq: number; authors: AuthorBinding[] } | { ok: false; error: SerializedError }

/** What each operation answers with. */
export interface SqliteResults {
  load: PackedDoc
  /** The docs in the order asked for; all their bytes in one buffer. */
  'load-many': { docs: LoadManyEntry[]; data: PackedBytes }
  append: AppendResult
  checkpoint: undefined
  'list-docs': string[]
  'list-doc-seqs': DocSeq[]
  'record-presence': undefined
  'list-presence': PresenceRecord[]
  ping: undefined
  close: undefined
}

/** The operations the worker performs. */
export type SqliteOp = keyof SqliteResults

/** A request from the main thread, without its `id`. */
export type SqliteCall =
  | { op: 'load'; doc: string }
  /** Several docs loaded at once (one message each way instead of one per doc); each from its own snapshot, as `load`. */
  | { op: 'load-many'; docs: string[] }
  | { op: 'append'; docs: AppendEntry[]; data: PackedBytes }
  | { op: 'checkpoint'; doc: string; state: PackedBytes; uptoSeq: number }
  | { op: 'list-docs'; prefix: string }
  | { op: 'list-doc-seqs'; prefix: string; page?: ListPage }
  | { op: 'record-presence'; batch: readonly WorkspacePresence[] }
  | { op: 'list-presence'; workspace: string }
  | { op: 'ping' }
  /** Closes the connection; the worker answers, then exits. */
  | { op: 'close' }

/** A request from the main thread. */
export type SqliteRequest = SqliteCall & { id: number }

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  name: string
  message: string
  /** SQLite's result code name (`SQLITE_FULL`…) or a Node error code. */
  code?: string
}

/** The worker's answer to the request with the same `id`. */
export type SqliteResponse = { id: number; ok: true; value: SqliteResults[SqliteOp] } | { id: number; ok: false; error: SerializedError }

/** Copies `chunks` end to end into one new buffer (the only copy they get on their way across). */
export function packBytes(chunks: readonly Uint8Array[]): PackedBytes {
  let total = 0
  for (const chunk of chunks) total += chunk.byteLength
  const bytes = new Uint8Array(total)
  const lengths: number[] = []
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
    lengths.push(chunk.byteLength)
  }
  return { buffer: bytes.buffer, lengths }
}

/** Views of the byte strings in `packed`, in order; they share its buffer (no copy). */
export function unpackBytes(packed: PackedBytes): Uint8Array[] {
  const chunks: Uint8Array[] = []
  let offset = 0
  for (const length of packed.lengths) {
    chunks.push(new Uint8Array(packed.buffer, offset, length))
    offset += length
  }
  return chunks
}

/** Encodes a thrown value for the other thread. */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) }
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? { name: error.name, message: error.message, code } : { name: error.name, message: error.message }
}

/**
 * Rebuilds an error thrown in the other thread: same message, `name` and
 * `code`, and a `TypeError`/`RangeError` stays one (argument errors).
 */
export function deserializeError({ name, message, code }: SerializedError): Error {
  const error = name === 'TypeError' ? new TypeError(message) : name === 'RangeError' ? new RangeError(message) : new Error(message)
  if (error.name !== name) error.name = name
  if (code !== undefined) Object.assign(error, { code })
  return error
}
