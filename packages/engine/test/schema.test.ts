/**
 * The schema layer: field kinds map to Yjs types, every wrong write is
 * rejected with a clear error and leaves the doc unchanged, fields from
 * newer schemas survive.
 */
import * as prng from 'lib0/prng'
import { describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { z } from 'zod'
import { RecordValidationError, defineSchema, field, newRecordId, recordIdSchema } from '../src/index.js'
import { FIELDS_MAP, LIST_PREFIX, TEXT_PREFIX, readRecord } from '../src/internal.js'
import {
  applyPatch,
  changedRange,
  initRecord,
  lineHunks,
  rebaseLines,
  rebaseText,
  replaceList,
  replaceText,
  validatePatch,
} from '../src/model/recordDoc.js'
import { projectSchema, ticketSchema } from './schemas.js'

const newTicket = (values: Record<string, unknown> = {}): Y.Doc => {
  const doc = new Y.Doc()
  doc.transact(() => {
    initRecord(doc, ticketSchema, 'u1', 1000)
    applyPatch(doc, validatePatch(ticketSchema, 'T-1', values))
  })
  return doc
}

/** Writes `patch` the way the store does: validate, then one transaction. */
const write = (doc: Y.Doc, patch: Record<string, unknown>): void => {
  const validated = validatePatch(ticketSchema, 'T-1', patch)
  doc.transact(() => applyPatch(doc, validated))
}

const snapshotOf = (doc: Y.Doc): string => Buffer.from(Y.encodeStateAsUpdate(doc)).toString('hex')

/**
 * Two replicas of a doc made by `initial` each make their change (`a`, `b`) at the same time, with client ids 1 and
 * 2 and then the other way round (which orders what both insert at one place): what `read` gives after they
 * exchanged their updates, per order (both replicas of an order read the same).
 */
const inBothOrders = <T>(initial: (doc: Y.Doc) => void, a: (doc: Y.Doc) => void, b: (doc: Y.Doc) => void, read: (doc: Y.Doc) => T): T[] =>
  [
    [1, 2],
    [2, 1],
  ].map(([first, second]) => {
    const one = new Y.Doc()
    one.clientID = first!
    initial(one)
    const two = new Y.Doc()
    two.clientID = second!
    Y.applyUpdate(two, Y.encodeStateAsUpdate(one))
    one.transact(() => a(one))
    two.transact(() => b(two))
    Y.applyUpdate(one, Y.encodeStateAsUpdate(two))
    Y.applyUpdate(two, Y.encodeStateAsUpdate(one))
    expect(read(two)).toEqual(read(one))
    return read(one)
  })

describe('layout', () => {
  test('text → Y.Text, scalar → key of the fields map, list → Y.Array', () => {
    const doc = newTicket({ title: 'Login fails', status: 'in_progress', labels: ['bug', 'auth'], dueDate: '2026-12-01' })
    expect(doc.getText(TEXT_PREFIX + 'title').toString()).toBe('Login fails')
    expect(doc.getMap(FIELDS_MAP).get('status')).toBe('in_progress')
    expect(doc.getArray(LIST_PREFIX + 'labels').toArray()).toEqual(['bug', 'auth'])
    const read = readRecord(doc, 'T-1', ticketSchema)
    expect(read).toMatchObject({
      id: 'T-1',
      type: 'ticket',
      schemaVersion: 1,
      createdAt: 1000,
      createdBy: 'u1',
      archived: false,
      deleted: false,
      fields: {
        title: 'Login fails',
        description: '',
        status: 'in_progress',
        priority: 'none',
        assignee: null,
        labels: ['bug', 'auth'],
        project: null,
        dueDate: '2026-12-01',
      },
      unknownFields: {},
      invalidFields: {},
    })
  })

  test('text merges character by character between two devices', () => {
    const a = newTicket({ title: 'Fix login' })
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    write(a, { title: 'Fix the login' })
    write(b, { title: 'Fix login now' })
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    expect(readRecord(a, 'T-1', ticketSchema).fields.title).toBe('Fix the login now')
    expect(readRecord(b, 'T-1', ticketSchema).fields.title).toBe('Fix the login now')
  })

  test('replaceText keeps common prefix and suffix', () => {
    const doc = new Y.Doc()
    const text = doc.getText('t')
    text.insert(0, 'hello brave world')
    const deltas: unknown[] = []
    text.observe((event) => deltas.push(event.delta))
    doc.transact(() => replaceText(text, 'hello new world'))
    expect(text.toString()).toBe('hello new world')
    // the new text goes inside the replaced word, after its first character (see the concurrent cases below)
    expect(deltas).toEqual([[{ retain: 6 }, { delete: 1 }, { insert: 'new' }, { delete: 4 }]])
    doc.transact(() => replaceText(text, 'hello new world'))
    expect(deltas).toHaveLength(1) // no-op writes nothing
  })

  /** `changedRange` as `[start, replaced text, inserted text]`. */
  const range = (prev: string, next: string): [number, string, string] => {
    const { start, endPrev, endNext } = changedRange(prev, next)
    return [start, prev.slice(start, endPrev), next.slice(start, endNext)]
  }

  test('changed ranges keep words whole', () => {
    // A word written next to a similar one is that word, not a slice across both ("8 t00" after "t003 t00").
    expect(range('t003 t002 Login fails', 't003 t008 t002 Login fails')).toEqual([5, '', 't008 '])
    expect(range('t002 Login fails', 't006 t003 t008 t002 Login fails')).toEqual([0, '', 't006 t003 t008 '])
    expect(range('t003 t008 t002', 't003 t002')).toEqual([5, 't008 ', ''])
    // A replacement inside a word replaces the word.
    expect(range('t003 t002 Login fails', 't003 t004 Login fails')).toEqual([5, 't002', 't004'])
    expect(range('Login fails', 'Logon fails')).toEqual([0, 'Login', 'Logon'])
    // An insertion or deletion that has one place stays where it is, also inside a word.
    expect(range('Logn fails', 'Login fails')).toEqual([3, '', 'i'])
    expect(range('hello', 'hello world')).toEqual([5, '', ' world'])
    expect(range('aaa', 'aaaa')).toEqual([3, '', 'a'])
    expect(range('', 'x')).toEqual([0, '', 'x'])
  })

  /**
   * Two replicas of one text, each changed offline by `a` / `b`, then synced both ways — once with each order of
   * their client ids (which order concurrent insertions at one place); the merged text, the same for both.
   */
  const concurrently = (initial: string, a: (t: Y.Text) => void, b: (t: Y.Text) => void): string => {
    const merged = inBothOrders(
      (doc) => doc.getText('t').insert(0, initial),
      (doc) => a(doc.getText('t')),
      (doc) => b(doc.getText('t')),
      (doc) => doc.getText('t').toString(),
    )
    expect(merged[1], 'the other client id order').toBe(merged[0])
    return merged[0]!
  }

  // Replacing deleted first, and Yjs inserts after deleted characters: "t006" went where the other's " t007" sat too,
  // and the client ids ordered the two ("Login  t007t006 t002"). Inserted where the old text began instead, "t003"
  // met the other's "t005 " there ("t003t005 ").
  test.each([
    [
      'a word replaced while someone types after it: the new word comes first',
      'Login t004 t002',
      'Login t006 t002',
      10,
      ' t007',
      'Login t006 t007 t002',
    ],
    ['a text replaced while someone types in front of it: their words come first', 'Login fails', 't003', 0, 't005 ', 't005 t003'],
  ])('%s, both whole', (_, initial, next, at, typed, expected) => {
    const merged = concurrently(
      initial,
      (t) => replaceText(t, next),
      (t) => t.insert(at, typed),
    )
    expect(merged).toBe(expected)
  })

  test('a replacement that begins with an emoji goes after the whole emoji, never between its halves', () => {
    const doc = new Y.Doc({ gc: false }) // deleted items keep their text
    const text = doc.getText('t')
    text.insert(0, 'Ship \u{1F680} now')
    doc.transact(() => replaceText(text, 'Ship it'))
    expect(text.toString()).toBe('Ship it')
    // Split between its surrogates, Yjs would keep each half as U+FFFD in the deleted items (sent to every replica).
    const stored: string[] = []
    for (let item = text._start; item !== null; item = item.right)
      if (item.content instanceof Y.ContentString) stored.push(item.content.str)
    expect(stored.join('')).toBe('Ship \u{1F680}it now') // "it" after the whole emoji, then the deleted " now"
  })

  test('a word written next to a similar one stays whole when the other replica deletes its neighbour', () => {
    // " t008" after "t003" was written as "8 t00" inside "t002": deleting "t002 " left "t003 8 t00Login".
    const merged = concurrently(
      't003 t002 Login',
      (t) => replaceText(t, 't003 t008 t002 Login'),
      (t) => t.delete(5, 5),
    )
    expect(merged).toBe('t003 t008 Login')
  })

  test('unchanged scalar and list values write nothing', () => {
    const doc = newTicket({ status: 'open', labels: ['a'] })
    const before = snapshotOf(doc)
    write(doc, { status: 'open', labels: ['a'] })
    expect(snapshotOf(doc)).toBe(before)
  })
})

describe('multi-line text written whole: line by line', () => {
  const concurrently = (initial: string, a: string, b: string): string => {
    const merged = inBothOrders(
      (doc) => doc.getText('t').insert(0, initial),
      (doc) => replaceText(doc.getText('t'), a, { lines: true }),
      (doc) => replaceText(doc.getText('t'), b, { lines: true }),
      (doc) => doc.getText('t').toString(),
    )
    expect(merged[1], 'the other client id order').toBe(merged[0])
    return merged[0]!
  }

  test('the changed lines are hunks of their own, words whole; unchanged lines between them are not touched', () => {
    expect(lineHunks('Steps:\nlog in\nopen the report\nExpected: a chart', 'Steps:\nsign in\nopen the report\nExpected: a table')).toEqual([
      [7, 10, 'sign'],
      [42, 47, 'table'],
    ])
    expect(lineHunks('one\ntwo', 'zero\none\ntwo\nthree')).toEqual([
      [0, 0, 'zero\n'],
      [7, 7, '\nthree'],
    ])
    expect(lineHunks('one\ntwo\nthree', 'one\nthree')).toEqual([[4, 8, '']])
    expect(lineHunks('same', 'same')).toEqual([])
  })

  test('two people each rewriting another line of a description at the same time: both lines, each as its writer left it', () => {
    // Written as one range, Bob's run from line 1 to line 3 and deleted Ada's new words on line 2.
    expect(
      concurrently(
        'Title\nSteps: log in.\nSeen on 1.4',
        'Title\nSteps: sign in with SSO.\nSeen on 1.4',
        'Title (iOS)\nSteps: log in.\nSeen on 1.5',
      ),
    ).toBe('Title (iOS)\nSteps: sign in with SSO.\nSeen on 1.5')
  })

  test('rebaseLines applies one version change to a later text, line by line, or says it cannot', () => {
    // Both versions → Bob's: Ada's line goes; "Owner" changed since, elsewhere, stays.
    expect(rebaseLines('A\nB\nOwner: tbd.', 'B\nOwner: tbd.', 'A\nB\nOwner: Ada.')).toBe('B\nOwner: Ada.')
    expect(rebaseLines('A\nB', 'A', 'A\nB\nC')).toBe('A\nC')
    expect(rebaseLines('A\nB', 'A\nX\nB', 'Z\nA\nB')).toBe('Z\nA\nX\nB')
    expect(rebaseLines('A\nB', 'A\nB', 'A\nB\nC')).toBe('A\nB\nC')
    // The lines it changes were changed since, or others put lines where it inserts: no three-way answer.
    expect(rebaseLines('A\nB\nC', 'A\nC', 'A\nB2\nC')).toBeNull()
    expect(rebaseLines('A\nB', 'A\nX\nB', 'A\nY\nB')).toBeNull()
  })

  test('rebaseText applies a title change to a later title unless the two changed the same words', () => {
    const lines = { lines: false }
    expect(rebaseText('Login fails', 'Login fails on iOS', 'Urgent: Login fails', lines)).toBe('Urgent: Login fails on iOS')
    expect(rebaseText('Login fails on iOS', 'Urgent: Login fails on iOS', 'Login fails on iOS 17', lines)).toBe(
      'Urgent: Login fails on iOS 17',
    )
    expect(rebaseText('Login fails', 'Signup fails', 'Login fails', lines)).toBe('Signup fails')
    expect(rebaseText('Login fails', 'Login fails', 'Login broken', lines)).toBe('Login broken')
    expect(rebaseText('Login fails', 'Login broken', 'Login broken', lines)).toBe('Login broken')
    // The same words, or edits that touch: only the writer can tell how they go together.
    expect(rebaseText('Login fails', 'Login broken', 'Login crashes', lines)).toBeNull()
    expect(rebaseText('Login fails', 'Login fails!', 'Login fails on iOS', lines)).toBeNull()
    // A description goes line by line.
    expect(rebaseText('A\nB', 'A2\nB', 'A\nB2', { lines: true })).toBe('A2\nB2')
    expect(rebaseText('A\nB', 'A2\nB', 'A3\nB', { lines: true })).toBeNull()
  })

  // A fresh seed every run (in the test name); replay one with SEED=<n>.
  const seed = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  test(`any text becomes the value written, and its entry's hunks say how (SEED=${seed})`, () => {
    const gen = prng.create(seed)
    const line = (): string => prng.oneOf(gen, ['', 'a', 'b c', 'log in', 'd\u{1F680}', ' ', 'e f g'])
    const text = (): string => Array.from({ length: prng.uint32(gen, 0, 8) }, line).join('\n')
    for (let round = 0; round < 300; round++) {
      const doc = new Y.Doc()
      const t = doc.getText('t')
      t.insert(0, text())
      for (let write = 0; write < 4; write++) {
        const prev = t.toString()
        const next = text()
        let hunks: Array<[number, number, string]> = []
        doc.transact(() => (hunks = replaceText(t, next, { lines: true })))
        const where = `seed ${seed}, round ${round}, write ${write}: ${JSON.stringify(prev)} → ${JSON.stringify(next)}`
        expect(t.toString(), where).toBe(next)
        // The hunks, in order and apart, turn the text before into the text after.
        let out = ''
        let at = 0
        for (const [start, end, insert] of hunks) {
          expect(start, where).toBeGreaterThanOrEqual(at)
          out += prev.slice(at, start) + insert
          at = end
        }
        expect(out + prev.slice(at), where).toBe(next)
      }
    }
  })
})

describe('list fields', () => {
  /**
   * Two replicas of a list each set their own new value at the same time: what both end with, in both client id
   * orders (which order two items inserted at one place; the items are the same either way).
   */
  const concurrently = (initial: string[], a: string[], b: string[]): string[][] => {
    const merged = inBothOrders(
      (doc) => doc.getArray<string>('l').insert(0, initial),
      (doc) => replaceList(doc.getArray('l'), a),
      (doc) => replaceList(doc.getArray('l'), b),
      (doc) => doc.getArray<string>('l').toArray(),
    )
    expect([...merged[1]!].sort(), 'the other client id order').toEqual([...merged[0]!].sort())
    return merged
  }

  test('two people each removing a label at the same time: both are gone, none comes back', () => {
    for (const merged of concurrently(['bug', 'ui'], ['bug'], ['ui'])) expect(merged).toEqual([])
  })

  test('removals and additions on both sides: every removal holds, every addition is there once, nothing doubles', () => {
    // Ada removes a3 and adds a6; Bob removes a1 and adds b2 (before: both whole lists went in, a1 and a3 came back).
    for (const merged of concurrently(['a1', 'a3', 'b1'], ['a1', 'b1', 'a6'], ['a3', 'b1', 'b2'])) {
      expect(merged[0]).toBe('b1')
      expect([...merged].sort()).toEqual(['a6', 'b1', 'b2'])
    }
  })

  test('a write touches only the items that differ', () => {
    const doc = new Y.Doc()
    const list = doc.getArray<unknown>('l')
    list.insert(0, ['a', 'b', 'c', 'd'])
    let changes: unknown[] = []
    list.observe((event) => (changes = event.changes.delta))
    doc.transact(() => replaceList(list, ['a', 'c', 'd', 'e']))
    expect(list.toArray()).toEqual(['a', 'c', 'd', 'e'])
    expect(changes).toEqual([{ retain: 1 }, { delete: 1 }, { retain: 2 }, { insert: ['e'] }])
  })

  // A fresh seed every run (in the test name); replay one with SEED=<n>.
  const seed = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
  test(`any list becomes the value written, items compared as JSON (SEED=${seed})`, () => {
    const gen = prng.create(seed)
    const item = (): unknown => (prng.bool(gen) ? prng.oneOf(gen, ['a', 'b', 'c', 'd']) : { n: prng.uint32(gen, 0, 3) })
    const items = (): unknown[] => Array.from({ length: prng.uint32(gen, 0, 12) }, item)
    for (let round = 0; round < 300; round++) {
      const doc = new Y.Doc()
      const list = doc.getArray<unknown>('l')
      list.insert(0, items())
      for (let write = 0; write < 4; write++) {
        const next = items()
        doc.transact(() => replaceList(list, next))
        expect(list.toArray(), `seed ${seed}, round ${round}, write ${write}`).toEqual(next)
      }
    }
  })
})

describe('validation: every wrong write is rejected and leaves the doc unchanged', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unknown field', { colour: 'red' }, /field "colour": unknown field of ticket \(v1\); known fields: title, description/],
    ['text given a number', { title: 42 }, /field "title": expected text \(a string\), got 42/],
    ['text too long', { title: 'x'.repeat(501) }, /field "title": text is 501 characters long, at most 500/],
    ['enum value not allowed', { status: 'blocked' }, /field "status": .*(expected one of|Invalid option).*got "blocked"/],
    ['enum given a number', { priority: 3 }, /field "priority":.*got 3/],
    ['user id given an object', { assignee: { id: 'u1' } }, /field "assignee":.*got \{"id":"u1"\}/],
    ['undefined instead of null', { assignee: undefined }, /field "assignee": undefined is not a value; use null to clear/],
    ['list given a string', { labels: 'bug' }, /field "labels": expected a list \(an array\), got "bug"/],
    ['list item of the wrong type', { labels: ['ok', 7] }, /field "labels": item 1: .*got 7/],
    ['list too long', { labels: Array.from({ length: 101 }, (_, i) => `l${i}`) }, /field "labels": list has 101 items, at most 100/],
    ['reference that is not an id', { project: '../etc' }, /field "project":.*record ids use/],
    ['date in the wrong format', { dueDate: '01/12/2026' }, /field "dueDate":.*got "01\/12\/2026"/],
    ['impossible date', { dueDate: '2026-02-30' }, /field "dueDate":/],
    ['one bad field among good ones', { title: 'fine', status: 'nope' }, /field "status"/],
  ]
  for (const [name, patch, message] of cases) {
    test(name, () => {
      const doc = newTicket({ title: 'Original', status: 'open', labels: ['keep'] })
      const before = snapshotOf(doc)
      let error: unknown
      try {
        write(doc, patch)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(RecordValidationError)
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).toMatch(/cannot write ticket "T-1": .*Nothing was written\.$/)
      expect(snapshotOf(doc)).toBe(before)
    })
  }

  test('several problems are all listed', () => {
    let error: RecordValidationError | null = null
    try {
      validatePatch(ticketSchema, 'T-1', { nope: 1, status: 2, labels: 3 })
    } catch (e) {
      error = e as RecordValidationError
    }
    expect(error?.problems.map((p) => p.field)).toEqual(['nope', 'status', 'labels'])
  })

  test('a patch that is not an object is refused', () => {
    expect(() => validatePatch(ticketSchema, 'T-1', null as never)).toThrow(/expected an object of field values/)
    expect(() => validatePatch(ticketSchema, 'T-1', ['x'] as never)).toThrow(RecordValidationError)
  })
})

describe('newer schemas', () => {
  const ticketV2 = defineSchema({
    type: 'ticket',
    title: 'title',
    version: 2,
    fields: {
      ...ticketSchema.fields,
      estimate: field.number(),
      status: field.enum(['open', 'blocked', 'in_progress', 'done', 'cancelled'], 'open'),
      checklist: field.list(z.object({ text: z.string(), done: z.boolean() })),
      notes: field.text(),
    },
  })

  test('fields a newer schema wrote are read as unknown fields and survive writes of the older one', () => {
    const doc = newTicket({ title: 'Old' })
    // A device with schema v2 writes new fields and a new enum value.
    doc.transact(() =>
      applyPatch(
        doc,
        validatePatch(ticketV2, 'T-1', { estimate: 3, status: 'blocked', checklist: [{ text: 'a', done: false }], notes: 'v2 only' }),
      ),
    )
    const old = readRecord(doc, 'T-1', ticketSchema)
    expect(old.unknownFields).toEqual({ estimate: 3, checklist: [{ text: 'a', done: false }], notes: 'v2 only' })
    expect(old.fields.status).toBe('open') // the default, since v1 does not know "blocked"
    expect(old.invalidFields).toEqual({ status: 'blocked' })

    // The old schema edits what it knows; everything else stays intact.
    write(doc, { title: 'Old, edited', priority: 'high' })
    const v2 = readRecord(doc, 'T-1', ticketV2)
    expect(v2.fields).toMatchObject({ title: 'Old, edited', priority: 'high', estimate: 3, status: 'blocked', notes: 'v2 only' })
    expect(v2.unknownFields).toEqual({})
    // …but cannot write fields it does not know.
    expect(() => write(doc, { estimate: 5 })).toThrow(/unknown field of ticket/)
  })
})

describe('schemas', () => {
  test('defineSchema refuses bad names, titles and catalog fields', () => {
    expect(() => defineSchema({ type: 'a b', version: 1, fields: {} })).toThrow(/schema type "a b"/)
    expect(() => defineSchema({ type: 't', version: 0, fields: {} })).toThrow(/version must be a positive integer/)
    expect(() => defineSchema({ type: 't', version: 1, fields: { 'bad-name': field.text() } })).toThrow(/field name "bad-name"/)
    expect(() => defineSchema({ type: 't', version: 1, fields: { a: field.text() }, title: 'b' as 'a' })).toThrow(/title field "b"/)
    expect(() => defineSchema({ type: 't', version: 1, fields: { a: field.text() }, catalog: ['a'] })).toThrow(
      /catalog field "a" must be a scalar or list/,
    )
  })

  test('built-in project schema', () => {
    expect(Object.keys(projectSchema.fields)).toEqual(['name', 'description', 'status', 'lead'])
    expect(Object.keys(ticketSchema.fields)).toEqual([
      'title',
      'description',
      'status',
      'priority',
      'assignee',
      'labels',
      'project',
      'dueDate',
    ])
  })

  test('client-generated ids are valid doc name segments and unique', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newRecordId()))
    expect(ids.size).toBe(1000)
    for (const id of ids) expect(recordIdSchema.safeParse(id).success).toBe(true)
  })
})
