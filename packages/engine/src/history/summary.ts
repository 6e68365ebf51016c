/**
 * "While you were offline…": what changed in a record since the user last
 * saw it, by whom, and which of the user's own changes lost a concurrent
 * change.
 *
 * "Since the user last saw it" is a state vector (persisted with the record):
 * a history entry is new when the Yjs id of its item is not covered by it.
 *
 * @example
 *   store.on('summary', (s) => toast(`${s.recordId}: ${s.changes.map((c) => c.field).join(', ')} changed`))
 *
 * @module history/summary
 */
import type * as Y from 'yjs'
import type { AuthorInfo } from '../protocol/messages.js'
import type { StateVector } from '../protocol/stateVector.js'
import { locatedEntries } from './historyLog.js'
import { readHistory } from './readHistory.js'

/** A user as far as the author bindings tell (null: not bound yet). */
export interface SummaryUser {
  userId: string | null
  name: string | null
}

/** What changed in one record while the user was away. */
export interface RecordSummary {
  recordId: string
  /** Fields other people changed, with who and how often. */
  changes: Array<{ field: string; users: SummaryUser[]; count: number }>
  /** The user's own values that a concurrent change of someone else replaced. */
  superseded: Array<{ field: string; mergeId: string; mine: unknown; theirs: unknown; by: SummaryUser }>
}

/**
 * Summarizes the history entries of `doc` that `since` does not cover.
 * Entries written by `me` (user id) or by this doc's own client id count
 * only for `superseded`. Returns null when there is nothing to say.
 */
export const summarizeSince = (
  doc: Y.Doc,
  recordId: string,
  authors: ReadonlyMap<number, AuthorInfo>,
  since: StateVector,
  me: string,
  currentFields: Record<string, unknown>,
): RecordSummary | null => {
  const fresh = new Set<string>()
  const isMine = (client: number): boolean => client === doc.clientID || authors.get(client)?.userId === me
  const changes = new Map<string, { users: Map<string, SummaryUser>; count: number }>()
  for (const { entry, client, clock } of locatedEntries(doc)) {
    if (clock < (since.get(client) ?? 0) || entry.k === 'c') continue
    fresh.add(entry.id)
    if (isMine(client)) continue
    let change = changes.get(entry.f)
    if (change === undefined) changes.set(entry.f, (change = { users: new Map(), count: 0 }))
    change.count++
    const bound = authors.get(client)
    const user: SummaryUser = { userId: bound?.userId ?? null, name: bound?.name ?? null }
    change.users.set(user.userId ?? `client:${client}`, user)
  }
  if (fresh.size === 0) return null
  const superseded: RecordSummary['superseded'] = []
  for (const merge of readHistory(doc, authors, { fields: currentFields }).merges) {
    if (merge.kept === null || merge.fieldKind === 'text') continue
    if (!merge.sides.some((side) => side.entryIds.some((id) => fresh.has(id)))) continue
    const winner = merge.sides[merge.kept]!
    if (isMine(winner.author.clientId)) continue
    for (const side of merge.sides) {
      if (side === winner || !isMine(side.author.clientId) || side.tip.author.clientId !== side.author.clientId) continue
      superseded.push({
        field: merge.field,
        mergeId: merge.id,
        mine: side.value,
        theirs: winner.value,
        by: { userId: winner.author.userId, name: winner.author.name },
      })
    }
  }
  if (changes.size === 0 && superseded.length === 0) return null
  return {
    recordId,
    changes: [...changes].map(([field, c]) => ({ field, users: [...c.users.values()], count: c.count })),
    superseded,
  }
}
