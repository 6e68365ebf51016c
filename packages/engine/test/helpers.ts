/**
 * Small helpers shared by the engine tests: wait on events instead of sleeping.
 */
import { SyncClient, type SyncClientOptions } from '../src/index.js'
import { FakeRelay, type FakeRelayOptions } from './fakeRelay.js'

/** Resolves when `client.status` is (or becomes) `status`. */
export const statusIs = (client: SyncClient, status: SyncClient['status']): Promise<void> =>
  new Promise((resolve) => {
    if (client.status === status) return resolve()
    const listener = (current: SyncClient['status']) => {
      if (current !== status) return
      client.off('status', listener)
      resolve()
    }
    client.on('status', listener)
  })

/** Tracks whether a promise settled, without awaiting it. */
export const track = <T>(promise: Promise<T>) => {
  const state = { settled: false, resolved: false, rejected: false, error: null as unknown }
  promise.then(
    () => Object.assign(state, { settled: true, resolved: true }),
    (error: unknown) => Object.assign(state, { settled: true, rejected: true, error }),
  )
  return state
}

/** Creates relays and clients and closes them all after the test. */
export class Harness {
  readonly relays: FakeRelay[] = []
  readonly clients: SyncClient[] = []

  relay(options: FakeRelayOptions = {}): FakeRelay {
    const relay = new FakeRelay(options)
    this.relays.push(relay)
    return relay
  }

  client(relay: FakeRelay, options: Partial<SyncClientOptions> = {}): SyncClient {
    const client = new SyncClient({
      url: 'ws://relay.test',
      WebSocket: relay.WebSocket,
      reconnect: { random: () => 0 },
      ...options,
    })
    this.clients.push(client)
    return client
  }

  cleanup(): void {
    for (const client of this.clients) client.close()
    for (const relay of this.relays) relay.destroy()
    this.clients.length = 0
    this.relays.length = 0
  }
}
