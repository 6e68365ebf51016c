/**
 * Argument checks shared by every storage adapter, so that all adapters
 * reject the same bad input with the same errors, before touching any data
 * (an invalid batch must never be half stored).
 *
 * @module storage/validation
 */

import type { AuthorBinding, DocUpdates, ListPage, PresenceRecord, WorkspacePresence } from './Storage.js'

/** Throws a `TypeError` unless `doc` is a string. */
export function assertDocName(doc: unknown): asserts doc is string {
  if (typeof doc !== 'string') {
    throw new TypeError(`doc name must be a string, got ${typeof doc}`)
  }
}

/** Throws a `TypeError` unless `value` is a `Uint8Array` (a Node `Buffer` is one too). */
export function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a Uint8Array`)
  }
}

/** Checks a whole group-commit batch: an array of `{ doc: string, updates: Uint8Array[] }`. */
export function assertBatch(batch: unknown): asserts batch is DocUpdates[] {
  if (!Array.isArray(batch)) throw new TypeError('batch must be an array')
  for (const entry of batch as unknown[]) {
    if (typeof entry !== 'object' || entry === null) {
      throw new TypeError('batch entries must be { doc, updates } objects')
    }
    const { doc, updates } = entry as Partial<DocUpdates>
    assertDocName(doc)
    if (!Array.isArray(updates)) throw new TypeError(`updates of doc "${doc}" must be an array`)
    for (const update of updates) assertBytes(update, `update of doc "${doc}"`)
    const { authors } = entry as Partial<DocUpdates>
    if (authors !== undefined) {
      if (!Array.isArray(authors)) throw new TypeError(`authors of doc "${doc}" must be an array`)
      for (const author of authors) assertAuthor(author, doc)
    }
  }
}

/** Checks one author binding. */
function assertAuthor(author: unknown, doc: string): asserts author is AuthorBinding {
  const a = author as Partial<AuthorBinding> | null
  if (
    typeof a !== 'object' ||
    a === null ||
    !Number.isSafeInteger(a.clientId) ||
    (a.clientId as number) < 0 ||
    typeof a.userId !== 'string' ||
    typeof a.name !== 'string'
  ) {
    throw new TypeError(`author bindings of doc "${doc}" must be { clientId: non-negative integer, userId: string, name: string }`)
  }
}

/** Checks a listing's prefix and optional page: `{ after: string, limit: positive integer }`. */
export function assertListing(prefix: unknown, page: unknown): asserts page is ListPage | undefined {
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
  if (page === undefined) return
  const p = page as Partial<ListPage> | null
  if (typeof p !== 'object' || p === null || typeof p.after !== 'string' || !Number.isSafeInteger(p.limit) || (p.limit as number) < 1) {
    throw new TypeError('a listing page must be { after: string, limit: positive integer }')
  }
}

/** Checks a batch of presence records: `[{ workspace, records }]`. */
export function assertPresence(batch: unknown): asserts batch is WorkspacePresence[] {
  if (!Array.isArray(batch)) throw new TypeError('presence must be an array of { workspace, records }')
  for (const entry of batch as Array<Partial<WorkspacePresence> | null>) {
    if (typeof entry !== 'object' || entry === null) throw new TypeError('presence must be an array of { workspace, records }')
    const { workspace, records } = entry
    if (typeof workspace !== 'string' || workspace.length === 0) throw new TypeError('workspace must be a non-empty string')
    if (!Array.isArray(records)) throw new TypeError('presence records must be an array')
    for (const r of records as Array<Partial<PresenceRecord> | null>) {
      if (
        typeof r !== 'object' ||
        r === null ||
        typeof r.userId !== 'string' ||
        typeof r.name !== 'string' ||
        !Number.isFinite(r.lastSeen)
      ) {
        throw new TypeError('presence records must be { userId: string, name: string, lastSeen: number }')
      }
    }
  }
}

/**
 * Checks `uptoSeq` of a checkpoint against the doc's state: it must be an
 * integer between the current checkpoint's `uptoSeq` (a checkpoint never goes
 * back: the log entries it replaced are gone) and the doc's `lastSeq` (a
 * checkpoint cannot cover updates that were never logged).
 */
export function assertCheckpointSeq(doc: string, uptoSeq: unknown, checkpointSeq: number, lastSeq: number): asserts uptoSeq is number {
  if (typeof uptoSeq !== 'number' || !Number.isSafeInteger(uptoSeq) || uptoSeq < 0) {
    throw new RangeError(`uptoSeq of doc "${doc}" must be a non-negative integer, got ${String(uptoSeq)}`)
  }
  if (uptoSeq > lastSeq) {
    throw new RangeError(`checkpoint of doc "${doc}" claims uptoSeq ${uptoSeq} but the last logged seq is ${lastSeq}`)
  }
  if (uptoSeq < checkpointSeq) {
    throw new RangeError(`checkpoint of doc "${doc}" with uptoSeq ${uptoSeq} is older than the stored one (uptoSeq ${checkpointSeq})`)
  }
}

/** The error every adapter rejects with once closed. */
export function closedError(kind: string): Error {
  return new Error(`${kind} storage is closed`)
}
