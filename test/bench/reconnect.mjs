/**
 * Case 3, offline reconnect: a client made `edits` offline edits to each of
 * `records` records the server already holds; it reconnects. Measured from
 * creating the client to "everything acknowledged", and every byte on the
 * wire until then (TCP payload both ways: WebSocket upgrades, frame headers,
 * masks, messages), against the sum of the Yjs diffs the server lacked.
 *
 * Each run starts a fresh server holding twice as many records. Before the
 * timed reconnect, a client of the same kind reconnects the other half
 * (untimed; its sockets closed again), so that the server runs optimised
 * code, as one that has been up for a while does: a freshly started
 * process spends about half of such a reconnect compiling (*spot*: Concord's
 * relay took 944 ms of CPU for 1,000 × 10 when just started, 466 ms for the
 * next 1,000). The timed records are still cold on the server (not loaded
 * since it started). A restart itself is the reconnect storm's case.
 *
 * Contenders:
 * - **Concord**: the engine's `SyncClient`, one multiplexed socket; done when
 *   `flush()` resolves, i.e. the relay's durable acks (SQLite, after commit)
 *   cover every local change.
 * - **y-websocket**: the stock `WebsocketProvider`, one socket per doc,
 *   against the same Concord relay (its y-websocket endpoint). y-websocket has
 *   no acks, so "acknowledged" is taken as generously as possible: after the
 *   provider's `sync` event, a sync step 1 probe on the same socket; its
 *   answer proves the relay applied (in memory — not stored) the client's
 *   step 2, which it sent before.
 * - **Hocuspocus** (in memory, docs loaded by `onLoadDocument` from a map):
 *   a minimal client speaking its protocol over one socket as its provider
 *   does (auth, step 1, awareness, step 2 in answer to the server's step 1);
 *   done when every doc's step 2 got its `SyncStatus` (applied, not stored).
 *
 * @module bench/reconnect
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { offlineEdits, readBlobs, ticketState, writeBlobs } from './lib/docs.mjs'
import { startChild } from './lib/processes.mjs'
import { alternate, median, withTimeout } from './lib/stats.mjs'
import { SYNC_STEP1, SYNC_STEP2, protocols, socketBytes } from './lib/wire.mjs'
import { LOAD_HOST, SERVER_HOST } from './fanout.mjs'

const THIS_MODULE = fileURLToPath(import.meta.url)

export const RECONNECT_CONTENDERS = {
  concord: { label: 'Concord engine (1 socket, durable acks)', server: 'concord', client: 'engine' },
  'y-websocket': { label: 'y-websocket, 1 socket per doc, same relay', server: 'concord', client: 'y-websocket' },
  hocuspocus: { label: 'Hocuspocus (in memory), 1 socket', server: 'hocuspocus', client: 'hocuspocus' },
}

/** Name of record `i`. */
const recordName = (i) => `w1/r${String(i).padStart(5, '0')}`

/**
 * Runs the case for every contender, `repeats` times in alternating order,
 * each run on a fresh server holding the records and as many to warm it up.
 */
export const offlineReconnect = async ({
  records,
  edits,
  repeats = 5,
  contenders = ['concord', 'y-websocket', 'hocuspocus'],
  cores = null,
  timeoutMs = 120_000,
  serverExecArgv = [],
  log = () => {},
}) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-reconnect-'))
  try {
    const baseFile = path.join(dir, 'base.bin')
    const warmFile = path.join(dir, 'warm.bin')
    const seedFile = path.join(dir, 'seed.bin')
    const entries = Array.from({ length: records }, (_, i) => [recordName(i), ticketState(i)])
    const warmEntries = Array.from({ length: records }, (_, i) => [recordName(records + i), ticketState(records + i)])
    writeBlobs(baseFile, entries)
    writeBlobs(warmFile, warmEntries)
    writeBlobs(seedFile, [...entries, ...warmEntries])
    const template = path.join(dir, 'template')
    mkdirSync(template)
    const { SqliteStorage } = await import('../../apps/relay/dist/index.js')
    const storage = SqliteStorage.open(path.join(template, 'concord.sqlite'))
    await storage.appendUpdates([...entries, ...warmEntries].map(([doc, state]) => ({ doc, updates: [state] })))
    await storage.close()

    const runs = Object.fromEntries(contenders.map((name) => [name, []]))
    for (let rep = 0; rep < repeats; rep++) {
      for (const name of alternate(contenders, rep)) {
        const contender = RECONNECT_CONTENDERS[name]
        const runDir = path.join(dir, `run-${rep}-${name}`)
        cpSync(template, runDir, { recursive: true })
        const serverConfig =
          contender.server === 'concord' ? { kind: 'concord', storage: 'sqlite', dataDir: runDir } : { kind: 'hocuspocus', seedFile }
        const server = await startChild(SERVER_HOST, [JSON.stringify(serverConfig)], {
          core: cores?.server ?? null,
          execArgv: contender.server === 'concord' ? serverExecArgv : [],
        })
        let load
        try {
          load = await startChild(LOAD_HOST, [], { core: cores?.load ?? null })
          load.handle('serverCpu', () => server.call('cpu'))
          const result = await withTimeout(
            load.call('run', THIS_MODULE, 'reconnectLoad', {
              url: server.info.url,
              client: contender.client,
              baseFile,
              warmFile,
              edits,
            }),
            timeoutMs,
            `reconnect ${records}×${edits} with ${contender.label}`,
          )
          runs[name].push(result)
          log(
            `  ${records}×${edits} ${name} #${rep + 1}: ${result.ms.toFixed(0)} ms (server CPU ${result.serverCpuMs.toFixed(0)} ms, client CPU ${result.clientCpuMs.toFixed(0)} ms), ${result.bytes} B on the wire, diffs ${result.diffBytes} B`,
          )
        } finally {
          await load?.stop()
          await server.stop()
          rmSync(runDir, { recursive: true, force: true })
        }
      }
    }
    const summary = {}
    for (const [name, list] of Object.entries(runs)) {
      summary[name] = {
        runs: list,
        median: {
          ms: median(list.map((r) => r.ms)),
          bytes: median(list.map((r) => r.bytes)),
          bytesUp: median(list.map((r) => r.bytesUp)),
          bytesDown: median(list.map((r) => r.bytesDown)),
          diffBytes: median(list.map((r) => r.diffBytes)),
          sockets: median(list.map((r) => r.sockets)),
          serverCpuMs: median(list.map((r) => r.serverCpuMs)),
          clientCpuMs: median(list.map((r) => r.clientCpuMs)),
        },
      }
    }
    return { config: { records, edits, repeats }, contenders: summary }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The offline docs of the records in `file`: each with `edits` edits the server lacks (client ids from `firstClient`). */
const offlineDocs = (file, edits, firstClient) =>
  readBlobs(file).map(([name, state], i) => {
    const doc = new Y.Doc()
    doc.clientID = firstClient + i
    Y.applyUpdate(doc, state)
    offlineEdits(doc, edits, 1000 + i)
    return { name, doc, serverVector: Y.encodeStateVectorFromUpdate(state) }
  })

/** Load-process side: builds the offline docs (untimed), warms the server up (untimed), then reconnects (timed). */
export const reconnectLoad = async ({ url, client, baseFile, warmFile, edits }, parent) => {
  const reconnect = { engine: reconnectEngine, 'y-websocket': reconnectYWebsocket, hocuspocus: reconnectHocuspocus }[client]
  if (reconnect === undefined) throw new Error(`unknown client ${client}`)
  const docs = offlineDocs(baseFile, edits, 5_000_000)
  if (warmFile !== undefined) {
    const warmSockets = []
    class WarmWebSocket extends WebSocket {
      constructor(address, protocolsOrOptions, options) {
        super(address, protocolsOrOptions, options)
        warmSockets.push(this)
      }
    }
    const finishWarm = await reconnect(url, offlineDocs(warmFile, edits, 6_000_000), WarmWebSocket)
    finishWarm()
    for (const ws of warmSockets) ws.terminate()
  }
  const diffBytes = docs.reduce((n, d) => n + Y.encodeStateAsUpdate(d.doc, d.serverVector).byteLength, 0)
  const sockets = []
  class CountingWebSocket extends WebSocket {
    constructor(address, protocolsOrOptions, options) {
      super(address, protocolsOrOptions, options)
      sockets.push(this)
    }
  }
  const serverCpu0 = await parent.call('serverCpu')
  const loadCpu0 = process.cpuUsage()
  const started = performance.now()
  const finish = await reconnect(url, docs, CountingWebSocket)
  const ms = performance.now() - started
  const loadCpu = process.cpuUsage(loadCpu0)
  const serverCpu1 = await parent.call('serverCpu')
  let bytesUp = 0
  let bytesDown = 0
  for (const ws of sockets) {
    const b = socketBytes(ws)
    bytesUp += b.written
    bytesDown += b.read
  }
  finish()
  for (const ws of sockets) ws.terminate()
  return {
    ms,
    bytes: bytesUp + bytesDown,
    bytesUp,
    bytesDown,
    diffBytes,
    sockets: sockets.length,
    docs: docs.length,
    serverCpuMs: (serverCpu1.micros - serverCpu0.micros) / 1000,
    clientCpuMs: (loadCpu.user + loadCpu.system) / 1000,
  }
}

const reconnectEngine = async (url, docs, WebSocketImpl) => {
  const { SyncClient } = await import('../../packages/engine/dist/index.js')
  const client = new SyncClient({ url, WebSocket: WebSocketImpl })
  for (const d of docs) client.open(d.name, { doc: d.doc })
  await client.flush()
  return () => client.close()
}

const reconnectYWebsocket = async (url, docs, WebSocketImpl) => {
  const { WebsocketProvider } = await import('y-websocket')
  process.setMaxListeners(0) // every provider adds a process 'exit' listener
  const providers = []
  await Promise.all(
    docs.map(async (d) => {
      const provider = new WebsocketProvider(url, d.name, d.doc, { WebSocketPolyfill: WebSocketImpl, disableBc: true })
      providers.push(provider)
      await new Promise((resolve) => {
        if (provider.synced) resolve()
        else provider.on('sync', (synced) => synced && resolve())
      })
      // probe: the answer to this step 1 comes after the relay applied our step 2
      const ws = provider.ws
      await new Promise((resolve) => {
        const onMessage = (data) => {
          const bytes = new Uint8Array(data)
          if (bytes[0] === 0 && bytes[1] === SYNC_STEP2) {
            ws.off('message', onMessage)
            resolve()
          }
        }
        ws.on('message', onMessage)
        ws.send(protocols.yws.sync(d.name, SYNC_STEP1, Y.encodeStateVector(d.doc)))
      })
    }),
  )
  return () => {
    for (const provider of providers) provider.destroy()
  }
}

/** An awareness update with one client's empty state `{}`, as a fresh y-protocols Awareness sends it. */
const emptyAwareness = (clientID) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, clientID)
  encoding.writeVarUint(e, 0)
  encoding.writeVarString(e, '{}')
  return encoding.toUint8Array(e)
}

const reconnectHocuspocus = async (url, docs, WebSocketImpl) => {
  const proto = protocols.hocuspocus
  const ws = new WebSocketImpl(url, { perMessageDeflate: false })
  const byName = new Map(docs.map((d) => [d.name, { ...d, synced: false, sent: 0, statuses: 0, done: null }]))
  let remaining = byName.size
  let resolveAll
  const allDone = new Promise((resolve) => (resolveAll = resolve))
  const check = (s) => {
    if (s.done || !s.synced || s.sent === 0 || s.statuses < s.sent) return
    s.done = true
    if (--remaining === 0) resolveAll()
  }
  ws.on('message', (data) => {
    const m = proto.parse(data)
    const s = byName.get(m.doc)
    if (!s) return
    if (m.kind === 'step1') {
      const vector = decoding.readVarUint8Array(m.decoder)
      ws.send(proto.sync(s.name, SYNC_STEP2, Y.encodeStateAsUpdate(s.doc, vector)))
      s.sent++
    } else if (m.kind === 'step2') {
      Y.applyUpdate(s.doc, decoding.readVarUint8Array(m.decoder), 'server')
      s.synced = true
      check(s)
    } else if (m.kind === 'status') {
      s.statuses++
      check(s)
    } else if (m.kind === 'error') {
      throw new Error(`Hocuspocus refused ${m.doc}: ${m.error}`)
    }
  })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  for (const s of byName.values()) {
    ws.send(proto.auth(s.name))
    ws.send(proto.sync(s.name, SYNC_STEP1, Y.encodeStateVector(s.doc)))
    ws.send(proto.awareness(s.name, emptyAwareness(s.doc.clientID)))
  }
  await allDone
  return () => ws.close()
}
