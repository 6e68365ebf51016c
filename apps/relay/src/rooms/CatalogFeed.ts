/**
 * Live lists: tells connections watching a workspace which of its docs
 * changed, after the relay stored the change.
 *
 * - The commit queue publishes the names of the docs each commit stored;
 *   every watcher of their workspace collects them.
 * - Per watcher, names are coalesced: a doc committed many times within
 *   `coalesceMs` (someone typing) is one name in one notice; the first
 *   change of a quiet window is sent after `coalesceMs` at most.
 * - Whether a watcher may hear of a doc is asked of the watcher at send time
 *   ({@link CatalogWatcher.mayRead}), so a token refreshed meanwhile counts.
 *
 * @example
 *   const feed = new CatalogFeed()
 *   commits.onCommit((docs) => feed.publish(docs))
 *   feed.watch('acme', connection) // connection.sendCatalogChanged('acme', ['acme/T-1']) after a commit
 *
 * @module rooms/CatalogFeed
 */

/** A connection watching workspaces. */
export interface CatalogWatcher {
  /** Whether the watcher may learn that `doc` exists and changed. */
  mayRead(doc: string): boolean
  /** Sends the names of changed docs of `workspace` (at most {@link MAX_NAMES_PER_NOTICE} per call). */
  sendCatalogChanged(workspace: string, names: readonly string[]): void
}

/** Options of {@link CatalogFeed}. */
export interface CatalogFeedOptions {
  /** How long changes of a watcher are collected before they are sent, ms. Default 100. */
  coalesceMs?: number
}

/** Most names in one `catalog-changed` notice; more go in several notices. */
export const MAX_NAMES_PER_NOTICE = 1000

interface Watch {
  readonly watcher: CatalogWatcher
  readonly workspace: string
  /** Changed doc names not sent yet. */
  readonly changed: Set<string>
  timer: ReturnType<typeof setTimeout> | null
}

/** The relay's live-list notifications. */
export class CatalogFeed {
  private readonly byWorkspace = new Map<string, Map<CatalogWatcher, Watch>>()
  private readonly coalesceMs: number
  private readonly workspaceListeners: Array<(workspace: string, watched: boolean) => void> = []

  constructor(options: CatalogFeedOptions = {}) {
    this.coalesceMs = options.coalesceMs ?? 100
  }

  /** Number of watches over all connections. */
  get size(): number {
    let n = 0
    for (const watches of this.byWorkspace.values()) n += watches.size
    return n
  }

  /** Calls `listener` when a workspace gets its first watch (`watched` true) and when it loses its last. */
  onWorkspaceWatched(listener: (workspace: string, watched: boolean) => void): void {
    this.workspaceListeners.push(listener)
  }

  /** Starts telling `watcher` about stored changes of docs in `workspace`. Watching twice is one watch. */
  watch(workspace: string, watcher: CatalogWatcher): void {
    let watches = this.byWorkspace.get(workspace)
    if (!watches) {
      this.byWorkspace.set(workspace, (watches = new Map()))
      for (const listener of this.workspaceListeners) listener(workspace, true)
    }
    if (!watches.has(watcher)) watches.set(watcher, { watcher, workspace, changed: new Set(), timer: null })
  }

  /** Stops a watch; changes not sent yet are dropped. */
  unwatch(workspace: string, watcher: CatalogWatcher): void {
    const watches = this.byWorkspace.get(workspace)
    const watch = watches?.get(watcher)
    if (!watches || !watch) return
    if (watch.timer) clearTimeout(watch.timer)
    watches.delete(watcher)
    if (watches.size === 0) {
      this.byWorkspace.delete(workspace)
      for (const listener of this.workspaceListeners) listener(workspace, false)
    }
  }

  /** Docs whose changes were just stored. */
  publish(docs: Iterable<string>): void {
    for (const doc of docs) {
      const slash = doc.indexOf('/')
      if (slash <= 0) continue // not a record of a workspace
      const watches = this.byWorkspace.get(doc.slice(0, slash))
      if (!watches) continue
      for (const watch of watches.values()) {
        watch.changed.add(doc)
        watch.timer ??= setTimeout(() => this.send(watch), this.coalesceMs)
      }
    }
  }

  /** Drops every watch and timer (shutdown). */
  clear(): void {
    for (const watches of this.byWorkspace.values()) for (const watch of watches.values()) if (watch.timer) clearTimeout(watch.timer)
    this.byWorkspace.clear()
  }

  private send(watch: Watch): void {
    watch.timer = null
    const names = [...watch.changed].filter((doc) => watch.watcher.mayRead(doc)).sort()
    watch.changed.clear()
    for (let i = 0; i < names.length; i += MAX_NAMES_PER_NOTICE) {
      watch.watcher.sendCatalogChanged(watch.workspace, names.slice(i, i + MAX_NAMES_PER_NOTICE))
    }
  }
}
