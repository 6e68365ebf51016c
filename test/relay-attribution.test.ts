/**
 * Attribution and last-seen presence on a relay with auth: every Yjs client
 * id is bound to the user who first wrote with it, bindings are stored with
 * the commit and sent to every subscriber, a user cannot write as another
 * user's client id, and the relay remembers when users were last seen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { SyncClient } from '@concord/engine'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  ErrorCode,
  MessageType,
  encodeAuth,
  encodeAwareness,
  encodeFetch,
  encodeListPresence,
  encodeUnsubscribe,
} from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import { JwtAuthenticator } from '../apps/relay/src/auth/JwtAuthenticator.js'
import { RawMuxClient } from './helpers/rawClient.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { makeTempDir, removeDir, waitFor } from './helpers/relayProcess.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcpProxy.js'

let dir: string
let relay: Relay
const clients: RawMuxClient[] = []

const start = async () => {
  relay = await createRelay({
    storage: SqliteStorage.open(`${dir}/concord.sqlite`),
    port: 0,
    processMetrics: false,
    auth: new JwtAuthenticator({ key: { kind: 'secret', secret: TEST_SECRET } }),
  })
}
beforeAll(async () => {
  dir = makeTempDir()
  await start()
})
afterAll(async () => {
  for (const c of clients) c.close()
  await relay.close()
  removeDir(dir)
})

const as = async (userId: string, access: Record<string, 'read' | 'write'> = { acme: 'write' }) => {
  const c = new RawMuxClient(relay.url.replace(/^http/, 'ws'))
  clients.push(c)
  await c.open()
  c.send(encodeAuth(await signToken(userId, access, { name: userId.toUpperCase() })))
  await c.waitFor((m) => m.type === MessageType.authenticated, 'authenticated')
  return c
}

const write = (c: RawMuxClient, doc: string, text: string, clientId?: number): Y.Doc => {
  const d = c.docs.get(doc)!
  if (clientId !== undefined) d.clientID = clientId
  const before = Y.encodeStateVector(d)
  d.getText('t').insert(d.getText('t').length, text)
  c.sendUpdate(doc, Y.encodeStateAsUpdate(d, before))
  return d
}

const authorsSeen = (c: RawMuxClient, doc: string) => {
  const map = new Map<number, string>()
  for (const m of c.received) if (m.type === MessageType.authors && m.doc === doc) for (const a of m.authors!) map.set(a.clientId, a.userId)
  return map
}

describe('attribution', () => {
  it('binds each client id to the user who first wrote with it and tells every subscriber', async () => {
    const alice = await as('alice')
    const bob = await as('bob')
    const watcher = await as('walt')
    for (const c of [alice, bob, watcher]) c.subscribe('acme/T-1')
    for (const c of [alice, bob, watcher]) await c.waitFor((m) => m.type === MessageType.ack, 'ack')
    const a = write(alice, 'acme/T-1', 'alice ', 1111)
    const b = write(bob, 'acme/T-1', 'bob ', 2222)
    await waitFor(() => authorsSeen(watcher, 'acme/T-1').size === 2, 'two bindings at the watcher')
    expect(authorsSeen(watcher, 'acme/T-1')).toEqual(
      new Map([
        [1111, 'alice'],
        [2222, 'bob'],
      ]),
    )
    void a
    void b
  })

  it('refuses new structs under another user’s client id; harmless duplicates pass', async () => {
    const mallory = await as('mallory')
    const doc = mallory.subscribe('acme/T-1')
    await waitFor(() => doc.getText('t').length > 0, 'synced')
    const before = relay.rooms.peek('acme/T-1')!.doc.getText('t').toString()
    // re-sending content the relay has, authored by others, is fine
    mallory.sendUpdate('acme/T-1', Y.encodeStateAsUpdate(doc))
    // writing as alice's client id is not
    write(mallory, 'acme/T-1', ' forged by mallory', 1111)
    const error = await mallory.waitFor((m) => m.error?.code === ErrorCode.permissionDenied, 'forgery refused')
    expect(error.error!.reason).toMatch(/client id 1111 belongs to another user/)
    expect(relay.rooms.peek('acme/T-1')!.doc.getText('t').toString()).toBe(before)
    expect(mallory.received.filter((m) => m.type === MessageType.error)).toHaveLength(1)
  })

  it('bindings survive a restart and come with subscribe and fetch', async () => {
    await relay.close()
    for (const c of clients.splice(0)) c.close()
    await start()
    const reader = await as('rita', { acme: 'read' })
    reader.send(encodeFetch('acme/T-1', Y.encodeStateVector(new Y.Doc())))
    await reader.waitFor((m) => m.type === MessageType.fetched, 'fetched')
    const firstAuthors = reader.received.findIndex((m) => m.type === MessageType.authors)
    const fetched = reader.received.findIndex((m) => m.type === MessageType.fetched)
    expect(firstAuthors).toBeGreaterThanOrEqual(0)
    expect(firstAuthors).toBeLessThan(fetched)
    expect(authorsSeen(reader, 'acme/T-1')).toEqual(
      new Map([
        [1111, 'alice'],
        [2222, 'bob'],
      ]),
    )
    const sub = await as('sam')
    sub.subscribe('acme/T-1')
    await sub.waitFor((m) => m.type === MessageType.authors, 'authors on subscribe')
    expect(authorsSeen(sub, 'acme/T-1').get(2222)).toBe('bob')
  })
})

const announce = (c: RawMuxClient, doc: string, clientId: number, times = 1) => {
  const d = new Y.Doc()
  d.clientID = clientId
  const a = new awarenessProtocol.Awareness(d)
  for (let i = 0; i < times; i++) a.setLocalState({ editing: null, i })
  c.send(encodeAwareness(doc, awarenessProtocol.encodeAwarenessUpdate(a, [clientId])))
  a.destroy()
  d.destroy()
}

/** Vera (the writer) and Mallory, both with write access, subscribed to `doc` and acked. */
const veraAndMallory = async (doc: string) => {
  const vera = await as('vera')
  const mallory = await as('mallory')
  const veraDoc = vera.subscribe(doc)
  mallory.subscribe(doc)
  for (const c of [vera, mallory]) await c.waitFor((m) => m.type === MessageType.ack && m.doc === doc, 'ack')
  return { vera, mallory, veraDoc }
}

describe('client ids announced in awareness', () => {
  const DOC = 'acme/T-20'
  it('a writer’s id is reserved in memory while its connection holds it: writing under it first is refused, its own edits are accepted, acked and bind it', async () => {
    const { vera, mallory, veraDoc: writerDoc } = await veraAndMallory(DOC)
    announce(vera, DOC, 5555)
    await mallory.waitFor((m) => m.type === MessageType.awareness && m.doc === DOC, 'the writer’s awareness')
    // awareness binds nothing
    expect(mallory.received.some((m) => m.type === MessageType.authors && m.authors!.some((a) => a.clientId === 5555))).toBe(false)
    // mallory writes first under the writer's announced client id: refused
    write(mallory, DOC, 'taken by mallory', 5555)
    const error = await mallory.waitFor((m) => m.doc === DOC && m.error?.code === ErrorCode.permissionDenied, 'forged-author refusal')
    expect(error.error!.reason).toMatch(/client id 5555 belongs to another user/)
    expect(relay.rooms.peek(DOC)!.doc.getText('t').toString()).toBe('')
    // the writer's own edit is accepted, stored, acked, and binds the id
    writerDoc.clientID = 5555
    write(vera, DOC, 'vera writes')
    await vera.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && (m.ack!.get(5555) ?? 0) > 0, 'ack of the writer’s edit')
    expect(relay.rooms.peek(DOC)!.doc.getText('t').toString()).toBe('vera writes')
    expect(vera.received.some((m) => m.type === MessageType.error)).toBe(false)
    await mallory.waitFor(
      (m) => m.type === MessageType.authors && m.authors!.some((a) => a.clientId === 5555 && a.userId === 'vera'),
      'the binding',
    )
    // nor take over the id in awareness once the writer has left
    const awarenessBefore = mallory.received.filter((m) => m.type === MessageType.awareness).length
    vera.close()
    await waitFor(() => mallory.received.filter((m) => m.type === MessageType.awareness).length > awarenessBefore, 'the writer leaves')
    announce(mallory, DOC, 5555, 5)
    mallory.send(encodeListPresence('acme', 31))
    await mallory.waitFor((m) => m.presence?.requestId === 31, 'a round trip')
    expect(relay.rooms.peek(DOC)!.awarenessStates.has(5555)).toBe(false)
  })

  it('a read-only viewer’s id reserves nothing: a writer’s update under it is accepted and binds it, the viewer’s state for it goes; awareness stores nothing', async () => {
    const rita = await as('rita', { acme: 'read' })
    const mallory = await as('mallory')
    rita.subscribe(DOC)
    const writerDoc = mallory.subscribe(DOC)
    for (const c of [rita, mallory]) await c.waitFor((m) => m.type === MessageType.ack && m.doc === DOC, 'ack')
    announce(rita, DOC, 6666)
    await waitFor(() => relay.rooms.peek(DOC)!.awarenessStates.has(6666), 'the viewer’s state')
    writerDoc.clientID = 6666
    write(mallory, DOC, ' by mallory')
    await mallory.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && (m.ack!.get(6666) ?? 0) > 0, 'ack of the writer’s edit')
    expect(mallory.received.some((m) => m.type === MessageType.error)).toBe(false)
    await waitFor(() => !relay.rooms.peek(DOC)!.awarenessStates.has(6666), 'the viewer’s state removed')
    await relay.close()
    for (const c of clients.splice(0)) c.close()
    await start()
    const reader = await as('sam', { acme: 'read' })
    reader.subscribe(DOC)
    await reader.waitFor((m) => m.type === MessageType.authors && m.doc === DOC, 'authors on subscribe')
    expect(authorsSeen(reader, DOC)).toEqual(
      new Map([
        [5555, 'vera'],
        [6666, 'mallory'],
      ]),
    )
  })
})

describe('a room that went dormant', () => {
  const DOC = 'acme/T-40'
  it('keeps its bindings and the writers’ reserved ids: writing under them is still refused, the owners’ edits wake it', async () => {
    const { vera, mallory, veraDoc } = await veraAndMallory(DOC)
    write(vera, DOC, 'vera writes', 6001)
    await vera.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && (m.ack!.get(6001) ?? 0) > 0, 'ack of vera’s edit')
    announce(vera, DOC, 6002)
    await mallory.waitFor(
      (m) => m.type === MessageType.awareness && m.doc === DOC && m.awareness!.some((e) => e.clientId === 6002),
      'vera’s presence',
    )
    const room = relay.rooms.peek(DOC)!
    relay.rooms.sleepUnused()
    relay.rooms.sleepUnused()
    expect(room.isDormant).toBe(true)
    // under vera's bound id, and under the id her presence reserves: refused, nothing applied
    for (const id of [6001, 6002]) {
      write(mallory, DOC, ` mallory as ${id}`, id)
      const refusal = await mallory.waitFor(
        (m) => m.doc === DOC && m.error?.code === ErrorCode.permissionDenied && m.error.reason.includes(`client id ${id} belongs`),
        `refusal of ${id}`,
      )
      expect(refusal.error!.reason).toMatch(/belongs to another user/)
    }
    expect(room.doc.getText('t').toString()).toBe('vera writes')
    // vera goes on under both of her ids: accepted, acked, bound to her
    veraDoc.clientID = 6002
    write(vera, DOC, ' and more')
    await vera.waitFor((m) => m.type === MessageType.ack && m.doc === DOC && (m.ack!.get(6002) ?? 0) > 0, 'ack of vera’s second edit')
    await mallory.waitFor(
      (m) => m.type === MessageType.authors && m.authors!.some((a) => a.clientId === 6002 && a.userId === 'vera'),
      'the new binding',
    )
    expect(relay.rooms.peek(DOC)!.doc.getText('t').toString()).toBe('vera writes and more')
  })
})

describe('last seen', () => {
  it('remembers when users were last seen per workspace, and who is online now', async () => {
    const alice = await as('alice', { acme: 'write' })
    alice.subscribe('acme/T-9')
    await alice.waitFor((m) => m.type === MessageType.ack, 'ack')
    const leftAt = Date.now()
    alice.close()
    await alice.waitClosed()
    // the relay took alice out of the doc (and so of the workspace's presence) when it saw her close
    await waitFor(() => (relay.rooms.peek('acme/T-9')?.peers.size ?? 0) === 0, 'alice left the doc at the relay')
    const bob = await as('bob', { acme: 'read' })
    bob.subscribe('acme/T-9')
    await bob.waitFor((m) => m.type === MessageType.ack, 'ack')
    bob.send(encodeListPresence('acme', 7))
    const answer = await bob.waitFor((m) => m.presence?.requestId === 7, 'presence')
    const users = new Map(answer.presence!.users.map((u) => [u.userId, u]))
    expect(users.get('bob')).toMatchObject({ online: true, name: 'BOB' })
    expect(users.get('alice')).toMatchObject({ online: false, name: 'ALICE' })
    expect(users.get('alice')!.lastSeen).toBeGreaterThanOrEqual(leftAt - 1000)
    // outsiders cannot ask
    const outsider = await as('otto', { globex: 'write' })
    outsider.send(encodeListPresence('acme', 1))
    const refused = await outsider.waitFor((m) => m.type === MessageType.error, 'refused')
    expect(refused.error!.code).toBe(ErrorCode.permissionDenied)
    // and it survives a restart
    await relay.close()
    for (const c of clients.splice(0)) c.close()
    await start()
    const later = await as('carol', { acme: 'read' })
    later.send(encodeListPresence('acme', 2))
    const after = await later.waitFor((m) => m.presence?.requestId === 2, 'presence after restart')
    const ids = after.presence!.users.map((u) => u.userId)
    expect(ids).toEqual(expect.arrayContaining(['alice', 'bob']))
    expect(ids).not.toContain('carol') // asking is not being present in a doc
    expect(after.presence!.users.every((u) => !u.online)).toBe(true)
  })
})

describe('without auth', () => {
  let anonDir: string
  let anon: Relay
  const anonClients: RawMuxClient[] = []
  const startAnon = async () => {
    anon = await createRelay({ storage: SqliteStorage.open(`${anonDir}/concord.sqlite`), port: 0, processMetrics: false })
  }
  const connect = async () => {
    const c = new RawMuxClient(anon.url.replace(/^http/, 'ws'))
    anonClients.push(c)
    await c.open()
    return c
  }
  beforeAll(async () => {
    anonDir = makeTempDir()
    await startAnon()
  })
  afterAll(async () => {
    for (const c of anonClients) c.close()
    await anon.close()
    removeDir(anonDir)
  })

  const bindingsOf = (c: RawMuxClient, doc: string) => {
    const map = new Map<number, { userId: string; name: string }>()
    for (const m of c.received)
      if (m.type === MessageType.authors && m.doc === doc)
        for (const a of m.authors!) map.set(a.clientId, { userId: a.userId, name: a.name })
    return map
  }

  it('binds a client id at its first write to the anonymous user with the name the writer’s awareness for it shows; a later subscriber, even after a restart, learns it', async () => {
    const DOC = 'train/T-1'
    const ada = await connect()
    const bob = await connect()
    ada.subscribe(DOC)
    bob.subscribe(DOC)
    for (const c of [ada, bob]) await c.waitFor((m) => m.type === MessageType.ack && m.doc === DOC, 'ack')
    const d = new Y.Doc()
    d.clientID = 7001
    const a = new awarenessProtocol.Awareness(d)
    a.setLocalState({ user: { id: 'ada-lovelace', name: '  Ada   Lovelace ' } })
    ada.send(encodeAwareness(DOC, awarenessProtocol.encodeAwarenessUpdate(a, [7001])))
    a.destroy()
    // awareness alone binds nothing
    await waitFor(() => anon.rooms.peek(DOC)!.awarenessStates.has(7001), 'the state')
    expect(bindingsOf(bob, DOC).size).toBe(0)
    write(ada, DOC, 'ada ', 7001)
    // a client id that writes before it announces anything keeps the anonymous user's name
    write(bob, DOC, 'bob ', 7002)
    await waitFor(() => bindingsOf(bob, DOC).size === 2, 'both bindings')
    expect(bindingsOf(bob, DOC)).toEqual(
      new Map([
        [7001, { userId: 'anonymous', name: 'Ada Lovelace' }],
        [7002, { userId: 'anonymous', name: 'Anonymous' }],
      ]),
    )
    // stored: a new subscriber after a restart gets the name with the bindings
    await anon.close()
    for (const c of anonClients.splice(0)) c.close()
    await startAnon()
    const carol = await connect()
    carol.subscribe(DOC)
    await carol.waitFor((m) => m.type === MessageType.authors && m.doc === DOC, 'authors on subscribe')
    expect(bindingsOf(carol, DOC).get(7001)).toEqual({ userId: 'anonymous', name: 'Ada Lovelace' })
  })

  /** Ada's engine behind a proxy that can cut her connection, and a colleague's; `run` gets both, then all is closed. */
  const travellerAndColleague = async (run: (traveller: SyncClient, colleague: SyncClient, proxy: TcpProxy) => Promise<void>) => {
    const proxy = await startTcpProxy(Number(new URL(anon.url).port))
    const traveller = new SyncClient({
      url: proxy.wsUrl,
      WebSocket: WebSocket as never,
      user: { id: 'ada-lovelace', name: 'Ada Lovelace' },
      reconnect: { minDelay: 20, maxDelay: 200 },
    })
    const colleague = new SyncClient({
      url: anon.url.replace(/^http/, 'ws'),
      WebSocket: WebSocket as never,
      reconnect: { minDelay: 20, maxDelay: 200 },
    })
    try {
      await run(traveller, colleague, proxy)
    } finally {
      traveller.close()
      colleague.close()
      await proxy.close()
    }
  }

  it('edits made offline with the engine are bound, on reconnect, with the name its presence shows', async () => {
    const DOC = 'train/T-5'
    await travellerAndColleague(async (traveller, colleague, proxy) => {
      const t = traveller.open(DOC)
      const c = colleague.open(DOC)
      await Promise.all([t.synced, c.synced])
      proxy.cut()
      await waitFor(() => traveller.status !== 'online', 'traveller offline')
      t.doc.getText('body').insert(0, 'written on the train')
      proxy.restore()
      await traveller.flush()
      await waitFor(() => c.authors.has(t.doc.clientID), 'the binding at the colleague')
      // the traveller's presence is back at the colleague
      await waitFor(
        () => (c.awareness.getStates().get(t.doc.clientID) as { user?: { name?: string } } | undefined)?.user?.name === 'Ada Lovelace',
        'presence after reconnect',
        5000,
      )
      expect(c.authors.get(t.doc.clientID)).toMatchObject({ userId: 'anonymous', name: 'Ada Lovelace' })
    })
  })

  it('edits made offline to a record that shows no presence are bound, on reconnect, with the name the connection’s presence shows in another doc', async () => {
    // As the web app syncs a record edited offline and closed since: no presence in it, only in the workspace's presence doc.
    const DOC = 'train/T-6'
    await travellerAndColleague(async (traveller, colleague, proxy) => {
      const workspace = traveller.open('train/_workspace/presence')
      const t = traveller.open(DOC, { presence: false })
      const c = colleague.open(DOC)
      await Promise.all([workspace.synced, t.synced, c.synced])
      expect(c.awareness.getStates().has(t.doc.clientID)).toBe(false)
      proxy.cut()
      await waitFor(() => traveller.status !== 'online', 'traveller offline')
      t.doc.getText('body').insert(0, 'written on the train, the record closed since')
      proxy.restore()
      await traveller.flush()
      await waitFor(() => c.authors.has(t.doc.clientID), 'the binding at the colleague')
      expect(c.authors.get(t.doc.clientID)).toMatchObject({ userId: 'anonymous', name: 'Ada Lovelace' })
      expect(c.awareness.getStates().has(t.doc.clientID), 'no presence in the record').toBe(false)
    })
  })

  it('lists the people whose presence said who they are in the workspace (last seen), not those who said nothing', async () => {
    const show = (c: RawMuxClient, doc: string, clientId: number, user?: { id: string; name: string }) => {
      const d = new Y.Doc()
      d.clientID = clientId
      const a = new awarenessProtocol.Awareness(d)
      a.setLocalState(user === undefined ? { editing: null } : { user })
      c.send(encodeAwareness(doc, awarenessProtocol.encodeAwarenessUpdate(a, [clientId])))
      a.destroy()
    }
    let requests = 40
    const people = async (c: RawMuxClient) => {
      const requestId = ++requests
      c.send(encodeListPresence('train', requestId))
      return (await c.waitFor((m) => m.presence?.requestId === requestId, 'presence')).presence!.users
    }
    const ada = await connect()
    const bob = await connect()
    const mute = await connect()
    // Ada's presence says who she is on one doc: she counts for every doc of the workspace she has open, before and after
    ada.subscribe('train/T-3')
    ada.subscribe('train/T-4')
    bob.subscribe('train/T-3')
    mute.subscribe('train/T-3')
    for (const c of [ada, bob, mute]) await c.waitFor((m) => m.type === MessageType.ack && m.doc === 'train/T-3', 'ack')
    show(ada, 'train/T-3', 8001, { id: 'ada-lovelace', name: 'Ada Lovelace' })
    show(bob, 'train/T-3', 8002, { id: 'bob-stone', name: 'Bob Stone' })
    show(mute, 'train/T-3', 8003)
    const carol = await connect()
    await expect.poll(async () => (await people(carol)).length).toBe(2)
    const listed = new Map((await people(carol)).map((u) => [u.userId, u]))
    expect([...listed.keys()].sort()).toEqual(['ada-lovelace', 'bob-stone'])
    expect(listed.get('ada-lovelace')).toMatchObject({ name: 'Ada Lovelace', online: true })
    // Ada leaves one doc: still here; she closes: last seen
    ada.send(encodeUnsubscribe('train/T-3'))
    await people(ada) // a round trip: the unsubscribe was handled
    expect((await people(carol)).find((u) => u.userId === 'ada-lovelace')).toMatchObject({ online: true })
    ada.close()
    await ada.waitClosed()
    await expect.poll(async () => (await people(carol)).find((u) => u.userId === 'ada-lovelace')?.online).toBe(false)
  })
})
