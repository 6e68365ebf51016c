/**
 * Idle tab: what a connected, idle app costs. A real `RecordStore` (the
 * engine from packages/engine/dist, in Node, records in the engine's
 * `MemoryStorage`) set up as the web app does it — a `SyncClient` with the
 * user, the store with `live: true`, a `WorkspacePresence` — on a workspace
 * of `records` tickets the relay (SQLite, pinned to one core) holds. The
 * store fills itself from the relay (its live catalog's catch-up `pull()`),
 * untimed; once the socket has been quiet for a second:
 *
 * 1. **Idle** for `idleMs`: every frame and byte on the socket both ways, by
 *    message type, and the relay's CPU. Heartbeats are the engine's `ping` /
 *    the relay's `pong`, WebSocket ping/pong control frames and awareness
 *    keep-alives (the presence doc renews its unchanged state every 15 s);
 *    everything else counts as periodic traffic.
 * 2. **Reconnect**: the socket is cut (terminated) with nothing changed on
 *    either side; until the socket is quiet again for a second: frames,
 *    bytes, and the per-record requests the client sent (`fetch` and
 *    `subscribe` of record docs).
 *
 * @module bench/idle
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { startChild } from './lib/processes.mjs'
import { WORKSPACE, seedRecords, ticketSchema } from './lib/records.mjs'
import { median, sleep, withTimeout } from './lib/stats.mjs'
import { socketBytes } from './lib/wire.mjs'
import { LOAD_HOST, SERVER_HOST } from './fanout.mjs'

const THIS_MODULE = fileURLToPath(import.meta.url)
/** Multiplexed message types by number (docs/PROTOCOL.md). */
const TYPE_NAMES = {
  0: 'sync',
  1: 'awareness',
  2: 'auth',
  3: 'query-awareness',
  16: 'subscribe',
  17: 'unsubscribe',
  18: 'ack',
  19: 'error',
  20: 'hello',
  21: 'ping',
  22: 'pong',
  23: 'list-docs',
  24: 'doc-list',
  25: 'fetch',
  26: 'fetched',
  27: 'authenticated',
  28: 'authors',
  29: 'list-presence',
  30: 'presence',
  31: 'watch-catalog',
  32: 'unwatch-catalog',
  33: 'catalog-changed',
  34: 'fetched-part',
}
/** Frames that are heartbeats (see the module documentation). */
const HEARTBEATS = new Set(['ping', 'pong', 'ws-ping', 'ws-pong', 'awareness'])
/** Types whose frame names a record doc: a per-record request when the client sends it. */
const PER_RECORD = new Set(['fetch', 'subscribe'])

/**
 * Runs the case `repeats` times on fresh processes (the relay's data is
 * seeded once and copied per run); medians of the figures.
 */
export const idleTab = async ({ records = 10_000, idleMs = 60_000, repeats = 1, cores = null, log = () => {} }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-idle-'))
  try {
    const template = path.join(dir, 'template')
    mkdirSync(template)
    await seedRecords(path.join(template, 'concord.sqlite'), records)
    const runs = []
    for (let rep = 0; rep < repeats; rep++) {
      const runDir = path.join(dir, `run-${rep}`)
      cpSync(template, runDir, { recursive: true })
      const server = await startChild(SERVER_HOST, [JSON.stringify({ kind: 'concord', storage: 'sqlite', dataDir: runDir })], {
        core: cores?.server ?? null,
      })
      let load
      try {
        load = await startChild(LOAD_HOST, [], { core: cores?.load ?? null })
        load.handle('serverCpu', () => server.call('cpu'))
        const run = await withTimeout(
          load.call('run', THIS_MODULE, 'idleLoad', { url: server.info.url, records, idleMs }),
          180_000 + idleMs + records * 10,
          `idle tab with ${records} records`,
        )
        runs.push(run)
        log(
          `  idle ${records} records #${rep + 1}: ${idleMs / 1000} s idle: ${run.idle.frames} frames (${run.idle.otherFrames} beyond heartbeats), ${run.idle.bytes} B, ` +
            `relay CPU ${run.idle.relayCpuMs.toFixed(1)} ms; reconnect: ${run.reconnect.frames} frames, ${run.reconnect.bytes} B, ` +
            `${run.reconnect.perRecordRequests} per-record requests, ${run.reconnect.ms.toFixed(0)} ms (filled in ${(run.fillMs / 1000).toFixed(1)} s)`,
        )
      } finally {
        await load?.stop()
        await server.stop()
        rmSync(runDir, { recursive: true, force: true })
      }
    }
    const pick = (f) => median(runs.map(f))
    return {
      config: { records, idleMs, repeats },
      runs,
      median: {
        idleFrames: pick((r) => r.idle.frames),
        idleOtherFrames: pick((r) => r.idle.otherFrames),
        idleBytes: pick((r) => r.idle.bytes),
        idleRelayCpuMs: pick((r) => r.idle.relayCpuMs),
        reconnectFrames: pick((r) => r.reconnect.frames),
        reconnectBytes: pick((r) => r.reconnect.bytes),
        reconnectPerRecordRequests: pick((r) => r.reconnect.perRecordRequests),
        reconnectMs: pick((r) => r.reconnect.ms),
        fillMs: pick((r) => r.fillMs),
      },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Counts what goes over one client socket, by message type. */
class Traffic {
  constructor() {
    this.byType = new Map()
    this.perRecordRequests = 0
    this.lastFrameAt = performance.now()
  }

  count(direction, name) {
    const key = `${direction} ${name}`
    this.byType.set(key, (this.byType.get(key) ?? 0) + 1)
    this.lastFrameAt = performance.now()
  }

  frame(direction, data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data)
    const decoder = decoding.createDecoder(bytes)
    const type = decoding.readVarUint(decoder)
    const name = TYPE_NAMES[type] ?? `type ${type}`
    if (direction === 'sent' && PER_RECORD.has(name)) {
      const doc = decoding.readVarString(decoder)
      if (doc.startsWith(`${WORKSPACE}/`) && !doc.slice(WORKSPACE.length + 1).includes('/')) this.perRecordRequests++
    }
    this.count(direction, name)
  }

  snapshot() {
    return { byType: new Map(this.byType), perRecordRequests: this.perRecordRequests }
  }
}

/** Differences of two traffic snapshots and socket byte counts. */
const difference = (a, b, bytesA, bytesB) => {
  const byType = {}
  let frames = 0
  let otherFrames = 0
  for (const [key, n] of b.byType) {
    const d = n - (a.byType.get(key) ?? 0)
    if (d === 0) continue
    byType[key] = d
    frames += d
    if (!HEARTBEATS.has(key.slice(key.indexOf(' ') + 1))) otherFrames += d
  }
  return { byType, frames, otherFrames, bytes: bytesB - bytesA, perRecordRequests: b.perRecordRequests - a.perRecordRequests }
}

/** Load-process side: the app's client objects in Node, then the idle window and the reconnect. */
export const idleLoad = async ({ url, records, idleMs }, parent) => {
  const { MemoryStorage, RecordStore, SyncClient, WorkspacePresence } = await import('../../packages/engine/dist/index.js')
  const traffic = new Traffic()
  const sockets = []
  class CountingWebSocket extends WebSocket {
    constructor(address, protocols, options) {
      super(address, protocols, options)
      sockets.push(this)
      this.on('message', (data) => traffic.frame('received', data))
      this.on('ping', () => traffic.count('received', 'ws-ping'))
      this.on('pong', () => traffic.count('received', 'ws-pong'))
    }

    send(data, ...rest) {
      traffic.frame('sent', data)
      return super.send(data, ...rest)
    }
  }
  const bytes = () => sockets.reduce((n, ws) => n + socketBytes(ws).read + socketBytes(ws).written, 0)
  const user = { id: 'ada', name: 'Ada', color: '#3b82f6' }
  const client = new SyncClient({ url, user, WebSocket: CountingWebSocket })
  const store = new RecordStore({
    client,
    userId: user.id,
    workspaceId: WORKSPACE,
    schemas: [await ticketSchema()],
    tabs: false,
    storage: new MemoryStorage(),
    live: true,
  })
  const presence = new WorkspacePresence(client, WORKSPACE)
  /** Resolves once no frame went either way for `quietMs`. */
  const quiet = async (quietMs, timeoutMs, what) => {
    const until = performance.now() + timeoutMs
    while (performance.now() - traffic.lastFrameAt < quietMs) {
      if (performance.now() > until) throw new Error(`${what}: the socket was not quiet within ${timeoutMs} ms`)
      await sleep(50)
    }
  }
  try {
    const t0 = performance.now()
    await store.ready
    await withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (store.list({ limit: 1 }).total < records) return
          store.off('catalog', check)
          resolve()
        }
        store.on('catalog', check)
        check()
      }),
      120_000 + records * 10,
      `filling the store with ${records} records`,
    )
    const fillMs = performance.now() - t0
    await quiet(1000, 60_000, 'after filling the store')

    // 1. idle
    const idle0 = { traffic: traffic.snapshot(), bytes: bytes(), cpu: await parent.call('serverCpu') }
    await sleep(idleMs)
    const idle1 = { traffic: traffic.snapshot(), bytes: bytes(), cpu: await parent.call('serverCpu') }
    const idle = {
      ...difference(idle0.traffic, idle1.traffic, idle0.bytes, idle1.bytes),
      relayCpuMs: (idle1.cpu.micros - idle0.cpu.micros) / 1000,
      relayCpuShare: (idle1.cpu.micros - idle0.cpu.micros) / 1000 / (idle1.cpu.at - idle0.cpu.at),
    }

    // 2. reconnect with nothing changed
    const before = { traffic: traffic.snapshot(), bytes: bytes() }
    const cutAt = performance.now()
    sockets.at(-1).terminate()
    await withTimeout(
      new Promise((resolve) => {
        const onStatus = () => {
          if (client.status !== 'online' || sockets.length < 2) return
          client.off('status', onStatus)
          resolve()
        }
        client.on('status', onStatus)
      }),
      30_000,
      'reconnecting',
    )
    await quiet(1000, 120_000, 'after reconnecting')
    const after = { traffic: traffic.snapshot(), bytes: bytes() }
    const reconnect = { ...difference(before.traffic, after.traffic, before.bytes, after.bytes), ms: traffic.lastFrameAt - cutAt }
    return { fillMs, idle, reconnect, sockets: sockets.length }
  } finally {
    presence.destroy()
    await store.close().catch(() => {})
    client.close()
  }
}
