/**
 * Who is in a workspace right now, and when teammates who are not were last
 * seen.
 *
 * Online: everyone whose client holds the workspace's presence doc
 * (`<workspaceId>/_workspace/presence`, never a record: record ids have no
 * `/`) open — its y-protocols Awareness carries each client's `user` state,
 * so people appear and leave live (the relay removes a state at once on a
 * clean close, within 30 s otherwise). Opening the doc also counts as being
 * in the workspace for the relay's `list-presence`.
 *
 * Last seen: the relay's `list-presence` answer (`client.lastSeen`), asked
 * once each time the client comes online — while it stays online, comings
 * and goings arrive through the awareness, so an idle tab asks nothing more
 * (a `refreshInterval` can poll as well, e.g. for people who reach the relay
 * without opening the presence doc; a relay without auth lists the users the
 * clients' awareness states claim). It is merged with what this client saw
 * itself (a person who left the awareness was last seen then) and with
 * `remembered` (from an earlier session).
 *
 * @example
 *   const presence = new WorkspacePresence(client, 'acme')
 *   presence.on('change', (people) => render(people.filter((p) => p.online)))
 *   // …
 *   presence.destroy()
 *
 * @module presence/WorkspacePresence
 */
import { ObservableV2 } from 'lib0/observable'
import type { DocHandle } from '../sync/DocHandle.js'
import type { SyncClient } from '../sync/SyncClient.js'

/** A person of the workspace. */
export interface WorkspacePerson {
  userId: string
  name: string
  /** Colour from the person's awareness state, if they are or were online here. */
  color: string | null
  /** In the workspace now. */
  online: boolean
  /** The signed-in user of this client. */
  self: boolean
  /** Open tabs / devices of the person right now (0 when offline). */
  clients: number
  /** ms since epoch: now while online; null when never seen. */
  lastSeen: number | null
}

/** Options of {@link WorkspacePresence}. */
export interface WorkspacePresenceOptions {
  /**
   * Also ask the relay for last-seen times this often while online. Default 0: only when the client comes online
   * (people who come and go meanwhile are seen live, in the awareness).
   */
  refreshInterval?: number
  /** Last-seen records kept from an earlier session (see {@link WorkspacePresence.remembered}). */
  remembered?: readonly RememberedPerson[]
  /** Clock, for tests. Default `client.relayTime` (the relay's clock, as the last-seen times the relay sends). */
  now?: () => number
}

/** A person as remembered between sessions. */
export interface RememberedPerson {
  userId: string
  name: string
  color: string | null
  lastSeen: number
}

/** Events of {@link WorkspacePresence}. */
export interface WorkspacePresenceEvents {
  /** Someone came, left, or a last-seen time changed. */
  change: (people: WorkspacePerson[]) => void
}

/** The name of a workspace's presence doc. */
export const workspacePresenceDoc = (workspaceId: string): string => `${workspaceId}/_workspace/presence`

/** The user a relay without auth binds every client to. */
const ANONYMOUS = 'anonymous'

interface AwarenessUser {
  id: string
  name: string
  color?: string
}

/** Workspace presence. Call {@link destroy} when done (it closes the presence doc). */
export class WorkspacePresence extends ObservableV2<WorkspacePresenceEvents> {
  readonly handle: DocHandle
  private readonly client: SyncClient
  private readonly workspaceId: string
  private readonly now: () => number
  private readonly seen = new Map<string, RememberedPerson>()
  private online = new Map<string, { name: string; color: string | null; clients: number }>()
  private timer: ReturnType<typeof setInterval> | null = null
  private destroyed = false

  constructor(client: SyncClient, workspaceId: string, options: WorkspacePresenceOptions = {}) {
    super()
    this.client = client
    this.workspaceId = workspaceId
    this.now = options.now ?? (() => client.relayTime())
    for (const person of options.remembered ?? []) this.seen.set(person.userId, { ...person })
    this.handle = client.open(workspacePresenceDoc(workspaceId))
    this.handle.awareness.on('change', this.onAwareness)
    client.on('status', this.onStatus)
    const interval = options.refreshInterval ?? 0
    if (interval > 0) this.timer = setInterval(() => void this.refresh(), interval)
    this.online = this.readAwareness()
    if (client.status === 'online') void this.refresh()
  }

  /** Everyone known: online people first (the local user first among them), then by last seen, newest first. */
  get people(): WorkspacePerson[] {
    const me = this.selfId
    const out: WorkspacePerson[] = []
    for (const [userId, p] of this.online) {
      out.push({ userId, name: p.name, color: p.color, online: true, self: userId === me, clients: p.clients, lastSeen: this.now() })
    }
    for (const person of this.seen.values()) {
      if (this.online.has(person.userId)) continue
      out.push({ ...person, online: false, self: person.userId === me, clients: 0 })
    }
    return out.sort(
      (a, b) =>
        Number(b.online) - Number(a.online) ||
        Number(b.self) - Number(a.self) ||
        (b.lastSeen ?? 0) - (a.lastSeen ?? 0) ||
        a.name.localeCompare(b.name),
    )
  }

  /** Last-seen records to keep for the next session. */
  get remembered(): RememberedPerson[] {
    const now = this.now()
    const out = new Map(this.seen)
    for (const [userId, p] of this.online) out.set(userId, { userId, name: p.name, color: p.color, lastSeen: now })
    return [...out.values()]
  }

  /** Asks the relay for last-seen times now (ignored when offline or refused). */
  async refresh(): Promise<void> {
    if (this.destroyed || this.client.status !== 'online') return
    const controller = new AbortController()
    const timeout = setTimeout(() => controller.abort(), 10_000)
    try {
      const users = await this.client.lastSeen(this.workspaceId, { signal: controller.signal })
      if (this.destroyed) return
      let changed = false
      for (const user of users) {
        if (user.userId === ANONYMOUS) continue // a relay without auth: not a person
        const known = this.seen.get(user.userId)
        if (known !== undefined && known.lastSeen >= user.lastSeen) continue
        this.seen.set(user.userId, { userId: user.userId, name: user.name, color: known?.color ?? null, lastSeen: user.lastSeen })
        changed = true
      }
      if (changed) this.emit('change', [this.people])
    } catch {
      // No read access or the connection dropped: keep what is known.
    } finally {
      clearTimeout(timeout)
    }
  }

  /** Leaves the workspace's presence and stops listening. */
  override destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.client.off('status', this.onStatus)
    this.handle.awareness.off('change', this.onAwareness)
    this.handle.close()
    super.destroy()
  }

  private get selfId(): string | null {
    const state = this.handle.awareness.getLocalState() as { user?: unknown } | null
    return isUser(state?.user) ? state.user.id : null
  }

  private readAwareness(): Map<string, { name: string; color: string | null; clients: number }> {
    const out = new Map<string, { name: string; color: string | null; clients: number }>()
    for (const state of this.handle.awareness.getStates().values()) {
      const user = (state as { user?: unknown } | null)?.user
      if (!isUser(user)) continue
      const known = out.get(user.id)
      out.set(user.id, { name: user.name, color: typeof user.color === 'string' ? user.color : null, clients: (known?.clients ?? 0) + 1 })
    }
    return out
  }

  private readonly onAwareness = (): void => {
    const next = this.readAwareness()
    const now = this.now()
    // Whoever left was last seen now.
    for (const [userId, p] of this.online) {
      if (!next.has(userId)) this.seen.set(userId, { userId, name: p.name, color: p.color, lastSeen: now })
    }
    for (const [userId, p] of next) this.seen.set(userId, { userId, name: p.name, color: p.color, lastSeen: now })
    this.online = next
    this.emit('change', [this.people])
  }

  private readonly onStatus = (status: string): void => {
    if (status === 'online') void this.refresh()
  }
}

const isUser = (value: unknown): value is AwarenessUser =>
  value !== null &&
  typeof value === 'object' &&
  typeof (value as { id?: unknown }).id === 'string' &&
  typeof (value as { name?: unknown }).name === 'string'
