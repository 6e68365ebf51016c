/**
 * "Saved" across tabs covers only what reached IndexedDB: a tab does not
 * write the edits it receives from another tab, so it counts them as saved
 * only once their author confirmed its write — and writes them itself when
 * the author's write failed or was not confirmed in time.
 *
 * Two stores share fake-indexeddb and Node's BroadcastChannel (two tabs).
 * The fallback timer is the test's own (`tabSaveTimer`): it fires when the
 * test says, so the tests check the order of events, not elapsed time.
 */
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, expect, test } from 'vitest'
import { IndexedDbStorage, RecordStore, StorageError, type RecordHandle, type RecordStoreOptions } from '../src/index.js'
import { GatedStorage, Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
const cleanups: Array<() => void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup()
  await h.close()
})

let workspaces = 0
/** A workspace of its own per test: the tab channel is named after it. */
const workspace = (): string => `tab-saved-${process.pid}-${++workspaces}`

const tab = (workspaceId: string, options: Partial<RecordStoreOptions>): RecordStore => {
  const relay = h.relay()
  relay.accepting = false // offline: nothing comes back from a relay, every copy comes from a tab or IndexedDB
  const client = h.client(relay, { reconnect: { minDelay: 60_000, maxDelay: 60_000, random: () => 1 } })
  const store = new RecordStore({ client, userId: 'u1', workspaceId, schemas: testSchemas, tabs: true, ...options })
  h.keep(store)
  return store
}

/** The record as stored in IndexedDB (read by a store without tabs). */
const storedCopy = async (factory: IDBFactory, workspaceId: string, id: string): Promise<Record<string, unknown>> => {
  const reader = tab(workspaceId, { indexedDB: factory, tabs: false })
  const snapshot = await reader.read(id)
  await reader.close()
  return snapshot.fields
}

const until = (handle: RecordHandle, check: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    if (check()) return resolve()
    const listener = (): void => {
      if (!check()) return
      handle.off('change', listener)
      resolve()
    }
    handle.on('change', listener)
  })

/** Timers started by a store (`tabSaveTimer`) that fire only when the test fires them. */
class ManualTimers {
  private readonly pending = new Set<() => void>()
  readonly delays: number[] = []

  readonly start = (callback: () => void, delayMs: number): (() => void) => {
    this.pending.add(callback)
    this.delays.push(delayMs)
    return () => this.pending.delete(callback)
  }

  get size(): number {
    return this.pending.size
  }

  /** Fires every pending timer. */
  fire(): void {
    const due = [...this.pending]
    this.pending.clear()
    for (const callback of due) callback()
  }
}

/** Tabs A (whose writes can be made to fail or wait) and B of one workspace, both with ticket T-1 open and saved; B's tab-save fallback is `timersB`. */
const twoTabsSaved = async (timersB = new ManualTimers()) => {
  const factory = new IDBFactory()
  const ws = workspace()
  const storageA = new GatedStorage(new IndexedDbStorage({ userId: 'u1', workspaceId: ws, indexedDB: factory }), 'indexeddb')
  const tabA = tab(ws, { storage: storageA })
  const tabB = tab(ws, { indexedDB: factory, tabSaveTimer: timersB.start })
  await Promise.all([tabA.ready, tabB.ready])
  const a = await tabA.create('ticket', { title: 'x', status: 'open' }, { id: 'T-1' })
  await a.whenSaved()
  const b = await tabB.open('T-1')
  await b.whenSaved()
  return { factory, ws, storageA, tabB, a, b }
}

test("a tab does not call another tab's edit saved when that tab's write failed; it writes the edit itself", async () => {
  const { factory, ws, storageA, a, b } = await twoTabsSaved()

  storageA.failWith = new StorageError('quota', 'QuotaExceededError: the quota has been exceeded')
  a.set('status', 'done')
  await until(b, () => b.get('status') === 'done')
  b.set('priority', 'high')
  await b.whenSaved()
  expect(a.isSaved).toBe(false)
  // B said "saved": the stored copy holds A's edit too (B wrote it when A's write failed).
  expect(await storedCopy(factory, ws, 'T-1')).toMatchObject({ status: 'done', priority: 'high' })
  a.close()
  b.close()
})

test('edits of a tab that does not confirm its write are not saved in the other tab until it writes them itself', async () => {
  const fallback = new ManualTimers()
  const { factory, ws, storageA, tabB, a, b } = await twoTabsSaved(fallback)

  // A's writes do not complete (a frozen tab).
  let release!: () => void
  storageA.hang = new Promise((resolve) => (release = resolve))
  cleanups.push(() => release())
  a.set('status', 'done')
  await until(b, () => b.get('status') === 'done')
  expect(b.isSaved).toBe(false)
  expect(fallback.size).toBe(1) // B's fallback is waiting for A's confirmation
  expect(fallback.delays.at(-1)).toBe(2_000)
  b.set('priority', 'high')
  const savedEvents: boolean[] = []
  b.on('saved', (saved) => savedEvents.push(saved))
  await tabB.settled()
  // B's own write is done, A's edit is not confirmed: not saved yet
  expect(await storedCopy(factory, ws, 'T-1')).toMatchObject({ priority: 'high' })
  expect(b.isSaved).toBe(false)
  expect(savedEvents).toEqual([])
  // the fallback fires: B writes A's edit itself, and only then says "saved"
  fallback.fire()
  await b.whenSaved()
  expect(savedEvents).toEqual([true])
  expect(await storedCopy(factory, ws, 'T-1')).toMatchObject({ status: 'done', priority: 'high' })
  release()
  storageA.hang = null
  await a.whenSaved()
  a.close()
  b.close()
})

test('a confirmed write of the author makes its edit saved in the other tab', async () => {
  const factory = new IDBFactory()
  const ws = workspace()
  const tabA = tab(ws, { indexedDB: factory })
  const tabB = tab(ws, { indexedDB: factory })
  await Promise.all([tabA.ready, tabB.ready])
  const a = await tabA.create('ticket', { title: 'x', status: 'open' }, { id: 'T-1' })
  await a.whenSaved()
  const b = await tabB.open('T-1')
  await b.whenSaved()
  a.set('status', 'done')
  await until(b, () => b.get('status') === 'done')
  await Promise.all([a.whenSaved(), b.whenSaved()])
  await tabB.settled()
  expect(await storedCopy(factory, ws, 'T-1')).toMatchObject({ status: 'done' })
  a.close()
  b.close()
})
