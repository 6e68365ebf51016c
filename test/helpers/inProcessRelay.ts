/**
 * A relay in this process and the raw clients of a test, closed after each
 * test of the file that calls {@link inProcessRelay} (at its top level).
 *
 * @example
 * ```ts
 * const relays = inProcessRelay()
 * it('…', async () => {
 *   const client = await relays.connect(await relays.start({ limits: { maxPayload: 64 * 1024 } }))
 *   await relays.relay.metrics.render()
 * })
 * ```
 */
import { afterEach } from 'vitest'
import { createRelay, type Relay, type RelayOptions } from '../../apps/relay/src/Relay.js'
import { MemoryStorage } from '../../apps/relay/src/storage/MemoryStorage.js'
import { RawMuxClient } from './rawClient.js'

export const inProcessRelay = () => {
  let current: Relay | null = null
  const clients: RawMuxClient[] = []
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    await current?.close()
    current = null
  })
  return {
    /** Starts a relay on a free port (in memory unless `options.storage` says otherwise) and returns its `ws://` URL. */
    async start(options: Partial<RelayOptions> = {}): Promise<string> {
      await current?.close()
      current = await createRelay({ storage: new MemoryStorage(), port: 0, processMetrics: false, ...options })
      return current.url.replace(/^http/, 'ws')
    },
    /** The relay started last. */
    get relay(): Relay {
      if (current === null) throw new Error('no relay is running: call start() first')
      return current
    },
    /** Stops the relay (a test that restarts it starts it again). */
    async stop(): Promise<void> {
      await current?.close()
      current = null
    },
    /** A raw client connected to `url` (a token goes in the URL). */
    async connect(url: string, token?: string): Promise<RawMuxClient> {
      const client = this.track(new RawMuxClient(url, token === undefined ? {} : { token }))
      await client.open()
      return client
    },
    /** Closes a client the test made itself after the test. */
    track<T extends RawMuxClient>(client: T): T {
      clients.push(client)
      return client
    },
  }
}
