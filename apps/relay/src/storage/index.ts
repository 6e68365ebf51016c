/**
 * The relay's storage: the port and its adapters.
 *
 * @example
 * ```ts
 * const storage = openStorage('sqlite', '/var/lib/concord') // → /var/lib/concord/concord.sqlite
 * ```
 *
 * @module storage
 */

import path from 'node:path'
import { MemoryStorage } from './MemoryStorage.js'
import { SqliteStorage } from './SqliteStorage.js'
import type { Storage } from './Storage.js'

export type { AppendResult, DocSeq, DocUpdates, Storage, StoredDoc } from './Storage.js'
export { MemoryStorage } from './MemoryStorage.js'
export { SqliteStorage, SQLITE_SCHEMA_VERSION } from './SqliteStorage.js'
export type { SqliteStorageOptions } from './SqliteStorage.js'

/** The storage kinds `openStorage` knows. */
export type StorageKind = 'sqlite' | 'memory'

/** Name of the SQLite file inside the data directory. */
export const SQLITE_FILE_NAME = 'concord.sqlite'

/**
 * Opens the storage of the given kind. `sqlite` uses (and creates)
 * `<dataDir>/concord.sqlite`; `memory` ignores `dataDir`.
 */
export function openStorage(kind: StorageKind, dataDir: string): Storage {
  switch (kind) {
    case 'memory':
      return new MemoryStorage()
    case 'sqlite':
      return SqliteStorage.open(path.join(dataDir, SQLITE_FILE_NAME))
    default:
      throw new TypeError(`unknown storage kind: ${String(kind satisfies never)}`)
  }
}
