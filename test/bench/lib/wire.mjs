/**
 * Wire formats the load generators speak, without Yjs work on the hot path:
 *
 * - `yws`: y-websocket (`varUint(type) • body`), spoken by the raw floor,
 *   `@y/websocket-server` and Concord's `/<docName>` endpoint;
 * - `mux`: Concord's multiplexed protocol (`varUint(type) • varString(doc) • body`);
 * - `hocuspocus`: Hocuspocus' protocol (`varString(doc) • varUint(type) • body`).
 *
 * Plus hand-encoded Yjs updates: one client appending to its own root-level
 * Y.Text, byte for byte what Yjs itself would encode (checked by the smoke
 * test), so a load generator can produce 100,000 valid updates in
 * milliseconds and recognise each one on delivery by (client, clock).
 *
 * @module bench/lib/wire
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'

/** y-protocols sync sub-types. */
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

/** An empty Yjs update (no structs, empty delete set), e.g. step 2 of an empty doc. */
export const EMPTY_UPDATE = new Uint8Array([0, 0])
/** The state vector of an empty doc. */
export const EMPTY_STATE_VECTOR = new Uint8Array([0])

/**
 * The Yjs (v1) update by which client `client` appends `text` (ASCII, one
 * clock per character) at clock `clock` to the root Y.Text named `key`,
 * right after its own previous character.
 */
export const textAppendUpdate = (client, clock, key, text) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1) // struct groups: one client
  encoding.writeVarUint(e, 1) // structs of that client
  encoding.writeVarUint(e, client)
  encoding.writeVarUint(e, clock)
  if (clock === 0) {
    encoding.writeUint8(e, 4) // ContentString, no origin: parent follows
    encoding.writeVarUint(e, 1) // parent is a root type, by key
    encoding.writeVarString(e, key)
  } else {
    encoding.writeUint8(e, 0x80 | 4) // ContentString with a left origin
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock - 1)
  }
  encoding.writeVarString(e, text)
  encoding.writeVarUint(e, 0) // empty delete set
  return encoding.toUint8Array(e)
}

/** Reads (client, clock) of the first struct of an update, at the decoder's position. */
export const readUpdateId = (decoder) => {
  decoding.readVarUint(decoder) // length prefix of the varUint8Array
  decoding.readVarUint(decoder) // struct groups
  decoding.readVarUint(decoder) // structs
  const client = decoding.readVarUint(decoder)
  const clock = decoding.readVarUint(decoder)
  return { client, clock }
}

/**
 * Every (client, clock) an update holds, at the decoder's position: the
 * update of one client's struct without Yjs work, a merged one (several
 * clients' appends, as relay instances pass them on to each other) with
 * `Y.parseUpdateMeta`. Calls `found(client, clock)` for each.
 */
export const forEachUpdateId = (decoder, found) => {
  const start = decoder.pos
  const length = decoding.readVarUint(decoder)
  const bodyStart = decoder.pos
  const groups = decoding.readVarUint(decoder)
  const structs = decoding.readVarUint(decoder)
  if (groups === 1 && structs === 1) {
    const client = decoding.readVarUint(decoder)
    found(client, decoding.readVarUint(decoder))
    return
  }
  decoder.pos = start
  const { from, to } = Y.parseUpdateMeta(decoder.arr.subarray(bodyStart, bodyStart + length))
  for (const [client, first] of from) for (let clock = first; clock < to.get(client); clock++) found(client, clock)
}

/**
 * The clock a state vector (as sent in a Concord `ack`) holds for `client`,
 * reading from the decoder's position (at the varUint8Array's length); -1 if absent.
 */
export const readStateVectorClock = (decoder, client) => {
  decoding.readVarUint(decoder) // byte length
  const n = decoding.readVarUint(decoder)
  for (let i = 0; i < n; i++) {
    const c = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    if (c === client) return clock
  }
  return -1
}

const syncMessage = (header, sub, payload) => {
  const e = encoding.createEncoder()
  header(e)
  encoding.writeVarUint(e, sub)
  encoding.writeVarUint8Array(e, payload)
  return encoding.toUint8Array(e)
}

/**
 * A protocol: how to encode the messages a client sends and how to classify
 * what it receives. `parse` returns `{ kind, doc, decoder }` where kind is one
 * of `step1 | step2 | update | ack | status | auth | other` and the decoder is
 * positioned at the payload (the varUint8Array of sync messages and acks).
 */
export const protocols = {
  yws: {
    name: 'yws',
    path: (doc) => `/${doc}`,
    sync: (_doc, sub, payload) => syncMessage((e) => encoding.writeVarUint(e, 0), sub, payload),
    awareness: (_doc, update) => {
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint8Array(e, update)
      return encoding.toUint8Array(e)
    },
    parse: (data, doc) => {
      const decoder = decoding.createDecoder(data)
      const type = decoding.readVarUint(decoder)
      if (type !== 0) return { kind: 'other', doc, decoder }
      return { kind: SYNC_KIND[decoding.readVarUint(decoder)] ?? 'other', doc, decoder }
    },
  },
  mux: {
    name: 'mux',
    path: () => '/.concord/v1',
    sync: (doc, sub, payload) =>
      syncMessage(
        (e) => {
          encoding.writeVarUint(e, 0)
          encoding.writeVarString(e, doc)
        },
        sub,
        payload,
      ),
    subscribe: (doc) => {
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, 16)
      encoding.writeVarString(e, doc)
      return encoding.toUint8Array(e)
    },
    awareness: (doc, update) => {
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, 1)
      encoding.writeVarString(e, doc)
      encoding.writeVarUint8Array(e, update)
      return encoding.toUint8Array(e)
    },
    parse: (data) => {
      const decoder = decoding.createDecoder(data)
      const type = decoding.readVarUint(decoder)
      const doc = decoding.readVarString(decoder)
      if (type === 0) return { kind: SYNC_KIND[decoding.readVarUint(decoder)] ?? 'other', doc, decoder }
      if (type === 18) return { kind: 'ack', doc, decoder }
      if (type === 19) {
        const code = decoding.readVarUint(decoder)
        return { kind: 'error', doc, decoder, error: `${code}: ${decoding.readVarString(decoder)}` }
      }
      return { kind: 'other', doc, decoder }
    },
  },
  hocuspocus: {
    name: 'hocuspocus',
    path: () => '/',
    sync: (doc, sub, payload) =>
      syncMessage(
        (e) => {
          encoding.writeVarString(e, doc)
          encoding.writeVarUint(e, 0)
        },
        sub,
        payload,
      ),
    /** Auth message with a token; Hocuspocus waits for it before anything else of the doc. */
    auth: (doc, token = '') => {
      const e = encoding.createEncoder()
      encoding.writeVarString(e, doc)
      encoding.writeVarUint(e, 2) // Auth
      encoding.writeVarUint(e, 0) // Token
      encoding.writeVarString(e, token)
      return encoding.toUint8Array(e)
    },
    awareness: (doc, update) => {
      const e = encoding.createEncoder()
      encoding.writeVarString(e, doc)
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint8Array(e, update)
      return encoding.toUint8Array(e)
    },
    parse: (data) => {
      const decoder = decoding.createDecoder(data)
      const doc = decoding.readVarString(decoder)
      const type = decoding.readVarUint(decoder)
      if (type === 0 || type === 4) return { kind: SYNC_KIND[decoding.readVarUint(decoder)] ?? 'other', doc, decoder }
      if (type === 8) return { kind: 'status', doc, decoder, ok: decoding.readVarUint(decoder) === 1 }
      if (type === 2) {
        const sub = decoding.readVarUint(decoder)
        if (sub === 1) return { kind: 'error', doc, decoder, error: `permission denied: ${decoding.readVarString(decoder)}` }
        return { kind: 'auth', doc, decoder }
      }
      return { kind: 'other', doc, decoder }
    },
  },
}

const SYNC_KIND = ['step1', 'step2', 'update']

/** A `ws` WebSocket's bytes on the wire so far (TCP payload: upgrade, frame headers, masks, messages). */
export const socketBytes = (ws) => {
  const socket = ws._socket
  return socket ? { read: socket.bytesRead, written: socket.bytesWritten } : { read: 0, written: 0 }
}
