/**
 * Tracker basics of the record API against the real relay in-process (authenticated
 * clients, so every writer is bound to a user): archive and unarchive with
 * history, a concurrent edit of an archived record, comments (authors from
 * the relay's bindings, only the author edits and deletes, offline writes,
 * activity since a state) and blank records discarded by their creator.
 */
import { afterEach, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { CommentError, MemoryStorage, RecordStore, type RecordStoreOptions } from '../src/index.js'
import { COMMENTS_ARRAY } from '../src/model/recordDoc.js'
import type { TestRelay } from './relayHarness.js'
import { Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(() => h.close())

let clock = 1_000_000
const newStore = (relay: TestRelay, token: string, options: Partial<RecordStoreOptions> = {}) => {
  const net = h.gatedClient(relay, token)
  const store = h.keep(
    new RecordStore({
      client: net.client,
      userId: `user-of-${token}`,
      workspaceId: 'acme',
      schemas: testSchemas,
      tabs: false,
      storage: new MemoryStorage(),
      now: () => (clock += 1000),
      ...options,
    }),
  )
  return { ...net, store }
}

/** Ada creates ticket T-1; Bob opens it. */
const pair = async () => {
  const relay = h.relay({ autoAck: true })
  const ada = newStore(relay, 'ada')
  const bob = newStore(relay, 'bob')
  const adaTicket = await ada.store.create('ticket', { title: 'Login fails' }, { id: 'T-1' })
  await adaTicket.flush()
  const bobTicket = await bob.store.open('T-1')
  await bobTicket.sync.synced
  await relay.settle()
  return { relay, ada: { ...ada, ticket: adaTicket }, bob: { ...bob, ticket: bobTicket } }
}

const listed = (store: RecordStore, query: Parameters<RecordStore['list']>[0] = {}) =>
  store.list({ type: 'ticket', ...query }).entries.map((e) => e.id)

describe('archive', () => {
  test('archive and unarchive: the record leaves the default list, stays findable, and the history says who did it', async () => {
    const { relay, ada, bob } = await pair()
    expect(ada.ticket.archived).toBe(false)
    ada.ticket.archive()
    await relay.settle()
    expect(bob.ticket.archived).toBe(true)
    expect(bob.ticket.read().archived).toBe(true)
    expect(listed(bob.store)).toEqual([])
    expect(listed(bob.store, { search: 'login', includeArchived: true })).toEqual(['T-1'])
    ada.ticket.archive() // already archived: nothing written
    bob.ticket.archive(false)
    await relay.settle()
    expect(ada.ticket.archived).toBe(false)
    expect(listed(ada.store)).toEqual(['T-1'])

    const archives = ada.ticket.history().entries.filter((e) => e.kind === 'change' && e.field === '$archived')
    expect(archives.map((e) => e.kind === 'change' && [e.value, e.prev, e.author.userId])).toEqual([
      [true, false, 'user-of-ada'],
      [false, true, 'user-of-bob'],
    ])
    expect(JSON.stringify(ada.ticket.history())).toBe(JSON.stringify(bob.ticket.history()))

    // Restoring the archive entry archives again (a new change by the restorer).
    bob.ticket.restore(archives[0]!.id)
    await relay.settle()
    expect(ada.ticket.archived).toBe(true)
    expect(ada.ticket.history().entries.at(-1)).toMatchObject({
      field: '$archived',
      value: true,
      restoreOf: archives[0]!.id,
      author: { userId: 'user-of-bob' },
    })
  })

  test('a bad value is refused with a clear error and writes nothing', async () => {
    const { ada } = await pair()
    const before = Y.encodeStateVector(ada.ticket.doc)
    expect(() => ada.ticket.archive('yes' as unknown as boolean)).toThrow(/\$archived.*expected true or false/)
    expect(Y.encodeStateVector(ada.ticket.doc)).toEqual(before)
  })

  test('Bob edits the title offline while Ada archives: both are kept, the history shows both', async () => {
    const { relay, ada, bob } = await pair()
    bob.offline()
    bob.ticket.set('title', 'Login fails on Safari')
    ada.ticket.archive()
    await relay.settle()
    bob.online()
    await bob.ticket.flush()
    await relay.settle()
    for (const side of [ada, bob]) {
      expect(side.ticket.read()).toMatchObject({ archived: true, fields: { title: 'Login fails on Safari' } })
      const changes = side.ticket.history().entries.flatMap((e) => (e.kind === 'change' ? [[e.field, e.author.userId]] : []))
      expect(changes).toContainEqual(['$archived', 'user-of-ada'])
      expect(changes).toContainEqual(['title', 'user-of-bob'])
    }
    expect(listed(ada.store, { search: 'safari', includeArchived: true })).toEqual(['T-1'])
    expect(listed(ada.store, { search: 'safari' })).toEqual([])
  })
})

describe('comments', () => {
  test('authors come from the relay’s bindings; only the author edits and deletes', async () => {
    const { relay, ada, bob } = await pair()
    const first = ada.ticket.comment('  Reproduced on Safari 17  ')
    const second = bob.ticket.comment('Same on Firefox')
    await relay.settle()
    const seenByBob = bob.ticket.comments()
    expect(seenByBob.map((c) => [c.id, c.body, c.author.userId, c.mine])).toEqual([
      [first, 'Reproduced on Safari 17', 'user-of-ada', false],
      [second, 'Same on Firefox', 'user-of-bob', true],
    ])
    expect(ada.ticket.comments().map((c) => c.mine)).toEqual([true, false])

    // Bob may not touch Ada's comment: a clear error, nothing written.
    const before = Y.encodeStateVector(bob.ticket.doc)
    expect(() => bob.ticket.editComment(first, 'Not reproducible')).toThrow(CommentError)
    expect(() => bob.ticket.editComment(first, 'Not reproducible')).toThrow(
      /written by ada \(user-of-ada\); only its author can edit it\. Nothing was written/,
    )
    expect(() => bob.ticket.deleteComment(first)).toThrow(/only its author can delete it/)
    expect(Y.encodeStateVector(bob.ticket.doc)).toEqual(before)

    ada.ticket.editComment(first, 'Reproduced on Safari 17.2')
    bob.ticket.deleteComment(second)
    await relay.settle()
    for (const side of [ada, bob]) {
      const comments = side.ticket.comments()
      expect(comments.map((c) => [c.body, c.author.userId])).toEqual([['Reproduced on Safari 17.2', 'user-of-ada']])
      expect(comments[0]!.editedAt).not.toBeNull()
    }
    expect(() => bob.ticket.deleteComment(second)).toThrow(/it was deleted/)
    expect(() => bob.ticket.editComment('nope', 'x')).toThrow(/no such comment/)
    expect(() => ada.ticket.comment('   ')).toThrow(/cannot be empty/)
    expect(() => ada.ticket.comment('x'.repeat(10_001))).toThrow(/at most 10000/)
    expect(
      ada.ticket
        .commentActivity()
        .map((a) => [a.kind, a.author.userId])
        .sort(),
    ).toEqual([
      ['commented', 'user-of-ada'],
      ['commented', 'user-of-bob'],
      ['deleted', 'user-of-bob'],
      ['edited', 'user-of-ada'],
    ])
  })

  test('an edit written by hand into someone else’s comment changes nothing any reader shows; nor does a copied id', async () => {
    const { relay, ada, bob } = await pair()
    const id = ada.ticket.comment('Ship it')
    await relay.settle()
    // Bob's device bypasses the API: an edit event for Ada's comment, and a copy of Ada's add event.
    bob.ticket.doc.transact(() => {
      const array = bob.ticket.doc.getArray(COMMENTS_ARRAY)
      const clock = Y.getState(bob.ticket.doc.store, bob.ticket.doc.clientID)
      array.push([{ id: `${bob.ticket.doc.clientID.toString(36)}.${clock.toString(36)}`, k: 'edit', c: id, body: 'Do not ship', at: 1 }])
      array.push([{ id, k: 'add', body: 'Forged', at: 1 }])
    })
    await relay.settle()
    for (const side of [ada, bob])
      expect(side.ticket.comments().map((c) => [c.body, c.author.userId])).toEqual([['Ship it', 'user-of-ada']])
  })

  test('written offline, synced on reconnect with the author; what was new since a state', async () => {
    const { relay, ada, bob } = await pair()
    const seen = Y.decodeStateVector(Y.encodeStateVector(bob.ticket.doc))
    ada.offline()
    const id = ada.ticket.comment('Found the cause: the session cookie')
    ada.ticket.editComment(id, 'Found the cause: the SameSite cookie')
    expect(ada.ticket.comments()).toMatchObject([
      { body: 'Found the cause: the SameSite cookie', mine: true, author: { userId: 'user-of-ada' } },
    ])
    expect(ada.ticket.pendingFields).toContain('$comments')
    await relay.settle()
    expect(bob.ticket.comments()).toEqual([])
    ada.online()
    await ada.ticket.flush()
    await relay.settle()
    expect(bob.ticket.comments()).toMatchObject([
      { id, body: 'Found the cause: the SameSite cookie', author: { userId: 'user-of-ada', name: 'ada' }, mine: false },
    ])
    expect(ada.ticket.comments()).toMatchObject([{ author: { userId: 'user-of-ada' }, mine: true }])
    expect(bob.ticket.commentActivity(seen).map((a) => [a.kind, a.commentId, a.author.userId])).toEqual([
      ['commented', id, 'user-of-ada'],
      ['edited', id, 'user-of-ada'],
    ])
    expect(bob.ticket.commentActivity(Y.decodeStateVector(Y.encodeStateVector(bob.ticket.doc)))).toEqual([])
  })

  test('without auth the relay proves no one the author: a comment is only its own session’s', async () => {
    const relay = h.relay({ autoAck: true })
    const stores = ['ada', 'bob'].map((user) =>
      h.keep(
        new RecordStore({
          client: h.client(relay),
          userId: user,
          workspaceId: 'acme',
          schemas: testSchemas,
          tabs: false,
          storage: new MemoryStorage(),
        }),
      ),
    )
    const ada = await stores[0]!.create('ticket', { title: 'Anonymous relay' }, { id: 'T-anon' })
    await ada.flush()
    const bob = await stores[1]!.open('T-anon')
    await bob.sync.synced
    const id = ada.comment('Mine')
    await relay.settle()
    expect(ada.comments()).toMatchObject([{ id, mine: true, author: { userId: 'anonymous' } }])
    expect(bob.comments()).toMatchObject([{ id, mine: false, author: { userId: 'anonymous' } }])
    expect(() => bob.editComment(id, 'Yours now')).toThrow(/this relay does not authenticate people/)
    // Written by hand, the anonymous edit does not count either: "anonymous" is nobody in particular.
    bob.doc.transact(() => {
      const clock = Y.getState(bob.doc.store, bob.doc.clientID)
      bob.doc.getArray(COMMENTS_ARRAY).push([{ id: `${bob.doc.clientID.toString(36)}.${clock.toString(36)}`, k: 'del', c: id, at: 1 }])
    })
    await relay.settle()
    expect(ada.comments().map((c) => c.body)).toEqual(['Mine'])
  })

  /** Ada comments on her phone (her store of {@link pair}) and opens the ticket on her laptop (`ticket`). */
  const commentThenLaptop = async (laptopOptions: Partial<RecordStoreOptions> = {}) => {
    const { relay, ada, bob } = await pair()
    const id = ada.ticket.comment('On it')
    await relay.settle()
    const laptop = newStore(relay, 'ada', laptopOptions)
    const ticket = await laptop.store.open('T-1')
    await ticket.sync.synced
    await relay.settle()
    return { relay, ada, bob, id, ticket }
  }

  test('the author edits a comment from another device (another client id bound to the same user)', async () => {
    const { relay, bob, id, ticket } = await commentThenLaptop()
    expect(ticket.comments()).toMatchObject([{ id, mine: true }])
    ticket.editComment(id, 'On it, fix by Friday')
    await relay.settle()
    expect(bob.ticket.comments().map((c) => c.body)).toEqual(['On it, fix by Friday'])
  })

  // Yjs orders two edits appended at once by the writers' client ids (new at every page load): the body was a coin toss.
  test.each([
    ['the phone the higher client id', 2 ** 32 - 1, 1],
    ['the laptop the higher client id', 1, 2 ** 32 - 1],
  ])('edited on two devices at once (the phone offline): the later edit is the body everywhere — %s', async (_, phoneId, laptopId) => {
    const { relay, ada, bob, id, ticket } = await commentThenLaptop()
    ada.ticket.doc.clientID = phoneId
    ticket.doc.clientID = laptopId
    ada.offline()
    ada.ticket.editComment(id, 'On it, fix by Monday')
    ticket.editComment(id, 'On it, fix by Friday') // later: every write moves the test clock on
    await relay.settle()
    ada.online()
    await ada.ticket.flush()
    await relay.settle()
    for (const t of [ada.ticket, ticket, bob.ticket]) expect(t.comments().map((c) => c.body)).toEqual(['On it, fix by Friday'])
    // An edit made after seeing both stands, whatever its place.
    ada.ticket.editComment(id, 'Fixed')
    await relay.settle()
    for (const t of [ada.ticket, ticket, bob.ticket]) expect(t.comments().map((c) => c.body)).toEqual(['Fixed'])
  })

  test('an edit made after seeing another stands though its device clock is behind', async () => {
    const { relay, ada, bob, id, ticket } = await commentThenLaptop({ now: () => 1_000 }) // its clock far behind the phone's
    ada.ticket.editComment(id, 'On it, fix by Monday')
    await relay.settle()
    expect(ticket.comments().map((c) => c.body)).toEqual(['On it, fix by Monday'])
    ticket.editComment(id, 'On it, fix by Friday')
    await relay.settle()
    for (const t of [ada.ticket, ticket, bob.ticket]) expect(t.comments().map((c) => c.body)).toEqual(['On it, fix by Friday'])
  })
})

describe('blank records', () => {
  const fresh = async () => {
    const relay = h.relay({ autoAck: true })
    const ada = newStore(relay, 'ada')
    const bob = newStore(relay, 'bob')
    return { relay, ada, bob }
  }

  test('a record left as created is discarded: gone from the lists here and on another device', async () => {
    const { relay, ada, bob } = await fresh()
    const ticket = await ada.store.create('ticket', { assignee: 'user-of-ada' }, { id: 'T-new' })
    await ticket.flush()
    const bobs = await bob.store.open('T-new')
    await bobs.sync.synced
    expect(ticket.isBlank).toBe(true)
    expect(listed(bob.store)).toEqual(['T-new'])
    expect(ticket.discardIfBlank()).toBe(true)
    expect(ticket.discardIfBlank()).toBe(false)
    await relay.settle()
    expect(listed(ada.store)).toEqual([])
    expect(listed(bob.store)).toEqual([])
    expect(bobs.read().deleted).toBe(true)
  })

  test('after a reload the creator may still discard it (the relay bound the creating client id to them)', async () => {
    const relay = h.relay({ autoAck: true })
    const storage = new MemoryStorage()
    const before = newStore(relay, 'ada', { storage })
    const ticket = await before.store.create('ticket', { assignee: 'user-of-ada' }, { id: 'T-reload' })
    await ticket.flush()
    ticket.close()
    await before.store.close()
    const after = newStore(relay, 'ada', { storage })
    const again = await after.store.open('T-reload')
    await again.sync.synced
    expect(again.isBlank).toBe(true)
    expect(again.discardIfBlank()).toBe(true)
    expect(listed(after.store)).toEqual([])
  })

  test('a record the same person made on another device (or with a script on their token) is not this device’s to discard', async () => {
    const relay = h.relay({ autoAck: true })
    const elsewhere = newStore(relay, 'ada')
    const made = await elsewhere.store.create('ticket', { title: 'Filed by the import script', assignee: 'user-of-ada' }, { id: 'T-api' })
    await made.flush()
    const here = newStore(relay, 'ada')
    const opened = await here.store.open('T-api')
    await opened.sync.synced
    expect(opened.get('title')).toBe('Filed by the import script')
    expect(opened.discardIfBlank()).toBe(false)
    await relay.settle()
    expect(listed(here.store)).toEqual(['T-api'])
    expect(listed(elsewhere.store)).toEqual(['T-api'])
  })

  test('a record with content, or one someone else wrote in, is never discarded', async () => {
    const { relay, ada, bob } = await fresh()
    const titled = await ada.store.create('ticket', {}, { id: 'T-a' })
    titled.set('status', 'done')
    expect(titled.isBlank).toBe(false)
    expect(titled.discardIfBlank()).toBe(false)

    const commented = await ada.store.create('ticket', {}, { id: 'T-b' })
    commented.comment('placeholder')
    expect(commented.discardIfBlank()).toBe(false)

    const typedAndErased = await ada.store.create('ticket', {}, { id: 'T-c' })
    typedAndErased.set('title', 'x')
    typedAndErased.set('title', '')
    expect(typedAndErased.discardIfBlank()).toBe(false)

    const others = await ada.store.create('ticket', {}, { id: 'T-d' })
    await others.flush()
    const bobs = await bob.store.open('T-d')
    await bobs.sync.synced
    expect(bobs.discardIfBlank()).toBe(false) // not Bob's record
    bobs.set('priority', 'high')
    await relay.settle()
    expect(others.discardIfBlank()).toBe(false)
    expect(listed(ada.store).sort()).toEqual(['T-a', 'T-b', 'T-c', 'T-d'])
  })

  test('someone else’s concurrent edit brings a discarded record back, with the edit', async () => {
    const { relay, ada, bob } = await fresh()
    const ticket = await ada.store.create('ticket', {}, { id: 'T-race' })
    await ticket.flush()
    const bobs = await bob.store.open('T-race')
    await bobs.sync.synced
    bob.offline()
    bobs.set('title', 'Printer on fire')
    expect(ticket.discardIfBlank()).toBe(true)
    await relay.settle()
    expect(listed(ada.store)).toEqual([])
    bob.online()
    await bobs.flush()
    await relay.settle()
    expect(ticket.read()).toMatchObject({ deleted: false, fields: { title: 'Printer on fire' } })
    expect(listed(ada.store)).toEqual(['T-race'])
    expect(listed(bob.store)).toEqual(['T-race'])
  })
})
