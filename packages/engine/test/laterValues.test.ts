import { describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { RECORD_MAP, RecordKey, initRecord, laterValues, readRecord, validatePatch, writeWithHistory } from '../src/internal.js'
import { appendFieldChanges } from '../src/history/historyLog.js'
import { setApart, writeScalarSettlement } from '../src/history/scalarMerge.js'
import { catalogEntryOf } from '../src/records/catalogEntry.js'
import { ticketSchema } from '../src/schemas/index.js'

/** A ticket as both writers had it, then each one's change made apart (offline), and the doc that holds both: nobody settled it. */
const mergedApart = (
  adaId: number,
  bobId: number,
  ada: (doc: Y.Doc) => void,
  bob: (doc: Y.Doc) => void,
  before: (doc: Y.Doc) => void = () => undefined,
): Y.Doc => {
  const base = new Y.Doc()
  base.transact(() => {
    initRecord(base, ticketSchema, 'ada', 1_000)
    writeWithHistory(base, validatePatch(ticketSchema, 'T-1', { title: 'Refund flow', status: 'open' }), { now: 1_000 })
  })
  base.transact(() => before(base))
  const copy = (clientID: number): Y.Doc => {
    const doc = new Y.Doc()
    doc.clientID = clientID
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(base))
    return doc
  }
  const [a, b] = [copy(adaId), copy(bobId)]
  a.transact(() => ada(a))
  b.transact(() => bob(b))
  const merged = new Y.Doc()
  Y.applyUpdate(merged, Y.mergeUpdates([Y.encodeStateAsUpdate(a), Y.encodeStateAsUpdate(b)]))
  return merged
}

const setStatus = (status: string, now: number) => (doc: Y.Doc) =>
  writeWithHistory(doc, validatePatch(ticketSchema, 'T-1', { status }), { now })
const setArchived = (archived: boolean, now: number) => (doc: Y.Doc) => {
  doc.getMap(RECORD_MAP).set(RecordKey.archived, archived)
  appendFieldChanges(doc, [{ field: '$archived', kind: 'scalar', prev: !archived, next: archived }], { now })
}

/** Archived (both saw it); Ada unarchives offline, Bob unarchives and archives again later. */
const archivedApart = (adaId: number, bobId: number): Y.Doc =>
  mergedApart(
    adaId,
    bobId,
    setArchived(false, 2_000),
    (d) => {
      setArchived(false, 2_500)(d)
      setArchived(true, 3_000)(d)
    },
    setArchived(true, 1_500),
  )

describe('laterValues: what a reader that never settles reports of a merge nobody settled yet', () => {
  // Yjs keeps one of the two by client id: each case runs with either writer the higher, so in one the doc holds the earlier.
  test.each([
    ['Ada the higher id', 2 ** 32 - 1, 1],
    ['Bob the higher id', 1, 2 ** 32 - 1],
  ])('two statuses set apart: the later one (Bob’s), whichever Yjs kept — %s', (_, adaId, bobId) => {
    const doc = mergedApart(adaId, bobId, setStatus('cancelled', 2_000), setStatus('done', 3_000))
    const read = readRecord(doc, 'T-1', ticketSchema)
    expect(read.fields.status).toBe(adaId > bobId ? 'cancelled' : 'done') // what the doc holds until a device settles it
    const later = laterValues(doc, ticketSchema, read)
    expect(later.fields.status).toBe('done')
    expect(later.fields.title).toBe('Refund flow')
  })

  test.each([
    ['Ada the higher id', 2 ** 32 - 1, 1],
    ['Bob the higher id', 1, 2 ** 32 - 1],
  ])('archived by one and unarchived by the other: the later one — %s', (_, adaId, bobId) => {
    const doc = archivedApart(adaId, bobId)
    const read = readRecord(doc, 'T-1', ticketSchema)
    expect(read.archived).toBe(adaId < bobId) // Yjs's pick
    expect(laterValues(doc, ticketSchema, read).archived).toBe(true)
  })

  test('a record without an unsettled merge is read as it is (the same object)', () => {
    const doc = mergedApart(2, 1, setStatus('done', 2_000), () => undefined)
    const read = readRecord(doc, 'T-1', ticketSchema)
    expect(laterValues(doc, ticketSchema, read)).toBe(read)
    expect(read.fields.status).toBe('done')
  })

  test('only the fields asked for: a merge of a field the caller does not read is left alone (the same object)', () => {
    const doc = mergedApart(2 ** 32 - 1, 1, setStatus('cancelled', 2_000), setStatus('done', 3_000))
    const read = readRecord(doc, 'T-1', ticketSchema)
    expect(laterValues(doc, ticketSchema, read, new Set(['priority']))).toBe(read)
    expect(laterValues(doc, ticketSchema, read, new Set(['status'])).fields.status).toBe('done')
  })
})

describe('setApart: whether a field was ever set by two writers apart, from Yjs’s structure alone', () => {
  test('sets one after the other, however many, are not apart; two apart are, in either client-id order', () => {
    const base = mergedApart(2, 1, setStatus('in_progress', 2_000), () => undefined)
    for (let i = 0; i < 20; i++) base.transact(() => setStatus(i % 2 === 0 ? 'done' : 'open', 3_000 + i)(base))
    expect(setApart(base, 'status')).toBe(false)
    expect(setApart(base, 'priority')).toBe(false) // never set
    expect(setApart(base, '$archived')).toBe(false)
    for (const [adaId, bobId] of [
      [2 ** 32 - 1, 1],
      [1, 2 ** 32 - 1],
    ] as const) {
      const doc = mergedApart(adaId, bobId, setStatus('cancelled', 2_000), setStatus('done', 3_000))
      expect(setApart(doc, 'status')).toBe(true)
      expect(setApart(doc, 'priority')).toBe(false)
      // Settled, it stays a field that was set apart (a merge in its history); the later value is then the doc's own.
      doc.transact(() => writeScalarSettlement(doc, 'status', 'done', { now: 4_000 }))
      expect(setApart(doc, 'status')).toBe(true)
      const read = readRecord(doc, 'T-1', ticketSchema)
      expect(laterValues(doc, ticketSchema, read)).toBe(read)
    }
    const archived = mergedApart(1, 2, setArchived(true, 2_000), setArchived(false, 3_000))
    expect(setApart(archived, '$archived')).toBe(true)
  })

  test('three writers apart, the last one placed next to the value it replaced, are still found', () => {
    // Yjs orders siblings by client id: whichever item ends up right after the shared origin, another one follows it.
    for (const ids of [
      [1, 2, 3],
      [3, 2, 1],
      [2, 3, 1],
    ]) {
      const base = new Y.Doc()
      base.transact(() => {
        initRecord(base, ticketSchema, 'ada', 1_000)
        writeWithHistory(base, validatePatch(ticketSchema, 'T-1', { title: 'Refund flow', status: 'open' }), { now: 1_000 })
      })
      const updates = ids.map((id, i) => {
        const doc = new Y.Doc()
        doc.clientID = id
        Y.applyUpdate(doc, Y.encodeStateAsUpdate(base))
        doc.transact(() => setStatus(['done', 'cancelled', 'in_progress'][i]!, 2_000 + i)(doc))
        return Y.encodeStateAsUpdate(doc)
      })
      const doc = new Y.Doc()
      Y.applyUpdate(doc, Y.mergeUpdates(updates))
      expect(setApart(doc, 'status')).toBe(true)
    }
  })
})

describe('catalog entries of records nobody opened say what the rule settles on', () => {
  test.each([
    ['Ada the higher id', 2 ** 32 - 1, 1],
    ['Bob the higher id', 1, 2 ** 32 - 1],
  ])('a status and the archived flag set apart: the later ones, as the record says once opened — %s', (_, adaId, bobId) => {
    const doc = mergedApart(adaId, bobId, setStatus('cancelled', 2_000), setStatus('done', 3_000))
    expect(catalogEntryOf(doc, 'T-1', ticketSchema, 0, []).fields.status).toBe('done')
    const archived = archivedApart(adaId, bobId)
    expect(catalogEntryOf(archived, 'T-1', ticketSchema, 0, []).archived).toBe(true)
  })
})
