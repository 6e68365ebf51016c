/**
 * A fault-injecting WebSocket proxy between engine clients and a relay, at
 * the level of whole frames (messages of the multiplexed protocol), driven by
 * one seeded generator.
 *
 * What it does is limited to what a real network (and a relay restart) can
 * do to a client:
 *
 * - **Within one connection** frames keep their order and are never lost or
 *   duplicated: TCP guarantees that. The proxy only *delays* them (each
 *   direction is a FIFO queue; a frame leaves at
 *   `max(previous departure, arrival + random delay)`) and *cuts* the
 *   connection (both sockets terminated: frames still queued are lost, as
 *   bytes in a dying TCP connection are).
 * - **Partition**: every open connection is cut and new ones are accepted
 *   and then dropped until {@link FaultProxy.heal}.
 * - **Across reconnects** anything goes, because the protocol allows it:
 *   Yjs updates are idempotent and commute, so a client may send the same
 *   update again on a later connection (it does, after every reconnect), and
 *   an update may arrive before the ones it depends on (the relay refuses it
 *   with `missing-dependencies` and asks for what it lacks). The proxy
 *   *replays* `sync` update frames seen on an earlier connection of the same
 *   proxy on a later one — duplicated, out of their original order, and
 *   possibly ahead of the updates they depend on — once that later
 *   connection has subscribed the doc (with `subscribe`, or in a `resume`:
 *   the protocol only accepts sync messages for subscribed docs). Client →
 *   relay and relay → client alike.
 * - **Retarget**: the relay listens on a new port after every restart; the
 *   proxy's address stays the same, so clients reconnect to it as they would
 *   to a relay behind a load balancer.
 *
 * @example
 * ```ts
 * const proxy = await startFaultProxy(() => prng.real53(gen), { maxDelayMs: 20, replayChance: 0.2 })
 * proxy.retarget(relay.wsUrl)
 * const client = new SyncClient({ url: proxy.wsUrl, WebSocket })
 * proxy.partition() // … later
 * proxy.heal()
 * ```
 *
 * @module test/reliability/lib/faultProxy
 */
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer, type RawData } from 'ws'
import * as decoding from 'lib0/decoding'
import { MessageType, decodeMessage, readResume } from '@concord/engine/protocol'

/** y-protocols sync message subtype of an incremental update. */
const SYNC_UPDATE = 2

/** How the proxy disturbs traffic; every random choice comes from the `random` function given to {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Largest random delay added to a frame, ms (0: frames pass at once). Default 0; changed with {@link FaultProxy.setMaxDelay}. */
  maxDelayMs?: number
  /** Chance that a new connection gets one old update frame replayed per doc it subscribes, each direction. Default 0. */
  replayChance?: number
}

/** Counters of what the proxy did, for the suite's figures. */
export interface FaultProxyStats {
  connections: number
  cuts: number
  replayed: number
  frames: number
}

/** A running proxy. */
export interface FaultProxy {
  /** `ws://127.0.0.1:PORT`: give this to clients. */
  readonly wsUrl: string
  readonly stats: FaultProxyStats
  /** Changes the largest random delay added to frames from now on (ms). */
  setMaxDelay(maxDelayMs: number): void
  /** Sends new connections to `relayWsUrl` (`ws://HOST:PORT`); open connections stay where they are. */
  retarget(relayWsUrl: string | null): void
  /** Cuts every open connection (both ends see the socket close, queued frames are lost). */
  cut(): void
  /** Cuts every open connection and drops new ones until {@link heal}. */
  partition(): void
  /** Accepts connections again after {@link partition}. */
  heal(): void
  /** Whether the proxy is partitioned. */
  readonly partitioned: boolean
  /** Number of connections currently open through the proxy. */
  readonly open: number
  /** Resolves when every frame accepted so far on open connections has been passed on. */
  drained(): Promise<void>
  close(): Promise<void>
}

/**
 * One direction of one proxied connection: a FIFO queue with delays. Frames
 * leave strictly in the order they came, through one timer for the frame at
 * the head: a timer per frame could fire out of order (timers of different
 * durations started at different times, or a later frame due at once while
 * an earlier one's timer has not run yet), and TCP never reorders.
 */
class Lane {
  /** When the last queued frame leaves (ms, `performance.now()` clock). */
  private lastDeparture = 0
  private readonly queue: Array<{ frame: Buffer; departure: number }> = []
  /** True while a timer or microtask is set to send the head of the queue. */
  private scheduled = false
  private waiters: Array<() => void> = []

  constructor(
    private readonly target: WebSocket,
    private readonly delay: () => number,
  ) {}

  /** Queues `frame`; it is sent after its delay and after every frame queued before it. */
  push(frame: Buffer): void {
    const departure = Math.max(this.lastDeparture, performance.now() + this.delay())
    this.lastDeparture = departure
    this.queue.push({ frame, departure })
    this.schedule()
  }

  /** Resolves when nothing is queued. */
  idle(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** Sets a timer (or a microtask, when it is due) for the frame at the head of the queue. */
  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return
    this.scheduled = true
    const wait = this.queue[0].departure - performance.now()
    const run = (): void => {
      this.scheduled = false
      this.sendDue()
    }
    if (wait <= 0) queueMicrotask(run)
    else setTimeout(run, wait)
  }

  /** Sends the frames that are due, in order; then waits for the next one. */
  private sendDue(): void {
    const now = performance.now()
    while (this.queue.length > 0 && this.queue[0].departure <= now) {
      const { frame } = this.queue.shift()!
      if (this.target.readyState === WebSocket.OPEN) this.target.send(frame)
    }
    if (this.queue.length === 0) for (const resolve of this.waiters.splice(0)) resolve()
    else this.schedule()
  }
}

/** A sync update frame seen on a connection, kept for replay on a later one. */
interface SeenUpdate {
  doc: string
  frame: Buffer
}

/** True when `frame` is a `sync` message carrying an incremental update; returns its doc name then. */
const updateDoc = (frame: Buffer): string | null => {
  try {
    const { type, doc, body } = decodeMessage(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength))
    if (type !== MessageType.sync) return null
    return decoding.readVarUint(body) === SYNC_UPDATE ? doc : null
  } catch {
    return null
  }
}

/** The docs a `subscribe` frame names (one) or a `resume` frame subscribes (each of its entries); none for other frames. */
const subscribedDocs = (frame: Buffer): string[] => {
  try {
    const { type, doc, body } = decodeMessage(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength))
    if (type === MessageType.subscribe) return [doc]
    if (type === MessageType.resume) return readResume(body).map((entry) => entry.doc)
    return []
  } catch {
    return []
  }
}

/** Most update frames kept per direction for replay (the oldest are forgotten). */
const REPLAY_MEMORY = 64

/**
 * Starts a proxy on a free loopback port; it forwards nowhere until {@link FaultProxy.retarget}.
 * `random` (uniform in [0, 1), e.g. from a seeded `lib0/prng` generator) makes every choice.
 */
export const startFaultProxy = async (random: () => number, options: FaultProxyOptions = {}): Promise<FaultProxy> => {
  let maxDelayMs = options.maxDelayMs ?? 0
  const replayChance = options.replayChance ?? 0
  const delay = (): number => (maxDelayMs > 0 ? random() * maxDelayMs : 0)
  const stats: FaultProxyStats = { connections: 0, cuts: 0, replayed: 0, frames: 0 }
  let target: string | null = null
  let partitioned = false
  /** Open connections: each is its client socket, upstream socket and lanes. */
  const connections = new Set<{ client: WebSocket; upstream: WebSocket; lanes: Lane[] }>()
  const seenFromClients: SeenUpdate[] = []
  const seenFromRelay: SeenUpdate[] = []
  const remember = (seen: SeenUpdate[], doc: string, frame: Buffer): void => {
    seen.push({ doc, frame })
    if (seen.length > REPLAY_MEMORY) seen.shift()
  }
  /** An old update of `doc` from `seen`, picked at random, or null. */
  const oldUpdate = (seen: SeenUpdate[], doc: string): Buffer | null => {
    const candidates = seen.filter((s) => s.doc === doc)
    return candidates.length === 0 ? null : candidates[Math.floor(random() * candidates.length)].frame
  }

  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  server.on('connection', (client, request) => {
    if (partitioned || target === null) {
      client.terminate()
      return
    }
    stats.connections++
    const upstream = new WebSocket(target + (request.url ?? '/'))
    const toRelay = new Lane(upstream, delay)
    const toClient = new Lane(client, delay)
    const connection = { client, upstream, lanes: [toRelay, toClient] }
    connections.add(connection)
    /** Frames from the client until the upstream socket opened (a TCP connect is not instant either). */
    const early: Buffer[] = []
    /** Docs of this connection whose update was already replayed (at most one per doc and direction). */
    const replayedTo = new Set<string>()
    const drop = (): void => {
      if (!connections.delete(connection)) return
      client.terminate()
      upstream.terminate()
    }
    const fromClient = (frame: Buffer): void => {
      stats.frames++
      toRelay.push(frame)
      const doc = updateDoc(frame)
      if (doc !== null) remember(seenFromClients, doc, frame)
      for (const subscribed of subscribedDocs(frame)) {
        if (replayedTo.has(subscribed)) continue
        replayedTo.add(subscribed)
        // After the subscribe (and only then: the relay refuses sync messages for docs not subscribed).
        const up = random() < replayChance ? oldUpdate(seenFromClients, subscribed) : null
        if (up) {
          stats.replayed++
          toRelay.push(up)
        }
        const down = random() < replayChance ? oldUpdate(seenFromRelay, subscribed) : null
        if (down) {
          stats.replayed++
          toClient.push(down)
        }
      }
    }
    client.on('message', (data: RawData) => {
      const frame = data as Buffer
      if (upstream.readyState === WebSocket.OPEN) fromClient(frame)
      else early.push(frame)
    })
    upstream.on('open', () => {
      for (const frame of early.splice(0)) fromClient(frame)
    })
    upstream.on('message', (data: RawData) => {
      const frame = data as Buffer
      stats.frames++
      toClient.push(frame)
      const doc = updateDoc(frame)
      if (doc !== null) remember(seenFromRelay, doc, frame)
    })
    for (const socket of [client, upstream]) {
      socket.on('error', drop)
      socket.on('close', drop)
    }
  })
  await new Promise<void>((resolve) => server.once('listening', resolve))
  const { port } = server.address() as AddressInfo

  const cut = (): void => {
    for (const connection of [...connections]) {
      stats.cuts++
      connections.delete(connection)
      connection.client.terminate()
      connection.upstream.terminate()
    }
  }
  return {
    wsUrl: `ws://127.0.0.1:${port}`,
    stats,
    setMaxDelay: (ms) => {
      maxDelayMs = ms
    },
    retarget: (relayWsUrl) => {
      target = relayWsUrl
    },
    cut,
    partition: () => {
      partitioned = true
      cut()
    },
    heal: () => {
      partitioned = false
    },
    get partitioned() {
      return partitioned
    },
    get open() {
      return connections.size
    },
    drained: async () => {
      await Promise.all([...connections].flatMap((c) => c.lanes.map((lane) => lane.idle())))
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut()
        server.close(() => resolve())
      }),
  }
}
