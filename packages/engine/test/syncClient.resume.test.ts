/**
 * How a `SyncClient` subscribes its open docs after the handshake (and a
 * doc opened while online): in
 * `resume` messages to a relay that announces them (one state-vector
 * exchange per batch of docs, a step 2 only where the relay lacks
 * something), one `subscribe` and step 1 per doc to a relay that does not.
 * Against the real relay in-process (relayHarness.ts).
 */
import { afterEach, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { ErrorCode, MessageType } from '../src/protocol/index.js'
import { Harness, statusIs } from './helpers.js'

const h = new Harness()
afterEach(() => h.cleanup())

const NAMES = Array.from({ length: 20 }, (_, i) => `acme/T-${i}`)

describe('resume', () => {
  test('a reconnect resumes every open doc in one message; unchanged docs send no step 2 and are synced with nothing pending', async () => {
    const relay = h.relay({ autoAck: true })
    const client = h.client(relay) // resume is the default
    const handles = NAMES.map((name) => client.open(name))
    await relay.settle()
    handles.forEach((handle, i) => handle.doc.getText('t').insert(0, `ticket ${i}`))
    await relay.settle()
    expect(client.pending).toBe(0)

    relay.dropAll()
    await statusIs(client, 'offline')
    await statusIs(client, 'online')
    await relay.settle()
    const second = relay.socketsCreated
    expect(second).toBe(2)
    expect(relay.messages({ connection: second, type: MessageType.resume })).toHaveLength(1)
    const subscribes = relay.messages({ connection: second, type: MessageType.subscribe })
    expect(subscribes.map((m) => m.doc).sort()).toEqual([...NAMES].sort())
    expect(subscribes.every((m) => m.resumed === true)).toBe(true)
    // the relay lacked nothing: no step 2, no update went out for any doc
    expect(relay.messages({ connection: second, type: MessageType.sync }).filter((m) => m.resumed !== true)).toEqual([])
    for (const handle of handles) {
      expect(handle.isSynced).toBe(true)
      expect(handle.pending).toBe(0)
    }
  })

  /** A resuming client whose doc `acme/A` holds `text` on the relay, then cut off: the relay takes no connection until `relay.accepting = true`. */
  const cutOffAfter = async (text: string) => {
    const relay = h.relay({ autoAck: true })
    const client = h.client(relay, { resume: true })
    const handle = client.open('acme/A')
    handle.doc.getText('t').insert(0, text)
    await relay.settle()
    relay.accepting = false
    relay.dropAll()
    await relay.settle()
    return { relay, client, handle }
  }

  test('edits made offline on both sides meet after a resume, and the offline ones are acked', async () => {
    const { relay, client, handle } = await cutOffAfter('online ')
    handle.doc.getText('t').insert(7, 'offline ')
    relay.doc('acme/A').getText('t').insert(0, 'remote ')
    expect(handle.pending).toBeGreaterThan(0)

    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    await handle.flush()
    const text = handle.doc.getText('t').toString()
    expect(text).toBe(relay.doc('acme/A').getText('t').toString())
    expect(text).toContain('offline')
    expect(text).toContain('remote')
    expect(relay.messages({ type: MessageType.resume }).length).toBeGreaterThanOrEqual(2)
  })

  test('a doc subscribed again on the same socket while its resume is answered still sends what the relay lacks', async () => {
    // A `not-subscribed` (e.g. for an old frame replayed on the new socket) makes the handle subscribe the doc
    // again before the `resumed` answer arrives; the relay ignores that subscribe (the resume subscribed the doc)
    // and sends no second step 1, so the answer's step 1 must still be taken, or the offline edit never goes out.
    const { relay, client, handle } = await cutOffAfter('online ')
    handle.doc.getText('t').insert(7, 'offline ')
    expect(handle.pending).toBeGreaterThan(0)

    relay.accepting = true
    await statusIs(client, 'online')
    relay.error('acme/A', ErrorCode.notSubscribed, 'not subscribed to "acme/A"')
    await relay.settle()
    expect(relay.messages({ connection: 2, type: MessageType.subscribe }).filter((m) => m.resumed !== true)).toHaveLength(1)
    await handle.flush()
    expect(handle.pending).toBe(0)
    expect(relay.doc('acme/A').getText('t').toString()).toBe('online offline ')
  })

  test('a deletion made offline reaches the relay after a resume (a deletion leaves the state vector as it was)', async () => {
    const { relay, client, handle } = await cutOffAfter('keep drop')
    handle.doc.getText('t').delete(4, 5)
    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    await handle.flush()
    expect(handle.doc.getText('t').toString()).toBe('keep')
    expect(relay.doc('acme/A').getText('t').toString()).toBe('keep')
  })

  test('a doc opened while online is subscribed with a resume of that doc alone, its presence in the same frame', async () => {
    const relay = h.relay({ autoAck: true })
    ;(await relay.open('acme/A')).getText('t').insert(0, 'stored')
    await relay.settle()
    const client = h.client(relay, { user: { id: 'u1', name: 'Ada' } })
    await statusIs(client, 'online')
    const offline = new Y.Doc()
    offline.getText('t').insert(0, 'written here ')
    const handles = [client.open('acme/A'), client.open('acme/B', { doc: offline })]
    await relay.settle()
    for (const handle of handles) await handle.flush()

    // (the harness also lists the subscribe and step 1 each resume entry stands for)
    const frames = relay.messages({ connection: 1 }).filter((m) => m.inBatch !== true && m.resumed !== true)
    // per doc one frame up: a batch of the resume and the presence; B's step 2 answers the relay's step 1 of its entry
    expect(frames.map((m) => [m.type, m.doc])).toEqual([
      [MessageType.batch, ''],
      [MessageType.batch, ''],
      [MessageType.sync, 'acme/B'],
    ])
    expect(relay.messages({ type: MessageType.resume })).toHaveLength(2)
    expect(relay.messages({ type: MessageType.subscribe }).every((m) => m.resumed === true)).toBe(true)
    expect(relay.messages({ type: MessageType.awareness }).map((m) => m.doc)).toEqual(['acme/A', 'acme/B'])
    expect(handles[0].doc.getText('t').toString()).toBe('stored')
    expect(relay.doc('acme/B').getText('t').toString()).toBe('written here ')
    expect(relay.awarenessStates('acme/A').get(handles[0].doc.clientID)).toMatchObject({ user: { name: 'Ada' } })
    for (const handle of handles) {
      expect(handle.isSynced).toBe(true)
      expect(handle.pending).toBe(0)
    }
  })

  test('a relay that predates resume gets one subscribe and step 1 per doc', async () => {
    const relay = h.relay({ autoAck: true, resume: false })
    const client = h.client(relay, { resume: true })
    const handles = ['acme/A', 'acme/B'].map((name) => client.open(name))
    await relay.settle()
    expect(relay.messages({ type: MessageType.resume })).toEqual([])
    expect(relay.messages({ type: MessageType.subscribe }).map((m) => m.doc)).toEqual(['acme/A', 'acme/B'])
    expect(relay.messages({ type: MessageType.subscribe }).every((m) => m.resumed === undefined)).toBe(true)
    // a doc opened while online too
    handles.push(client.open('acme/C'))
    await relay.settle()
    expect(relay.messages({ type: MessageType.resume })).toEqual([])
    expect(relay.messages({ type: MessageType.subscribe }).map((m) => m.doc)).toEqual(['acme/A', 'acme/B', 'acme/C'])
    handles[0].doc.getText('t').insert(0, 'x')
    await relay.settle()
    for (const handle of handles) {
      expect(handle.isSynced).toBe(true)
      expect(handle.pending).toBe(0)
    }
  })

  test("offline edits to many docs go out in few batch frames: the resumes, then each resumed answer's step 2s", async () => {
    const relay = h.relay({ autoAck: true })
    const client = h.client(relay)
    const names = Array.from({ length: 150 }, (_, i) => `acme/T-${i}`)
    const handles = names.map((name) => client.open(name))
    await relay.settle()
    relay.accepting = false
    relay.dropAll()
    await statusIs(client, 'offline')
    handles.forEach((handle, i) => handle.doc.getText('t').insert(0, `offline edit ${i}`))

    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    for (const handle of handles) await handle.flush()
    const second = relay.socketsCreated
    // two resume messages (100 docs each at most) in one frame; 150 step 2s in the frames answering them
    expect(relay.messages({ connection: second, type: MessageType.resume })).toHaveLength(2)
    const step2s = relay.messages({ connection: second, type: MessageType.sync }).filter((m) => m.resumed !== true)
    expect(step2s).toHaveLength(150)
    const frames = relay.messages({ connection: second, type: MessageType.batch })
    expect(frames.length).toBeGreaterThanOrEqual(2)
    expect(frames.length).toBeLessThan(10)
    handles.forEach((handle, i) => expect(relay.doc(names[i]).getText('t').toString()).toBe(`offline edit ${i}`))
  })

  test('a large catch-up part goes alone, uncompressed; small step 2s go in batches', async () => {
    const relay = h.relay({ autoAck: true })
    const client = h.client(relay)
    const names = ['acme/A', 'acme/Big', 'acme/C', 'acme/D']
    const handles = names.map((name) => client.open(name))
    await relay.settle()
    relay.accepting = false
    relay.dropAll()
    await statusIs(client, 'offline')
    handles.forEach((handle) => handle.doc.getText('t').insert(0, 'small'))
    const big = handles[1].doc.getText('t')
    for (let i = 0; i < 600; i++) big.insert(big.length, `a long offline backlog, line ${i}\n`) // ~20 KiB, one part
    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    for (const handle of handles) await handle.flush()
    const step2s = relay.messages({ connection: 2, type: MessageType.sync }).filter((m) => m.resumed !== true)
    expect(step2s.filter((m) => m.doc === 'acme/Big').map((m) => m.inBatch === true)).toEqual([false])
    // the three small ones: those held before the big part went out ahead of it, together (alone if only one)
    expect(step2s.filter((m) => m.doc !== 'acme/Big')).toHaveLength(3)
    expect(step2s.filter((m) => m.doc !== 'acme/Big' && m.inBatch === true).length).toBeGreaterThanOrEqual(2)
    expect(relay.doc('acme/Big').getText('t').toString()).toBe(big.toString())
  })

  test('a relay that predates batches gets each message in its own frame', async () => {
    const relay = h.relay({ autoAck: true, batch: false })
    const client = h.client(relay)
    const handles = ['acme/A', 'acme/B'].map((name) => client.open(name))
    await relay.settle()
    relay.accepting = false
    relay.dropAll()
    await statusIs(client, 'offline')
    handles.forEach((handle) => handle.doc.getText('t').insert(0, 'offline'))
    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    for (const handle of handles) await handle.flush()
    expect(relay.messages({ type: MessageType.batch })).toEqual([])
    expect(relay.messages({ connection: 2, type: MessageType.resume })).toHaveLength(1)
    expect(relay.doc('acme/B').getText('t').toString()).toBe('offline')
  })
})
