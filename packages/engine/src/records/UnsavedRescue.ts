/**
 * Edits a page had not stored yet when it went away. A record's changes
 * reach IndexedDB a few milliseconds after the keystroke (the catalog entry
 * listing the record as pending first, then the update), and a page that
 * is reloaded or closed in that window loses them: the browser aborts the
 * transactions it had not committed. While the page goes (`pagehide`, and
 * `visibilitychange` to hidden, which comes after every `pagehide`
 * listener ran), the store writes what of each open record is not known to
 * be stored — the update from the stored state on, its pending-field notes
 * and the client ids it was written with — synchronously to localStorage,
 * one part per tab under one key per user and workspace. The next store
 * that starts takes every part over (applies it to the record like an edit
 * of this device, so it is stored, counted as pending and sent), and
 * removes the parts once the records are stored.
 *
 * A part is removed when its page is shown again (it stores its own edits),
 * and a record leaves every part when its unsynced changes are discarded
 * or the user signs out with the device's data removed, so nothing comes
 * back that the person threw away. Applying a part twice, or one whose
 * edits did reach IndexedDB, changes nothing (Yjs updates are idempotent).
 *
 * @example
 *   const rescue = new UnsavedRescue(localStorage, 'concord/ada/acme/')
 *   rescue.write(new Map([['T-1', { update, fieldClocks, ownClients }]])) // while the page goes
 *   const parts = rescue.read() // at the next start
 *   rescue.remove(parts.keys())
 *
 * @module records/UnsavedRescue
 */
import { fromBase64, toBase64 } from 'lib0/buffer'
import * as random from 'lib0/random'
import type { KeyValueStore } from '../catalog/FirstScreen.js'
import type { FieldClocks } from '../model/fieldClocks.js'

/** What of one record was not stored when its page went. */
export interface UnsavedEdits {
  /** The doc's update from the stored state on (with the whole delete set). */
  update: Uint8Array
  /** Pending-field notes of the record. */
  fieldClocks: FieldClocks
  /** Client ids this device wrote the record with. */
  ownClients: number[]
}

interface StoredEdits {
  u: string
  f: FieldClocks
  c: number[]
}

/** Tab id → record id → edits. */
type Stash = Record<string, Record<string, StoredEdits>>

const isStoredEdits = (value: unknown): value is StoredEdits => {
  const edits = value as StoredEdits
  return typeof edits?.u === 'string' && Array.isArray(edits.f) && Array.isArray(edits.c) && edits.c.every(Number.isInteger)
}

/** Keeps a tab's unstored edits in localStorage while its page goes. See the module documentation. */
export class UnsavedRescue {
  /** This tab's part of the stash. */
  readonly tab = random.uuidv4()
  private readonly key: string

  /** `storage`: localStorage (null: nothing is kept); `prefix`: the user's and workspace's key prefix. */
  constructor(
    private readonly storage: KeyValueStore | null,
    prefix: string,
  ) {
    this.key = `${prefix}unsaved`
  }

  /** Replaces this tab's part by `records` (none: removes it). Returns false when it could not be written (storage full). */
  write(records: ReadonlyMap<string, UnsavedEdits>): boolean {
    const stash = this.load()
    if (records.size === 0) {
      if (stash[this.tab] === undefined) return true
      delete stash[this.tab]
    } else {
      const part: Record<string, StoredEdits> = {}
      for (const [id, edits] of records) part[id] = { u: toBase64(edits.update), f: edits.fieldClocks, c: edits.ownClients }
      stash[this.tab] = part
    }
    return this.save(stash)
  }

  /** Every tab's part: tab id → record id → edits. Unreadable parts are left out. */
  read(): Map<string, Map<string, UnsavedEdits>> {
    const parts = new Map<string, Map<string, UnsavedEdits>>()
    for (const [tab, part] of Object.entries(this.load())) {
      const records = new Map<string, UnsavedEdits>()
      for (const [id, edits] of Object.entries(part ?? {})) {
        if (!isStoredEdits(edits)) continue
        try {
          records.set(id, { update: fromBase64(edits.u), fieldClocks: edits.f, ownClients: edits.c })
        } catch {
          // not base64: nothing to take over
        }
      }
      parts.set(tab, records)
    }
    return parts
  }

  /** Removes these tabs' parts (taken over and stored). */
  remove(tabs: Iterable<string>): void {
    const stash = this.load()
    let changed = false
    for (const tab of tabs) {
      if (stash[tab] === undefined) continue
      delete stash[tab]
      changed = true
    }
    if (changed) this.save(stash)
  }

  /** Removes record `id` from every part (its unsynced changes were discarded). */
  forget(id: string): void {
    const stash = this.load()
    let changed = false
    for (const [tab, part] of Object.entries(stash)) {
      if (part?.[id] === undefined) continue
      delete part[id]
      if (Object.keys(part).length === 0) delete stash[tab]
      changed = true
    }
    if (changed) this.save(stash)
  }

  /** Removes every part (the device's data of the workspace was removed). */
  clear(): void {
    try {
      this.storage?.removeItem(this.key)
    } catch {
      // unavailable: nothing was kept there either
    }
  }

  private load(): Stash {
    try {
      const parsed: unknown = JSON.parse(this.storage?.getItem(this.key) ?? '{}')
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Stash) : {}
    } catch {
      return {}
    }
  }

  private save(stash: Stash): boolean {
    try {
      if (Object.keys(stash).length === 0) this.storage?.removeItem(this.key)
      else this.storage?.setItem(this.key, JSON.stringify(stash))
      return true
    } catch {
      return false
    }
  }
}
