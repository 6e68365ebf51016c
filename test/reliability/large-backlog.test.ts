/**
 * A large offline backlog gets through the relay: a client that made 20,000
 * small changes while offline (together larger than the relay's largest
 * message, 1 MiB) connects, and every change is acked — its catch-up goes out
 * in bounded parts, each once the previous one is acked
 * (`packages/engine/src/sync/updateParts.ts`), without the relay closing the
 * connection (apply budget) and without the client reconnecting. Then the
 * relay is killed with SIGKILL and every change must be in its SQLite file.
 *
 * The changes are seeded (`lib0/prng`, a fresh seed per run, printed;
 * `CHAOS_SEED=<seed>` replays them). Runs the relay from `apps/relay/dist`:
 * build first.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { SyncClient } from '@concord/engine'
import { makeTempDir, removeDir, startRelay } from '../helpers/relayProcess.js'
import { RELAY_START_TIMEOUT_MS, report, runSeed } from './lib/runOptions.js'
import { readStoredState } from './lib/storedDocs.js'

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Changes in the backlog. */
const CHANGES = 20_000
/** The relay's default largest message (`--max-payload`), which the whole backlog exceeds. */
const MAX_PAYLOAD = 1024 * 1024

/** A metric's value (0 when absent) from the relay's `/metrics`. */
const metricValue = async (url: string, pattern: RegExp): Promise<number> =>
  Number(pattern.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0)

describe('a large offline backlog', () => {
  const seed = runSeed()
  it(`seed ${seed}: ${CHANGES} changes made offline are all acked, in parts, on one connection`, { timeout: 180_000 }, async () => {
    const gen = prng.create(seed)
    const dataDir = makeTempDir('concord-backlog-')
    cleanups.push(() => removeDir(dataDir))
    // The changes, one transaction each, made before the client ever connects.
    const doc = new Y.Doc()
    const text = doc.getText('body')
    for (let i = 0; i < CHANGES; i++) {
      doc.transact(() => {
        doc.getMap('m').set(`k${i}`, prng.word(gen, 40, 60))
        text.insert(prng.uint32(gen, 0, text.length), `${prng.word(gen, 1, 6)} `)
      })
    }
    const backlogBytes = Y.encodeStateAsUpdate(doc).byteLength
    expect(backlogBytes).toBeGreaterThan(MAX_PAYLOAD)

    const relay = await startRelay({ startTimeoutMs: RELAY_START_TIMEOUT_MS, dataDir })
    cleanups.push(() => relay.kill())
    const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, reconnect: { minDelay: 10, maxDelay: 200 } })
    cleanups.push(() => client.close())
    const statuses: string[] = []
    client.on('status', (status) => statuses.push(status))
    let acks = 0
    const started = performance.now()
    const handle = client.open('backlog/doc', { doc })
    handle.on('ack', () => acks++)
    expect(handle.pending).toBeGreaterThan(0)
    await handle.flush()
    const flushSeconds = (performance.now() - started) / 1000
    expect(handle.pending).toBe(0)
    expect(handle.error).toBeNull()
    // One connection did it: online once and never offline again, and the relay refused nothing.
    expect(statuses).toEqual(['online'])
    expect(await metricValue(relay.url, /^concord_refusals_total\{reason="apply-budget"\} (\d+)/m)).toBe(0)
    // one subscription: the client's single `resume` (a relay that takes it) or `subscribe`
    const subscribes = await metricValue(relay.url, /^concord_messages_in_total\{type="subscribe"\} (\d+)/m)
    const resumes = await metricValue(relay.url, /^concord_messages_in_total\{type="resume"\} (\d+)/m)
    expect(subscribes + resumes).toBe(1)

    await relay.kill()
    const stored = readStoredState(dataDir)
    expect(stored.integrity).toBe('ok')
    const storedDoc = stored.docs.get('backlog/doc')!
    expect(storedDoc.getMap('m').size).toBe(CHANGES)
    expect(storedDoc.getText('body').toString()).toBe(text.toString())
    report(
      'backlog',
      `seed ${seed}: ${CHANGES} offline changes (${(backlogBytes / 1024 / 1024).toFixed(2)} MB as one update) acked in ${flushSeconds.toFixed(1)} s ` +
        `over ${acks} acks on 1 subscription, 0 apply-budget closes; all in the file after SIGKILL`,
    )
  })
})
