/**
 * Relay start-up with many stored docs: the time from spawning the relay
 * process to its `listening on …` line, on a data dir of 10,000 stored docs
 * (each a small ticket-like doc: a checkpoint and a short log), and then the
 * time until a client reads a stored doc through it. Each start is paired
 * with one on an empty data dir, in the same conditions, for comparison.
 *
 * The data dir is generated once per machine (kept in the temp dir under a
 * versioned name, re-made when missing) with the relay's own SQLite code, so
 * repeated runs measure start-up, not generation. Bounded in `npm test`
 * (3 starts); the long run (`npm run test:chaos -- --suite startup --starts 200`)
 * starts it as often as asked and reports the p99. Start-ups are not asserted
 * against a time (speed is measured, not tested): the test checks that the
 * relay starts on that data and serves it.
 */
import { existsSync, renameSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { SyncClient } from '@concord/engine'
import { SqliteDatabase } from '../../apps/relay/src/storage/SqliteDatabase.js'
import { makeTempDir, removeDir, startRelay } from '../helpers/relayProcess.js'
import { envInt, isLongRun, report, runSeed, summary, RELAY_START_TIMEOUT_MS } from './lib/runOptions.js'
import { sqliteFile } from './lib/storedDocs.js'

const DOC_COUNT = 10_000
/** Versioned: change the name when what is generated changes. */
const DATA_DIR = path.join(os.tmpdir(), `concord-reliability-${DOC_COUNT}-docs-v1`)
const docName = (i: number): string => `startup/T-${String(i).padStart(5, '0')}`

/** Generates the data dir (into a temp dir renamed at the end, so a half-made one is never used). */
const generate = (): void => {
  const building = makeTempDir('concord-startup-building-')
  const db = SqliteDatabase.open(sqliteFile(building))
  try {
    for (let start = 0; start < DOC_COUNT; start += 500) {
      const batch = []
      for (let i = start; i < Math.min(DOC_COUNT, start + 500); i++) {
        const doc = new Y.Doc()
        const updates: Uint8Array[] = []
        doc.on('update', (u: Uint8Array) => updates.push(u))
        doc.getMap('fields').set('status', 'open')
        doc.getText('title').insert(0, `Ticket ${i}`)
        doc.getText('description').insert(0, `Stored ticket number ${i}, generated for the start-up measurement.`)
        batch.push({ doc: docName(i), updates, state: Y.encodeStateAsUpdate(doc) })
      }
      db.appendBatches([batch.map(({ doc, updates }) => ({ doc, updates }))])
      // every other doc compacted: a checkpoint and an empty log, the rest a log only
      for (const [k, { doc, state }] of batch.entries()) if (k % 2 === 0) db.writeCheckpoint(doc, state, 3)
    }
  } finally {
    db.close()
  }
  renameSync(building, DATA_DIR)
}

describe('relay start-up with 10,000 stored docs', () => {
  const starts = envInt('CHAOS_STARTS', 3)
  it(
    `starts ${starts} times on the same data and serves a stored doc each time`,
    { timeout: isLongRun() ? 24 * 3_600_000 : 120_000 },
    async () => {
      if (!existsSync(sqliteFile(DATA_DIR))) generate()
      const gen = prng.create(runSeed())
      const listening: number[] = []
      const firstRead: number[] = []
      const listeningEmpty: number[] = []
      for (let n = 0; n < starts; n++) {
        const emptyDir = makeTempDir('concord-startup-empty-')
        try {
          const spawnedEmpty = performance.now()
          const empty = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: emptyDir })
          listeningEmpty.push(performance.now() - spawnedEmpty)
          expect(await empty.stop()).toBe(0)
        } finally {
          removeDir(emptyDir)
        }
        const spawned = performance.now()
        const relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir: DATA_DIR })
        listening.push(performance.now() - spawned)
        const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never })
        try {
          const i = prng.uint32(gen, 0, DOC_COUNT - 1)
          const handle = client.open(docName(i))
          await handle.synced
          firstRead.push(performance.now() - spawned)
          expect(handle.doc.getText('title').toString()).toBe(`Ticket ${i}`)
        } finally {
          client.close()
          expect(await relay.stop()).toBe(0)
        }
      }
      report(
        'startup',
        `${DOC_COUNT} stored docs: spawn to listening ${summary(listening)}; spawn to a stored doc read ${summary(firstRead)}; ` +
          `empty data dir: spawn to listening ${summary(listeningEmpty)}`,
      )
    },
  )
})
