/**
 * Docs up to --max-doc-bytes can be opened by a fresh client, on both
 * endpoints, against a real relay process with its default limits: a writer
 * builds a ~60 MiB doc (updates of ≤ 0.9 MiB of seeded random text), then a
 * fresh engine client, a fresh stock y-websocket client and an engine
 * `fetchDoc` each get it whole — the relay sends the initial sync in parts,
 * paced by the socket draining, instead of one frame its slow-reader guard
 * would cut off. A reader that stops reading live traffic afterwards is still
 * disconnected as a slow reader.
 *
 * Prints the time each fresh client took, the relay's RSS before and after,
 * and the largest send buffer the relay saw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { WebsocketProvider } from 'y-websocket'
import { SyncClient } from '@concord/engine'
import { MessageType } from '@concord/engine/protocol'
import { removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { randomText } from './helpers/randomText.js'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))
const DOC = 'acme/big'
/** Updates of ~0.9 MiB: 68 of them make ~60 MiB. */
const UPDATE_CHARS = 900 * 1024
const UPDATES = 68

let relay: RelayProcess
/** The writer's copy: what every fresh client must end up with. */
const source = new Y.Doc()
let rssBefore = 0
const timings: Record<string, number> = {}

/** A metric's value from the relay's /metrics. */
const metric = async (name: string): Promise<number> => {
  const text = await (await fetch(`${relay.url}/metrics`)).text()
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return match ? Number(match[1]) : 0
}

/** Text and fields of a doc, to compare whole docs cheaply and exactly. */
const contentOf = (doc: Y.Doc): { text: string; fields: unknown; stateVector: string } => ({
  text: doc.getText('body').toString(),
  fields: doc.getMap('fields').toJSON(),
  stateVector: Buffer.from(Y.encodeStateVector(doc)).toString('hex'),
})

const stateOf = (doc: Y.Doc): string => Buffer.from(Y.encodeStateVector(doc)).toString('hex')

const engineClient = (): SyncClient =>
  new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, reconnect: { minDelay: 20, maxDelay: 200 } })

beforeAll(async () => {
  // default limits, except the apply budget, which is for people typing, not for this build loop on a loaded machine
  relay = await startRelay({ args: ['--apply-ms-per-second', '1000', '--apply-burst-ms', '600000'] })
  rssBefore = await metric('concord_process_resident_memory_bytes')
  const gen = prng.create(SEED)
  const buildStarted = performance.now()
  const writer = new RawMuxClient(relay.wsUrl)
  await writer.open()
  const doc = writer.subscribe(DOC)
  await writer.waitFor((m) => m.type === MessageType.ack && m.doc === DOC, 'ack of the subscription')
  for (let i = 0; i < UPDATES; i++) {
    const before = Y.encodeStateVector(doc)
    // half of it one long text typed by one writer (Yjs keeps it as one item), half map values
    if (i % 2 === 0) doc.getText('body').insert(doc.getText('body').length, randomText(gen, UPDATE_CHARS))
    else doc.getMap('fields').set(`f${i}`, randomText(gen, UPDATE_CHARS))
    const update = Y.encodeStateAsUpdate(doc, before)
    expect(update.byteLength).toBeLessThanOrEqual(0.9 * 1024 * 1024 + 64)
    writer.sendUpdate(DOC, update)
    // a few at a time: the relay's apply-time budget is for people, not for this loop
    if (i % 6 === 5 || i === UPDATES - 1) {
      await writer.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), `ack of update ${i}`, 30_000)
    }
  }
  timings['build'] = performance.now() - buildStarted
  Y.applyUpdate(source, Y.encodeStateAsUpdate(doc))
  writer.close()
  expect(Y.encodeStateAsUpdate(source).byteLength).toBeGreaterThan(58 * 1024 * 1024)
}, 120_000)

afterAll(async () => {
  const rssAfter = await metric('concord_process_resident_memory_bytes')
  const bufferMax = await metric('concord_send_buffer_max_bytes')
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
  console.log(
    `big doc (${mib(Y.encodeStateAsUpdate(source).byteLength)}, SEED=${SEED}): ` +
      Object.entries(timings)
        .map(([what, ms]) => `${what} ${Math.round(ms)} ms`)
        .join(', ') +
      `; relay RSS ${mib(rssBefore)} before, ${mib(rssAfter)} after; largest send buffer ${mib(bufferMax)}`,
  )
  await relay.stop()
  removeDir(relay.dataDir)
})

describe(`a ~60 MiB doc (SEED=${SEED})`, () => {
  it('a fresh engine client opens it on the multiplexed endpoint, synced only once it has everything', async () => {
    const client = engineClient()
    try {
      const started = performance.now()
      const handle = client.open(DOC)
      await handle.synced
      timings['engine open'] = performance.now() - started
      expect(contentOf(handle.doc)).toEqual(contentOf(source))
      expect(handle.doc.store.pendingStructs).toBeNull()
      expect(handle.error).toBeNull()
      // parts whose structs wait for a later part never made the engine or the relay ask for a resync
      expect(await metric('concord_refusals_total\\{reason="missing-dependencies"\\}')).toBe(0)
    } finally {
      client.close()
    }
  }, 60_000)

  it('a fresh stock y-websocket client syncs it fully on /<doc>', async () => {
    const doc = new Y.Doc()
    const started = performance.now()
    const provider = new WebsocketProvider(relay.wsUrl, DOC, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
    try {
      await new Promise<void>((resolve, reject) => {
        provider.once('sync', () => resolve())
        provider.once('connection-close', (event) => reject(new Error(`connection closed: ${event?.code} ${event?.reason}`)))
      })
      timings['y-websocket sync'] = performance.now() - started
      expect(contentOf(doc)).toEqual(contentOf(source))
    } finally {
      provider.destroy()
    }
  }, 60_000)

  it('an engine fetchDoc gets it whole (in parts, merged)', async () => {
    const client = engineClient()
    try {
      const started = performance.now()
      const fetched = await client.fetchDoc(DOC)
      timings['engine fetchDoc'] = performance.now() - started
      const doc = new Y.Doc()
      Y.applyUpdate(doc, fetched.update)
      expect(contentOf(doc)).toEqual(contentOf(source))
      expect(Y.decodeStateVector(fetched.stateVector)).toEqual(Y.decodeStateVector(Y.encodeStateVector(source)))
    } finally {
      client.close()
    }
  }, 60_000)

  it('a reader that opened a doc far over the send-buffer limit, then stops reading live traffic, is disconnected as a slow reader', async () => {
    // small limits, so that live traffic beyond the send-buffer limit and the kernel's socket buffers stays small too
    // the apply and work budgets are not under test: a loaded machine must not trip them while the doc is built
    const small = await startRelay({
      args: [
        '--max-payload',
        '65536',
        '--max-buffered-bytes',
        '262144',
        '--apply-ms-per-second',
        '1000',
        '--apply-burst-ms',
        '600000',
        '--work-burst-ms',
        '600000',
      ],
    })
    try {
      const slowReaders = async (): Promise<number> => {
        const text = await (await fetch(`${small.url}/metrics`)).text()
        return Number(/^concord_refusals_total\{reason="slow-reader"\} (\d+)$/m.exec(text)?.[1] ?? 0)
      }
      const gen = prng.create(SEED + 1)
      const writer = new RawMuxClient(small.wsUrl)
      await writer.open()
      const doc = writer.subscribe('acme/doc')
      await writer.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/doc', 'ack of the subscription')
      for (let i = 0; i < 64; i++) {
        const sv = Y.encodeStateVector(doc)
        doc.getText('body').insert(doc.getText('body').length, randomText(gen, 60 * 1024))
        writer.sendUpdate('acme/doc', Y.encodeStateAsUpdate(doc, sv))
        if (i % 8 === 7) await writer.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), `ack of update ${i}`)
      }
      // ~3.8 MiB, 15 times the send-buffer limit: served in parts
      const reader = new RawMuxClient(small.wsUrl)
      await reader.open()
      const copy = reader.subscribe('acme/doc')
      await waitFor(() => stateOf(copy) === stateOf(doc), 'the reader has the whole doc', 30_000)
      expect(copy.getText('body').toString()).toBe(doc.getText('body').toString())
      expect(await slowReaders()).toBe(0)
      ;(reader.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
      // live updates of 60 KiB, at most 800 (~47 MiB, beyond the limit plus the kernel's buffers: a loopback receive buffer
      // grows up to net.ipv4.tcp_rmem's maximum, 32 MiB on Debian, and a sender's to 4 MiB); stops once the reader is cut off
      for (let i = 0; i < 800 && (await slowReaders()) === 0; i++) {
        const sv = Y.encodeStateVector(doc)
        doc.getMap('live').set(`k${i % 8}`, randomText(gen, 60 * 1024))
        writer.sendUpdate('acme/doc', Y.encodeStateAsUpdate(doc, sv))
        if (i % 8 === 7) await writer.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), `ack of live update ${i}`)
      }
      expect(await slowReaders()).toBe(1)
      expect(writer.closeEvent).toBeNull()
      writer.close()
      reader.ws.terminate()
    } finally {
      await small.stop()
      removeDir(small.dataDir)
    }
  }, 60_000)
})
