/**
 * In-memory storage adapter, for tests and for running a relay without
 * persistence (`--storage memory`). Data is lost when the process exits.
 *
 * Buffers are copied on the way in and on the way out, so callers can never
 * mutate stored data through a buffer they passed in or got back.
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage()
 * await storage.appendUpdates([{ doc: 'notes', updates: [update] }])
 * const { checkpoint, updates } = await storage.loadDoc('notes')
 * ```
 *
 * @module storage/MemoryStorage
 */

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
import { assertBatch, assertBytes, assertCheckpointSeq, assertDocName, assertListing, assertPresence, closedError } from './validation.js'

/** One logged update. */
interface LogEntry {
  seq: number
  data: Uint8Array
}

/** Everything stored for one doc. */
interface DocRecord {
  checkpoint: Uint8Array | null
  /** Sequence number covered by `checkpoint` (0 without one). */
  checkpointSeq: number
  log: LogEntry[]
  /** Last sequence number ever given out; never goes back, even when the log is emptied by a checkpoint. */
  lastSeq: number
  authors: Map<number, AuthorBinding>
}

const copy = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes)

/** A `Storage` that keeps everything in a `Map`. */
export class MemoryStorage implements Storage {
  /** Adapter name for logs and metrics. */
  readonly kind = 'memory'
  readonly #docs = new Map<string, DocRecord>()
  readonly #presence = new Map<string, Map<string, PresenceRecord>>()
  #closed = false

  /** Loads a doc's checkpoint and the log appended after it (copies). */
  async loadDoc(doc: string): Promise<StoredDoc> {
    this.#assertOpen()
    assertDocName(doc)
    const record = this.#docs.get(doc)
    if (record === undefined) return { checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] }
    let logBytes = 0
    const updates = record.log.map((entry) => {
      logBytes += entry.data.byteLength
      return copy(entry.data)
    })
    return {
      checkpoint: record.checkpoint === null ? null : copy(record.checkpoint),
      updates,
      lastSeq: record.lastSeq,
      logBytes,
      authors: [...record.authors.values()].map((a) => ({ ...a })),
    }
  }

  /** Appends the updates of several docs atomically: the whole batch is checked before anything is stored. */
  async appendUpdates(batch: DocUpdates[]): Promise<AppendResult> {
    this.#assertOpen()
    assertBatch(batch)
    const result: AppendResult = new Map()
    for (const { doc, updates, authors } of batch) {
      let record = this.#docs.get(doc)
      if ((updates.length > 0 || (authors?.length ?? 0) > 0) && record === undefined) {
        record = { checkpoint: null, checkpointSeq: 0, log: [], lastSeq: 0, authors: new Map() }
        this.#docs.set(doc, record)
      }
      if (record !== undefined) {
        for (const data of updates) record.log.push({ seq: ++record.lastSeq, data: copy(data) })
        for (const a of authors ?? []) {
          record.authors.set(a.clientId, { clientId: a.clientId, userId: a.userId, name: a.name })
        }
      }
      result.set(doc, record?.lastSeq ?? 0)
    }
    return result
  }

  /** Replaces the doc's checkpoint and drops the log entries with seq ≤ `uptoSeq`. */
  async writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void> {
    this.#assertOpen()
    assertDocName(doc)
    assertBytes(state, `checkpoint state of doc "${doc}"`)
    const record = this.#docs.get(doc)
    assertCheckpointSeq(doc, uptoSeq, record?.checkpointSeq ?? 0, record?.lastSeq ?? 0)
    if (record === undefined) {
      this.#docs.set(doc, { checkpoint: copy(state), checkpointSeq: uptoSeq, log: [], lastSeq: 0, authors: new Map() })
      return
    }
    record.checkpoint = copy(state)
    record.checkpointSeq = uptoSeq
    record.log = record.log.filter((entry) => entry.seq > uptoSeq)
  }

  /** Names of stored docs starting with `prefix` (taken literally), sorted. */
  async listDocs(prefix: string): Promise<string[]> {
    this.#assertOpen()
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    return [...this.#docs.keys()].filter((doc) => doc.startsWith(prefix)).sort()
  }

  async listDocSeqs(prefix: string, page?: ListPage): Promise<DocSeq[]> {
    this.#assertOpen()
    assertListing(prefix, page)
    let docs = await this.listDocs(prefix)
    if (page !== undefined) docs = docs.filter((doc) => doc > page.after).slice(0, page.limit)
    return docs.map((doc) => ({ doc, lastSeq: this.#docs.get(doc)!.lastSeq }))
  }

  /** Upserts last-seen records; `lastSeen` never moves back. */
  async recordPresence(batch: readonly WorkspacePresence[]): Promise<void> {
    this.#assertOpen()
    assertPresence(batch)
    for (const { workspace, records } of batch) {
      let users = this.#presence.get(workspace)
      if (users === undefined) this.#presence.set(workspace, (users = new Map()))
      for (const r of records) {
        const known = users.get(r.userId)
        if (known === undefined || known.lastSeen <= r.lastSeen)
          users.set(r.userId, { userId: r.userId, name: r.name, lastSeen: r.lastSeen })
      }
    }
  }

  /** Users seen in a workspace, most recent first. */
  async listPresence(workspace: string): Promise<PresenceRecord[]> {
    this.#assertOpen()
    return [...(this.#presence.get(workspace)?.values() ?? [])].map((r) => ({ ...r })).sort((a, b) => b.lastSeen - a.lastSeen)
  }

  /** Resolves while the storage is open. */
  async ping(): Promise<void> {
    this.#assertOpen()
  }

  /** Drops all data. Idempotent; later calls reject. */
  async close(): Promise<void> {
    this.#closed = true
    this.#docs.clear()
    this.#presence.clear()
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError(this.kind)
  }
}
