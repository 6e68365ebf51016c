/**
 * A record open in a page (a ticket, a project): opens it in the store, joins
 * its presence (again after another tab's discard reloads it, since the
 * awareness is new then) and gives what the page shows as reactive reads —
 * the handle, who is here, the changes not yet on the server, whether they
 * are saved on this device, its history and comments — read from the handle
 * whenever its events say they changed. The page keeps only what is its own: its fields
 * and their inputs.
 *
 * Longer than 400 lines because it is the page's one reactive view of a
 * record, with the props types of the page and its fields: each getter is a
 * few lines over the handle, and `open` (open, join presence, join again
 * after a reload, close in reverse) reads best as one sequence.
 *
 * @module
 * @example
 * const record = new ViewedRecord({ user: () => me, names: () => names, onopened: (id) => onopened(id) })
 * $effect(() => record.open(store, id))
 */
import type {
  Comment,
  CommentActivity,
  Merge,
  RecordHandle,
  RecordHandleEvents,
  RecordHistory,
  RecordPresence,
  RecordStore,
  Viewer,
} from '@concord/engine'
import { createSubscriber } from 'svelte/reactivity'
import type { AuthorNames } from './authorNames'
import type { RemoteCaret } from './caretOverlay'
import { awaitsChoice } from './merges'
import { MEMORY_ONLY_TEXT, storageProblemText, type RecordSyncError } from './syncStatus'

/** Who opens the record, as shown to the others in its presence. */
export interface PresenceUser {
  id: string
  name: string
  color: string
}

/** The props of a record's page (TicketView, ProjectView). */
export interface RecordPageProps {
  store: RecordStore
  /** The record's id. */
  id: string
  me: PresenceUser
  /** The connection status. */
  status: string
  /** The record's sync error, if any. */
  error: RecordSyncError | null
  names: AuthorNames
  /** Called with the id of a record this page opened or created. */
  onopened: (id: string) => void
}

/** The props every field component of a record's page takes. */
export interface RecordFieldProps {
  record: ViewedRecord
  /** The record's field. */
  field: string
  label: string
  /** The id of the input. */
  id: string
}

/** What a {@link ViewedRecord} reads when it needs it (getters, so a page passes its props). */
export interface ViewedRecordOptions {
  /** The user shown to the others. */
  user: () => PresenceUser
  /** Learns the names of the viewers, for the history. */
  names: () => AuthorNames
  /** Called once the record is open. */
  onopened?: (id: string) => void
}

/** The colour of someone who sent no colour. */
export const NO_COLOR = '#8b8d98'

/** The others' carets in a text field, for its caret overlay. */
export function caretsIn(others: readonly Viewer[], field: string): RemoteCaret[] {
  return others
    .filter((v) => v.field === field && v.selection !== null)
    .map((v) => ({
      clientId: v.clientId,
      name: v.user?.name ?? 'Someone',
      color: v.user?.color ?? NO_COLOR,
      index: v.selection!.head,
      anchor: v.selection!.anchor,
    }))
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * A "New …" left without a word leaves nothing behind: the record is
 * discarded when its page closes. The engine keeps every record with
 * content, one someone else wrote in, and one this user did not create.
 */
const discardIfBlank = (handle: RecordHandle): void => {
  try {
    handle.discardIfBlank()
  } catch {
    // the store is closing (sign-out): nothing to tidy
  }
}

type HandleEvent = keyof RecordHandleEvents

/**
 * A subscriber that re-runs its readers when `handle` emits one of `events`
 * (while something reactive reads through it; nothing listens otherwise).
 */
const follow = (handle: RecordHandle, ...events: HandleEvent[]): (() => void) =>
  createSubscriber((update) => {
    for (const event of events) handle.on(event, update)
    return () => {
      for (const event of events) handle.off(event, update)
    }
  })

/** Reads from a handle whose store may be closing (sign-out): then `fallback`. */
const readOr = <T>(read: () => T, fallback: T): T => {
  try {
    return read()
  } catch {
    return fallback
  }
}

/** The record open now, with the subscribers its getters read it through. */
interface Opened {
  readonly handle: RecordHandle
  readonly store: RecordStore
  /** The record's content (fields, type, archived). */
  readonly content: () => void
  /** Its history and comments: the content, and the names of its writers. */
  readonly written: () => void
  /** Its changes not yet on the relay. */
  readonly pending: () => void
  /** Whether it is saved on this device, and why not. */
  readonly saving: () => void
  /** A reload after another tab's discard (new doc, new texts). */
  readonly reloaded: () => void
}

/** The presence joined in the open record, read through a subscriber. */
interface Joined {
  readonly presence: RecordPresence
  readonly changes: () => void
}

const openedFor = (handle: RecordHandle, store: RecordStore): Opened => ({
  handle,
  store,
  content: follow(handle, 'change'),
  written: follow(handle, 'change', 'authors'),
  pending: follow(handle, 'pending'),
  saving: follow(handle, 'saved', 'error'),
  reloaded: follow(handle, 'reloaded'),
})

const NO_HISTORY: RecordHistory = { entries: [], merges: [], unsettled: {}, unsettledScalars: {} }

/**
 * One record open in a page; see the module comment. Every getter reads the
 * handle (or its presence) itself, through a subscriber that the handle's
 * events drive: there is no copy of its state to keep in step.
 */
export class ViewedRecord {
  /** Why the record cannot be opened or the last write failed, or null. */
  problem = $state<string | null>(null)

  #opened = $state.raw<Opened | null>(null)
  #joined = $state.raw<Joined | null>(null)
  #close: (() => void) | null = null
  readonly #options: ViewedRecordOptions

  constructor(options: ViewedRecordOptions) {
    this.#options = options
  }

  /** The open record, or null while it opens and after it closed. */
  get handle(): RecordHandle | null {
    return this.#opened?.handle ?? null
  }

  /** The record's fields (empty while it opens, or when the store is closing on sign-out). */
  readonly fields = $derived.by((): Record<string, unknown> => {
    const o = this.#opened
    if (o === null) return {}
    o.content()
    return readOr(() => o.handle.read().fields, {})
  })

  /** The record's content was removed from this device to free space (`store.evict`): it comes back from the relay. */
  get removedHere(): boolean {
    const o = this.#opened
    return o !== null && o.store.catalog.get(o.handle.id)?.evicted === true
  }

  /** Whether the record's content is here (a record someone else created arrives from the relay first). */
  readonly typed = $derived.by((): boolean => {
    const o = this.#opened
    if (o === null) return false
    o.content()
    return readOr(() => o.handle.type != null, false)
  })

  /** Whether the record is archived. */
  readonly archived = $derived.by((): boolean => {
    const o = this.#opened
    if (o === null) return false
    o.content()
    return readOr(() => o.handle.read().archived, false)
  })

  /** The record's history (who changed what, the merges), named by the writers the relay bound. */
  readonly history = $derived.by((): RecordHistory => {
    const o = this.#opened
    if (o === null) return NO_HISTORY
    o.written()
    return readOr(() => o.handle.history(), NO_HISTORY)
  })

  /** The record's comments. */
  readonly comments = $derived.by((): Comment[] => {
    const o = this.#opened
    if (o === null) return []
    o.written()
    return readOr(() => o.handle.comments(), [])
  })

  /** Comments added, edited and deleted, for the history's timeline. */
  readonly commentActivity = $derived.by((): CommentActivity[] => {
    const o = this.#opened
    if (o === null) return []
    o.written()
    return readOr(() => o.handle.commentActivity(), [])
  })

  /** Clock ticks not yet on the relay. */
  get pending(): number {
    const o = this.#opened
    if (o === null) return 0
    o.pending()
    return readOr(() => o.handle.pending, 0)
  }

  /** The fields holding those changes. */
  readonly pendingFields = $derived.by((): string[] => {
    const o = this.#opened
    if (o === null) return []
    o.pending()
    return readOr(() => o.handle.pendingFields, [])
  })

  /** Whether every change is stored on this device (the handle's `isSaved`). */
  get saved(): boolean {
    const o = this.#opened
    if (o === null) return true
    o.saving()
    return readOr(() => o.handle.isSaved, true)
  }

  /**
   * Why this record's changes cannot be saved on this device (the store runs
   * in memory, or its storage failed), in plain words; null while saving
   * works — then "not saved" only means "being saved".
   */
  get unsaved(): string | null {
    const o = this.#opened
    if (o === null) return null
    o.saving()
    if (o.store.persistent === false) return MEMORY_ONLY_TEXT
    const failure = readOr(() => o.handle.storageError, null)
    return failure === null ? null : storageProblemText(failure.kind)
  }

  /** Everyone in the record's presence, this tab included (`self`). */
  readonly viewers = $derived.by((): Viewer[] => {
    const joined = this.#joined
    if (joined === null) return []
    joined.changes()
    return joined.presence.viewers
  })

  /** The viewers in other tabs and on other devices. */
  readonly others = $derived(this.viewers.filter((v) => !v.self))

  /**
   * Opens record `id` of `store` (closing the one open before, if any) and
   * returns the function that closes it again — what an `$effect` returns.
   */
  open(store: RecordStore, id: string): () => void {
    this.close()
    let closed = false
    let opened: RecordHandle | null = null
    /** Everyone in the presence is known by name, for the history. */
    const learnViewers = (next: Viewer[]): void => {
      const names = this.#options.names()
      let learned = false
      for (const viewer of next) {
        learned = names.learn(viewer.clientId, viewer.user?.name) || learned
        if (viewer.user) learned = names.learnPerson(viewer.user.id, viewer.user.name) || learned
      }
      if (learned) names.save()
    }
    /** The relay told who wrote with which client id: the people are known by name, and the history names them. */
    const learnAuthors = (): void => {
      if (opened === null) return
      const names = this.#options.names()
      if (names.learnAuthors(opened.sync.authors.values())) names.save()
    }
    /** Joins the record's presence (leaving it again on close: the record itself may stay open in the store). */
    const join = (h: RecordHandle): void => {
      this.#present(h, true)
      const presence = h.presence()
      this.#joined = {
        presence,
        changes: createSubscriber((update) => {
          presence.on('change', update)
          return () => presence.off('change', update)
        }),
      }
      learnViewers(presence.viewers)
      presence.on('change', learnViewers)
    }
    const leave = (): void => {
      const presence = this.#joined?.presence
      this.#joined = null
      presence?.off('change', learnViewers)
      presence?.destroy()
    }
    const onReloaded = (): void => {
      if (opened === null) return
      leave()
      join(opened)
    }
    store
      .open(id)
      .then((h) => {
        if (closed) {
          discardIfBlank(h)
          h.close()
          return
        }
        opened = h
        this.#opened = openedFor(h, store)
        this.#options.onopened?.(id)
        join(h)
        learnAuthors()
        h.on('authors', learnAuthors)
        h.on('reloaded', onReloaded)
      })
      .catch((e: unknown) => {
        this.problem = message(e)
      })
    const close = (): void => {
      closed = true
      if (opened !== null) {
        opened.off('authors', learnAuthors)
        opened.off('reloaded', onReloaded)
        leave()
        this.#present(opened, false)
        discardIfBlank(opened)
        opened.close()
        opened = null
      }
      this.#opened = null
    }
    this.#close = close
    return () => {
      if (this.#close === close) this.#close = null
      close()
    }
  }

  /** Closes the open record, if any: leaves its presence and releases the handle. */
  close(): void {
    const close = this.#close
    this.#close = null
    close?.()
  }

  /**
   * Shows this user in the record's presence, or hides them (a page going
   * into the back-forward cache) without leaving it.
   */
  show(visible: boolean): void {
    if (this.handle !== null) this.#present(this.handle, visible)
  }

  #present(h: RecordHandle, visible: boolean): void {
    h.awareness.setLocalState(visible ? { user: { ...this.#options.user() }, editing: null } : null)
  }

  /** A text field's Y.Text; a new one after a reload. */
  textOf(h: RecordHandle, field: string) {
    this.#opened?.reloaded()
    return h.text(field)
  }

  /** One field's value (its default when unset), read again on every change; undefined when the store is closing. */
  get(field: string): unknown {
    const o = this.#opened
    if (o === null) return undefined
    o.content()
    return readOr(() => o.handle.get(field), undefined)
  }

  /** Writes a field; a refused value shows as {@link problem}. */
  set(field: string, value: unknown): void {
    if (this.handle === null) return
    try {
      this.handle.set(field, value)
      this.problem = null
    } catch (e) {
      this.problem = message(e)
    }
  }

  /** Archives (or unarchives) the record; a refused write shows as {@link problem}. Returns whether it was written. */
  setArchived(archived: boolean): boolean {
    if (this.handle === null) return false
    try {
      this.handle.archive(archived)
      this.problem = null
      return true
    } catch (e) {
      this.problem = message(e)
      return false
    }
  }

  /** Shows `e` as {@link problem}. */
  fail(e: unknown): void {
    this.problem = message(e)
  }

  /** The others editing `field`. */
  editorsOf(field: string): Viewer[] {
    return this.others.filter((v) => v.field === field)
  }

  /** The others' carets in text field `field`. */
  caretsIn(field: string): RemoteCaret[] {
    return caretsIn(this.others, field)
  }

  /** The merge of text field `field` that waits for someone to pick a version (see {@link awaitsChoice}), if any. */
  mergeToChoose(field: string): Merge | null {
    const waiting = this.history.merges.filter((m) => m.field === field && awaitsChoice(m))
    return waiting.at(-1) ?? null
  }

  /** Whether `field` has changes not yet on the server. */
  isPending(field: string): boolean {
    return this.pendingFields.includes(field)
  }

  /** Tells the others which field this user edits (null: none); for `onfocus`/`onblur`. */
  editing(field: string | null): () => void {
    return () => this.#joined?.presence.setEditing(field)
  }

  /** Tells the others where this user's selection is in text field `field`. */
  selecting(field: string): (selection: { anchor: number; head: number }) => void {
    return (selection) => this.#joined?.presence.setEditing(field, selection)
  }
}
