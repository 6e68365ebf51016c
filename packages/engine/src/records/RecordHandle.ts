/**
 * A typed view of one open record, returned by `store.open(id)` and
 * `store.create(type, values)`. Every `open` returns a new handle; each must
 * be closed. The record doc stays open while any handle is open (and while
 * it has unsynced changes), then closes when idle.
 *
 * @example
 *   const ticket = await store.open('T-1')
 *   ticket.read().fields.status               // 'open'
 *   ticket.set('status', 'in_progress')       // validated; throws and writes nothing when wrong
 *   ticket.update({ priority: 'high', labels: ['bug'] })
 *   bindEditor(ticket.text('description'))    // Y.Text: merges character by character
 *   ticket.on('pending', (n, fields) => badge(n, fields)) // e.g. 3, ['status', 'title']
 *   ticket.on('saved', (saved) => dot(saved))            // IndexedDB transaction completed
 *   ticket.close()
 *
 * Over 400 lines because it is the whole public API of one record (fields,
 * text, lists, comments, history, presence), each method with its
 * documentation; the work is done by `OpenRecord` and its parts.
 *
 * @module records/RecordHandle
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { ObservableV2 } from 'lib0/observable'
import type { DocHandle } from '../sync/DocHandle.js'
import type { SyncError } from '../sync/SyncError.js'
import type { StorageError } from '../persistence/Storage.js'
import type { AuthorInfo } from '../protocol/messages.js'
import type { OpenRecord, RecordListener } from './OpenRecord.js'
import { RECORD_WRITE_ORIGIN, type ChangeSource } from '../model/origins.js'
import {
  LIST_PREFIX,
  RECORD_MAP,
  RecordKey,
  RecordValidationError,
  TEXT_PREFIX,
  isBlank,
  rebaseLines,
  readRecord,
  validatePatch,
  type RecordSnapshot,
} from '../model/recordDoc.js'
import { addComment, changeComment, commentActivity, readComments, type Comment, type CommentActivity } from './comments.js'
import { appendFieldChanges } from '../history/historyLog.js'
import type { StateVector } from '../protocol/stateVector.js'
import { multiLineFields, singleLineFields, type RecordSchema } from '../model/schema.js'
import { readHistory, type FieldHistoryEntry, type Merge, type MergeSide, type RecordHistory } from '../history/readHistory.js'
import type { RecordSummary } from '../history/summary.js'
import { RecordPresence } from '../presence/RecordPresence.js'

/** The pseudo-field of the archived flag in the history. */
const ARCHIVED = '$archived'

/** Events of a {@link RecordHandle}. */
export interface RecordHandleEvents {
  /** The record changed: `'local'` edit, `'remote'` (relay), `'tab'` (another tab), `'storage'` (loaded). */
  change: (source: ChangeSource) => void
  /** The pending count or the set of pending fields changed. */
  pending: (count: number, fields: string[]) => void
  /** "Saved on this device" changed. */
  saved: (isSaved: boolean) => void
  /** A sync error from the relay, or a storage error (the record keeps working in memory). */
  error: (error: SyncError | StorageError) => void
  /** "While you were away…": what others changed since this device last saw the record (after a sync). */
  summary: (summary: RecordSummary) => void
  /**
   * The relay told who is behind client ids of this record (`added`): the
   * authors {@link RecordHandle.history} names may have changed (a record
   * opened on a new device gets them with its first sync).
   */
  authors: (added: AuthorInfo[]) => void
  /**
   * The record was loaded again from this device's storage because another
   * tab discarded its unsynced changes: its values are the relay's now, and
   * `doc`, `text()`, `list()`, `awareness` and `presence()` return new
   * objects — bind editors again. `change`, `pending` and `saved` follow.
   */
  reloaded: () => void
}

/** A typed handle of an open record. */
export class RecordHandle extends ObservableV2<RecordHandleEvents> {
  /** Record id. */
  readonly id: string
  private record: OpenRecord | null
  private readonly release: (handle: RecordHandle, record: OpenRecord) => void
  private readonly listener: RecordListener

  /** @internal Created by the RecordStore; `presence`: whether the handle shows this user in the record (see `RecordStore.open`). */
  constructor(record: OpenRecord, release: (handle: RecordHandle, record: OpenRecord) => void, presence = true) {
    super()
    this.id = record.id
    this.record = record
    this.release = release
    this.listener = {
      presence,
      change: (source) => this.emit('change', [source]),
      pending: (count, fields) => this.emit('pending', [count, fields]),
      saved: (isSaved) => this.emit('saved', [isSaved]),
      error: (error) => this.emit('error', [error]),
      summary: (summary) => this.emit('summary', [summary]),
      authors: (added) => this.emit('authors', [added]),
      moved: (next) => {
        if (this.record === null) return false
        this.record = next
        next.addListener(this.listener)
        this.emit('reloaded', [])
        this.emit('change', ['storage'])
        this.emit('pending', [next.sync.pending, next.pendingFields])
        this.emit('saved', [next.isSaved])
        return true
      },
    }
    record.addListener(this.listener)
  }

  /** Doc name, `<workspaceId>/<id>`. */
  get name(): string {
    return this.open().name
  }

  /** Record type, or null when the doc holds no record (yet). */
  get type(): string | null {
    return this.read().type
  }

  /** The schema of the record's type, if registered. */
  get schema(): RecordSchema | undefined {
    return this.open().schema
  }

  /** The record's Y.Doc (for editor bindings and history). */
  get doc(): Y.Doc {
    return this.open().doc
  }

  /** The sync handle: `synced`, `flush`, errors, acked state vector. */
  get sync(): DocHandle {
    return this.open().sync
  }

  /** Presence in this record. */
  get awareness(): Awareness {
    return this.open().sync.awareness
  }

  /** Clock ticks of this record not durably stored on the relay. */
  get pending(): number {
    return this.open().sync.pending
  }

  /** Fields holding changes the relay has not durably stored, sorted. `$archived`, `$deleted`, `$created` for the record itself. */
  get pendingFields(): string[] {
    return this.open().pendingFields
  }

  /** Whether every change is stored on this device (the IndexedDB transaction completed). */
  get isSaved(): boolean {
    return this.open().isSaved
  }

  /** The last storage failure of this record, or null. */
  get storageError(): StorageError | null {
    return this.open().storageError
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.record === null
  }

  /** Reads the record: typed fields, unknown (newer-schema) fields, bookkeeping. */
  read(): RecordSnapshot {
    const record = this.open()
    return readRecord(record.doc, record.id, record.schema)
  }

  /** One field's value (its default when unset); `$archived`: whether the record is archived. */
  get(field: string): unknown {
    const snapshot = this.read()
    if (field === ARCHIVED) return snapshot.archived
    if (Object.hasOwn(snapshot.fields, field)) return snapshot.fields[field]
    return snapshot.unknownFields[field]
  }

  /**
   * Sets one field. Text fields are replaced minimally (common prefix and
   * suffix kept); list fields are replaced as a whole.
   *
   * @throws {RecordValidationError} for an unknown field or a wrong value; nothing is written.
   */
  set(field: string, value: unknown): void {
    this.update({ [field]: value })
  }

  /**
   * Sets several fields in one transaction (one change, one pending tick range).
   *
   * @throws {RecordValidationError} listing every problem; nothing is written.
   */
  update(patch: Record<string, unknown>): void {
    const record = this.open()
    const schema = this.requireSchema()
    const validated = validatePatch(schema, record.id, patch)
    record.write(validated, RECORD_WRITE_ORIGIN)
  }

  /**
   * The record's field-level history: every change with its author (from
   * the relay's author bindings), and the merges of concurrent changes.
   * The same on every replica that has the same updates.
   */
  history(): RecordHistory {
    const record = this.open()
    const snapshot = this.read()
    return readHistory(record.doc, record.sync.authors, {
      fields: { ...snapshot.fields, [ARCHIVED]: snapshot.archived },
      singleLine: singleLineFields(record.schema),
      multiLine: multiLineFields(record.schema),
    })
  }

  /**
   * Applies the value of a history entry (or of a merge side: its tip's
   * value) again, as a new change by this user that names the entry it
   * restores. For a text field that is the whole text after the entry's
   * writer's own edit — for a side of a text merge, that writer's version
   * ("use this version"); entries of long texts, which store only the
   * changed part, cannot be restored.
   *
   * @throws Error for an unknown entry or a text entry without its whole value; {@link RecordValidationError} when the value is no longer valid.
   */
  restore(target: string | FieldHistoryEntry | MergeSide): void {
    const id = typeof target === 'string' ? target : 'tip' in target ? target.tip.id : target.id
    const history = this.history()
    const entry = history.entries.find((e): e is FieldHistoryEntry => e.kind === 'change' && e.id === id)
    if (entry === undefined) throw new Error(`record "${this.id}": no history entry "${id}" (compacted?)`)
    if (entry.field === ARCHIVED) {
      this.writeArchived(entry.value === true, entry.id)
      return
    }
    if (entry.fieldKind === 'text' && typeof entry.value !== 'string') {
      throw new Error(
        `record "${this.id}": the entry "${id}" of "${entry.field}" keeps only the changed part of a long text; there is no whole value to restore`,
      )
    }
    const record = this.open()
    const value = entry.fieldKind === 'text' ? this.versionInPlace(entry, history.merges) : entry.value
    const validated = validatePatch(this.requireSchema(), record.id, { [entry.field]: value })
    record.write(validated, RECORD_WRITE_ORIGIN, { [entry.field]: entry.id })
  }

  /**
   * What restoring a text entry writes. A version of a description that
   * holds both versions of a collision replaces those versions only: the
   * change from the text the merge left (its settlement's, or its rule's)
   * to the chosen version is applied line by line to the text now, so
   * lines others changed since, elsewhere, stay ({@link rebaseLines}).
   * When those lines were changed too, or for any other field, the
   * version's whole text.
   */
  private versionInPlace(entry: FieldHistoryEntry, merges: readonly Merge[]): unknown {
    const spec = this.open().schema?.fields[entry.field]
    if (spec?.kind !== 'text' || spec.multiline !== true || typeof entry.value !== 'string') return entry.value
    const merge = merges.find(
      (m) => m.field === entry.field && m.conflict && m.winner == null && m.sides.some((side) => side.tip.id === entry.id),
    )
    const left = merge?.settledBy?.mode === 'auto' ? merge.settledBy.value : merge?.result
    const now = this.get(entry.field)
    if (typeof left !== 'string' || typeof now !== 'string') return entry.value
    return rebaseLines(left, entry.value, now) ?? entry.value
  }

  /**
   * Accepts a merge of a text field as it is ("keep as is"): records, as a
   * change by this user, that the merged text stands — the merge counts as
   * settled on every replica and is not settled automatically any more.
   *
   * @throws Error for an unknown merge or one of a scalar or list field.
   */
  keepMerge(target: string | Merge): void {
    const id = typeof target === 'string' ? target : target.id
    const merge = this.history().merges.find((m) => m.id === id)
    if (merge === undefined) throw new Error(`record "${this.id}": no merge "${id}"`)
    if (merge.fieldKind !== 'text') throw new Error(`record "${this.id}": merge "${id}" is not of a text field; restore a side instead`)
    this.open().keepMerge(merge)
  }

  /**
   * Writes the history entries of text typed directly into {@link text}
   * (and items pushed to {@link list}) now, instead of after the pause that
   * ends a typing burst. Leaving a field in {@link presence}, writing the
   * field through the record API and closing the record do this too.
   */
  flushHistory(): void {
    const record = this.open()
    record.typing.flush()
    record.settleMerges()
  }

  /**
   * Presence in this record: who is viewing it and which field each person
   * edits. Each call returns a new {@link RecordPresence}; destroy it when done.
   * Leaving a field (`setEditing` to another field or null) ends its typing burst.
   */
  presence(): RecordPresence {
    const record = this.open()
    return new RecordPresence(record.sync.awareness, record.doc, {
      left: (field) => {
        if (!record.closed) record.typing.flush([field])
      },
    })
  }

  /**
   * The `Y.Text` of a text field, for editor bindings. Local edits are
   * recorded in the history: one entry per burst of typing (see {@link flushHistory}).
   */
  text(field: string): Y.Text {
    const spec = this.requireSchema().fields[field]
    if (spec?.kind !== 'text') throw this.fieldError(field, 'text')
    return this.open().doc.getText(TEXT_PREFIX + field)
  }

  /** The `Y.Array` of a list field. Items pushed directly are not validated (but recorded in the history, like typing); prefer {@link set}. */
  list<T = unknown>(field: string): Y.Array<T> {
    const spec = this.requireSchema().fields[field]
    if (spec?.kind !== 'list') throw this.fieldError(field, 'list')
    return this.open().doc.getArray<T>(LIST_PREFIX + field)
  }

  /**
   * Archives (or, with `false`, unarchives) the record, with a history entry
   * of the pseudo-field `$archived` (`value` true / false), so the history
   * says who archived it and when, and `restore` of that entry archives or
   * unarchives again. Archived records leave the catalog's default lists
   * (`includeArchived` lists them) and stay editable: a concurrent edit of
   * an archived record is kept. Does nothing when the record already is.
   *
   * @throws {RecordValidationError} when `archived` is not a boolean, or the record cannot be written.
   */
  archive(archived = true): void {
    if (typeof archived !== 'boolean') {
      throw new RecordValidationError(this.read().type ?? '(no type)', this.id, [
        { field: ARCHIVED, message: `expected true or false, got ${typeof archived}` },
      ])
    }
    this.writeArchived(archived)
  }

  /** Whether the record is archived. */
  get archived(): boolean {
    return this.read().archived
  }

  private writeArchived(archived: boolean, restoreOf?: string): void {
    const record = this.open()
    this.requireSchema()
    const map = record.doc.getMap<unknown>(RECORD_MAP)
    const prev = map.get(RecordKey.archived) === true
    if (prev === archived) return
    record.transact((now, maxEntries) => {
      map.set(RecordKey.archived, archived)
      appendFieldChanges(
        record.doc,
        [{ field: ARCHIVED, kind: 'scalar', prev, next: archived, ...(restoreOf === undefined ? {} : { restoreOf }) }],
        { now, maxEntries },
      )
    }, RECORD_WRITE_ORIGIN)
  }

  /**
   * The record's comments, oldest first, without deleted ones. Each says
   * who wrote it — the user the relay bound its Yjs client id to, never a
   * claim stored by a client — and whether it is `mine` (this user may edit
   * and delete it). See `records/comments`.
   */
  comments(): Comment[] {
    const record = this.open()
    return readComments(record.doc, record.sync.authors, { userId: record.userId })
  }

  /**
   * Adds a comment by this user (written here at once, offline too, and
   * synced like a field); returns its id.
   *
   * @throws {CommentError} for an empty body or one longer than `MAX_COMMENT_LENGTH`; nothing is written.
   */
  comment(body: string): string {
    const record = this.open()
    this.requireSchema()
    let id = ''
    record.transact((now) => {
      id = addComment(record.doc, this.id, body, now)
    }, RECORD_WRITE_ORIGIN)
    return id
  }

  /**
   * Replaces the body of one of this user's comments.
   *
   * @throws {CommentError} for someone else's comment, an unknown or deleted one, or a bad body; nothing is written.
   */
  editComment(commentId: string, body: string): void {
    this.changeComment(commentId, body)
  }

  /**
   * Deletes one of this user's comments (for everyone).
   *
   * @throws {CommentError} for someone else's comment or an unknown or deleted one; nothing is written.
   */
  deleteComment(commentId: string): void {
    this.changeComment(commentId, null)
  }

  private changeComment(commentId: string, body: string | null): void {
    const record = this.open()
    this.requireSchema()
    record.transact((now) => {
      changeComment(record.doc, this.id, commentId, body, record.sync.authors, { userId: record.userId }, now)
    }, RECORD_WRITE_ORIGIN)
  }

  /**
   * Comments added, edited and deleted, in log order (the same on every replica), with who did it. With
   * `since` (a state vector: what the user had seen), only what it does not
   * cover — who commented on this record while the user was away.
   */
  commentActivity(since?: StateVector): CommentActivity[] {
    const record = this.open()
    return commentActivity(record.doc, record.sync.authors, {
      reader: { userId: record.userId },
      ...(since === undefined ? {} : { since }),
    })
  }

  /**
   * Whether nobody wrote anything in the record since it was created (no
   * field set, no text typed, no comment, not archived — by anyone): a
   * "New ticket" left as it was. See `isBlank` in `records/recordDoc`.
   */
  get isBlank(): boolean {
    return isBlank(this.open().doc)
  }

  /**
   * Discards the record when it is blank ({@link isBlank}) and was created
   * on this device: it is marked `discarded` (a change that syncs) and counts as
   * deleted — it leaves every list, on every device — for as long as it
   * stays blank. Should someone else have written in it meanwhile (their
   * edit arriving later), it is not blank anymore and shows again, with
   * their edit. Returns whether it discarded the record.
   */
  discardIfBlank(): boolean {
    const record = this.open()
    if (record.schema === undefined || !isBlank(record.doc)) return false
    const map = record.doc.getMap<unknown>(RECORD_MAP)
    if (map.get(RecordKey.deleted) === true || map.get(RecordKey.discarded) === true) return false
    // Made on this device (by this tab, another one, or before a reload): a record the same person made elsewhere —
    // with a script on their token, say, its fields set as it was created — is not this page's to throw away.
    const creator = map._map.get(RecordKey.type)!.id.client
    if (!record.wroteWith(creator)) return false
    record.transact(() => map.set(RecordKey.discarded, true), RECORD_WRITE_ORIGIN)
    return true
  }

  /**
   * Marks the record deleted (a tombstone that syncs; content is kept so it
   * can be restored with `remove(false)`). Deleted records are hidden from lists.
   */
  remove(deleted = true): void {
    const record = this.open()
    this.requireSchema()
    const map = record.doc.getMap<unknown>(RECORD_MAP)
    if (map.get(RecordKey.deleted) !== deleted) record.doc.transact(() => map.set(RecordKey.deleted, deleted), RECORD_WRITE_ORIGIN)
  }

  /** Resolves when every change is stored on this device; rejects when storage failed or the handle closed. */
  whenSaved(): Promise<void> {
    const record = this.open()
    if (record.isSaved) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        this.off('saved', onSaved)
        this.off('error', onError)
      }
      const onSaved = (saved: boolean): void => {
        if (!saved) return
        cleanup()
        resolve()
      }
      const onError = (error: SyncError | StorageError): void => {
        if (error.name !== 'StorageError') return
        cleanup()
        reject(error)
      }
      this.on('saved', onSaved)
      this.on('error', onError)
      if (!record.durable) {
        cleanup()
        reject(new Error(`record "${this.id}" cannot be saved on this device: local storage is unavailable`))
      }
    })
  }

  /** Resolves when every change is durably stored on the relay (see `DocHandle.flush`). */
  flush(): Promise<void> {
    return this.open().sync.flush()
  }

  /** Releases this handle. Idempotent. */
  close(): void {
    const record = this.record
    if (record === null) return
    this.record = null
    record.removeListener(this.listener)
    this.release(this, record)
    super.destroy()
  }

  /** @internal The record behind this handle (the store uses it). */
  get openRecord(): OpenRecord | null {
    return this.record
  }

  private open(): OpenRecord {
    if (this.record === null) throw new Error(`record handle "${this.id}" is closed`)
    if (this.record.closed) throw new Error(`record "${this.id}" is closed (the store was closed or signed out)`)
    return this.record
  }

  private requireSchema(): RecordSchema {
    const record = this.open()
    const schema = record.schema
    if (schema !== undefined) return schema
    const type = this.read().type
    throw new RecordValidationError(type ?? '(no type)', record.id, [
      {
        field: '',
        message:
          type === null
            ? 'the doc holds no record (not created, or not synced yet)'
            : `record type "${type}" has no registered schema (written by a newer app?); it can be read but not written`,
      },
    ])
  }

  private fieldError(field: string, kind: string): RecordValidationError {
    const schema = this.requireSchema()
    const spec = schema.fields[field]
    return new RecordValidationError(schema.type, this.id, [
      { field, message: spec === undefined ? `unknown field of ${schema.type}` : `is a ${spec.kind} field, not a ${kind} field` },
    ])
  }
}
