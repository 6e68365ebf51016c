import { describe, expect, it } from 'vitest'
import { countChanges, describeSync, errorKind, explainPending, pendingReason, recordNoun } from '../src/lib/syncStatus'

const tickets = (n: number): string[] => Array.from({ length: n }, () => 'ticket')
const sync = (status: string, changes: number, recordTypes: readonly string[], ready = true) => describeSync({ status, ready, changes, recordTypes })

describe('global sync indicator', () => {
  it('says "All changes synced" only when online with nothing pending', () => {
    expect(sync('online', 0, [])).toMatchObject({ tone: 'ok', label: 'All changes synced' })
    expect(sync('connecting', 0, []).label).toBe('Connecting…')
    expect(sync('online', 3, tickets(2))).toMatchObject({
      tone: 'busy',
      label: '3 changes not yet on the server',
      detail: 'Connected. The relay has not confirmed storing 3 changes in 2 tickets yet.',
    })
    expect(sync('connecting', 1, tickets(1))).toMatchObject({
      label: '1 change not yet on the server',
      detail: 'Reaching the relay. 1 change in 1 ticket is stored on this device and sent as soon as it answers.',
    })
  })

  it('never says synced before this device’s own changes are loaded', () => {
    for (const status of ['online', 'connecting', 'offline']) {
      const summary = sync(status, 0, [], false)
      expect(summary.label).toMatch(/hecking this device…/)
      expect(summary.label).not.toMatch(/synced/i)
      expect(summary.tone).not.toBe('ok')
    }
    expect(sync('offline', 0, [], false).label).toBe('Offline — checking this device…')
    // Even a stale count from before is not trusted until the catalog is loaded.
    expect(sync('online', 5, tickets(2), false).label).toBe('Checking this device…')
  })

  it('keeps the label short enough for the top bar', () => {
    for (const [status, n] of [['online', 999], ['connecting', 999], ['offline', 999], ['offline', 0]] as const) {
      expect(sync(status, n, ['ticket', 'project']).label.length).toBeLessThanOrEqual(42)
    }
  })

  it('says offline changes are saved on this device, with a verb that agrees', () => {
    expect(sync('offline', 4, tickets(3))).toMatchObject({ tone: 'warn', label: 'Offline — 4 changes saved on this device' })
    expect(sync('offline', 4, tickets(3)).detail).toContain('4 changes in 3 tickets are stored')
    expect(sync('offline', 1, tickets(1)).detail).toContain('1 change in 1 ticket is stored')
  })

  it('offline with nothing pending says exactly that', () => {
    const summary = sync('offline', 0, [])
    expect(summary).toMatchObject({ tone: 'warn', label: 'Offline — nothing waiting to sync' })
    expect(summary.detail).toMatch(/not reachable/)
  })

  it('names projects, and items when tickets and projects are mixed', () => {
    expect(sync('online', 2, ['project']).detail).toContain('2 changes in 1 project')
    expect(sync('offline', 3, ['project', 'ticket']).detail).toContain('3 changes in 2 items are stored')
    expect(recordNoun(['note', 'note'])).toEqual({ one: 'record', many: 'records' })
    expect(recordNoun([])).toEqual({ one: 'ticket', many: 'tickets' })
  })

  it('never claims fewer records than one when something is pending', () => {
    expect(sync('online', 2, []).detail).toContain('2 changes in 1 ticket')
    expect(sync('online', -1, []).label).toBe('All changes synced')
  })
})

describe('why a record is not on the relay', () => {
  it('explains waiting records by the connection', () => {
    expect(pendingReason('offline', null)).toMatch(/Offline/)
    expect(pendingReason('online', null)).toMatch(/confirm/)
    expect(explainPending('connecting', null)).toEqual({ text: 'Connecting to the relay', detail: null })
  })

  it('words rejections by their error code and keeps the relay’s reason as the detail', () => {
    expect(explainPending('online', { code: 7, reason: 'update of 2100000 bytes exceeds 1048576', permanent: true })).toEqual({
      text: 'Rejected by the relay: too large',
      detail: 'update of 2100000 bytes exceeds 1048576',
    })
    expect(pendingReason('online', { code: 6, reason: 'read-only access', permanent: true })).toBe('Rejected by the relay: no permission to change it (read-only access)')
    expect(explainPending('online', { code: 9, reason: '', permanent: true })).toEqual({ text: 'Rejected by the relay: not valid', detail: null })
    expect(pendingReason('online', { code: 5, reason: 'disk full', permanent: false })).toBe('Relay problem, retrying: the relay could not store it (disk full)')
    expect(errorKind(999)).toBe('refused')
  })

  it('without a code, the relay’s reason is the headline', () => {
    expect(pendingReason('online', { reason: 'too large', permanent: true })).toBe('Rejected by the relay: too large')
    expect(pendingReason('online', { reason: 'busy', permanent: false })).toMatch(/retrying/)
  })
})

describe('counting changes', () => {
  it('counts changed fields, not Yjs ticks; a record with ticks but no field notes counts once', () => {
    expect(countChanges([])).toBe(0)
    expect(countChanges([{ pending: 30, pendingFields: ['$created', 'title', 'assignee'] }, { pending: 2, pendingFields: [] }, { pending: 0, pendingFields: ['x'] }])).toBe(3)
  })
})
