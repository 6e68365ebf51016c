/**
 * The Concord wire protocol: message types, error codes and the encoders and
 * decoders for the multiplexed endpoint. See docs/PROTOCOL.md for the
 * byte-level description.
 *
 * Every multiplexed message is
 *
 *     varUint(messageType) • varString(docName) • body
 *
 * Message types 0–3 are the y-protocols / y-websocket types; their bodies are
 * exactly what a y-websocket connection carries after its own type byte, so
 * `syncProtocol.readSyncMessage` and `awarenessProtocol.applyAwarenessUpdate`
 * read them unchanged.
 *
 * @example
 *   const bytes = encodeAck('acme/T-1', Y.encodeStateVector(doc))
 *   const msg = decodeMessage(bytes) // { type: MessageType.ack, doc: 'acme/T-1', ... }
 *
 * Longer than 400 lines because every message type has its encoder and its
 * branch in `decodeMessage` next to each other, so a change to one message
 * is a change to one place; the file is a list of small functions.
 *
 * @module protocol
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** Path of the multiplexed endpoint. A doc name segment cannot start with `.`, so it never collides with `/<docName>`. */
export const MUX_PATH = '/.concord/v1'

/** Version announced in the relay's `hello` message. */
export const PROTOCOL_VERSION = 1

/** Message types. 0–3 match y-protocols; 16+ are Concord's own. */
export const MessageType = {
  /** y-protocols sync message (step 1, step 2 or update). */
  sync: 0,
  /** y-protocols awareness update (varUint8Array). */
  awareness: 1,
  /** y-protocols auth message. */
  auth: 2,
  /** Ask the relay for every awareness state of the doc. */
  queryAwareness: 3,
  /** client → relay: start syncing a doc on this socket. */
  subscribe: 16,
  /** client → relay: stop syncing a doc on this socket. */
  unsubscribe: 17,
  /** relay → client: varUint8Array(state vector) durably stored for the doc. */
  ack: 18,
  /** relay → client: varUint(code) • varString(reason). Doc "" means the whole connection. */
  error: 19,
  /**
   * relay → client, doc "": varUint(protocol version) • varString(relay version) •
   * varUint(max payload bytes, 0 = unknown) • [varUint(features)] ({@link RelayFeatures};
   * relays before them send none). First message on a socket.
   */
  hello: 20,
  /** client → relay, doc "": liveness probe; the relay answers with `pong`. */
  ping: 21,
  /** relay → client, doc "": answer to `ping`. */
  pong: 22,
  /**
   * client → relay, doc = name prefix (e.g. `"acme/"`): list stored docs.
   * Body: varUint(requestId) • varString(after) • varUint(limit) •
   * [varUint(flags)]; flag 1 ({@link ListFlags.seqs}): with each doc's change
   * sequence. Answered by `docList`. Relays before the flags ignore them.
   */
  listDocs: 23,
  /**
   * relay → client, doc = the prefix asked for. Body: varUint(requestId) •
   * varUint(count) • count × varString(name) • varUint(more: 0 | 1) •
   * [count × varUint(seq)] (only when asked for with {@link ListFlags.seqs}).
   * Names are sorted; ask again with `after` = the last name while `more` is 1.
   */
  docList: 24,
  /**
   * client → relay: the doc's state without subscribing. Body:
   * varUint8Array(client state vector). Answered by `fetched` (or `error`).
   */
  fetch: 25,
  /**
   * relay → client: answer to `fetch`. Body: varUint8Array(update the client
   * lacks) • varUint8Array(durably stored state vector).
   */
  fetched: 26,
  /**
   * relay → client, doc "": the connection is authenticated (after a token in
   * the upgrade request or an `auth` message). Body: varString(userId) •
   * varString(name) • varUint(token expiry, seconds since epoch; 0 = none).
   */
  authenticated: 27,
  /**
   * relay → client: who wrote with which Yjs client id in the doc. Body:
   * varUint(n) • n × (varUint(clientId) • varString(userId) • varString(name)).
   * Sent with every subscription (all bindings, before the sync step 2), before
   * every `fetched`, and to every subscriber when new bindings are made.
   */
  authors: 28,
  /** client → relay, doc = workspace id: who was seen in the workspace. Body: varUint(requestId). */
  listPresence: 29,
  /**
   * relay → client, doc = workspace id. Body: varUint(requestId) • varUint(n) •
   * n × (varString(userId) • varString(name) • varUint(lastSeen, ms since epoch) • varUint(online: 0 | 1)).
   */
  presence: 30,
  /**
   * client → relay, doc = workspace id: tell me, from now on, which docs of
   * the workspace change (live lists). Empty body. Refused with `error`
   * (permission-denied, limit-exceeded, invalid-doc-name); otherwise not answered.
   */
  watchCatalog: 31,
  /** client → relay, doc = workspace id: stop a `watchCatalog`. Empty body. */
  unwatchCatalog: 32,
  /**
   * relay → client, doc = workspace id: docs of a watched workspace whose
   * changes the relay stored. Body: varUint(n) • n × varString(docName).
   * Several commits of one doc in a short window are one name.
   */
  catalogChanged: 33,
  /**
   * relay → client: part of the answer to `fetch`, when that answer is larger
   * than the relay's chunk size. Body: varUint8Array(Yjs update). Zero or more
   * parts come before the `fetched` that ends the answer; the whole answer is
   * the parts and the `fetched` update merged (each one is a valid update).
   */
  fetchedPart: 34,
  /**
   * client → relay, doc "": subscribe many docs at once, each with the
   * client's state vector (a `subscribe` and a sync step 1 per doc, in one
   * message). Body: varUint(n) • n × (varString(docName) •
   * varUint8Array(stateVector)). Only to a relay that announces
   * {@link RelayFeatures.resume}. Answered by `resumed` (and `error` per doc).
   */
  resume: 35,
  /**
   * relay → client, doc "": the answer to docs of a `resume`, several docs per
   * message. Body: varUint(n) • n × {@link ResumedDoc} (see
   * {@link encodeResumed}). Each doc's entry comes before any live update of
   * that doc on the socket.
   */
  resumed: 36,
  /**
   * client → relay, doc "": `fetch` of many docs in one message (a new
   * device or a catch-up pulling records). Body: varUint(n) • n ×
   * (varString(docName) • varUint8Array(clientStateVector)). Each doc is
   * answered as its own `fetch` would be (`authors`, `fetched-part`s,
   * `fetched`, or an `error` naming it): one doc's answers in order, those
   * of different docs in any order, as for `fetch`. Only to
   * a relay that announces {@link RelayFeatures.fetchMany}; at most
   * {@link MAX_FETCH_DOCS} entries.
   */
  fetchMany: 37,
  /**
   * relay → client, doc "": answers to the docs of a `fetch-many`, several
   * per message. Body: varUint(n) • n × (varString(docName) •
   * varUint8Array(body of a `fetched` message)). Sent only to a client that
   * sent `fetch-many`; each entry means what a `fetched` of that doc means.
   */
  fetchedMany: 38,
  /**
   * both directions, doc "": several messages in one frame, handled one
   * after the other exactly as if each had come alone. Body:
   * varUint(flags) • varUint8Array(payload); payload := varUint(n) • n ×
   * varUint8Array(message); flag {@link BatchFlags.deflated}: the payload is
   * raw DEFLATE (RFC 1951). A batch never holds a batch. Only to a relay that
   * announces {@link RelayFeatures.batch}; the relay sends batches only on a
   * socket whose client sent one. See {@link encodeBatches}.
   */
  batch: 39,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

/** Error codes carried by `error` messages. */
export const ErrorCode = {
  /** The message could not be decoded. */
  malformed: 1,
  /** The message type is not known. */
  unknownType: 2,
  /** The doc name is not valid (see {@link validateDocName}). */
  invalidDocName: 3,
  /** A doc message arrived for a doc that is not subscribed on this socket. */
  notSubscribed: 4,
  /** The relay could not load or store the doc; updates are kept and retried. */
  storageUnavailable: 5,
  /** The connection may not do this (e.g. write to a read-only doc). */
  permissionDenied: 6,
  /** A message or doc is larger than the relay allows. */
  tooLarge: 7,
  /** Authentication is missing or invalid. */
  unauthorized: 8,
  /** The update is not a valid Yjs update. */
  invalidUpdate: 9,
  /** A rate or count limit was exceeded. */
  limitExceeded: 10,
  /** The relay is shutting down. */
  shuttingDown: 11,
  /**
   * An update depends on changes the relay does not have: it was not kept,
   * and a relay sync step 1 follows so the client sends the whole change.
   */
  missingDependencies: 12,
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** Error codes a client must not retry blindly: the same input will be refused again. */
export const PERMANENT_ERRORS: ReadonlySet<number> = new Set<number>([
  ErrorCode.invalidDocName,
  ErrorCode.permissionDenied,
  ErrorCode.tooLarge,
  ErrorCode.unauthorized,
  ErrorCode.invalidUpdate,
])

/** WebSocket close codes used by the relay. */
export const CloseCode = {
  /** Relay shutting down. */
  goingAway: 1001,
  /** Malformed or unexpected message. */
  protocolError: 1002,
  /** Policy violation (auth, origin, limits). */
  policyViolation: 1008,
  /** Frame larger than the relay's maxPayload. */
  messageTooBig: 1009,
  /** Unexpected relay error. */
  internalError: 1011,
} as const

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/
/** Longest accepted doc name, in characters. */
export const MAX_DOC_NAME_LENGTH = 512

/**
 * Checks a doc name. Names are `/`-separated segments of ASCII letters,
 * digits, `_`, `-` and `.`; a segment may not start with `.` (no `..`, and the
 * multiplexed endpoint's path stays reserved). Records are `<workspaceId>/<recordId>`.
 *
 * @returns null when valid, otherwise a human-readable reason.
 */
export const validateDocName = (name: string): string | null => {
  if (typeof name !== 'string' || name.length === 0) return 'doc name is empty'
  if (name.length > MAX_DOC_NAME_LENGTH) return `doc name is longer than ${MAX_DOC_NAME_LENGTH} characters`
  for (const segment of name.split('/')) {
    if (segment.length === 0) return 'doc name has an empty path segment'
    if (!SEGMENT.test(segment)) {
      return `doc name segment "${segment.slice(0, 64)}" must use A-Z a-z 0-9 _ - . and not start with "."`
    }
  }
  return null
}

/** A decoded multiplexed message. `body` is positioned right after the doc name. */
export interface MuxMessage {
  type: number
  doc: string
  body: decoding.Decoder
}

/**
 * Reads the header of a multiplexed message. Throws on truncated input.
 */
export const decodeMessage = (data: Uint8Array): MuxMessage => {
  const body = decoding.createDecoder(data)
  const type = decoding.readVarUint(body)
  const doc = decoding.readVarString(body)
  return { type, doc, body }
}

/** Starts a multiplexed message: writes type and doc name. */
export const startMessage = (type: MessageType, doc: string): encoding.Encoder => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, type)
  encoding.writeVarString(encoder, doc)
  return encoder
}

/** `subscribe` message. */
export const encodeSubscribe = (doc: string): Uint8Array => encoding.toUint8Array(startMessage(MessageType.subscribe, doc))

/** `unsubscribe` message. */
export const encodeUnsubscribe = (doc: string): Uint8Array => encoding.toUint8Array(startMessage(MessageType.unsubscribe, doc))

/** `ack` message carrying the durably stored state vector of `doc`. */
export const encodeAck = (doc: string, stateVector: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.ack, doc)
  encoding.writeVarUint8Array(encoder, stateVector)
  return encoding.toUint8Array(encoder)
}

/** `error` message. Use doc "" for errors about the whole connection. */
export const encodeError = (doc: string, code: ErrorCode, reason: string): Uint8Array => {
  const encoder = startMessage(MessageType.error, doc)
  encoding.writeVarUint(encoder, code)
  encoding.writeVarString(encoder, reason)
  return encoding.toUint8Array(encoder)
}

/** What a relay can do beyond protocol version 1 (bits of the optional last field of `hello`). */
export const RelayFeatures = {
  /** The relay understands `resume` (and answers with `resumed`). */
  resume: 1,
  /** The relay understands `fetch-many`. */
  fetchMany: 2,
  /** The relay takes `batch` messages (and sends them on a socket whose client sent one). */
  batch: 4,
} as const

/**
 * `hello` message, the relay's first message on a multiplexed socket.
 * `maxPayload`: largest frame the relay accepts; `features`: {@link RelayFeatures}
 * (0 writes none, as before them, unless a time follows); `time`: the relay's
 * clock as it sends the message, in ms since the Unix epoch (null writes none).
 */
export const encodeHello = (relayVersion: string, maxPayload = 0, features = 0, time: number | null = null): Uint8Array => {
  const encoder = startMessage(MessageType.hello, '')
  encoding.writeVarUint(encoder, PROTOCOL_VERSION)
  encoding.writeVarString(encoder, relayVersion)
  encoding.writeVarUint(encoder, maxPayload)
  if (features !== 0 || time !== null) encoding.writeVarUint(encoder, features)
  if (time !== null) encoding.writeVarUint(encoder, Math.max(0, Math.floor(time)))
  return encoding.toUint8Array(encoder)
}

/** `ping` message. */
export const encodePing = (): Uint8Array => encoding.toUint8Array(startMessage(MessageType.ping, ''))

/** `pong` message. */
export const encodePong = (): Uint8Array => encoding.toUint8Array(startMessage(MessageType.pong, ''))

/** `awareness` message wrapping an encoded awareness update. */
export const encodeAwareness = (doc: string, update: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.awareness, doc)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** `query-awareness` message. */
export const encodeQueryAwareness = (doc: string): Uint8Array => encoding.toUint8Array(startMessage(MessageType.queryAwareness, doc))

/** Reads the body of an `ack` message. */
export const readAck = (body: decoding.Decoder): Uint8Array => decoding.readVarUint8Array(body)

/** Reads the body of an `error` message. */
export const readError = (body: decoding.Decoder): { code: number; reason: string } => {
  const code = decoding.readVarUint(body)
  const reason = decoding.readVarString(body)
  return { code, reason }
}

/** What a relay's `hello` says. */
export interface HelloInfo {
  protocolVersion: number
  relayVersion: string
  /** Largest frame the relay accepts, or null when it did not say. */
  maxPayload: number | null
  /** {@link RelayFeatures} bits (0 from a relay before them). */
  features: number
  /** The relay's clock when it sent the message (ms since the Unix epoch), or null from a relay before it. */
  time: number | null
}

/** Reads the body of a `hello` message. */
export const readHello = (body: decoding.Decoder): HelloInfo => {
  const protocolVersion = decoding.readVarUint(body)
  const relayVersion = decoding.readVarString(body)
  const maxPayload = decoding.hasContent(body) ? decoding.readVarUint(body) : 0
  const features = decoding.hasContent(body) ? decoding.readVarUint(body) : 0
  const time = decoding.hasContent(body) ? decoding.readVarUint(body) : null
  return { protocolVersion, relayVersion, maxPayload: maxPayload === 0 ? null : maxPayload, features, time }
}

/** Most docs one `resume` may name: a relay refuses a longer one whole (`error("", limit-exceeded)`). */
export const MAX_RESUME_DOCS = 1000

/** Most docs one `fetch-many` may name: a relay refuses a longer one whole (`error("", limit-exceeded)`). */
export const MAX_FETCH_DOCS = 1000

/** One doc of a `resume`: its name and the client's state vector of it. */
export interface ResumeEntry {
  doc: string
  stateVector: Uint8Array
}

/**
 * A message (doc "") whose body is `varUint(n) • n × (varString(docName) •
 * varUint8Array(bytes))`: `resume`, `fetch-many` and `fetched-many`.
 */
const encodeDocsWithBytes = <E extends { doc: string }>(
  type: MessageType,
  entries: readonly E[],
  bytesOf: (entry: E) => Uint8Array,
): Uint8Array => {
  const encoder = startMessage(type, '')
  encoding.writeVarUint(encoder, entries.length)
  for (const entry of entries) {
    encoding.writeVarString(encoder, entry.doc)
    encoding.writeVarUint8Array(encoder, bytesOf(entry))
  }
  return encoding.toUint8Array(encoder)
}

/** Reads the body of a message written by {@link encodeDocsWithBytes}. */
const readDocsWithBytes = <E>(body: decoding.Decoder, entry: (doc: string, bytes: Uint8Array) => E): E[] => {
  const count = decoding.readVarUint(body)
  const entries: E[] = []
  for (let i = 0; i < count; i++) {
    const doc = decoding.readVarString(body)
    entries.push(entry(doc, decoding.readVarUint8Array(body)))
  }
  return entries
}

/**
 * `entries` cut into the entries of successive messages of at most
 * `maxDocs` entries and about `maxBytes` each (a message has at least one):
 * for `resume` and `fetch-many`.
 */
export const inBatches = <E extends ResumeEntry>(entries: readonly E[], maxDocs: number, maxBytes: number): E[][] => {
  const batches: E[][] = []
  let batch: E[] = []
  let bytes = 0
  for (const entry of entries) {
    // a name is at most 512 characters (≤ 1.5 KiB in UTF-8), plus length prefixes
    const size = entry.doc.length * 3 + entry.stateVector.byteLength + 8
    if (batch.length >= maxDocs || (batch.length > 0 && bytes + size > maxBytes)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(entry)
    bytes += size
  }
  if (batch.length > 0) batches.push(batch)
  return batches
}

/** `resume` message (doc ""): subscribes every doc of `entries` with its state vector. */
export const encodeResume = (entries: readonly ResumeEntry[]): Uint8Array =>
  encodeDocsWithBytes(MessageType.resume, entries, (entry) => entry.stateVector)

/** `fetch-many` message (doc ""): a `fetch` of every doc of `entries` with the client's state vector of it. */
export const encodeFetchMany = (entries: readonly ResumeEntry[]): Uint8Array =>
  encodeDocsWithBytes(MessageType.fetchMany, entries, (entry) => entry.stateVector)

/** Reads the body of a `resume` or `fetch-many` message (the same layout). */
export const readResume = (body: decoding.Decoder): ResumeEntry[] => readDocsWithBytes(body, (doc, stateVector) => ({ doc, stateVector }))

/** Bits of a {@link ResumedDoc}'s `flags`: which fields follow. */
export const ResumedFlags = {
  /** The relay's state vector follows (its sync step 1): the relay lacks some of the client's changes; answer with a sync step 2. */
  relayStateVector: 1,
  /** The durably stored state vector follows: the subscription's first ack. */
  ack: 2,
  /** The subscription's first ack is the state vector the client sent in `resume` (no bytes follow). */
  ackIsClientState: 4,
  /** The sync step 2 comes in parts (sync `update`s, the last one a sync step 2) after this message; no update bytes follow. */
  step2InParts: 8,
} as const

/**
 * The relay's answer for one doc of a `resume`. Without {@link ResumedFlags.ack}
 * and {@link ResumedFlags.ackIsClientState} the first ack comes as an `ack`
 * message, after the storage commit of what the doc holds.
 */
export interface ResumedDoc {
  doc: string
  /** The relay's state vector when it lacks some of the client's changes (its sync step 1), else null. */
  relayStateVector: Uint8Array | null
  /** The first ack: the durable state vector, `'client-state'` (the one the client sent), or null (an `ack` message follows). */
  ack: Uint8Array | 'client-state' | null
  /** The sync step 2 (what the client lacks), or null when it comes in parts. */
  update: Uint8Array | null
}

/** Writes one {@link ResumedDoc} (the relay builds a `resumed` message doc by doc). */
export const writeResumedDoc = (encoder: encoding.Encoder, entry: ResumedDoc): void => {
  const { doc, relayStateVector, ack, update } = entry
  let flags = 0
  if (relayStateVector !== null) flags |= ResumedFlags.relayStateVector
  if (ack === 'client-state') flags |= ResumedFlags.ackIsClientState
  else if (ack !== null) flags |= ResumedFlags.ack
  if (update === null) flags |= ResumedFlags.step2InParts
  encoding.writeVarString(encoder, doc)
  encoding.writeVarUint(encoder, flags)
  if (relayStateVector !== null) encoding.writeVarUint8Array(encoder, relayStateVector)
  if (ack !== null && ack !== 'client-state') encoding.writeVarUint8Array(encoder, ack)
  if (update !== null) encoding.writeVarUint8Array(encoder, update)
}

/** `resumed` message with `entries`. */
export const encodeResumed = (entries: readonly ResumedDoc[]): Uint8Array => {
  const encoder = startMessage(MessageType.resumed, '')
  encoding.writeVarUint(encoder, entries.length)
  for (const entry of entries) writeResumedDoc(encoder, entry)
  return encoding.toUint8Array(encoder)
}

/** Reads the body of a `resumed` message. */
export const readResumed = (body: decoding.Decoder): ResumedDoc[] => {
  const count = decoding.readVarUint(body)
  const entries: ResumedDoc[] = []
  for (let i = 0; i < count; i++) {
    const doc = decoding.readVarString(body)
    const flags = decoding.readVarUint(body)
    const relayStateVector = flags & ResumedFlags.relayStateVector ? decoding.readVarUint8Array(body) : null
    const ack = flags & ResumedFlags.ackIsClientState ? 'client-state' : flags & ResumedFlags.ack ? decoding.readVarUint8Array(body) : null
    const update = flags & ResumedFlags.step2InParts ? null : decoding.readVarUint8Array(body)
    entries.push({ doc, relayStateVector, ack, update })
  }
  return entries
}

/** Most names a `docList` answer carries. */
export const MAX_LIST_LIMIT = 5000

/** Flags of a `list-docs` request (bits of its optional last field). */
export const ListFlags = {
  /**
   * Answer with each doc's change sequence: the number of the last change
   * the relay stored of it, which grows with every stored change and never
   * goes back (0: nothing stored yet). Equal sequences mean nothing new.
   */
  seqs: 1,
} as const

/** `list-docs` request; `flags` are {@link ListFlags} (0 writes none, as before the flags). */
export const encodeListDocs = (prefix: string, requestId: number, after = '', limit = MAX_LIST_LIMIT, flags = 0): Uint8Array => {
  const encoder = startMessage(MessageType.listDocs, prefix)
  encoding.writeVarUint(encoder, requestId)
  encoding.writeVarString(encoder, after)
  encoding.writeVarUint(encoder, limit)
  if (flags !== 0) encoding.writeVarUint(encoder, flags)
  return encoding.toUint8Array(encoder)
}

/** Reads the body of a `list-docs` request (flags 0 when it has none). */
export const readListDocs = (body: decoding.Decoder): { requestId: number; after: string; limit: number; flags: number } => {
  const requestId = decoding.readVarUint(body)
  const after = decoding.readVarString(body)
  const limit = decoding.readVarUint(body)
  const flags = decoding.hasContent(body) ? decoding.readVarUint(body) : 0
  return { requestId, after, limit, flags }
}

/** `doc-list` answer; `seqs` (one per name, in the same order) only when asked for with {@link ListFlags.seqs}. */
export const encodeDocList = (
  prefix: string,
  requestId: number,
  names: readonly string[],
  more: boolean,
  seqs?: readonly number[],
): Uint8Array => {
  if (seqs !== undefined && seqs.length !== names.length) throw new Error('encodeDocList: one seq per name')
  const encoder = startMessage(MessageType.docList, prefix)
  encoding.writeVarUint(encoder, requestId)
  encoding.writeVarUint(encoder, names.length)
  for (const name of names) encoding.writeVarString(encoder, name)
  encoding.writeVarUint(encoder, more ? 1 : 0)
  for (const seq of seqs ?? []) encoding.writeVarUint(encoder, seq)
  return encoding.toUint8Array(encoder)
}

/**
 * One byte, one character: decodes ASCII as itself (see {@link readNames});
 * null where the platform's `TextDecoder` knows only UTF-8.
 */
const byteDecoder = ((): TextDecoder | null => {
  try {
    return new TextDecoder('latin1')
  } catch {
    return null
  }
})()

/**
 * Reads `count` varStrings. Doc names are ASCII (see {@link validateDocName}),
 * so all of them are decoded in one call and cut by their byte lengths: a
 * `TextDecoder` call per name costs a browser ~3 µs, 15 ms for a page of
 * 5000 names. Any other byte and they are read one by one, as UTF-8.
 */
const readNames = (body: decoding.Decoder, count: number): string[] => {
  const start = body.pos
  const spans: number[] = []
  let ascii = true
  const { arr } = body
  for (let i = 0; i < count; i++) {
    const length = decoding.readVarUint(body)
    const at = body.pos
    if (at + length > arr.length) throw new RangeError('a name runs past the end of the message')
    for (let k = at; k < at + length && ascii; k++) ascii = arr[k]! < 0x80
    spans.push(at - start, length)
    body.pos = at + length
  }
  if (!ascii || byteDecoder === null) {
    body.pos = start
    return Array.from({ length: count }, () => decoding.readVarString(body))
  }
  const text = byteDecoder.decode(body.arr.subarray(start, body.pos))
  const names: string[] = []
  for (let i = 0; i < spans.length; i += 2) names.push(text.slice(spans[i], spans[i]! + spans[i + 1]!))
  return names
}

/**
 * Reads the body of a `doc-list` answer. `seqs` is null when the answer
 * carries none (a relay before {@link ListFlags}, or they were not asked
 * for); a page without names carries none either way.
 */
export const readDocList = (body: decoding.Decoder): { requestId: number; names: string[]; more: boolean; seqs: number[] | null } => {
  const requestId = decoding.readVarUint(body)
  const count = decoding.readVarUint(body)
  const names = readNames(body, count)
  const more = decoding.readVarUint(body) === 1
  let seqs: number[] | null = null
  if (decoding.hasContent(body)) {
    seqs = []
    for (let i = 0; i < count; i++) seqs.push(decoding.readVarUint(body))
  }
  return { requestId, names, more, seqs }
}

/** `fetch` request. */
export const encodeFetch = (doc: string, stateVector: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.fetch, doc)
  encoding.writeVarUint8Array(encoder, stateVector)
  return encoding.toUint8Array(encoder)
}

/**
 * `fetched` answer; `seq`, when given, is the doc's change sequence (see
 * {@link ListFlags.seqs}) of a state the answer holds everything of.
 */
export const encodeFetched = (doc: string, update: Uint8Array, durableStateVector: Uint8Array, seq?: number): Uint8Array => {
  const encoder = startMessage(MessageType.fetched, doc)
  writeFetchedBody(encoder, update, durableStateVector, seq)
  return encoding.toUint8Array(encoder)
}

/** The body of a `fetched` answer alone (an entry of `fetched-many`). */
export const encodeFetchedBody = (update: Uint8Array, durableStateVector: Uint8Array, seq?: number): Uint8Array => {
  const encoder = encoding.createEncoder()
  writeFetchedBody(encoder, update, durableStateVector, seq)
  return encoding.toUint8Array(encoder)
}

const writeFetchedBody = (encoder: encoding.Encoder, update: Uint8Array, durableStateVector: Uint8Array, seq?: number): void => {
  encoding.writeVarUint8Array(encoder, update)
  encoding.writeVarUint8Array(encoder, durableStateVector)
  if (seq !== undefined) encoding.writeVarUint(encoder, seq)
}

/** One answer of a `fetched-many`: the doc and the body of its `fetched`. */
export interface FetchedEntry {
  doc: string
  body: Uint8Array
}

/** `fetched-many` message (doc ""): the answers of several docs of a `fetch-many`. */
export const encodeFetchedMany = (entries: readonly FetchedEntry[]): Uint8Array =>
  encodeDocsWithBytes(MessageType.fetchedMany, entries, (entry) => entry.body)

/** Reads the body of a `fetched-many` message (each entry's body is read with {@link readFetched}). */
export const readFetchedMany = (body: decoding.Decoder): FetchedEntry[] => readDocsWithBytes(body, (doc, bytes) => ({ doc, body: bytes }))

/** Reads the body of a `fetched` answer (`seq` null from a relay that does not send it). */
export const readFetched = (body: decoding.Decoder): { update: Uint8Array; stateVector: Uint8Array; seq: number | null } => {
  const update = decoding.readVarUint8Array(body)
  const stateVector = decoding.readVarUint8Array(body)
  const seq = decoding.hasContent(body) ? decoding.readVarUint(body) : null
  return { update, stateVector, seq }
}

/** `fetched-part`: one part of a `fetch` answer that comes in parts. */
export const encodeFetchedPart = (doc: string, update: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.fetchedPart, doc)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Reads the body of a `fetched-part` message: its update. */
export const readFetchedPart = (body: decoding.Decoder): Uint8Array => decoding.readVarUint8Array(body)

/** Connection-level `auth` message (doc ""): authenticates or refreshes the token. */
export const encodeAuth = (token: string): Uint8Array => {
  const encoder = startMessage(MessageType.auth, '')
  encoding.writeVarString(encoder, token)
  return encoding.toUint8Array(encoder)
}

/** `authenticated` message. */
export const encodeAuthenticated = (userId: string, name: string, expiresAtSeconds: number): Uint8Array => {
  const encoder = startMessage(MessageType.authenticated, '')
  encoding.writeVarString(encoder, userId)
  encoding.writeVarString(encoder, name)
  encoding.writeVarUint(encoder, expiresAtSeconds)
  return encoding.toUint8Array(encoder)
}

/** Reads the body of an `authenticated` message. */
export const readAuthenticated = (body: decoding.Decoder): { userId: string; name: string; expiresAt: number | null } => {
  const userId = decoding.readVarString(body)
  const name = decoding.readVarString(body)
  const seconds = decoding.readVarUint(body)
  return { userId, name, expiresAt: seconds === 0 ? null : seconds * 1000 }
}

/** One author binding: the user behind a Yjs client id in a doc. */
export interface AuthorInfo {
  clientId: number
  userId: string
  name: string
}

/** `authors` message. */
export const encodeAuthors = (doc: string, authors: readonly AuthorInfo[]): Uint8Array => {
  const encoder = startMessage(MessageType.authors, doc)
  encoding.writeVarUint(encoder, authors.length)
  for (const a of authors) {
    encoding.writeVarUint(encoder, a.clientId)
    encoding.writeVarString(encoder, a.userId)
    encoding.writeVarString(encoder, a.name)
  }
  return encoding.toUint8Array(encoder)
}

/** Reads the body of an `authors` message. */
export const readAuthors = (body: decoding.Decoder): AuthorInfo[] => {
  const count = decoding.readVarUint(body)
  const authors: AuthorInfo[] = []
  for (let i = 0; i < count; i++) {
    const clientId = decoding.readVarUint(body)
    const userId = decoding.readVarString(body)
    const name = decoding.readVarString(body)
    authors.push({ clientId, userId, name })
  }
  return authors
}

/** A user's last-seen record in a workspace. */
export interface PresenceInfo {
  userId: string
  name: string
  /** ms since epoch; now while online */
  lastSeen: number
  online: boolean
}

/** `list-presence` request. */
export const encodeListPresence = (workspace: string, requestId: number): Uint8Array => {
  const encoder = startMessage(MessageType.listPresence, workspace)
  encoding.writeVarUint(encoder, requestId)
  return encoding.toUint8Array(encoder)
}

/** `presence` answer. */
export const encodePresence = (workspace: string, requestId: number, users: readonly PresenceInfo[]): Uint8Array => {
  const encoder = startMessage(MessageType.presence, workspace)
  encoding.writeVarUint(encoder, requestId)
  encoding.writeVarUint(encoder, users.length)
  for (const u of users) {
    encoding.writeVarString(encoder, u.userId)
    encoding.writeVarString(encoder, u.name)
    encoding.writeVarUint(encoder, Math.max(0, Math.round(u.lastSeen)))
    encoding.writeVarUint(encoder, u.online ? 1 : 0)
  }
  return encoding.toUint8Array(encoder)
}

/** Reads the body of a `presence` answer. */
export const readPresence = (body: decoding.Decoder): { requestId: number; users: PresenceInfo[] } => {
  const requestId = decoding.readVarUint(body)
  const count = decoding.readVarUint(body)
  const users: PresenceInfo[] = []
  for (let i = 0; i < count; i++) {
    const userId = decoding.readVarString(body)
    const name = decoding.readVarString(body)
    const lastSeen = decoding.readVarUint(body)
    const online = decoding.readVarUint(body) === 1
    users.push({ userId, name, lastSeen, online })
  }
  return { requestId, users }
}

/** `watch-catalog` request: follow which docs of `workspace` change. */
export const encodeWatchCatalog = (workspace: string): Uint8Array =>
  encoding.toUint8Array(startMessage(MessageType.watchCatalog, workspace))

/** `unwatch-catalog` request. */
export const encodeUnwatchCatalog = (workspace: string): Uint8Array =>
  encoding.toUint8Array(startMessage(MessageType.unwatchCatalog, workspace))

/** `catalog-changed` notice: docs of `workspace` whose changes were stored. */
export const encodeCatalogChanged = (workspace: string, names: readonly string[]): Uint8Array => {
  const encoder = startMessage(MessageType.catalogChanged, workspace)
  encoding.writeVarUint(encoder, names.length)
  for (const name of names) encoding.writeVarString(encoder, name)
  return encoding.toUint8Array(encoder)
}

/** Reads the body of a `catalog-changed` notice. */
export const readCatalogChanged = (body: decoding.Decoder): string[] => {
  const count = decoding.readVarUint(body)
  const names: string[] = []
  for (let i = 0; i < count; i++) names.push(decoding.readVarString(body))
  return names
}

/** Flags of a `batch` message. */
export const BatchFlags = {
  /** The payload is raw DEFLATE (RFC 1951) of the list of messages. */
  deflated: 1,
} as const

/** A batch's payload is compressed only from this size on; below it DEFLATE's block overhead eats the gain. */
export const BATCH_DEFLATE_MIN_BYTES = 256

/** Compresses bytes as raw DEFLATE (the engine uses fflate, the relay Node's zlib). */
export type Deflate = (bytes: Uint8Array) => Uint8Array

/** Bytes a `batch` frame takes besides its payload (type, doc "", flags, payload length), at most. */
const BATCH_HEADER_BYTES = 16

/**
 * Packs `messages` into `batch` messages of at most `maxBytes` each, also
 * once inflated (a message that alone is larger goes out on its own, as it
 * is; so does a lone message). The payload is compressed with `deflate`
 * when that makes it smaller. The result, sent in order, carries the
 * messages in order.
 */
export const encodeBatches = (messages: readonly Uint8Array[], maxBytes: number, deflate: Deflate | null): Uint8Array[] => {
  const frames: Uint8Array[] = []
  let group: Uint8Array[] = []
  let groupBytes = 0
  const close = (): void => {
    if (group.length > 1) frames.push(encodeBatch(group, deflate))
    else if (group.length === 1) frames.push(group[0]!)
    group = []
    groupBytes = 0
  }
  for (const message of messages) {
    // the message, its length prefix and the count's room
    const size = message.byteLength + 8
    if (groupBytes + size > maxBytes - BATCH_HEADER_BYTES) close()
    group.push(message)
    groupBytes += size
  }
  close()
  return frames
}

/** One `batch` message holding `messages` (see {@link MessageType.batch}). */
export const encodeBatch = (messages: readonly Uint8Array[], deflate: Deflate | null): Uint8Array => {
  let payload = encodeBatchList(messages)
  let flags = 0
  if (deflate !== null && payload.byteLength >= BATCH_DEFLATE_MIN_BYTES) {
    const deflated = deflate(payload)
    if (deflated.byteLength < payload.byteLength) {
      payload = deflated
      flags |= BatchFlags.deflated
    }
  }
  return encodeBatchFrame(flags, payload)
}

/** A batch's payload before compression: varUint(n) • n × varUint8Array(message). */
export const encodeBatchList = (messages: readonly Uint8Array[]): Uint8Array => {
  const list = encoding.createEncoder()
  encoding.writeVarUint(list, messages.length)
  for (const message of messages) encoding.writeVarUint8Array(list, message)
  return encoding.toUint8Array(list)
}

/** A `batch` message carrying `payload` with `flags` as given ({@link encodeBatch} chooses them). */
export const encodeBatchFrame = (flags: number, payload: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.batch, '')
  encoding.writeVarUint(encoder, flags)
  encoding.writeVarUint8Array(encoder, payload)
  return encoding.toUint8Array(encoder)
}

/**
 * Reads the body of a `batch` message: its messages, in order. `inflate`
 * undoes the DEFLATE of a compressed payload (and should refuse a payload
 * that inflates beyond what the reader takes).
 *
 * @throws Error on unknown flags, a truncated list, or a batch inside the batch.
 */
export const readBatch = (body: decoding.Decoder, inflate: (bytes: Uint8Array) => Uint8Array): Uint8Array[] => {
  const flags = decoding.readVarUint(body)
  if ((flags & ~BatchFlags.deflated) !== 0) throw new Error(`unknown batch flags ${flags}`)
  const raw = decoding.readVarUint8Array(body)
  const list = decoding.createDecoder((flags & BatchFlags.deflated) !== 0 ? inflate(raw) : raw)
  const n = decoding.readVarUint(list)
  const messages: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const message = decoding.readVarUint8Array(list)
    if (message.byteLength === 0) throw new Error('empty message in a batch')
    // a nested batch would make one frame's work unbounded in depth
    if (message[0] === MessageType.batch) throw new Error('a batch inside a batch')
    messages.push(message)
  }
  if (decoding.hasContent(list)) throw new Error('bytes after the last message of a batch')
  return messages
}
