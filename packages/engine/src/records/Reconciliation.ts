/**
 * Keeps the catalog true to what is on this device and on the relay,
 * for the records that are not open:
 *
 * - **Pending checks** (at start-up): the pending count of every record the
 *   catalog lists as pending is recomputed from the record's own storage.
 * - **Uncatalogued records**: records stored on this device that the
 *   catalog does not list (its write was lost) are listed again, read from
 *   their own databases; the outbox-duty tab opens those with pending
 *   changes, so they sync.
 * - **Pull**: every record of the workspace on the relay is fetched
 *   (pipelined over the one socket) and stored (in the storage's inbox
 *   when it has no database of its own yet), filling the catalog —
 *   except records the relay stored no change of since this device last
 *   fetched them: the relay lists each doc's change sequence, the catalog
 *   remembers the one of the last fetch (`CatalogEntry.relaySeq`), and equal
 *   numbers mean there is nothing to fetch.
 * - **Live catalog**: records others changed are fetched as soon as the
 *   relay stored the change; after every (re)connect a pull catches up
 *   (with unchanged records skipped, a reconnect costs one listing).
 *
 * @module records/Reconciliation
 */
import * as Y from 'yjs'
import type { Catalog } from '../catalog/Catalog.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import { recordType } from '../model/recordDoc.js'
import { isRecordId } from '../model/schema.js'
import type { RecordStorage } from '../persistence/Storage.js'
import { countMissing, stateVectorOf } from '../protocol/stateVector.js'
import type { RecordSummary } from '../history/summary.js'
import { FieldPending } from './FieldPending.js'
import { catalogEntryOf } from './catalogEntry.js'
import { ownClientsOf } from './ownClients.js'
import { pullRecord, type PullContext, type PulledRecord } from './pullRecord.js'
import type { PullOptions, PullResult } from './recordStoreTypes.js'

/** Records a live catalog fetches at once; more changed records wait for their turn. */
const LIVE_FETCH_CONCURRENCY = 16
/** Record databases read at once by the pending checks and the search for uncatalogued records. */
const STORED_READ_CONCURRENCY = 8
/** Pull: fetches in flight at once (pipelined over the one socket). */
const PULL_CONCURRENCY = 64
/**
 * Pull: records fetched for the storage's inbox and waiting to be stored,
 * at most. Puts made while one inbox transaction runs share the next, so
 * fetching goes on while records are stored: a new device's 10,000 records
 * take about 10,000 / `INBOX_BATCH` transactions, not one per
 * {@link PULL_CONCURRENCY} fetches. Records stored in databases of their own
 * hold their fetch slot until stored (each opens a database).
 */
const PULL_STORING = 1_000
/**
 * Pull: most pulled entries listed at once. The first batches are smaller
 * (1, 2, 4, … entries), so a new device's list shows its first records as
 * soon as they are stored instead of after the first {@link PULL_BATCH}.
 */
const PULL_BATCH = 200
/** Pull: longest time (ms) a stored record waits to be listed when records arrive slowly. */
const PULL_BATCH_WAIT = 500

/** What a record's own database holds, as read by {@link Reconciliation.eachStored}. */
interface StoredSummary {
  id: string
  pending: number
  pendingFields: string[]
  /** Encoded state vector of the stored doc. */
  stateVector: Uint8Array
  /** Its catalog entry. */
  entry: CatalogEntry
}

/** What a {@link Reconciliation} needs from its store, besides what a pull needs. */
export interface ReconciliationHost extends Omit<PullContext, 'backend' | 'entryOf' | 'skip'> {
  readonly catalog: Catalog
  /** Where records are stored now (it changes once, when storage falls back to memory). */
  backend(): PullContext['backend']
  /** Whether records are saved on this device. */
  durable(): boolean
  /** Whether the store is closing (or closed). */
  isClosing(): boolean
  /** Resolves once the store is ready (catalog loaded, storage settled): what a pull compares with and stores into. */
  whenReady(): Promise<void>
  /** Whether record `id` is open or opening here (its live state is newer than its storage). */
  inMemory(id: string): boolean
  /** Entries were listed again: tell the other tabs. */
  listed(entries: CatalogEntry[]): void
  /** Record `id` has pending changes and is not open: open it if this tab holds the outbox duty. */
  ensureSyncing(id: string): void
  /** A "while you were away" summary to emit. */
  summary(summary: RecordSummary): void
  /** Catalog entries changed: recompute the pending total. */
  updateTotal(): void
  /** The live catalog's catch-up pull completed: the catalog holds what the relay had when it began. */
  caughtUp(): void
}

/** Pending checks, uncatalogued records, pull and the live catalog. See the module documentation. */
export class Reconciliation {
  private readonly host: ReconciliationHost
  /** Live catalog: records others changed, waiting to be fetched. */
  private readonly liveQueue = new Set<string>()
  /** Live catalog: records being fetched (one fetch per record at a time). */
  private readonly liveFetching = new Set<string>()
  /** Live catalog: the catch-up pull running, and whether another is due after it. */
  private catchingUp: Promise<void> | null = null
  private catchUpAgain = false

  constructor(host: ReconciliationHost) {
    this.host = host
  }

  /**
   * Recomputes the pending count of every record the catalog lists as
   * pending from the record's own storage (its updates and acked state
   * vector), so the workspace total is exact at `ready` even if the
   * catalog's last write lagged behind the record's.
   */
  async verifyPending(): Promise<void> {
    const { catalog } = this.host
    const fixed: CatalogEntry[] = []
    await this.eachStored(catalog.pendingIds(), (stored) => {
      const entry = catalog.get(stored.id)
      if (entry === undefined) return
      if (stored.pending !== entry.pending || stored.pendingFields.join() !== entry.pendingFields.join()) {
        fixed.push({ ...entry, pending: stored.pending, pendingFields: stored.pendingFields, stateVector: stored.stateVector })
      }
    })
    catalog.set(fixed)
  }

  /**
   * Lists again the records stored on this device that the catalog does
   * not list; the outbox-duty tab opens those with pending changes, so
   * they sync.
   */
  async reconcile(): Promise<void> {
    if (this.host.isClosing() || !this.host.durable()) return
    let found: CatalogEntry[]
    try {
      found = await this.uncatalogued()
    } catch {
      return // listing is a safety net; the catalog stays as it is
    }
    if (this.host.isClosing() || found.length === 0) return
    this.host.catalog.set(found)
    this.host.listed(found)
    for (const entry of found) if (entry.pending > 0) this.host.ensureSyncing(entry.id)
    this.host.updateTotal()
  }

  /**
   * Catalog entries, computed from their own databases, of the records
   * stored on this device that the catalog does not list (empty when the
   * storage cannot list its records). Only those databases are opened.
   */
  async uncatalogued(): Promise<CatalogEntry[]> {
    const backend = this.host.backend()
    if (!this.host.durable() || backend.listRecords === undefined) return []
    const { catalog } = this.host
    const ids = (await backend.listRecords()) ?? []
    const missing = ids.filter((id) => catalog.get(id) === undefined && isRecordId(id))
    const found: CatalogEntry[] = []
    await this.eachStored(missing, (stored) => {
      // A database without a record and without changes: opened for an id that exists nowhere.
      if (stored.entry.type === null && stored.pending === 0) return
      if (catalog.get(stored.id) === undefined) found.push(stored.entry)
    })
    return found
  }

  /**
   * Brings every record of the workspace onto this device without
   * subscribing to them (see `RecordStore.pull`).
   */
  async pull(options: PullOptions = {}): Promise<PullResult> {
    if (this.host.isClosing()) throw new Error('the RecordStore is closed')
    const { catalog, client, workspaceId } = this.host
    const prefix = `${workspaceId}/`
    const result: PullResult = { listed: 0, fetched: 0, changed: 0, unchanged: 0, failed: [], summaries: [] }
    // Records are pulled from the first page of the relay's listing on, while the next pages come.
    const records: Array<{ id: string; seq: number | null }> = []
    let listingDone = false
    let listingError: unknown = null
    let wake = (): void => {}
    void client
      .listDocsWithSeqs(prefix, {
        signal: options.signal,
        onPage: (docs) => {
          for (const { name, seq } of docs) {
            const id = name.slice(prefix.length)
            if (isRecordId(id)) records.push({ id, seq })
          }
          result.listed = records.length
          wake()
        },
      })
      .then(
        () => (listingDone = true),
        (error: unknown) => (listingError = error),
      )
      .finally(() => wake())
    // The listing is on its way (a new device's first screen waits for it); what is stored here is read first.
    await this.host.whenReady()
    // A first pull on a new device brings every record: that is not news.
    const summarizeNew = options.summarize === true && catalog.all().some((entry) => entry.type !== null)
    const batch: CatalogEntry[] = []
    /** Fetched records whose entry did not change: the change sequence they are now known at. */
    const fetchedAt = new Map<string, number>()
    /** Entries of records fetched, not stored yet: listed, not written (the stored entry is). */
    const fetchedBatch: CatalogEntry[] = []
    const summaries: RecordSummary[] = []
    // Listing grows geometrically up to PULL_BATCH entries at once (each listing costs the
    // app a re-sort of its lists); a batch also goes out once its oldest entry waited PULL_BATCH_WAIT.
    let listedSoFar = 0
    let batchTimer: ReturnType<typeof setTimeout> | null = null
    const addToBatch = (entry: CatalogEntry, into: CatalogEntry[]): void => {
      into.push(entry)
      if (batch.length + fetchedBatch.length >= Math.min(PULL_BATCH, Math.max(1, listedSoFar))) flushBatch()
      else batchTimer ??= setTimeout(flushBatch, PULL_BATCH_WAIT)
    }
    // Summaries go out once their records are listed (an app shows their titles).
    const flushBatch = (): void => {
      if (batchTimer !== null) clearTimeout(batchTimer)
      batchTimer = null
      listedSoFar += batch.length + fetchedBatch.length
      batch.push(...this.sequenced(fetchedAt))
      fetchedAt.clear()
      // Fetched before stored entries: a record's stored entry replaces its fetched one.
      const fetched = fetchedBatch.splice(0).filter((entry) => catalog.get(entry.id) === undefined)
      if (fetched.length > 0) catalog.set(fetched, { persist: false })
      if (batch.length > 0) catalog.set(batch.splice(0))
      for (const summary of summaries.splice(0)) {
        result.summaries.push(summary)
        if (!this.host.isClosing()) this.host.summary(summary)
      }
    }
    // A record new to this device is listed from what the relay sent, before it is stored
    // (its entry says `local: false` until the stored one replaces it).
    const listFetched = (entry: CatalogEntry): void => {
      if (catalog.get(entry.id) === undefined) addToBatch(entry, fetchedBatch)
    }
    let next = 0
    let done = 0
    const pulled = (id: string, record: PulledRecord | undefined): void => {
      if (record !== undefined) result.fetched++
      if (record?.entry) {
        result.changed++
        addToBatch(record.entry, batch)
      } else if (record?.seq != null) {
        fetchedAt.set(id, record.seq)
        if (fetchedAt.size >= PULL_BATCH) flushBatch()
      }
      if (record?.summary) summaries.push(record.summary)
    }
    const fetchSlots = Math.max(1, options.concurrency ?? PULL_CONCURRENCY)
    let fetching = 0
    let active = 0
    let aborted: unknown = null
    const stopped = (): boolean => aborted !== null || listingError !== null || this.host.isClosing()
    try {
      await new Promise<void>((resolve) => {
        // Starts pulls while a fetch slot is free and not too many wait to be stored. With pulls under way, it
        // waits until a quarter of the fetch slots (or all that is left to start) can start: the fetches started
        // in one turn go to the relay in one message (`fetch-many`), not one message per answer or stored record.
        const refill = Math.max(1, Math.floor(fetchSlots / 4))
        const room = (): number => Math.min(fetchSlots - fetching, PULL_STORING - active)
        const pump = (): void => {
          let starting = active === 0 || room() >= Math.min(refill, records.length - next) ? room() : 0
          while (next < records.length && !stopped() && starting > 0) {
            const { id, seq } = records[next++]!
            // Sequence 0 (nothing logged, e.g. an imported doc) proves nothing: fetched.
            const known = catalog.get(id)
            // A record removed to free space stays removed while the relay holds nothing new of it.
            if (seq !== null && seq > 0 && (known?.local === true || known?.evicted === true) && known.relaySeq === seq) {
              result.unchanged++
              options.onProgress?.(++done, records.length)
              continue
            }
            starting--
            fetching++
            active++
            let holdsSlot = true
            // The fetch slot frees once the record goes to the inbox (it waits there to be stored) or when done.
            const releaseSlot = (): void => {
              if (!holdsSlot) return
              holdsSlot = false
              fetching--
              queueMicrotask(pump)
            }
            this.pullOne(id, options.signal, options.summarize === true ? { summarizeNew } : null, listFetched, releaseSlot)
              .then(
                (record) => pulled(id, record),
                (error: unknown) => {
                  if (options.signal?.aborted) aborted ??= error
                  else result.failed.push({ id, error: error instanceof Error ? error : new Error(String(error)) })
                },
              )
              .finally(() => {
                active--
                options.onProgress?.(++done, records.length)
                releaseSlot()
                queueMicrotask(pump)
              })
          }
          if (active === 0 && (stopped() || (listingDone && next >= records.length))) resolve()
        }
        wake = () => queueMicrotask(pump)
        pump()
      })
      if (aborted !== null) throw aborted
      if (listingError !== null) throw listingError
    } finally {
      flushBatch()
      await catalog.flush()
    }
    return result
  }

  /** Live catalog: the relay stored changes of these docs; fetch the records that are not open (open ones sync themselves). */
  fetchChanged(names: readonly string[]): void {
    if (this.host.isClosing()) return
    const prefix = `${this.host.workspaceId}/`
    for (const name of names) {
      if (!name.startsWith(prefix)) continue
      const id = name.slice(prefix.length)
      if (!isRecordId(id)) continue
      this.liveQueue.add(id)
    }
    this.pumpLive()
  }

  /** Live catalog: the watch is in place on a new connection; fetch what changed while it was not. */
  catchUp(): void {
    if (this.host.isClosing()) return
    if (this.catchingUp) {
      this.catchUpAgain = true
      return
    }
    // What others changed while this device was not watching is news: summarized (the app's digest).
    this.catchingUp = this.pull({ summarize: true })
      .then(
        () => this.host.caughtUp(),
        () => undefined, // offline again or closed: the next connect catches up
      )
      .finally(() => {
        this.catchingUp = null
        if (this.catchUpAgain && !this.host.isClosing()) {
          this.catchUpAgain = false
          this.catchUp()
        }
      })
  }

  /**
   * Catalog entries of fetched records whose content did not change, with
   * the relay's change sequence they are now known at (`seqs`): the entries
   * as they are now (they may have changed meanwhile), only the sequence new.
   */
  private sequenced(seqs: ReadonlyMap<string, number>): CatalogEntry[] {
    const entries: CatalogEntry[] = []
    for (const [id, seq] of seqs) {
      const current = this.host.catalog.get(id)
      if (current?.local === true && current.type !== null && current.relaySeq !== seq) entries.push({ ...current, relaySeq: seq })
    }
    return entries
  }

  /** Stops the live catalog's fetches that have not started (the store closes). */
  stop(): void {
    this.liveQueue.clear()
  }

  /** Starts fetches of queued records, at most {@link LIVE_FETCH_CONCURRENCY} at once and one per record. */
  private pumpLive(): void {
    for (const id of this.liveQueue) {
      if (this.host.isClosing() || this.liveFetching.size >= LIVE_FETCH_CONCURRENCY) return
      if (this.liveFetching.has(id)) continue // queued again while fetched: fetched again after
      this.liveQueue.delete(id)
      this.liveFetching.add(id)
      void this.pullOne(id, undefined, null)
        .then(
          (result) => {
            if (result === undefined || this.host.isClosing()) return
            if (result.entry !== null) this.host.catalog.set([result.entry])
            else if (result.seq !== null) this.host.catalog.set(this.sequenced(new Map([[id, result.seq]])))
          },
          () => {
            // Offline meanwhile (or refused): the catch-up after the next connect fetches it.
          },
        )
        .finally(() => {
          this.liveFetching.delete(id)
          this.pumpLive()
        })
    }
  }

  private pullOne(
    id: string,
    signal: AbortSignal | undefined,
    summarize: { summarizeNew: boolean } | null,
    listFetched?: PullContext['listFetched'],
    storing?: PullContext['storing'],
  ): Promise<PulledRecord | undefined> {
    const host = this.host
    const context: PullContext = {
      client: host.client,
      workspaceId: host.workspaceId,
      userId: host.userId,
      schemas: host.schemas,
      compactAfter: host.compactAfter,
      backend: host.backend(),
      entryOf: (recordId) => host.catalog.get(recordId),
      skip: (recordId) => host.inMemory(recordId) || host.isClosing(),
      ...(listFetched === undefined ? {} : { listFetched }),
      ...(storing === undefined ? {} : { storing }),
    }
    return pullRecord(context, id, signal, summarize)
  }

  /**
   * Reads records from their own databases (a few at a time; records open
   * or opening here are skipped — their live state is newer) and passes
   * what they hold to `use`. Unreadable ones are skipped: opening the
   * record reports the failure.
   */
  private async eachStored(ids: readonly string[], use: (stored: StoredSummary) => void): Promise<void> {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < ids.length && !this.host.isClosing()) {
        const id = ids[next++]!
        if (this.host.inMemory(id)) continue
        let storage: RecordStorage | null = null
        // named: a doc without a guid draws a random one (~30 getRandomValues calls), once per record read
        const doc = new Y.Doc({ guid: `${this.host.workspaceId}/${id}` })
        try {
          storage = await this.host.backend().openRecord(id)
          const stored = await storage.load()
          doc.transact(() => {
            for (const update of stored.updates) Y.applyUpdate(doc, update)
          })
          const acked = stored.meta.acked ? Y.decodeStateVector(stored.meta.acked) : new Map<number, number>()
          const pending = countMissing(stateVectorOf(doc), acked, ownClientsOf(stored.meta, stateVectorOf(doc), acked))
          const pendingFields = pending === 0 ? [] : new FieldPending(stored.meta.fieldClocks).pendingFields(acked)
          use({
            id,
            pending,
            pendingFields,
            stateVector: Y.encodeStateVector(doc),
            entry: catalogEntryOf(doc, id, this.host.schemas.get(recordType(doc) ?? ''), pending, pendingFields),
          })
        } catch {
          // Unreadable now: skipped.
        } finally {
          storage?.close()
          doc.destroy()
        }
      }
    }
    await Promise.all(Array.from({ length: STORED_READ_CONCURRENCY }, worker))
  }
}
