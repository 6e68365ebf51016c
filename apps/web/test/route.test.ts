import { describe, expect, it } from 'vitest'
import { parseRoute, routeHref } from '../src/lib/route'

describe('routes', () => {
  it('parses and formats every page', () => {
    expect(parseRoute('')).toEqual({ page: 'list' })
    expect(parseRoute('#/')).toEqual({ page: 'list' })
    expect(parseRoute('#/sync')).toEqual({ page: 'sync' })
    expect(parseRoute('#/t/Ab_3-x')).toEqual({ page: 'ticket', id: 'Ab_3-x' })
    expect(parseRoute('#/projects')).toEqual({ page: 'projects' })
    expect(parseRoute('#/p/P_1')).toEqual({ page: 'project', id: 'P_1' })
    for (const route of [
      { page: 'list' },
      { page: 'sync' },
      { page: 'projects' },
      { page: 'ticket', id: 'T1' },
      { page: 'project', id: 'P1' },
    ] as const) {
      expect(parseRoute(routeHref(route))).toEqual(route)
    }
  })

  it('falls back to the list for anything else', () => {
    expect(parseRoute('#/t/')).toEqual({ page: 'list' })
    expect(parseRoute('#/t/../../x')).toEqual({ page: 'list' })
    expect(parseRoute('#/nope')).toEqual({ page: 'list' })
    expect(parseRoute('#/p/')).toEqual({ page: 'list' })
  })
})
