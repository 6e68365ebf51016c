/**
 * The workspaces whose catalog one multiplexed connection watches
 * (`watch-catalog` / `unwatch-catalog`, live lists): from `watch-catalog` on,
 * the connection is told which docs of the workspace the relay stored
 * changes of (rooms/CatalogFeed). Watching needs what `list-docs` of the
 * workspace needs; each name is checked again when it is sent. At most
 * `maxCatalogWatchesPerConnection` workspaces are watched at once.
 *
 * @module connections/CatalogWatches
 */
import { ErrorCode } from '@concord/engine/protocol'
import type { CatalogWatcher } from '../rooms/CatalogFeed.js'
import { Access, listAccessFor } from '../auth/Authenticator.js'
import type { Connection } from './Connection.js'
import { mayReadWorkspace } from './requests.js'

/** What the watches use of their connection (a `MuxConnection`), which is also the watcher the feed notifies. */
export interface CatalogWatchHost extends Connection, CatalogWatcher {
  /** Sends an error about `doc` ("" for the whole connection). */
  sendError(doc: string, code: ErrorCode, reason: string): void
}

/** The catalog watches of one connection. */
export class CatalogWatches {
  private readonly workspaces = new Set<string>()

  constructor(private readonly conn: CatalogWatchHost) {}

  /** `watch-catalog`: checks the name, the access and the limit, then watches the workspace. */
  watch(workspace: string): void {
    const conn = this.conn
    if (!mayReadWorkspace(conn, workspace, 'watch')) return
    if (this.workspaces.has(workspace)) return
    const max = conn.ctx.limits.maxCatalogWatchesPerConnection
    if (this.workspaces.size >= max) {
      conn.refuse('too-many-watches', `watch ${workspace}`)
      conn.sendError(workspace, ErrorCode.limitExceeded, `at most ${max} workspaces watched per connection; unwatch some first`)
      return
    }
    this.workspaces.add(workspace)
    conn.ctx.catalogFeed.watch(workspace, conn)
  }

  /** `unwatch-catalog`: stops watching the workspace (nothing when it was not watched). */
  unwatch(workspace: string): void {
    this.workspaces.delete(workspace)
    this.conn.ctx.catalogFeed.unwatch(workspace, this.conn)
  }

  /** After a token refresh: stops watching, with an error, the workspaces the new token may no longer list. */
  recheck(): void {
    for (const workspace of [...this.workspaces]) {
      if (listAccessFor(this.conn.identity, workspace + '/') !== Access.none) continue
      this.unwatch(workspace)
      this.conn.sendError(workspace, ErrorCode.permissionDenied, `access to workspace "${workspace}" was revoked`)
    }
  }

  /** Stops watching everything: the connection closed. */
  clear(): void {
    for (const workspace of this.workspaces) this.conn.ctx.catalogFeed.unwatch(workspace, this.conn)
    this.workspaces.clear()
  }
}
