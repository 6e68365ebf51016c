import { describe, expect, it } from 'vitest'
import { Catalog } from '@concord/engine'
import {
  EMPTY_FILTERS,
  UNASSIGNED,
  distinctValues,
  parseLabels,
  personName,
  relativeTime,
  showValue,
  sortEntries,
  statusLabel,
  toCatalogQuery,
  NO_PROJECT,
} from '../src/lib/tickets'

const entry = (title: string, fields: Record<string, unknown>) => ({ title, fields })

describe('ticket list helpers', () => {
  it('turns the filter bar into a catalog query', () => {
    expect(toCatalogQuery(EMPTY_FILTERS)).toEqual({ type: 'ticket', where: {}, limit: 1000, sort: { by: 'updatedAt', direction: 'desc' } })
    const q = toCatalogQuery({ status: 'open', assignee: 'ada', label: 'bug', project: 'P1', text: ' login ', sort: 'title' })
    expect(q).toMatchObject({
      where: { status: 'open', assignee: 'ada', labels: 'bug', project: 'P1' },
      search: 'login',
      sort: { by: 'title', direction: 'asc' },
    })
    const unassigned = toCatalogQuery({ ...EMPTY_FILTERS, assignee: UNASSIGNED }).where!.assignee as (a: unknown) => boolean
    expect([null, undefined, '', 'ada'].map(unassigned)).toEqual([true, true, true, false])
  })

  it('sorts by priority rank and by due date with empty dates last', () => {
    const list = [entry('a', { priority: 'low' }), entry('b', { priority: 'urgent' }), entry('c', {}), entry('d', { priority: 'high' })]
    expect(sortEntries(list, 'priority').map((e) => e.title)).toEqual(['b', 'd', 'a', 'c'])
    const due = [entry('x', { dueDate: null }), entry('y', { dueDate: '2026-12-01' }), entry('z', { dueDate: '2026-01-05' })]
    expect(sortEntries(due, 'dueDate').map((e) => e.title)).toEqual(['z', 'y', 'x'])
    expect(sortEntries(due, 'updatedAt').map((e) => e.title)).toEqual(['x', 'y', 'z'])
  })

  it('collects filter options from the catalog', () => {
    const list = [entry('a', { labels: ['bug', 'ui'], assignee: 'bob' }), entry('b', { labels: ['bug'], assignee: null })]
    expect(distinctValues(list, 'labels')).toEqual(['bug', 'ui'])
    expect(distinctValues(list, 'assignee')).toEqual(['bob'])
  })

  it('parses labels and renders values', () => {
    expect(parseLabels(' Bug, ui ,,bug, ')).toEqual(['bug', 'ui'])
    expect(statusLabel('in_progress')).toBe('In progress')
    expect(showValue('status', 'done')).toBe('Done')
    expect(showValue('priority', 'urgent')).toBe('Urgent')
    expect(showValue('labels', [])).toBe('no labels')
    expect(showValue('assignee', null)).toBe('nothing')
    expect(showValue('assignee', 'ada-lovelace')).toBe('Ada Lovelace')
    expect(showValue('lead', 'bob-stone')).toBe('Bob Stone')
    expect(showValue('status', 'paused')).toBe('Paused') // a project status
    expect(showValue('project', 'P1', new Map([['P1', 'Checkout revamp']]))).toBe('Checkout revamp')
    expect(showValue('project', 'P9', new Map())).toBe('a project not on this device')
    expect(personName('bob')).toBe('Bob')
    // A due date as the date field shows dates (the locale's own words), the same day whatever the time zone.
    expect(showValue('dueDate', '2027-01-15')).toBe(
      new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(2027, 0, 15)),
    )
    expect(showValue('dueDate', '2027-01-15')).not.toContain('2027-01-15')
    expect(showValue('labels', ['bug', 'ios', 'bug'])).toBe('bug, ios')
  })

  it('formats relative times', () => {
    const now = Date.UTC(2026, 10, 23, 12)
    expect(relativeTime(now - 10_000, now)).toBe('just now')
    expect(relativeTime(now - 5 * 60_000, now)).toBe('5 min ago')
    expect(relativeTime(now - 3 * 3600_000, now)).toBe('3 h ago')
    expect(relativeTime(now - 2 * 86400_000, now)).toBe('2 days ago')
    expect(relativeTime(now - 30 * 86400_000, now)).toBe('2026-10-24')
    expect(relativeTime(null, now)).toBe('')
  })

  it('queries a real catalog as the list page does', () => {
    const catalog = new Catalog()
    const base = {
      type: 'ticket',
      createdAt: 1,
      archived: false,
      deleted: false,
      pending: 0,
      pendingFields: [],
      stateVector: new Uint8Array(),
      local: true,
    }
    catalog.set(
      [
        {
          ...base,
          id: 'a',
          title: 'Login fails',
          updatedAt: 3,
          fields: { status: 'open', assignee: 'ada', labels: ['bug'], project: 'P1' },
        },
        { ...base, id: 'b', title: 'Logo too big', updatedAt: 2, fields: { status: 'done', assignee: null, labels: [], project: 'P2' } },
        { ...base, id: 'c', title: 'Signup', updatedAt: 1, fields: { status: 'open', assignee: null, labels: ['bug'] } },
      ],
      { persist: false },
    )
    catalog.markLoaded()
    const ids = (f: Partial<typeof EMPTY_FILTERS>) => catalog.query(toCatalogQuery({ ...EMPTY_FILTERS, ...f })).entries.map((e) => e.id)
    expect(ids({})).toEqual(['a', 'b', 'c'])
    expect(ids({ status: 'open' })).toEqual(['a', 'c'])
    expect(ids({ assignee: UNASSIGNED })).toEqual(['b', 'c'])
    expect(ids({ label: 'bug', text: 'sign' })).toEqual(['c'])
    expect(ids({ sort: 'title' })).toEqual(['a', 'b', 'c'])
    expect(ids({ project: 'P1' })).toEqual(['a'])
    expect(ids({ project: NO_PROJECT })).toEqual(['c'])
    expect(ids({ label: 'bug', project: 'P2' })).toEqual([])
  })
})
