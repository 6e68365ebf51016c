/**
 * `/metrics` counts what the relay really sent and received: messages by
 * type, payload bytes and acks, against what raw clients saw on their
 * sockets (the relay counts them in plain numbers and adds them to
 * prom-client when the metrics are read). Reading twice counts nothing twice.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { MessageType, decodeMessage } from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { RawMuxClient } from './helpers/rawClient.js'

let relay: Relay | null = null
const clients: RawMuxClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await relay?.close()
  relay = null
})

/** What one client's socket carried: messages by type and payload bytes, each way. */
interface Traffic {
  sentTypes: number[]
  sentBytes: number
  receivedTypes: number[]
  receivedBytes: number
}

/** A raw client whose socket traffic is recorded from its first message on. */
const connect = async (url: string): Promise<{ client: RawMuxClient; traffic: Traffic }> => {
  const client = new RawMuxClient(url)
  clients.push(client)
  const traffic: Traffic = { sentTypes: [], sentBytes: 0, receivedTypes: [], receivedBytes: 0 }
  client.ws.on('message', (data: Buffer) => {
    traffic.receivedTypes.push(decodeMessage(data).type)
    traffic.receivedBytes += data.byteLength
  })
  const send = client.ws.send.bind(client.ws)
  client.ws.send = ((data: Uint8Array, ...rest: []) => {
    traffic.sentTypes.push(decodeMessage(data).type)
    traffic.sentBytes += data.byteLength
    return send(data, ...rest)
  }) as typeof client.ws.send
  await client.open()
  return { client, traffic }
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
    relay = await createRelay({ storage: new MemoryStorage(), port: 0, processMetrics: false })
    const url = relay.url.replace(/^http/, 'ws')
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

    const text = await relay.metrics.render()
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
    expect(await relay.metrics.render()).toBe(text)
  })
})
