/**
 * The requests a multiplexed connection answers without a subscription:
 * `list-docs`, `fetch` and `list-presence`. See docs/PROTOCOL.md and
 * docs/security.md.
 *
 * - Each is checked against the connection's identity first (per-record
 *   grants can hide single docs of a readable workspace).
 * - Answering is charged to the connection's work budget (`workMsPerSecond`,
 *   `workBurstMs`): the relay's own time for the answer (a storage read done
 *   on the relay's thread, filtering, encoding), not the time the request
 *   waited behind others (nor SQLite's reads: they run on its worker thread).
 *   A connection already over the budget is closed before any work.
 * - `fetch` answers larger than a chunk, or asked for while the send buffer
 *   is half full, go out in parts, paced (connections/initialSync).
 *
 * @module connections/requests
 */
import * as decoding from 'lib0/decoding'
import {
  ErrorCode,
  ListFlags,
  MAX_LIST_LIMIT,
  encodeDocList,
  encodeFetched,
  encodeFetchedBody,
  encodeFetchedMany,
  encodeFetchedPart,
  encodePresence,
  MAX_FETCH_DOCS,
  readListDocs,
  readResume,
  validateDocName,
  type FetchedEntry,
  type ResumeEntry,
} from '@concord/engine/protocol'
import type { AuthorBinding, DocSeq } from '../storage/Storage.js'
import { Access, accessFor, listAccessFor } from '../auth/Authenticator.js'
import { validateStateVector } from '../security/validateUpdate.js'
import type { Connection } from './Connection.js'

/** What a request handler uses of its connection (a `MuxConnection`). */
export interface RequestHost extends Connection {
  /** Sends an error about `doc` ("" for the whole connection). */
  sendError(doc: string, code: ErrorCode, reason: string): void
  /** Sends bindings of `doc` in parts (nothing when there are none). */
  sendAuthorParts(doc: string, authors: readonly AuthorBinding[]): void
}

/**
 * Checks a workspace id a request names (`list-presence`, `watch-catalog`):
 * a valid name without "/", that the connection may list. Otherwise answers
 * with the error (counting a refused permission as `what`) and returns false.
 */
export const mayReadWorkspace = (
  conn: Connection & { sendError(doc: string, code: ErrorCode, reason: string): void },
  workspace: string,
  what: string,
): boolean => {
  const invalid = validateDocName(workspace)
  if (invalid || workspace.includes('/')) {
    conn.sendError(workspace.slice(0, 600), ErrorCode.invalidDocName, invalid ?? 'a workspace id has no "/"')
    return false
  }
  if (listAccessFor(conn.identity, workspace + '/') === Access.none) {
    conn.refuse('permission', `${what} ${workspace}`)
    conn.sendError(workspace, ErrorCode.permissionDenied, `no access to workspace "${workspace}"`)
    return false
  }
  return true
}

/**
 * Answers `list-docs`: stored doc names under a prefix, a page at a time,
 * and with `ListFlags.seqs` each doc's last stored sequence number (a client
 * that remembers it fetches only the docs whose number moved).
 */
export const listDocs = (conn: RequestHost, prefix: string, body: decoding.Decoder): void => {
  let request: { requestId: number; after: string; limit: number; flags: number }
  try {
    request = readListDocs(body)
  } catch (error) {
    conn.protocolError('malformed list-docs message', error)
    return
  }
  const invalid = prefix === '' ? null : validateDocName(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)
  if (invalid) {
    conn.sendError(prefix.slice(0, 600), ErrorCode.invalidDocName, `invalid prefix: ${invalid}`)
    return
  }
  if (listAccessFor(conn.identity, prefix) === Access.none) {
    conn.refuse('permission', `list ${prefix}`)
    conn.sendError(prefix, ErrorCode.permissionDenied, `no access to list "${prefix}"`)
    return
  }
  const limit = Math.max(1, Math.min(request.limit || MAX_LIST_LIMIT, MAX_LIST_LIMIT))
  if (!conn.withinWorkBudget('list-docs')) return
  // charged: the relay's own time for the page — the storage reads (done inside the call by a storage that reads
  // on the relay's thread, like MemoryStorage; SQLite reads on its worker) and the filtering — not the time the
  // request waited behind others
  const withSeqs = (request.flags & ListFlags.seqs) !== 0
  void (async () => {
    // Each page reads only its own rows. Per-record grants can hide single docs of a readable workspace:
    // a page with hidden docs reads on until it is full or the listing ends.
    const page: DocSeq[] = []
    let after = request.after
    let more = true
    let workMs = 0
    while (more && page.length < limit) {
      const started = performance.now()
      const read = conn.ctx.rooms.listSeqsPage(prefix, after, limit - page.length)
      workMs += performance.now() - started
      const chunk = await read
      if (conn.closed) return
      const filtering = performance.now()
      for (const entry of chunk.docs) if (accessFor(conn.identity, entry.doc) !== Access.none) page.push(entry)
      more = chunk.more
      if (chunk.docs.length > 0) after = chunk.docs[chunk.docs.length - 1]!.doc
      workMs += performance.now() - filtering
    }
    if (!conn.chargeWork('list-docs', workMs)) return
    const names = page.map(({ doc }) => doc)
    const seqs = withSeqs ? page.map(({ lastSeq }) => lastSeq) : undefined
    conn.send('doc-list', encodeDocList(prefix, request.requestId, names, more, seqs))
  })().catch((error: unknown) => {
    if (conn.closed) return
    conn.log.warn({ err: error, prefix }, 'list-docs failed: storage')
    conn.sendError(prefix, ErrorCode.storageUnavailable, 'could not list docs from storage; try again later')
  })
}

/** Answers `list-presence`: who was seen in a workspace, and when. */
export const listPresence = (conn: RequestHost, workspace: string, body: decoding.Decoder): void => {
  let requestId: number
  try {
    requestId = decoding.readVarUint(body)
  } catch (error) {
    conn.protocolError('malformed list-presence message', error)
    return
  }
  if (!mayReadWorkspace(conn, workspace, 'presence')) return
  if (!conn.withinWorkBudget('list-presence')) return
  // charged: the read (inside the call for a storage that reads synchronously), not time waited behind others
  const started = performance.now()
  const listing = conn.ctx.lastSeen.list(workspace)
  const readMs = performance.now() - started
  listing.then(
    (users) => {
      if (!conn.chargeWork('list-presence', readMs)) return
      conn.send('presence', encodePresence(workspace, requestId, users))
    },
    (error: unknown) => {
      conn.log.warn({ err: error, workspace }, 'list-presence failed: storage')
      conn.sendError(workspace, ErrorCode.storageUnavailable, 'could not read presence from storage; try again later')
    },
  )
}

/** Answers `fetch`: what the client lacks of a doc, without subscribing. */
export const fetchDoc = (conn: RequestHost, doc: string, body: decoding.Decoder): void => {
  const invalid = validateDocName(doc)
  if (invalid) {
    conn.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
    return
  }
  let stateVector: Uint8Array
  try {
    stateVector = decoding.readVarUint8Array(body)
    const valid = validateStateVector(stateVector)
    if (!valid.ok) throw new Error(valid.reason)
  } catch (error) {
    conn.protocolError(`malformed fetch message for "${doc}"`, error)
    return
  }
  answerFetch(conn, doc, stateVector, null)
}

/**
 * A `fetch-many`: every entry answered as its own `fetch` would be, in order.
 * The message is read and every state vector checked before anything is
 * answered: a malformed one closes the connection (as in `fetch`); more than
 * `MAX_FETCH_DOCS` entries refuse the whole message, so one message causes at
 * most that many answers. Each entry counts as a message against the rate
 * limit.
 */
export const fetchMany = (conn: RequestHost, body: decoding.Decoder): void => {
  let entries: ResumeEntry[]
  try {
    entries = readResume(body)
    for (const { doc, stateVector } of entries) {
      const valid = validateStateVector(stateVector)
      if (!valid.ok) throw new Error(`"${doc.slice(0, 128)}": ${valid.reason}`)
    }
  } catch (error) {
    conn.protocolError('malformed fetch-many message', error)
    return
  }
  if (entries.length > MAX_FETCH_DOCS) {
    conn.refuse('too-many-docs', `fetch-many of ${entries.length} docs`)
    conn.sendError('', ErrorCode.limitExceeded, `a fetch-many of ${entries.length} docs; at most ${MAX_FETCH_DOCS} per message`)
    return
  }
  // each doc counts as a message: one frame must not ask for more than the message rate allows
  if (!conn.chargeMessages(entries.length - 1)) return
  const bundle = new FetchedBundle(conn, entries.length, conn.ctx.limits.initialSyncChunkBytes)
  for (const { doc, stateVector } of entries) {
    if (conn.closed) return
    const invalid = validateDocName(doc)
    if (invalid) {
      conn.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
      bundle.settled()
    } else answerFetch(conn, doc, stateVector, bundle)
  }
}

/**
 * The ready answers to the docs of one `fetch-many`, sent together in
 * `fetched-many` messages (a browser pays for every message it receives):
 * once every doc of the message is answered, refused or queued to go in
 * parts, or once they reach a chunk's size. Whatever else goes out about a
 * doc whose answer is held here (an error, authors, another answer) flushes
 * it first ({@link releaseHeld}), so a doc's answers keep their order.
 */
class FetchedBundle {
  private entries: FetchedEntry[] = []
  private size = 0

  constructor(
    private readonly conn: RequestHost,
    /** Docs of the message not done with yet. */
    private open: number,
    private readonly maxBytes: number,
  ) {}

  /** Bytes held. */
  get bytes(): number {
    return this.size
  }

  /** Holds the answer of `doc` (the body of its `fetched`). */
  add(doc: string, body: Uint8Array): void {
    this.entries.push({ doc, body })
    this.size += body.byteLength + doc.length
    heldBy(this.conn).set(doc, this)
    if (this.size >= this.maxBytes) this.flush()
  }

  /** One doc of the message is done with: answered here, refused, or queued. */
  settled(): void {
    if (--this.open === 0) this.flush()
  }

  /** Sends what is held. */
  flush(): void {
    const entries = this.entries
    if (entries.length === 0) return
    this.entries = []
    this.size = 0
    const held = heldBy(this.conn)
    for (const { doc } of entries) if (held.get(doc) === this) held.delete(doc)
    if (!this.conn.closed) this.conn.send('fetched-many', encodeFetchedMany(entries))
  }
}

/** Per connection: the bundle holding an unsent answer of each doc. */
const heldAnswers = new WeakMap<RequestHost, Map<string, FetchedBundle>>()
const heldBy = (conn: RequestHost): Map<string, FetchedBundle> => {
  let held = heldAnswers.get(conn)
  if (held === undefined) heldAnswers.set(conn, (held = new Map()))
  return held
}

/** Sends the held answer of `doc` (with its bundle) before anything else about the doc goes out, except into `into`. */
const releaseHeld = (conn: RequestHost, doc: string, into: FetchedBundle | null = null): void => {
  const bundle = heldAnswers.get(conn)?.get(doc)
  if (bundle !== undefined && bundle !== into) bundle.flush()
}

/** Answers a fetch of `doc` (name and state vector valid); into `bundle` when it came in a `fetch-many`. */
const answerFetch = (conn: RequestHost, doc: string, stateVector: Uint8Array, bundle: FetchedBundle | null): void => {
  if (accessFor(conn.identity, doc) === Access.none) {
    conn.refuse('permission', `fetch ${doc}`)
    releaseHeld(conn, doc)
    conn.sendError(doc, ErrorCode.permissionDenied, `no access to "${doc}"`)
    bundle?.settled()
    return
  }
  if (!conn.withinWorkBudget(`fetch of "${doc}"`)) return
  const { ctx, log } = conn
  // charged: the relay's own time loading and encoding the doc (not the time the request waited behind others)
  ctx.rooms.snapshot(doc, stateVector).then(
    ({ update, durableStateVector, lastSeq, authors, workMs }) => {
      if (!conn.chargeWork(`fetch of "${doc}"`, workMs)) return
      releaseHeld(conn, doc, bundle)
      conn.sendAuthorParts(doc, authors)
      // answers of one doc keep their order: once one goes in parts, the next ones queue behind it
      const key = `fetch ${doc}`
      // Many answers asked for at once (a client catching up pulls several records in parallel) must not make it
      // a slow reader: once its send buffer is half full, answers wait their turn and go out paced, like big ones.
      const underPressure = conn.ws.bufferedAmount + (bundle?.bytes ?? 0) + update.byteLength > ctx.limits.maxBufferedBytes / 2
      if (update.byteLength <= ctx.limits.initialSyncChunkBytes && !underPressure && !ctx.initialSyncs.has(conn, key)) {
        if (bundle === null) conn.send('fetched', encodeFetched(doc, update, durableStateVector, lastSeq))
        else {
          bundle.add(doc, encodeFetchedBody(update, durableStateVector, lastSeq))
          bundle.settled()
        }
        return
      }
      let durable = durableStateVector
      let seq = lastSeq
      ctx.initialSyncs.enqueue(
        {
          owner: conn,
          key,
          open: async () => {
            if (accessFor(conn.identity, doc) === Access.none) {
              conn.sendError(doc, ErrorCode.permissionDenied, `no access to "${doc}"`)
              return null
            }
            try {
              const snapshot = await ctx.rooms.snapshot(doc, stateVector)
              durable = snapshot.durableStateVector
              seq = snapshot.lastSeq
              return snapshot.update
            } catch (error) {
              log.warn({ err: error, doc }, 'fetch failed: storage')
              conn.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; fetch again later`)
              return null
            }
          },
          sendPart: (part, last, sent) =>
            last
              ? conn.sendInitialSyncPart('fetched', encodeFetched(doc, part, durable, seq), sent)
              : conn.sendInitialSyncPart('fetched-part', encodeFetchedPart(doc, part), sent),
        },
        update,
        { replace: false },
      )
      bundle?.settled()
    },
    (error: unknown) => {
      log.warn({ err: error, doc }, 'fetch failed: storage')
      releaseHeld(conn, doc)
      conn.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; fetch again later`)
      bundle?.settled()
    },
  )
}
