/**
 * A minimal client of the multiplexed protocol built directly on `ws` and the
 * protocol module, for tests that need to see every message the relay sends.
 */
import { inflateRawSync } from 'node:zlib'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import {
  MessageType,
  MUX_PATH,
  decodeMessage,
  encodePing,
  encodeResume,
  encodeSubscribe,
  readHello,
  readResumed,
  type HelloInfo,
  type ResumedDoc,
  readAck,
  readAuthors,
  readBatch,
  BatchFlags,
  readDocList,
  readPresence,
  readCatalogChanged,
  type AuthorInfo,
  type PresenceInfo,
  readError,
  readFetched,
  readFetchedMany,
  readFetchedPart,
  startMessage,
} from '@concord/engine/protocol'

export interface ReceivedMessage {
  type: number
  doc: string
  /** For acks: the decoded state vector. */
  ack?: Map<number, number>
  /** For errors. */
  error?: { code: number; reason: string }
  /** For doc-list answers. */
  list?: { requestId: number; names: string[]; more: boolean }
  /** For fetched answers (also each entry of a `fetched-many`, recorded as a `fetched` of its doc). */
  fetched?: { update: Uint8Array; stateVector: Uint8Array }
  /** For a `fetched` that came as an entry of a `fetched-many` message: that message's number of entries. */
  bundled?: number
  /** For fetched-part messages: the part of the update (the `fetched` that follows ends the answer). */
  fetchedPart?: Uint8Array
  /** For authors messages. */
  authors?: AuthorInfo[]
  /** For presence answers. */
  presence?: { requestId: number; users: PresenceInfo[] }
  /** For catalog-changed notices: the doc names. */
  catalogChanged?: string[]
  /** For awareness messages: each entry's client id and state (null: removed). */
  awareness?: Array<{ clientId: number; state: Record<string, unknown> | null }>
  /** For sync messages: 0 step 1, 1 step 2, 2 update. */
  syncType?: number
  /** For the relay's hello. */
  hello?: HelloInfo
  /** For resumed answers: the entries, one per doc. */
  resumed?: ResumedDoc[]
  /** For a `batch`: its number of messages and whether its payload was deflated (its messages are recorded after it). */
  batch?: { messages: number; deflated: boolean }
  /** For a message that came in a `batch`: the index of that batch in {@link RawMuxClient.received}. */
  inBatch?: number
}

/** A raw multiplexed connection that records what it receives and applies sync messages to its docs. */
export class RawMuxClient {
  readonly ws: WebSocket
  readonly received: ReceivedMessage[] = []
  readonly docs = new Map<string, Y.Doc>()
  closeEvent: { code: number; reason: string } | null = null
  private readonly opened: Promise<void>
  private listeners: Array<() => void> = []

  /** `token` goes in the URL (`?token=`); `headers` are sent with the upgrade request. */
  constructor(wsUrl: string, options: { token?: string; headers?: Record<string, string> } = {}) {
    const query = options.token === undefined ? '' : `?token=${encodeURIComponent(options.token)}`
    this.ws = new WebSocket(wsUrl + MUX_PATH + query, { headers: options.headers })
    this.ws.binaryType = 'nodebuffer'
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('error', reject)
    })
    this.ws.on('message', (data: Buffer) => this.onMessage(new Uint8Array(data)))
    this.ws.on('close', (code, reason) => {
      this.closeEvent = { code, reason: reason.toString() }
      this.notify()
    })
  }

  open(): Promise<void> {
    return this.opened
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes)
  }

  /** Subscribes and sends sync step 1 for a doc (creating the local Y.Doc). */
  subscribe(name: string): Y.Doc {
    const doc = this.docs.get(name) ?? new Y.Doc()
    this.docs.set(name, doc)
    this.send(encodeSubscribe(name))
    const step1 = startMessage(MessageType.sync, name)
    syncProtocol.writeSyncStep1(step1, doc)
    this.send(encoding.toUint8Array(step1))
    return doc
  }

  /**
   * Subscribes docs (creating local Y.Docs for new names) in one `resume`
   * with their state vectors; the `resumed` entries are applied as they
   * arrive (the relay's step 1 answered with a step 2, the step 2 applied).
   */
  resume(names: readonly string[]): Y.Doc[] {
    const docs = names.map((name) => {
      const doc = this.docs.get(name) ?? new Y.Doc()
      this.docs.set(name, doc)
      return doc
    })
    this.send(encodeResume(names.map((name, i) => ({ doc: name, stateVector: Y.encodeStateVector(docs[i]) }))))
    return docs
  }

  /** Sends a Yjs update for a subscribed doc. */
  sendUpdate(name: string, update: Uint8Array): void {
    const encoder = startMessage(MessageType.sync, name)
    syncProtocol.writeUpdate(encoder, update)
    this.send(encoding.toUint8Array(encoder))
  }

  /** Resolves with the first received message (from now on, or already received when `past`) matching `predicate`. */
  waitFor(predicate: (m: ReceivedMessage) => boolean, what: string, timeout = 10_000): Promise<ReceivedMessage> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.received.find(predicate)
        if (found) {
          resolve(found)
          return true
        }
        if (this.closeEvent) {
          reject(new Error(`connection closed (${this.closeEvent.code} ${this.closeEvent.reason}) while waiting for ${what}`))
          return true
        }
        return false
      }
      if (check()) return
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== listener)
        reject(new Error(`timed out waiting for ${what}`))
      }, timeout)
      const listener = (): void => {
        if (check()) {
          clearTimeout(timer)
          this.listeners = this.listeners.filter((l) => l !== listener)
        }
      }
      this.listeners.push(listener)
    })
  }

  /**
   * A round trip: sends a `ping` and resolves at its `pong`. The relay reads
   * a connection's messages in order, so everything it did at once for the
   * messages sent before (answers, refusals, closes, broadcasts to this
   * connection) has been sent by then: wait on this, not on a sleep, before
   * asserting that something did not happen.
   */
  async roundTrip(timeout = 10_000): Promise<void> {
    const pongs = (): number => this.received.filter((m) => m.type === MessageType.pong).length
    const before = pongs()
    this.send(encodePing())
    await this.waitFor(() => pongs() > before, 'the pong of a round trip', timeout)
  }

  /** Resolves when the socket is closed. */
  waitClosed(timeout = 10_000): Promise<{ code: number; reason: string }> {
    if (this.closeEvent) return Promise.resolve(this.closeEvent)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for close')), timeout)
      this.ws.once('close', (code, reason) => {
        clearTimeout(timer)
        resolve({ code, reason: reason.toString() })
      })
    })
  }

  close(): void {
    this.ws.close()
  }

  private onMessage(data: Uint8Array, inBatch?: number): void {
    const { type, doc, body } = decodeMessage(data)
    const message: ReceivedMessage = { type, doc }
    if (inBatch !== undefined) message.inBatch = inBatch
    if (type === MessageType.batch) {
      const deflated = (decoding.peekVarUint(body) & BatchFlags.deflated) !== 0
      const messages = readBatch(body, (bytes) => inflateRawSync(bytes))
      message.batch = { messages: messages.length, deflated }
      const at = this.received.push(message) - 1
      for (const inner of messages) this.onMessage(inner, at)
      this.notify()
      return
    }
    if (type === MessageType.ack) message.ack = Y.decodeStateVector(readAck(body))
    if (type === MessageType.error) message.error = readError(body)
    if (type === MessageType.docList) message.list = readDocList(body)
    if (type === MessageType.fetched) message.fetched = readFetched(body)
    if (type === MessageType.fetchedPart) message.fetchedPart = readFetchedPart(body)
    if (type === MessageType.authors) message.authors = readAuthors(body)
    if (type === MessageType.presence) message.presence = readPresence(body)
    if (type === MessageType.catalogChanged) message.catalogChanged = readCatalogChanged(body)
    if (type === MessageType.awareness) message.awareness = readAwarenessEntries(decoding.readVarUint8Array(body))
    if (type === MessageType.hello) message.hello = readHello(body)
    if (type === MessageType.fetchedMany) {
      // recorded as the fetched answers it carries, after the fetched-many itself
      const entries = readFetchedMany(body)
      this.received.push(message)
      for (const entry of entries) {
        this.received.push({
          type: MessageType.fetched,
          doc: entry.doc,
          fetched: readFetched(decoding.createDecoder(entry.body)),
          bundled: entries.length,
        })
      }
      this.notify()
      return
    }
    if (type === MessageType.resumed) {
      message.resumed = readResumed(body)
      for (const entry of message.resumed) this.applyResumed(entry)
    }
    if (type === MessageType.sync) {
      message.syncType = decoding.peekVarUint(body)
      const ydoc = this.docs.get(doc)
      if (ydoc) {
        const reply = startMessage(MessageType.sync, doc)
        const header = encoding.length(reply)
        syncProtocol.readSyncMessage(body as decoding.Decoder, reply, ydoc, this)
        if (encoding.length(reply) > header) this.send(encoding.toUint8Array(reply))
      }
    }
    this.received.push(message)
    this.notify()
  }

  /** One doc's `resumed` entry: the relay's step 1 answered with what it lacks, the step 2 applied. */
  private applyResumed({ doc: name, relayStateVector, update }: ResumedDoc): void {
    const ydoc = this.docs.get(name)
    if (!ydoc) return
    if (relayStateVector !== null) {
      const reply = startMessage(MessageType.sync, name)
      syncProtocol.writeSyncStep2(reply, ydoc, relayStateVector)
      this.send(encoding.toUint8Array(reply))
    }
    if (update !== null) Y.applyUpdate(ydoc, update, this)
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }
}

/** The entries of an encoded awareness update. */
const readAwarenessEntries = (update: Uint8Array): NonNullable<ReceivedMessage['awareness']> => {
  const decoder = decoding.createDecoder(update)
  const entries: NonNullable<ReceivedMessage['awareness']> = []
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const clientId = decoding.readVarUint(decoder)
    decoding.readVarUint(decoder) // clock
    entries.push({ clientId, state: JSON.parse(decoding.readVarString(decoder)) as Record<string, unknown> | null })
  }
  return entries
}

/** True when the acked state vector covers every clock of `doc`. */
export const covers = (ack: Map<number, number> | undefined, doc: Y.Doc): boolean => {
  if (!ack) return false
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(doc))) {
    if ((ack.get(client) ?? 0) < clock) return false
  }
  return true
}

/**
 * The HTTP status a WebSocket upgrade to `url` gets: 101 when it opens (the
 * socket is closed again), else the refusal's status code.
 */
export const upgradeStatus = (url: string, headers: Record<string, string> = {}): Promise<number> =>
  new Promise<number>((resolve) => {
    const ws = new WebSocket(url, { headers })
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.once('open', () => {
      ws.close()
      resolve(101)
    })
    ws.once('error', () => undefined)
  })
