import { describe, expect, it } from 'vitest'
import { newestFirst } from '../src/lib/timeline'

describe('timeline order', () => {
  it('shows entries newest first by when they were written, not in the order the log merged them', () => {
    // Bob's change of 10:00 came before Ada's offline edits of 09:00 and 09:05 in the merged log.
    const log = [
      { id: 'created', at: Date.UTC(2026, 11, 7, 8, 0) },
      { id: 'bob-priority', at: Date.UTC(2026, 11, 7, 10, 0) },
      { id: 'ada-status', at: Date.UTC(2026, 11, 7, 9, 0) },
      { id: 'ada-title', at: Date.UTC(2026, 11, 7, 9, 5) },
    ]
    expect(newestFirst(log).map((e) => e.id)).toEqual(['bob-priority', 'ada-title', 'ada-status', 'created'])
    expect(log.map((e) => e.id)).toEqual(['created', 'bob-priority', 'ada-status', 'ada-title']) // not changed in place
  })

  it('keeps the log order, later first, for entries of the same moment', () => {
    const log = [
      { id: 'a', at: 5 },
      { id: 'b', at: 5 },
      { id: 'c', at: 1 },
    ]
    expect(newestFirst(log).map((e) => e.id)).toEqual(['b', 'a', 'c'])
  })
})
