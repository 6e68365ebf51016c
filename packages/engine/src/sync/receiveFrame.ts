/**
 * Where each message from the relay goes. A frame is decoded once and handed
 * to the part of the sync client it is for:
 *
 * | message (doc)                                   | goes to |
 * |---|---|
 * | `hello`, `authenticated`, `pong`, `error` (`""`) | the client's handshake ({@link FrameRoutes.connection}) |
 * | `resumed` (`""`)                                 | the same; each entry to the open handle of its doc |
 * | `doc-list`, `fetched`, `fetched-part`, `presence` | {@link RelayRequests} |
 * | `fetched-many` (`""`)                            | the same, entry by entry, as `fetched` of its doc |
 * | `batch` (`""`)                                   | each of its messages as if it had come alone |
 * | `catalog-changed` (a workspace)                  | {@link CatalogWatches} |
 * | `authors`                                        | a fetch in flight, and the open handle |
 * | `error` (a doc, prefix or workspace)             | the oldest request for that name, the watch of it, and the open handle |
 * | `sync`, `awareness`, `query-awareness`, `ack`    | the open handle of the doc |
 *
 * A frame that is not binary or not decodable, a truncated body, and a
 * listener that throws while a message is handled are reported as
 * `malformed` errors; nothing is thrown.
 *
 * @module sync/receiveFrame
 */
import { inflateSync } from 'fflate'
import * as decoding from 'lib0/decoding'
import {
  ErrorCode,
  MessageType,
  decodeMessage,
  readAuthors,
  readBatch,
  readCatalogChanged,
  readError,
  readFetchedMany,
} from '../protocol/messages.js'
import type { CatalogWatches } from './CatalogWatches.js'
import type { DocHandle } from './DocHandle.js'
import type { RelayRequests } from './RelayRequests.js'
import { SyncError, describeError } from './SyncError.js'

/** The parts of a sync client that messages from the relay go to. */
export interface FrameRoutes {
  /** Outstanding `list-docs`, `fetch` and `list-presence` requests. */
  readonly requests: RelayRequests
  /** The watched workspaces. */
  readonly watches: CatalogWatches
  /** The open handle of `doc`, if any. */
  handle(doc: string): DocHandle | undefined
  /** A message about the whole connection (doc `""`). */
  connection(type: number, body: decoding.Decoder): void
  /** Reports a frame or message that could not be handled. */
  reportError(error: SyncError): void
}

/** Decodes one frame from the relay and hands it to the part it is for. */
export const receiveFrame = (routes: FrameRoutes, data: unknown): void => {
  let bytes: Uint8Array
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
  else if (data instanceof Uint8Array) bytes = data
  else {
    routes.reportError(new SyncError('', ErrorCode.malformed, 'unexpected frame from the relay: expected binary data (ArrayBuffer)'))
    return
  }
  let type: number
  let doc: string
  let body: decoding.Decoder
  try {
    ;({ type, doc, body } = decodeMessage(bytes))
  } catch (error) {
    routes.reportError(new SyncError('', ErrorCode.malformed, `undecodable message from the relay: ${describeError(error)}`))
    return
  }
  if (type === MessageType.batch && doc === '') {
    let messages: Uint8Array[]
    try {
      messages = readBatch(body, (bytes) => inflateSync(bytes))
    } catch (error) {
      routes.reportError(new SyncError('', ErrorCode.malformed, `undecodable batch from the relay: ${describeError(error)}`))
      return
    }
    for (const message of messages) receiveFrame(routes, message)
    return
  }
  try {
    if (type === MessageType.fetchedMany && doc === '') {
      for (const entry of readFetchedMany(body)) routes.requests.receiveFetched(entry.doc, decoding.createDecoder(entry.body))
    } else if (doc === '') routes.connection(type, body)
    else if (type === MessageType.docList) routes.requests.receiveDocList(body)
    else if (type === MessageType.fetched) routes.requests.receiveFetched(doc, body)
    else if (type === MessageType.fetchedPart) routes.requests.receiveFetchedPart(doc, body)
    else if (type === MessageType.presence) routes.requests.receivePresence(body)
    else if (type === MessageType.catalogChanged) routes.watches.changed(doc, readCatalogChanged(body))
    else if (type === MessageType.authors) {
      const authors = readAuthors(body)
      routes.requests.receiveAuthors(doc, authors)
      routes.handle(doc)?.receiveAuthors(authors)
    } else {
      if (type === MessageType.error) {
        // A refused list-docs / fetch names the doc too; the open handle (if any) hears it as well.
        const start = body.pos
        const { code, reason } = readError(body)
        body.pos = start
        const error = new SyncError(doc, code, reason)
        // A refused watch names the workspace, as a refused list-presence of it does: both are told.
        routes.requests.receiveError(error)
        routes.watches.error(error)
      }
      routes.handle(doc)?.receive(type, body)
    }
  } catch (error) {
    // A truncated body, or a listener that threw while the message was handled.
    routes.reportError(
      new SyncError(doc, ErrorCode.malformed, `failed to handle a message of type ${type} from the relay: ${describeError(error)}`),
    )
  }
}
