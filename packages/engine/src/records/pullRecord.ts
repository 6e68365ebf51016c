/**
 * Fetches what this device lacks of one record that is not open, stores it
 * (in the storage's inbox while the record has no database of its own, see
 * `RecordInbox`; else in its own database), and computes its new catalog
 * entry and, when asked, a "while you were away" summary — without
 * opening the record (no subscription). Used by `store.pull()` and the live
 * catalog.
 *
 * @module records/pullRecord
 */
import * as Y from 'yjs'
import type { SyncClient } from '../sync/SyncClient.js'
import { countMissing, maxStateVector, stateVectorOf } from '../protocol/stateVector.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { RecordInbox, RecordMeta, StorageBackend, StoredRecord } from '../persistence/Storage.js'
import { FETCH_ORIGIN } from '../model/origins.js'
import { readRecord, recordType } from '../model/recordDoc.js'
import type { SchemaRegistry } from '../model/schema.js'
import type { RecordSummary } from '../history/summary.js'
import { summarizeRecord } from './recordSummary.js'
import { FieldPending } from './FieldPending.js'
import { catalogEntryOf } from './catalogEntry.js'
import { ownClientsOf } from './ownClients.js'

const EMPTY_STATE_VECTOR = new Uint8Array([0])

/** What {@link pullRecord} works with. */
export interface PullContext {
  readonly client: SyncClient
  readonly workspaceId: string
  readonly userId: string
  readonly schemas: SchemaRegistry
  readonly backend: StorageBackend
  /** Replace a record's update log by one row once it has more rows than this. */
  readonly compactAfter: number
  /** The record's catalog entry now, if listed. */
  entryOf(id: string): CatalogEntry | undefined
  /** Whether the record is in memory (open, opening, …) or the store closes: then nothing is written. */
  skip(id: string): boolean
  /**
   * Optional: a record the catalog does not list yet was fetched — its entry,
   * computed from what the relay sent and marked not `local`, to list it
   * before its database is written (the list of a new device shows at once).
   */
  listFetched?(entry: CatalogEntry): void
  /**
   * Optional: the record was fetched and goes to the storage's inbox, where
   * it waits for a transaction shared with other records — the caller may
   * start the next fetch.
   */
  storing?(): void
}

/** What {@link pullRecord} brought. */
export interface PulledRecord {
  /** The record's new catalog entry (with the relay's change sequence, when it reports one); null: nothing changed, or not a record. */
  entry: CatalogEntry | null
  /** The relay's change sequence of what this device now holds of the record (null when the relay does not report it). */
  seq: number | null
  /** What others changed since this device last had it (only when asked). */
  summary: RecordSummary | null
}

/**
 * Fetches what this device lacks of record `id` and stores it. Resolves
 * with what it brought (see {@link PulledRecord}); undefined when the
 * record is open (it syncs by itself). `summarize`: also summarize what
 * others changed — for records new to this device too when `summarizeNew`.
 */
export async function pullRecord(
  context: PullContext,
  id: string,
  signal: AbortSignal | undefined,
  summarize: { summarizeNew: boolean } | null,
): Promise<PulledRecord | undefined> {
  if (context.skip(id)) return undefined
  const entry = context.entryOf(id)
  const known = entry?.local ? entry.stateVector : EMPTY_STATE_VECTOR
  const name = `${context.workspaceId}/${id}`
  let fetched = await context.client.fetchDoc(name, known, { signal })
  if (context.skip(id)) return undefined
  const { seq } = fetched
  if (entry?.local && isEmptyUpdate(fetched.update)) return { entry: null, seq, summary: null }
  const listed = entry === undefined && context.listFetched !== undefined ? listEarly(context, id, fetched.update) : null
  const { inbox } = context.backend
  let target: PullTarget
  try {
    // The inbox keeps records that have no database of their own: new ones (not stored here per the
    // catalog) and those still in it. A record stored in its own database is written there.
    // A new one is not read first: what the relay sent is all of it (fetched from the empty state
    // vector), and the put merges it with whatever the inbox may hold (a lost catalog write).
    const inInbox = inbox === undefined || entry?.local !== true ? undefined : await inbox.get(id)
    target =
      inbox !== undefined && (inInbox !== undefined || entry?.local !== true)
        ? inboxTarget(inbox, id, inInbox)
        : await ownStorageTarget(context, id)
  } catch (error) {
    listed?.destroy()
    throw error
  }
  const { stored, created } = target
  if (created && known !== EMPTY_STATE_VECTOR && known.length > 1) {
    // Fetched as the difference from what the catalog said is stored, but nothing is (the record was removed to free
    // space meanwhile, or its database lost): the difference alone would be a record missing its beginning.
    try {
      fetched = await context.client.fetchDoc(name, EMPTY_STATE_VECTOR, { signal })
    } catch (error) {
      target.close()
      listed?.destroy()
      throw error
    }
  }
  // Nothing stored before: the doc the early entry was computed from is the record as it will be stored.
  if (!created) listed?.destroy()
  const doc = created && listed !== null ? listed : new Y.Doc({ guid: name })
  try {
    doc.transact(() => {
      for (const update of stored.updates) Y.applyUpdate(doc, update)
    }, FETCH_ORIGIN)
    // What this device had of the record: what it was last told about, else what it stored. A record removed to free
    // space had what its catalog entry kept of that; without it, what changed since cannot be told (no summary).
    const removedHere = created && entry?.evicted === true
    const keptViewed = removedHere ? entry.viewed : undefined
    const had =
      stored.meta.viewed !== undefined
        ? Y.decodeStateVector(stored.meta.viewed)
        : keptViewed !== undefined
          ? Y.decodeStateVector(keptViewed)
          : created
            ? new Map<number, number>()
            : stateVectorOf(doc)
    const newHere = stored.updates.length === 0 && stored.meta.viewed === undefined && !removedHere
    if (doc !== listed) doc.transact(() => Y.applyUpdate(doc, fetched.update), FETCH_ORIGIN)
    const held = stateVectorOf(doc)
    // What the relay sent is on the relay: never this device's pending changes, even the part
    // its storage commit has not covered yet (a record fetched while someone types in it). When the
    // doc holds just that (nothing was stored, all of it integrated), its state vector says what it
    // covers without reading the update again.
    const sent = created && doc.store.pendingStructs === null ? held : Y.parseUpdateMeta(fetched.update).to
    const acked = maxStateVector(
      maxStateVector(stored.meta.acked ? Y.decodeStateVector(stored.meta.acked) : new Map(), Y.decodeStateVector(fetched.stateVector)),
      sent,
    )
    const authors = new Map((stored.meta.authors ?? []).map((a) => [a.clientId, a]))
    for (const a of fetched.authors) authors.set(a.clientId, a)
    // An inbox put waits for a transaction shared with other records: the next fetch need not wait for it.
    if (target.shared) context.storing?.()
    await target.store(doc, fetched.update, {
      acked: Y.encodeStateVector(acked),
      authors: [...authors.values()],
      // This device has it now: a later summary (when the record opens, say) does not repeat it.
      viewed: Y.encodeStateVector(doc),
    })
    const pending = countMissing(held, acked, ownClientsOf(stored.meta, held, acked))
    const fields = pending === 0 ? [] : new FieldPending(stored.meta.fieldClocks).pendingFields(acked)
    const schema = context.schemas.get(recordType(doc) ?? '')
    const computed = catalogEntryOf(doc, id, schema, pending, fields)
    if (computed.type === null) return { entry: null, seq, summary: null } // not a record (yet)
    const fresh = seq === null ? computed : { ...computed, relaySeq: seq }
    const summary =
      summarize === null || (newHere && !summarize.summarizeNew) || (removedHere && keptViewed === undefined)
        ? null
        : summarizeRecord(doc, {
            recordId: id,
            authors,
            since: had,
            userId: context.userId,
            ownClients: new Set(stored.meta.ownClients ?? []),
            fields: readRecord(doc, id, schema).fields,
            created: newHere,
            schema,
          })
    return { entry: fresh, seq, summary }
  } finally {
    target.close()
    doc.destroy()
  }
}

/** Where a pulled record is stored: what is there, and how to store what was fetched. */
interface PullTarget {
  /** What is stored of the record now. */
  stored: StoredRecord
  /** Nothing was stored of the record (`stored` is empty and need not be applied). */
  created: boolean
  /**
   * Stores what was fetched (`update`) with the record's new meta; `doc`
   * holds the stored record with the update applied. Resolves when committed.
   */
  store(doc: Y.Doc, update: Uint8Array, meta: Required<Pick<RecordMeta, 'acked' | 'authors' | 'viewed'>>): Promise<void>
  /** Stores share transactions with other records' (the inbox). */
  shared: boolean
  close(): void
}

/** The record's entry in the inbox (`inInbox`: what it holds now, if anything). */
const inboxTarget = (inbox: RecordInbox, id: string, inInbox: StoredRecord | undefined): PullTarget => ({
  stored: inInbox ?? { updates: [], meta: {} },
  created: inInbox === undefined,
  // The whole record, not only what was fetched: if the entry was moved into the record's own
  // database meanwhile (another tab opened it), the new entry must stand on its own.
  store: (doc, update, meta) => inbox.put(id, inInbox === undefined ? update : Y.encodeStateAsUpdate(doc), meta),
  shared: true,
  close: () => undefined,
})

/** The record's own storage (opened here), as before the inbox existed and for records opened before. */
const ownStorageTarget = async (context: PullContext, id: string): Promise<PullTarget> => {
  const storage = await context.backend.openRecord(id)
  // A database this open created holds nothing: not read (a new device without an inbox opens thousands).
  const created = storage.created === true
  let stored: StoredRecord
  try {
    stored = created ? { updates: [], meta: {} } : await storage.load()
  } catch (error) {
    storage.close()
    throw error
  }
  return {
    stored,
    created,
    store: async (doc, update, meta) => {
      await storage.write(isEmptyUpdate(update) ? [] : [update], meta)
      if (stored.updates.length + 1 > context.compactAfter) {
        // A record others keep changing is fetched again and again (live lists): keep its log short.
        await storage.compact((rows) => {
          doc.transact(() => {
            for (const row of rows) Y.applyUpdate(doc, row)
          }, FETCH_ORIGIN)
          return Y.encodeStateAsUpdate(doc)
        })
      }
    },
    shared: false,
    close: () => storage.close(),
  }
}

/**
 * Applies what the relay sent of a record the catalog does not list to a
 * new doc and lists its entry (not `local`: it is not stored yet) through
 * `context.listFetched`; returns the doc.
 */
const listEarly = (context: PullContext, id: string, update: Uint8Array): Y.Doc => {
  // Named by its doc (a random guid costs 31 calls to crypto.getRandomValues per record).
  const doc = new Y.Doc({ guid: `${context.workspaceId}/${id}` })
  doc.transact(() => Y.applyUpdate(doc, update), FETCH_ORIGIN)
  const entry = catalogEntryOf(doc, id, context.schemas.get(recordType(doc) ?? ''), 0, [])
  if (entry.type !== null) context.listFetched?.({ ...entry, local: false })
  return doc
}

/** An update that carries no structs and no deletions. */
const isEmptyUpdate = (update: Uint8Array): boolean => {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}
