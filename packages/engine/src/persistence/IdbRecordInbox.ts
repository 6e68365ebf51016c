/**
 * IndexedDB adapter of the {@link RecordInbox}: records fetched from the
 * relay that were never opened on this device, kept in **one database** of
 * the user and workspace instead of one y-indexeddb database each.
 *
 * Creating and writing a database costs Chromium about 5–12 ms, so a new
 * device storing 10,000 records one database each spends minutes doing
 * it; here a transaction stores many records (every put made while one
 * transaction runs shares the next), keyed by record id (the database is
 * the workspace's, so the id names the doc):
 *
 *     concord/<userId>/<workspaceId>/inbox   store `records`:
 *       <recordId> → { update, acked?, authors?, viewed?, revision }
 *
 * `update` is everything the inbox holds of the record, merged into one Yjs
 * update; `revision` counts the puts, so a move into the record's own
 * database ({@link IdbRecordInbox.moveInto}, when the record is first opened)
 * removes only what it moved. A crash between the write into the record's
 * database and the removal leaves the entry, which the next open writes
 * again: Yjs updates are idempotent. Two tabs moving the same record both
 * write it and one removes it; a pull merging into the entry meanwhile
 * bumps the revision, and the newer entry is moved too.
 *
 * @example
 *   const inbox = new IdbRecordInbox(indexedDB, inboxDatabaseName('u1', 'acme'))
 *   await inbox.put('T-1', update, { acked })   // committed: T-1 is offline
 *   await inbox.moveInto('T-1', recordStorage, false)
 *
 * @module persistence/IdbRecordInbox
 */
import * as Y from 'yjs'
import type { AuthorInfo } from '../protocol/messages.js'
import { maxStateVector } from '../protocol/stateVector.js'
import { openDatabase, ownBytes, transact } from './idb.js'
import { classifyStorageError, type RecordInbox, type RecordMeta, type RecordStorage, type StoredRecord } from './Storage.js'

/** Object store of the inbox database. */
export const INBOX_STORE = 'records'
/** Most puts written in one transaction. */
const INBOX_BATCH = 500

/** One record in the inbox. */
interface InboxRow {
  /** Everything held of the record, one Yjs update. */
  update: Uint8Array
  /** Encoded state vector the relay durably stored. */
  acked?: Uint8Array
  /** Author bindings the relay sent. */
  authors?: AuthorInfo[]
  /** Encoded state vector of what this device was last told about. */
  viewed?: Uint8Array
  /** Puts merged into this entry so far. */
  revision: number
}

/** The meta an inbox entry keeps. */
type InboxMeta = Pick<RecordMeta, 'acked' | 'authors' | 'viewed'>

/** A put waiting for its transaction. */
interface QueuedPut {
  recordId: string
  update: Uint8Array
  meta: InboxMeta
  resolve: () => void
  reject: (error: unknown) => void
}

/** IndexedDB adapter of the record inbox. See the module documentation. */
export class IdbRecordInbox implements RecordInbox {
  private readonly factory: IDBFactory
  private readonly name: string
  /** The open connection (opened on first use, dropped when another tab deletes the database). */
  private connecting: Promise<IDBDatabase> | null = null
  /** Puts waiting for the next transaction. */
  private readonly queued: QueuedPut[] = []
  /** Whether the loop writing queued puts runs. */
  private writing = false

  constructor(factory: IDBFactory, name: string) {
    this.factory = factory
    this.name = name
  }

  async get(recordId: string): Promise<StoredRecord | undefined> {
    const row = await this.read(recordId)
    return row === undefined ? undefined : { updates: [row.update], meta: metaOf(row) }
  }

  put(recordId: string, update: Uint8Array, meta: InboxMeta): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queued.push({ recordId, update, meta, resolve, reject })
      if (!this.writing) void this.writeQueued()
    })
  }

  /** Ids of every record in the inbox. */
  async ids(): Promise<string[]> {
    const db = await this.connection()
    const out: { keys: IDBValidKey[] } = { keys: [] }
    await transact(db, [INBOX_STORE], 'readonly', `reading "${this.name}"`, (tx) => {
      const req = tx.objectStore(INBOX_STORE).getAllKeys()
      req.onsuccess = () => (out.keys = req.result)
    })
    return out.keys.filter((key): key is string => typeof key === 'string')
  }

  /**
   * Moves the record's entry into its own storage: writes the entry's
   * update and meta there (merged with the meta it holds when
   * `storageMayHoldData`), then removes the entry — unless a put changed
   * it meanwhile, then the newer entry is moved too. Resolves with whether
   * anything was moved.
   */
  async moveInto(recordId: string, storage: RecordStorage, storageMayHoldData: boolean): Promise<boolean> {
    let moved = false
    for (;;) {
      const row = await this.read(recordId)
      if (row === undefined) return moved
      const own = storageMayHoldData || moved ? (await storage.load()).meta : {}
      await storage.write([row.update], mergeMeta(own, metaOf(row)))
      moved = true
      if (await this.removeIfUnchanged(recordId, row.revision)) return true
    }
  }

  /**
   * Removes the record's entry if `check` accepts what it holds (called
   * with the entry, or undefined when there is none). The entry is removed
   * only if no put changed it since it was read; resolves with whether
   * the inbox holds nothing of the record afterwards.
   */
  async removeChecked(recordId: string, check: (stored: StoredRecord | undefined) => boolean): Promise<boolean> {
    const row = await this.read(recordId)
    if (!check(row === undefined ? undefined : { updates: [row.update], meta: metaOf(row) })) return false
    if (row === undefined) return true
    const db = await this.connection()
    const out = { gone: false }
    await transact(db, [INBOX_STORE], 'readwrite', `removing "${recordId}" from "${this.name}"`, (tx) => {
      const store = tx.objectStore(INBOX_STORE)
      const req = store.get(recordId)
      req.onsuccess = () => {
        const now = req.result as InboxRow | undefined
        out.gone = now === undefined || now.revision === row.revision
        if (now !== undefined && out.gone) store.delete(recordId)
      }
    })
    return out.gone
  }

  /** Closes the connection (before the database is deleted at sign-out); the next use opens it again. */
  close(): void {
    const connecting = this.connecting
    this.connecting = null
    void connecting?.then(
      (db) => db.close(),
      () => undefined,
    )
  }

  /** The open connection, opening (and creating) the database when needed. */
  private connection(): Promise<IDBDatabase> {
    if (this.connecting !== null) return this.connecting
    const connecting = openDatabase(this.factory, this.name, 1, (db) => {
      if (!db.objectStoreNames.contains(INBOX_STORE)) db.createObjectStore(INBOX_STORE)
    }).then(
      (db) => {
        const drop = (): void => {
          db.close()
          if (this.connecting === connecting) this.connecting = null
        }
        // Another tab deletes the database (sign-out) or the browser closed it: let go; the next use opens it again.
        db.onversionchange = drop
        ;(db as IDBDatabase & { onclose: (() => void) | null }).onclose = drop
        return db
      },
      (error: unknown) => {
        if (this.connecting === connecting) this.connecting = null
        throw error
      },
    )
    this.connecting = connecting
    return connecting
  }

  private async read(recordId: string): Promise<InboxRow | undefined> {
    const db = await this.connection()
    const out: { row: InboxRow | undefined } = { row: undefined }
    await transact(db, [INBOX_STORE], 'readonly', `reading "${recordId}" from "${this.name}"`, (tx) => {
      const req = tx.objectStore(INBOX_STORE).get(recordId)
      req.onsuccess = () => (out.row = req.result as InboxRow | undefined)
    })
    return out.row === undefined ? undefined : { ...out.row, update: toUint8Array(out.row.update) }
  }

  /**
   * Writes queued puts, up to {@link INBOX_BATCH} per transaction, until none
   * are left. Never rejects: each put's promise carries its own outcome.
   */
  private async writeQueued(): Promise<void> {
    this.writing = true
    while (this.queued.length > 0) {
      let db: IDBDatabase
      try {
        db = await this.connection()
      } catch (error) {
        for (const put of this.queued.splice(0)) put.reject(error)
        break
      }
      // Taken after the await: puts made while the database opened join this transaction.
      const batch = this.queued.splice(0, INBOX_BATCH)
      try {
        let mergeError: unknown = null
        await transact(db, [INBOX_STORE], 'readwrite', `saving ${batch.length} records in "${this.name}"`, (tx) => {
          const store = tx.objectStore(INBOX_STORE)
          // Read and written in this transaction: another tab's put to the same entry is merged, not overwritten;
          // so are several puts of one record in this batch, in order.
          const puts = new Map<string, QueuedPut[]>()
          for (const put of batch) {
            const same = puts.get(put.recordId)
            if (same === undefined) puts.set(put.recordId, [put])
            else same.push(put)
          }
          const write = (recordId: string, row: InboxRow | undefined): void => {
            try {
              let merged = row
              for (const put of puts.get(recordId)!) merged = mergeRow(merged, put)
              store.put(merged, recordId)
            } catch (error) {
              mergeError ??= error
              tx.abort()
            }
          }
          const readAndWrite = (recordId: string): void => {
            const req = store.get(recordId)
            req.onsuccess = () => write(recordId, req.result as InboxRow | undefined)
          }
          const KeyRange = (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange
          if (KeyRange === undefined || puts.size === 1) {
            for (const recordId of puts.keys()) readAndWrite(recordId)
            return
          }
          // Which of them have an entry already, in one read of the keys between the lowest and the highest id
          // (a pull stores records in the order the relay lists them, so a batch spans a narrow range): only
          // those are read before they are written; on a new device, none.
          const ids = [...puts.keys()].sort()
          const keys = store.getAllKeys(KeyRange.bound(ids[0], ids[ids.length - 1]))
          keys.onsuccess = () => {
            const existing = new Set(keys.result)
            for (const recordId of ids) {
              if (existing.has(recordId)) readAndWrite(recordId)
              else write(recordId, undefined)
            }
          }
        }).catch((error: unknown) => {
          throw mergeError === null ? error : classifyStorageError(mergeError, `saving records in "${this.name}"`)
        })
        for (const put of batch) put.resolve()
      } catch (error) {
        for (const put of batch) put.reject(error)
      }
    }
    // Cleared in the same turn as the last batch resolved (no await between), so a put made by
    // one of its awaiters starts a new loop instead of joining one that has ended.
    this.writing = false
  }

  /** Removes the entry if it is still at `revision`; resolves with whether it is gone. */
  private async removeIfUnchanged(recordId: string, revision: number): Promise<boolean> {
    const db = await this.connection()
    const out = { gone: false }
    await transact(
      db,
      [INBOX_STORE],
      'readwrite',
      `removing "${recordId}" from "${this.name}"`,
      (tx) => {
        const store = tx.objectStore(INBOX_STORE)
        const req = store.get(recordId)
        req.onsuccess = () => {
          const row = req.result as InboxRow | undefined
          out.gone = row === undefined || row.revision === revision
          if (row !== undefined && out.gone) store.delete(recordId)
        }
      },
      // A lost removal only means the entry is moved (written) again at the next open.
      'relaxed',
    )
    return out.gone
  }
}

/** The entry after `put` is merged into `row`. */
const mergeRow = (row: InboxRow | undefined, put: QueuedPut): InboxRow => {
  const meta = row === undefined ? put.meta : mergeMeta(metaOf(row), put.meta)
  const merged: InboxRow = {
    update: row === undefined ? ownBytes(put.update) : Y.mergeUpdates([toUint8Array(row.update), put.update]),
    ...meta,
    revision: (row?.revision ?? 0) + 1,
  }
  if (merged.acked !== undefined) merged.acked = ownBytes(merged.acked)
  if (merged.viewed !== undefined) merged.viewed = ownBytes(merged.viewed)
  return merged
}

/** The meta of an entry, without keys it does not have. */
const metaOf = (row: InboxRow): InboxMeta => {
  const meta: InboxMeta = {}
  if (row.acked !== undefined) meta.acked = toUint8Array(row.acked)
  if (row.authors !== undefined) meta.authors = row.authors
  if (row.viewed !== undefined) meta.viewed = toUint8Array(row.viewed)
  return meta
}

/** Both metas in one: state vectors by their maximum, authors by client id (`b` wins). */
const mergeMeta = (a: RecordMeta, b: InboxMeta): InboxMeta => {
  const meta: InboxMeta = {}
  const acked = maxEncoded(a.acked, b.acked)
  if (acked !== undefined) meta.acked = acked
  const viewed = maxEncoded(a.viewed, b.viewed)
  if (viewed !== undefined) meta.viewed = viewed
  if (a.authors !== undefined || b.authors !== undefined) {
    const authors = new Map((a.authors ?? []).map((author) => [author.clientId, author]))
    for (const author of b.authors ?? []) authors.set(author.clientId, author)
    meta.authors = [...authors.values()]
  }
  return meta
}

/** The larger of two encoded state vectors, client by client. */
const maxEncoded = (a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined =>
  a === undefined ? b : b === undefined ? a : Y.encodeStateVector(maxStateVector(Y.decodeStateVector(a), Y.decodeStateVector(b)))

/** Values written by other code may come back as ArrayBuffer or a typed-array view. */
const toUint8Array = (value: unknown): Uint8Array => {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw classifyStorageError(new Error(`unexpected value of type ${typeof value} in the inbox`), 'loading')
}
