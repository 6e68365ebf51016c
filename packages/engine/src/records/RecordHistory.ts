/**
 * The history side of one open record: validated writes with their history
 * entries, typing bursts (text typed and list items pushed directly into the
 * record's shared types) recorded as one entry each, and the settling the
 * text-merge rule asks for (see `history/textSettle`).
 *
 * @example
 *   const history = new RecordHistory(doc, { client, authors, now, historyLimit: 500, schema, active })
 *   history.write(patch, RECORD_WRITE_ORIGIN)
 *   history.scheduleSettle() // after the history array changed
 *
 * @module records/RecordHistory
 */
import type * as Y from 'yjs'
import {
  DELETE_MARKER_ORIGIN,
  FETCH_ORIGIN,
  RECORD_WRITE_ORIGIN,
  STORAGE_ORIGIN,
  TAB_ORIGIN,
  TYPING_HISTORY_ORIGIN,
  UPDATED_AT_ORIGIN,
} from '../model/origins.js'
import { FIELDS_MAP, TEXT_PREFIX, type ValidatedPatch } from '../model/recordDoc.js'
import { multiLineFields, singleLineFields, type RecordSchema } from '../model/schema.js'
import type { AuthorInfo } from '../protocol/messages.js'
import { writeWithHistory } from '../history/recordWrites.js'
import { HISTORY_ARRAY, appendFieldChanges, type FieldChange } from '../history/historyLog.js'
import { readHistory, type Merge } from '../history/readHistory.js'
import { settledScalars, withArchived, writeScalarSettlement } from '../history/scalarMerge.js'
import { removeDuplicateInsertions, settledOtherwise, writeSettlement } from '../history/textSettle.js'
import { TypingRecorder } from '../history/TypingRecorder.js'

/** What a {@link RecordHistory} reads from its record. */
export interface RecordHistoryOptions {
  /** The sync client: its remote changes are not typing. */
  readonly client: unknown
  /** Who wrote with which Yjs client id (the relay's bindings). */
  authors(): ReadonlyMap<number, AuthorInfo>
  now(): number
  /** History entries kept before older ones are compacted. */
  readonly historyLimit: number
  /** Pause that ends a typing burst, ms. */
  readonly historyIdleMs?: number
  /** The schema of the record's type, if known yet. */
  schema(): RecordSchema | undefined
  /** False once the record is closed or parked: nothing is settled any more. */
  active(): boolean
  /** False for a user who may only read: the relay would refuse a settlement, writers' devices write it. Default true. */
  readonly settles?: boolean
  /** Whether local edits go out as they are made and others' arrive the same way (synced on a live connection). */
  connected?(): boolean
  /** The relay's acknowledged state vector (client id → clock): what reached it. */
  acked?(): ReadonlyMap<number, number>
}

/** Writes one record's history. See the module documentation. */
export class RecordHistory {
  /** History entries of text typed (and list items pushed) directly into the record's shared types. */
  readonly typing: TypingRecorder
  private readonly doc: Y.Doc
  private readonly options: RecordHistoryOptions
  private settleScheduled = false
  private closed = false

  constructor(doc: Y.Doc, options: RecordHistoryOptions) {
    this.doc = doc
    this.options = options
    const notTyping = new Set<unknown>([
      RECORD_WRITE_ORIGIN,
      TYPING_HISTORY_ORIGIN,
      TAB_ORIGIN,
      STORAGE_ORIGIN,
      FETCH_ORIGIN,
      UPDATED_AT_ORIGIN,
      DELETE_MARKER_ORIGIN,
      options.client,
    ])
    this.typing = new TypingRecorder(doc, {
      isLocalEdit: (transaction) => transaction.local && !notTyping.has(transaction.origin),
      append: (changes) => this.appendTyped(changes),
      now: () => options.now(),
      idleMs: options.historyIdleMs,
      connected: () => options.connected?.() === true,
      reached: (clock) => (options.acked?.().get(doc.clientID) ?? 0) > clock,
    })
  }

  /**
   * Writes a validated patch and its history entries in one transaction
   * (`restoreOf`: field → entry id whose value a restore brings back).
   */
  write(patch: ValidatedPatch, origin: unknown, restoreOf?: Record<string, string>): void {
    // Typing in these fields so far is its own change, before this one.
    this.typing.flush(patch.map((p) => p.name))
    const authors = this.options.authors()
    this.doc.transact(
      () =>
        writeWithHistory(this.doc, patch, {
          now: this.options.now(),
          maxEntries: this.options.historyLimit,
          userOf: (client) => authors.get(client)?.userId,
          restoreOf,
        }),
      origin,
    )
  }

  /**
   * Runs `write` in one transaction, with the clock and history bound: for
   * writes of the record itself (archive, comments).
   */
  transact(write: (now: number, maxEntries: number) => void, origin: unknown): void {
    const now = this.options.now()
    this.doc.transact(() => write(now, this.options.historyLimit), origin)
  }

  /**
   * Settles what the text-merge rule asks for (see `history/textSettle`):
   * deletes characters duplicated by settlements written at once, and sets
   * each text field whose concurrent edits collided to the rule's value (a
   * title: the later change; a description: both versions) — as soon as this
   * replica has the sides, so nobody edits the mixed text. A field with a
   * typing burst in progress waits for its entry (which settles again); a
   * title's burst typed offline ends at once instead. Sets each scalar field
   * whose concurrent sets did not end on the later change to it
   * (`history/scalarMerge`).
   */
  settleMerges(): void {
    if (this.closed || !this.options.active() || this.options.settles === false || !this.doc.share.has(HISTORY_ARRAY)) return
    const singleLine = singleLineFields(this.options.schema())
    const multiLine = multiLineFields(this.options.schema())
    // Archiving too: archive and unarchive at once settle on the later one, like a status.
    const scalar = settledScalars(this.options.schema())
    const options = { now: this.options.now(), maxEntries: this.options.historyLimit }
    /** Single-line fields whose collision waits for a burst typed apart here: ended first (see below). */
    const ending: string[] = []
    this.doc.transact(() => {
      removeDuplicateInsertions(this.doc)
      const stored = this.doc.getMap<unknown>(FIELDS_MAP)
      const fields = withArchived(this.doc, Object.fromEntries([...scalar].map((field) => [field, stored.get(field)])))
      for (const field of [...singleLine, ...multiLine]) fields[field] = this.doc.getText(TEXT_PREFIX + field).toString()
      const { unsettled, unsettledScalars } = readHistory(this.doc, this.options.authors(), { fields, singleLine, multiLine, scalar })
      for (const [field, target] of Object.entries(unsettledScalars)) {
        if (writeScalarSettlement(this.doc, field, target, options)) return // one at a time, as below
      }
      for (const [field, target] of Object.entries(unsettled)) {
        if (this.typing.pending(field)) {
          if (singleLine.has(field) && this.typing.pendingApart(field)) ending.push(field)
          continue
        }
        if (settledOtherwise(this.doc, field, target)) continue
        if (writeSettlement(this.doc, field, target, options)) return // one at a time: the next reads the new history
      }
    }, RECORD_WRITE_ORIGIN)
    // A title collided while its writer here is still in a burst typed offline (the other side arrived mid-burst, on
    // reconnecting): the burst ends now — its entry holds only their own edits, a change made apart like the others,
    // which the rule then counts — and the field settles at once. What they type next goes on top of the settled
    // title, not into the CRDT's mix of the sides, which their next entry would otherwise hold as their version (words
    // run together). A burst typed live runs on: replicas settling meanwhile keep its letters where they are.
    if (ending.length > 0) {
      this.typing.flush(ending)
      this.scheduleSettle()
    }
  }

  /** Runs {@link settleMerges} after the current transaction (changes of the history may need settling). */
  scheduleSettle(): void {
    if (this.settleScheduled) return
    this.settleScheduled = true
    queueMicrotask(() => {
      this.settleScheduled = false
      this.settleMerges()
    })
  }

  /** Records that a text merge stands as merged (a `keep` entry on the kept or winning side, naming the others as seen). */
  keepMerge(merge: Merge): void {
    this.typing.flush([merge.field])
    const text = this.doc.getText(TEXT_PREFIX + merge.field).toString()
    const on = merge.sides[merge.kept ?? merge.winner ?? merge.sides.length - 1]!
    this.doc.transact(
      () =>
        appendFieldChanges(
          this.doc,
          [
            {
              field: merge.field,
              kind: 'text',
              prev: text,
              next: text,
              base: on.tip.id,
              seen: merge.sides.filter((s) => s !== on).map((s) => s.tip.id),
              mode: 'keep',
            },
          ],
          { now: this.options.now(), maxEntries: this.options.historyLimit },
        ),
      RECORD_WRITE_ORIGIN,
    )
  }

  /** Stops recording (the record closes). */
  destroy(): void {
    this.closed = true
    this.typing.destroy()
  }

  /** Appends the entries of ended typing bursts (their own transaction; each change says when its burst began). */
  private appendTyped(changes: FieldChange[]): void {
    if (this.closed) return
    const authors = this.options.authors()
    // A single-line field's rule reads a burst by the ranges its texts differ in, never its one typed-over range.
    const singleLine = singleLineFields(this.options.schema())
    const typed = changes.map((c) => (singleLine.has(c.field) && c.hunks?.length === 1 ? { ...c, hunks: undefined } : c))
    this.doc.transact(
      () =>
        appendFieldChanges(this.doc, typed, {
          now: this.options.now(),
          maxEntries: this.options.historyLimit,
          userOf: (client) => authors.get(client)?.userId,
        }),
      TYPING_HISTORY_ORIGIN,
    )
  }
}
