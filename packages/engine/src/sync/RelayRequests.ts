/**
 * Request/answer exchanges with the relay that do not subscribe a doc:
 * `list-docs` → `doc-list` (matched by request id) and `fetch` → `fetched`
 * (matched by doc name, first in first out: the relay handles one socket's
 * messages for a doc in order).
 *
 * A large `fetch` answer comes in parts: `fetched-part` messages, then the
 * `fetched` that ends it; the parts are merged (`Y.mergeUpdates`) into the
 * one update the request resolves with. Parts of an answer cut short by a
 * lost socket are dropped: the request is sent again and answered whole.
 *
 * Fetches sent in one turn of the event loop go out together in
 * `fetch-many` messages when the relay announces the feature (a new device
 * pulling thousands of records sends a few hundred messages instead of one
 * per record: each WebSocket `send` costs a browser far more than the bytes);
 * the relay answers each doc as if it had been fetched alone.
 *
 * Requests made while offline wait for the next `hello`. A request whose
 * socket is lost before the answer is sent again on the next connection
 * (both are reads, so repeating them is harmless), at most `maxAttempts`
 * times: a relay that does not know these messages closes the socket, and
 * the request must not loop forever.
 *
 * Errors: the relay answers a refused request with `error(doc, code, reason)`
 * naming the doc (or prefix) asked for. Such an error rejects the oldest sent
 * request for that name; the sync client also hands it to an open handle of
 * the same name, since the relay's error does not say which message caused it.
 *
 * @module sync/RelayRequests
 */
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import {
  ErrorCode,
  MAX_FETCH_DOCS,
  RelayFeatures,
  encodeFetch,
  encodeFetchMany,
  encodeListDocs,
  inBatches,
  encodeListPresence,
  readDocList,
  readFetched,
  readFetchedPart,
  readPresence,
  type AuthorInfo,
  type PresenceInfo,
} from '../protocol/messages.js'
import { SyncError } from './SyncError.js'

/** A doc's state fetched without subscribing. */
export interface FetchedDoc {
  /** A Yjs update with everything the relay has that the given state vector lacks. */
  update: Uint8Array
  /** Encoded state vector the relay has durably stored for the doc (persist it as the acked state). */
  stateVector: Uint8Array
  /** The doc's author bindings (Yjs client id → user), sent by the relay before the answer. */
  authors: AuthorInfo[]
  /**
   * The doc's change sequence on the relay (as `client.listDocsWithSeqs`
   * lists it) of a state `update` completes; null from a relay that does not
   * report it.
   */
  seq: number | null
}

/** Options of `client.listDocs` and `client.fetchDoc`. */
export interface RelayRequestOptions {
  /** Abort the request: it rejects with the signal's reason and its answer is ignored. */
  signal?: AbortSignal
}

/** Options of `client.listDocs`. */
/** Size of a listing's first page when no `pageSize` is given. */
export const FIRST_LIST_PAGE = 250

export interface ListDocsOptions extends RelayRequestOptions {
  /**
   * Names per page, 1–5000. Default: a first page of {@link FIRST_LIST_PAGE}
   * names, so that `onPage` can start on them at once (the relay reads only
   * the rows of a page), then 5000 (the relay's maximum).
   */
  pageSize?: number
  /** Called with each page's docs as it arrives, before the next page is asked for (the whole list still resolves at the end). */
  onPage?: (docs: ListedDoc[]) => void
}

/** A doc listed by `client.listDocsWithSeqs`. */
export interface ListedDoc {
  name: string
  /** The relay's change sequence of the doc (grows with every stored change); null when the relay does not report it. */
  seq: number | null
}

/** One page of a `list-docs` answer. */
export interface DocListPage {
  names: string[]
  /** More names follow (ask again after the last one). */
  more: boolean
  /** Each name's change sequence, in the same order; null when the relay sent none. */
  seqs: number[] | null
}

interface Request {
  readonly kind: 'list' | 'fetch' | 'presence'
  /** Doc name (fetch) or prefix (list). */
  readonly doc: string
  /** List only: the id the answer carries. */
  readonly requestId: number
  readonly encode: () => Uint8Array
  /** Fetch only: the client's state vector sent with it. */
  readonly stateVector: Uint8Array | null
  /** Whether it was sent on the current socket. */
  sent: boolean
  /** Answered, failed or aborted. */
  done: boolean
  attempts: number
  settle(error: Error | null, body?: decoding.Decoder): void
}

/** Tracks outstanding relay requests of one sync client. */
export class RelayRequests {
  private readonly outstanding: Request[] = []
  private nextRequestId = 1
  private online = false
  /** Author bindings that arrived for a doc with a fetch in flight (every part of them), for its answer. */
  private readonly fetchAuthors = new Map<string, AuthorInfo[]>()
  /** Parts of a `fetch` answer that came so far, per doc (for the oldest sent fetch of it). */
  private readonly fetchParts = new Map<string, Uint8Array[]>()
  /** Fetches transmitted in this turn, sent together at its end (when the relay takes `fetch-many`). */
  private fetchQueue: Request[] = []

  /**
   * @param send sends one message on the current socket (dropped when there is none)
   * @param maxAttempts how many sockets a request may be sent on before it is rejected
   * @param relay the features the relay announced in `hello` (0 before one came) and the largest message it takes
   */
  constructor(
    private readonly send: (data: Uint8Array) => void,
    private readonly maxAttempts = 3,
    private readonly relay: () => { features: number; maxMessageBytes: number } = () => ({ features: 0, maxMessageBytes: 0 }),
  ) {}

  /** Number of requests waiting for an answer. */
  get size(): number {
    return this.outstanding.length
  }

  /** One page of `list-docs`; `flags` are the protocol's `ListFlags`. */
  listPage(prefix: string, after: string, limit: number, flags: number, options: RelayRequestOptions): Promise<DocListPage> {
    const requestId = this.nextRequestId++
    return this.start<DocListPage>(
      'list',
      prefix,
      requestId,
      () => encodeListDocs(prefix, requestId, after, limit, flags),
      (body) => {
        const { names, more, seqs } = readDocList(body)
        return { names, more, seqs }
      },
      options,
    )
  }

  /** `fetch` of one doc. */
  fetch(name: string, stateVector: Uint8Array, options: RelayRequestOptions): Promise<FetchedDoc> {
    const read = (body: decoding.Decoder): FetchedDoc => {
      const fetched = readFetched(body)
      const authors = this.fetchAuthors.get(name) ?? []
      this.fetchAuthors.delete(name)
      const parts = this.fetchParts.get(name)
      this.fetchParts.delete(name)
      const update = parts === undefined ? fetched.update : Y.mergeUpdates([...parts, fetched.update])
      return { update, stateVector: fetched.stateVector, authors, seq: fetched.seq }
    }
    return this.start<FetchedDoc>('fetch', name, 0, () => encodeFetch(name, stateVector), read, options, stateVector)
  }

  /** `list-presence` of a workspace: every user the relay has seen there. */
  presence(workspace: string, options: RelayRequestOptions): Promise<PresenceInfo[]> {
    const requestId = this.nextRequestId++
    return this.start<PresenceInfo[]>(
      'presence',
      workspace,
      requestId,
      () => encodeListPresence(workspace, requestId),
      (body) => readPresence(body).users,
      options,
    )
  }

  /**
   * An `authors` message for `doc`: kept for the answer of a fetch in flight.
   * A doc's bindings may come in several messages; they add up. Returns
   * whether a fetch waits.
   */
  receiveAuthors(doc: string, authors: AuthorInfo[]): boolean {
    if (!this.outstanding.some((r) => r.kind === 'fetch' && r.sent && r.doc === doc)) return false
    const kept = this.fetchAuthors.get(doc)
    if (kept === undefined) this.fetchAuthors.set(doc, authors.slice())
    else for (const a of authors) kept.push(a)
    return true
  }

  /** A `presence` answer. Returns false when no request matches its id. */
  receivePresence(body: decoding.Decoder): boolean {
    const start = body.pos
    const requestId = decoding.readVarUint(body)
    body.pos = start
    const request = this.outstanding.find((r) => r.kind === 'presence' && r.sent && r.requestId === requestId)
    if (request === undefined) return false
    request.settle(null, body)
    return true
  }

  /** The relay handshake completed on a new socket: send everything not sent on it yet. */
  connected(): void {
    this.online = true
    for (const request of [...this.outstanding]) if (!request.sent) this.transmit(request)
  }

  /** The socket is gone: requests sent on it go out again on the next one, up to `maxAttempts`. */
  disconnected(): void {
    this.online = false
    this.fetchQueue = [] // not sent: each goes out again with the others below
    // answers cut short: the requests go out again and are answered whole
    this.fetchParts.clear()
    // a fetch sent again gets its bindings again
    this.fetchAuthors.clear()
    for (const request of [...this.outstanding]) {
      if (!request.sent) continue
      request.sent = false
      if (request.attempts >= this.maxAttempts) {
        request.settle(
          new Error(
            `the relay did not answer ${request.kind === 'list' ? 'list-docs' : request.kind === 'fetch' ? 'fetch' : 'list-presence'} "${request.doc}" ` +
              `on ${request.attempts} connections (does it support protocol messages 23–26?)`,
          ),
        )
      }
    }
  }

  /** A `doc-list` answer. Returns false when no request matches its id. */
  receiveDocList(body: decoding.Decoder): boolean {
    const start = body.pos
    const requestId = decoding.readVarUint(body)
    body.pos = start
    const request = this.outstanding.find((r) => r.kind === 'list' && r.sent && r.requestId === requestId)
    if (request === undefined) return false
    request.settle(null, body)
    return true
  }

  /** A `fetched-part` for `doc`: kept for the `fetched` that ends the answer. Returns false when no fetch of `doc` is waiting. */
  receiveFetchedPart(doc: string, body: decoding.Decoder): boolean {
    if (!this.outstanding.some((r) => r.kind === 'fetch' && r.sent && r.doc === doc)) return false
    const part = readFetchedPart(body)
    const parts = this.fetchParts.get(doc)
    if (parts === undefined) this.fetchParts.set(doc, [part])
    else parts.push(part)
    return true
  }

  /** A `fetched` answer for `doc`. Returns false when no fetch of `doc` is waiting. */
  receiveFetched(doc: string, body: decoding.Decoder): boolean {
    const request = this.outstanding.find((r) => r.kind === 'fetch' && r.sent && r.doc === doc)
    if (request === undefined) return false
    request.settle(null, body)
    return true
  }

  /**
   * An `error` about `doc`: rejects the oldest sent request for that name.
   * `not-subscribed` concerns subscriptions only and is ignored here.
   */
  receiveError(error: SyncError): boolean {
    if (error.code === ErrorCode.notSubscribed) return false
    const request = this.outstanding.find((r) => r.sent && r.doc === error.doc)
    if (request === undefined) return false
    request.settle(error)
    return true
  }

  /** Rejects every outstanding request (client closed). */
  rejectAll(error: Error): void {
    for (const request of [...this.outstanding]) request.settle(error)
  }

  private start<T>(
    kind: Request['kind'],
    doc: string,
    requestId: number,
    encode: () => Uint8Array,
    read: (body: decoding.Decoder) => T,
    { signal }: RelayRequestOptions,
    stateVector: Uint8Array | null = null,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal))
        return
      }
      const onAbort = (): void => request.settle(abortReason(signal!))
      const request: Request = {
        kind,
        doc,
        requestId,
        encode,
        stateVector,
        sent: false,
        done: false,
        attempts: 0,
        settle: (error, body) => {
          const index = this.outstanding.indexOf(request)
          if (index === -1) return
          this.outstanding.splice(index, 1)
          request.done = true
          signal?.removeEventListener('abort', onAbort)
          if (error !== null) {
            // parts that came for this request belong to no other
            if (kind === 'fetch' && request.sent) this.fetchParts.delete(doc)
            return reject(error)
          }
          try {
            resolve(read(body!))
          } catch (readError) {
            reject(new SyncError(doc, ErrorCode.malformed, `undecodable answer from the relay: ${String(readError)}`))
          }
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.outstanding.push(request)
      if (this.online) this.transmit(request)
    })
  }

  private transmit(request: Request): void {
    request.sent = true
    request.attempts++
    if (request.kind === 'fetch' && (this.relay().features & RelayFeatures.fetchMany) !== 0) {
      if (this.fetchQueue.push(request) === 1) queueMicrotask(() => this.sendFetches())
      return
    }
    this.send(request.encode())
  }

  /**
   * Sends the fetches transmitted in this turn: one alone as `fetch`, more in
   * `fetch-many` messages of at most {@link MAX_FETCH_DOCS} docs and half the
   * relay's largest frame. Fetches settled meanwhile (aborted) are left out.
   */
  private sendFetches(): void {
    const queued = this.fetchQueue.filter((request) => request.sent && !request.done)
    this.fetchQueue = []
    if (!this.online) return
    const entries = queued.map((request) => ({ request, doc: request.doc, stateVector: request.stateVector! }))
    for (const batch of inBatches(entries, MAX_FETCH_DOCS, this.relay().maxMessageBytes / 2)) {
      this.send(batch.length === 1 ? batch[0]!.request.encode() : encodeFetchMany(batch))
    }
  }
}

const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error(`the request was aborted${signal.reason ? `: ${String(signal.reason)}` : ''}`)
