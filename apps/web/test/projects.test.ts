import { describe, expect, it } from 'vitest'
import { countsByProject, sortByName } from '../src/lib/projects'

describe('project helpers', () => {
  it('sorts by name, untitled last', () => {
    expect(sortByName([{ title: 'beta' }, { title: '' }, { title: 'Alpha' }]).map((e) => e.title)).toEqual(['Alpha', 'beta', ''])
  })

  it('counts open and closed tickets per project', () => {
    const counts = countsByProject([
      { fields: { project: 'P1', status: 'open' } },
      { fields: { project: 'P1', status: 'done' } },
      { fields: { project: 'P1', status: 'cancelled' } },
      { fields: { project: 'P2', status: 'in_progress' } },
      { fields: { project: null, status: 'open' } },
    ])
    expect(Object.fromEntries(counts)).toEqual({ P1: { total: 3, closed: 2, open: 1 }, P2: { total: 1, closed: 0, open: 1 } })
  })
})
