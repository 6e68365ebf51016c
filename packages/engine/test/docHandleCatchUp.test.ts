/**
 * The catch-up after a (re)subscribe — what the relay lacks — sent by one
 * party for several handles of the same doc (the record store's tabs): a
 * handle with `sendsCatchUp` false leaves the relay's step 1 unanswered and
 * reports it (`catch-up-deferred`); `catchUp()` on the other handle sends
 * what the relay lacks, and nothing is sent twice. The relay acks the
 * handle that sent: the tabs share acks (`learnAck`).
 */
import { afterEach, expect, test } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, decodeMessage, startMessage } from '../src/protocol/index.js'
import type { DocHandle } from '../src/sync/DocHandle.js'
import type { SyncClient } from '../src/sync/SyncClient.js'
import type { WebSocketConstructor } from '../src/sync/socket.js'
import type { TestRelay } from './relayHarness.js'
import { Harness } from './helpers.js'

const h = new Harness()
afterEach(() => h.cleanup())

const OTHER_TAB = { source: 'test:other-tab' }
const DOC = 'acme/T-1'

/** Per `client:clock` of DOC, how often it was sent to the relay (by any client made with {@link countingClient}). */
const sent = new Map<string, number>()
afterEach(() => sent.clear())

/** A client whose sends of DOC's structs are counted in {@link sent}. */
const countingClient = (relay: TestRelay): SyncClient => {
  const Base = relay.WebSocket
  const Counting = class extends (Base as unknown as new (url: string) => { send(data: Uint8Array): void }) {
    override send(data: Uint8Array): void {
      const { type, doc, body } = decodeMessage(data)
      if (type === MessageType.sync && doc === DOC) {
        const syncType = decoding.readVarUint(body)
        if (syncType !== syncProtocol.messageYjsSyncStep1) {
          for (const struct of Y.decodeUpdate(decoding.readVarUint8Array(body)).structs) {
            for (let i = 0; i < struct.length; i++) {
              const key = `${struct.id.client}:${struct.id.clock + i}`
              sent.set(key, (sent.get(key) ?? 0) + 1)
            }
          }
        }
      }
      super.send(data)
    }
  }
  return h.client(relay, { WebSocket: Counting as unknown as WebSocketConstructor })
}

/**
 * Two "tabs": a client each, the same doc open, edits shared both ways with
 * origin OTHER_TAB (their writers count as own in the other tab too), and
 * acks shared both ways (the relay acks only the tab that sent an update).
 */
const twoTabs = (relay: TestRelay, sendsCatchUp: { a: () => boolean; b: () => boolean }) => {
  const clientA = countingClient(relay)
  const clientB = countingClient(relay)
  const a = clientA.open(DOC, { skipSendOrigins: [OTHER_TAB], sendsCatchUp: sendsCatchUp.a })
  const b = clientB.open(DOC, { skipSendOrigins: [OTHER_TAB], sendsCatchUp: sendsCatchUp.b })
  const share = (to: DocHandle) => (update: Uint8Array, origin: unknown, _doc: Y.Doc, transaction: Y.Transaction) => {
    if (origin === OTHER_TAB) return
    if (transaction.local) to.addOwnClients(Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update)).keys())
    Y.applyUpdate(to.doc, update, OTHER_TAB)
  }
  a.doc.on('update', share(b))
  b.doc.on('update', share(a))
  a.on('ack', (acked) => b.learnAck(acked))
  b.on('ack', (acked) => a.learnAck(acked))
  return { clientA, clientB, a, b }
}

const sentTwice = (): string[] => [...sent].filter(([, n]) => n > 1).map(([key]) => key)

test('a handle that leaves the catch-up to another sends no step 2 and reports the relay state vector', async () => {
  const relay = h.relay()
  const client = countingClient(relay)
  const handle = client.open(DOC, { sendsCatchUp: () => false })
  const deferred: Uint8Array[] = []
  handle.on('catch-up-deferred', (stateVector) => deferred.push(stateVector))
  await handle.synced
  await relay.settle()
  expect(deferred).toHaveLength(1)

  relay.dropAll()
  await relay.settle()
  handle.doc.getText('t').insert(0, 'offline')
  relay.doc(DOC).getText('u').insert(0, 'elsewhere')
  client.reconnect()
  await relay.settle()
  expect(relay.messages({ type: MessageType.sync, syncType: 1 })).toHaveLength(0)
  expect(deferred).toHaveLength(2)
  expect(Y.decodeStateVector(deferred[1]!)).toEqual(Y.decodeStateVector(Y.encodeStateVector(relay.doc(DOC))))
  expect(handle.doc.getText('u').toString()).toBe('elsewhere') // the relay's step 2 still arrives
  relay.ack()
  await relay.settle()
  expect(handle.pending).toBe(7) // its own offline edit, left to whoever sends the catch-up
  expect(relay.doc(DOC).getText('t').toString()).toBe('')
})

test('after a reconnect, edits held by two handles go out once: by the one that sends the catch-up', async () => {
  const relay = h.relay()
  const { clientA, clientB, a, b } = twoTabs(relay, { a: () => true, b: () => false })
  b.on('catch-up-deferred', (stateVector) => a.catchUp(stateVector))
  await Promise.all([a.synced, b.synced])
  a.doc.getText('t').insert(0, 'online ')
  await relay.settle()
  relay.ack()
  await relay.settle()

  relay.dropAll()
  await relay.settle()
  a.doc.getText('t').insert(7, 'from a, ')
  b.doc.getText('t').insert(15, 'from b')
  // B comes back first: A is not subscribed yet, its own exchange sends everything.
  clientB.reconnect()
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('online ')
  clientA.reconnect()
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('online from a, from b')
  relay.ack()
  await relay.settle()
  expect(sentTwice()).toEqual([])
  expect([a.pending, b.pending]).toEqual([0, 0])

  // A comes back first this time: B's exchange finds nothing missing.
  relay.dropAll()
  await relay.settle()
  a.doc.getText('t').insert(0, '1')
  b.doc.getText('t').insert(0, '2')
  clientA.reconnect()
  await relay.settle()
  clientB.reconnect()
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe(a.doc.getText('t').toString())
  expect(sentTwice()).toEqual([])
  expect([a.pending, b.pending]).toEqual([0, 0])
})

test('what catchUp sent before the handle’s own exchange is not sent again in its step 2', async () => {
  const relay = h.relay()
  const { clientA, clientB, a, b } = twoTabs(relay, { a: () => true, b: () => false })
  await Promise.all([a.synced, b.synced])
  relay.dropAll()
  await relay.settle()
  b.doc.getText('t').insert(0, 'held by both')
  a.doc.getText('t').insert(0, '>')

  const deferred: Uint8Array[] = []
  b.on('catch-up-deferred', (stateVector) => deferred.push(stateVector))
  clientB.reconnect()
  await relay.settle()
  expect(deferred).toHaveLength(1)
  // A subscribes; B's report reaches it before the relay's step 1 does.
  let sentEarly: boolean | null = null
  clientA.on('status', (status) => {
    if (status === 'online') queueMicrotask(() => (sentEarly = a.catchUp(deferred[0])))
  })
  clientA.reconnect()
  await relay.settle()
  expect(sentEarly).toBe(true)
  expect(relay.doc(DOC).getText('t').toString()).toBe(a.doc.getText('t').toString())
  expect(sentTwice()).toEqual([])
  expect(a.catchUp(deferred[0])).toBe(false) // nothing left to send
  relay.ack()
  await relay.settle()
  expect([a.pending, b.pending]).toEqual([0, 0])
})

test('catchUp without a state vector waits for the handle’s own exchange, then sends changes another handle could not', async () => {
  const relay = h.relay()
  const clientA = countingClient(relay)
  const a = clientA.open(DOC, { skipSendOrigins: [OTHER_TAB] })
  const author = new Y.Doc()
  const fromOtherTab = (text: string): void => {
    const before = Y.encodeStateVector(author)
    author.getText('t').insert(0, text)
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(author, before), OTHER_TAB)
  }
  fromOtherTab('before the exchange ')
  expect(a.catchUp()).toBe(false) // not subscribed
  await a.synced
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('before the exchange ') // the step 2 carried it

  fromOtherTab('offline in the other tab ')
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('before the exchange ') // skipped origin
  expect(a.catchUp()).toBe(true)
  expect(a.catchUp()).toBe(false)
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('offline in the other tab before the exchange ')
  relay.ack()
  await relay.settle()
  expect(a.pending).toBe(0)
  expect(sentTwice()).toEqual([])
})

test('a relay that lost acked data gets it again in the step 2: acks of an earlier connection do not count', async () => {
  const relay = h.relay()
  const client = countingClient(relay)
  const handle = client.open(DOC)
  await handle.synced
  handle.doc.getText('t').insert(0, 'stored once')
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(handle.pending).toBe(0)

  await relay.forget(DOC)
  relay.dropAll()
  await relay.settle()
  client.reconnect()
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('stored once')
  relay.ack()
  await relay.settle()
  expect(handle.pending).toBe(0)
})

test('a later step 1 (the relay asks to resync) gets again what was sent but not applied', async () => {
  const relay = h.relay()
  const client = countingClient(relay)
  const handle = client.open(DOC)
  await handle.synced
  await relay.settle()
  relay.silent = true // the next update is lost, as if refused
  handle.doc.getText('t').insert(0, 'refused')
  await relay.settle()
  relay.silent = false
  expect(relay.doc(DOC).getText('t').toString()).toBe('')

  const step1 = startMessage(MessageType.sync, DOC)
  syncProtocol.writeSyncStep1(step1, relay.doc(DOC))
  relay.inject(encoding.toUint8Array(step1))
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('refused')
  relay.ack()
  await relay.settle()
  expect(handle.pending).toBe(0)
})

test('while its catch-up is left to another handle, live edits wait in the doc until the relay caught up', async () => {
  const relay = h.relay()
  const { clientA, clientB, a, b } = twoTabs(relay, { a: () => true, b: () => false })
  b.on('catch-up-deferred', (stateVector) => a.catchUp(stateVector))
  await Promise.all([a.synced, b.synced])
  relay.dropAll()
  await relay.settle()
  b.doc.getText('t').insert(0, 'offline')
  clientA.reconnect()
  await relay.settle()
  relay.ack()
  await relay.settle()
  clientB.reconnect()
  await relay.settle()
  expect(b.sendsLiveEdits).toBe(true) // the relay had everything already (A's exchange)

  relay.dropAll()
  await relay.settle()
  b.doc.getText('t').insert(0, 'offline again, ')
  clientB.reconnect()
  await relay.settle()
  // B came back alone: A is offline, nothing was sent for B yet.
  expect(b.sendsLiveEdits).toBe(false)
  const updatesBefore = relay.messages({ type: MessageType.sync, doc: DOC, syncType: 2 }).length
  b.doc.getText('t').insert(0, '>') // would depend on what the relay lacks
  await relay.settle()
  expect(relay.messages({ type: MessageType.sync, doc: DOC, syncType: 2 })).toHaveLength(updatesBefore)
  expect(relay.doc(DOC).getText('t').toString()).toBe('offline')

  clientA.reconnect() // A's exchange brings everything, in order
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('>offline again, offline')
  expect([a.pending, b.pending]).toEqual([0, 0])
  expect(b.sendsLiveEdits).toBe(true)
  b.doc.getText('t').insert(0, '!')
  await relay.settle()
  expect(relay.doc(DOC).getText('t').toString()).toBe('!>offline again, offline')
  expect(sentTwice()).toEqual([])
})

test('an ack another tab shares before this subscription’s first ack arrives is kept: the first ack was made earlier', async () => {
  const relay = h.relay()
  /**
   * Acks of DOC to B held back while set, and `resumed` answers (which carry
   * a resumed doc's first ack): the relay's ack on B's socket is slower than
   * the tabs' channel.
   */
  let held: Uint8Array[] | null = null
  const Base = relay.WebSocket as unknown as new (url: string) => { receive(data: Uint8Array): void }
  const Slow = class extends Base {
    override receive(data: Uint8Array): void {
      const { type, doc } = decodeMessage(data)
      if (held !== null && ((type === MessageType.ack && doc === DOC) || type === MessageType.resumed)) held.push(data)
      else super.receive(data)
    }
  }
  const clientA = h.client(relay)
  const clientB = h.client(relay, { WebSocket: Slow as unknown as WebSocketConstructor })
  const a = clientA.open(DOC, { skipSendOrigins: [OTHER_TAB] })
  const b = clientB.open(DOC, { skipSendOrigins: [OTHER_TAB], sendsCatchUp: () => false })
  a.doc.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin === OTHER_TAB || origin === clientA) return
    b.addOwnClients(Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update)).keys())
    Y.applyUpdate(b.doc, update, OTHER_TAB)
  })
  a.on('ack', (acked) => b.learnAck(acked))
  await Promise.all([a.synced, b.synced])
  await relay.settle()

  held = []
  clientB.reconnect() // a new subscription: the relay acks what it has stored now, and that ack is slow to reach B
  await relay.settle()
  expect(held).toHaveLength(1)
  a.doc.getText('t').insert(0, 'from A') // reaches B through the tabs' channel: B's own change, pending there too
  await relay.settle()
  relay.ack()
  await relay.settle()
  expect(a.pending).toBe(0)
  expect(b.pending).toBe(0) // A shared the relay's ack

  const late = held
  held = null
  for (const data of late) relay.inject(data) // B's first ack of the subscription, at last (a stale ack changes nothing for A)
  await relay.settle()
  expect(b.pending).toBe(0)
})
