/**
 * The relay's storage: the port and its adapters.
 *
 * @example
 * ```ts
 * const storage = openStorage('sqlite', '/var/lib/concord') // → /var/lib/concord/concord.sqlite
 * const shared = openStorage('postgres', '', { databaseUrl: 'postgres://concord@db/concord' })
 * ```
 *
 * @module storage
 */

import path from 'node:path'
import { MemoryStorage } from './MemoryStorage.js'
import { PostgresStorage } from './PostgresStorage.js'
import { SqliteStorage } from './SqliteStorage.js'
import type { Storage } from './Storage.js'

export type { AppendResult, DocSeq, DocUpdates, ListPage, Storage, StoredDoc } from './Storage.js'
export { MemoryStorage } from './MemoryStorage.js'
export { SqliteStorage, SQLITE_SCHEMA_VERSION } from './SqliteStorage.js'
export type { SqliteStorageOptions } from './SqliteStorage.js'
export { PostgresStorage, POSTGRES_SCHEMA_VERSION } from './PostgresStorage.js'
export type { PostgresStorageOptions } from './PostgresStorage.js'

/** The storage kinds `openStorage` knows. */
export type StorageKind = 'sqlite' | 'memory' | 'postgres'

/** Where storages that live outside the data directory are. */
export interface OpenStorageOptions {
  /** `postgres://…` URL of the database `postgres` storage uses. */
  databaseUrl?: string
}

/** Name of the SQLite file inside the data directory. */
export const SQLITE_FILE_NAME = 'concord.sqlite'

/**
 * Opens the storage of the given kind. `sqlite` uses (and creates)
 * `<dataDir>/concord.sqlite`; `memory` ignores `dataDir`; `postgres` uses
 * `options.databaseUrl` and connects in the background (its calls wait for
 * that; `await PostgresStorage.open(url)` instead to fail on an unreachable
 * server right away).
 */
export function openStorage(kind: StorageKind, dataDir: string, options: OpenStorageOptions = {}): Storage {
  switch (kind) {
    case 'memory':
      return new MemoryStorage()
    case 'sqlite':
      return SqliteStorage.open(path.join(dataDir, SQLITE_FILE_NAME))
    case 'postgres':
      if (options.databaseUrl === undefined) throw new TypeError('postgres storage needs a database URL (databaseUrl)')
      return new PostgresStorage(options.databaseUrl)
    default:
      throw new TypeError(`unknown storage kind: ${String(kind satisfies never)}`)
  }
}
