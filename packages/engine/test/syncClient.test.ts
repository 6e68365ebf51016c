import { afterEach, describe, expect, test, vi } from 'vitest'
import * as Y from 'yjs'
import { ErrorCode, SyncError, type DocHandle } from '../src/index.js'
import { META_MAP_NAME } from '../src/internal.js'
import { MessageType, RelayFeatures, encodeQueryAwareness } from '../src/protocol/index.js'
import { Harness, statusIs, track } from './helpers.js'

const h = new Harness()
afterEach(() => {
  h.cleanup()
  vi.useRealTimers()
})

const DOC = 'acme/T-1'

/** A client online with `DOC` open and synced. */
const onlineWithDoc = async (relayOptions = {}) => {
  const relay = h.relay(relayOptions)
  const client = h.client(relay)
  const handle = client.open(DOC)
  await relay.settle()
  expect(client.status).toBe('online')
  expect(handle.isSynced).toBe(true)
  return { relay, client, handle }
}

const text = (handle: DocHandle) => handle.doc.getText('t')

describe('connection status', () => {
  test('goes connecting → online only after hello, offline on close', async () => {
    const relay = h.relay({ sendHello: false })
    const client = h.client(relay)
    const statuses: string[] = []
    client.on('status', (s) => statuses.push(s))
    const handle = client.open(DOC)
    expect(client.status).toBe('connecting')
    await relay.settle()
    // The socket is open, but the relay has not answered: not online, nothing subscribed yet.
    expect(relay.sockets[0]!.readyState).toBe(1)
    expect(client.status).toBe('connecting')
    expect(relay.messages({ type: MessageType.subscribe })).toHaveLength(0)
    relay.hello()
    await relay.settle()
    expect(client.status).toBe('online')
    expect(handle.isSynced).toBe(true)
    expect(relay.messages({ type: MessageType.subscribe, doc: DOC })).toHaveLength(1)
    client.close()
    expect(client.status).toBe('offline')
    expect(statuses).toEqual(['online', 'offline'])
  })

  test('a relay that stays silent is dropped after `timeout`; pings keep a live one', async () => {
    vi.useFakeTimers()
    const relay = h.relay()
    const client = h.client(relay, {
      pingInterval: 1_000,
      timeout: 3_000,
      reconnect: { minDelay: 100, random: () => 0.5 },
    })
    await relay.settle()
    expect(client.status).toBe('online')
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(1_000)
      await relay.settle()
    }
    expect(relay.messages({ type: MessageType.ping }).length).toBeGreaterThanOrEqual(9)
    expect(relay.socketsCreated).toBe(1)
    expect(client.status).toBe('online')

    relay.silent = true
    vi.advanceTimersByTime(2_999)
    await relay.settle()
    expect(client.status).toBe('online')
    vi.advanceTimersByTime(2)
    expect(client.status).toBe('offline')
    relay.silent = false
    vi.advanceTimersByTime(50) // backoff: floor(0.5 · 100)
    expect(client.status).toBe('connecting')
    await relay.settle()
    expect(client.status).toBe('online')
    expect(relay.socketsCreated).toBe(2)
  })

  test('a permanent connection error halts reconnecting until reconnect()', async () => {
    vi.useFakeTimers()
    const relay = h.relay()
    const client = h.client(relay)
    const errors: SyncError[] = []
    client.on('error', (e) => errors.push(e))
    await relay.settle()
    relay.error('', ErrorCode.unauthorized, 'bad token')
    await relay.settle()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ doc: '', code: ErrorCode.unauthorized, permanent: true })
    expect(client.status).toBe('offline')
    vi.advanceTimersByTime(60_000)
    await relay.settle()
    expect(relay.socketsCreated).toBe(1)
    client.reconnect()
    await relay.settle()
    expect(client.status).toBe('online')
    expect(relay.socketsCreated).toBe(2)
  })

  test('the token goes in-band as the first message, never in the URL; docs subscribe after authenticated', async () => {
    const relay = h.relay()
    const client = h.client(relay, { url: 'https://sync.example.com/base/', token: 'a b&c' })
    expect(client.url).toBe('wss://sync.example.com/base/.concord/v1')
    expect(relay.sockets[0]!.url).toBe('wss://sync.example.com/base/.concord/v1')
    client.open('acme/T-1')
    await relay.settle()
    expect(relay.tokens).toEqual(['a b&c'])
    const types = relay.received.map((m) => m.type)
    expect(types.indexOf(MessageType.auth)).toBeLessThan(types.indexOf(MessageType.subscribe))
    expect(client.identity).toMatchObject({ userId: 'user-of-a b&c' })
    expect(client.status).toBe('online')
  })

  test('a token provider is asked for every socket; a refused token halts until setToken()', async () => {
    const relay = h.relay()
    let n = 0
    const client = h.client(relay, { token: async () => (n++ === 0 ? 'bad-token' : `good-${n}`) })
    await relay.settle()
    expect(client.status).not.toBe('online')
    const created = relay.socketsCreated
    client.setToken(async () => 'good-later')
    await relay.settle()
    expect(relay.socketsCreated).toBe(created + 1)
    expect(client.status).toBe('online')
    expect(relay.tokens).toEqual(['bad-token', 'good-later'])
  })
})

describe('reconnect backoff', () => {
  test('delays grow by `factor`, are capped, and restart after a hello', async () => {
    vi.useFakeTimers()
    const relay = h.relay()
    relay.accepting = false
    h.client(relay, { reconnect: { minDelay: 100, maxDelay: 1_000, factor: 2, random: () => 0.999_999 } })
    await relay.settle() // first socket fails
    const gaps: number[] = []
    for (let attempt = 0; attempt < 7; attempt++) {
      const before = relay.socketsCreated
      let waited = 0
      while (relay.socketsCreated === before) {
        vi.advanceTimersByTime(1)
        waited++
        await relay.settle()
      }
      gaps.push(waited)
    }
    // floor(0.999999 · min(1000, 100 · 2^n))
    expect(gaps).toEqual([99, 199, 399, 799, 999, 999, 999])

    relay.accepting = true
    vi.advanceTimersByTime(1_000)
    await relay.settle()
    expect(relay.sockets.at(-1)!.readyState).toBe(1)
    relay.accepting = false
    relay.dropAll()
    await relay.settle()
    // The hello reset the backoff: the first delay is back to floor(0.999999 · 100).
    const before = relay.socketsCreated
    vi.advanceTimersByTime(98)
    expect(relay.socketsCreated).toBe(before)
    vi.advanceTimersByTime(1)
    expect(relay.socketsCreated).toBe(before + 1)
  })
})

describe('pending and acks', () => {
  test('pending rises on local edits and falls only after the ack', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    const docEvents: number[] = []
    const clientEvents: number[] = []
    handle.on('pending', (n) => docEvents.push(n))
    client.on('pending', (n) => clientEvents.push(n))
    expect(handle.pending).toBe(0)

    text(handle).insert(0, 'hello')
    expect(handle.pending).toBe(5)
    expect(client.pending).toBe(5)
    await relay.settle()
    expect(relay.doc(DOC).getText('t').toString()).toBe('hello')
    expect(handle.pending).toBe(5) // on the relay, not yet stored

    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    expect(handle.ackedStateVector.get(handle.doc.clientID)).toBe(5)
    expect(docEvents).toEqual([5, 0])
    expect(clientEvents).toEqual([5, 0])
  })

  test("the client's pending is the sum over its docs, kept per change without visiting every open doc", async () => {
    const relay = h.relay()
    const client = h.client(relay)
    const handles = Array.from({ length: 50 }, (_, i) => client.open(`acme/T-${i}`))
    await relay.settle()
    const events: number[] = []
    client.on('pending', (n) => events.push(n))
    handles[3]!.doc.getText('t').insert(0, 'abc')
    expect(client.pending).toBe(3)
    await relay.settle()
    relay.ack('acme/T-3')
    await relay.settle()
    expect(client.pending).toBe(0)

    const reads = vi.spyOn(Object.getPrototypeOf(handles[0]!) as DocHandle, 'pending', 'get')
    handles[7]!.doc.getText('t').insert(0, 'de')
    expect(client.pending).toBe(2)
    // one doc's change reads that doc's count, not those of the other 49
    expect(reads.mock.calls.length).toBeLessThanOrEqual(3)
    reads.mockRestore()
    // a doc closed with changes not yet stored no longer counts…
    handles[7]!.close()
    expect(client.pending).toBe(0)
    // …and one opened with changes of its own counts from its open
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'xyz')
    const opened = client.open('acme/X-1', { doc })
    expect(opened.pending).toBe(3)
    expect(client.pending).toBe(3)
    expect(events).toEqual([3, 0, 2, 0, 3])
  })

  test('delete-only edits count as pending until acked (delete marker)', async () => {
    const { relay, handle } = await onlineWithDoc()
    text(handle).insert(0, 'hello')
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)

    const relayUpdates: Array<{ structs: number; deletes: number }> = []
    relay.doc(DOC).on('update', (update: Uint8Array) => {
      const { structs, ds } = Y.decodeUpdate(update)
      relayUpdates.push({ structs: structs.length, deletes: ds.clients.size })
    })
    text(handle).delete(0, 2)
    expect(handle.pending).toBe(1)
    expect(handle.doc.getMap(META_MAP_NAME).get('d')).toBe(1)
    await relay.settle()
    // The delete reached the relay with the marker that proves it, in one update.
    expect(relayUpdates).toEqual([{ structs: 1, deletes: 1 }])
    expect(relay.doc(DOC).getText('t').toString()).toBe('llo')
    expect(handle.pending).toBe(1)

    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)

    // A second delete-only edit: a new marker value, one more pending tick.
    text(handle).delete(0, 1)
    expect(handle.doc.getMap(META_MAP_NAME).get('d')).toBe(2)
    expect(handle.pending).toBe(1)
    // Edits that also insert need no marker.
    handle.doc.transact(() => {
      text(handle).delete(0, 1)
      text(handle).insert(0, 'X')
    })
    expect(handle.doc.getMap(META_MAP_NAME).get('d')).toBe(2)
    expect(handle.pending).toBe(2)
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    expect(relay.doc(DOC).getText('t').toString()).toBe('Xo')
  })

  test('an undo that only deletes is tracked as well', async () => {
    const { relay, handle } = await onlineWithDoc()
    const undo = new Y.UndoManager(text(handle))
    text(handle).insert(0, 'abc')
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    undo.undo()
    expect(text(handle).toString()).toBe('')
    expect(handle.pending).toBe(1)
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    expect(relay.doc(DOC).getText('t').toString()).toBe('')
    undo.destroy()
  })

  test('duplicate, stale and over-reaching acks never produce wrong or negative counts', async () => {
    const { relay, handle } = await onlineWithDoc()
    const events: number[] = []
    handle.on('pending', (n) => events.push(n))
    text(handle).insert(0, 'abc')
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    const ackedAbc = Y.encodeStateVector(handle.doc)
    text(handle).insert(3, 'def')
    await relay.settle()
    expect(handle.pending).toBe(3)

    relay.sendAck(DOC, Y.encodeStateVector(new Map())) // stale: older than what we know
    relay.sendAck(DOC, ackedAbc) // stale duplicate
    await relay.settle()
    expect(handle.pending).toBe(3)

    relay.ack(DOC)
    relay.ack(DOC) // duplicate
    relay.sendAck(DOC, ackedAbc) // late, stale
    // Covers a client this doc has not even heard of yet.
    relay.sendAck(DOC, Y.encodeStateVector(new Map([[424242, 50]])))
    await relay.settle()
    expect(handle.pending).toBe(0)
    expect(events).toEqual([3, 0, 3, 0])
    expect(events.every((n) => n >= 0)).toBe(true)
  })

  test('edits received from the relay are never pending here, and get no ack', async () => {
    const { relay, handle } = await onlineWithDoc()
    const acks: unknown[] = []
    handle.on('ack', (acked) => acks.push(acked))
    relay.doc(DOC).getText('t').insert(0, 'from elsewhere')
    await relay.settle()
    expect(text(handle).toString()).toBe('from elsewhere')
    expect(handle.pending).toBe(0)
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    expect(acks).toEqual([]) // nothing of this client's was stored
    // Its own edit on top of them is pending until acked, and that ack covers the others' edits too.
    text(handle).insert(0, '> ')
    await relay.settle()
    expect(handle.pending).toBe(2)
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    expect(acks).toHaveLength(1)
  })

  test('a doc opened with content counts only the own client ids passed in', async () => {
    const relay = h.relay({ sendHello: false })
    const client = h.client(relay)
    const doc = new Y.Doc()
    const other = new Y.Doc()
    other.getText('t').insert(0, 'theirs')
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(other))
    doc.getText('t').insert(0, 'mine ')
    expect(client.open(DOC, { doc, ownClients: [doc.clientID] }).pending).toBe(5)
    client.closeDoc(DOC)
    expect(client.open(DOC, { doc }).pending).toBe(11) // without the list: everything not acked
    doc.destroy()
    other.destroy()
  })

  test('option ackedStateVector seeds what is known to be stored', async () => {
    const relay = h.relay({ sendHello: false })
    const client = h.client(relay)
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'stored')
    const stored = Y.encodeStateVector(doc)
    doc.getText('t').insert(6, '+3!')
    const handle = client.open(DOC, { doc, ackedStateVector: stored })
    expect(handle.pending).toBe(3)
    doc.destroy()
  })

  test('the first ack of a new subscription states what the relay stored', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    text(handle).insert(0, 'abc')
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
    // The relay lost its storage (e.g. restored from an empty backup) and restarts.
    relay.dropAll()
    await relay.forget(DOC)
    await relay.settle()
    expect(client.status).not.toBe('online')
    await statusIs(client, 'online')
    await relay.settle()
    // Re-sent in the sync exchange and acked again.
    expect(relay.doc(DOC).getText('t').toString()).toBe('abc')
    expect(handle.pending).toBe(3)
    relay.ack(DOC)
    await relay.settle()
    expect(handle.pending).toBe(0)
  })
})

describe('flush', () => {
  test('resolves only after the ack', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    await expect(client.flush(DOC)).resolves.toBeUndefined() // nothing pending
    text(handle).insert(0, 'x')
    const flushed = track(client.flush(DOC))
    const all = track(client.flush())
    await relay.settle()
    expect(flushed.settled).toBe(false)
    expect(all.settled).toBe(false)
    relay.ack(DOC)
    await relay.settle()
    expect(flushed.resolved).toBe(true)
    expect(all.resolved).toBe(true)
  })

  test('waits through a disconnect and a reconnect; offline edits go out on reconnect', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    relay.accepting = false
    relay.dropAll()
    await relay.settle()
    expect(client.status).not.toBe('online')
    text(handle).insert(0, 'offline edit')
    const flushed = track(handle.flush())
    await relay.settle()
    expect(relay.doc(DOC).getText('t').toString()).toBe('')
    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    expect(relay.doc(DOC).getText('t').toString()).toBe('offline edit')
    expect(flushed.settled).toBe(false)
    relay.ack(DOC)
    await relay.settle()
    expect(flushed.resolved).toBe(true)
  })

  test('waits for every open doc', async () => {
    const relay = h.relay()
    const client = h.client(relay)
    const a = client.open('acme/A')
    const b = client.open('acme/B')
    await relay.settle()
    a.doc.getText('t').insert(0, 'a')
    await relay.settle() // stored in a commit of its own, so A can be acked alone
    b.doc.getText('t').insert(0, 'b')
    const all = track(client.flush())
    await relay.settle()
    relay.ack('acme/A')
    await relay.settle()
    expect(all.settled).toBe(false)
    relay.ack('acme/B')
    await relay.settle()
    expect(all.resolved).toBe(true)
  })

  test('rejects on a permanent error; the doc is parked until retry()', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    const errors: SyncError[] = []
    const clientErrors: SyncError[] = []
    handle.on('error', (e) => errors.push(e))
    client.on('error', (e) => clientErrors.push(e))
    relay.rejectWrites.set(DOC, { code: ErrorCode.permissionDenied, reason: 'read-only' })
    text(handle).insert(0, 'nope')
    const flushed = track(handle.flush())
    await relay.settle()
    expect(flushed.rejected).toBe(true)
    expect(flushed.error).toBeInstanceOf(SyncError)
    expect(errors).toHaveLength(1)
    expect(clientErrors).toHaveLength(1)
    expect(handle.error).toMatchObject({ code: ErrorCode.permissionDenied, reason: 'read-only', permanent: true })
    expect(handle.isParked).toBe(true)
    expect(handle.isSynced).toBe(false)
    expect(relay.messages({ type: MessageType.unsubscribe, doc: DOC })).toHaveLength(1)
    // Nothing lost, nothing re-sent blindly.
    expect(handle.pending).toBe(4)
    await expect(handle.flush()).rejects.toBe(handle.error)
    const sent = relay.received.length
    text(handle).insert(4, '!')
    await relay.settle()
    expect(relay.received.length).toBe(sent)

    relay.rejectWrites.delete(DOC)
    handle.retry()
    expect(handle.error).toBeNull()
    const retried = track(handle.flush())
    await relay.settle()
    expect(relay.doc(DOC).getText('t').toString()).toBe('nope!')
    relay.ack(DOC)
    await relay.settle()
    expect(retried.resolved).toBe(true)
  })

  test('a missing-dependencies refusal does not park the doc: the resync that follows sends the whole change', async () => {
    const { relay, handle } = await onlineWithDoc()
    relay.rejectWrites.set(DOC, { code: ErrorCode.missingDependencies, reason: 'depends on changes the relay does not have' })
    text(handle).insert(0, 'first')
    await relay.settle()
    expect(handle.error).toMatchObject({ code: ErrorCode.missingDependencies, permanent: false })
    expect(handle.isParked).toBe(false)
    relay.rejectWrites.delete(DOC)
    text(handle).insert(5, ' second')
    const flushed = track(handle.flush())
    relay.resync(DOC)
    await relay.settle()
    expect(relay.doc(DOC).getText('t').toString()).toBe('first second')
    relay.ack(DOC)
    await relay.settle()
    expect(flushed.resolved).toBe(true)
    expect(handle.error).toBeNull()
  })

  test('a transient error is reported and cleared by the next ack', async () => {
    const { relay, handle } = await onlineWithDoc()
    relay.error(DOC, ErrorCode.storageUnavailable, 'db down')
    await relay.settle()
    expect(handle.error).toMatchObject({ code: ErrorCode.storageUnavailable, permanent: false })
    expect(handle.isParked).toBe(false)
    text(handle).insert(0, 'x')
    const flushed = track(handle.flush())
    await relay.settle()
    relay.ack(DOC)
    await relay.settle()
    expect(flushed.resolved).toBe(true)
    expect(handle.error).toBeNull()
  })
})

describe('reconnect', () => {
  test('resubscribes every open doc and merges edits made on both sides meanwhile', async () => {
    const relay = h.relay()
    const client = h.client(relay)
    const a = client.open('acme/A')
    const b = client.open('acme/B')
    a.doc.getText('t').insert(0, 'A0 ')
    await relay.settle()
    relay.accepting = false
    relay.dropAll()
    await relay.settle()
    expect(a.isSynced).toBe(false)

    a.doc.getText('t').insert(3, 'A-offline ')
    b.doc.getMap('m').set('k', 'B-offline')
    relay.doc('acme/A').getText('t').insert(0, 'remote ')
    relay.doc('acme/B').getMap('m').set('other', 'remote')

    relay.accepting = true
    await statusIs(client, 'online')
    await relay.settle()
    for (const name of ['acme/A', 'acme/B']) {
      expect(relay.messages({ type: MessageType.subscribe, doc: name })).toHaveLength(2)
    }
    expect(a.isSynced && b.isSynced).toBe(true)
    expect(a.doc.getText('t').toString()).toBe(relay.doc('acme/A').getText('t').toString())
    expect(a.doc.getText('t').toString()).toContain('A-offline')
    expect(a.doc.getText('t').toString()).toContain('remote')
    expect(b.doc.getMap('m').toJSON()).toEqual({ k: 'B-offline', other: 'remote' })
    expect(relay.doc('acme/B').getMap('m').toJSON()).toEqual({ k: 'B-offline', other: 'remote' })
  })
})

describe('two clients', () => {
  test('remote updates are applied with the client as origin and not echoed back', async () => {
    const relay = h.relay()
    const alice = h.client(relay)
    const bob = h.client(relay)
    const a = alice.open(DOC)
    const b = bob.open(DOC)
    await relay.settle()
    const bobConnection = relay.sockets[1]!.pair
    const bobUpdatesBefore = relay.messages({ connection: bobConnection.id, type: MessageType.sync, syncType: 2 }).length
    const origins: unknown[] = []
    b.doc.on('update', (_u: Uint8Array, origin: unknown) => origins.push(origin))

    text(a).insert(0, 'hi bob')
    await relay.settle()
    expect(text(b).toString()).toBe('hi bob')
    expect(origins).toHaveLength(1)
    expect(origins[0]).toBe(bob)
    expect(relay.messages({ connection: bobConnection.id, type: MessageType.sync, syncType: 2 })).toHaveLength(bobUpdatesBefore)
    // Alice's own update is not sent back to her either.
    expect(text(a).toString()).toBe('hi bob')
  })

  test('awareness: states are exchanged, dropped on disconnect, and removed on close', async () => {
    const relay = h.relay()
    const alice = h.client(relay, { user: { id: 'u1', name: 'Alice' } })
    const bob = h.client(relay, { user: { id: 'u2', name: 'Bob', color: '#f00' } })
    const a = alice.open(DOC)
    const b = bob.open(DOC)
    await relay.settle()
    expect(a.awareness.getStates().get(b.doc.clientID)).toEqual({ user: { id: 'u2', name: 'Bob', color: '#f00' } })
    expect(b.awareness.getStates().get(a.doc.clientID)).toEqual({ user: { id: 'u1', name: 'Alice' } })

    a.awareness.setLocalStateField('field', 'title')
    await relay.settle()
    expect(b.awareness.getStates().get(a.doc.clientID)).toMatchObject({ field: 'title' })

    b.close()
    await relay.settle()
    expect([...a.awareness.getStates().keys()]).toEqual([a.doc.clientID])
    expect(relay.messages({ type: MessageType.unsubscribe, doc: DOC })).toHaveLength(1)

    // (A state that never changed from the initial `{}` has clock 0, which y-protocols peers ignore.)
    const carol = h.client(relay, { user: { id: 'u3', name: 'Carol' } })
    const c = carol.open(DOC)
    await relay.settle()
    expect(a.awareness.getStates().size).toBe(2)
    relay.accepting = false
    relay.dropAll()
    await relay.settle()
    expect([...a.awareness.getStates().keys()]).toEqual([a.doc.clientID])
    expect(c.awareness.getStates().has(a.doc.clientID)).toBe(false)
  })
  test('awareness: after its reconnect a client shows the others again at once, not at their next renewal', async () => {
    const relay = h.relay()
    const alice = h.gatedClient(relay, null, 'Alice')
    const bob = h.gatedClient(relay, null, 'Bob')
    const a = alice.client.open(DOC)
    const b = bob.client.open(DOC)
    a.awareness.setLocalStateField('editing', 'title')
    b.awareness.setLocalStateField('editing', 'description')
    await relay.settle()
    expect(b.awareness.getStates().get(a.doc.clientID)).toMatchObject({ editing: 'title' })
    // Bob's network alone goes and comes back; Alice changes nothing meanwhile.
    bob.offline()
    await relay.settle()
    expect([...b.awareness.getStates().keys()]).toEqual([b.doc.clientID])
    bob.online()
    await relay.settle()
    // The relay sends Alice's state as it holds it, with the clock Bob had seen before: shown again, not ignored.
    expect(b.awareness.getStates().get(a.doc.clientID)).toMatchObject({ editing: 'title' })
    expect(a.awareness.getStates().get(b.doc.clientID)).toMatchObject({ editing: 'description' })
  })
})

describe('presence on the wire', () => {
  /**
   * A minute passes for `handle`'s awareness: y-protocols checks every 3 s
   * and renews a set local state once it is 15 s old. Its clock is lib0's
   * `getUnixTime`, bound to the real `Date.now` at import, so fake timers do
   * not age states: each step ages them by hand.
   */
  const aMinutePasses = async (relay: ReturnType<typeof h.relay>, handle: DocHandle) => {
    for (let i = 0; i < 20; i++) {
      for (const meta of handle.awareness.meta.values()) meta.lastUpdated -= 3_000
      vi.advanceTimersByTime(3_000)
      await relay.settle()
    }
  }
  const awarenessSent = (relay: ReturnType<typeof h.relay>) => relay.messages({ type: MessageType.awareness, doc: DOC }).length

  test('a doc nobody set presence in sends no awareness: not at subscribe, not as keep-alive, not after a reconnect, not on close', async () => {
    vi.useFakeTimers()
    const { relay, client, handle } = await onlineWithDoc()
    expect(handle.awareness.getLocalState()).toEqual({}) // what a fresh Awareness holds: no presence
    await aMinutePasses(relay, handle)
    relay.dropAll()
    await relay.settle()
    vi.advanceTimersByTime(10_000)
    await relay.settle()
    expect(client.status).toBe('online')
    expect(relay.messages({ type: MessageType.subscribe, doc: DOC })).toHaveLength(2)
    await aMinutePasses(relay, handle)
    // the relay's query is not answered with an empty state either
    relay.inject(encodeQueryAwareness(DOC))
    await relay.settle()
    handle.close()
    await relay.settle()
    expect(awarenessSent(relay)).toBe(0)
  })

  test('presence once set goes out, renews while set, and its removal goes out once', async () => {
    vi.useFakeTimers()
    const { relay, handle } = await onlineWithDoc()
    handle.awareness.setLocalStateField('editing', { field: 'title' })
    await relay.settle()
    expect(awarenessSent(relay)).toBe(1)
    expect(relay.awarenessStates(DOC).get(handle.awareness.clientID)).toEqual({ editing: { field: 'title' } })
    await aMinutePasses(relay, handle)
    const renewed = awarenessSent(relay)
    expect(renewed).toBeGreaterThanOrEqual(4) // keep-alives, so the relay does not time the state out
    expect(relay.awarenessStates(DOC).has(handle.awareness.clientID)).toBe(true)

    handle.awareness.setLocalState({}) // nothing to show any more: said once…
    await relay.settle()
    expect(awarenessSent(relay)).toBe(renewed + 1)
    await aMinutePasses(relay, handle)
    expect(awarenessSent(relay)).toBe(renewed + 1) // …and not renewed
  })

  test("a handle nobody shows presence in makes its Awareness (and y-protocols' 3 s timer) only when it is read or another client's state arrives", async () => {
    vi.useFakeTimers()
    const relay = h.relay()
    const bob = h.client(relay)
    const quiet = Array.from({ length: 20 }, (_, i) => bob.open(`acme/Q-${i}`))
    const b = bob.open(DOC)
    await relay.settle()
    const timers = vi.getTimerCount()
    const first = quiet[0]!.awareness // made now, with its interval
    expect(vi.getTimerCount()).toBe(timers + 1)
    expect(quiet[0]!.awareness).toBe(first)
    expect(first.getLocalState()).toEqual({})
    expect(first.clientID).toBe(quiet[0]!.doc.clientID)

    // presence set on an awareness made late goes out as it would have
    first.setLocalStateField('editing', { field: 'title' })
    await relay.settle()
    expect(relay.awarenessStates('acme/Q-0').get(first.clientID)).toEqual({ editing: { field: 'title' } })

    // another client's state arriving makes Bob's awareness of DOC, and it holds that state
    const alice = h.client(relay, { user: { id: 'u1', name: 'Alice' } })
    const a = alice.open(DOC)
    await relay.settle()
    expect(b.awareness.getStates().get(a.doc.clientID)).toEqual({ user: { id: 'u1', name: 'Alice' } })

    // a handle closed before anyone read its awareness: nothing sent; read afterwards it is a destroyed one (no timer)
    const sentBefore = relay.messages({ type: MessageType.awareness }).length
    const closed = quiet[1]!
    closed.close()
    await relay.settle()
    expect(relay.messages({ type: MessageType.awareness })).toHaveLength(sentBefore)
    const left = vi.getTimerCount()
    expect(closed.awareness.getLocalState()).toBeNull()
    expect(vi.getTimerCount()).toBe(left)
  })

  test('a state with the user of the client is presence: it goes out at subscribe and again after a reconnect', async () => {
    vi.useFakeTimers()
    const relay = h.relay()
    const client = h.client(relay, { user: { id: 'u1', name: 'Ada' } })
    const handle = client.open(DOC)
    await relay.settle()
    expect(awarenessSent(relay)).toBe(1)
    relay.dropAll()
    await relay.settle()
    vi.advanceTimersByTime(10_000)
    await relay.settle()
    expect(client.status).toBe('online')
    expect(awarenessSent(relay)).toBe(2)
    expect(relay.awarenessStates(DOC).get(handle.awareness.clientID)).toEqual({ user: { id: 'u1', name: 'Ada' } })
  })
})

describe('relay errors and odd messages', () => {
  test('notSubscribed makes the doc subscribe again', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    relay.error(DOC, ErrorCode.notSubscribed, 'relay unloaded the doc')
    await relay.settle()
    expect(relay.messages({ type: MessageType.subscribe, doc: DOC })).toHaveLength(2)
    expect(handle.isParked).toBe(false)
    expect(handle.isSynced).toBe(true)
    expect(handle.error).toBeNull() // cleared by the new sync step 2
    expect(client.relay).toEqual({
      protocolVersion: 1,
      relayVersion: 'test-relay',
      maxPayload: 1024 * 1024,
      features: RelayFeatures.resume | RelayFeatures.fetchMany | RelayFeatures.batch,
      time: expect.any(Number),
    })
  })

  test('an observer that throws while a remote update is applied is reported, not fatal', async () => {
    const { relay, client, handle } = await onlineWithDoc()
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    const errors: SyncError[] = []
    client.on('error', (e) => errors.push(e))
    const observer = () => {
      throw new Error('buggy view')
    }
    text(handle).observe(observer)
    relay.doc(DOC).getText('t').insert(0, 'remote')
    await relay.settle()
    expect(errors).toHaveLength(1)
    expect(errors[0]!.message).toMatch(/buggy view/)
    expect(errors[0]!.permanent).toBe(false)
    expect(handle.isParked).toBe(false)
    text(handle).unobserve(observer)
    relay.doc(DOC).getText('t').insert(6, '!')
    await relay.settle()
    expect(text(handle).toString()).toBe('remote!')
    consoleError.mockRestore()
  })

  test('the relay can ask for the local awareness state', async () => {
    const relay = h.relay()
    const client = h.client(relay, { user: { id: 'u1', name: 'Ada' } })
    const handle = client.open(DOC)
    await relay.settle()
    const sent = relay.messages({ type: MessageType.awareness, doc: DOC }).length
    relay.inject(encodeQueryAwareness(DOC))
    await relay.settle()
    expect(relay.messages({ type: MessageType.awareness, doc: DOC })).toHaveLength(sent + 1)
    expect(relay.awarenessStates(DOC).get(handle.awareness.clientID)).toEqual({ user: { id: 'u1', name: 'Ada' } })
  })
})

describe('handles', () => {
  test('invalid doc names throw a clear error', () => {
    const client = h.client(h.relay())
    for (const name of ['', '../etc', 'a//b', '.concord', 'a b', 'x/.y', 'é'.repeat(3), 'x'.repeat(513)]) {
      expect(() => client.open(name), name).toThrow(/invalid doc name/)
    }
    expect(() => client.open('acme/T-1.v2_x')).not.toThrow()
  })

  test('opening a name twice returns the same handle; the last close unsubscribes', async () => {
    const relay = h.relay()
    const client = h.client(relay)
    const first = client.open(DOC)
    const second = client.open(DOC)
    expect(second).toBe(first)
    expect(() => client.open(DOC, { doc: new Y.Doc() })).toThrow(/different Y.Doc/)
    await relay.settle()
    expect(relay.messages({ type: MessageType.subscribe })).toHaveLength(1)
    first.close()
    expect(first.isClosed).toBe(false)
    expect(client.get(DOC)).toBe(first)
    client.closeDoc(DOC)
    expect(first.isClosed).toBe(true)
    expect(client.get(DOC)).toBeUndefined()
    await relay.settle()
    expect(relay.messages({ type: MessageType.unsubscribe, doc: DOC })).toHaveLength(1)
    await expect(first.synced).resolves.toBeUndefined()
    await expect(first.flush()).rejects.toThrow(/closed/)
    expect(client.open(DOC)).not.toBe(first)
  })

  test('a doc the handle creates is named by its guid (no random guid drawn per doc)', () => {
    const client = h.client(h.relay())
    expect(client.open(DOC).doc.guid).toBe(DOC)
  })

  test('close() leaves a doc passed in alone and destroys its own', async () => {
    const relay = h.relay()
    const client = h.client(relay)
    const mine = new Y.Doc()
    const passed = client.open('acme/passed', { doc: mine })
    const own = client.open('acme/own')
    let ownDestroyed = false
    own.doc.on('destroy', () => (ownDestroyed = true))
    await relay.settle()
    passed.close()
    own.close()
    mine.getText('t').insert(0, 'still usable')
    expect(mine.isDestroyed).toBe(false)
    expect(ownDestroyed).toBe(true)
    await relay.settle()
    // Closed docs no longer sync.
    expect(relay.doc('acme/passed').getText('t').toString()).toBe('')
    mine.destroy()
  })

  test('synced rejects when the handle closes before the first sync', async () => {
    const relay = h.relay({ sendHello: false })
    const client = h.client(relay)
    const handle = client.open(DOC)
    handle.close()
    await expect(handle.synced).rejects.toThrow(/closed/)
  })
})

describe("the relay's clock", () => {
  const HOUR = 3_600_000

  test('a device clock an hour ahead is corrected by the offset the hello tells', async () => {
    const relay = h.relay()
    const client = h.client(relay, { clock: () => Date.now() + HOUR })
    const offsets: number[] = []
    client.on('clock-offset', (offset) => offsets.push(offset))
    expect(client.relayTime() - Date.now()).toBeGreaterThan(HOUR - 1000) // before the relay answered: the device's clock
    await relay.settle()
    expect(client.status).toBe('online')
    expect(Math.abs(client.clockOffset + HOUR)).toBeLessThan(1000)
    expect(Math.abs(client.relayTime() - Date.now())).toBeLessThan(1000)
    expect(offsets).toEqual([client.clockOffset])
  })

  test('a device clock within a second of the relay is left as it is, at every reconnect', async () => {
    const relay = h.relay()
    const client = h.client(relay, { clock: () => Date.now() - 400 })
    const offsets: number[] = []
    client.on('clock-offset', (offset) => offsets.push(offset))
    await relay.settle()
    relay.dropAll()
    await statusIs(client, 'online')
    expect(client.clockOffset).toBe(0)
    expect(offsets).toEqual([])
  })

  test('a hello that took long to arrive does not correct a clock that may be right', async () => {
    const relay = h.relay({ sendHello: false })
    let late = 0
    const client = h.client(relay, { clock: () => Date.now() + late })
    const offsets: number[] = []
    client.on('clock-offset', (offset) => offsets.push(offset))
    await relay.settle()
    // The relay's hello reaches the device 1.5 s after the socket was opened (a busy relay or device). Taken as
    // arriving at once, it would set this right clock 1.5 s behind, and every change made here would count as
    // 1.5 s earlier than it was — a colleague's earlier change would win over it.
    late = 1_500
    relay.hello()
    await relay.settle()
    expect(client.status).toBe('online')
    expect(client.clockOffset).toBe(0)
    expect(offsets).toEqual([])
  })

  test('an offset kept from before counts until the relay tells one, then the one it told', async () => {
    const relay = h.relay({ sendHello: false })
    const client = h.client(relay, { clock: () => Date.now() - 2 * HOUR })
    client.assumeClockOffset(2 * HOUR - 300_000) // kept when the clock was 5 minutes less behind
    expect(client.clockOffset).toBe(2 * HOUR - 300_000)
    await relay.settle()
    relay.hello()
    await relay.settle()
    expect(Math.abs(client.clockOffset - 2 * HOUR)).toBeLessThan(1000)
    client.assumeClockOffset(0) // too late: the relay has told
    expect(Math.abs(client.clockOffset - 2 * HOUR)).toBeLessThan(1000)
  })

  test("a token is refreshed a minute before it expires by the relay's clock, not an hour later on a device an hour behind", async () => {
    vi.useFakeTimers()
    const relay = h.relay({ clockAhead: HOUR }) // the relay's clock, and the tokens' expiry, an hour ahead of this device's
    let asked = 0
    const client = h.client(relay, { token: () => (asked++, 'ada') }) // the relay's test tokens last an hour
    await relay.settle()
    expect(client.identity?.userId).toBe('user-of-ada')
    expect(Math.abs(client.clockOffset - HOUR)).toBeLessThan(1000)
    expect(asked).toBe(1)
    const advance = async (ms: number) => {
      for (let left = ms; left > 0; left -= 10_000) {
        vi.advanceTimersByTime(Math.min(left, 10_000)) // pings and their answers keep the connection up
        await relay.settle()
      }
    }
    await advance(HOUR - 61_000)
    expect(asked).toBe(1)
    await advance(2_000)
    expect(asked).toBe(2) // a minute before the relay's clock reaches the expiry
    expect(client.status).toBe('online')
  })

  test('a relay whose clock was never set (1970) is no reference: the device keeps its own clock', async () => {
    const relay = h.relay({ clockAhead: -Date.now() + 5_000 })
    const client = h.client(relay)
    await relay.settle()
    expect(client.status).toBe('online')
    expect(client.relay?.time).toBeLessThan(60_000)
    expect(client.clockOffset).toBe(0)
  })

  test('a device whose clock was put right drops the offset', async () => {
    const relay = h.relay()
    const client = h.client(relay)
    client.assumeClockOffset(-HOUR)
    const offsets: number[] = []
    client.on('clock-offset', (offset) => offsets.push(offset))
    await relay.settle()
    expect(client.clockOffset).toBe(0)
    expect(offsets).toEqual([0])
  })
})

describe('close()', () => {
  test('is idempotent, rejects waiting flushes, stops reconnecting', async () => {
    vi.useFakeTimers()
    const { relay, client, handle } = await onlineWithDoc()
    text(handle).insert(0, 'unacked')
    const flushed = track(client.flush())
    const statuses: string[] = []
    client.on('status', (s) => statuses.push(s))
    client.close()
    client.close()
    await relay.settle()
    expect(flushed.rejected).toBe(true)
    expect(String(flushed.error)).toMatch(/closed/)
    expect(statuses).toEqual(['offline'])
    expect(client.status).toBe('offline')
    expect(client.isClosed).toBe(true)
    await expect(client.flush()).rejects.toThrow(/closed/)
    expect(() => client.open('acme/other')).toThrow(/closed/)
    expect(relay.messages({ type: MessageType.unsubscribe, doc: DOC })).toHaveLength(1)
    vi.advanceTimersByTime(120_000)
    await relay.settle()
    expect(relay.socketsCreated).toBe(1)
    // With the relay's own timers (room awareness, unload, last-seen) gone, none is left: the client stopped all its timers.
    relay.destroy()
    expect(vi.getTimerCount()).toBe(0)
  })
})
