/**
 * The V8 heap of a relay process, measured through Node's inspector: the
 * relay is started with `--inspect=127.0.0.1:0` (`startRelay`'s `nodeArgs`),
 * which prints the inspector's WebSocket URL on stderr; this connects to it
 * and asks for full garbage collections before reading the heap, so what it
 * reports is what the relay holds, not garbage waiting for the next GC.
 *
 * @example
 *   const relay = await startRelay({ nodeArgs: ['--inspect=127.0.0.1:0'] })
 *   const inspector = await RelayInspector.connect(relay.output())
 *   const { usedBytes } = await inspector.heapAfterGc()
 *   inspector.close()
 *
 * @module test/reliability/lib/relayInspector
 */
import WebSocket from 'ws'

/** A connection to a relay's inspector (Chrome DevTools Protocol). */
export class RelayInspector {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>()

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } }
      const call = message.id === undefined ? undefined : this.waiting.get(message.id)
      if (call === undefined) return
      this.waiting.delete(message.id!)
      if (message.error) call.reject(new Error(`inspector: ${message.error.message}`))
      else call.resolve(message.result)
    })
    socket.on('close', () => {
      for (const call of this.waiting.values()) call.reject(new Error('inspector connection closed'))
      this.waiting.clear()
    })
  }

  /** Connects to the inspector whose URL the relay printed (`output`: its stdout and stderr so far). */
  static async connect(output: string): Promise<RelayInspector> {
    const url = /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1]
    if (url === undefined)
      throw new Error(`the relay printed no inspector URL (start it with --inspect=127.0.0.1:0):\n${output.slice(-2000)}`)
    const socket = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    return new RelayInspector(socket)
  }

  /** The relay's main-thread heap after full garbage collections, bytes. */
  async heapAfterGc(): Promise<{ usedBytes: number; totalBytes: number }> {
    // Several passes: weak references and finalizers free more on the next one.
    for (let i = 0; i < 3; i++) await this.call('HeapProfiler.collectGarbage')
    const { usedSize, totalSize } = (await this.call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number }
    return { usedBytes: usedSize, totalBytes: totalSize }
  }

  close(): void {
    this.socket.close()
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.socket.send(JSON.stringify({ id, method, params }))
    })
  }
}
