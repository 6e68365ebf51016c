/**
 * Keeps the catalog in step with the records open in this tab: the catalog
 * entries of changed records are written in batches (50 ms, or at once when
 * a record's pending state flipped or its own storage is being written) and
 * posted to the other tabs; the workspace's pending total counts catalog
 * entries, with live counts for open records.
 *
 * Which open record changed is a flag of its entry in the
 * {@link RecordLifecycle} (`catalogDirty`), so a record that leaves memory
 * takes its flag with it.
 *
 * @module records/CatalogMirror
 */
import type { Catalog } from '../catalog/Catalog.js'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { TabChannel } from '../tabs/TabChannel.js'
import type { OpenRecord } from './OpenRecord.js'
import { RecordState, type RecordLifecycle } from './RecordLifecycle.js'

/** How long changes of open records gather before their catalog entries are written, ms. */
const CATALOG_BATCH_MS = 50

/** Writes the catalog entries of open records and keeps the pending total. See the module documentation. */
export class CatalogMirror {
  private batchTimer: ReturnType<typeof setTimeout> | null = null
  private lastTotal = 0

  /**
   * @param onTotal called when the pending total changed.
   */
  constructor(
    private readonly catalog: Catalog,
    private readonly lifecycle: RecordLifecycle,
    private readonly tabs: TabChannel,
    private readonly onTotal: (total: number) => void,
  ) {}

  /** The workspace's pending total: every record, open or not. */
  get total(): number {
    return this.lastTotal
  }

  /** `record`'s catalog entry may have changed; `now`: write it at once. */
  markDirty(record: OpenRecord, now: boolean): void {
    if (!this.setDirty(record)) return
    this.updateTotal()
    if (now) {
      this.flush()
      void this.catalog.flush()
      return
    }
    this.batchTimer ??= setTimeout(() => {
      this.batchTimer = null
      this.flush()
    }, CATALOG_BATCH_MS)
  }

  /** Writes the catalog entry of `record` now; resolves when committed (or failed, reported). */
  async store(record: OpenRecord): Promise<void> {
    if (!this.setDirty(record)) return
    this.flush()
    await this.catalog.flush()
  }

  /** Writes the catalog entries of changed open records (and posts them to the other tabs). */
  flush(): void {
    this.cancelBatch()
    const entries: CatalogEntry[] = []
    for (const state of [RecordState.open, RecordState.idle] as const) {
      for (const [, held] of this.lifecycle.allIn(state)) {
        if (!held.catalogDirty) continue
        held.catalogDirty = false
        if (held.record.closed) continue
        const entry = held.record.entry()
        // Not a record (yet), or one whose content has not arrived (listed from the relay, or removed to free space and
        // opened offline): the entry listing it stays.
        if (entry.type === null && this.catalog.get(entry.id)?.local !== true) continue
        entries.push(entry)
      }
    }
    if (entries.length === 0) return
    this.catalog.set(entries)
    this.tabs.post({ t: 'catalog', entries, removed: [] })
  }

  /** Recomputes the pending total: catalog entries, with live counts for open records. */
  updateTotal(): void {
    let total = this.catalog.pending
    for (const record of this.lifecycle.records()) total += record.sync.pending - (this.catalog.get(record.id)?.pending ?? 0)
    if (total === this.lastTotal) return
    this.lastTotal = total
    this.onTotal(total)
  }

  /** Stops the batch timer (the store closes). */
  cancelBatch(): void {
    if (this.batchTimer !== null) clearTimeout(this.batchTimer)
    this.batchTimer = null
  }

  /** Flags `record`'s entry as changed; false when it is not the current record of its id. */
  private setDirty(record: OpenRecord): boolean {
    const held = this.lifecycle.get(record.id)
    if ((held?.state !== RecordState.open && held?.state !== RecordState.idle) || held.record !== record) return false
    held.catalogDirty = true
    return true
  }
}
