/**
 * DocHandle options the record store relies on for tabs: `skipSendOrigins`
 * (another tab sends its own edits), `addOwnClients` (that tab's edits are
 * this device's: pending until acked) and `resendPending()` (send what is
 * not acked, e.g. after that tab closed).
 */
import { afterEach, expect, test } from 'vitest'
import * as Y from 'yjs'
import { MessageType } from '../src/protocol/index.js'
import { Harness } from './helpers.js'

const h = new Harness()
afterEach(() => h.cleanup())

const OTHER_TAB = { source: 'test:other-tab' }

test('updates with a skipped origin are not sent, count as pending once their writer is named own, and go out on the next subscribe', async () => {
  const relay = h.relay()
  const client = h.client(relay)
  const handle = client.open('acme/T-1', { skipSendOrigins: [OTHER_TAB] })
  await relay.settle()
  const author = new Y.Doc()
  author.getText('t').insert(0, 'from the other tab')
  Y.applyUpdate(handle.doc, Y.encodeStateAsUpdate(author), OTHER_TAB)
  await relay.settle()
  expect(relay.messages({ type: MessageType.sync, syncType: 2 })).toHaveLength(0)
  expect(relay.doc('acme/T-1').getText('t').toString()).toBe('')
  expect(handle.pending).toBe(0) // whose it is, is the caller's to say
  handle.addOwnClients([author.clientID])
  expect(handle.pending).toBe(18)

  // A local edit is sent as usual.
  handle.doc.getText('t').insert(0, '>')
  await relay.settle()
  expect(relay.messages({ type: MessageType.sync, syncType: 2 })).toHaveLength(1)

  // After a reconnect the sync exchange carries everything the relay lacks.
  relay.dropAll()
  await relay.settle()
  client.reconnect()
  await relay.settle()
  expect(relay.doc('acme/T-1').getText('t').toString()).toBe('>from the other tab')
  relay.ack()
  await relay.settle()
  expect(handle.pending).toBe(0)
})

test('resendPending sends exactly what is not acked, and nothing when all is acked', async () => {
  const relay = h.relay()
  const client = h.client(relay)
  const handle = client.open('acme/T-2', { skipSendOrigins: [OTHER_TAB] })
  await relay.settle()
  handle.doc.getText('t').insert(0, 'acked ')
  await relay.settle()
  relay.ack()
  await relay.settle()
  const author = new Y.Doc()
  Y.applyUpdate(author, Y.encodeStateAsUpdate(handle.doc))
  const before = Y.encodeStateVector(author)
  author.getText('t').insert(6, 'orphaned')
  handle.addOwnClients([author.clientID])
  Y.applyUpdate(handle.doc, Y.encodeStateAsUpdate(author, before), OTHER_TAB)
  await relay.settle()
  expect(relay.doc('acme/T-2').getText('t').toString()).toBe('acked ')

  const received: number[] = []
  relay.doc('acme/T-2').on('update', (update: Uint8Array) => received.push(Y.decodeUpdate(update).structs.length))
  expect(handle.resendPending()).toBe(true)
  await relay.settle()
  expect(relay.doc('acme/T-2').getText('t').toString()).toBe('acked orphaned')
  expect(received).toEqual([1]) // only the missing item, not the acked text
  relay.ack()
  await relay.settle()
  expect(handle.pending).toBe(0)
  expect(handle.resendPending()).toBe(false)
})
