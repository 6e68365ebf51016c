/**
 * Smoke test of the benchmark harness (test/bench): one very small case of
 * each harness function, so `npm test` catches a broken benchmark. No timing
 * assertions — only that every case runs and reports sane figures.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import {
  applyCost,
  capacity,
  coldLoad,
  editedTicketState,
  fanOut,
  idleTab,
  newDevice,
  offlineReconnect,
  reconnectStorm,
  relayMemory,
  scaleOut,
  summarizeProfile,
  textAppendUpdate,
} from './bench/harness.mjs'

describe('benchmark harness', () => {
  it('hand-encodes Yjs updates byte for byte as Yjs does', () => {
    const doc = new Y.Doc()
    doc.clientID = 123456
    const fromYjs: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => fromYjs.push(u))
    const text = doc.getText('t7')
    for (let i = 0; i < 4; i++) text.insert(text.length, 'x')
    expect(fromYjs.map((u) => Array.from(u))).toEqual([0, 1, 2, 3].map((i) => Array.from(textAppendUpdate(123456, i, 't7', 'x'))))
  })

  it('builds a consistent 1,000-edit doc', () => {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, editedTicketState(100))
    expect(doc.store.pendingStructs).toBeNull()
    expect(doc.store.pendingDs).toBeNull()
  })

  it('runs fan-out against every server', { timeout: 90_000 }, async () => {
    const result = await fanOut({
      rooms: 1,
      clients: 3,
      contenders: ['floor', 'y-websocket-server', 'hocuspocus', 'concord', 'concord-yws-memory'],
      repeats: 1,
      offeredDeliveries: 200,
      warmupMs: 50,
      measureMs: 250,
      saturationMs: 100,
    })
    for (const [name, { runs }] of Object.entries(result.contenders)) {
      const [run] = runs
      expect(run.errors, name).toEqual([])
      expect(run.lost, name).toBe(0)
      expect(run.delivered, name).toBeGreaterThan(0)
      expect(run.cpuPerDelivered, name).toBeGreaterThan(0)
      expect(run.saturation.updatesPerSec, name).toBeGreaterThan(0)
    }
    expect(result.contenders.concord.runs[0].ackP50).toBeGreaterThan(0)
    expect(applyCost({ rooms: 1, clients: 3, totalUpdates: 300, repeats: 1 }).microsPerUpdate).toBeGreaterThan(0)
  })

  it('runs a cold load and its floors', { timeout: 60_000 }, async () => {
    const { results } = await coldLoad({ counts: [20], repeats: 1 })
    expect(results[0].coldDocMs).toBeGreaterThan(0)
    expect(results[0].coldProcessMs).toBeGreaterThan(0)
    expect(results[0].coldDocFloorMs).toBeGreaterThan(0)
  })

  it('runs an offline reconnect with every client', { timeout: 60_000 }, async () => {
    const result = await offlineReconnect({ records: 3, edits: 2, repeats: 1 })
    for (const [name, { median }] of Object.entries(result.contenders)) {
      expect(median.ms, name).toBeGreaterThan(0)
      expect(median.bytesUp, name).toBeGreaterThan(median.diffBytes)
    }
    expect(result.contenders['y-websocket'].median.sockets).toBe(3)
  })

  it('measures relay memory on every server', { timeout: 60_000 }, async () => {
    // a short dormancy: Concord is measured once its rooms went dormant
    const result = await relayMemory({ small: 4, big: 2, edits: 50, repeats: 1, dormantAfterMs: 100 })
    expect(Object.keys(result.contenders)).toHaveLength(5)
    for (const { median } of Object.values(result.contenders)) expect(Number.isFinite(median.bigDocBytes)).toBe(true)
  })

  it('runs a capacity step: team clients edit, keep awareness alive and are delivered to', { timeout: 60_000 }, async () => {
    const result = await capacity({
      steps: [20],
      windows: 2,
      warmupMs: 200,
      measureMs: 800,
      editMeanMs: 200,
      docsPerTeam: 3,
      loadProcesses: 2,
    })
    const [step] = result.steps
    expect(step!.errors).toEqual([])
    expect(step!.lost).toBe(0)
    expect(step!.windows).toHaveLength(2)
    const run = step!.windows[1]
    expect(run!.samples).toBeGreaterThan(0)
    expect(run!.deliveriesPerSec).toBeGreaterThan(0)
    expect(step!.awarenessReceived).toBeGreaterThan(0)
    expect(run!.relayCpu).toBeGreaterThan(0)
    expect(run!.loadCpu).toBeGreaterThan(0)
    expect(Number.isFinite(run!.eventLoopP99)).toBe(true)
  })

  it('runs a reconnect storm after kill -9 and a restart on the same port', { timeout: 60_000 }, async () => {
    const result = await reconnectStorm({ clients: 20, docsPerTeam: 3, repeats: 1, loadProcesses: 2 })
    const [run] = result.runs
    expect(run!.errors).toEqual([])
    expect(run!.ms).toBeGreaterThan(run!.listenMs)
    expect(run!.resyncs).toBe(0)
    expect(run!.missingDependencies).toBe(0)
  })

  it('runs an idle tab and its reconnect with the record store', { timeout: 60_000 }, async () => {
    const result = await idleTab({ records: 30, idleMs: 300 })
    const [run] = result.runs
    expect(run!.sockets).toBe(2)
    expect(Number.isFinite(run!.idle.frames)).toBe(true)
    expect(run!.reconnect.byType['received hello']).toBe(1)
    expect(run!.reconnect.frames).toBeGreaterThan(0)
  })

  it('runs a new device in Chromium against a relay with records', { timeout: 90_000 }, async (context) => {
    const result = await newDevice({ records: 20, repeats: 1 })
    if ('skipped' in result) return context.skip(result.skipped)
    const [run] = result.runs
    expect(run!.total).toBe(20)
    expect(run!.stored).toBe(20)
    expect(run!.firstScreenMs).toBeGreaterThan(0)
    expect(run!.allMs).toBeGreaterThanOrEqual(run!.firstScreenMs)
  })

  it(
    'runs relay instances on PostgreSQL + Redis with rooms spread and with the clients of each room spread',
    { timeout: 120_000 },
    async (context) => {
      const result = await scaleOut({
        instanceCounts: [1, 2],
        rooms: 2,
        clients: 4,
        offeredDeliveries: 200,
        warmupMs: 100,
        measureMs: 400,
        saturationMs: 200,
        repeats: 1,
      })
      if ('skipped' in result) return context.skip(result.skipped)
      const { rooms, clients } = result.layouts
      // one 1-instance run, the baseline of both layouts
      expect(rooms!.counts[1]!.runs).toBe(clients!.counts[1]!.runs)
      for (const [layout, { counts }] of Object.entries(result.layouts)) {
        for (const [instances, { runs }] of Object.entries(counts)) {
          const [run] = runs
          const label = `${layout}, ${instances}`
          expect(run!.errors, label).toEqual([])
          expect(run!.lost, label).toBe(0)
          expect(run!.cpuPerDelivered, label).toBeGreaterThan(0)
          expect(run!.saturation.updatesPerSec, label).toBeGreaterThan(0)
          expect(run!.sameInstance.samples, label).toBeGreaterThan(0)
        }
      }
      expect(clients!.counts[1]!.runs[0]!.crossInstance.samples).toBe(0)
      expect(clients!.counts[2]!.runs[0]!.crossInstance.samples).toBeGreaterThan(0)
      // with rooms spread every delivery stays on its room's instance
      expect(rooms!.counts[2]!.runs[0]!.crossInstance.samples).toBe(0)
      expect(result.cores).toBeGreaterThan(0)
      expect(result.throughputRatio).toBe(rooms!.throughputRatio)
      expect(clients!.throughputRatio).toBeGreaterThan(0)
    },
  )

  it('summarises a CPU profile', { timeout: 30_000 }, () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-smoke-'))
    try {
      execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '-e', 'let x = 0; for (let i = 0; i < 3e7; i++) x += i % 7'])
      const [file] = readdirSync(dir)
      const summary = summarizeProfile(path.join(dir, file))
      expect(summary.byComponent.length).toBeGreaterThan(0)
      expect(summary.topFunctions.length).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
