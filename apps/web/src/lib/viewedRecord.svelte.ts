/**
 * A record open in a page (a ticket, a project): opens it in the store, joins
 * its presence (again after another tab's discard reloads it, since the
 * awareness is new then) and mirrors what the page shows as reactive state —
 * the handle, who is here, the changes not yet on the server, whether they
 * are saved on this device. The page keeps only what is its own: its fields
 * and their inputs.
 *
 * @module
 * @example
 * const record = new ViewedRecord({ user: () => me, names: () => names, onopened: (id) => onopened(id) })
 * $effect(() => record.open(store, id))
 */
import type { RecordHandle, RecordPresence, RecordStore, Viewer } from '@concord/engine'
import type { AuthorNames } from './authorNames'
import type { RemoteCaret } from './caretOverlay'
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
    .map((v) => ({ clientId: v.clientId, name: v.user?.name ?? 'Someone', color: v.user?.color ?? NO_COLOR, index: v.selection!.head, anchor: v.selection!.anchor }))
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

/** One record open in a page; see the module comment. */
export class ViewedRecord {
  /** The open record, or null while it opens and after it closed. */
  handle = $state.raw<RecordHandle | null>(null)
  /** Everyone in the record's presence, this tab included (`self`). */
  viewers = $state.raw<Viewer[]>([])
  /** Clock ticks not yet on the relay. */
  pending = $state(0)
  /** The fields holding those changes. */
  pendingFields = $state.raw<string[]>([])
  /** Whether every change is stored on this device (the handle's `isSaved`). */
  saved = $state(true)
  /**
   * Why this record's changes cannot be saved on this device (the store runs
   * in memory, or its storage failed), in plain words; null while saving
   * works — then "not saved" only means "being saved".
   */
  unsaved = $state<string | null>(null)
  /** Bumped on every change of the record: read it to re-read the record. */
  version = $state(0)
  /** Bumped when another tab discarded the record's unsynced changes: its doc (and texts) are new. */
  reloads = $state(0)
  /** Why the record cannot be opened or the last write failed, or null. */
  problem = $state<string | null>(null)

  /** The record's fields (empty while it opens, or when the store is closing on sign-out). */
  readonly fields = $derived.by((): Record<string, unknown> => {
    void this.version
    try {
      return this.handle?.read().fields ?? {}
    } catch {
      return {}
    }
  })
  /** Whether the record's content is here (a record someone else created arrives from the relay first). */
  readonly typed = $derived.by(() => {
    void this.version
    try {
      return this.handle?.type != null
    } catch {
      return false
    }
  })
  /** Whether the record is archived. */
  readonly archived = $derived.by(() => {
    void this.version
    try {
      return this.handle?.read().archived ?? false
    } catch {
      return false
    }
  })
  /** The viewers in other tabs and on other devices. */
  readonly others = $derived(this.viewers.filter((v) => !v.self))

  #presence: RecordPresence | null = null
  #close: (() => void) | null = null
  readonly #options: ViewedRecordOptions

  constructor(options: ViewedRecordOptions) {
    this.#options = options
  }

  /**
   * Opens record `id` of `store` (closing the one open before, if any) and
   * returns the function that closes it again — what an `$effect` returns.
   */
  open(store: RecordStore, id: string): () => void {
    this.close()
    let closed = false
    let opened: RecordHandle | null = null
    const bump = (): void => {
      this.version++
    }
    const onPending = (): void => {
      if (opened === null) return
      this.pending = opened.pending
      this.pendingFields = opened.pendingFields
    }
    const whyUnsaved = (h: RecordHandle): string | null => {
      if (store.persistent === false) return MEMORY_ONLY_TEXT
      const failure = h.storageError ?? null
      return failure === null ? null : storageProblemText(failure.kind)
    }
    const onSaved = (isSaved: boolean): void => {
      this.saved = isSaved
      if (opened !== null) this.unsaved = whyUnsaved(opened)
    }
    const onError = (): void => {
      if (opened !== null) this.unsaved = whyUnsaved(opened)
    }
    const onPresence = (next: Viewer[]): void => {
      this.viewers = next
      const names = this.#options.names()
      let learned = false
      for (const viewer of next) {
        learned = names.learn(viewer.clientId, viewer.user?.name) || learned
        if (viewer.user) learned = names.learnPerson(viewer.user.id, viewer.user.name) || learned
      }
      if (learned) names.save()
    }
    /** The relay told who wrote with which client id: the people are known by name, and the history names them. */
    const learnAuthors = (h: RecordHandle): void => {
      const names = this.#options.names()
      if (names.learnAuthors(h.sync.authors.values())) names.save()
    }
    const onAuthors = (): void => {
      if (opened === null) return
      learnAuthors(opened)
      this.version++
    }
    /** Joins the record's presence (leaving it again on close: the record itself may stay open in the store). */
    const join = (h: RecordHandle): void => {
      this.#present(h, true)
      this.#presence = h.presence()
      onPresence(this.#presence.viewers)
      this.#presence.on('change', onPresence)
    }
    const leave = (): void => {
      this.#presence?.off('change', onPresence)
      this.#presence?.destroy()
      this.#presence = null
    }
    const onReloaded = (): void => {
      if (opened === null) return
      leave()
      join(opened)
      this.reloads++
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
        this.handle = h
        this.#options.onopened?.(id)
        this.pending = h.pending
        this.pendingFields = h.pendingFields
        this.saved = h.isSaved
        this.unsaved = whyUnsaved(h)
        join(h)
        learnAuthors(h)
        h.on('authors', onAuthors)
        h.on('reloaded', onReloaded)
        h.on('change', bump)
        h.on('pending', onPending)
        h.on('saved', onSaved)
        h.on('error', onError)
      })
      .catch((e: unknown) => {
        this.problem = message(e)
      })
    const close = (): void => {
      closed = true
      if (opened !== null) {
        opened.off('authors', onAuthors)
        opened.off('reloaded', onReloaded)
        opened.off('change', bump)
        opened.off('pending', onPending)
        opened.off('saved', onSaved)
        opened.off('error', onError)
        leave()
        this.#present(opened, false)
        discardIfBlank(opened)
        opened.close()
        opened = null
      }
      this.handle = null
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
    void this.reloads
    return h.text(field)
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

  /** Whether `field` has changes not yet on the server. */
  isPending(field: string): boolean {
    return this.pendingFields.includes(field)
  }

  /** Tells the others which field this user edits (null: none); for `onfocus`/`onblur`. */
  editing(field: string | null): () => void {
    return () => this.#presence?.setEditing(field)
  }

  /** Tells the others where this user's selection is in text field `field`. */
  selecting(field: string): (selection: { anchor: number; head: number }) => void {
    return (selection) => this.#presence?.setEditing(field, selection)
  }
}
