/**
 * Answers a client asked for many at once (a device catching up pulls records
 * in parallel) go out paced once its send buffer is half full, like the parts
 * of a big doc: a client that reads slowly gets them all and is never cut off
 * as a slow reader. Against a real relay process with small limits.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { MessageType, encodeFetch } from '@concord/engine/protocol'
import { removeDir, startRelay, waitFor } from './helpers/relayProcess.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { randomText } from './helpers/randomText.js'

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31))

describe(`many answers at once (SEED=${SEED})`, () => {
  it('a client that asks for many fetch answers at once and reads them slowly is paced, not cut off as a slow reader', async () => {
    // small limits: 1,000 answers of ~60 KiB (~59 MiB) are ~230 times the send-buffer limit, and beyond what the kernel's socket buffers absorb (up to ~36 MiB on loopback here)
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
      const metricOf = async (name: string): Promise<number> => {
        const text = await (await fetch(`${small.url}/metrics`)).text()
        return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
      }
      const gen = prng.create(SEED + 2)
      const writer = new RawMuxClient(small.wsUrl)
      await writer.open()
      const doc = writer.subscribe('acme/record')
      await writer.waitFor((m) => m.type === MessageType.ack && m.doc === 'acme/record', 'ack of the subscription')
      doc.getText('body').insert(0, randomText(gen, 60 * 1024))
      writer.sendUpdate('acme/record', Y.encodeStateAsUpdate(doc))
      await writer.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'the record stored')
      writer.close()

      const reader = new RawMuxClient(small.wsUrl)
      await reader.open()
      const socket = (reader.ws as unknown as { _socket: import('node:net').Socket })._socket
      socket.pause()
      const FETCHES = 1000
      for (let i = 0; i < FETCHES; i++) reader.send(encodeFetch('acme/record', new Uint8Array([0])))
      // the relay has answered as much as the send buffer takes; it is not cut off
      await expect.poll(() => metricOf('concord_send_buffer_max_bytes'), { timeout: 30_000 }).toBeGreaterThan(262144 / 2)
      expect(await metricOf('concord_refusals_total{reason="slow-reader"}')).toBe(0)
      socket.resume()
      await waitFor(() => reader.received.filter((m) => m.type === MessageType.fetched).length === FETCHES, `${FETCHES} answers`, 60_000)
      expect(reader.closeEvent).toBeNull()
      expect(await metricOf('concord_refusals_total{reason="slow-reader"}')).toBe(0)
      // the last answer whole: its parts (if it went out paced) and its end, applied to an empty doc, give the record
      const ends = reader.received.flatMap((m, i) => (m.type === MessageType.fetched ? [i] : []))
      const [previousEnd, lastEnd] = ends.slice(-2)
      const copy = new Y.Doc()
      for (const m of reader.received.slice(previousEnd + 1, lastEnd + 1)) {
        if (m.fetchedPart) Y.applyUpdate(copy, m.fetchedPart)
        if (m.fetched) Y.applyUpdate(copy, m.fetched.update)
      }
      expect(copy.getText('body').toString()).toBe(doc.getText('body').toString())
      reader.close()
    } finally {
      await small.stop()
      removeDir(small.dataDir)
    }
  }, 90_000)
})
