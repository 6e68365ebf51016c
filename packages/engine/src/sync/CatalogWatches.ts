/**
 * Catalog watches of the sync client: which workspaces it follows
 * (`watch-catalog` / `catalog-changed`) and who listens to each.
 *
 * - A workspace is watched on the relay while it has at least one listener:
 *   `watch-catalog` goes out with the first, `unwatch-catalog` after the last.
 * - Watches outlive sockets: after every completed handshake each workspace
 *   is watched again and every listener hears `watching()` (what changed
 *   while offline is not told, so listeners catch up then).
 * - A refused or dropped watch is told to its listeners; it is tried again
 *   on the next connection.
 *
 * @module sync/CatalogWatches
 */
import { ErrorCode, encodeUnwatchCatalog, encodeWatchCatalog } from '../protocol/messages.js'
import type { SyncError } from './SyncError.js'

/** What {@link SyncClient.watchCatalog} tells its caller. */
export interface CatalogWatchListener {
  /** Names of docs of the workspace whose changes the relay stored (a name may come again with the next change). */
  changed(names: string[]): void
  /**
   * The watch is in place on a connection — the first one, or a new one after
   * the connection was lost: what changed while it was not is not told, so
   * catch up now (list and fetch the workspace's docs).
   */
  watching?(): void
  /** The relay refused the watch or dropped it (no access, too many watches); it is tried again on the next connection. */
  refused?(error: SyncError): void
}

/** What the watches use of the connection. */
export interface WatchConnection {
  /** Whether the relay completed the handshake on the current socket. */
  readonly online: boolean
  /** Sends a message when the socket is open; drops it otherwise. */
  send(data: Uint8Array): void
}

/** Error codes the relay refuses (or ends) a `watch-catalog` with. */
const WATCH_REFUSALS: ReadonlySet<number> = new Set<number>([ErrorCode.permissionDenied, ErrorCode.limitExceeded, ErrorCode.invalidDocName])

/** The watched workspaces of one sync client and their listeners. */
export class CatalogWatches {
  /** Listeners of each watched workspace. */
  private readonly listeners = new Map<string, Set<CatalogWatchListener>>()

  constructor(private readonly connection: WatchConnection) {}

  /**
   * Adds a listener of `workspace` (a valid workspace id), watching it on the
   * relay if it is the first. Returns the function that removes the listener.
   */
  add(workspace: string, listener: CatalogWatchListener): () => void {
    let listeners = this.listeners.get(workspace)
    if (listeners === undefined) {
      this.listeners.set(workspace, (listeners = new Set()))
      if (this.connection.online) this.connection.send(encodeWatchCatalog(workspace))
    }
    listeners.add(listener)
    if (this.connection.online) listener.watching?.()
    return () => {
      const current = this.listeners.get(workspace)
      if (current === undefined || !current.delete(listener) || current.size > 0) return
      this.listeners.delete(workspace)
      if (this.connection.online) this.connection.send(encodeUnwatchCatalog(workspace))
    }
  }

  /**
   * The handshake completed on a new socket: watch every workspace again,
   * then tell every listener (stopping early if the socket fails meanwhile).
   */
  connected(): void {
    for (const workspace of this.listeners.keys()) {
      if (this.connection.online) this.connection.send(encodeWatchCatalog(workspace))
    }
    for (const listeners of [...this.listeners.values()]) {
      for (const listener of [...listeners]) if (this.connection.online) listener.watching?.()
    }
  }

  /** A `catalog-changed` for `workspace`. */
  changed(workspace: string, names: string[]): void {
    for (const listener of [...(this.listeners.get(workspace) ?? [])]) listener.changed(names)
  }

  /** An `error` naming `workspace`: told to its listeners when it is one a watch is refused with. */
  error(error: SyncError): void {
    if (!WATCH_REFUSALS.has(error.code)) return
    for (const listener of [...(this.listeners.get(error.doc) ?? [])]) listener.refused?.(error)
  }

  /** Forgets every watch (client closed). */
  clear(): void {
    this.listeners.clear()
  }
}
