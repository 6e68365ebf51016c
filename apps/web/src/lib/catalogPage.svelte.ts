/**
 * What the list pages (TicketList, ProjectList) share: following the local
 * catalog, and the "New …" button that creates a record and opens its page
 * (also used by a project's "New ticket in this project").
 *
 * @module
 * @example
 * $effect(() => {
 *   if (!ready) return
 *   return followCatalog(store, refresh, () => (now = Date.now()))
 * })
 */
import type { RecordStore } from '@concord/engine'
import { routeHref } from './route'
import type { RecordSyncError } from './syncStatus'

/** The props of a list page. */
export interface ListPageProps {
  store: RecordStore
  me: { id: string; name: string; color: string }
  /** The catalog is loaded (before that a list page asks the store directly). */
  ready: boolean
  /** Called with the id of a record the page created. */
  oncreated: (id: string) => void
  /** The connection status (`online`, `offline`, `connecting`). */
  status: string
  /** The last sync error of each record the relay refused, by record id (a rejected row says so). */
  errors?: Record<string, RecordSyncError>
}

/**
 * Whether the store's list has caught up with the relay since it opened
 * (`RecordStore.caughtUp`): until then an empty list means "not here yet",
 * not "none". Call in a component (it follows the store's `caught-up`).
 */
export const followCaughtUp = (store: () => RecordStore): { readonly current: boolean } => {
  let caughtUp = $state(store().caughtUp)
  $effect(() => {
    const current = store()
    caughtUp = current.caughtUp
    const on = (): void => {
      caughtUp = true
    }
    current.on('caught-up', on)
    return () => current.off('caught-up', on)
  })
  return {
    get current() {
      return caughtUp
    },
  }
}

/** How often relative times ("5 min ago") are brought up to date. */
export const CLOCK_INTERVAL_MS = 30_000

/**
 * Calls `refresh` now and whenever the catalog or the pending changes move,
 * and `tick` every {@link CLOCK_INTERVAL_MS}. Returns the function that stops
 * both: what an `$effect` returns.
 */
export function followCatalog(store: Pick<RecordStore, 'on' | 'off'>, refresh: () => void, tick: () => void): () => void {
  refresh()
  store.on('catalog', refresh)
  store.on('pending', refresh)
  const timer = setInterval(tick, CLOCK_INTERVAL_MS)
  return () => {
    store.off('catalog', refresh)
    store.off('pending', refresh)
    clearInterval(timer)
  }
}

/** What a {@link RecordCreator} needs (getters, so a page passes its props). */
export interface RecordCreatorOptions {
  store: () => Pick<RecordStore, 'create'>
  /** Told the new record's id before its page opens. */
  oncreated: (id: string) => void
  /** Goes to a route (default: sets `location.hash`). */
  navigate?: (href: string) => void
}

/** The record a "New …" button just made, until its page takes the focus into its first field. */
let justCreated: string | null = null

/** Whether `id` was just made by a {@link RecordCreator} (true once: its page puts the focus in its first field). */
export const takeJustCreated = (id: string): boolean => {
  if (justCreated !== id) return false
  justCreated = null
  return true
}

/** Creates records from a "New …" button, one at a time, and opens the new record's page. */
export class RecordCreator {
  /** A record is being created: the button waits. */
  creating = $state(false)
  readonly #options: RecordCreatorOptions

  constructor(options: RecordCreatorOptions) {
    this.#options = options
  }

  /**
   * Creates a `type` record with `values` and opens it; does nothing while
   * another is being created. Rejects with the store's error.
   */
  async create(type: 'ticket' | 'project', values: Record<string, unknown>): Promise<void> {
    if (this.creating) return
    this.creating = true
    try {
      const handle = await this.#options.store().create(type, values)
      const id = handle.id
      this.#options.oncreated(id)
      justCreated = id
      handle.close()
      const href = routeHref({ page: type, id })
      if (this.#options.navigate) this.#options.navigate(href)
      else location.hash = href
    } finally {
      this.creating = false
    }
  }
}
