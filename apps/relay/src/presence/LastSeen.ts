/**
 * Remembers when each user was last seen in each workspace, so teammates can
 * show "last seen 2 h ago" for people who are offline (maybe with unsynced
 * changes). A user is *online* in a workspace while one of their connections
 * is subscribed to a doc of it; when the last one leaves, the time is
 * recorded. Records are written to storage in batches (every `flushMs`, and
 * on shutdown), never on the message path.
 *
 * @module presence/LastSeen
 */
import type { PresenceRecord, Storage } from '../storage/Storage.js'
import type { Logger } from '../observability/logger.js'
import type { PresenceInfo } from '@concord/engine/protocol'

interface Online {
  name: string
  /** Subscriptions of this user in the workspace, over all connections. */
  count: number
}

/** Last-seen tracking of one relay. */
export class LastSeen {
  private readonly online = new Map<string, Map<string, Online>>()
  private dirty = new Map<string, Map<string, PresenceRecord>>()
  private readonly timer: ReturnType<typeof setInterval>
  private flushing: Promise<void> = Promise.resolve()

  constructor(
    private readonly storage: Storage,
    private readonly log: Logger,
    flushMs = 30_000,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs)
    this.timer.unref()
  }

  /** A user subscribed to a doc of `workspace`. */
  enter(workspace: string, userId: string, name: string): void {
    let users = this.online.get(workspace)
    if (!users) this.online.set(workspace, (users = new Map()))
    const entry = users.get(userId)
    if (entry) {
      entry.count++
      entry.name = name
    } else {
      users.set(userId, { name, count: 1 })
      this.touch(workspace, userId, name)
    }
  }

  /** A user's subscription to a doc of `workspace` ended. */
  leave(workspace: string, userId: string): void {
    const users = this.online.get(workspace)
    const entry = users?.get(userId)
    if (!users || !entry) return
    entry.count--
    if (entry.count > 0) return
    users.delete(userId)
    if (users.size === 0) this.online.delete(workspace)
    this.touch(workspace, userId, entry.name)
  }

  /** Everyone seen in `workspace`: online users first (last seen = now), then by last seen. */
  async list(workspace: string): Promise<PresenceInfo[]> {
    const now = Date.now()
    const stored = await this.storage.listPresence(workspace)
    const byUser = new Map<string, PresenceInfo>()
    for (const r of stored) byUser.set(r.userId, { ...r, online: false })
    for (const r of this.dirty.get(workspace)?.values() ?? []) {
      const known = byUser.get(r.userId)
      if (!known || known.lastSeen <= r.lastSeen) byUser.set(r.userId, { ...r, online: false })
    }
    for (const [userId, { name }] of this.online.get(workspace) ?? []) byUser.set(userId, { userId, name, lastSeen: now, online: true })
    return [...byUser.values()].sort((a, b) => Number(b.online) - Number(a.online) || b.lastSeen - a.lastSeen)
  }

  /** Writes pending records (and the current time for everyone online) to storage. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write())
    return this.flushing
  }

  /** Records everyone online as seen now, flushes and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }

  private touch(workspace: string, userId: string, name: string): void {
    let users = this.dirty.get(workspace)
    if (!users) this.dirty.set(workspace, (users = new Map()))
    users.set(userId, { userId, name, lastSeen: Date.now() })
  }

  private async write(): Promise<void> {
    for (const [workspace, users] of this.online) {
      for (const [userId, { name }] of users) this.touch(workspace, userId, name)
    }
    const batch = this.dirty
    this.dirty = new Map()
    if (batch.size === 0) return
    // every workspace in one transaction: one commit (one fsync) instead of one per workspace, which the
    // storage thread would run ahead of the acks' commits every flush
    try {
      await this.storage.recordPresence([...batch].map(([workspace, users]) => ({ workspace, records: [...users.values()] })))
    } catch (error) {
      this.log.warn({ err: error, workspaces: batch.size }, 'could not store last-seen presence; will retry')
      for (const [workspace, users] of batch) {
        const again = this.dirty.get(workspace) ?? new Map<string, PresenceRecord>()
        for (const [userId, record] of users) if (!again.has(userId)) again.set(userId, record)
        this.dirty.set(workspace, again)
      }
    }
  }
}
