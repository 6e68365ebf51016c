/**
 * What one store does for the other tabs of the same user and workspace,
 * and with what they send (see `tabs/TabChannel` for the messages):
 *
 * - **Outbox duty.** One tab at a time (a Web Lock) makes sure every record
 *   with unsynced changes is open, so it syncs, and sends the catch-up
 *   after a (re)subscribe for every tab — nothing is sent once per tab.
 * - **Tab messages.** Edits, sync requests and replies, saved / save-failed
 *   notes, acks and catalog entries go to the record open here; `discarding` /
 *   `discarded` park and unpark a record; `wiped` closes the store.
 *
 * @module records/TabCoordinator
 */
import type { Catalog } from '../catalog/Catalog.js'
import { holdOutboxDuty, type TabChannel, type TabMessage } from '../tabs/TabChannel.js'
import type { RecordPool } from './RecordPool.js'
import { RecordState } from './RecordLifecycle.js'

/** What a {@link TabCoordinator} needs from its store. */
export interface TabCoordinatorHost {
  readonly tabs: TabChannel
  readonly catalog: Catalog
  readonly pool: RecordPool
  /** Whether the store is closing (or closed). */
  isClosing(): boolean
  /** Another tab discarded record `id`'s unsynced changes (emit `discarded`). */
  discarded(id: string): void
  /** Another tab signed out and wiped the workspace: close without writing (then emit `signed-out`). */
  wiped(): void
}

/** Shares a store's records with the other tabs. See the module documentation. */
export class TabCoordinator {
  private readonly host: TabCoordinatorHost
  private releaseOutbox: (() => void) | null = null
  private outboxHeld = false

  constructor(host: TabCoordinatorHost) {
    this.host = host
    host.tabs.on('message', this.onMessage)
  }

  /** Whether this tab holds the outbox duty. */
  get holdsOutbox(): boolean {
    return this.outboxHeld
  }

  /** Whether this tab sends the catch-up after a (re)subscribe (it holds the duty, or there are no other tabs). */
  get sendsCatchUp(): boolean {
    return this.outboxHeld || !this.host.tabs.enabled
  }

  /** Starts waiting for the outbox duty (`lockName`: one per user and workspace). */
  start(lockName: string): void {
    this.releaseOutbox = holdOutboxDuty(`concord-outbox/${lockName}`, () => this.takeOutboxDuty())
  }

  /** Opens record `id` unless it is open, if this tab holds the outbox duty (it has pending changes: it must sync). */
  ensureSyncing(id: string): void {
    if (this.outboxHeld && this.host.pool.lifecycle.recordOf(id) === undefined) this.acquireToSync(id)
  }

  /** Gives the duty up and stops listening (the store closes). */
  stop(): void {
    this.releaseOutbox?.()
    this.releaseOutbox = null
  }

  /**
   * This tab now makes sure every record with unsynced changes is open (so
   * it syncs), and sends the catch-up for every tab: what the previous
   * holder may not have sent goes out now.
   */
  private takeOutboxDuty(): void {
    if (this.host.isClosing()) return
    this.outboxHeld = true
    const { pool, catalog } = this.host
    for (const record of pool.lifecycle.records()) record.sync.resendPending()
    for (const id of catalog.pendingIds()) {
      if (pool.lifecycle.recordOf(id) === undefined) this.acquireToSync(id)
    }
  }

  /** Opens record `id` (unless it is opening already) so it syncs; it closes again once idle. */
  private openToSync(id: string): void {
    if (this.host.pool.lifecycle.stateOf(id) !== RecordState.opening) this.acquireToSync(id)
  }

  /** Opens record `id` (or waits for it to open) so it syncs; it closes again once idle. */
  private acquireToSync(id: string): void {
    const { pool } = this.host
    void pool.acquire(id).then(
      (record) => pool.settle(record),
      () => {},
    )
  }

  private readonly onMessage = (message: TabMessage): void => {
    if (this.host.isClosing()) return
    const { pool, tabs, catalog } = this.host
    const sharingOf = (id: string) => pool.lifecycle.recordOf(id)?.tabShare
    switch (message.t) {
      case 'update': {
        const sharing = sharingOf(message.id)
        sharing?.noteTabEdit(message.update, message.sent)
        sharing?.applyFromTab(message.update, message.fieldClocks, message.sent === false)
        return
      }
      case 'sync-request': {
        const sharing = sharingOf(message.id)
        if (sharing !== undefined) tabs.post({ t: 'sync-reply', to: message.from, id: message.id, ...sharing.replyTo(message.stateVector) })
        return
      }
      case 'sync-reply': {
        // What a reply brings was sent by its authors, or goes out with the next catch-up.
        const sharing = sharingOf(message.id)
        sharing?.noteOwnClients(message.ownClients ?? [])
        sharing?.applyFromTab(message.update, message.fieldClocks)
        return
      }
      case 'acked':
        sharingOf(message.id)?.ackedByTab(message.stateVector)
        return
      case 'catch-up': {
        if (!this.outboxHeld) return
        // Another tab left the relay's step 1 to this one: send what the relay lacks (opening the record does).
        const record = pool.lifecycle.recordOf(message.id)
        if (record !== undefined) record.sync.catchUp(message.stateVector)
        else this.openToSync(message.id)
        return
      }
      case 'saved':
        sharingOf(message.id)?.savedByTab(message.stateVector)
        return
      case 'save-failed':
        sharingOf(message.id)?.saveUnconfirmed()
        return
      case 'catalog': {
        const entries = message.entries.filter((entry) => pool.lifecycle.recordOf(entry.id) === undefined)
        catalog.set(entries, { persist: false })
        catalog.remove(
          message.removed.filter((id) => pool.lifecycle.recordOf(id) === undefined),
          { persist: false },
        )
        if (this.outboxHeld) {
          // A record another tab edited has changes pending: make sure it syncs even if that tab closes.
          for (const entry of entries) if (entry.pending > 0) this.openToSync(entry.id)
        }
        return
      }
      case 'discarding':
        pool.park(message.id)
        return
      case 'discarded':
        void pool.unpark(message.id, message.done).then(() => {
          if (message.done && !this.host.isClosing()) this.host.discarded(message.id)
        })
        return
      case 'wiped':
        this.host.wiped()
        return
    }
  }
}
