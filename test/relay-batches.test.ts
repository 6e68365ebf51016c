/**
 * `batch` messages (docs/PROTOCOL.md "Batches"), against an in-process relay
 * over real WebSockets: a batch's messages are handled as if each had come
 * alone (subscribes, step 1s, updates, auth, the rate limit, read-only
 * refusals), the relay answers a client that sent one with batches (resume
 * answers, the acks of one commit), never one that did not, and a batch that
 * is malformed or inflates beyond the relay's largest frame closes only its
 * own socket.
 */
import { deflateRawSync } from 'node:zlib'
import * as encoding from 'lib0/encoding'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import {
  BatchFlags,
  ErrorCode,
  MessageType,
  RelayFeatures,
  encodeAuth,
  encodeBatch,
  encodeBatchFrame,
  encodeBatchList,
  encodePing,
  encodeResume,
  encodeSubscribe,
  startMessage,
} from '@concord/engine/protocol'
import { SyncClient } from '@concord/engine'
import { JwtAuthenticator } from '../apps/relay/src/auth/JwtAuthenticator.js'
import type { RelayOptions } from '../apps/relay/src/Relay.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import { makeTempDir, removeDir } from './helpers/relayProcess.js'
import { inProcessRelay } from './helpers/inProcessRelay.js'
import { type RawMuxClient, covers, type ReceivedMessage } from './helpers/rawClient.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'

const relays = inProcessRelay()
const start = (options: Partial<RelayOptions> = {}): Promise<string> => relays.start(options)
const connect = (url: string, token?: string): Promise<RawMuxClient> => relays.connect(url, token)

const deflate = (bytes: Uint8Array): Uint8Array => deflateRawSync(bytes)

/** A sync step 1 of `doc` for the relay. */
const step1 = (name: string, doc: Y.Doc): Uint8Array => {
  const encoder = startMessage(MessageType.sync, name)
  syncProtocol.writeSyncStep1(encoder, doc)
  return encoding.toUint8Array(encoder)
}

/** A sync update message carrying `update`. */
const updateMessage = (name: string, update: Uint8Array): Uint8Array => {
  const encoder = startMessage(MessageType.sync, name)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Appends `text` to the client's copy of `name` and returns the update (not sent). */
const type = (client: RawMuxClient, name: string, text: string): Uint8Array => {
  const doc = client.docs.get(name)!
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

/** Subscribes the client to `names` in one batch (a `subscribe` and a step 1 per doc), creating its docs. */
const subscribeInBatch = (client: RawMuxClient, names: readonly string[]): void => {
  const messages: Uint8Array[] = []
  for (const name of names) {
    const doc = new Y.Doc()
    client.docs.set(name, doc)
    messages.push(encodeSubscribe(name), step1(name, doc))
  }
  client.send(encodeBatch(messages, null))
}

const acked = (client: RawMuxClient, name: string): Promise<ReceivedMessage> =>
  client.waitFor((m) => m.type === MessageType.ack && m.doc === name && covers(m.ack, client.docs.get(name)!), `ack of ${name}`)

const batchesOf = (client: RawMuxClient): ReceivedMessage[] => client.received.filter((m) => m.type === MessageType.batch)

describe('batch messages', () => {
  it("are announced in hello; a batch's subscribes, step 1s and deflated updates work as if sent alone; the acks of one commit come back in one batch", async () => {
    const url = await start()
    const names = ['ws1/a', 'ws1/b', 'ws1/c']
    const writer = await connect(url)
    const hello = await writer.waitFor((m) => m.type === MessageType.hello, 'hello')
    expect(hello.hello!.features & RelayFeatures.batch).toBe(RelayFeatures.batch)
    subscribeInBatch(writer, names)
    for (const name of names)
      await writer.waitFor((m) => m.doc === name && m.type === MessageType.sync && m.syncType === 1, `step 2 of ${name}`)

    // a reader on the plain protocol: it never sent a batch, so it never gets one
    const reader = await connect(url)
    for (const name of names) reader.subscribe(name)
    await reader.roundTrip()

    const updates = names.map((name) => updateMessage(name, type(writer, name, `text of ${name} `.repeat(20))))
    const batch = encodeBatch(updates, deflate)
    expect(batch.byteLength).toBeLessThan(updates.reduce((n, u) => n + u.byteLength, 0)) // it was compressed
    writer.send(batch)
    const acks = await Promise.all(names.map((name) => acked(writer, name)))
    // one commit stored the three updates: its acks share one batch
    expect(acks.every((ack) => ack.inBatch !== undefined && ack.inBatch === acks[0].inBatch)).toBe(true)

    for (const name of names) {
      await reader.waitFor(() => reader.docs.get(name)!.getText('t').toString() === `text of ${name} `.repeat(20), `${name} at the reader`)
    }
    await reader.roundTrip()
    expect(batchesOf(reader)).toEqual([])
    expect(writer.received.filter((m) => m.type === MessageType.error)).toEqual([])
  })

  it("a resume sent in a batch is answered with the docs' entries in deflated batches", async () => {
    const url = await start()
    const names = Array.from({ length: 40 }, (_, i) => `ws1/ticket-${String(i).padStart(3, '0')}`)
    const writer = await connect(url)
    writer.resume(names)
    await writer.waitFor(() => writer.received.flatMap((m) => m.resumed ?? []).length === names.length, 'entries of every doc')
    for (const name of names) writer.sendUpdate(name, type(writer, name, `${name} was edited`))
    for (const name of names) await acked(writer, name)

    const device = await connect(url)
    const docs = names.map((name) => {
      const doc = new Y.Doc()
      device.docs.set(name, doc)
      return doc
    })
    device.send(encodeBatch([encodeResume(names.map((name, i) => ({ doc: name, stateVector: Y.encodeStateVector(docs[i]) })))], null))
    await device.waitFor(() => device.received.flatMap((m) => m.resumed ?? []).length === names.length, 'entries of every doc')
    for (const name of names) expect(device.docs.get(name)!.getText('t').toString()).toBe(`${name} was edited`)
    const resumed = device.received.filter((m) => m.type === MessageType.resumed)
    expect(resumed.every((m) => m.inBatch !== undefined)).toBe(true)
    const batches = batchesOf(device)
    expect(batches.length).toBeGreaterThan(0)
    expect(batches.every((b) => b.batch!.deflated)).toBe(true)
  })

  it('the rate limit counts every message of a batch', async () => {
    const url = await start({ limits: { messagesPerSecond: 20, messageBurst: 20 } })
    const modest = await connect(url)
    modest.send(
      encodeBatch(
        Array.from({ length: 5 }, () => encodePing()),
        null,
      ),
    )
    await modest.waitFor(() => modest.received.filter((m) => m.type === MessageType.pong).length === 5, 'five pongs')

    const flooder = await connect(url)
    flooder.send(
      encodeBatch(
        Array.from({ length: 100 }, () => encodePing()),
        null,
      ),
    )
    const closed = await flooder.waitClosed()
    expect(closed.code).toBe(1008)
    expect(closed.reason).toMatch(/rate limit/)
    expect(flooder.received.filter((m) => m.type === MessageType.pong).length).toBeLessThan(25)
  })

  it('a batch that inflates beyond --max-payload closes its socket with 1009; other sockets go on', async () => {
    const url = await start({ limits: { maxPayload: 64 * 1024 } })
    const other = await connect(url)
    other.subscribe('ws1/calm')
    await other.roundTrip()

    const bomb = await connect(url)
    // 1 MiB of one repeated message: a frame of a few KiB
    const ping = encodePing()
    const payload = deflateRawSync(encodeBatchList(Array.from({ length: (1024 * 1024) / (ping.byteLength + 1) }, () => ping)))
    expect(payload.byteLength).toBeLessThan(64 * 1024)
    bomb.send(encodeBatchFrame(BatchFlags.deflated, payload))
    const closed = await bomb.waitClosed()
    expect(closed.code).toBe(1009)
    expect(bomb.received.filter((m) => m.type === MessageType.pong)).toEqual([]) // nothing of it was handled

    other.sendUpdate('ws1/calm', type(other, 'ws1/calm', 'still here'))
    await acked(other, 'ws1/calm')
  })

  it.each([
    ['DEFLATE that is not', () => encodeBatchFrame(1, Uint8Array.of(0xff, 0xff, 0xff, 0xff))],
    ['a batch inside a batch', () => encodeBatch([encodePing(), encodeBatch([encodePing(), encodePing()], null)], null)],
    ['unknown flags', () => encodeBatchFrame(6, encodeBatchList([encodePing()]))],
    ['bytes after the last message', () => encodeBatchFrame(0, Uint8Array.of(...encodeBatchList([encodePing()]), 7))],
    ['a list longer than its bytes', () => encodeBatchFrame(0, Uint8Array.of(5, ...encodePing()))],
  ])('a malformed batch closes its socket with 1002: %s', async (_what, make) => {
    const url = await start()
    const client = await connect(url)
    client.send(make())
    const closed = await client.waitClosed()
    expect(closed.code).toBe(1002)
    expect(client.received.filter((m) => m.type === MessageType.pong)).toEqual([])
  })

  it('a device back from offline with edits to 120 records syncs them in batches both ways, stored for the next device', async () => {
    const dir = makeTempDir('concord-batches-')
    try {
      const url = await relays.start({ storage: SqliteStorage.open(`${dir}/concord.sqlite`) })
      const names = Array.from({ length: 120 }, (_, i) => `acme/T-${i}`)
      const frames = { sent: [] as number[], received: [] as number[] }
      class Counting extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols)
          const send = this.send.bind(this)
          this.send = ((data: Uint8Array, ...rest: never[]) => {
            frames.sent.push(data[0])
            return send(data, ...rest)
          }) as typeof this.send
          this.on('message', (data: ArrayBuffer) => frames.received.push(new Uint8Array(data)[0]))
        }
      }
      const laptop = new SyncClient({ url, WebSocket: Counting as never })
      const handles = names.map((name) => laptop.open(name))
      await laptop.flush()
      // offline: the relay is unreachable while the laptop's user edits every record
      await relays.stop()
      handles.forEach((handle, i) => handle.doc.getText('t').insert(0, `edited offline, record ${i}`))
      await relays.start({ storage: SqliteStorage.open(`${dir}/concord.sqlite`), port: Number(new URL(url).port) })
      frames.sent.length = 0
      frames.received.length = 0
      laptop.reconnect()
      await laptop.flush()
      // the resumes and the 120 step 2s went out in a few frames; the entries and acks came back in a few
      expect(frames.sent.filter((t) => t === MessageType.batch).length).toBeGreaterThanOrEqual(2)
      expect(frames.sent.length).toBeLessThan(20)
      expect(frames.received.filter((t) => t === MessageType.batch).length).toBeGreaterThanOrEqual(2)
      expect(frames.received.length).toBeLessThan(20)
      laptop.close()

      const phone = new SyncClient({ url, WebSocket: WebSocket as never })
      const copies = names.map((name) => phone.open(name))
      await Promise.all(
        copies.map(
          (copy) => new Promise<void>((resolve) => (copy.isSynced ? resolve() : copy.on('synced', (synced) => synced && resolve()))),
        ),
      )
      copies.forEach((copy, i) => expect(copy.doc.getText('t').toString()).toBe(`edited offline, record ${i}`))
      phone.close()
    } finally {
      await relays.stop()
      removeDir(dir)
    }
  })

  describe('with tokens', () => {
    const startWithAuth = () =>
      start({ auth: new JwtAuthenticator({ key: { kind: 'secret', secret: TEST_SECRET } }), limits: { maxUnauthenticatedMessages: 4 } })

    it('an auth message in a batch authenticates the messages after it', async () => {
      const url = await startWithAuth()
      const ada = await connect(url)
      const doc = new Y.Doc()
      ada.docs.set('acme/T-1', doc)
      ada.send(
        encodeBatch([encodeAuth(await signToken('ada', { acme: 'write' })), encodeSubscribe('acme/T-1'), step1('acme/T-1', doc)], null),
      )
      await ada.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
      ada.sendUpdate('acme/T-1', type(ada, 'acme/T-1', 'hello'))
      await acked(ada, 'acme/T-1')
    })

    it('messages of a batch before authentication count one by one against the limit of messages waiting for it', async () => {
      const url = await startWithAuth()
      const client = await connect(url)
      client.send(
        encodeBatch(
          Array.from({ length: 6 }, (_, i) => encodeSubscribe(`acme/T-${i}`)),
          null,
        ),
      )
      const closed = await client.waitClosed()
      expect(closed.code).toBe(1008)
      expect(client.received.some((m) => m.type === MessageType.error && m.error!.code === ErrorCode.unauthorized)).toBe(true)
    })

    it("a reader's update in a batch is refused, the rest of the batch is handled, and nothing is stored", async () => {
      const url = await startWithAuth()
      const rita = await connect(url, await signToken('rita', { acme: 'read' }))
      subscribeInBatch(rita, ['acme/T-1'])
      await rita.roundTrip()
      rita.send(encodeBatch([updateMessage('acme/T-1', type(rita, 'acme/T-1', 'not mine to write')), encodePing()], null))
      const refused = await rita.waitFor((m) => m.type === MessageType.error && m.doc === 'acme/T-1', 'refusal')
      expect(refused.error!.code).toBe(ErrorCode.permissionDenied)
      await rita.waitFor((m) => m.type === MessageType.pong, 'the pong after it')

      const ada = await connect(url, await signToken('ada', { acme: 'write' }))
      ada.subscribe('acme/T-1')
      await ada.roundTrip()
      expect(ada.docs.get('acme/T-1')!.getText('t').toString()).toBe('')
    })
  })
})
