/**
 * What every WebSocket connection shares: sending with metrics, closing with a
 * code and reason, and the heartbeat that finds dead peers.
 *
 * @module connections/Connection
 */
import type { WebSocket } from 'ws'
import type { Logger } from '../observability/logger.js'
import type { MessageKind, RelayMetrics } from '../observability/metrics.js'
import type { RoomRegistry } from '../rooms/RoomRegistry.js'
import type { CommitQueue } from '../rooms/CommitQueue.js'

/** What a connection needs from the relay. */
export interface ConnectionContext {
  readonly rooms: RoomRegistry
  readonly commits: CommitQueue
  readonly metrics: RelayMetrics
  readonly relayVersion: string
}

let nextId = 0

/** Base class of the relay's connections. */
export abstract class Connection {
  readonly id = `c${++nextId}`
  closed = false
  private alive = true

  constructor(
    readonly ws: WebSocket,
    protected readonly ctx: ConnectionContext,
    readonly log: Logger,
  ) {
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data, isBinary) => this.receive(data as Buffer, isBinary))
    ws.on('pong', () => {
      this.alive = true
    })
    ws.on('close', (code, reason) => this.handleClose(code, reason.toString()))
    ws.on('error', (error) => this.log.warn({ err: error }, 'socket error'))
  }

  /** Sends bytes if the socket is open. */
  send(kind: MessageKind, data: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    this.ws.send(data)
    this.ctx.metrics.messageOut(kind, data.byteLength)
  }

  /** Closes the socket with a code and a human-readable reason (≤ 123 bytes). */
  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.CLOSED || this.ws.readyState === this.ws.CLOSING) return
    this.ws.close(code, truncateReason(reason))
  }

  /** Called by the relay's heartbeat: terminates a peer that did not answer the last ping. */
  heartbeat(): void {
    if (!this.alive) {
      this.log.info('peer did not answer ping; terminating')
      this.ws.terminate()
      return
    }
    this.alive = false
    try {
      this.ws.ping()
    } catch {
      // socket already closing
    }
  }

  /** Handles one binary message. Never throws. */
  protected abstract handleMessage(data: Uint8Array): void

  /** Frees everything the connection holds. */
  protected abstract cleanup(): void

  private receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return
    this.alive = true
    if (!isBinary) {
      this.ctx.metrics.messageIn('unknown', data.byteLength)
      this.protocolError('text frames are not part of the protocol; send binary frames')
      return
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    this.handleMessage(bytes)
  }

  /** Closes the connection because of malformed input. */
  protected protocolError(reason: string, error?: unknown): void {
    this.ctx.metrics.malformedMessages.inc()
    this.log.warn({ err: error, reason }, 'closing connection: malformed message')
    this.close(1002, reason)
  }

  private handleClose(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    this.log.debug({ code, reason }, 'connection closed')
    this.cleanup()
  }
}

const truncateReason = (reason: string): string => {
  const bytes = Buffer.from(reason)
  if (bytes.byteLength <= 123) return reason
  return bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '') + '…'
}
