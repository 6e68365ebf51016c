/**
 * Removing records from this device to free space: only records whose every
 * change is on the relay, that no tab has open, and that nobody changed or
 * opened here for a while. Their catalog entries stay (lists still show
 * them, marked `evicted`); opened online, a record is fetched whole again,
 * and a pull or the live catalog brings back one that someone changed.
 *
 * What makes it safe to remove, checked in this order:
 *
 * 1. the catalog lists it as stored here with nothing pending (an edit
 *    makes its entry pending, written strictly, before the edit is stored);
 * 2. it is not in memory in this tab;
 * 3. the storage removes it only while no tab has it open (Web Locks in the
 *    browser), and only after reading what is stored: every update must be
 *    covered by the state vector the relay acknowledged (`acked`).
 *
 * @module records/evict
 */
import * as Y from 'yjs'
import type { Catalog } from '../catalog/Catalog.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { StorageBackend, StoredRecord } from '../persistence/Storage.js'

/** What {@link evictRecords} needs of the store. */
export interface EvictContext {
  catalog: Catalog
  backend: StorageBackend
  /** The record is in memory in this tab (open, idle or opening). */
  inMemory(id: string): boolean
  /** Entries changed here: the other tabs' catalogs learn them. */
  listed(entries: CatalogEntry[]): void
}

/** Why a record was not removed. */
export type KeptReason = 'not-stored' | 'pending' | 'open' | 'unsynced' | 'unsupported' | 'failed'

/** Result of `store.evict()`. */
export interface EvictResult {
  /** Records removed from this device. */
  evicted: string[]
  /** Records left alone, and why. */
  kept: Array<{ id: string; reason: KeptReason }>
}

const EMPTY_STATE_VECTOR = new Uint8Array([0])

/** Whether the relay acknowledged every update stored (the stored state vector is within `acked`). */
export const onRelay = (stored: StoredRecord): boolean => {
  const updates = stored.updates.filter((u) => u.length > 0)
  if (updates.length === 0) return true
  const acked = stored.meta.acked === undefined ? new Map<number, number>() : Y.decodeStateVector(stored.meta.acked)
  const held = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates)))
  for (const [client, clock] of held) if ((acked.get(client) ?? 0) < clock) return false
  return true
}

/**
 * The catalog entry of a record whose storage was removed: not stored here.
 * Also if it was opened right after (its doc is then empty until the relay
 * answers, and an empty doc's entry does not replace one that says the
 * record is not stored here).
 */
const markRemoved = (context: EvictContext, id: string, viewed: Uint8Array | undefined): void => {
  const now = context.catalog.get(id)
  if (now === undefined || now.pending > 0) return
  const gone: CatalogEntry = {
    ...now,
    local: false,
    evicted: true,
    stateVector: EMPTY_STATE_VECTOR,
    pending: 0,
    pendingFields: [],
    ...(viewed === undefined ? {} : { viewed }),
  }
  context.catalog.set([gone])
  context.listed([gone])
}

/** Removes the records `ids` from this device where that is safe (see the module documentation). */
export const evictRecords = async (context: EvictContext, ids: readonly string[]): Promise<EvictResult> => {
  const result: EvictResult = { evicted: [], kept: [] }
  const { catalog, backend } = context
  for (const id of ids) {
    const entry = catalog.get(id)
    if (entry === undefined || !entry.local) result.kept.push({ id, reason: 'not-stored' })
    else if (entry.pending > 0) result.kept.push({ id, reason: 'pending' })
    else if (context.inMemory(id)) result.kept.push({ id, reason: 'open' })
    else if (backend.removeRecord === undefined) result.kept.push({ id, reason: 'unsupported' })
    else {
      let acceptedAll = true
      // What this device had seen of it (its database's note first, else its inbox entry's): the news when it comes back.
      let viewed: Uint8Array | undefined
      let removed: boolean
      try {
        removed = await backend.removeRecord(id, (stored) => {
          const accepted = onRelay(stored)
          if (!accepted) acceptedAll = false
          viewed ??= stored.meta.viewed
          return accepted
        })
      } catch {
        // It may have been removed in part (its inbox entry, say): what is left may no longer be all of it, so the entry
        // says nothing is stored and the record is fetched whole when needed, merged into what is left (nothing is
        // lost; a failure before anything was removed costs that one fetch).
        markRemoved(context, id, viewed)
        result.kept.push({ id, reason: 'failed' })
        continue
      }
      if (!removed) {
        result.kept.push({ id, reason: acceptedAll ? 'open' : 'unsynced' })
        continue
      }
      markRemoved(context, id, viewed)
      result.evicted.push(id)
    }
  }
  await catalog.flush()
  return result
}

/**
 * Records that may be removed to free space, least recently used first:
 * stored here, nothing pending, not in memory, neither changed
 * (`updatedAt`) nor opened here (`openedAt`) since `before`, and known at a
 * relay sequence (`relaySeq`, from a pull or the live catalog) — without
 * one, the next pull could not tell that nothing changed and would fetch it
 * right back.
 */
export const unusedRecords = (catalog: Catalog, inMemory: (id: string) => boolean, before: number): string[] =>
  catalog
    .all()
    .filter((e) => e.local && e.pending === 0 && e.relaySeq !== undefined && !inMemory(e.id))
    .map((e) => ({ id: e.id, used: Math.max(e.updatedAt ?? 0, e.openedAt ?? 0) }))
    .filter((e) => e.used < before)
    .sort((a, b) => a.used - b.used || (a.id < b.id ? -1 : 1))
    .map((e) => e.id)
