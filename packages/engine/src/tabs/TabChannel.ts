/**
 * Talking to the other tabs of the same user in the same workspace, over a
 * `BroadcastChannel` named `concord/<userId>/<workspaceId>`.
 *
 * What travels (see {@link TabMessage}):
 *
 * - `update`: a local edit of an open record, at once (before IndexedDB or
 *   the relay), with its pending-field notes and whether the author sent it
 *   to the relay (it was subscribed). The receiving tab applies it with
 *   origin {@link TAB_ORIGIN}: it does not store it (the author does; see
 *   `saved` and `save-failed`) and does not send it to the relay (the
 *   author does, or else the outbox-duty tab), so nothing is sent twice.
 *   Its writers count as this device's (pending until acked) in every tab.
 * - `catch-up`: a tab without the outbox duty subscribed a record and left
 *   the relay's sync step 1 unanswered; the outbox-duty tab sends what the
 *   relay lacks (`stateVector`: the relay's), so changes several tabs hold
 *   go out once after a reconnect, not once per tab.
 * - `sync-request` / `sync-reply`: a tab opening a record asks the others
 *   for what its IndexedDB copy lacks (edits not written yet); a reply also
 *   names the Yjs client ids this device wrote the record with.
 * - `acked`: the relay acked the sender's updates of a record (it acks only
 *   the connection whose updates a commit stored): `stateVector` is what
 *   the sender now knows the relay has durably stored, so the other tabs
 *   stop counting the sender's edits as pending.
 * - `saved`: a write of the sender completed; `stateVector` covers only
 *   what is known to be in IndexedDB (its completed writes and what it
 *   loaded, see `records/SavedState`), never edits it merely holds.
 * - `save-failed`: the sender's write of a record failed: tabs holding its
 *   edits in memory write them themselves.
 * - `catalog`: catalog entries a tab recomputed, so every tab lists the same
 *   records with the same pending counts.
 * - `discarding` / `discarded`: a tab is throwing away the record's unsynced
 *   changes (`store.discardUnsynced`). On `discarding` the other tabs park
 *   the record: its doc stops sending to the relay and writing to IndexedDB
 *   at once, and opening the record waits. On `discarded` (posted after the
 *   stored log was replaced, `done`, or after the discard failed) they drop
 *   the parked doc without writing and load the record again from IndexedDB;
 *   open handles move to the new doc.
 * - `wiped`: this user signed out and wiped the workspace: close everything.
 *
 * @module tabs/TabChannel
 */
import { ObservableV2 } from 'lib0/observable'
import type { CatalogEntry } from '../model/CatalogEntry.js'
import type { FieldClocks } from '../model/fieldClocks.js'

/** A message between tabs. `from` is the sender's tab id. */
export type TabMessage =
  | { t: 'update'; from: string; id: string; update: Uint8Array; fieldClocks: FieldClocks | null; sent: boolean }
  | { t: 'catch-up'; from: string; id: string; stateVector: Uint8Array }
  | { t: 'sync-request'; from: string; id: string; stateVector: Uint8Array }
  | { t: 'sync-reply'; from: string; to: string; id: string; update: Uint8Array; fieldClocks: FieldClocks; ownClients?: number[] }
  | { t: 'saved'; from: string; id: string; stateVector: Uint8Array }
  | { t: 'acked'; from: string; id: string; stateVector: Uint8Array }
  | { t: 'save-failed'; from: string; id: string }
  | { t: 'catalog'; from: string; entries: CatalogEntry[]; removed: string[] }
  | { t: 'discarding'; from: string; id: string }
  | { t: 'discarded'; from: string; id: string; done: boolean }
  | { t: 'wiped'; from: string }

/** A message without the sender id (filled in by {@link TabChannel.post}). */
export type OutgoingTabMessage = TabMessage extends infer M ? (M extends TabMessage ? Omit<M, 'from'> : never) : never

/** Events of a {@link TabChannel}. */
export interface TabChannelEvents {
  message: (message: TabMessage) => void
}

/** The BroadcastChannel class (the browser's, Node's, or a test double). */
export type BroadcastChannelConstructor = new (name: string) => {
  onmessage: ((event: { data: unknown }) => void) | null
  postMessage(message: unknown): void
  close(): void
}

/** A channel to the other tabs. Without BroadcastChannel it is a no-op. */
export class TabChannel extends ObservableV2<TabChannelEvents> {
  /** This tab's id. */
  readonly tabId: string
  private channel: InstanceType<BroadcastChannelConstructor> | null

  constructor(name: string, BroadcastChannelImpl?: BroadcastChannelConstructor | null) {
    super()
    this.tabId = Math.random().toString(36).slice(2) + Date.now().toString(36)
    const Impl =
      BroadcastChannelImpl === null
        ? undefined
        : (BroadcastChannelImpl ?? (globalThis as { BroadcastChannel?: BroadcastChannelConstructor }).BroadcastChannel)
    this.channel = Impl === undefined ? null : new Impl(name)
    if (this.channel !== null) {
      this.channel.onmessage = (event) => {
        const message = event.data as TabMessage | null
        if (message === null || typeof message !== 'object' || message.from === this.tabId) return
        if ('to' in message && message.to !== this.tabId) return
        this.emit('message', [message])
      }
    }
  }

  /** Whether other tabs can be reached. */
  get enabled(): boolean {
    return this.channel !== null
  }

  /** Sends to every other tab. Never throws. */
  post(message: OutgoingTabMessage): void {
    if (this.channel === null) return
    try {
      this.channel.postMessage({ ...message, from: this.tabId })
    } catch {
      // A closed channel or an uncloneable value: the other tabs catch up via IndexedDB and the relay.
    }
  }

  override destroy(): void {
    if (this.channel !== null) {
      this.channel.onmessage = null
      this.channel.close()
      this.channel = null
    }
    super.destroy()
  }
}

/**
 * Holds the workspace's "outbox" duty while this tab lives: the holder opens
 * every record with unsynced changes so they reach the relay, even those
 * edited in a tab that has closed since, and sends the catch-up after a
 * reconnect for every tab (see `catch-up`). Uses the Web Locks API, so exactly
 * one tab holds it and the next one takes over when it closes (or crashes).
 * Without Web Locks (Node, old browsers) every store holds it.
 *
 * @returns a function that gives the duty up
 */
export const holdOutboxDuty = (name: string, onAcquired: () => void): (() => void) => {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
  if (locks === undefined || typeof locks.request !== 'function') {
    queueMicrotask(onAcquired)
    return () => {}
  }
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const controller = new AbortController()
  locks
    .request(name, { signal: controller.signal }, async () => {
      onAcquired()
      await held
    })
    .catch(() => {
      // aborted before it was granted
    })
  return () => {
    controller.abort()
    release()
  }
}

interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>
}
