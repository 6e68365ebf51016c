/**
 * History entries for edits made directly on a record's shared types: text
 * typed into `text(field)` by an editor binding, items pushed to
 * `list(field)`. The record API (`set`, `update`, `restore`) writes its
 * entries in the same transaction as the change; these edits bypass it, so
 * the recorder watches the record's text and list types and writes one
 * entry per **burst** — the edits of one field until a pause.
 *
 * - A burst starts with the first local edit of a field that is not a
 *   record-API write, not applied from the relay, another tab or storage
 *   (the caller's `isLocalEdit` decides). Its base `b` is the field's head
 *   at that moment, so two people typing at the same time write two entries
 *   with the same base: a text merge.
 * - It ends (the entry is appended) after `idleMs` without an edit of the
 *   field, after `maxBurstMs`, when {@link flush} is called (the record API
 *   does before writing the same field; presence when the user leaves the
 *   field; the record when it closes), and when the page is hidden.
 * - A text burst typed wholly while connected ({@link TypingRecorderOptions.connected})
 *   is marked `live`: its keystrokes reached everyone online as they were
 *   made, so concurrent typing of others was typed together with it, each
 *   watching the other's (see `history/textMerge`, changes made together).
 * - A text entry says what *this* user inserted and deleted, and holds the
 *   text at the first keystroke and that text with only this user's edits
 *   applied: what others type or delete during the burst is in neither
 *   (their deletions stay in both), so it does not show up in the diff and
 *   the "after" text is the writer's own version.
 * - The entry is appended in its own transaction (Yjs runs observers after
 *   the edit's transaction), with origin `TYPING_HISTORY_ORIGIN` (model/origins.ts). A
 *   burst cut short by a crash keeps its edits but has no entry.
 *
 * @example
 *   const recorder = new TypingRecorder(doc, {
 *     isLocalEdit: (tr) => tr.local && tr.origin !== RECORD_WRITE_ORIGIN,
 *     append: (changes) => doc.transact(() => appendFieldChanges(doc, changes, { now: Date.now() }), TYPING_HISTORY_ORIGIN),
 *     now: Date.now,
 *   })
 *   recorder.watch(schema)
 *   recorder.flush('title') // before writing title through the API
 *
 * @module history/TypingRecorder
 */
import type * as Y from 'yjs'
import { LIST_PREFIX, TEXT_PREFIX } from '../model/recordDoc.js'
import type { RecordSchema } from '../model/schema.js'
import { headOf, historyArray, tipsOf, type FieldChange } from './historyLog.js'

/** Default pause that ends a burst, ms. */
export const DEFAULT_TYPING_IDLE_MS = 1_500
/** Default longest burst, ms: continuous typing is split into entries this long. */
export const DEFAULT_MAX_BURST_MS = 30_000
/**
 * How long a keystroke made while connected may wait for the relay's
 * acknowledgement, ms: a burst's keystrokes older than this when it ends
 * must have reached the relay for it to count as typed while connected.
 */
export const LIVE_ACK_MS = 1_000

/** Options of {@link TypingRecorder}. */
export interface TypingRecorderOptions {
  /** Whether a transaction is an edit the local user made directly on a shared type. */
  isLocalEdit(transaction: Y.Transaction): boolean
  /** Appends the entries of ended bursts (one call, one transaction); each change's `at` is when its burst began. */
  append(changes: FieldChange[]): void
  now(): number
  /** Pause that ends a burst, ms. Default {@link DEFAULT_TYPING_IDLE_MS}. */
  idleMs?: number
  /** Longest burst, ms. Default {@link DEFAULT_MAX_BURST_MS}. */
  maxBurstMs?: number
  /**
   * Whether edits go out as they are made and others' arrive the same way
   * (the record synced on a live connection). A text burst whose every
   * keystroke was made so is marked `live`: anyone else typing at the same
   * time watched it as it was typed, provided what it typed reached the
   * relay ({@link reached}: its first keystroke, and every one older than
   * {@link LIVE_ACK_MS} when it ends). Default: never.
   */
  connected?(): boolean
  /** Whether this replica's edit at `clock` (its Yjs clock) reached the relay: acknowledged. Default: never. */
  reached?(clock: number): boolean
}

const KEEP = 0
const INS = 1
const DEL = 2
const OTHER_INS = 3
const OTHER_DEL = 4
/**
 * A run of text in a burst: `KEEP` is in the text before and after the
 * burst, `INS` was inserted by the local user, `DEL` was deleted by the local
 * user; `OTHER_INS` was inserted by someone else during the burst and
 * `OTHER_DEL` deleted by someone else. The burst's "before" text is what the
 * field held at its first keystroke (KEEP + DEL + OTHER_DEL runs) and its
 * "after" text is that with only the local user's edits applied (KEEP + INS +
 * OTHER_DEL): the writer's own change, whatever others typed meanwhile.
 */
interface Run {
  kind: typeof KEEP | typeof INS | typeof DEL | typeof OTHER_INS | typeof OTHER_DEL
  text: string
}

interface DeltaOp {
  insert?: unknown
  retain?: number
  delete?: number
}

interface Burst {
  field: string
  kind: 'text' | 'list'
  base: string | null
  /** The field's other tips at the first keystroke (the writer saw a merge). */
  seen: string[]
  startedAt: number
  /** Text: the runs. */
  runs: Run[]
  /** List: the items before the burst. */
  before: unknown
  /** Text: a keystroke was made while edits did not go out at once (see {@link TypingRecorderOptions.connected}). */
  apart: boolean
  /** Text: this replica's clock at the first keystroke. */
  firstClock: number
  /** Text: `[when, clock]` of the keystrokes of the last {@link LIVE_ACK_MS}, oldest first, and the newest one before them. */
  recent: Array<[number, number]>
  older: [number, number] | null
  timer: ReturnType<typeof setTimeout> | null
}

/** Records history entries for direct edits of a record's text and list fields. See the module documentation. */
export class TypingRecorder {
  private readonly doc: Y.Doc
  private readonly options: TypingRecorderOptions
  private readonly idleMs: number
  private readonly maxBurstMs: number
  /** Field → unobserve. */
  private readonly watched = new Map<string, () => void>()
  /** Last known value of each watched field outside a burst (text, or list items as JSON). */
  private readonly known = new Map<string, unknown>()
  private readonly bursts = new Map<string, Burst>()
  private destroyed = false
  private readonly onHidden = (): void => {
    if (typeof document === 'undefined' || document.visibilityState === 'hidden') this.flush()
  }

  constructor(doc: Y.Doc, options: TypingRecorderOptions) {
    this.doc = doc
    this.options = options
    this.idleMs = options.idleMs ?? DEFAULT_TYPING_IDLE_MS
    this.maxBurstMs = options.maxBurstMs ?? DEFAULT_MAX_BURST_MS
    if (typeof document !== 'undefined' && typeof addEventListener === 'function') {
      // The last moment a closing page reliably runs code: write the entries with the keystrokes.
      document.addEventListener('visibilitychange', this.onHidden)
      addEventListener('pagehide', this.onHidden)
    }
  }

  /** Watches the text and list fields of `schema` (fields already watched are kept). */
  watch(schema: RecordSchema): void {
    if (this.destroyed) return
    for (const [field, spec] of Object.entries(schema.fields)) {
      if (this.watched.has(field)) continue
      if (spec.kind === 'text') {
        const text = this.doc.getText(TEXT_PREFIX + field)
        const observer = (event: Y.YTextEvent, transaction: Y.Transaction): void =>
          this.onText(field, text, event.delta as DeltaOp[], transaction)
        this.known.set(field, text.toString())
        text.observe(observer)
        this.watched.set(field, () => text.unobserve(observer))
      } else if (spec.kind === 'list') {
        const list = this.doc.getArray(LIST_PREFIX + field)
        const observer = (_event: Y.YArrayEvent<unknown>, transaction: Y.Transaction): void => this.onList(field, list, transaction)
        this.known.set(field, list.toJSON())
        list.observe(observer)
        this.watched.set(field, () => list.unobserve(observer))
      }
    }
  }

  /** Whether a burst of `field` (any field when omitted) has no entry yet. */
  pending(field?: string): boolean {
    return field === undefined ? this.bursts.size > 0 : this.bursts.has(field)
  }

  /**
   * Whether a text burst of `field` with no entry yet had a keystroke made
   * while edits did not go out at once (offline): a change made apart, which
   * others' changes may collide with ({@link TypingRecorderOptions.connected}).
   */
  pendingApart(field: string): boolean {
    return this.bursts.get(field)?.apart === true
  }

  /** Ends the bursts of `fields` (every field when omitted) and appends their entries now. */
  flush(fields?: Iterable<string>): void {
    if (this.destroyed || this.bursts.size === 0) return
    const ended: Burst[] = []
    for (const field of fields ?? [...this.bursts.keys()]) {
      const burst = this.bursts.get(field)
      if (burst === undefined) continue
      this.bursts.delete(field)
      if (burst.timer !== null) clearTimeout(burst.timer)
      ended.push(burst)
    }
    const changes: FieldChange[] = []
    for (const burst of ended) {
      const next = this.currentValue(burst.field, burst.kind)
      this.known.set(burst.field, next)
      const prev = burst.kind === 'text' ? joinRuns(burst.runs, [KEEP, DEL, OTHER_DEL]) : burst.before
      const mine = burst.kind === 'text' ? joinRuns(burst.runs, [KEEP, INS, OTHER_DEL]) : next
      // Each entry says when its own burst began, also when several bursts end at once.
      const change: FieldChange = {
        field: burst.field,
        kind: burst.kind,
        prev,
        next: mine,
        base: burst.base,
        seen: burst.seen,
        at: burst.startedAt,
      }
      if (burst.kind === 'text') {
        change.hunks = hunksOf(burst.runs)
        if (this.typedTogether(burst)) change.live = true
      }
      changes.push(change)
    }
    if (changes.length > 0) this.options.append(changes)
  }

  /** Stops watching, drops bursts without writing them (call {@link flush} first to keep them). */
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const burst of this.bursts.values()) if (burst.timer !== null) clearTimeout(burst.timer)
    this.bursts.clear()
    for (const unobserve of this.watched.values()) unobserve()
    this.watched.clear()
    if (typeof document !== 'undefined' && typeof removeEventListener === 'function') {
      document.removeEventListener('visibilitychange', this.onHidden)
      removeEventListener('pagehide', this.onHidden)
    }
  }

  // ---------------------------------------------------------------------------

  private currentValue(field: string, kind: 'text' | 'list'): unknown {
    return kind === 'text' ? this.doc.getText(TEXT_PREFIX + field).toString() : this.doc.getArray(LIST_PREFIX + field).toJSON()
  }

  private onText(field: string, text: Y.Text, delta: DeltaOp[], transaction: Y.Transaction): void {
    if (this.destroyed) return
    const mine = this.options.isLocalEdit(transaction)
    let burst = this.bursts.get(field)
    if (!mine) {
      if (burst !== undefined) burst.runs = applyDelta(burst.runs, delta, false)
      else this.known.set(field, text.toString())
      return
    }
    if (burst === undefined) {
      const before = this.known.get(field)
      burst = this.begin(field, 'text', typeof before === 'string' ? before : '')
      burst.firstClock = transaction.beforeState.get(this.doc.clientID) ?? 0
    }
    const at = this.options.now()
    burst.recent.push([at, transaction.beforeState.get(this.doc.clientID) ?? 0])
    while (burst.recent.length > 1 && burst.recent[0]![0] <= at - LIVE_ACK_MS) burst.older = burst.recent.shift()!
    burst.runs = applyDelta(burst.runs, delta, true)
    this.touched(burst)
  }

  private onList(field: string, list: Y.Array<unknown>, transaction: Y.Transaction): void {
    if (this.destroyed) return
    const burst = this.bursts.get(field)
    if (!this.options.isLocalEdit(transaction)) {
      if (burst === undefined) this.known.set(field, list.toJSON())
      return
    }
    this.touched(burst ?? this.begin(field, 'list', this.known.get(field) ?? []))
  }

  private begin(field: string, kind: 'text' | 'list', before: unknown): Burst {
    const entries = historyArray(this.doc).toArray()
    const base = headOf(entries, field, before)
    const burst: Burst = {
      field,
      kind,
      base,
      seen: kind === 'text' ? tipsOf(entries, field).filter((t) => t !== base) : [],
      startedAt: this.options.now(),
      runs: kind === 'text' ? [{ kind: KEEP, text: before as string }] : [],
      before,
      apart: false,
      firstClock: 0,
      recent: [],
      older: null,
      timer: null,
    }
    this.bursts.set(field, burst)
    return burst
  }

  /**
   * Whether a text burst was typed while connected: connected at every
   * keystroke, and its first keystroke and every one older than
   * {@link LIVE_ACK_MS} reached the relay (a connection that died unnoticed
   * delivers nothing from then on).
   */
  private typedTogether(burst: Burst): boolean {
    if (burst.apart || this.options.reached?.(burst.firstClock) !== true) return false
    const due = this.options.now() - LIVE_ACK_MS
    let last = burst.older
    for (const mark of burst.recent) if (mark[0] <= due) last = mark
    return last === null || this.options.reached(last[1])
  }

  /** A local edit of the burst's field: restart the pause, or end a burst that is too long. */
  private touched(burst: Burst): void {
    if (this.options.connected?.() !== true) burst.apart = true
    if (burst.timer !== null) clearTimeout(burst.timer)
    burst.timer = null
    if (this.options.now() - burst.startedAt >= this.maxBurstMs) {
      // Runs as its own transaction after the edit's (Yjs queues transactions started from observers).
      this.flush([burst.field])
      return
    }
    burst.timer = setTimeout(() => {
      burst.timer = null
      if (this.bursts.get(burst.field) === burst) this.flush([burst.field])
    }, this.idleMs)
  }
}

/** The local user's changed ranges `[start, end, insert]` on the burst's "before" text, adjacent changes joined. */
const hunksOf = (runs: readonly Run[]): Array<[number, number, string]> => {
  const out: Array<[number, number, string]> = []
  let pos = 0
  let open: [number, number, string] | null = null
  for (const run of runs) {
    if (run.kind === OTHER_INS) continue
    if (run.kind === KEEP || run.kind === OTHER_DEL) {
      open = null
      pos += run.text.length
      continue
    }
    if (open === null) out.push((open = [pos, pos, '']))
    if (run.kind === DEL) {
      pos += run.text.length
      open[1] = pos
    } else open[2] += run.text
  }
  return out
}

const joinRuns = (runs: readonly Run[], kinds: ReadonlyArray<Run['kind']>): string => {
  let out = ''
  for (const run of runs) if (kinds.includes(run.kind)) out += run.text
  return out
}

/**
 * Applies a Y.Text delta (positions in the text before the change) to the
 * runs. `mine`: inserted text becomes INS and deleted KEEP text becomes DEL;
 * otherwise inserted text is OTHER_INS and deleted KEEP text OTHER_DEL.
 * Deleted INS / OTHER_INS text simply disappears.
 */
const applyDelta = (runs: readonly Run[], delta: readonly DeltaOp[], mine: boolean): Run[] => {
  const out: Run[] = []
  const queue = runs.slice()
  let head = 0
  const push = (kind: Run['kind'], text: string): void => {
    if (text === '') return
    const last = out[out.length - 1]
    if (last !== undefined && last.kind === kind) last.text += text
    else out.push({ kind, text })
  }
  /** Consumes `n` characters of the current text (KEEP / INS / OTHER_INS); runs no longer in the text are passed through. */
  const take = (n: number, chunk: (kind: Run['kind'], text: string) => void): void => {
    while (n > 0 && head < queue.length) {
      const run = queue[head]!
      if (run.kind === DEL || run.kind === OTHER_DEL) {
        push(run.kind, run.text)
        head++
        continue
      }
      const part = run.text.slice(0, n)
      if (part.length === run.text.length) head++
      else queue[head] = { kind: run.kind, text: run.text.slice(n) }
      n -= part.length
      chunk(run.kind, part)
    }
  }
  for (const op of delta) {
    if (typeof op.retain === 'number') take(op.retain, push)
    else if (op.insert !== undefined) push(mine ? INS : OTHER_INS, typeof op.insert === 'string' ? op.insert : '\uFFFC')
    else if (typeof op.delete === 'number') {
      take(op.delete, (kind, text) => {
        if (kind === KEEP) push(mine ? DEL : OTHER_DEL, text)
      })
    }
  }
  for (; head < queue.length; head++) push(queue[head]!.kind, queue[head]!.text)
  return out
}
