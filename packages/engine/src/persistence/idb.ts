/**
 * Small promise helpers over the IndexedDB API. Every failure is turned into
 * a {@link StorageError}; nothing here throws synchronously.
 *
 * @module persistence/idb
 */
import { StorageError, StorageFailure, classifyStorageError } from './Storage.js'

/** Opens (creating / upgrading when needed) a database. */
/**
 * `bytes` on a buffer of its own. Storing a typed array stores (structured
 * clone) its whole underlying buffer, not just its view: an update read out
 * of a relay message that carries many docs (`fetched-many`, `resumed`) would
 * store the whole message with every record.
 */
export const ownBytes = (bytes: Uint8Array): Uint8Array =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()

export const openDatabase = (
  factory: IDBFactory | undefined,
  name: string,
  version: number | undefined,
  upgrade: (db: IDBDatabase, request: IDBOpenDBRequest) => void,
): Promise<IDBDatabase> =>
  new Promise((resolve, reject) => {
    if (factory === undefined || factory === null) {
      reject(new StorageError(StorageFailure.unavailable, 'IndexedDB is not available in this environment'))
      return
    }
    let request: IDBOpenDBRequest
    try {
      request = version === undefined ? factory.open(name) : factory.open(name, version)
    } catch (error) {
      reject(new StorageError(StorageFailure.unavailable, `IndexedDB refused to open "${name}": ${String(error)}`, error))
      return
    }
    request.onupgradeneeded = () => {
      try {
        upgrade(request.result, request)
      } catch (error) {
        request.transaction?.abort()
        reject(classifyStorageError(error, `upgrading "${name}"`))
      }
    }
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => {
      const error = request.error
      reject(
        (error as { name?: string } | null)?.name === 'QuotaExceededError'
          ? classifyStorageError(error, `opening "${name}"`)
          : new StorageError(StorageFailure.unavailable, `IndexedDB could not open "${name}": ${String(error)}`, error),
      )
    }
    request.onblocked = () => {
      // Another connection holds an older version open; it gets `versionchange` and closes.
    }
  })

/**
 * Runs `body` in a transaction and resolves with its result when the
 * transaction completed (committed). Rejects when it aborted or failed.
 */
export const transact = <T>(
  db: IDBDatabase,
  stores: string[],
  mode: IDBTransactionMode,
  doing: string,
  body: (tx: IDBTransaction) => T,
  durability: 'strict' | 'relaxed' | 'default' = 'strict',
): Promise<T> =>
  new Promise((resolve, reject) => {
    let tx: IDBTransaction
    let result: T
    try {
      // `durability: 'strict'` makes the browser flush to disk before
      // `complete`, so "saved" survives a power cut, not only a tab crash.
      tx = db.transaction(stores, mode, mode === 'readwrite' ? { durability } : undefined)
    } catch (error) {
      reject(classifyStorageError(error, doing))
      return
    }
    let failed: StorageError | null = null
    tx.oncomplete = () => (failed === null ? resolve(result) : reject(failed))
    tx.onerror = (event) => {
      failed ??= classifyStorageError(tx.error ?? (event.target as IDBRequest | null)?.error, doing)
    }
    tx.onabort = () => reject(failed ?? classifyStorageError(tx.error ?? new Error('transaction aborted'), doing))
    try {
      result = body(tx)
    } catch (error) {
      failed = classifyStorageError(error, doing)
      try {
        tx.abort()
      } catch {
        // already finished
      }
    }
  })

/** Resolves with a request's result (inside a transaction). */
export const request = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })

/** Deletes a database; resolves when deleted. Rejects after `timeout` ms if other connections keep it blocked. */
export const deleteDatabase = (factory: IDBFactory | undefined, name: string, timeout = 10_000): Promise<void> =>
  new Promise((resolve, reject) => {
    if (factory === undefined) {
      resolve()
      return
    }
    let req: IDBOpenDBRequest
    try {
      req = factory.deleteDatabase(name)
    } catch (error) {
      reject(classifyStorageError(error, `deleting "${name}"`))
      return
    }
    let timer: ReturnType<typeof setTimeout> | null = null
    req.onsuccess = () => {
      if (timer !== null) clearTimeout(timer)
      resolve()
    }
    req.onerror = () => {
      if (timer !== null) clearTimeout(timer)
      reject(classifyStorageError(req.error, `deleting "${name}"`))
    }
    req.onblocked = () => {
      timer ??= setTimeout(
        () =>
          reject(new StorageError(StorageFailure.failed, `deleting "${name}" is blocked: another tab keeps it open and does not close it`)),
        timeout,
      )
    }
  })
