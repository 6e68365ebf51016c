/**
 * Storage faults on a real relay process (SQLite): the relay stays up, acks
 * nothing it could not commit, the client keeps its changes pending, and
 * once the fault clears everything is committed — also when the relay is
 * killed while the fault holds.
 *
 * - **busy**: another process's connection holds the write lock
 *   (`BEGIN IMMEDIATE`); each relay commit waits its busy timeout (5 s) and
 *   fails with `SQLITE_BUSY`.
 * - **disk full**: the relay process's file-size limit (`RLIMIT_FSIZE`, set
 *   on the running process with `prlimit`) is lowered to 1 byte, so every
 *   write to the database or its WAL fails, as on a full disk; raised again
 *   to clear it.
 *
 * - **slow fsync**: `strace` attached to the relay delays every real
 *   `fsync` / `fdatasync` (`lib/systemFaults.ts`): live updates still reach
 *   the other clients at once, acks wait for the commits, and every ack
 *   finds its change already in the file.
 *
 * A commit failure is observed on the relay's `concord_commit_failures_total`
 * metric, so "nothing acked" is checked after a commit really failed, not
 * after a guessed time. The stored file is read read-only after each run
 * (`lib/storedDocs.ts`). Needs `prlimit` (util-linux) for the disk-full case
 * and `strace` with ptrace permitted for the slow fsync (skipped, with the
 * reason, otherwise).
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import Database from 'better-sqlite3'
import { SyncClient, type DocHandle } from '@concord/engine'
import { makeTempDir, removeDir, runRelay, startRelay, type RelayProcess } from '../helpers/relayProcess.js'
import { RELAY_START_TIMEOUT_MS, report, summary } from './lib/runOptions.js'
import { startFaultProxy } from './lib/faultProxy.js'
import { readStoredState, sqliteFile } from './lib/storedDocs.js'
import { delayFsyncs, ext4ErrorUnavailable, fsyncDelayUnavailable, mountTmpfs, mountUnavailable, mountExt4 } from './lib/systemFaults.js'

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/**
 * A relay on a fresh data dir (`dataDir` when given) behind a proxy (the
 * client's address survives restarts), and a client with one doc open.
 */
const setUp = async (docName: string, givenDataDir?: string) => {
  const dataDir = givenDataDir ?? makeTempDir('concord-faults-')
  if (givenDataDir === undefined) cleanups.push(() => removeDir(dataDir))
  const proxy = await startFaultProxy(Math.random)
  cleanups.push(() => proxy.close())
  const client = new SyncClient({ url: proxy.wsUrl, WebSocket: WebSocket as never, reconnect: { minDelay: 10, maxDelay: 100 } })
  cleanups.push(() => client.close())
  const state = { relay: await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir }) }
  cleanups.push(() => state.relay.stop())
  proxy.retarget(state.relay.wsUrl)
  const handle = client.open(docName)
  handle.doc.getMap('m').set('before', 1)
  await client.flush()
  return { dataDir, proxy, client, handle, state }
}

/** Resolves once the relay has counted more than `count` failed commits. */
const commitFailuresAbove = async (relay: RelayProcess, count: number): Promise<number> => {
  let failures = 0
  const read = async (): Promise<number> => {
    const metrics = await (await fetch(`${relay.url}/metrics`)).text()
    return Number(/^concord_commit_failures_total (\d+)/m.exec(metrics)?.[1] ?? 0)
  }
  failures = await read()
  const deadline = Date.now() + 20_000
  while (failures <= count) {
    if (Date.now() > deadline) throw new Error(`the relay counted no failed commit in 20 s (${failures})`)
    await new Promise((resolve) => setTimeout(resolve, 50)) // polls the metric: a failed commit has no event outside the relay
    failures = await read()
  }
  return failures
}

/** Makes a change that the ack events of `handle` report on: resolves `acked` when an ack covers it. */
const change = (handle: DocHandle, key: string) => {
  const doc = handle.doc
  doc.getMap('m').set(key, 1)
  const clock = Y.getState(doc.store, doc.clientID)
  const client = doc.clientID
  const tracker = { acked: false }
  handle.on('ack', (acked) => {
    if ((acked.get(client) ?? 0) >= clock) tracker.acked = true
  })
  return tracker
}

const storedValue = (dataDir: string, docName: string, key: string): unknown => {
  const stored = readStoredState(dataDir)
  expect(stored.integrity).toBe('ok')
  return stored.docs.get(docName)?.getMap('m').get(key)
}

/** Sets the relay process's file-size limit (`unlimited` or bytes). */
const setFileSizeLimit = (relay: RelayProcess, limit: string): void => {
  const result = spawnSync('prlimit', ['--pid', String(relay.child.pid), `--fsize=${limit}:unlimited`])
  if (result.status !== 0) throw new Error(`prlimit failed: ${result.stderr.toString()}`)
}

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0
const noFsyncDelay = fsyncDelayUnavailable()
const noMount = mountUnavailable()
const noExt4Error = ext4ErrorUnavailable()

/** Resolves once `handle`'s doc holds `key` in its map `m`. */
const received = (handle: DocHandle, key: string): Promise<void> =>
  new Promise((resolve) => {
    const check = (): void => {
      if (!handle.doc.getMap('m').has(key)) return
      handle.doc.off('update', check)
      resolve()
    }
    handle.doc.on('update', check)
    check()
  })

/** How long each fsync is delayed in the slow-fsync test: far longer than a loopback round trip. */
const FSYNC_DELAY_MS = 400

describe('storage faults on the relay', () => {
  it('a held write lock: nothing acked while commits fail, the relay stays up, and all is committed once the lock is released', async () => {
    const { dataDir, client, handle, state } = await setUp('faults/busy')
    const lock = new Database(sqliteFile(dataDir))
    lock.exec('BEGIN IMMEDIATE')
    const during = change(handle, 'during-lock')
    await commitFailuresAbove(state.relay, 0)
    expect(during.acked).toBe(false)
    expect(handle.pending).toBeGreaterThan(0)
    expect((await fetch(`${state.relay.url}/healthz`)).status).toBe(200)
    lock.exec('COMMIT')
    lock.close()
    await client.flush()
    expect(during.acked).toBe(true)
    expect(handle.pending).toBe(0)
    await state.relay.kill()
    expect(storedValue(dataDir, 'faults/busy', 'during-lock')).toBe(1)
  })

  it('a held write lock and a SIGKILL: the change stays pending in the client and is committed by the next relay', async () => {
    const { dataDir, proxy, client, handle, state } = await setUp('faults/busy-kill')
    const lock = new Database(sqliteFile(dataDir))
    lock.exec('BEGIN IMMEDIATE')
    const during = change(handle, 'during-lock')
    await commitFailuresAbove(state.relay, 0)
    await state.relay.kill()
    lock.exec('COMMIT')
    lock.close()
    expect(during.acked).toBe(false)
    expect(storedValue(dataDir, 'faults/busy-kill', 'during-lock')).toBeUndefined()
    state.relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir })
    proxy.retarget(state.relay.wsUrl)
    await client.flush()
    expect(during.acked).toBe(true)
    await state.relay.kill()
    expect(storedValue(dataDir, 'faults/busy-kill', 'during-lock')).toBe(1)
  })

  it.runIf(hasPrlimit)(
    'a full disk (file-size limit): nothing acked, the file stays sound, and all is committed once space is back',
    async () => {
      const { dataDir, client, handle, state } = await setUp('faults/full')
      const failuresBefore = await commitFailuresAbove(state.relay, -1)
      setFileSizeLimit(state.relay, '1')
      const during = change(handle, 'while-full')
      await commitFailuresAbove(state.relay, failuresBefore)
      expect(during.acked).toBe(false)
      expect(handle.pending).toBeGreaterThan(0)
      expect((await fetch(`${state.relay.url}/healthz`)).status).toBe(200)
      // the reason names the file (a file-size limit makes SQLite say "disk I/O error"; a full disk, "database or disk is full")
      const readiness = await (await fetch(`${state.relay.url}/readyz`)).json()
      expect(readiness).toMatchObject({ status: 'commits failing' })
      expect(readiness.reason).toContain(`${dataDir}/concord.sqlite`)
      setFileSizeLimit(state.relay, 'unlimited')
      await client.flush()
      expect(during.acked).toBe(true)
      await state.relay.kill()
      expect(storedValue(dataDir, 'faults/full', 'while-full')).toBe(1)
    },
  )

  it('slow fsyncs: live updates are not held back, acks come only after the commit, and all is committed once the disk is fast again', async (ctx) => {
    if (noFsyncDelay !== null) ctx.skip(noFsyncDelay)
    const { dataDir, client, handle, state } = await setUp('faults/slow-fsync')
    const reader = new SyncClient({ url: state.relay.wsUrl, WebSocket: WebSocket as never })
    cleanups.push(() => reader.close())
    const readerHandle = reader.open('faults/slow-fsync')
    await received(readerHandle, 'before')
    // Every ack must find the changes it covers in the file already: read it at the ack.
    const keys: string[] = []
    const ackedKeys = new Set<string>()
    const trackers = new Map<string, { acked: boolean }>()
    /** Each key's change, as the doc's own clock right after it. */
    const clocks = new Map<string, number>()
    const madeAt = new Map<string, number>()
    const ackMs: number[] = []
    const makeChange = (key: string): void => {
      keys.push(key)
      madeAt.set(key, performance.now())
      trackers.set(key, change(handle, key))
      clocks.set(key, Y.getState(handle.doc.store, handle.doc.clientID))
    }
    handle.on('ack', (acked) => {
      const covered = acked.get(handle.doc.clientID) ?? 0
      const stored = readStoredState(dataDir).docs.get('faults/slow-fsync')?.getMap('m')
      for (const key of keys)
        if (!ackedKeys.has(key) && clocks.get(key)! <= covered) {
          expect(stored?.get(key), `${key} acked before it was in the file`).toBe(1)
          ackedKeys.add(key)
          ackMs.push(performance.now() - madeAt.get(key)!)
        }
    })
    const slow = await delayFsyncs(state.relay.child.pid!, FSYNC_DELAY_MS)
    cleanups.push(() => slow.stop())
    let deliveredBeforeAck = 0
    const deliveryMs: number[] = []
    for (let i = 0; i < 5; i++) {
      const key = `slow-${i}`
      makeChange(key)
      await received(readerHandle, key)
      deliveryMs.push(performance.now() - madeAt.get(key)!)
      if (!trackers.get(key)!.acked) deliveredBeforeAck++
    }
    // The relay is up and the fault is real: fsyncs were delayed while these changes were committed.
    expect((await fetch(`${state.relay.url}/healthz`)).status).toBe(200)
    await client.flush()
    expect(deliveredBeforeAck).toBe(keys.length)
    expect([...trackers.values()].every((tracker) => tracker.acked)).toBe(true)
    await slow.stop()
    expect(slow.delayed()).toBeGreaterThan(0)
    // The disk is fast again: a new change is acked too, then the file after a SIGKILL holds everything acked.
    makeChange('after')
    await client.flush()
    expect(handle.pending).toBe(0)
    expect(ackedKeys).toEqual(new Set(keys))
    await state.relay.kill()
    for (const key of keys) expect(storedValue(dataDir, 'faults/slow-fsync', key)).toBe(1)
    report(
      'faults',
      `slow fsync (${FSYNC_DELAY_MS} ms each, ${slow.delayed()} delayed): ${deliveredBeforeAck}/5 changes reached the other client before their ack; ` +
        `delivery ${summary(deliveryMs)}; change to ack ${summary(ackMs)}; all ${keys.length} acked changes in the file after SIGKILL`,
    )
  })

  it('a data dir that turns read-only under the relay: nothing acked, /readyz says why, and all is committed after the repair', async (ctx) => {
    if (noExt4Error !== null) ctx.skip(noExt4Error)
    const volume = mountExt4(32)
    cleanups.push(() => volume.remove())
    const dataDir = path.join(volume.dir, 'data')
    const { proxy, client, handle, state } = await setUp('faults/read-only', dataDir)
    const failuresBefore = await commitFailuresAbove(state.relay, -1)
    volume.failReadOnly()
    const during = change(handle, 'while-read-only')
    await commitFailuresAbove(state.relay, failuresBefore)
    expect(during.acked).toBe(false)
    expect(handle.pending).toBeGreaterThan(0)
    expect((await fetch(`${state.relay.url}/healthz`)).status).toBe(200)
    const ready = await fetch(`${state.relay.url}/readyz`)
    expect(ready.status).toBe(503)
    const readiness = (await ready.json()) as { status: string; reason: string }
    expect(readiness.status).toBe('commits failing')
    expect(readiness.reason).toMatch(/readonly|read-only/i)
    // Healing takes the operator's steps: stop the relay (it still holds its files open), repair the file system, start again.
    await state.relay.stop()
    expect(during.acked).toBe(false)
    volume.repair()
    state.relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir })
    proxy.retarget(state.relay.wsUrl)
    await client.flush()
    expect(during.acked).toBe(true)
    expect(handle.pending).toBe(0)
    await state.relay.kill()
    expect(storedValue(dataDir, 'faults/read-only', 'before')).toBe(1)
    expect(storedValue(dataDir, 'faults/read-only', 'while-read-only')).toBe(1)
  })

  it('a relay started on a read-only data dir exits with code 2 and names the directory and why', async (ctx) => {
    if (noMount !== null) ctx.skip(noMount)
    const mounted = mountTmpfs(8)
    cleanups.push(() => mounted.remove())
    const stored = path.join(mounted.dir, 'stored')
    const empty = path.join(mounted.dir, 'empty')
    mkdirSync(empty)
    const relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: stored })
    await relay.stop()
    mounted.readOnly(true)
    for (const dataDir of [stored, empty]) {
      const result = await runRelay(['--port', '0', '--data', dataDir, '--log-level', 'error'])
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(`cannot open sqlite storage in ${dataDir}`)
      expect(result.stderr).toContain(`${dataDir} is on a read-only file system`)
    }
  })
})
