/**
 * Durable acknowledgements, against an in-process relay whose storage we can
 * hold back or make fail: an ack never precedes the storage commit, a
 * failed commit acks nothing until a retry succeeds, and a commit acks only
 * the peers whose updates it stored, once each.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, startMessage } from '@concord/engine/protocol'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import type { DocUpdates, Storage } from '../apps/relay/src/storage/Storage.js'
import { inProcessRelay } from './helpers/inProcessRelay.js'
import { type RawMuxClient, covers } from './helpers/rawClient.js'
import { waitFor } from './helpers/relayProcess.js'

/** Storage whose commits wait for the test to release them, or fail on demand. */
class ControlledStorage extends MemoryStorage {
  gate: Promise<void> | null = null
  failures = 0
  commits = 0
  override async appendUpdates(batch: DocUpdates[]) {
    if (this.gate) await this.gate
    if (this.failures > 0) {
      this.failures--
      throw new Error('disk full (simulated)')
    }
    const result = await super.appendUpdates(batch)
    this.commits++
    return result
  }
}

const relays = inProcessRelay()
const start = (storage: Storage): Promise<string> => relays.start({ storage, commit: { retryMinDelay: 10, retryMaxDelay: 50 } })
const connect = (url: string): Promise<RawMuxClient> => relays.connect(url)

describe('durable acks', () => {
  it('sends an ack for a new subscription with the stored state', async () => {
    const client = await connect(await start(new MemoryStorage()))
    client.subscribe('ws1/doc')
    const ack = await client.waitFor((m) => m.type === MessageType.ack && m.doc === 'ws1/doc', 'first ack')
    expect(ack.ack?.size).toBe(0)
  })

  it('acks an update only after the storage commit returned', async () => {
    const storage = new ControlledStorage()
    const client = await connect(await start(storage))
    const doc = client.subscribe('ws1/t1')
    await client.waitFor((m) => m.type === MessageType.ack, 'subscription ack')
    let release!: () => void
    storage.gate = new Promise((resolve) => (release = resolve))
    const local = new Y.Doc()
    local.getText('title').insert(0, 'hello')
    client.sendUpdate('ws1/t1', Y.encodeStateAsUpdate(local))
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(local))
    // the relay applied it (a second client sees it) but storage has not returned
    const other = await connect(relays.relay.url.replace(/^http/, 'ws'))
    const otherDoc = other.subscribe('ws1/t1')
    await other.waitFor((m) => m.type === MessageType.sync, 'sync from relay')
    await waitFor(() => otherDoc.getText('title').toString() === 'hello', 'the second client to see the update')
    expect(client.received.some((m) => m.type === MessageType.ack && covers(m.ack, local))).toBe(false)
    expect(storage.commits).toBe(0)
    release()
    storage.gate = null
    await client.waitFor((m) => m.type === MessageType.ack && covers(m.ack, local), 'ack covering the update')
    expect(storage.commits).toBeGreaterThan(0)
  })

  it('acks nothing while commits fail, retries, then acks', async () => {
    const storage = new ControlledStorage()
    const client = await connect(await start(storage))
    client.subscribe('ws1/t2')
    await client.waitFor((m) => m.type === MessageType.ack, 'subscription ack')
    storage.failures = 3
    const local = new Y.Doc()
    local.getText('title').insert(0, 'kept while the disk is full')
    client.sendUpdate('ws1/t2', Y.encodeStateAsUpdate(local))
    await client.waitFor((m) => m.type === MessageType.ack && covers(m.ack, local), 'ack after retries')
    expect(storage.failures).toBe(0)
    const metrics = await relays.relay.metrics.render()
    expect(metrics).toMatch(/concord_commit_failures_total 3/)
    const stored = await storage.loadDoc('ws1/t2')
    const check = new Y.Doc()
    for (const u of stored.updates) Y.applyUpdate(check, u)
    expect(check.getText('title').toString()).toBe('kept while the disk is full')
  })

  it('a duplicate update is acked without being stored twice', async () => {
    const storage = new ControlledStorage()
    const client = await connect(await start(storage))
    client.subscribe('ws1/t3')
    await client.waitFor((m) => m.type === MessageType.ack, 'subscription ack')
    const local = new Y.Doc()
    local.getText('t').insert(0, 'x')
    const update = Y.encodeStateAsUpdate(local)
    client.sendUpdate('ws1/t3', update)
    await client.waitFor((m) => m.type === MessageType.ack && covers(m.ack, local), 'first ack')
    const acksBefore = client.received.filter((m) => m.type === MessageType.ack).length
    const commitsBefore = storage.commits
    client.sendUpdate('ws1/t3', update)
    await client.waitFor(() => client.received.filter((m) => m.type === MessageType.ack).length > acksBefore, 'ack for the duplicate')
    expect(storage.commits).toBe(commitsBefore)
    expect((await storage.loadDoc('ws1/t3')).updates.length).toBe(1)
  })

  it('group commit: updates of many docs arriving together share commits', async () => {
    const storage = new ControlledStorage()
    const client = await connect(await start(storage))
    const names = Array.from({ length: 20 }, (_, i) => `ws1/g${i}`)
    for (const name of names) client.subscribe(name)
    await client.waitFor(
      () => new Set(client.received.filter((m) => m.type === MessageType.ack).map((m) => m.doc)).size === names.length,
      'all subscription acks',
    )
    const before = storage.commits
    const locals = names.map((name) => {
      const d = new Y.Doc()
      d.getText('t').insert(0, name)
      client.sendUpdate(name, Y.encodeStateAsUpdate(d))
      return [name, d] as const
    })
    for (const [name, d] of locals) {
      await client.waitFor((m) => m.type === MessageType.ack && m.doc === name && covers(m.ack, d), `ack ${name}`)
    }
    expect(storage.commits - before).toBeLessThan(names.length)
  })

  it('a commit acks only the peers whose updates it stored, once each; a peer that only receives gets no ack', async () => {
    const storage = new ControlledStorage()
    const url = await start(storage)
    const writer = await connect(url)
    const reader = await connect(url)
    const acksOf = (client: RawMuxClient, doc: string): number =>
      client.received.filter((m) => m.type === MessageType.ack && m.doc === doc).length
    writer.subscribe('ws1/a1')
    const readerDoc = reader.subscribe('ws1/a1')
    await writer.waitFor((m) => m.type === MessageType.ack && m.doc === 'ws1/a1', 'writer subscription ack')
    await reader.waitFor((m) => m.type === MessageType.ack && m.doc === 'ws1/a1', 'reader subscription ack')
    // (each answered the relay's step 1 with a step 2, acked too)
    await writer.roundTrip()
    await reader.roundTrip()
    const writerAcksBefore = acksOf(writer, 'ws1/a1')
    const readerAcksBefore = acksOf(reader, 'ws1/a1')
    // Held at the storage gate: the first update's commit waits while the next two queue for a second commit.
    let release!: () => void
    storage.gate = new Promise((resolve) => (release = resolve))
    const commitsBefore = storage.commits
    const local = new Y.Doc()
    const text = local.getText('t')
    let sent = Y.encodeStateVector(local)
    for (const word of ['one ', 'two ', 'three']) {
      text.insert(text.length, word)
      writer.sendUpdate('ws1/a1', Y.encodeStateAsUpdate(local, sent))
      sent = Y.encodeStateVector(local)
    }
    await waitFor(() => readerDoc.getText('t').toString() === 'one two three', 'the reader to receive every update')
    release()
    storage.gate = null
    await writer.waitFor((m) => m.type === MessageType.ack && m.doc === 'ws1/a1' && covers(m.ack, local), 'ack covering all three')
    await writer.roundTrip()
    await reader.roundTrip()
    const commits = storage.commits - commitsBefore
    expect(commits).toBeGreaterThan(0)
    expect(commits).toBeLessThan(3)
    expect(acksOf(writer, 'ws1/a1') - writerAcksBefore).toBe(commits)
    expect(acksOf(reader, 'ws1/a1') - readerAcksBefore).toBe(0)
  })

  it('the y-websocket endpoint gets no acks, and its updates ack nobody on the multiplexed one', async () => {
    const url = await start(new ControlledStorage())
    const reader = await connect(url)
    const readerDoc = reader.subscribe('ws1/y1')
    await reader.waitFor((m) => m.type === MessageType.ack && m.doc === 'ws1/y1', 'reader subscription ack')
    await reader.roundTrip()
    const readerAcksBefore = reader.received.filter((m) => m.type === MessageType.ack).length
    const yws = new WebSocket(`${url}/ws1/y1`)
    yws.binaryType = 'arraybuffer'
    const frames: Uint8Array[] = []
    yws.on('message', (data: ArrayBuffer) => frames.push(new Uint8Array(data)))
    await new Promise((resolve, reject) => {
      yws.once('open', resolve)
      yws.once('error', reject)
    })
    const local = new Y.Doc()
    local.getText('t').insert(0, 'from y-websocket')
    const update = encoding.createEncoder()
    encoding.writeVarUint(update, 0) // sync
    syncProtocol.writeUpdate(update, Y.encodeStateAsUpdate(local))
    yws.send(encoding.toUint8Array(update))
    await waitFor(() => readerDoc.getText('t').toString() === 'from y-websocket', 'the reader to receive the update')
    // Once stored (the reader asks with a step 1, acked after the doc's latest commit), the
    // y-websocket client's answer to its own step 1 comes after anything the commit sent it.
    const step1 = startMessage(MessageType.sync, 'ws1/y1')
    syncProtocol.writeSyncStep1(step1, readerDoc)
    reader.send(encoding.toUint8Array(step1))
    await reader.waitFor((m) => m.type === MessageType.ack && m.doc === 'ws1/y1' && covers(m.ack, local), 'stored')
    const ywsStep1 = encoding.createEncoder()
    encoding.writeVarUint(ywsStep1, 0)
    syncProtocol.writeSyncStep1(ywsStep1, local)
    const answered = frames.length
    yws.send(encoding.toUint8Array(ywsStep1))
    await waitFor(() => frames.slice(answered).some((f) => f[0] === 0 && f[1] === syncProtocol.messageYjsSyncStep2), 'step 2')
    expect(frames.every((f) => f[0] === 0 || f[0] === 1)).toBe(true) // sync and awareness only
    await reader.roundTrip()
    // the reader got the ack it asked for, none for the y-websocket client's commit
    expect(reader.received.filter((m) => m.type === MessageType.ack).length - readerAcksBefore).toBe(1)
    yws.close()
  })
})
