/**
 * Small helpers shared by the engine tests: wait on events instead of sleeping.
 */
import {
  RecordStore,
  SyncClient,
  type RecordStoreOptions,
  type RecordStorage,
  type StorageBackend,
  type StorageError,
  type SyncClientOptions,
} from '../src/index.js'
import { TestRelay, type ClientSocket, type TestRelayOptions } from './relayHarness.js'
import { testSchemas } from './schemas.js'

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

/** Creates relays and clients and closes them all after the test (with the record stores handed to {@link keep}). */
export class Harness {
  readonly relays: TestRelay[] = []
  readonly clients: SyncClient[] = []
  readonly stores: RecordStore[] = []

  /** Closes `store` in {@link close}. */
  keep<S extends RecordStore>(store: S): S {
    this.stores.push(store)
    return store
  }

  /** A kept record store of user `u1` in workspace `acme` with the test schemas and no tab sharing; `options` add to or replace that. */
  store(options: Partial<RecordStoreOptions> & Pick<RecordStoreOptions, 'client'>): RecordStore {
    return this.keep(new RecordStore({ userId: 'u1', workspaceId: 'acme', schemas: testSchemas, tabs: false, ...options }))
  }

  /** Closes the kept stores, then the clients and relays. For `afterEach`. */
  async close(): Promise<void> {
    for (const store of this.stores.splice(0)) await store.close()
    this.cleanup()
  }

  /** The real relay, in-process (see relayHarness.ts). */
  relay(options: TestRelayOptions = {}): TestRelay {
    const relay = new TestRelay(options)
    this.relays.push(relay)
    return relay
  }

  /** A client of `relay`; with a token, its sockets authenticate in-band. */
  client(relay: TestRelay, options: Partial<SyncClientOptions> = {}): SyncClient {
    const client = new SyncClient({
      url: 'ws://relay.test',
      WebSocket: options.token === undefined ? relay.WebSocket : relay.AuthWebSocket,
      reconnect: { random: () => 0 },
      ...options,
    })
    this.clients.push(client)
    return client
  }

  /**
   * A client authenticated with `token` (the relay binds its writes to
   * `user-of-<token>`; null: no auth — bound to `anonymous`, user
   * `local-<name>` in the app) whose network the test cuts and restores on
   * its own (`offline()`, `online()`): it reconnects only when told, never by
   * a timer.
   */
  gatedClient(
    relay: TestRelay,
    token: string | null,
    name = token ?? 'anonymous',
    options: Partial<SyncClientOptions> = {},
  ): { client: SyncClient; gate: { online: boolean }; offline(): void; online(): void } {
    const gate = { online: true, sockets: [] as ClientSocket[] }
    const Base = token === null ? relay.WebSocket : relay.AuthWebSocket
    class Gated extends Base {
      constructor(url: string) {
        super(url)
        if (!gate.online) this.drop()
        else gate.sockets.push(this)
      }
    }
    const client = this.client(relay, {
      WebSocket: Gated,
      ...(token === null ? { user: { id: `local-${name}`, name } } : { token, user: { id: `user-of-${token}`, name: token } }),
      reconnect: { minDelay: 1e9, maxDelay: 1e9, random: () => 1 },
      ...options,
    })
    return {
      client,
      gate,
      offline() {
        gate.online = false
        for (const s of gate.sockets.splice(0)) s.drop()
      },
      online() {
        gate.online = true
        client.reconnect()
      },
    }
  }

  cleanup(): void {
    for (const client of this.clients) client.close()
    for (const relay of this.relays) relay.destroy()
    this.clients.length = 0
    this.relays.length = 0
  }
}

/**
 * A storage backend whose record writes and compactions can be made to fail
 * (`failWith`, e.g. a quota error) or to wait (`hang`); everything else goes
 * to `inner` unchanged.
 */
export class GatedStorage<Inner extends StorageBackend = StorageBackend> implements StorageBackend {
  failWith: StorageError | null = null
  hang: Promise<void> | null = null

  constructor(
    readonly inner: Inner,
    readonly kind = 'gated',
  ) {}

  async openRecord(id: string): Promise<RecordStorage> {
    const record = await this.inner.openRecord(id)
    const pass = async <T>(run: () => Promise<T>): Promise<T> => {
      if (this.hang) await this.hang
      if (this.failWith) throw this.failWith
      return run()
    }
    return {
      get rowCount() {
        return record.rowCount
      },
      get created() {
        return record.created
      },
      get onLost() {
        return record.onLost
      },
      set onLost(f) {
        record.onLost = f
      },
      load: () => record.load(),
      write: (updates, meta) => pass(() => record.write(updates, meta)),
      compact: (merge) => pass(() => record.compact(merge)),
      close: () => record.close(),
    }
  }

  openCatalog() {
    return this.inner.openCatalog()
  }

  wipe(ids: readonly string[]) {
    return this.inner.wipe(ids)
  }
}
