/**
 * Comments on a record: part of the record's Y.Doc, so they are written
 * offline, stored on the device and synced like fields.
 *
 * They live in the top-level `Y.Array` {@link COMMENTS_ARRAY} as an
 * append-only log of events, each a plain object:
 *
 *     { id, k: 'add',  body, at }           a new comment (its id is the comment's id)
 *     { id, k: 'edit', c: commentId, body, at, b }   b: the event whose body it replaced
 *     { id, k: 'del',  c: commentId, at }
 *
 * Like a history entry, an event's `id` is `<clientId base36>.<clock base36>`
 * of the item holding it (readers skip events whose id is not their own),
 * and **its author is never stored**: it is the user the relay bound the
 * item's Yjs client id to (see `docs/history.md`, "Attribution"). An edit or
 * delete counts only when its author is the comment's author — the same
 * client id, or two client ids bound to the same (authenticated) user — so a
 * client that edits someone else's comment by hand changes nothing any
 * reader shows. The engine refuses such writes up front with a
 * {@link CommentError}. Of several edits, in array order (the same on every
 * replica), an edit replaces the body when its writer had seen it (`b` names
 * the event the body came from, or both come from the same client id) or,
 * for edits made at once on two devices, when it is the later by its
 * writer's clock — array order alone would be Yjs's order of those, by
 * client ids new at every page load. A deleted comment stays deleted.
 *
 * @example
 *   const id = ticket.comment('Reproduced on Safari 17')
 *   ticket.comments()                // [{ id, body, author: { userId: 'ada', … }, mine: true, … }]
 *   ticket.editComment(id, 'Reproduced on Safari 17.2')
 *   ticket.deleteComment(id)
 *   ticket.commentActivity(lastSeen) // who commented, edited, deleted since `lastSeen`
 *
 * @module records/comments
 */
import * as Y from 'yjs'
import type { AuthorInfo } from '../protocol/messages.js'
import type { StateVector } from '../protocol/stateVector.js'
import { entryIdAt } from '../history/historyLog.js'
import type { EntryAuthor } from '../history/readHistory.js'
import { COMMENTS_ARRAY } from '../model/recordDoc.js'

/** Longest comment body accepted, in characters. */
export const MAX_COMMENT_LENGTH = 10_000

/** A comment event as stored in the doc. */
export interface StoredCommentEvent {
  id: string
  k: 'add' | 'edit' | 'del'
  /** Edit / delete: the id of the comment. */
  c?: string
  /** Edit: the id of the event (the add or an edit) whose body its writer replaced. Absent in edits of older versions. */
  b?: string
  /** Add / edit: the text. */
  body?: string
  /** The writer's clock, ms since epoch. */
  at: number
}

/** A comment as shown. */
export interface Comment {
  /** Stable id (the id of its `add` event). */
  id: string
  body: string
  /** Who wrote it: the user the relay bound its Yjs client id to (null until bound). */
  author: EntryAuthor
  /** When it was written (the writer's clock). */
  createdAt: number
  /** When its body was last edited, or null. */
  editedAt: number | null
  /** Whether this user wrote it, so may edit and delete it. */
  mine: boolean
}

/** Something done to a comment, for timelines and digests. */
export interface CommentActivity {
  /** Id of the event. */
  id: string
  kind: 'commented' | 'edited' | 'deleted'
  commentId: string
  /** Add and edit: the body written. */
  body?: string
  at: number
  author: EntryAuthor
  /** Yjs id of the event's item. */
  client: number
  clock: number
}

/** Who is reading: this user's id, so that own comments written before the relay bound them count as own. */
export interface CommentReader {
  /** User id of the reader (the store's user). */
  userId: string
}

/** An edit or delete of a comment was refused (not the author, no such comment, bad body). Nothing was written. */
export class CommentError extends Error {
  readonly recordId: string
  readonly commentId: string | null

  constructor(recordId: string, commentId: string | null, message: string) {
    super(`${message}. Nothing was written.`)
    this.name = 'CommentError'
    this.recordId = recordId
    this.commentId = commentId
  }
}

/** The comment log of a doc. */
export const commentsArray = (doc: Y.Doc): Y.Array<StoredCommentEvent> => doc.getArray<StoredCommentEvent>(COMMENTS_ARRAY)

interface LocatedEvent {
  event: StoredCommentEvent
  client: number
  clock: number
}

const isEvent = (value: unknown): value is StoredCommentEvent => {
  if (value === null || typeof value !== 'object') return false
  const e = value as Partial<StoredCommentEvent>
  if (typeof e.id !== 'string' || typeof e.at !== 'number') return false
  if (e.k === 'add') return typeof e.body === 'string'
  if (e.k === 'edit') return typeof e.c === 'string' && typeof e.body === 'string'
  return e.k === 'del' && typeof e.c === 'string'
}

/** Every live, well-formed event under its own id, in array order (identical on every replica). */
const locatedEvents = (doc: Y.Doc): LocatedEvent[] => {
  if (!doc.share.has(COMMENTS_ARRAY)) return []
  const out: LocatedEvent[] = []
  let item = commentsArray(doc)._start
  while (item !== null) {
    if (!item.deleted && item.countable) {
      const content = item.content.getContent()
      for (let i = 0; i < content.length; i++) {
        const event = content[i] as unknown
        const clock = item.id.clock + i
        if (isEvent(event) && event.id === entryIdAt(item.id.client, clock)) out.push({ event, client: item.id.client, clock })
      }
    }
    item = item.right
  }
  return out
}

const authorOf = (client: number, authors: ReadonlyMap<number, AuthorInfo>): EntryAuthor => {
  const bound = authors.get(client)
  return { clientId: client, userId: bound?.userId ?? null, name: bound?.name ?? null }
}

/** The user a client id writes as, as far as this replica can tell: its binding, or this reader for this doc's own client. */
const userOf = (doc: Y.Doc, client: number, authors: ReadonlyMap<number, AuthorInfo>, reader: CommentReader | undefined): string | null =>
  authors.get(client)?.userId ?? (reader !== undefined && client === doc.clientID ? reader.userId : null)

/** The relay's user without auth: it cannot tell people apart, so it proves no one the author of anything. */
const ANONYMOUS = 'anonymous'

/** Whether the writers of two items are the same person: the same client id, or both bound to the same authenticated user. */
const sameWriter = (
  doc: Y.Doc,
  a: number,
  b: number,
  authors: ReadonlyMap<number, AuthorInfo>,
  reader: CommentReader | undefined,
): boolean => {
  if (a === b) return true
  const ua = userOf(doc, a, authors, reader)
  return ua !== null && ua !== ANONYMOUS && ua === userOf(doc, b, authors, reader)
}

interface Derived {
  /** `from`: the event the body came from (the add or an edit). */
  comments: Map<string, { add: LocatedEvent; body: string; from: LocatedEvent; editedAt: number | null; deleted: boolean }>
  activity: CommentActivity[]
}

const derive = (doc: Y.Doc, authors: ReadonlyMap<number, AuthorInfo>, reader: CommentReader | undefined): Derived => {
  const comments: Derived['comments'] = new Map()
  const activity: CommentActivity[] = []
  for (const located of locatedEvents(doc)) {
    const { event, client, clock } = located
    const base = { id: event.id, at: event.at, author: authorOf(client, authors), client, clock }
    if (event.k === 'add') {
      if (comments.has(event.id)) continue
      comments.set(event.id, { add: located, body: event.body!, from: located, editedAt: null, deleted: false })
      activity.push({ ...base, kind: 'commented', commentId: event.id, body: event.body! })
      continue
    }
    const target = comments.get(event.c!)
    // Only the comment's author edits or deletes it; a deleted comment stays deleted.
    if (target === undefined || target.deleted || !sameWriter(doc, client, target.add.client, authors, reader)) continue
    if (event.k === 'edit') {
      // Written on top of the body (it names it, or one client wrote both: its own order), or at once with the edit
      // that gave it and later by the clocks. Array order alone would be Yjs's order of edits appended at once on two
      // devices: by their client ids, new at every page load.
      const from = target.from
      if (from === target.add || event.b === from.event.id || client === from.client || event.at >= from.event.at) {
        target.body = event.body!
        target.from = located
        target.editedAt = event.at
      }
      activity.push({ ...base, kind: 'edited', commentId: event.c!, body: event.body! })
    } else {
      target.deleted = true
      activity.push({ ...base, kind: 'deleted', commentId: event.c! })
    }
  }
  return { comments, activity }
}

/**
 * The comments of a record doc that are not deleted, oldest first (by their
 * writers' clocks; the same on every replica with the same updates and bindings).
 */
export const readComments = (doc: Y.Doc, authors: ReadonlyMap<number, AuthorInfo>, reader?: CommentReader): Comment[] => {
  const out: Comment[] = []
  for (const [id, c] of derive(doc, authors, reader).comments) {
    if (c.deleted) continue
    out.push({
      id,
      body: c.body,
      author: authorOf(c.add.client, authors),
      createdAt: c.add.event.at,
      editedAt: c.editedAt,
      mine: reader !== undefined && isOwn(doc, c.add.client, authors, reader),
    })
  }
  return out.sort((a, b) => a.createdAt - b.createdAt) // stable: array order among equal times
}

/**
 * What was done to comments, in log order (the same on every replica; an
 * edit or delete always follows its comment): comments added, edited and
 * deleted (only edits and deletes by the comment's author count). With
 * `since` (a state vector, e.g. what the user last saw), only what it does
 * not cover: what an "while you were away" digest says.
 */
export const commentActivity = (
  doc: Y.Doc,
  authors: ReadonlyMap<number, AuthorInfo>,
  options: { since?: StateVector; reader?: CommentReader } = {},
): CommentActivity[] => {
  const all = derive(doc, authors, options.reader).activity
  const since = options.since
  return since === undefined ? all : all.filter((a) => a.clock >= (since.get(a.client) ?? 0))
}

/** Whether the item written by `client` is this reader's own: this doc's client id, or bound to the reader (authenticated). */
const isOwn = (doc: Y.Doc, client: number, authors: ReadonlyMap<number, AuthorInfo>, reader: CommentReader): boolean => {
  if (client === doc.clientID) return true
  const user = authors.get(client)?.userId
  return user !== undefined && user !== ANONYMOUS && user === reader.userId
}

const checkBody = (recordId: string, commentId: string | null, body: unknown): string => {
  if (typeof body !== 'string') throw new CommentError(recordId, commentId, `a comment is text (a string), got ${typeof body}`)
  const trimmed = body.trim()
  if (trimmed === '') throw new CommentError(recordId, commentId, 'a comment cannot be empty')
  if (trimmed.length > MAX_COMMENT_LENGTH) {
    throw new CommentError(recordId, commentId, `a comment is ${trimmed.length} characters long, at most ${MAX_COMMENT_LENGTH} are allowed`)
  }
  return trimmed
}

const push = (doc: Y.Doc, event: Omit<StoredCommentEvent, 'id'>): string => {
  const id = entryIdAt(doc.clientID, Y.getState(doc.store, doc.clientID)) // the clock of the item pushed below
  commentsArray(doc).push([{ id, ...event }])
  return id
}

/** Appends a comment by this doc's writer; returns its id. Call inside a transaction. @throws {CommentError} for an empty or too long body. */
export const addComment = (doc: Y.Doc, recordId: string, body: unknown, now: number): string =>
  push(doc, { k: 'add', body: checkBody(recordId, null, body), at: now })

/**
 * Edits (`body`) or deletes (`body` null) comment `commentId`, which must be
 * this reader's own. Call inside a transaction.
 *
 * @throws {CommentError} for an unknown or deleted comment, someone else's comment, or a bad body.
 */
export const changeComment = (
  doc: Y.Doc,
  recordId: string,
  commentId: string,
  body: unknown,
  authors: ReadonlyMap<number, AuthorInfo>,
  reader: CommentReader,
  now: number,
): void => {
  const comment = derive(doc, authors, reader).comments.get(commentId)
  const verb = body === null ? 'delete' : 'edit'
  if (comment === undefined)
    throw new CommentError(recordId, commentId, `cannot ${verb} comment "${commentId}" of record "${recordId}": there is no such comment`)
  if (comment.deleted)
    throw new CommentError(recordId, commentId, `cannot ${verb} comment "${commentId}" of record "${recordId}": it was deleted`)
  if (!isOwn(doc, comment.add.client, authors, reader)) {
    const author = authors.get(comment.add.client)
    const who =
      author === undefined
        ? 'someone whose device has not synced yet'
        : author.userId === ANONYMOUS
          ? 'someone else (this relay does not authenticate people)'
          : `${author.name} (${author.userId})`
    throw new CommentError(
      recordId,
      commentId,
      `cannot ${verb} comment "${commentId}" of record "${recordId}": it was written by ${who}; only its author can ${verb} it`,
    )
  }
  if (body === null) push(doc, { k: 'del', c: commentId, at: now })
  else {
    const text = checkBody(recordId, commentId, body)
    if (text !== comment.body) push(doc, { k: 'edit', c: commentId, body: text, at: now, b: comment.from.event.id })
  }
}
