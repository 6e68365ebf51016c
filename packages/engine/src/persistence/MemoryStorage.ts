/**
 * In-memory adapter of the storage port: for tests, and the record store's
 * fallback when IndexedDB is unavailable (data then lives as long as the
 * page). One instance is one "device": give the same instance to a new
 * `RecordStore` to simulate a reload.
 *
 * @module persistence/MemoryStorage
 */
import type { CatalogEntry } from '../model/CatalogEntry.js'
import {
  StorageError,
  StorageFailure,
  type CatalogStorage,
  type RecordMeta,
  type RecordStorage,
  type StorageBackend,
  type StoredRecord,
} from './Storage.js'

interface MemoryRecord {
  rows: Uint8Array[]
  meta: RecordMeta
}

/** Memory adapter of the storage port. */
export class MemoryStorage implements StorageBackend {
  readonly kind: string = 'memory'
  /** Record data by id (inspect it in tests). */
  readonly records = new Map<string, MemoryRecord>()
  /** Catalog entries by id. */
  readonly catalog = new Map<string, CatalogEntry>()

  /** Open storages of each record (what {@link removeRecord} leaves alone). */
  readonly opened = new Map<string, number>()

  async openRecord(recordId: string): Promise<RecordStorage> {
    const created = !this.records.has(recordId)
    if (created) this.records.set(recordId, { rows: [], meta: {} })
    this.opened.set(recordId, (this.opened.get(recordId) ?? 0) + 1)
    return new MemoryRecordStorage(this, recordId, created)
  }

  /** Removes the record unless a storage of it is open, if `check` accepts what it holds. */
  async removeRecord(recordId: string, check: (stored: StoredRecord) => boolean): Promise<boolean> {
    if ((this.opened.get(recordId) ?? 0) > 0) return false
    const record = this.records.get(recordId)
    if (record !== undefined && !check({ updates: [...record.rows], meta: { ...record.meta } })) return false
    this.records.delete(recordId)
    return true
  }

  async openCatalog(): Promise<CatalogStorage> {
    return new MemoryCatalogStorage(this.catalog)
  }

  async listRecords(): Promise<string[]> {
    return [...this.records.keys()]
  }

  async wipe(): Promise<void> {
    this.records.clear()
    this.catalog.clear()
  }
}

class MemoryRecordStorage implements RecordStorage {
  onLost: ((error: StorageError) => void) | null = null
  private closed = false

  constructor(
    private readonly backend: MemoryStorage,
    private readonly id: string,
    readonly created: boolean,
  ) {}

  get rowCount(): number {
    return this.backend.records.get(this.id)?.rows.length ?? 0
  }

  async load(): Promise<StoredRecord> {
    const record = this.record('loading')
    return { updates: [...record.rows], meta: { ...record.meta } }
  }

  async write(updates: readonly Uint8Array[], meta: RecordMeta = {}): Promise<void> {
    await Promise.resolve()
    const record = this.record('saving')
    for (const update of updates) record.rows.push(update.slice())
    if (meta.acked !== undefined) record.meta.acked = meta.acked.slice()
    if (meta.fieldClocks !== undefined) record.meta.fieldClocks = structuredClone(meta.fieldClocks)
    if (meta.authors !== undefined) record.meta.authors = structuredClone(meta.authors)
    if (meta.viewed !== undefined) record.meta.viewed = meta.viewed.slice()
    if (meta.ownClients !== undefined) record.meta.ownClients = [...meta.ownClients]
  }

  async compact(merge: (rows: Uint8Array[]) => Uint8Array): Promise<void> {
    await Promise.resolve()
    const record = this.record('compacting')
    record.rows = [merge([...record.rows])]
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    const open = (this.backend.opened.get(this.id) ?? 1) - 1
    if (open > 0) this.backend.opened.set(this.id, open)
    else this.backend.opened.delete(this.id)
  }

  private record(doing: string): MemoryRecord {
    const record = this.backend.records.get(this.id)
    if (this.closed || record === undefined) {
      throw new StorageError(StorageFailure.closed, `${doing} record "${this.id}": its storage is closed or wiped`)
    }
    return record
  }
}

class MemoryCatalogStorage implements CatalogStorage {
  onLost: ((error: StorageError) => void) | null = null

  constructor(private readonly entries: Map<string, CatalogEntry>) {}

  async loadAll(): Promise<CatalogEntry[]> {
    return [...this.entries.values()].map((entry) => structuredClone(entry))
  }

  async put(entries: readonly CatalogEntry[]): Promise<void> {
    await Promise.resolve()
    for (const entry of entries) this.entries.set(entry.id, structuredClone(entry))
  }

  async remove(ids: readonly string[]): Promise<void> {
    await Promise.resolve()
    for (const id of ids) this.entries.delete(id)
  }

  close(): void {}
}
