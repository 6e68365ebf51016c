/**
 * The relay's socket writes (connections/SocketWriter): every message due to
 * one socket within an event-loop turn goes out in one write, frames are
 * what a WebSocket client reads back byte for byte (every length form), a
 * message fanned out to many sockets is framed once, a batch that grows
 * large is written before the turn ends, and sockets without a network
 * stream get each message through `send`.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { setImmediate as realSetImmediate } from 'node:timers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import type { NetworkStream, RelaySocket } from '../src/connections/socket.js'
import { MAX_BATCH_BYTES, SocketWriter, frameOf } from '../src/connections/SocketWriter.js'

/** The end of the current event-loop turn (where writers write their batches). */
const nextTurn = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve))

/** A network stream that records what is done to it. */
class RecordingStream implements NetworkStream {
  corks = 0
  /** Chunks handed to the network: what was written while not corked, and everything held at the last uncork. */
  readonly flushes: Uint8Array[][] = []
  private held: Uint8Array[] = []

  cork(): void {
    this.corks++
  }

  uncork(): void {
    this.corks--
    if (this.corks === 0 && this.held.length > 0) {
      this.flushes.push(this.held)
      this.held = []
    }
  }

  write(chunk: Uint8Array, written?: (error?: Error | null) => void): boolean {
    if (this.corks > 0) this.held.push(chunk)
    else this.flushes.push([chunk])
    if (written) process.nextTick(written)
    return true
  }
}

/** A socket with a recording network stream (`stream: null`: without one, messages go through `send`). */
const fakeSocket = (stream: NetworkStream | null): RelaySocket & { sent: Uint8Array[] } => {
  const sent: Uint8Array[] = []
  return {
    OPEN: 1,
    CLOSING: 2,
    CLOSED: 3,
    readyState: 1,
    bufferedAmount: 0,
    binaryType: 'nodebuffer',
    extensions: '',
    _socket: stream,
    sent,
    send: (data: Uint8Array, done?: (error?: Error) => void) => {
      sent.push(data)
      done?.()
    },
    close: () => {},
    terminate: () => {},
    ping: () => {},
    on: () => undefined,
  }
}

const bytes = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill)

describe('SocketWriter', () => {
  it('writes every message of one turn to a socket in one flush, and the written hook runs once after it', async () => {
    const stream = new RecordingStream()
    let batches = 0
    const writer = new SocketWriter(fakeSocket(stream), () => batches++)
    writer.write(bytes(10, 1))
    writer.write(bytes(20, 2))
    writer.write(bytes(30, 3))
    expect(stream.flushes).toEqual([])
    expect(batches).toBe(0)
    await nextTurn()
    expect(stream.corks).toBe(0)
    expect(stream.flushes).toHaveLength(1)
    expect(stream.flushes[0].map((frame) => frame.byteLength)).toEqual([12, 22, 32])
    expect(batches).toBe(1)
    // the next turn starts a new batch
    writer.write(bytes(5, 4))
    await nextTurn()
    expect(stream.flushes).toHaveLength(2)
    expect(batches).toBe(2)
  })

  it('writes a batch that reaches MAX_BATCH_BYTES at once and goes on batching the rest of the turn', async () => {
    const stream = new RecordingStream()
    let batches = 0
    const writer = new SocketWriter(fakeSocket(stream), () => batches++)
    const message = bytes(MAX_BATCH_BYTES / 4, 7)
    for (let i = 0; i < 5; i++) writer.write(message)
    expect(stream.flushes).toHaveLength(1)
    expect(stream.flushes[0]).toHaveLength(4)
    expect(batches).toBe(1)
    await nextTurn()
    expect(stream.flushes).toHaveLength(2)
    expect(stream.flushes[1]).toHaveLength(1)
    expect(batches).toBe(2)
    expect(stream.corks).toBe(0)
  })

  it('calls `sent` once a message left for the network', async () => {
    const stream = new RecordingStream()
    const writer = new SocketWriter(fakeSocket(stream), () => {})
    const sent: string[] = []
    writer.write(bytes(100, 1), () => sent.push('small'))
    writer.write(bytes(40_000, 2), () => sent.push('large'))
    await nextTurn()
    await new Promise((resolve) => process.nextTick(resolve))
    expect(sent).toEqual(['small', 'large'])
  })

  it('writes its batches while a test fakes the global clock', async () => {
    vi.useFakeTimers()
    try {
      const stream = new RecordingStream()
      const writer = new SocketWriter(fakeSocket(stream), () => {})
      writer.write(bytes(10, 1))
      await nextTurn()
      expect(stream.flushes).toHaveLength(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('sends through `send`, at once, on a socket without a network stream', () => {
    const socket = fakeSocket(null)
    let batches = 0
    const writer = new SocketWriter(socket, () => batches++)
    const message = bytes(3, 9)
    writer.write(message)
    expect(socket.sent).toEqual([message])
    expect(batches).toBe(1)
  })

  it('sends through `send` when the socket negotiated an extension', () => {
    const stream = new RecordingStream()
    const socket = { ...fakeSocket(stream), extensions: 'permessage-deflate' }
    const writer = new SocketWriter(socket, () => {})
    writer.write(bytes(3, 9))
    expect(socket.sent).toHaveLength(1)
    expect(stream.flushes).toEqual([])
  })

  it('frames a payload fanned out to many sockets once', () => {
    const payload = bytes(50, 5)
    const frame = frameOf(payload)
    expect(frameOf(payload)).toBe(frame)
    expect(frameOf(bytes(50, 5))).not.toBe(frame)
  })
})

describe('SocketWriter on a ws socket', () => {
  let server: WebSocketServer | null = null
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
    server = null
  })

  /** A ws server socket (its writer counting its batches) and a client connected to it. */
  const connect = async (): Promise<{ writer: SocketWriter; relayEnd: WebSocket; client: WebSocket }> => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const accepted = once(server, 'connection') as Promise<[WebSocket]>
    const client = new WebSocket(`ws://127.0.0.1:${port}`)
    client.binaryType = 'nodebuffer'
    await once(client, 'open')
    const [relayEnd] = await accepted
    return { writer: new SocketWriter(relayEnd, () => {}), relayEnd, client }
  }

  it('frames every payload length form as the client reads it back, in order, with ws frames in between', async () => {
    const { writer, relayEnd, client } = await connect()
    const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000, 16 * 1024, 16 * 1024 + 1]
    const payloads = lengths.map((length, i) => bytes(length, i + 1))
    const received: Buffer[] = []
    const all = new Promise<void>((resolve) =>
      client.on('message', (data: Buffer) => {
        received.push(data)
        if (received.length === payloads.length + 1) resolve()
      }),
    )
    for (const payload of payloads.slice(0, 5)) writer.write(payload)
    relayEnd.send(Buffer.from('through ws')) // what ws writes itself keeps its place among the relay's frames
    for (const payload of payloads.slice(5)) writer.write(payload)
    await all
    expect(received.map((data) => data.byteLength)).toEqual([...lengths.slice(0, 5), 10, ...lengths.slice(5)])
    const relayFrames = [...received.slice(0, 5), ...received.slice(6)]
    relayFrames.forEach((data, i) => expect(Buffer.compare(data, Buffer.from(payloads[i]))).toBe(0))
    expect(received[5].toString()).toBe('through ws')
    client.close()
  })

  it('hands all messages of one turn to the network in one system call', async () => {
    const { writer, relayEnd, client } = await connect()
    type Write = (...args: unknown[]) => unknown
    const stream = (relayEnd as unknown as { _socket: { _writev: Write; _write: Write } })._socket
    const writes: number[] = []
    const writev = stream._writev.bind(stream)
    const write = stream._write.bind(stream)
    stream._writev = (...args: unknown[]) => {
      writes.push((args[0] as unknown[]).length)
      return writev(...args)
    }
    stream._write = (...args: unknown[]) => {
      writes.push(1)
      return write(...args)
    }
    let count = 0
    const all = new Promise<void>((resolve) =>
      client.on('message', () => {
        if (++count === 20) resolve()
      }),
    )
    for (let i = 0; i < 20; i++) writer.write(bytes(30, i))
    await all
    expect(writes).toEqual([20])
    client.close()
  })
})
