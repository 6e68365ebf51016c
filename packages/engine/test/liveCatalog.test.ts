/**
 * Live lists against the real relay in-process: `SyncClient.watchCatalog` watches a
 * workspace across reconnects (the watch goes out before any catch-up
 * request), and a `live` RecordStore lists records another client creates,
 * changes and archives without opening them and without counting them as
 * pending, and says when it first caught up with the relay.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { MemoryStorage, RecordStore, type SyncClient } from '../src/index.js'
import { MessageType } from '../src/protocol/index.js'
import { Harness, statusIs } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(() => h.close())

/** Resolves once `read()` satisfies `predicate`, checking on every catalog change of `store`. */
const until = <T>(store: RecordStore, read: () => T, predicate: (value: T) => boolean): Promise<T> =>
  new Promise((resolve) => {
    const check = (): void => {
      const value = read()
      if (!predicate(value)) return
      store.off('catalog', check)
      resolve(value)
    }
    store.on('catalog', check)
    check()
  })

const store = (client: SyncClient, live: boolean): RecordStore =>
  h.keep(
    new RecordStore({
      client,
      userId: live ? 'ada' : 'bob',
      workspaceId: 'acme',
      schemas: testSchemas,
      tabs: false,
      storage: new MemoryStorage(),
      live,
    }),
  )

describe('SyncClient.watchCatalog', () => {
  test('watches on every connection, before the catch-up it asks for, and stops on request', async () => {
    const relay = h.relay()
    const client = h.client(relay)
    const changed: string[][] = []
    let watching = 0
    const stop = client.watchCatalog('acme', {
      changed: (names) => changed.push(names),
      watching: () => {
        watching++
        void client.listDocs('acme/')
      },
    })
    await statusIs(client, 'online')
    await relay.settle()
    expect(watching).toBe(1)
    const types = () => relay.received.filter((m) => m.doc === 'acme' || m.doc === 'acme/').map((m) => m.type)
    expect(types()).toEqual([MessageType.watchCatalog, MessageType.listDocs])

    ;(await relay.open('acme/T-1')).getText('t').insert(0, 'x')
    relay.ack('acme/T-1')
    await relay.settle()
    expect(changed).toEqual([['acme/T-1']])

    relay.dropAll()
    await statusIs(client, 'offline')
    await statusIs(client, 'online')
    await relay.settle()
    expect(watching).toBe(2)
    expect(types()).toEqual([MessageType.watchCatalog, MessageType.listDocs, MessageType.watchCatalog, MessageType.listDocs])

    stop()
    await relay.settle()
    expect(types().at(-1)).toBe(MessageType.unwatchCatalog)
    ;(await relay.open('acme/T-2')).getText('t').insert(0, 'y')
    relay.ack('acme/T-2')
    await relay.settle()
    expect(changed).toEqual([['acme/T-1']])
  })

  test('refuses a workspace id that is not one doc-name segment', () => {
    const client = h.client(h.relay())
    expect(() => client.watchCatalog('acme/T-1', { changed: () => {} })).toThrow(/one doc-name segment/)
    expect(() => client.watchCatalog('', { changed: () => {} })).toThrow(/invalid workspace id/)
  })
})

describe('a live RecordStore', () => {
  test('lists what another client creates, changes and archives, without opening it or counting it as pending', async () => {
    const relay = h.relay({ autoAck: true })
    const adaClient = h.client(relay)
    const ada = store(adaClient, true)
    const bob = store(h.client(relay), false)
    await ada.ready
    await statusIs(adaClient, 'online')

    const ticket = await bob.create('ticket', { title: 'Printer on fire', status: 'open' })
    const listed = await until(
      ada,
      () => ada.catalog.get(ticket.id),
      (e) => e?.title === 'Printer on fire',
    )
    expect(listed).toMatchObject({ type: 'ticket', pending: 0, local: true })
    expect(adaClient.docNames).toEqual([])

    ticket.set('status', 'done')
    await until(
      ada,
      () => ada.catalog.get(ticket.id)?.fields.status,
      (s) => s === 'done',
    )
    ticket.archive()
    await until(
      ada,
      () => ada.list({ type: 'ticket' }).entries.length,
      (n) => n === 0,
    )
    expect(ada.list({ type: 'ticket', includeArchived: true }).entries.map((e) => e.id)).toEqual([ticket.id])
    expect(ada.pending).toBe(0)
    ticket.close()
  })

  test('the catch-up lists the workspace while the catalog is still loading, and fetches once it is loaded', async () => {
    const relay = h.relay({ autoAck: true })
    const bob = store(h.client(relay), false)
    await bob.create('ticket', { title: 'Printer on fire' }).then((t) => t.close())
    await bob.flush()

    // A catalog that does not open until released (a slow IndexedDB on a new device).
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const inner = new MemoryStorage()
    const adaClient = h.client(relay)
    const ada = h.keep(
      new RecordStore({
        client: adaClient,
        userId: 'ada',
        workspaceId: 'acme',
        schemas: testSchemas,
        tabs: false,
        storage: {
          kind: 'slow',
          openRecord: (id) => inner.openRecord(id),
          openCatalog: () => gate.then(() => inner.openCatalog()),
          wipe: () => inner.wipe(),
        },
        live: true,
      }),
    )
    let ready = false
    void ada.ready.then(() => (ready = true))
    const caughtUp = new Promise<void>((resolve) => ada.on('caught-up', resolve))
    await statusIs(adaClient, 'online')
    await relay.settle()
    expect(ready).toBe(false)
    // Not caught up while the catalog cannot take what the relay lists: an empty list means "not here yet".
    expect(ada.caughtUp).toBe(false)
    const connection = relay.socketsCreated
    expect(relay.messages({ connection, type: MessageType.listDocs })).toHaveLength(1)
    expect(relay.messages({ connection, type: MessageType.fetch })).toHaveLength(0)

    release()
    const listed = await until(
      ada,
      () => ada.list({ type: 'ticket' }).entries.map((e) => e.title),
      (titles) => titles.length === 1,
    )
    expect(listed).toEqual(['Printer on fire'])
    expect(relay.messages({ connection, type: MessageType.fetch })).toHaveLength(1)
    await caughtUp
    expect(ada.caughtUp).toBe(true)
  })

  test('a reconnect fetches only the records the relay stored changes of meanwhile', async () => {
    const relay = h.relay({ autoAck: true })
    const bob = store(h.client(relay), false)
    const ids: string[] = []
    for (let i = 0; i < 12; i++) {
      const ticket = await bob.create('ticket', { title: `Ticket ${i}`, status: 'open' })
      ids.push(ticket.id)
      ticket.close()
    }
    await bob.flush()
    const adaClient = h.client(relay)
    const ada = store(adaClient, true)
    await ada.ready
    await statusIs(adaClient, 'online')
    // one more while watching: the live catalog fetches it
    const live = await bob.create('ticket', { title: 'Live one', status: 'open' })
    ids.push(live.id)
    live.close()
    await bob.flush()
    // the first catch-up and the live catalog fetched every record once, each at the change sequence the relay reported
    await until(
      ada,
      () => ids.filter((id) => (ada.catalog.get(id)?.relaySeq ?? 0) > 0).length,
      (n) => n === ids.length,
    )
    await relay.settle()
    const fetches = () => relay.messages({ type: MessageType.fetch }).map((m) => m.doc)
    const lists = () => relay.messages({ type: MessageType.listDocs }).length
    const fetchedBefore = fetches().length

    // Nothing changed while away: the catch-up lists the workspace and fetches nothing.
    const listsBefore = lists()
    relay.sockets.at(-1)!.drop()
    await statusIs(adaClient, 'offline')
    await statusIs(adaClient, 'online')
    await relay.settle()
    expect(lists()).toBe(listsBefore + 1)
    expect(fetches()).toHaveLength(fetchedBefore)

    // One record changed while away: only it is fetched.
    relay.accepting = false
    relay.sockets.at(-1)!.drop()
    await statusIs(adaClient, 'offline')
    await bob.update(ids[3]!, { status: 'done' })
    await bob.flush()
    relay.accepting = true
    await until(
      ada,
      () => ada.catalog.get(ids[3]!)?.fields.status,
      (status) => status === 'done',
    )
    await relay.settle()
    expect(fetches().slice(fetchedBefore)).toEqual([`acme/${ids[3]}`])
  })
})
