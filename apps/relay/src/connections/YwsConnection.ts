/**
 * A y-websocket compatible connection on `/<docName>`: one doc per socket,
 * message types 0 sync, 1 awareness, 2 auth, 3 query-awareness, exactly as a
 * stock `y-websocket` `WebsocketProvider` speaks them. No acks: stock clients
 * do not know them. The token (if auth is on) came with the upgrade request;
 * refusals are sent as y-protocols auth `permission-denied` messages.
 * Messages that arrive while the doc loads wait, up to `maxQueuedBytes`.
 *
 * @module connections/YwsConnection
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import { MessageType } from '@concord/engine/protocol'
import type { Logger } from '../observability/logger.js'
import type { Room, RoomPeer } from '../rooms/Room.js'
import type { Identity } from '../auth/Authenticator.js'
import { Connection, type ConnectionContext } from './Connection.js'
import type { RelaySocket } from './socket.js'
import { DOC_MESSAGE_KINDS, ProtocolError, readDocMessage, type DocPolicy } from './docMessages.js'
import { ywsAwarenessMessage, ywsUpdateMessage } from './encode.js'

/** A y-websocket compatible connection. */
export class YwsConnection extends Connection implements RoomPeer {
  private room: Room | null = null
  private queue: Uint8Array[] | null = []
  /** Whether the doc counts against the user's open docs (undone in cleanup). */
  private countsDoc = true
  private readonly policy: DocPolicy

  constructor(
    ws: RelaySocket,
    ctx: ConnectionContext,
    log: Logger,
    readonly docName: string,
    identity: Identity,
    writable: boolean,
  ) {
    super(ws, ctx, log)
    this.setIdentity(identity)
    // the doc counts against the user's open docs (--max-docs-per-user) like a subscription on the multiplexed endpoint
    if (!identity.anonymous) {
      if (!ctx.admission.mayOpenDoc(identity.userId)) {
        this.refuse('too-many-docs', `open ${docName}`)
        this.close(1008, `at most ${ctx.limits.maxDocsPerUser} docs open per user; close some first`)
        this.countsDoc = false
      } else ctx.admission.openDoc(identity.userId)
    }
    const refused = !this.countsDoc
    this.policy = {
      writable,
      maxDocBytes: ctx.limits.maxDocBytes,
      initialSyncChunkBytes: ctx.limits.initialSyncChunkBytes,
      maxAwarenessStateBytes: ctx.limits.maxAwarenessStateBytes,
      maxAwarenessEntries: ctx.limits.maxAwarenessEntries,
      maxAwarenessIds: ctx.limits.maxAwarenessIds,
      takeAwarenessToken: () => this.awarenessBucket.take(),
      chargeApplyTime: (ms: number) => this.applyBudget.charge(ms),
    }
    if (refused) return // over the user's open docs: closing
    ctx.rooms.acquire(docName).then(
      (room) => {
        if (this.closed) {
          ctx.rooms.release(room)
          return
        }
        this.room = room
        room.addPeer(this)
        this.enterWorkspace(docName)
        if (writable) {
          const step1 = encoding.createEncoder()
          encoding.writeVarUint(step1, MessageType.sync)
          room.writeSyncStep1(step1)
          this.send('sync', encoding.toUint8Array(step1))
        }
        const states = room.encodeAllAwareness()
        if (states) this.sendAwareness(room, states)
        const queue = this.queue ?? []
        this.queue = null
        for (const data of queue) {
          this.releaseQueued(data)
          if (this.closed) continue
          this.handleMessage(data)
        }
      },
      (error: unknown) => {
        this.log.warn({ err: error }, 'could not load doc from storage')
        this.close(1011, `could not load "${docName}" from storage; reconnect later`)
      },
    )
  }

  sendUpdate(_room: Room, update: Uint8Array): void {
    this.send('sync', ywsUpdateMessage(update))
  }

  sendAwareness(_room: Room, update: Uint8Array): void {
    this.send('awareness', ywsAwarenessMessage(update))
  }

  sendAck(): void {
    // stock y-websocket clients have no ack message
  }

  sendAuthors(): void {
    // nor author bindings
  }

  mayWrite(room: Room): boolean {
    return this.room === room && this.policy.writable
  }

  protected handleMessage(data: Uint8Array): void {
    const room = this.room
    if (!room) {
      if (!this.queue) return
      const held = this.holdQueued(data, 'while the doc loads')
      if (held) this.queue.push(held)
      return
    }
    let type = -1
    try {
      const body = decoding.createDecoder(data)
      type = decoding.readVarUint(body)
      this.ctx.metrics.messageIn(DOC_MESSAGE_KINDS[type] ?? 'unknown', data.byteLength)
      // answering a state vector (encoding a step 2) is work charged to the connection
      const answersStateVector = type === MessageType.sync && decoding.peekVarUint(body) === syncProtocol.messageYjsSyncStep1
      if (answersStateVector && !this.withinWorkBudget(`sync step 1 of "${room.name}"`)) return
      // only a step 1's answer is charged by time (a clock read costs more than a small update's bookkeeping)
      const started = answersStateVector ? performance.now() : 0
      const result = readDocMessage(room, this, type, body, startYwsSync, this.policy)
      if (
        (result.kind === 'step1' || result.kind === 'step1-parts') &&
        !this.chargeWork(`sync step 1 of "${room.name}"`, performance.now() - started)
      )
        return
      if (result.kind === 'step1') this.send('sync', result.reply)
      else if (result.kind === 'step1-parts') this.sendStep2InParts(room, result.stateVector, result.update)
      else if (result.kind === 'unknown') this.protocolError(`unknown message type ${type}`)
      else if (result.kind === 'awareness' && result.claimed !== null) this.claim(result.claimed, [this.docName])
      else if (result.kind === 'over-budget') this.overBudget(result.detail)
      else if (result.kind === 'refused') {
        this.refuse(result.reason, `${room.name}: ${result.detail}`)
        if (result.reason === 'awareness-rate-limit' || result.reason === 'forged-awareness') return
        const denied = encoding.createEncoder()
        encoding.writeVarUint(denied, MessageType.auth)
        authProtocol.writePermissionDenied(denied, result.detail)
        this.send('auth', encoding.toUint8Array(denied))
      }
    } catch (error) {
      const reason =
        error instanceof ProtocolError ? error.message : `malformed ${DOC_MESSAGE_KINDS[type] ?? ''} message`.replace('  ', ' ')
      this.protocolError(reason, error)
    }
  }

  /**
   * Answers a step 1 whose step 2 is larger than a chunk: in parts, as sync
   * updates, the last one as the step 2 (a stock client counts the doc synced
   * on it), paced by the socket draining (connections/initialSync).
   */
  private sendStep2InParts(room: Room, stateVector: Uint8Array, update: Uint8Array): void {
    this.ctx.initialSyncs.enqueue(
      {
        owner: this,
        key: this.docName,
        open: () => (this.room === room && !room.closed ? room.encodeState(stateVector) : null),
        sendPart: (part, last, sent) => {
          const message = startYwsSync()
          encoding.writeVarUint(message, last ? syncProtocol.messageYjsSyncStep2 : syncProtocol.messageYjsUpdate)
          encoding.writeVarUint8Array(message, part)
          return this.sendInitialSyncPart('sync', encoding.toUint8Array(message), sent)
        },
      },
      update,
    )
  }

  protected cleanup(): void {
    this.ctx.initialSyncs.cancel(this)
    if (this.countsDoc && !this.identity.anonymous) this.ctx.admission.closeDoc(this.identity.userId)
    this.countsDoc = false
    this.queue = null
    const room = this.room
    this.room = null
    if (room) {
      this.leaveWorkspace(this.docName)
      room.removePeer(this)
      this.ctx.rooms.release(room)
    }
  }
}

/** A y-websocket `sync` message header. */
const startYwsSync = (): encoding.Encoder => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.sync)
  return encoder
}
