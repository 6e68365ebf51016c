/**
 * Case 5, relay memory: heap of the server process after forced GC with
 * `small` open idle rooms (a small ticket doc, one subscriber each), then with
 * `big` more rooms each holding a ticket after 1,000 edits by five people.
 * Per room = growth of heap and external memory (the encoded states of
 * dormant rooms live in ArrayBuffers) ÷ rooms. Every server holds the same
 * docs:
 *
 * - **Concord** loads them from SQLite (seeded before it starts), one
 *   multiplexed subscriber socket (how the engine connects); measured once
 *   the rooms went dormant (nobody wrote to them for the relay's
 *   `--dormant-after-ms`, default 10 s: they hold their docs encoded);
 * - **Concord, rooms kept awake** (diagnostic): the same with
 *   `--dormant-after-ms 0`, every room holding its `Y.Doc`;
 * - **Concord, y-websocket endpoint**: the same, one socket per doc (like for
 *   like with @y/websocket-server);
 * - **@y/websocket-server**: in memory, one socket per doc (its protocol); the
 *   subscriber pushes the doc (sync step 2) and a probe confirms it is applied;
 * - **Hocuspocus**: in memory, one multiplexed socket; the subscriber pushes
 *   the doc and waits for its `SyncStatus`.
 *
 * @module bench/memory
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { editedTicketState, readBlobs, ticketState, writeBlobs } from './lib/docs.mjs'
import { startChild } from './lib/processes.mjs'
import { alternate, median, withTimeout } from './lib/stats.mjs'
import { SYNC_STEP1, SYNC_STEP2, protocols } from './lib/wire.mjs'
import { LOAD_HOST, SERVER_HOST } from './fanout.mjs'

const THIS_MODULE = fileURLToPath(import.meta.url)

export const MEMORY_CONTENDERS = {
  concord: {
    label: 'Concord (SQLite-loaded, 1 mux socket)',
    server: { kind: 'concord', storage: 'sqlite' },
    protocol: 'mux',
    seeded: true,
  },
  'concord-yws': { label: 'Concord (1 socket per doc)', server: { kind: 'concord', storage: 'sqlite' }, protocol: 'yws', seeded: true },
  'concord-awake': {
    label: 'Concord (rooms kept awake)',
    server: { kind: 'concord', storage: 'sqlite', relayOptions: { dormantAfterMs: 0 } },
    protocol: 'mux',
    seeded: true,
    awake: true,
  },
  'y-websocket-server': {
    label: '@y/websocket-server (1 socket per doc)',
    server: { kind: 'y-websocket-server' },
    protocol: 'yws',
    seeded: false,
  },
  hocuspocus: { label: 'Hocuspocus (1 socket)', server: { kind: 'hocuspocus' }, protocol: 'hocuspocus', seeded: false },
}

export const relayMemory = async ({
  small = 1000,
  big = 100,
  edits = 1000,
  repeats = 5,
  contenders = ['concord', 'concord-yws', 'concord-awake', 'y-websocket-server', 'hocuspocus'],
  /** The relays' `--dormant-after-ms`; undefined: their default. */
  dormantAfterMs = undefined,
  cores = null,
  log = () => {},
}) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-memory-'))
  try {
    const smallFile = path.join(dir, 'small.bin')
    const bigFile = path.join(dir, 'big.bin')
    const smallEntries = Array.from({ length: small }, (_, i) => [`mem/s${i}`, ticketState(i)])
    const edited = editedTicketState(edits)
    const bigEntries = Array.from({ length: big }, (_, i) => [`mem/b${i}`, edited])
    writeBlobs(smallFile, smallEntries)
    writeBlobs(bigFile, bigEntries)
    const template = path.join(dir, 'template')
    mkdirSync(template)
    const { SqliteStorage } = await import('../../apps/relay/dist/index.js')
    const storage = SqliteStorage.open(path.join(template, 'concord.sqlite'))
    await storage.appendUpdates([...smallEntries, ...bigEntries].map(([doc, state]) => ({ doc, updates: [state] })))
    await storage.close()

    const runs = Object.fromEntries(contenders.map((name) => [name, []]))
    for (let rep = 0; rep < repeats; rep++) {
      for (const name of alternate(contenders, rep)) {
        const contender = MEMORY_CONTENDERS[name]
        const runDir = path.join(dir, `run-${rep}-${name}`)
        if (contender.seeded) cpSync(template, runDir, { recursive: true })
        const dormancy = contender.server.kind === 'concord' && !contender.awake
        const serverConfig =
          dormancy && dormantAfterMs !== undefined
            ? { ...contender.server, relayOptions: { ...contender.server.relayOptions, dormantAfterMs } }
            : contender.server
        const server = await startChild(SERVER_HOST, [JSON.stringify({ ...serverConfig, dataDir: runDir })], {
          core: cores?.server ?? null,
        })
        // a Concord relay with dormancy: measured once every room it holds went dormant
        const settled = async (rooms) => {
          if (!dormancy) return
          const deadline = Date.now() + 60_000
          for (;;) {
            const dormant = Number(/^concord_rooms_dormant (\d+)$/m.exec(await server.call('metrics'))?.[1] ?? 0)
            if (dormant >= rooms) return
            if (Date.now() > deadline) throw new Error(`${contender.label}: ${dormant} of ${rooms} rooms dormant after 60 s`)
            await new Promise((resolve) => setTimeout(resolve, 250))
          }
        }
        let load
        try {
          load = await startChild(LOAD_HOST, [], { core: cores?.load ?? null })
          const open = (file) =>
            withTimeout(
              load.call('run', THIS_MODULE, 'memoryOpen', { url: server.info.url, protocol: contender.protocol, file }),
              120_000,
              `opening rooms on ${contender.label}`,
            )
          const heap0 = await server.call('heap')
          await open(smallFile)
          await settled(small)
          const heap1 = await server.call('heap')
          await open(bigFile)
          await settled(small + big)
          const heap2 = await server.call('heap')
          const used = (heap) => heap.heapUsed + heap.external
          const result = {
            smallRoomBytes: (used(heap1) - used(heap0)) / small,
            bigDocBytes: (used(heap2) - used(heap1)) / big,
            smallRoomHeap: (heap1.heapUsed - heap0.heapUsed) / small,
            bigDocHeap: (heap2.heapUsed - heap1.heapUsed) / big,
            smallRoomExternal: (heap1.external - heap0.external) / small,
            bigDocExternal: (heap2.external - heap1.external) / big,
            rooms: heap2.rooms,
          }
          if (result.rooms !== small + big) throw new Error(`${contender.label} holds ${result.rooms} rooms, expected ${small + big}`)
          runs[name].push(result)
          log(
            `  memory ${name} #${rep + 1}: ${(result.smallRoomBytes / 1024).toFixed(1)} KiB per idle room, ${(result.bigDocBytes / 1024).toFixed(1)} KiB per 1,000-edit doc`,
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
          smallRoomBytes: median(list.map((r) => r.smallRoomBytes)),
          bigDocBytes: median(list.map((r) => r.bigDocBytes)),
        },
      }
    }
    return { config: { small, big, edits, repeats, bigDocStateBytes: edited.byteLength }, contenders: summary }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Open sockets of this load process; they stay open until it exits. */
const held = []

/**
 * Load-process side: subscribes to every doc in `file` and makes sure the
 * server holds it (pushing it where the server starts empty). Resolves when
 * all are in place; the sockets stay open.
 */
export const memoryOpen = async ({ url, protocol, file }) => {
  const proto = protocols[protocol]
  const docs = readBlobs(file).map(([name, state]) => ({
    name,
    state,
    vector: Y.encodeStateVectorFromUpdate(state),
    step2s: 0,
    statuses: 0,
  }))
  const ready = []
  const handle = (ws, d, m, resolve) => {
    if (m.kind === 'step1') {
      // answer with what the server lacks, then probe: the probe's answer proves our step 2 is applied
      const serverVector = decoding.readVarUint8Array(m.decoder)
      ws.send(proto.sync(d.name, SYNC_STEP2, Y.diffUpdate(d.state, serverVector)))
      if (protocol !== 'hocuspocus') ws.send(proto.sync(d.name, SYNC_STEP1, d.vector))
    } else if (m.kind === 'step2') {
      if (++d.step2s === 2 && protocol !== 'hocuspocus') resolve()
    } else if (m.kind === 'status') {
      if (++d.statuses === 1) resolve()
    } else if (m.kind === 'error') {
      throw new Error(`${d.name}: ${m.error}`)
    }
  }
  const start = (ws, d) => {
    if (protocol === 'mux') ws.send(proto.subscribe(d.name))
    if (protocol === 'hocuspocus') ws.send(proto.auth(d.name))
    ws.send(proto.sync(d.name, SYNC_STEP1, d.vector))
  }
  if (protocol === 'yws') {
    for (const d of docs) {
      ready.push(
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url + proto.path(d.name), { perMessageDeflate: false })
          held.push(ws)
          ws.on('error', reject)
          ws.on('open', () => start(ws, d))
          ws.on('message', (data) => handle(ws, d, proto.parse(data, d.name), resolve))
        }),
      )
    }
  } else {
    const ws = new WebSocket(url + proto.path(''), { perMessageDeflate: false })
    held.push(ws)
    const byName = new Map()
    for (const d of docs) ready.push(new Promise((resolve) => byName.set(d.name, { d, resolve })))
    ws.on('message', (data) => {
      const m = proto.parse(data)
      const entry = byName.get(m.doc)
      if (entry) handle(ws, entry.d, m, entry.resolve)
    })
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    for (const d of docs) start(ws, d)
  }
  await Promise.all(ready)
  return docs.length
}
