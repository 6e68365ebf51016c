/**
 * "While you were away…" for a record: the field changes and merges of
 * `history/summary`, and what others did in its comments meanwhile (a
 * record someone only commented on is news too).
 *
 * @example
 *   const summary = summarizeRecord(doc, { recordId, authors, since, userId, ownClients, fields, schema })
 *   if (summary?.comments) say(`${summary.comments.added} new comments`)
 *
 * @module records/recordSummary
 */
import type * as Y from 'yjs'
import { summarizeSince, userOf, type CommentsSummary, type RecordSummary, type SummarizeOptions } from '../history/summary.js'
import { commentActivity } from './comments.js'

/** {@link summarizeSince}, with others' comment activity since `options.since`; null when there is no news at all. */
export const summarizeRecord = (doc: Y.Doc, options: SummarizeOptions): RecordSummary | null => {
  const summary = summarizeSince(doc, options)
  const comments = commentsSince(doc, options)
  if (comments === null) return summary
  return summary === null
    ? { recordId: options.recordId, created: options.created ?? false, merges: [], changes: [], comments }
    : { ...summary, comments }
}

const commentsSince = (doc: Y.Doc, options: SummarizeOptions): CommentsSummary | null => {
  const { authors, since, userId, ownClients } = options
  const theirs = commentActivity(doc, authors, { since, reader: { userId } }).filter(
    (a) => a.client !== doc.clientID && !ownClients.has(a.client) && (a.author.userId === null || a.author.userId !== userId),
  )
  if (theirs.length === 0) return null
  const users = new Map<string, ReturnType<typeof userOf>>()
  for (const a of theirs) users.set(a.author.userId ?? `client:${a.author.clientId}`, userOf(a.author))
  const count = (kind: 'commented' | 'edited' | 'deleted'): number => theirs.filter((a) => a.kind === kind).length
  return { users: [...users.values()], added: count('commented'), edited: count('edited'), deleted: count('deleted') }
}
