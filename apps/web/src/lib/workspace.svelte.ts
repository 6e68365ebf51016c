/**
 * One signed-in user in one workspace, without its screen: the app's one
 * SyncClient, the RecordStore and WorkspacePresence over it, the names of
 * the people, the "while you were away…" digest, and what the top bar,
 * the banners and the sync page show — the connection status, the changes
 * not yet on the relay, the records the relay rejected, a storage failure.
 * The people are read from the presence through a subscriber its events
 * drive; the counts of unsynced changes are taken on the store's events
 * (listing the unsynced records writes the catalog, which emits: not
 * something to do while a page renders); what is the app's own (the status
 * as the person sees it, a sync running, the rejections) is state here.
 *
 * @module
 * @example
 * const workspace = new WorkspaceState(session, { storage: localStorage, onrefused })
 * $effect(() => workspace.start()) // listens until the component goes; then closes the store and the client
 * workspace.pendingChanges          // 2
 */
import {
  ErrorCode,
  RecordStore,
  SyncClient,
  WorkspacePresence,
  type RecordSummary,
  type RememberedPerson,
  type StorageErrorEvent,
  type StorageSpace,
  type SyncError,
  type WorkspacePerson,
} from '@concord/engine'
import { createSubscriber } from 'svelte/reactivity'
import { AuthorNames } from './authorNames'
import { useClock } from './clock'
import { Digest } from './digest.svelte'
import type { KeyValueStore } from './identity'
import { tokenProblem } from './relayAuth'
import { appSchemas } from './schemas'
import type { Session } from './session'
import { countChanges, storageProblemText, type RecordSyncError } from './syncStatus'
import { accessTo, readClaims } from './token'

/** What a {@link WorkspaceState} needs besides the session. */
export interface WorkspaceOptions {
  /** Where names, people and the digest are kept on this device (null: nowhere). */
  storage: KeyValueStore | null
  /** The relay refused the session's token (expired, revoked, another user): back to sign-in with this message. */
  onrefused?: (message: string) => void
}

/** A storage failure in plain words, and the engine's reason (the detail). */
export interface StorageProblem {
  text: string
  reason: string
}

/** How long the last-seen times of the people wait before they are written to storage. */
const PEOPLE_SAVE_DELAY_MS = 2_000

/** One user's workspace; see the module comment. */
export class WorkspaceState {
  /** The signed-in user, as shown to the others. */
  readonly me: { id: string; name: string; color: string }
  readonly workspaceId: string
  /** What the token allows here (the relay enforces it; the app shows it). Without auth: write. */
  readonly access: 'write' | 'read' | 'none'
  readonly readOnly: boolean
  readonly client: SyncClient
  /** live: records others create, change or archive reach the catalog (and the lists) when the relay stored them; caught up after every reconnect. */
  readonly store: RecordStore
  readonly presence: WorkspacePresence
  /** Who wrote what, by name, everywhere in the app. */
  readonly names: AuthorNames
  /** "While you were away…": what others changed, until read or dismissed. */
  readonly digest: Digest

  /**
   * The connection as the person sees it: a reconnect attempt after the
   * connection was lost stays "offline" until it succeeds (the banner and
   * the wording do not flicker with every attempt); only the first
   * connection says "connecting".
   */
  status = $state<string>('connecting')
  /** The store has loaded what this device keeps. */
  ready = $state(false)
  /** The sync error of each record the relay rejected, by record id. */
  syncErrors = $state<Record<string, RecordSyncError>>({})
  /** Records whose changes the relay refused for good (until retried or discarded). */
  rejectedRecords = $derived(Object.values(this.syncErrors).filter((e) => e.permanent).length)
  /** A sync runs by itself: the connection came (back) with changes waiting, until the relay stored them. */
  autoSyncing = $state(false)
  /** A storage failure since the last successful retry. */
  storageProblem = $state<StorageProblem | null>(null)
  /** The store saves on this device (false: IndexedDB unavailable, everything lives in this tab). */
  persistent = $state(true)
  /** This device's storage as last read (null: not yet, or the browser does not say). */
  storageSpace = $state<StorageSpace | null>(null)
  /** Records removed from this device to free space (listed, fetched again when opened online). */
  removedHere = $state(0)
  retryingStorage = $state(false)

  readonly #token: string | undefined
  readonly #storage: KeyValueStore | null
  readonly #peopleKey: string
  readonly #onrefused: (message: string) => void
  readonly #peopleChanges: () => void
  /**
   * Records with changes made here while the relay was not reachable (or
   * waiting when the app started), until the news of that record arrives:
   * the digest then says the person's own work is in it.
   */
  readonly #workedAway = new Set<string>()

  constructor(session: Session, options: WorkspaceOptions) {
    this.me = { id: session.userId, name: session.name, color: session.color }
    this.workspaceId = session.workspaceId
    this.#token = session.token
    this.#storage = options.storage
    this.#onrefused = options.onrefused ?? (() => undefined)
    this.access = this.#token === undefined ? 'write' : accessTo(readClaims(this.#token)?.access ?? {}, this.workspaceId)
    this.readOnly = this.access === 'read'
    this.client = new SyncClient({
      url: location.origin.replace(/^http/, 'ws'),
      user: this.me,
      ...(this.#token === undefined ? {} : { token: this.#token }),
    })
    this.status = this.client.status
    this.store = new RecordStore({
      client: this.client,
      userId: this.me.id,
      workspaceId: this.workspaceId,
      schemas: appSchemas,
      live: true,
      readOnly: this.readOnly,
    })
    const prefix = `concord/${encodeURIComponent(this.me.id)}/${encodeURIComponent(this.workspaceId)}`
    this.names = new AuthorNames(this.#storage, `${prefix}/author-names`)
    this.digest = new Digest(this.#storage, `${prefix}/digest`)
    this.#peopleKey = `${prefix}/people`
    this.presence = new WorkspacePresence(this.client, this.workspaceId, { remembered: this.#loadPeople() })
    this.#learnPeople(this.presence.people)
    const presence = this.presence
    this.#peopleChanges = createSubscriber((update) => {
      presence.on('change', update)
      return () => presence.off('change', update)
    })
  }

  /** Clock ticks not on the relay. */
  pending = $state(0)
  /** Type of each record with changes not on the relay. */
  pendingTypes = $state<string[]>([])
  /** Changed fields not on the relay (what people call "changes"; `pending` counts Yjs clock ticks). */
  pendingChanges = $state(0)

  /** Everyone the workspace's presence knows: who is here, and who was. */
  readonly people = $derived.by((): WorkspacePerson[] => {
    this.#peopleChanges()
    return this.presence.people
  })

  /** The relay cannot be reached. */
  get offline(): boolean {
    return this.status === 'offline'
  }

  /** Changes made here are really saved on this device: only then may the app say so. */
  get savedOnDevice(): boolean {
    return this.persistent && this.storageProblem === null
  }

  /**
   * Listens to the client, the store, the presence and the browser's
   * network hints, until the returned function is called (what an `$effect`
   * returns); that closes the presence, the store, then the client.
   */
  start(): () => void {
    const { client, store, presence } = this
    if (this.access === 'none') this.#onrefused(`Your access token does not give access to the workspace “${this.workspaceId}”.`)
    const onStatus = (): void => {
      const identity = client.identity
      if (this.#token !== undefined && client.status === 'online' && identity !== null && identity.userId !== this.me.id) {
        this.#onrefused('This access token is for another user. Sign in again.')
        return
      }
      this.status = client.status === 'connecting' && this.status === 'offline' ? 'offline' : client.status
      if (this.status === 'online') this.#syncOnConnect()
      else this.autoSyncing = false
    }
    // Counted on the store's events, not read in the page: listing the unsynced records writes the catalog, which emits again.
    const onPending = (): void => {
      this.pending = store.pending
      const unsynced = store.unsynced()
      if (client.status !== 'online') for (const record of unsynced) this.#workedAway.add(record.id)
      this.pendingTypes = unsynced.map((r) => r.type ?? 'record')
      this.pendingChanges = this.pending === 0 ? 0 : Math.max(1, countChanges(unsynced))
      if (this.pending === 0) this.autoSyncing = false
    }
    // Records open here summarize after they synced again; the rest come from the catch-up pull.
    const onSummary = (summary: RecordSummary): void => {
      this.digest.add(summary, this.#workedAway.has(summary.recordId))
      this.#workedAway.delete(summary.recordId)
    }
    const onSyncError = (error: SyncError, recordId: string): void => {
      this.syncErrors = { ...this.syncErrors, [recordId]: { code: error.code, reason: error.reason, permanent: error.permanent } }
    }
    const onClientError = (error: SyncError): void => {
      if (this.#token !== undefined && error.doc === '' && error.code === ErrorCode.unauthorized)
        this.#onrefused(tokenProblem(error.reason) + waitingForSignIn(this.pending === 0 ? 0 : this.pendingChanges))
    }
    const onStorageError = (event: StorageErrorEvent): void => {
      this.persistent = store.persistent
      this.storageProblem = { text: storageProblemText(event.kind), reason: event.reason }
    }
    const onStorageSpace = (space: StorageSpace): void => {
      this.storageSpace = space
    }
    const countRemoved = (): void => {
      let removed = 0
      for (const entry of store.catalog.all()) if (entry.evicted === true) removed++
      this.removedHere = removed
    }
    const onDiscarded = (id: string): void => this.forget(id)
    let saveTimer: ReturnType<typeof setTimeout> | null = null
    const onPeople = (next: WorkspacePerson[]): void => {
      this.#learnPeople(next)
      saveTimer ??= setTimeout(() => {
        saveTimer = null
        try {
          this.#storage?.setItem(this.#peopleKey, JSON.stringify(presence.remembered))
        } catch {
          // full or unavailable: last-seen times are a nicety
        }
      }, PEOPLE_SAVE_DELAY_MS)
    }
    // The browser's opinion is only a hint: when it says the network went, ask the relay again now.
    const onBrowserNetwork = (): void => client.reconnect()
    client.on('status', onStatus)
    client.on('error', onClientError)
    presence.on('change', onPeople)
    store.on('pending', onPending)
    store.on('catalog', onPending)
    store.on('summary', onSummary)
    store.on('sync-error', onSyncError)
    store.on('discarded', onDiscarded)
    store.on('storage-error', onStorageError)
    store.on('storage-space', onStorageSpace)
    store.on('evicted', countRemoved)
    store.on('catalog', countRemoved) // one opened again comes back
    window.addEventListener('offline', onBrowserNetwork)
    window.addEventListener('online', onBrowserNetwork)
    const stopClock = useClock(() => store.now())
    void store.ready.then(() => {
      this.persistent = store.persistent
      this.storageSpace = store.storageSpace
      countRemoved()
      this.ready = true
      // Work not on the relay yet lives only here: ask the browser not to clear it when the disk runs low.
      if (store.persistent) void store.requestPersistence()
      // Changes waiting from before the app started were made while away too.
      for (const record of store.unsynced()) this.#workedAway.add(record.id)
      onPending()
      this.#syncOnConnect()
    })
    return () => {
      if (saveTimer !== null) clearTimeout(saveTimer)
      presence.off('change', onPeople)
      presence.destroy()
      client.off('status', onStatus)
      client.off('error', onClientError)
      store.off('pending', onPending)
      store.off('catalog', onPending)
      store.off('summary', onSummary)
      store.off('sync-error', onSyncError)
      store.off('discarded', onDiscarded)
      store.off('storage-error', onStorageError)
      store.off('storage-space', onStorageSpace)
      store.off('evicted', countRemoved)
      store.off('catalog', countRemoved)
      window.removeEventListener('offline', onBrowserNetwork)
      window.removeEventListener('online', onBrowserNetwork)
      stopClock()
      void store
        .close()
        .catch(() => undefined)
        .finally(() => client.close())
    }
  }

  /** A fresh token for the same user (handed over while the app is open) replaces the current one on the connection. */
  setToken(next: string | undefined): void {
    if (next !== undefined && next !== this.#token) this.client.setToken(next)
  }

  /** Writes what failed again; the notice goes only when that worked (a failure keeps it, with the new reason). */
  async retryStorage(): Promise<void> {
    this.retryingStorage = true
    try {
      const result = await this.store.retryStorage()
      this.persistent = result.persistent
      const failure = result.failures[0]
      this.storageProblem = result.ok
        ? null
        : failure === undefined
          ? this.storageProblem
          : { text: storageProblemText(failure.kind), reason: failure.reason }
    } finally {
      this.retryingStorage = false
    }
  }

  /** A record's changes were discarded (in this tab or another): its rejection no longer applies. */
  forget(id: string): void {
    const { [id]: _dropped, ...rest } = this.syncErrors
    this.syncErrors = rest
  }

  /** Tries a record the relay rejected again (its error goes; a new rejection brings it back). */
  retry(id: string): void {
    if (!this.store.retry(id)) this.client.reconnect()
    this.forget(id)
  }

  /** A record is open on screen: its news is read. */
  read(id: string): void {
    this.digest.dismiss(id)
  }

  /** Signed out here; removing this device's data removes what the digest says about it too. */
  signedOut(wiped: boolean): void {
    if (wiped) this.digest.dismissAll()
  }

  /** The connection is up and changes wait: show the sync running until the relay stored them (or the connection drops). */
  #syncOnConnect(): void {
    if (!this.ready || this.client.status !== 'online' || this.store.pending === 0 || this.autoSyncing) return
    this.autoSyncing = true
    void this.store
      .flush()
      .catch(() => undefined)
      .finally(() => {
        this.autoSyncing = false
      })
  }

  /** Everyone the workspace's presence knows (the relay's list, who is or was here) is known by name everywhere in the app. */
  #learnPeople(next: readonly WorkspacePerson[]): void {
    let learned = this.names.learnPerson(this.me.id, this.me.name)
    for (const person of next) learned = this.names.learnPerson(person.userId, person.name) || learned
    if (learned) this.names.save()
  }

  /** Last-seen records of earlier sessions (this device's own observations). */
  #loadPeople(): RememberedPerson[] {
    try {
      const parsed: unknown = JSON.parse(this.#storage?.getItem(this.#peopleKey) ?? '[]')
      return Array.isArray(parsed)
        ? (parsed as RememberedPerson[]).filter((p) => typeof p?.userId === 'string' && typeof p.lastSeen === 'number')
        : []
    } catch {
      return []
    }
  }
}

/** What a sign-in page says about changes made here that the relay has not stored (empty when there are none). */
export const waitingForSignIn = (changes: number): string =>
  changes <= 0
    ? ''
    : ` ${changes === 1 ? '1 change made here is' : `${changes} changes made here are`} not on the server yet: kept on this device, ${changes === 1 ? 'it is' : 'they are'} sent once you sign in again.`
