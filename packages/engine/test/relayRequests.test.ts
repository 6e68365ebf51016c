/**
 * `client.listDocs` and `client.fetchDoc` (protocol messages 23–26) against
 * the real relay in-process: pagination, request matching, offline waiting, resending
 * after a lost socket, errors and aborts.
 */
import { afterEach, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { ErrorCode, SyncError } from '../src/index.js'
import * as encoding from 'lib0/encoding'
import {
  ListFlags,
  MAX_FETCH_DOCS,
  MessageType,
  RelayFeatures,
  decodeMessage,
  encodeDocList,
  encodeFetched,
  encodeFetchedPart,
  encodeListDocs,
  readDocList,
  readFetched,
  readListDocs,
  readResume,
  startMessage,
} from '../src/protocol/index.js'
import { FIRST_LIST_PAGE, RelayRequests } from '../src/sync/RelayRequests.js'
import { Harness, statusIs, track } from './helpers.js'

const h = new Harness()
afterEach(() => h.cleanup())

/** A `list-docs` request as clients before the sequence flag wrote it. */
const legacyListDocs = (prefix: string, requestId: number, after: string, limit: number): Uint8Array => {
  const encoder = startMessage(MessageType.listDocs, prefix)
  encoding.writeVarUint(encoder, requestId)
  encoding.writeVarString(encoder, after)
  encoding.writeVarUint(encoder, limit)
  return encoding.toUint8Array(encoder)
}

/** A full update of a doc with `text` in Y.Text `t`. */
const docWith = (text: string): Y.Doc => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return doc
}

describe('listDocs', () => {
  test('follows pagination and lists only stored docs under the prefix, sorted', async () => {
    const relay = h.relay()
    for (const id of ['t5', 't1', 't3', 't2', 't4']) relay.seed(`acme/${id}`, Y.encodeStateAsUpdate(docWith(id)))
    relay.seed('other/t1', Y.encodeStateAsUpdate(docWith('x')))
    const client = h.client(relay)
    // each page as it arrives: the next one is asked for only after
    const pages: Array<{ names: string[]; asked: number }> = []
    const names = await client.listDocs('acme/', {
      pageSize: 2,
      onPage: (docs) => pages.push({ names: docs.map((d) => d.name), asked: relay.messages({ type: MessageType.listDocs }).length }),
    })
    expect(names).toEqual(['acme/t1', 'acme/t2', 'acme/t3', 'acme/t4', 'acme/t5'])
    expect(pages).toEqual([
      { names: ['acme/t1', 'acme/t2'], asked: 1 },
      { names: ['acme/t3', 'acme/t4'], asked: 2 },
      { names: ['acme/t5'], asked: 3 },
    ])
    expect(relay.messages({ type: MessageType.listDocs })).toHaveLength(3)
    expect(relay.messages({ type: MessageType.subscribe })).toHaveLength(0)
    expect(await client.listDocs('nobody/')).toEqual([])
  })

  test('without a pageSize the first page is small, so the caller starts on it at once; the pages after are the largest', async () => {
    const relay = h.relay()
    const ids = Array.from({ length: FIRST_LIST_PAGE + 30 }, (_, i) => `acme/t${String(i).padStart(4, '0')}`)
    for (const id of ids) relay.seed(id, Y.encodeStateAsUpdate(docWith(id)))
    const client = h.client(relay)
    const pages: number[] = []
    expect((await client.listDocsWithSeqs('acme/', { onPage: (docs) => pages.push(docs.length) })).map((d) => d.name)).toEqual(ids)
    expect(pages).toEqual([FIRST_LIST_PAGE, 30])
    // with a pageSize, every page has it
    pages.length = 0
    await client.listDocsWithSeqs('acme/', { pageSize: 100, onPage: (docs) => pages.push(docs.length) })
    expect(pages).toEqual([100, 100, 80])
  })

  test('with sequences: each doc carries the sequence of its last stored change, which moves only when a change is stored', async () => {
    const relay = h.relay({ autoAck: true })
    relay.seed('acme/t1', Y.encodeStateAsUpdate(docWith('a')))
    relay.seed('acme/t2', Y.encodeStateAsUpdate(docWith('b')))
    const client = h.client(relay)
    const before = await client.listDocsWithSeqs('acme/', { pageSize: 1 })
    expect(before.map((d) => d.name)).toEqual(['acme/t1', 'acme/t2'])
    expect(before.every((d) => typeof d.seq === 'number' && d.seq > 0)).toBe(true)
    const handle = client.open('acme/t2')
    await relay.settle()
    handle.doc.getText('t').insert(0, 'more ')
    await handle.flush()
    const after = await client.listDocsWithSeqs('acme/')
    expect(after[0]).toEqual(before[0])
    expect(after[1]!.seq).toBeGreaterThan(before[1]!.seq!)
  })

  test('the sequence flag is optional on both sides: a request without it reads as before, an answer without sequences gives none', () => {
    const plain = encodeListDocs('acme/', 7, 'acme/t1', 50)
    expect(plain).toEqual(legacyListDocs('acme/', 7, 'acme/t1', 50))
    const read = (message: Uint8Array) => {
      const { body } = decodeMessage(message)
      return readListDocs(body)
    }
    expect(read(plain)).toEqual({ requestId: 7, after: 'acme/t1', limit: 50, flags: 0 })
    expect(read(encodeListDocs('acme/', 7, '', 50, ListFlags.seqs)).flags).toBe(ListFlags.seqs)
    const answer = (message: Uint8Array) => readDocList(decodeMessage(message).body)
    expect(answer(encodeDocList('acme/', 7, ['acme/t1'], false))).toEqual({ requestId: 7, names: ['acme/t1'], more: false, seqs: null })
    expect(answer(encodeDocList('acme/', 7, ['acme/t1', 'acme/t2'], true, [3, 0]))).toEqual({
      requestId: 7,
      names: ['acme/t1', 'acme/t2'],
      more: true,
      seqs: [3, 0],
    })
    // names are read all at once while they are ASCII, one by one as UTF-8 otherwise; long names have 2-byte lengths
    const long = `acme/${'x'.repeat(300)}`
    const mixed = ['acme/', 'acme/a', long, '', 'acme/z9_.-']
    expect(answer(encodeDocList('acme/', 8, mixed, false, [1, 2, 3, 4, 5])).names).toEqual(mixed)
    const unicode = ['acme/a', 'acme/café', 'acme/日本', long]
    expect(answer(encodeDocList('acme/', 9, unicode, false)).names).toEqual(unicode)
    expect(answer(encodeDocList('acme/', 10, [], false))).toEqual({ requestId: 10, names: [], more: false, seqs: null })
    // a list cut short is refused, not read as shorter names
    const cut = encodeDocList('acme/', 11, ['acme/a', long], false)
    expect(() => answer(cut.subarray(0, cut.length - 40))).toThrow()
    const fetched = (message: Uint8Array) => readFetched(decodeMessage(message).body)
    expect(fetched(encodeFetched('acme/t1', Uint8Array.of(0, 0), Uint8Array.of(0))).seq).toBeNull()
    expect(fetched(encodeFetched('acme/t1', Uint8Array.of(0, 0), Uint8Array.of(0), 9)).seq).toBe(9)
  })

  test('waits while offline and asks once the relay said hello', async () => {
    const relay = h.relay({ sendHello: false })
    relay.seed('acme/t1', Y.encodeStateAsUpdate(docWith('a')))
    const client = h.client(relay)
    const listing = track(client.listDocs('acme/'))
    await relay.settle()
    expect(listing.settled).toBe(false)
    expect(relay.messages({ type: MessageType.listDocs })).toHaveLength(0)
    relay.hello()
    await relay.settle()
    expect(listing.resolved).toBe(true)
  })

  test('an error naming the prefix rejects the listing with a SyncError', async () => {
    const relay = h.relay()
    relay.rejectReads.set('acme/', { code: ErrorCode.storageUnavailable, reason: 'disk on fire' })
    const client = h.client(relay)
    const error = await client.listDocs('acme/').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SyncError)
    expect(error).toMatchObject({ doc: 'acme/', code: ErrorCode.storageUnavailable, permanent: false })
  })

  test('rejects a bad page size at once', async () => {
    const client = h.client(h.relay())
    await expect(client.listDocs('acme/', { pageSize: 0 })).rejects.toThrow(/pageSize/)
  })
})

describe('fetchDoc', () => {
  test('returns what the given state vector lacks plus the durable state vector, without subscribing', async () => {
    const relay = h.relay()
    const source = docWith('hello')
    relay.seed('acme/t1', Y.encodeStateAsUpdate(source))
    source.getText('t').insert(5, ' world')
    Y.applyUpdate(await relay.open('acme/t1'), Y.encodeStateAsUpdate(source)) // applied, not stored yet
    const client = h.client(relay)

    const full = await client.fetchDoc('acme/t1')
    const fresh = new Y.Doc()
    Y.applyUpdate(fresh, full.update)
    expect(fresh.getText('t').toString()).toBe('hello world')
    expect(Y.decodeStateVector(full.stateVector)).toEqual(new Map([[source.clientID, 5]]))
    // the sequence of what is stored (the answer holds more, not less): as the listing reports it
    expect(full.seq).toBe((await client.listDocsWithSeqs('acme/'))[0]!.seq)

    const diff = await client.fetchDoc('acme/t1', Y.encodeStateVector(fresh))
    expect(Y.decodeUpdate(diff.update).structs).toHaveLength(0)
    expect(relay.messages({ type: MessageType.subscribe })).toHaveLength(0)
    expect(client.docNames).toEqual([])
  })

  test('many fetches in flight over one socket each get their own doc', async () => {
    const relay = h.relay()
    const ids = Array.from({ length: 50 }, (_, i) => `acme/t${i}`)
    for (const id of ids) relay.seed(id, Y.encodeStateAsUpdate(docWith(id)))
    const client = h.client(relay)
    const results = await Promise.all(ids.map((id) => client.fetchDoc(id)))
    results.forEach((result, i) => {
      const doc = new Y.Doc()
      Y.applyUpdate(doc, result.update)
      expect(doc.getText('t').toString()).toBe(ids[i])
    })
    expect(relay.socketsCreated).toBe(1)
    // asked for in one turn: one fetch-many message, each doc answered on its own
    expect(relay.messages({ type: MessageType.fetchMany })).toHaveLength(1)
    expect(relay.messages({ type: MessageType.fetch, batched: true })).toHaveLength(50)
  })

  test('a relay without fetch-many gets one fetch per doc', async () => {
    const relay = h.relay({ fetchMany: false })
    const ids = Array.from({ length: 5 }, (_, i) => `acme/t${i}`)
    for (const id of ids) relay.seed(id, Y.encodeStateAsUpdate(docWith(id)))
    const client = h.client(relay)
    const results = await Promise.all(ids.map((id) => client.fetchDoc(id)))
    expect(results.map((r) => Y.decodeUpdate(r.update).structs.length > 0)).toEqual([true, true, true, true, true])
    expect(relay.messages({ type: MessageType.fetchMany })).toHaveLength(0)
    expect(relay.messages({ type: MessageType.fetch })).toHaveLength(5)
  })

  test('bindings that come in several authors messages all reach the answer', async () => {
    const relay = h.relay({ authorsPerMessage: 2, autoAck: true })
    const writer = h.client(relay)
    const handle = writer.open('acme/t1')
    await handle.synced
    for (let i = 1; i <= 5; i++) {
      handle.doc.clientID = 100 + i
      handle.doc.getText('t').insert(0, `${i}`)
    }
    await writer.flush()
    expect(relay.authorsOf('acme/t1')).toHaveLength(5)
    const fetched = await h.client(relay).fetchDoc('acme/t1')
    expect(fetched.authors.map((a) => a.clientId).sort()).toEqual([101, 102, 103, 104, 105])
  })

  test('two fetches of the same doc are answered in order', async () => {
    const relay = h.relay()
    relay.seed('acme/t1', Y.encodeStateAsUpdate(docWith('abc')))
    const client = h.client(relay)
    const everything = client.fetchDoc('acme/t1')
    const nothing = client.fetchDoc('acme/t1', Y.encodeStateVector(await relay.open('acme/t1')))
    const [a, b] = await Promise.all([everything, nothing])
    expect(Y.decodeUpdate(a.update).structs.length).toBeGreaterThan(0)
    expect(Y.decodeUpdate(b.update).structs).toHaveLength(0)
  })

  test('a refused fetch rejects with the relay error; an open handle of the same doc hears it too', async () => {
    const relay = h.relay()
    relay.rejectReads.set('acme/secret', { code: ErrorCode.permissionDenied, reason: 'not yours' })
    const client = h.client(relay)
    await expect(client.fetchDoc('acme/secret')).rejects.toMatchObject({
      code: ErrorCode.permissionDenied,
      permanent: true,
      doc: 'acme/secret',
    })
    await expect(client.fetchDoc('acme/../x')).rejects.toThrow(/invalid doc name/)
  })

  test('a request lost with its socket is sent again on the next connection', async () => {
    const relay = h.relay()
    relay.seed('acme/t1', Y.encodeStateAsUpdate(docWith('abc')))
    const client = h.client(relay)
    await relay.settle()
    relay.holdReads = true
    const fetching = track(client.fetchDoc('acme/t1'))
    const listing = track(client.listDocs('acme/'))
    await relay.settle()
    relay.dropAll() // the held answers die with the connection
    relay.holdReads = false
    await relay.settle()
    expect(client.status).toBe('offline')
    await statusIs(client, 'online') // the reconnect (backoff with random() = 0)
    await relay.settle()
    expect(fetching.resolved).toBe(true)
    expect(listing.resolved).toBe(true)
    expect(relay.messages({ type: MessageType.fetch })).toHaveLength(2)
  })

  test('a relay that does not know these messages: rejected after 3 connections, not retried forever', async () => {
    const relay = h.relay({ listAndFetch: false })
    const client = h.client(relay)
    const error = await client.fetchDoc('acme/t1').catch((e: unknown) => e)
    expect(String(error)).toMatch(/did not answer fetch "acme\/t1" on 3 connections/)
    expect(relay.messages({ type: MessageType.fetch })).toHaveLength(3)
  })

  test('abort and close reject waiting requests', async () => {
    const relay = h.relay()
    relay.holdReads = true
    const client = h.client(relay)
    const controller = new AbortController()
    const aborted = client.fetchDoc('acme/t1', undefined, { signal: controller.signal })
    controller.abort(new Error('user left the page'))
    await expect(aborted).rejects.toThrow('user left the page')
    const waiting = client.listDocs('acme/')
    await relay.settle()
    client.close()
    await expect(waiting).rejects.toThrow(/closed/)
    await expect(client.fetchDoc('acme/t1')).rejects.toThrow(/closed/)
  })
})

describe('fetches of one turn go together', () => {
  const sentBy = (features: number, maxMessageBytes = 1024 * 1024) => {
    const sent: Uint8Array[] = []
    const requests = new RelayRequests(
      (data) => sent.push(data),
      3,
      () => ({ features, maxMessageBytes }),
    )
    requests.connected()
    return { sent, requests }
  }
  const entriesOf = (data: Uint8Array) => {
    const { type, doc, body } = decodeMessage(data)
    return type === MessageType.fetchMany ? readResume(body).map((e) => e.doc) : [`${type}:${doc}`]
  }
  const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `acme/t${from + i}`)

  test('in fetch-many messages of at most MAX_FETCH_DOCS docs and half the largest frame, in order; one alone is a fetch', async () => {
    const { sent, requests } = sentBy(RelayFeatures.fetchMany)
    for (const name of names(2500)) void requests.fetch(name, new Uint8Array([0]), {}).catch(() => {})
    expect(sent).toHaveLength(0) // at the end of the turn
    await Promise.resolve()
    expect(sent.map((m) => entriesOf(m).length)).toEqual([MAX_FETCH_DOCS, MAX_FETCH_DOCS, 500])
    expect(sent.flatMap(entriesOf)).toEqual(names(2500))

    const small = sentBy(RelayFeatures.fetchMany, 4000)
    for (const name of names(100)) void small.requests.fetch(name, new Uint8Array(40), {}).catch(() => {})
    await Promise.resolve()
    expect(small.sent.length).toBeGreaterThan(2)
    expect(small.sent.every((m) => m.byteLength <= 2000)).toBe(true)
    expect(small.sent.flatMap(entriesOf)).toEqual(names(100))

    void requests.fetch('acme/alone', new Uint8Array([0]), {}).catch(() => {})
    await Promise.resolve()
    expect(entriesOf(sent.at(-1)!)).toEqual([`${MessageType.fetch}:acme/alone`])
  })

  test('a fetch aborted in the same turn is left out; fetches cut off by a lost socket go out together on the next', async () => {
    const { sent, requests } = sentBy(RelayFeatures.fetchMany | RelayFeatures.resume)
    const controller = new AbortController()
    const aborted = requests.fetch('acme/t1', new Uint8Array([0]), { signal: controller.signal })
    for (const name of names(3, 2)) void requests.fetch(name, new Uint8Array([0]), {}).catch(() => {})
    controller.abort(new Error('left the page'))
    await expect(aborted).rejects.toThrow('left the page')
    expect(sent.flatMap(entriesOf)).toEqual(names(3, 2))

    for (const name of names(2, 10)) void requests.fetch(name, new Uint8Array([0]), {}).catch(() => {})
    requests.disconnected() // before the turn ended: nothing goes on the dead socket
    await Promise.resolve()
    expect(sent).toHaveLength(1)
    requests.connected()
    await Promise.resolve()
    // all five unanswered fetches, once each
    expect(entriesOf(sent.at(-1)!).sort()).toEqual([...names(3, 2), ...names(2, 10)].sort())
    expect(requests.size).toBe(5)
  })
})

describe('fetch answers in parts', () => {
  /** Feeds a relay message to `requests` the way SyncClient dispatches it. */
  const deliver = (requests: RelayRequests, bytes: Uint8Array): void => {
    const { type, doc, body } = decodeMessage(bytes)
    if (type === MessageType.fetchedPart) requests.receiveFetchedPart(doc, body)
    else if (type === MessageType.fetched) requests.receiveFetched(doc, body)
  }
  test('parts are merged into the update fetchDoc resolves with; parts of an answer cut short by a lost socket are dropped', async () => {
    const sent: Uint8Array[] = []
    const requests = new RelayRequests((data) => sent.push(data))
    requests.connected()
    // the answer cut in two valid updates: the first ten items, then the rest
    const source = new Y.Doc()
    for (let i = 0; i < 10; i++) source.getArray('a').push([`item ${i}`])
    const first = Y.encodeStateAsUpdate(source)
    const between = Y.encodeStateVector(source)
    for (let i = 10; i < 20; i++) source.getArray('a').push([`item ${i}`])
    const update = Y.encodeStateAsUpdate(source)
    const durable = Y.encodeStateVector(source)

    const whole = requests.fetch('acme/t1', new Uint8Array([0]), {})
    deliver(requests, encodeFetchedPart('acme/t1', first))
    deliver(requests, encodeFetched('acme/t1', Y.encodeStateAsUpdate(source, between), durable))
    const fetched = await whole
    const doc = new Y.Doc()
    Y.applyUpdate(doc, fetched.update)
    expect(doc.getArray('a').toJSON()).toEqual(source.getArray('a').toJSON())
    expect(fetched.stateVector).toEqual(durable)

    // a part arrives, the socket is lost; the answer on the next socket is a plain `fetched`
    const again = requests.fetch('acme/t2', new Uint8Array([0]), {})
    deliver(requests, encodeFetchedPart('acme/t2', update))
    requests.disconnected()
    requests.connected()
    expect(sent.filter((m) => decodeMessage(m).doc === 'acme/t2')).toHaveLength(2)
    const small = new Y.Doc()
    small.getText('t').insert(0, 'only this')
    deliver(requests, encodeFetched('acme/t2', Y.encodeStateAsUpdate(small), Y.encodeStateVector(small)))
    const second = await again
    expect(second.update).toEqual(Y.encodeStateAsUpdate(small))
  })

  test('a part for a doc nobody fetches is ignored', () => {
    const requests = new RelayRequests(() => {})
    requests.connected()
    const { doc, body } = decodeMessage(encodeFetchedPart('acme/none', new Uint8Array([0, 0])))
    expect(requests.receiveFetchedPart(doc, body)).toBe(false)
  })
})
