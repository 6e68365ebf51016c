/**
 * Discarding a record's unsynced changes: this device's changes the relay
 * never stored are thrown away and the record goes back to the relay's state.
 *
 * Steps: refuse when offline (the relay's state is unknown then) or while
 * handles of the record are open in this tab; close the record's doc here
 * without writing; tell the other tabs (`discarding`); fetch the relay's
 * whole state of the doc (`fetchDoc` from an empty state vector); replace
 * the stored update log by it, acknowledged as a whole (everything in it
 * came from the relay), with no pending-field notes; write the catalog entry
 * (pending 0; a record the relay has never stored is removed from the
 * catalog) and tell the other tabs (`catalog`, then `discarded`, which is
 * also posted when the discard failed).
 *
 * Other tabs: on `discarding`, a tab that has the record open parks its
 * doc — it sends nothing more to the relay, writes nothing more to
 * IndexedDB, answers no tab message about it — and opening the record
 * there waits; on `discarded` it drops that doc without writing and loads
 * the record again from IndexedDB (the relay's state now), moving its open
 * handles to the new doc (`reloaded` event). So after the discard no tab
 * holds the discarded changes, and none sends or stores them again: the
 * outbox-duty tab's resend and every catch-up start from the reloaded doc.
 *
 * Why this is right, and where it stops: every change that was not on the
 * relay when it answered the fetch is gone from every tab that processed
 * `discarding` before the rewrite. A change that reached the relay before
 * (a tab sent it while the fetch was on its way) is the relay's state: it
 * comes back with the next sync, so the record still ends up equal to the
 * relay's copy, only that change was not discarded (`discarded` may name
 * it). What cannot be ruled out by messages alone: a tab that processes
 * `discarding` only after the rewrite (frozen in the background) may send
 * or store its copy of the changes in between; they then count as pending
 * again (or reach the relay), nothing diverges silently. Edits made in
 * another tab while its record is parked are discarded with it when the
 * discard succeeds; when it fails, or the discarding tab never says it is
 * done within 60 s (closed or crashed), every parked tab loads the record
 * again and keeps what its parked doc held beyond storage. A record the relay never stored keeps an empty
 * database on this device.
 *
 * Used through {@link RecordStore.discardUnsynced}.
 *
 * @example
 *   try {
 *     const result = await store.discardUnsynced('T-1')
 *     toast(`Discarded: ${result.discarded.join(', ')}`)
 *   } catch (error) {
 *     if (error instanceof DiscardError && error.reason === 'offline') toast('Connect first')
 *   }
 *
 * @module records/discard
 */
import * as Y from 'yjs'
import type { SyncClient } from '../sync/SyncClient.js'
import { maxStateVector, stateVectorOf } from '../protocol/stateVector.js'
import type { Catalog } from '../catalog/Catalog.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { StorageBackend } from '../persistence/Storage.js'
import type { AuthorInfo } from '../protocol/messages.js'
import { FieldPending } from './FieldPending.js'
import { FETCH_ORIGIN } from '../model/origins.js'
import { catalogEntryOf } from './catalogEntry.js'
import { recordType } from '../model/recordDoc.js'
import type { SchemaRegistry } from '../model/schema.js'
import type { TabChannel } from '../tabs/TabChannel.js'

/** Why a discard was refused. */
export const DiscardRefusal = {
  /** Not connected: the relay's state cannot be fetched. */
  offline: 'offline',
  /** Handles of the record are open in this tab; close them first. */
  open: 'open',
} as const
export type DiscardRefusal = (typeof DiscardRefusal)[keyof typeof DiscardRefusal]

/** A discard was refused; nothing changed. */
export class DiscardError extends Error {
  readonly reason: DiscardRefusal
  readonly recordId: string

  constructor(reason: DiscardRefusal, recordId: string, message: string) {
    super(message)
    this.name = 'DiscardError'
    this.reason = reason
    this.recordId = recordId
  }
}

/** Result of {@link RecordStore.discardUnsynced}. */
export interface DiscardResult {
  id: string
  /** Fields whose unsynced changes were thrown away (`$created`: the record's creation). */
  discarded: string[]
  /** The relay never stored the record: it is gone from this device. */
  removed: boolean
  /** The record's catalog entry now (null when removed). */
  entry: CatalogEntry | null
}

/** What {@link discardUnsynced} needs from the store. */
export interface DiscardHost {
  readonly client: SyncClient
  readonly workspaceId: string
  readonly schemas: SchemaRegistry
  readonly catalog: Catalog
  readonly backend: StorageBackend
  /** The channel to the other tabs (`discarding`, `catalog`, `discarded`). */
  readonly tabs: Pick<TabChannel, 'post'>
  /** Fields of the record with unsynced changes now. */
  pendingFields(id: string): string[]
  /**
   * Closes the record's open doc without writing (rejecting with a
   * {@link DiscardError} while handles are open) and runs `rewrite` before
   * the record can be opened again.
   */
  whileClosed<T>(id: string, rewrite: () => Promise<T>): Promise<T>
}

const EMPTY_STATE_VECTOR = new Uint8Array([0])

/** Discards the unsynced changes of record `id`. See the module documentation. */
export const discardUnsynced = async (host: DiscardHost, id: string, options: { signal?: AbortSignal } = {}): Promise<DiscardResult> => {
  if (host.client.status !== 'online') {
    throw new DiscardError(
      DiscardRefusal.offline,
      id,
      `cannot discard the changes of record "${id}" while offline: the relay's state of it is unknown`,
    )
  }
  return host.whileClosed(id, async () => {
    host.tabs.post({ t: 'discarding', id })
    let done = false
    const name = `${host.workspaceId}/${id}`
    const doc = new Y.Doc({ guid: name }) // named: no random guid to draw
    try {
      const fetched = await host.client.fetchDoc(name, EMPTY_STATE_VECTOR, { signal: options.signal })
      const discarded = host.pendingFields(id)
      Y.applyUpdate(doc, fetched.update, FETCH_ORIGIN)
      const type = recordType(doc)
      // Everything in the fetched state came from the relay: this device owes it nothing of it.
      const acked = Y.encodeStateVector(maxStateVector(Y.decodeStateVector(fetched.stateVector), stateVectorOf(doc)))
      const storage = await host.backend.openRecord(id)
      try {
        const stored = await storage.load()
        const authors = new Map<number, AuthorInfo>((stored.meta.authors ?? []).map((a) => [a.clientId, a]))
        for (const a of fetched.authors) authors.set(a.clientId, a)
        await storage.compact(() => Y.encodeStateAsUpdate(doc))
        await storage.write([], {
          acked,
          fieldClocks: new FieldPending().serialize(),
          authors: [...authors.values()],
          viewed: Y.encodeStateVector(doc),
        })
      } finally {
        storage.close()
      }
      if (type === null) {
        host.catalog.remove([id])
        await host.catalog.flush()
        host.tabs.post({ t: 'catalog', entries: [], removed: [id] })
        done = true
        return { id, discarded, removed: true, entry: null }
      }
      const entry = catalogEntryOf(doc, id, host.schemas.get(type), 0, [])
      host.catalog.set([entry])
      await host.catalog.flush()
      host.tabs.post({ t: 'catalog', entries: [entry], removed: [] })
      done = true
      return { id, discarded, removed: false, entry }
    } finally {
      doc.destroy()
      // After a failure too: the other tabs load again what storage holds.
      host.tabs.post({ t: 'discarded', id, done })
    }
  })
}
