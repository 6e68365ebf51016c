/**
 * The page the Chromium tests and the record-store benchmark drive: it
 * bundles the engine (`@concord/engine`, the built package) with the web
 * app's record types (`apps/web/src/lib/schemas.ts`) and exposes a small API
 * on `window.concordTest`. Tests call it through
 * `page.evaluate(() => window.concordTest.…)`.
 *
 * Query parameters: `relay` (ws URL), `user`, `workspace`; `auto=0` (no
 * store until first use), `newDevice=N` (runs `newDevice(N)` at load).
 */
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { IndexedDbStorage, RecordStore, SyncClient, type RecordHandle, type StorageErrorEvent } from '@concord/engine'
import { catalogDatabaseName, catalogEntryOf, initRecord, recordDatabaseName } from '@concord/engine/internal'
import { appSchemas, ticketSchema } from '../../../apps/web/src/lib/schemas.js'

const params = new URLSearchParams(location.search)
const relayUrl = params.get('relay') ?? 'ws://127.0.0.1:9'
const userId = params.get('user') ?? 'u1'
const workspaceId = params.get('workspace') ?? 'acme'

const storageErrors: StorageErrorEvent[] = []
const statuses: string[] = []
const pendingLog: number[] = []
let signedOut = false

const client = new SyncClient({ url: relayUrl, reconnect: { minDelay: 50, maxDelay: 500 } })
/** When the relay first answered (`online`), ms since navigation start. */
let onlineMs = Number.NaN
client.on('status', (status) => {
  if (status === 'online' && Number.isNaN(onlineMs)) onlineMs = performance.now()
})
let current: RecordStore | null = null
/** The page's store, created on first use (or at load unless `?auto=0`, which the benchmark uses). */
const getStore = (): RecordStore => {
  if (current !== null) return current
  const idle = params.get('idleTimeout')
  const store = new RecordStore({
    client,
    userId,
    workspaceId,
    schemas: appSchemas,
    ...(idle === null ? {} : { idleTimeout: Number(idle) }),
  })
  store.on('storage-error', (event) => storageErrors.push({ ...event, error: undefined as never }))
  store.on('pending', (n) => pendingLog.push(n))
  store.on('signed-out', () => (signedOut = true))
  client.on('status', (status) => statuses.push(`${status}:${store.pending}`))
  return (current = store)
}
if (params.get('auto') !== '0') getStore()
const handles = new Map<string, RecordHandle>()

/** Resolves when `predicate()` holds, re-checking on `event` of `emitter`. */
const until = <T extends { on(e: string, f: () => void): void; off(e: string, f: () => void): void }>(
  emitter: T,
  event: string,
  predicate: () => boolean,
): Promise<void> =>
  new Promise((resolve) => {
    if (predicate()) return resolve()
    const listener = (): void => {
      if (!predicate()) return
      emitter.off(event, listener)
      resolve()
    }
    emitter.on(event, listener)
  })

const handle = async (id: string): Promise<RecordHandle> => {
  let h = handles.get(id)
  if (h === undefined) handles.set(id, (h = await getStore().open(id)))
  return h
}

const api = {
  ready: () => getStore().ready.then(() => ({ persistent: getStore().persistent, pending: getStore().pending })),
  status: () => client.status,
  statuses: () => statuses,
  storageErrors: () => storageErrors,
  signedOut: () => signedOut,
  pending: () => getStore().pending,
  async create(type: string, values: Record<string, unknown>, id: string) {
    const h = await getStore().create(type, values, { id })
    handles.set(id, h)
    return { pending: h.pending, fields: h.pendingFields }
  },
  async set(id: string, patch: Record<string, unknown>) {
    ;(await handle(id)).update(patch)
  },
  async insertText(id: string, field: string, index: number, text: string) {
    ;(await handle(id)).text(field).insert(index, text)
  },
  /** Ends the typing bursts of a record (their history entries are written now). */
  async endTyping(id: string) {
    ;(await handle(id)).flushHistory()
  },
  async record(id: string) {
    const h = await handle(id)
    return {
      fields: h.read().fields,
      pending: h.pending,
      pendingFields: h.pendingFields,
      saved: h.isSaved,
      storageError: h.storageError?.kind ?? null,
    }
  },
  /** Closes this page's handle of record `id` (the record closes after `idleTimeout`, `?idleTimeout=` on the page). */
  close(id: string) {
    handles.get(id)?.close()
    handles.delete(id)
  },
  openIds: () => getStore().openIds,
  /** Removes records from this device to free space (`store.evict`). */
  evict: (ids?: string[]) => getStore().evict(ids),
  /** The record's catalog entry (without its state vector). */
  catalogEntry(id: string) {
    const entry = getStore().catalog.get(id)
    return entry === undefined ? null : { ...entry, stateVector: entry.stateVector.length }
  },
  /** Reads a record as `store.read` does (opening it briefly, without a handle kept here). */
  read: async (id: string) => (await getStore().read(id)).fields,
  async whenSaved(id: string) {
    await (await handle(id)).whenSaved()
  },
  async flush(id: string) {
    await (await handle(id)).flush()
  },
  list: (query: Parameters<RecordStore['list']>[0]) =>
    getStore()
      .list(query)
      .entries.map((e) => ({ id: e.id, title: e.title, pending: e.pending, fields: e.fields })),
  /** Resolves when the workspace total is `n`. */
  waitPending: (n: number) => until(getStore(), 'pending', () => getStore().pending === n).then(() => getStore().pending),
  /** Resolves when record `id` has `text` in `field`. */
  async waitText(id: string, field: string, text: string) {
    const h = await handle(id)
    await until(h, 'change', () => h.read().fields[field] === text)
    return { pending: h.pending, pendingFields: h.pendingFields }
  },
  waitStatus: (status: string) => until(client, 'status', () => client.status === status),
  /** Resolves with every storage error so far once there is one (about `recordId`, when given). */
  waitStorageError: (recordId?: string) =>
    until(getStore(), 'storage-error', () => storageErrors.some((e) => recordId === undefined || e.recordId === recordId)).then(
      () => storageErrors,
    ),
  waitSignedOut: () => until(getStore(), 'signed-out', () => signedOut),
  settled: () => getStore().settled(),
  signOut: (options: { wipe?: boolean; discardUnsynced?: boolean }) =>
    getStore()
      .signOut(options)
      .then((result) => JSON.parse(JSON.stringify(result, (k, v) => (k === 'error' ? String(v) : v)))),
  databases: () => indexedDB.databases().then((list) => list.map((d) => d.name ?? '').sort()),
  /** Brings every record of the workspace onto this device (`store.pull()`). */
  pull: () =>
    getStore()
      .pull()
      .then((result) => ({ listed: result.listed, changed: result.changed, failed: result.failed.length })),
  /** Ids of the records in the inbox (pulled, never opened on this device). */
  inboxIds: async () => {
    const storage = new IndexedDbStorage({ userId, workspaceId })
    const ids = ((await storage.inbox?.ids()) ?? []).sort()
    storage.inbox?.close()
    return ids
  },
  /** Resolves once the store checked the catalog against the record databases on this device. */
  reconciled: () =>
    getStore().reconciled.then(() => ({
      pending: getStore().pending,
      unsynced: getStore()
        .unsynced()
        .map((r) => r.id),
    })),
  /** Closes the store and deletes a catalog entry straight from IndexedDB (a catalog write that never reached the disk). */
  async dropCatalogEntry(id: string) {
    await getStore().close()
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open(catalogDatabaseName(userId, workspaceId))
      open.onsuccess = () => resolve(open.result)
      open.onerror = () => reject(open.error)
    })
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction('records', 'readwrite')
      tx.objectStore('records').delete(id)
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error)
    })
    db.close()
  },
  async estimate() {
    return navigator.storage?.estimate?.()
  },

  // --- benchmark helpers -----------------------------------------------------

  /** Stores `count` ticket records on this device (record databases + catalog), as a synced device would have them. */
  async seed(count: number, concurrency = 24) {
    const storage = new IndexedDbStorage({ userId, workspaceId })
    const catalog = await storage.openCatalog()
    const statusesOf = ['open', 'in_progress', 'done', 'cancelled']
    let next = 0
    const entries: Parameters<typeof catalog.put>[0][number][] = []
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++
        const id = `T-${String(i).padStart(5, '0')}`
        const doc = new Y.Doc()
        doc.transact(() => {
          initRecord(doc, ticketSchema, userId, 1_700_000_000_000 + i * 1000)
          doc.getText('text:title').insert(0, `Ticket ${i}: ${'lorem ipsum dolor '.repeat(1 + (i % 3))}`.trim())
          doc.getText('text:description').insert(0, `Steps to reproduce ${i}. `.repeat(20))
          doc.getMap('fields').set('status', statusesOf[i % 4])
          doc.getMap('fields').set('priority', ['none', 'low', 'medium', 'high', 'urgent'][i % 5])
          doc.getMap('fields').set('assignee', `user-${i % 17}`)
          doc.getArray('list:labels').insert(0, i % 7 === 0 ? ['bug'] : ['feature'])
        })
        const record = await storage.openRecord(id)
        const stateVector = Y.encodeStateVector(doc)
        await record.write([Y.encodeStateAsUpdate(doc)], { acked: stateVector })
        record.close()
        entries.push(catalogEntryOf(doc, id, ticketSchema, 0, []))
        doc.destroy()
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    for (let i = 0; i < entries.length; i += 1000) await catalog.put(entries.slice(i, i + 1000))
    catalog.close()
    // An app session on this device: leaves the first-screen snapshot behind, as any use of the app does.
    const session = new RecordStore({ client, userId, workspaceId, schemas: appSchemas, tabs: false })
    await session.ready
    await session.close()
    return entries.length
  },

  /**
   * A new device: this page's first store on an empty profile, set up as the
   * app does (`live: true`), fills itself from the relay holding `count`
   * tickets. Times since navigation start (the app opening): until the list
   * shows a first screen (`screen` tickets by updatedAt), and until every
   * record is stored on this device (catalog complete and written, every
   * record stored — in the inbox or a database of its own — counted). Also
   * when the store was created, the client went online and the first record
   * was listed.
   */
  async newDevice(count: number, screen = 50) {
    const startedMs = performance.now()
    // When the store's listing of the workspace was asked for and answered (all pages).
    const listing = { askedMs: Number.NaN, firstPageMs: Number.NaN, answeredMs: Number.NaN }
    const listDocsWithSeqs = client.listDocsWithSeqs.bind(client)
    client.listDocsWithSeqs = async (prefix, options = {}) => {
      if (Number.isNaN(listing.askedMs)) listing.askedMs = performance.now()
      const onPage = options.onPage
      const docs = await listDocsWithSeqs(prefix, {
        ...options,
        onPage: (page) => {
          if (Number.isNaN(listing.firstPageMs)) listing.firstPageMs = performance.now()
          onPage?.(page)
        },
      })
      if (Number.isNaN(listing.answeredMs)) listing.answeredMs = performance.now()
      return docs
    }
    const store = new RecordStore({ client, userId, workspaceId, schemas: appSchemas, tabs: false, live: true })
    let readyMs = Number.NaN
    void store.ready.then(() => (readyMs = performance.now()))
    const listed = () => store.list({ type: 'ticket', sort: { by: 'updatedAt', direction: 'desc' }, limit: screen })
    let firstScreenMs = Number.NaN
    let firstListedMs = Number.NaN
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const page = listed()
        if (Number.isNaN(firstListedMs) && page.entries.length > 0) firstListedMs = performance.now()
        if (Number.isNaN(firstScreenMs) && page.entries.length >= Math.min(screen, count)) firstScreenMs = performance.now()
        // Listed is not yet offline: a record fetched but not stored yet is listed with `local: false`.
        if (page.total < count || store.catalog.all().some((entry) => !entry.local)) return
        store.off('catalog', check)
        resolve()
      }
      store.on('catalog', check)
      check()
    })
    await store.settled()
    const allMs = performance.now()
    // Stored: in a database of its own or in the inbox (records pulled, never opened).
    const storage = new IndexedDbStorage({ userId, workspaceId })
    const stored = (await storage.listRecords())?.length ?? 0
    storage.inbox?.close()
    const total = listed().total
    await store.close()
    client.listDocsWithSeqs = listDocsWithSeqs
    return { startedMs, onlineMs, readyMs, listing, firstListedMs, firstScreenMs, allMs, total, stored }
  },

  /**
   * Time from a fresh RecordStore to the first screen (50 tickets by
   * updatedAt, `store.query`; with `snapshot` false without the first-screen
   * snapshot, i.e. from IndexedDB), and to the whole catalog in memory
   * (`ready`, then a filtered, re-sorted list) — call right after a page load.
   */
  async firstScreen(snapshot = true) {
    const t0 = performance.now()
    const fresh = new RecordStore({
      client,
      userId,
      workspaceId,
      schemas: appSchemas,
      tabs: false,
      ...(snapshot ? {} : { firstScreenCache: null }),
    })
    const page = await fresh.query({ type: 'ticket', sort: { by: 'updatedAt', direction: 'desc' }, limit: 50 })
    const ms = performance.now() - t0
    await fresh.ready
    const readyMs = performance.now() - t0
    const full = fresh.list({ type: 'ticket', sort: { by: 'updatedAt', direction: 'desc' }, limit: 50 })
    const t1 = performance.now()
    const filtered = fresh.list({
      type: 'ticket',
      where: { status: 'open', assignee: 'user-3' },
      sort: { by: 'title', direction: 'asc' },
      limit: 50,
    })
    const filterMs = performance.now() - t1
    const same = full.entries.map((e) => e.id).join() === page.entries.map((e) => e.id).join()
    const result = {
      ms,
      readyMs,
      filterMs,
      shown: page.entries.length,
      total: full.total,
      filteredTotal: filtered.total,
      first: page.entries[0]?.id,
      early: !page.complete,
      same,
    }
    await fresh.close()
    return result
  },

  /** Median time to open one record through the store (load from IndexedDB + typed read), over `samples` random records. */
  async openOne(count: number, samples = 25) {
    const times: number[] = []
    for (let s = 0; s < samples; s++) {
      const id = `T-${String(Math.floor(Math.random() * count)).padStart(5, '0')}`
      const t0 = performance.now()
      const h = await getStore().open(id)
      const title = h.read().fields.title
      times.push(performance.now() - t0)
      if (typeof title !== 'string' || title === '') throw new Error(`record ${id} is empty`)
      h.close()
    }
    return times
  },

  /** Plain y-indexeddb: median time to open one record database and load it. */
  async openOnePlain(count: number, samples = 25) {
    const times: number[] = []
    for (let s = 0; s < samples; s++) {
      const id = `T-${String(Math.floor(Math.random() * count)).padStart(5, '0')}`
      const t0 = performance.now()
      const doc = new Y.Doc()
      const persistence = new IndexeddbPersistence(recordDatabaseName(userId, workspaceId, id), doc)
      await persistence.whenSynced
      const title = doc.getText('text:title').toString()
      times.push(performance.now() - t0)
      if (title === '') throw new Error(`record ${id} is empty`)
      await persistence.destroy()
      doc.destroy()
    }
    return times
  },

  /**
   * Plain y-indexeddb: the first screen without a catalog means opening every
   * record database to read title and updatedAt, then sorting.
   */
  async firstScreenPlain(count: number, concurrency = 24) {
    const t0 = performance.now()
    const rows: Array<{ id: string; title: string; updatedAt: number }> = []
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < count) {
        const id = `T-${String(next++).padStart(5, '0')}`
        const doc = new Y.Doc()
        const persistence = new IndexeddbPersistence(recordDatabaseName(userId, workspaceId, id), doc)
        await persistence.whenSynced
        rows.push({ id, title: doc.getText('text:title').toString(), updatedAt: doc.getMap('record').get('updatedAt') as number })
        await persistence.destroy()
        doc.destroy()
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    rows.sort((a, b) => b.updatedAt - a.updatedAt)
    return { ms: performance.now() - t0, first: rows[0]?.id, opened: rows.length }
  },
}

;(window as unknown as { concordTest: typeof api }).concordTest = api
// `?newDevice=N`: the new-device benchmark starts at load, as the app does, not when the harness gets to call it.
const newDeviceCount = params.get('newDevice')
if (newDeviceCount !== null) {
  ;(window as unknown as { concordNewDevice: ReturnType<typeof api.newDevice> }).concordNewDevice = api.newDevice(Number(newDeviceCount))
}
export type ConcordTestApi = typeof api
