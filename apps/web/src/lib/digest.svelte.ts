/**
 * "While you were away…": the digest of what others changed, one item
 * per record, built from the record store's `summary` events (records open
 * here after a reconnect, and records fetched by a catch-up `pull`). Kept per
 * user + workspace in localStorage, so a reload does not lose what the person
 * has not read yet; an item goes when it is dismissed or its record opened.
 *
 * Each kind of news is its own list in an item (`merges`, `changes`), as in
 * the engine's `RecordSummary`; a new kind (comments) is a new list here and
 * a new part in `Digest.svelte`.
 *
 * @example
 *   const digest = new Digest(localStorage, 'concord/ada/acme/digest')
 *   store.on('summary', (summary) => digest.add(summary))
 *   digest.dismiss('T-1')
 *
 * @module lib/digest
 */
import type { CommentsSummary, FieldChangeSummary, MergeSummary, RecordSummary, SummaryUser } from '@concord/engine'
import type { KeyValueStore } from './identity'

/** What others changed in one record (several summaries of it are folded into one item). */
export interface DigestItem {
  recordId: string
  /** The record was new to this device. */
  created: boolean
  /** Merges with the person's own changes: shown first, each with a choice. */
  merges: MergeSummary[]
  /** Fields others changed. */
  changes: FieldChangeSummary[]
  /** Comments others added, edited or deleted. */
  comments?: CommentsSummary
  /** The person had changes of their own in the record, made here while away (e.g. offline), when the news came. */
  yours?: boolean
}

/** Items kept at most (the oldest go first). */
const MAX_ITEMS = 200

const userKey = (user: SummaryUser): string => user.userId ?? `client:${user.clientId}`

/** Folds a newer summary of the same record into an item: merges by id, changes by field (first "from", last "to"). */
const fold = (item: DigestItem, summary: RecordSummary): DigestItem => {
  const merges = new Map(item.merges.map((m) => [m.mergeId, m]))
  for (const merge of summary.merges) merges.set(merge.mergeId, merge)
  const changes = new Map(item.changes.map((c) => [c.field, c]))
  for (const change of summary.changes) {
    const before = changes.get(change.field)
    if (before === undefined) {
      changes.set(change.field, change)
      continue
    }
    const users = new Map(before.users.map((u) => [userKey(u), u]))
    for (const user of change.users) users.set(userKey(user), user)
    const folded: FieldChangeSummary = { ...change, users: [...users.values()], count: before.count + change.count }
    if ('from' in before) folded.from = before.from
    changes.set(change.field, folded)
  }
  const folded: DigestItem = {
    recordId: item.recordId,
    created: item.created || summary.created,
    merges: [...merges.values()],
    changes: [...changes.values()],
  }
  const comments = foldComments(item.comments, summary.comments)
  if (comments !== undefined) folded.comments = comments
  if (item.yours === true) folded.yours = true
  return folded
}

const foldComments = (before: CommentsSummary | undefined, after: CommentsSummary | undefined): CommentsSummary | undefined => {
  if (before === undefined || after === undefined) return before ?? after
  const users = new Map(before.users.map((u) => [userKey(u), u]))
  for (const user of after.users) users.set(userKey(user), user)
  return {
    users: [...users.values()],
    added: before.added + after.added,
    edited: before.edited + after.edited,
    deleted: before.deleted + after.deleted,
  }
}

const isItem = (value: unknown): value is DigestItem => {
  const item = value as DigestItem
  return typeof item?.recordId === 'string' && Array.isArray(item.merges) && Array.isArray(item.changes)
}

export class Digest {
  /** Newest last. */
  items = $state<DigestItem[]>([])

  constructor(
    private readonly storage: KeyValueStore | null,
    private readonly key: string,
  ) {
    try {
      const parsed: unknown = JSON.parse(storage?.getItem(key) ?? '[]')
      if (Array.isArray(parsed)) this.items = parsed.filter(isItem)
    } catch {
      // unreadable: nothing to show
    }
  }

  /** Items in the order to show them: those with a merge of the person's own change first. */
  get ordered(): DigestItem[] {
    return [...this.items.filter((i) => i.merges.length > 0), ...this.items.filter((i) => i.merges.length === 0)]
  }

  /**
   * Adds what a summary says (folded into the record's item if there is one);
   * `yours`: the person had changes of their own in the record, made here
   * while away (so the item can say where they are now, e.g. in an archived ticket).
   */
  add(summary: RecordSummary, yours = false): void {
    if (summary.merges.length === 0 && summary.changes.length === 0 && summary.comments === undefined) return
    const before = this.items.find((i) => i.recordId === summary.recordId)
    const item =
      before === undefined ? fold({ recordId: summary.recordId, created: false, merges: [], changes: [] }, summary) : fold(before, summary)
    if (yours) item.yours = true
    this.items = [...this.items.filter((i) => i.recordId !== summary.recordId), item].slice(-MAX_ITEMS)
    this.save()
  }

  /** Removes a record's item (dismissed, or the record was opened: read). */
  dismiss(recordId: string): void {
    if (!this.items.some((i) => i.recordId === recordId)) return
    this.items = this.items.filter((i) => i.recordId !== recordId)
    this.save()
  }

  dismissAll(): void {
    this.items = []
    this.save()
  }

  /**
   * A merge was decided (a value restored): its line goes, with the change
   * of that field it stood for, and the item when nothing else is left.
   */
  settle(recordId: string, mergeId: string): void {
    const item = this.items.find((i) => i.recordId === recordId)
    const merge = item?.merges.find((m) => m.mergeId === mergeId)
    if (item === undefined || merge === undefined) return
    const rest: DigestItem = {
      ...item,
      merges: item.merges.filter((m) => m !== merge),
      changes: item.changes.filter((c) => c.field !== merge.field),
    }
    const empty = rest.merges.length === 0 && rest.changes.length === 0 && rest.comments === undefined && !rest.created
    this.items = empty ? this.items.filter((i) => i !== item) : this.items.map((i) => (i === item ? rest : i))
    this.save()
  }

  private save(): void {
    try {
      this.storage?.setItem(this.key, JSON.stringify(this.items))
    } catch {
      // full or unavailable: the digest lasts for this page only
    }
  }
}
