/**
 * The digest's items without a browser: summaries of the same record fold
 * into one item (comments too), a decided merge goes with its field's
 * change, dismissing is remembered, broken storage loses nothing but the
 * digest.
 */
import type { RecordSummary } from '@concord/engine'
import { describe, expect, it } from 'vitest'
import { Digest } from '../src/lib/digest.svelte'

const memory = () => {
  const map = new Map<string, string>()
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) }
}

const bob = { userId: 'bob', name: 'Bob Stone', clientId: 7 }
const cleo = { userId: 'cleo', name: 'Cleo Park', clientId: 9 }

const summary = (recordId: string, parts: Partial<RecordSummary> = {}): RecordSummary => ({
  recordId,
  created: false,
  merges: [],
  changes: [],
  ...parts,
})

const merge = {
  mergeId: 'status@a.1',
  field: 'status',
  fieldKind: 'scalar' as const,
  kept: 'theirs' as const,
  mine: 'done',
  theirs: 'cancelled',
  by: bob,
  mineEntryId: 'b.2',
  theirsEntryId: 'c.3',
}

describe('digest', () => {
  it('folds summaries of one record: first "from", last "to", users and counts added; records with merges first', () => {
    const digest = new Digest(memory(), 'd')
    digest.add(summary('T3', { changes: [{ field: 'priority', fieldKind: 'scalar', users: [bob], count: 1, from: 'low', to: 'high' }] }))
    digest.add(
      summary('T1', {
        merges: [merge],
        changes: [{ field: 'status', fieldKind: 'scalar', users: [bob], count: 1, from: 'open', to: 'cancelled' }],
      }),
    )
    digest.add(
      summary('T3', { changes: [{ field: 'priority', fieldKind: 'scalar', users: [cleo], count: 2, from: 'high', to: 'urgent' }] }),
    )
    expect(digest.ordered.map((i) => i.recordId)).toEqual(['T1', 'T3'])
    expect(digest.items.find((i) => i.recordId === 'T3')!.changes).toEqual([
      { field: 'priority', fieldKind: 'scalar', users: [bob, cleo], count: 3, from: 'low', to: 'urgent' },
    ])
    // Nothing changed: nothing added.
    digest.add(summary('T9'))
    expect(digest.items).toHaveLength(2)
  })

  it('a record others only commented on is news; its comment counts and people add up', () => {
    const digest = new Digest(memory(), 'd')
    digest.add(summary('T1', { comments: { users: [bob], added: 1, edited: 0, deleted: 0 } }))
    digest.add(summary('T1', { comments: { users: [cleo, bob], added: 2, edited: 1, deleted: 1 } }))
    expect(digest.items).toEqual([
      { recordId: 'T1', created: false, merges: [], changes: [], comments: { users: [bob, cleo], added: 3, edited: 1, deleted: 1 } },
    ])
    // A merge decided in the same record leaves the comments' news.
    digest.add(summary('T1', { merges: [merge] }))
    digest.settle('T1', merge.mergeId)
    expect(digest.items.map((i) => i.comments?.added)).toEqual([3])
  })

  it('a decided merge goes with the change of its field; the item goes when nothing is left', () => {
    const digest = new Digest(memory(), 'd')
    digest.add(
      summary('T1', {
        merges: [merge],
        changes: [{ field: 'status', fieldKind: 'scalar', users: [bob], count: 1, from: 'open', to: 'cancelled' }],
      }),
    )
    digest.add(summary('T2', { merges: [merge], changes: [{ field: 'title', fieldKind: 'text', users: [bob], count: 1 }] }))
    digest.settle('T1', merge.mergeId)
    digest.settle('T2', merge.mergeId)
    expect(digest.items).toEqual([
      { recordId: 'T2', created: false, merges: [], changes: [{ field: 'title', fieldKind: 'text', users: [bob], count: 1 }] },
    ])
  })

  it('what is dismissed stays dismissed in the next page; what is not is still there', () => {
    const storage = memory()
    const digest = new Digest(storage, 'd')
    digest.add(summary('T1', { created: true, changes: [{ field: 'title', fieldKind: 'text', users: [bob], count: 1 }] }))
    digest.add(summary('T2', { changes: [{ field: 'title', fieldKind: 'text', users: [bob], count: 1 }] }))
    digest.dismiss('T1')
    expect(new Digest(storage, 'd').items.map((i) => i.recordId)).toEqual(['T2'])
    digest.dismissAll()
    expect(new Digest(storage, 'd').items).toEqual([])
  })

  it('unreadable or missing storage: an empty digest that still works', () => {
    const storage = memory()
    storage.setItem('d', '{not json')
    expect(new Digest(storage, 'd').items).toEqual([])
    storage.setItem('d', JSON.stringify([{ recordId: 'T1' }, 'x', { recordId: 'T2', merges: [], changes: [] }]))
    expect(new Digest(storage, 'd').items.map((i) => i.recordId)).toEqual(['T2'])
    const none = new Digest(null, 'd')
    none.add(summary('T1', { changes: [{ field: 'title', fieldKind: 'text', users: [bob], count: 1 }] }))
    expect(none.items).toHaveLength(1)
  })
})
