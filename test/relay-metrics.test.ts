/**
 * `/metrics` counts what the relay really sent and received: messages by
 * type, payload bytes and acks, against what raw clients saw on their
 * sockets (the relay counts them in plain numbers and adds them to
 * prom-client when the metrics are read). Reading twice counts nothing twice.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, decodeMessage, encodeBatch, encodeSubscribe, readBatch, startMessage } from '@concord/engine/protocol'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import type { DocUpdates } from '../apps/relay/src/storage/Storage.js'
import { inProcessRelay } from './helpers/inProcessRelay.js'
import { RawMuxClient } from './helpers/rawClient.js'

const relays = inProcessRelay()

/** What one client's socket carried: messages by type and payload bytes, each way. */
interface Traffic {
  sentTypes: number[]
  sentBytes: number
  receivedTypes: number[]
  receivedBytes: number
}

/** The frames themselves, each way. */
interface Frames {
  sent: Uint8Array[]
  received: Uint8Array[]
}

/** A raw client whose socket traffic is recorded from its first message on. */
const connect = async (url: string): Promise<{ client: RawMuxClient; traffic: Traffic; frames: Frames }> => {
  const client = relays.track(new RawMuxClient(url))
  const traffic: Traffic = { sentTypes: [], sentBytes: 0, receivedTypes: [], receivedBytes: 0 }
  const frames: Frames = { sent: [], received: [] }
  client.ws.on('message', (data: Buffer) => {
    frames.received.push(new Uint8Array(data))
    traffic.receivedTypes.push(decodeMessage(data).type)
    traffic.receivedBytes += data.byteLength
  })
  const send = client.ws.send.bind(client.ws)
  client.ws.send = ((data: Uint8Array, ...rest: []) => {
    frames.sent.push(data)
    traffic.sentTypes.push(decodeMessage(data).type)
    traffic.sentBytes += data.byteLength
    return send(data, ...rest)
  }) as typeof client.ws.send
  await client.open()
  return { client, traffic, frames }
}

/** Storage whose commits wait while `gate` is set. */
class GatedStorage extends MemoryStorage {
  gate: Promise<void> | null = null
  override async appendUpdates(batch: DocUpdates[]) {
    if (this.gate) await this.gate
    return super.appendUpdates(batch)
  }
}

/** The sum of every sample of `name` (all label sets) in a text exposition. */
const total = (text: string, name: string): number =>
  text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)

/** The sample of `name` with `type="…"`. */
const ofType = (text: string, name: string, type: string): number =>
  Number(new RegExp(`^${name}\\{type="${type}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)

describe('metrics', () => {
  it('count every message and byte the relay sent and received, and every ack', async () => {
    const url = await relays.start()
    const a = await connect(url)
    const b = await connect(url)
    const docA = a.client.subscribe('ws1/doc')
    b.client.subscribe('ws1/doc')
    await a.client.waitFor((m) => m.type === MessageType.ack, 'first ack of a')
    await b.client.waitFor((m) => m.type === MessageType.ack, 'first ack of b')
    for (let i = 0; i < 20; i++) {
      const before = Y.encodeStateVector(docA)
      docA.getText('t').insert(0, `edit ${i} `)
      a.client.sendUpdate('ws1/doc', Y.encodeStateAsUpdate(docA, before))
    }
    await b.client.waitFor(() => b.traffic.receivedTypes.filter((type) => type === MessageType.sync).length >= 21, 'the edits at b')
    await a.client.waitFor(
      (m) => m.type === MessageType.ack && (m.ack?.get(docA.clientID) ?? 0) >= Y.getState(docA.store, docA.clientID),
      'the ack of every edit',
    )
    await a.client.roundTrip()
    await b.client.roundTrip()

    const text = await relays.relay.metrics.render()
    const both = [a.traffic, b.traffic]
    const received = both.flatMap((t) => t.receivedTypes)
    const sent = both.flatMap((t) => t.sentTypes)
    expect(total(text, 'concord_messages_out_total')).toBe(received.length)
    expect(total(text, 'concord_bytes_out_total')).toBe(a.traffic.receivedBytes + b.traffic.receivedBytes)
    expect(total(text, 'concord_messages_in_total')).toBe(sent.length)
    expect(total(text, 'concord_bytes_in_total')).toBe(a.traffic.sentBytes + b.traffic.sentBytes)
    const acks = received.filter((type) => type === MessageType.ack).length
    expect(acks).toBeGreaterThan(0)
    expect(ofType(text, 'concord_messages_out_total', 'ack')).toBe(acks)
    expect(total(text, 'concord_acks_sent_total')).toBe(acks)
    expect(ofType(text, 'concord_messages_out_total', 'sync')).toBe(received.filter((type) => type === MessageType.sync).length)
    expect(ofType(text, 'concord_messages_in_total', 'sync')).toBe(sent.filter((type) => type === MessageType.sync).length)

    // a second read adds nothing that was not sent since
    expect(await relays.relay.metrics.render()).toBe(text)
  })

  it('count the messages of a batch by their type and the batch frame by its bytes on the wire', async () => {
    const url = await relays.start()
    const a = await connect(url)
    const names = ['ws1/a', 'ws1/b', 'ws1/c']
    const subscribe: Uint8Array[] = []
    for (const name of names) {
      const doc = new Y.Doc()
      a.client.docs.set(name, doc)
      const step1 = startMessage(MessageType.sync, name)
      syncProtocol.writeSyncStep1(step1, doc)
      subscribe.push(encodeSubscribe(name), encoding.toUint8Array(step1))
    }
    a.client.send(encodeBatch(subscribe, null))
    await a.client.roundTrip()
    const updates = names.map((name) => {
      const doc = a.client.docs.get(name)!
      const before = Y.encodeStateVector(doc)
      doc.getText('t').insert(0, `the text of ${name} `.repeat(10))
      const message = startMessage(MessageType.sync, name)
      syncProtocol.writeUpdate(message, Y.encodeStateAsUpdate(doc, before))
      return encoding.toUint8Array(message)
    })
    a.client.send(encodeBatch(updates, (bytes) => deflateRawSync(bytes)))
    await a.client.waitFor(() => a.client.received.filter((m) => m.type === MessageType.ack).length >= 6, 'the acks')
    // the bindings of the client's id go out after the acks, in a turn of their own: on a busy machine the
    // round trip's pong can pass them, and /metrics would count them before the client has them
    await a.client.waitFor(() => a.client.received.filter((m) => m.type === MessageType.authors).length >= names.length, 'the bindings')
    await a.client.roundTrip()

    /** Every message of frames of these types, those inside batches too. */
    const messagesOf = (frames: Uint8Array[]): number[] =>
      frames.flatMap((frame) => {
        const { type, body } = decodeMessage(frame)
        return type === MessageType.batch ? [type, ...readBatch(body, (bytes) => inflateRawSync(bytes)).map((m) => m[0])] : [type]
      })
    // The relay counts a message as it sends it; the last ones (bindings, acks of a later commit) may still be
    // on the way after the round trip: a few more round trips, bounded, until the client has what was counted.
    let text = await relays.relay.metrics.render()
    for (let trip = 0; trip < 50 && total(text, 'concord_messages_out_total') > messagesOf(a.frames.received).length; trip++) {
      await a.client.roundTrip()
      text = await relays.relay.metrics.render()
    }
    const received = messagesOf(a.frames.received)
    const sent = messagesOf(a.frames.sent)
    expect(sent.filter((type) => type === MessageType.batch)).toHaveLength(2)
    expect(received.filter((type) => type === MessageType.batch).length).toBeGreaterThan(0)
    expect(total(text, 'concord_messages_out_total')).toBe(received.length)
    expect(total(text, 'concord_messages_in_total')).toBe(sent.length)
    expect(ofType(text, 'concord_messages_in_total', 'batch')).toBe(2)
    expect(ofType(text, 'concord_messages_in_total', 'sync')).toBe(sent.filter((type) => type === MessageType.sync).length)
    expect(ofType(text, 'concord_messages_out_total', 'ack')).toBe(received.filter((type) => type === MessageType.ack).length)
    expect(total(text, 'concord_bytes_out_total')).toBe(a.traffic.receivedBytes)
    expect(total(text, 'concord_bytes_in_total')).toBe(a.traffic.sentBytes)
  })

  it('show updates pending while a commit waits, and as committed once it returned', async () => {
    const storage = new GatedStorage()
    const url = await relays.start({ storage })
    const a = await connect(url)
    const doc = a.client.subscribe('ws1/doc')
    await a.client.waitFor((m) => m.type === MessageType.ack, 'subscription ack')
    const before = await relays.relay.metrics.render()
    expect(total(before, 'concord_pending_updates')).toBe(0)
    const committedBefore = total(before, 'concord_updates_committed_total')

    let release!: () => void
    storage.gate = new Promise((resolve) => (release = resolve))
    for (let i = 0; i < 5; i++) {
      const sv = Y.encodeStateVector(doc)
      doc.getText('t').insert(0, `edit ${i} `)
      a.client.sendUpdate('ws1/doc', Y.encodeStateAsUpdate(doc, sv))
    }
    await a.client.roundTrip()
    const waiting = await relays.relay.metrics.render()
    expect(total(waiting, 'concord_pending_updates')).toBe(5)
    expect(total(waiting, 'concord_updates_committed_total')).toBe(committedBefore)

    storage.gate = null
    release()
    await a.client.waitFor(
      (m) => m.type === MessageType.ack && (m.ack?.get(doc.clientID) ?? 0) >= Y.getState(doc.store, doc.clientID),
      'the ack of every edit',
    )
    const after = await relays.relay.metrics.render()
    expect(total(after, 'concord_pending_updates')).toBe(0)
    expect(total(after, 'concord_updates_committed_total')).toBe(committedBefore + 5)
    // reading again counts nothing twice
    expect(total(await relays.relay.metrics.render(), 'concord_updates_committed_total')).toBe(committedBefore + 5)
  })
})
