/**
 * Live lists against a real relay process with JWT auth: a connection that
 * watches a workspace's catalog hears which of its docs changed once the
 * relay stored the change — only for workspaces its token lets it list —
 * and a live record store shows records others create, change and archive
 * without polling, and catches up after a reconnect.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { ErrorCode, MessageType, encodeAuth, encodeUnwatchCatalog, encodeWatchCatalog } from '@concord/engine/protocol'
import { MemoryStorage, RecordStore, SyncClient, type RecordStoreOptions } from '@concord/engine'
import { appSchemas } from '../apps/web/src/lib/schemas.js'
import { removeDir, startRelay, type RelayProcess } from './helpers/relayProcess.js'
import { RawMuxClient, covers, type ReceivedMessage } from './helpers/rawClient.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcpProxy.js'
import { WebsocketProvider } from 'y-websocket'

let relay: RelayProcess
const raws: RawMuxClient[] = []
const clients: SyncClient[] = []
const stores: RecordStore[] = []
const proxies: TcpProxy[] = []

beforeAll(async () => {
  relay = await startRelay({ args: ['--max-catalog-watches-per-connection', '2'], env: { JWT_SECRET: TEST_SECRET } })
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const c of clients.splice(0)) c.close()
  for (const r of raws.splice(0)) r.close()
  for (const p of proxies.splice(0)) await p.close()
})

/** A raw multiplexed connection authenticated as `user` with `access`. */
const connect = async (user: string, access: Record<string, 'read' | 'write'>): Promise<RawMuxClient> => {
  const raw = new RawMuxClient(relay.wsUrl)
  raws.push(raw)
  await raw.open()
  raw.send(encodeAuth(await signToken(user, access)))
  await raw.waitFor((m) => m.type === MessageType.authenticated, `${user} authenticated`)
  return raw
}

/** Writes `text` into doc `name` over `raw` and waits for the relay's durable ack. */
const write = async (raw: RawMuxClient, name: string, text: string): Promise<void> => {
  const doc = raw.docs.get(name) ?? raw.subscribe(name)
  const before = Y.encodeStateVector(doc)
  doc.getText('title').insert(0, text)
  raw.sendUpdate(name, Y.encodeStateAsUpdate(doc, before))
  await raw.waitFor((m) => m.type === MessageType.ack && m.doc === name && covers(m.ack, doc), `ack of ${name}`)
}

/** Every doc name the connection was told about in `catalog-changed` notices. */
const heard = (raw: RawMuxClient): string[] => raw.received.flatMap((m) => m.catalogChanged ?? [])

const notice = (name: string) => (m: ReceivedMessage) => m.catalogChanged?.includes(name) === true

describe('watch-catalog', () => {
  it('tells a watcher which docs of its workspace changed, and nobody of workspaces they may not list', async () => {
    const ada = await connect('ada', { acme: 'read' })
    const eve = await connect('eve', { globex: 'write' })
    const rec = await connect('rec', { 'acme/T-1': 'read' }) // one record, not the workspace
    const bob = await connect('bob', { acme: 'write', globex: 'write' })

    ada.send(encodeWatchCatalog('acme'))
    eve.send(encodeWatchCatalog('globex'))
    eve.send(encodeWatchCatalog('acme'))
    rec.send(encodeWatchCatalog('acme'))
    const refusedEve = await eve.waitFor((m) => m.type === MessageType.error, 'eve refused')
    expect(refusedEve).toMatchObject({ doc: 'acme', error: { code: ErrorCode.permissionDenied } })
    const refusedRec = await rec.waitFor((m) => m.type === MessageType.error, 'rec refused')
    expect(refusedRec).toMatchObject({ doc: 'acme', error: { code: ErrorCode.permissionDenied } })
    // the watches are in place once a later request on the same socket is answered
    for (const raw of [ada, eve]) {
      raw.send(encodeWatchCatalog('no access here'))
      await raw.waitFor((m) => m.error?.code === ErrorCode.invalidDocName, 'invalid workspace id refused')
    }

    await write(bob, 'acme/T-1', 'Login fails')
    await write(bob, 'globex/S-1', 'Secret merger')
    expect((await ada.waitFor(notice('acme/T-1'), 'ada hears of acme/T-1')).doc).toBe('acme')
    expect((await eve.waitFor(notice('globex/S-1'), 'eve hears of globex/S-1')).doc).toBe('globex')

    // later changes in both workspaces: once each watcher heard of its own, it would have heard of the other
    await write(bob, 'globex/S-2', 'Layoffs')
    await write(bob, 'acme/T-2', 'Export is slow')
    await ada.waitFor(notice('acme/T-2'), 'ada hears of acme/T-2')
    await eve.waitFor(notice('globex/S-2'), 'eve hears of globex/S-2')
    await write(bob, 'acme/T-3', 'Barrier for rec')
    await ada.waitFor(notice('acme/T-3'), 'ada hears of acme/T-3')

    expect(heard(ada).every((name) => name.startsWith('acme/'))).toBe(true)
    expect(heard(eve).every((name) => name.startsWith('globex/'))).toBe(true)
    expect(heard(rec)).toEqual([])
    expect(ada.received.some((m) => m.type === MessageType.sync)).toBe(false) // a watch subscribes nothing
  })

  it('caps watches per connection and stops telling after unwatch', async () => {
    const bob = await connect('bob', { '*': 'write' })
    const carol = await connect('carol', { '*': 'read' })
    carol.send(encodeWatchCatalog('one'))
    carol.send(encodeWatchCatalog('two'))
    carol.send(encodeWatchCatalog('two')) // the same watch again: not a third
    carol.send(encodeWatchCatalog('three'))
    const capped = await carol.waitFor((m) => m.type === MessageType.error, 'third watch refused')
    expect(capped).toMatchObject({ doc: 'three', error: { code: ErrorCode.limitExceeded } })
    expect(carol.received.filter((m) => m.type === MessageType.error)).toHaveLength(1)

    carol.send(encodeUnwatchCatalog('one'))
    carol.send(encodeWatchCatalog('three')) // room again after the unwatch
    carol.send(encodeWatchCatalog('nope nope'))
    await carol.waitFor((m) => m.error?.code === ErrorCode.invalidDocName, 'requests before it handled')

    await write(bob, 'one/R-1', 'after the unwatch')
    await write(bob, 'three/R-1', 'watched')
    await write(bob, 'two/R-1', 'watched too')
    await carol.waitFor(notice('three/R-1'), 'three/R-1')
    await carol.waitFor(notice('two/R-1'), 'two/R-1')
    expect(heard(carol)).not.toContain('one/R-1')
  })

  it('a refreshed token without the workspace ends the watch', async () => {
    const bob = await connect('bob', { acme: 'write', globex: 'write' })
    const ada = await connect('ada', { acme: 'read', globex: 'read' })
    ada.send(encodeWatchCatalog('acme'))
    ada.send(encodeWatchCatalog('globex'))
    await write(bob, 'acme/R-1', 'before the refresh')
    await ada.waitFor(notice('acme/R-1'), 'heard before the refresh')
    ada.send(encodeAuth(await signToken('ada', { globex: 'read' })))
    const revoked = await ada.waitFor((m) => m.type === MessageType.error && m.doc === 'acme', 'watch dropped')
    expect(revoked.error!.code).toBe(ErrorCode.permissionDenied)
    await write(bob, 'acme/R-2', 'after the refresh')
    await write(bob, 'globex/R-2', 'still watched')
    await ada.waitFor(notice('globex/R-2'), 'globex still heard')
    expect(heard(ada)).not.toContain('acme/R-2')
  })

  it('also tells of docs written through the y-websocket endpoint', async () => {
    const ada = await connect('ada', { acme: 'read' })
    ada.send(encodeWatchCatalog('acme'))
    const doc = new Y.Doc()
    const token = await signToken('bob', { acme: 'write' })
    const provider = new WebsocketProvider(relay.wsUrl, 'acme/Y-1', doc, {
      WebSocketPolyfill: WebSocket as never,
      disableBc: true,
      params: { token },
    })
    try {
      await new Promise<void>((resolve) => (provider.synced ? resolve() : provider.once('sync', (s: boolean) => s && resolve())))
      doc.getText('title').insert(0, 'from a stock provider')
      await ada.waitFor(notice('acme/Y-1'), 'ada hears of acme/Y-1')
    } finally {
      provider.destroy()
      doc.destroy()
    }
  })

  it('one notice per doc for a burst of changes', async () => {
    const bob = await connect('bob', { acme: 'write' })
    const ada = await connect('ada', { acme: 'read' })
    ada.send(encodeWatchCatalog('acme'))
    ada.send(encodeWatchCatalog('bad name'))
    await ada.waitFor((m) => m.error?.code === ErrorCode.invalidDocName, 'watch in place')
    // twenty keystrokes sent at once, each its own update
    const doc = bob.subscribe('acme/B-1')
    for (let i = 0; i < 20; i++) {
      const before = Y.encodeStateVector(doc)
      doc.getText('title').insert(i, 'x')
      bob.sendUpdate('acme/B-1', Y.encodeStateAsUpdate(doc, before))
    }
    await bob.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'all stored')
    await write(bob, 'acme/B-2', 'after the burst')
    await ada.waitFor(notice('acme/B-2'), 'the notice after the burst')
    const notices = ada.received.filter(notice('acme/B-1'))
    expect(notices.length).toBeGreaterThanOrEqual(1)
    expect(notices.length).toBeLessThan(20)
    for (const m of notices) expect(m.catalogChanged!.filter((n) => n === 'acme/B-1')).toHaveLength(1)
  })
})

describe('a live record store', () => {
  const client = async (user: string, access: Record<string, 'read' | 'write'>, url = relay.wsUrl): Promise<SyncClient> => {
    const token = await signToken(user, access)
    const c = new SyncClient({ url, token, WebSocket: WebSocket as never, reconnect: { minDelay: 20, maxDelay: 200 } })
    clients.push(c)
    return c
  }
  const store = (c: SyncClient, userId: string, workspaceId: string, options: Partial<RecordStoreOptions> = {}): RecordStore => {
    const s = new RecordStore({
      client: c,
      userId,
      workspaceId,
      schemas: appSchemas,
      tabs: false,
      storage: new MemoryStorage(),
      live: true,
      ...options,
    })
    stores.push(s)
    return s
  }
  /** Resolves once `read()` satisfies `predicate`, checking on every catalog change. */
  const until = <T>(s: RecordStore, read: () => T, predicate: (v: T) => boolean): Promise<T> =>
    new Promise((resolve) => {
      const check = (): void => {
        const value = read()
        if (!predicate(value)) return
        s.off('catalog', check)
        resolve(value)
      }
      s.on('catalog', check)
      check()
    })
  const status = (c: SyncClient, predicate: (s: string) => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!predicate(c.status)) return
        c.off('status', check)
        resolve()
      }
      c.on('status', check)
      check()
    })
  const titles = (s: RecordStore): string[] =>
    s.list({ type: 'ticket', sort: { by: 'title', direction: 'asc' } }).entries.map((e) => e.title)

  it('shows records others create, change and archive, and catches up after a reconnect', async () => {
    const proxy = await startTcpProxy(Number(new URL(relay.url).port))
    proxies.push(proxy)
    const adaClient = await client('ada', { live: 'read' }, proxy.wsUrl)
    const ada = store(adaClient, 'ada', 'live')
    const bob = store(await client('bob', { live: 'write' }), 'bob', 'live')
    await ada.ready
    await status(adaClient, (s) => s === 'online')

    const ticket = await bob.create('ticket', { title: 'Printer on fire', status: 'open' })
    await until(
      ada,
      () => titles(ada),
      (t) => t.includes('Printer on fire'),
    )
    expect(adaClient.docNames).toEqual([]) // listed without opening

    ticket.set('status', 'in_progress')
    ticket.text('title').insert(0, 'URGENT: ')
    await until(
      ada,
      () => ada.catalog.get(ticket.id),
      (e) => e?.fields.status === 'in_progress' && e.title === 'URGENT: Printer on fire',
    )
    expect(ada.pending).toBe(0) // Bob's changes are not Ada's to sync, even fetched before the relay stored them
    expect(ada.unsynced()).toEqual([])

    ticket.archive()
    await until(
      ada,
      () => titles(ada),
      (t) => !t.includes('URGENT: Printer on fire'),
    )
    expect(ada.list({ type: 'ticket', includeArchived: true }).entries.map((e) => e.id)).toContain(ticket.id)
    ticket.close()

    // Ada goes offline; Bob creates a ticket meanwhile; it is there once she is back.
    proxy.cut()
    await status(adaClient, (s) => s !== 'online')
    const offline = await bob.create('ticket', { title: 'Created while Ada was away' })
    await offline.flush()
    offline.close()
    expect(titles(ada)).not.toContain('Created while Ada was away')
    proxy.restore()
    await until(
      ada,
      () => titles(ada),
      (t) => t.includes('Created while Ada was away'),
    )
  })

  it('keeps the log of a record others keep changing short on this device', async () => {
    const storage = new MemoryStorage()
    const ada = store(await client('ada', { busy: 'read' }), 'ada', 'busy', { storage, compactAfter: 4 })
    const bob = store(await client('bob', { busy: 'write' }), 'bob', 'busy')
    await ada.ready
    const ticket = await bob.create('ticket', { title: 'v0' })
    for (let i = 1; i <= 8; i++) {
      ticket.set('title', `v${i}`)
      await until(
        ada,
        () => ada.catalog.get(ticket.id)?.title,
        (t) => t === `v${i}`,
      ) // each version fetched on its own
    }
    ticket.close()
    const stored = await (await storage.openRecord(ticket.id)).load()
    expect(stored.updates.length).toBeLessThanOrEqual(4)
    const copy = new Y.Doc()
    for (const update of stored.updates) Y.applyUpdate(copy, update)
    expect(copy.getText('text:title').toString()).toBe('v8')
  })

  it('a store of a workspace the token does not cover hears nothing of it', async () => {
    const eveClient = await client('eve', { other: 'write' })
    const eve = store(eveClient, 'eve', 'secret')
    const bob = store(await client('bob', { secret: 'write', other: 'write' }), 'bob', 'secret')
    const bobElsewhere = store(clients.at(-1)!, 'bob', 'other')
    const eveElsewhere = store(eveClient, 'eve', 'other')
    const hidden = await bob.create('ticket', { title: 'Hidden plan' })
    await hidden.flush()
    hidden.close()
    const visible = await bobElsewhere.create('ticket', { title: 'Visible plan' })
    await until(
      eveElsewhere,
      () => titles(eveElsewhere),
      (t) => t.includes('Visible plan'),
    )
    visible.close()
    expect(titles(eve)).toEqual([])
    expect(eve.catalog.all()).toEqual([])
  })
})
