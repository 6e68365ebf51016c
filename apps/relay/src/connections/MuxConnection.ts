/**
 * A connection on the multiplexed endpoint (`/.concord/v1`): one socket,
 * many docs. See docs/PROTOCOL.md.
 *
 * Per doc, messages are handled in arrival order; messages that arrive while
 * the doc loads from storage wait in a queue and are handled once it is
 * loaded, so nobody is ever served an empty doc.
 *
 * @module connections/MuxConnection
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import type { WebSocket } from 'ws'
import {
  ErrorCode,
  MessageType,
  decodeMessage,
  MAX_LIST_LIMIT,
  encodeAck,
  encodeDocList,
  encodeError,
  encodeFetched,
  encodeHello,
  encodePong,
  readListDocs,
  startMessage,
  validateDocName,
} from '@concord/engine/protocol'
import type { Logger } from '../observability/logger.js'
import type { MessageKind } from '../observability/metrics.js'
import type { Room, RoomPeer } from '../rooms/Room.js'
import { Connection, type ConnectionContext } from './Connection.js'
import { ProtocolError, readDocMessage } from './docMessages.js'
import { muxAwarenessMessage, muxUpdateMessage } from './encode.js'

interface Subscription {
  room: Room | null
  /** Messages received while the room loads. */
  queue: Uint8Array[]
}

const KIND_BY_TYPE: Record<number, MessageKind> = {
  [MessageType.sync]: 'sync',
  [MessageType.awareness]: 'awareness',
  [MessageType.auth]: 'auth',
  [MessageType.queryAwareness]: 'query-awareness',
  [MessageType.subscribe]: 'subscribe',
  [MessageType.unsubscribe]: 'unsubscribe',
  [MessageType.ping]: 'ping',
  [MessageType.listDocs]: 'list-docs',
  [MessageType.fetch]: 'fetch',
}

/** A multiplexed connection. */
export class MuxConnection extends Connection implements RoomPeer {
  private readonly subs = new Map<string, Subscription>()

  constructor(ws: WebSocket, ctx: ConnectionContext, log: Logger) {
    super(ws, ctx, log)
    this.send('hello', encodeHello(ctx.relayVersion))
  }

  /** Names of the docs this connection is subscribed to. */
  get docs(): string[] {
    return [...this.subs.keys()]
  }

  sendUpdate(room: Room, update: Uint8Array): void {
    this.send('sync', muxUpdateMessage(room.name, update))
  }

  sendAwareness(room: Room, update: Uint8Array): void {
    this.send('awareness', muxAwarenessMessage(room.name, update))
  }

  sendAck(room: Room, stateVector: Uint8Array): void {
    this.send('ack', encodeAck(room.name, stateVector))
    this.ctx.metrics.acksSent.inc()
  }

  /** Sends an error about `doc` ("" for the whole connection). */
  sendError(doc: string, code: ErrorCode, reason: string): void {
    this.send('error', encodeError(doc, code, reason))
  }

  protected handleMessage(data: Uint8Array): void {
    let type: number
    let doc: string
    let body: decoding.Decoder
    try {
      ;({ type, doc, body } = decodeMessage(data))
    } catch (error) {
      this.ctx.metrics.messageIn('unknown', data.byteLength)
      this.protocolError('malformed message: cannot read type and doc name', error)
      return
    }
    this.ctx.metrics.messageIn(KIND_BY_TYPE[type] ?? 'unknown', data.byteLength)
    switch (type) {
      case MessageType.subscribe:
        this.subscribe(doc)
        return
      case MessageType.unsubscribe:
        this.unsubscribe(doc)
        return
      case MessageType.ping:
        this.send('pong', encodePong())
        return
      case MessageType.sync:
      case MessageType.awareness:
      case MessageType.queryAwareness:
      case MessageType.auth: {
        const sub = this.subs.get(doc)
        if (!sub) {
          this.sendError(doc, ErrorCode.notSubscribed, `not subscribed to "${doc.slice(0, 128)}"; send subscribe first`)
          return
        }
        if (sub.room) this.handleDocMessage(sub.room, type, body)
        else sub.queue.push(data)
        return
      }
      case MessageType.listDocs:
        this.listDocs(doc, body)
        return
      case MessageType.fetch:
        this.fetch(doc, body)
        return
      default:
        this.protocolError(`unknown message type ${type}`)
    }
  }

  /** Answers `list-docs`: stored doc names under a prefix, a page at a time. */
  private listDocs(prefix: string, body: decoding.Decoder): void {
    let request: { requestId: number; after: string; limit: number }
    try {
      request = readListDocs(body)
    } catch (error) {
      this.protocolError('malformed list-docs message', error)
      return
    }
    const invalid = prefix === '' ? null : validateDocName(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)
    if (invalid) {
      this.sendError(prefix.slice(0, 600), ErrorCode.invalidDocName, `invalid prefix: ${invalid}`)
      return
    }
    const limit = Math.max(1, Math.min(request.limit || MAX_LIST_LIMIT, MAX_LIST_LIMIT))
    this.ctx.rooms.list(prefix).then(
      (names) => {
        const start = request.after === '' ? 0 : upperBound(names, request.after)
        const page = names.slice(start, start + limit)
        this.send('doc-list', encodeDocList(prefix, request.requestId, page, start + limit < names.length))
      },
      (error: unknown) => {
        this.log.warn({ err: error, prefix }, 'list-docs failed: storage')
        this.sendError(prefix, ErrorCode.storageUnavailable, 'could not list docs from storage; try again later')
      },
    )
  }

  /** Answers `fetch`: what the client lacks of a doc, without subscribing. */
  private fetch(doc: string, body: decoding.Decoder): void {
    const invalid = validateDocName(doc)
    if (invalid) {
      this.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
      return
    }
    let stateVector: Uint8Array
    try {
      stateVector = decoding.readVarUint8Array(body)
      Y.decodeStateVector(stateVector)
    } catch (error) {
      this.protocolError(`malformed fetch message for "${doc}"`, error)
      return
    }
    this.ctx.rooms.snapshot(doc, stateVector).then(
      ({ update, durableStateVector }) => this.send('fetched', encodeFetched(doc, update, durableStateVector)),
      (error: unknown) => {
        this.log.warn({ err: error, doc }, 'fetch failed: storage')
        this.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; fetch again later`)
      },
    )
  }

  private subscribe(doc: string): void {
    if (this.subs.has(doc)) return
    const invalid = validateDocName(doc)
    if (invalid) {
      this.sendError(doc.slice(0, 600), ErrorCode.invalidDocName, invalid)
      return
    }
    const sub: Subscription = { room: null, queue: [] }
    this.subs.set(doc, sub)
    this.ctx.rooms.acquire(doc).then(
      (room) => {
        if (this.subs.get(doc) !== sub) {
          this.ctx.rooms.release(room)
          return
        }
        sub.room = room
        room.addPeer(this)
        const step1 = startMessage(MessageType.sync, doc)
        syncProtocol.writeSyncStep1(step1, room.doc)
        this.send('sync', encoding.toUint8Array(step1))
        const states = room.encodeAllAwareness()
        if (states) this.sendAwareness(room, states)
        const queue = sub.queue
        sub.queue = []
        for (const data of queue) {
          if (this.closed || sub.room !== room) break
          const { type, body } = decodeMessage(data)
          this.handleDocMessage(room, type, body)
        }
      },
      (error: unknown) => {
        if (this.subs.get(doc) === sub) this.subs.delete(doc)
        this.sendError(doc, ErrorCode.storageUnavailable, `could not load "${doc}" from storage; subscribe again later`)
        this.log.warn({ err: error, doc }, 'subscribe failed: storage')
      },
    )
  }

  private unsubscribe(doc: string): void {
    const sub = this.subs.get(doc)
    if (!sub) return
    this.subs.delete(doc)
    if (sub.room) {
      sub.room.removePeer(this)
      this.ctx.rooms.release(sub.room)
      sub.room = null
    }
  }

  private handleDocMessage(room: Room, type: number, body: decoding.Decoder): void {
    try {
      const reply = startMessage(MessageType.sync, room.name)
      const headerLength = encoding.length(reply)
      switch (readDocMessage(room, this, type, body, reply)) {
        case 'step1':
          // ack first: what step 2 brings is then already covered when it is durable
          this.requestAck(room)
          if (encoding.length(reply) > headerLength) this.send('sync', encoding.toUint8Array(reply))
          return
        case 'step2':
        case 'update':
          this.requestAck(room)
          return
        case 'auth':
          this.sendError(room.name, ErrorCode.permissionDenied, 'in-band auth messages are not supported by this relay')
          return
      }
    } catch (error) {
      const reason = error instanceof ProtocolError ? error.message : `malformed ${KIND_BY_TYPE[type]} message for "${room.name}"`
      this.protocolError(reason, error)
    }
  }

  /** Acks now when nothing of the room is waiting for storage; otherwise the commit acks. */
  private requestAck(room: Room): void {
    if (!this.ctx.commits.isBusy(room)) this.sendAck(room, room.durableStateVector)
  }

  protected cleanup(): void {
    for (const doc of [...this.subs.keys()]) this.unsubscribe(doc)
  }
}

/** Index of the first name greater than `after` in a sorted array. */
const upperBound = (names: readonly string[], after: string): number => {
  let lo = 0
  let hi = names.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (names[mid] <= after) lo = mid + 1
    else hi = mid
  }
  return lo
}
