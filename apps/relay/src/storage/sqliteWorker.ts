/**
 * Entry of the SQLite storage worker thread that `SqliteStorage` starts: it
 * owns the relay's only write connection, so SQLite work (statements and the
 * fsync of every commit) never blocks the relay's event loop.
 *
 * It opens the file given in `workerData` (an open failure is thrown, which
 * ends the thread; `SqliteStorage` then fails every call with that error),
 * then answers requests one by one, in arrival order (see
 * `sqliteWorkerProtocol.ts`). Requests are taken in runs: when one arrives,
 * every request already waiting behind it is taken too, and consecutive
 * `append` requests of a run are stored in **one transaction** (worker-side
 * group commit: appends that arrived during the previous commit share the
 * next fsync). Nothing waits for more requests to arrive, so merging never
 * delays a commit. Each append in a merged transaction gets its own result;
 * if the transaction fails, every append in it rejects with that error and
 * none is stored.
 *
 * @module storage/sqliteWorker
 */

import path from 'node:path'
import { parentPort, receiveMessageOnPort, workerData, type MessagePort, type TransferListItem } from 'node:worker_threads'
import { SqliteDatabase, whyNotWritable } from './SqliteDatabase.js'
import type { DocUpdates } from './Storage.js'
import { closedError } from './validation.js'
import {
  packBytes,
  serializeError,
  unpackBytes,
  type LoadManyEntry,
  type SqliteRequest,
  type SqliteResponse,
  type SqliteResults,
  type SqliteWorkerData,
} from './sqliteWorkerProtocol.js'

/** An `append` request. */
type AppendRequest = Extract<SqliteRequest, { op: 'append' }>

/** What one request answers, and the buffers to transfer with it. */
interface Answer {
  value: SqliteResults[keyof SqliteResults]
  transfer: TransferListItem[]
}

/**
 * A failed commit's error, with the reason when the file or its directory
 * cannot be written (SQLite says only "disk I/O error" or "attempt to write a
 * readonly database" when its file system turned read-only, and "database or
 * disk is full" without saying where).
 */
function commitError(error: unknown, file: string): unknown {
  const code = String((error as { code?: unknown } | null)?.code)
  if (!(error instanceof Error) || !/^SQLITE_(IOERR|READONLY|CANTOPEN|FULL)/.test(code)) return error
  // a full file system may still take whyNotWritable's small probe file, and a file-size limit does: the file is named anyway
  const unwritable =
    whyNotWritable(file) ??
    (code.startsWith('SQLITE_FULL') ? `no space left for ${path.resolve(file)}` : `writing ${path.resolve(file)} failed`)
  return Object.assign(new Error(`${error.message}: ${unwritable}`), { name: error.name, code: (error as { code?: unknown }).code })
}

/** Serves requests arriving on `port` against `db` (the database in `file`) until a `close` request. */
function serve(port: MessagePort, db: SqliteDatabase, file: string): void {
  let closed = false

  const reply = (id: number, answer: () => Answer): void => {
    let response: SqliteResponse
    let transfer: TransferListItem[] = []
    try {
      if (closed) throw closedError('sqlite')
      const result = answer()
      response = { id, ok: true, value: result.value }
      transfer = result.transfer
    } catch (error) {
      response = { id, ok: false, error: serializeError(error) }
    }
    port.postMessage(response, transfer)
  }

  /** Stores consecutive appends in one transaction and answers each. */
  const commitAppends = (appends: AppendRequest[]): void => {
    let results: ReturnType<SqliteDatabase['appendBatches']>
    try {
      if (closed) throw closedError('sqlite')
      results = db.appendBatches(appends.map(toDocUpdates))
    } catch (error) {
      const failure = serializeError(commitError(error, file))
      for (const { id } of appends) port.postMessage({ id, ok: false, error: failure } satisfies SqliteResponse)
      return
    }
    appends.forEach(({ id }, k) => port.postMessage({ id, ok: true, value: results[k] } satisfies SqliteResponse))
  }

  const perform = (request: Exclude<SqliteRequest, AppendRequest>): Answer => {
    switch (request.op) {
      case 'load': {
        const stored = db.loadDoc(request.doc)
        const chunks = stored.checkpoint === null ? stored.updates : [stored.checkpoint, ...stored.updates]
        const data = packBytes(chunks)
        const value = { hasCheckpoint: stored.checkpoint !== null, data, lastSeq: stored.lastSeq, authors: stored.authors }
        return { value, transfer: [data.buffer] }
      }
      case 'load-many': {
        const chunks: Uint8Array[] = []
        const docs = request.docs.map((doc): LoadManyEntry => {
          try {
            const stored = db.loadDoc(doc)
            if (stored.checkpoint !== null) chunks.push(stored.checkpoint)
            chunks.push(...stored.updates)
            const count = stored.updates.length + (stored.checkpoint === null ? 0 : 1)
            return { ok: true, hasCheckpoint: stored.checkpoint !== null, count, lastSeq: stored.lastSeq, authors: stored.authors }
          } catch (error) {
            return { ok: false, error: serializeError(error) }
          }
        })
        const data = packBytes(chunks)
        return { value: { docs, data }, transfer: [data.buffer] }
      }
      case 'checkpoint': {
        const [state] = unpackBytes(request.state)
        db.writeCheckpoint(request.doc, state, request.uptoSeq)
        return { value: undefined, transfer: [] }
      }
      case 'list-docs':
        return { value: db.listDocs(request.prefix), transfer: [] }
      case 'list-doc-seqs':
        return { value: db.listDocSeqs(request.prefix, request.page), transfer: [] }
      case 'record-presence':
        db.recordPresence(request.batch)
        return { value: undefined, transfer: [] }
      case 'list-presence':
        return { value: db.listPresence(request.workspace), transfer: [] }
      case 'ping':
        db.ping()
        return { value: undefined, transfer: [] }
      case 'close':
        db.close()
        closed = true
        return { value: undefined, transfer: [] }
      default:
        throw new TypeError(`unknown storage operation: ${String((request satisfies never as { op: unknown }).op)}`)
    }
  }

  port.on('message', (first: SqliteRequest) => {
    // Take every request already waiting, so that appends queued during the
    // previous commit can share one transaction.
    const run = [first]
    for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) {
      run.push(next.message as SqliteRequest)
    }
    for (let i = 0; i < run.length;) {
      const request = run[i]
      if (request.op === 'append') {
        const appends: AppendRequest[] = []
        for (let next = run[i]; next?.op === 'append'; next = run[++i]) appends.push(next)
        commitAppends(appends)
        continue
      }
      reply(request.id, () => perform(request))
      i++
    }
    // Once closed, nothing more arrives: let the thread end.
    if (closed) port.close()
  })
}

/** Rebuilds the batch of an `append` request from its packed updates. */
function toDocUpdates({ docs, data }: AppendRequest): DocUpdates[] {
  const updates = unpackBytes(data)
  let next = 0
  return docs.map(({ doc, updateCount, authors }) => {
    const entry: DocUpdates = { doc, updates: updates.slice(next, next + updateCount) }
    next += updateCount
    return authors === undefined ? entry : { ...entry, authors }
  })
}

if (parentPort === null) throw new Error('sqliteWorker.js runs as a worker thread started by SqliteStorage')
const { file, options } = workerData as SqliteWorkerData
serve(parentPort, SqliteDatabase.open(file, options), file)
