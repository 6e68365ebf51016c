import { describe, expect, it } from 'vitest'
import { describeSync, pendingReason } from '../src/lib/syncStatus'

describe('global sync indicator', () => {
  it('says "All changes synced" only when online with nothing pending', () => {
    expect(describeSync('online', 0, 0)).toMatchObject({ tone: 'ok', label: 'All changes synced' })
    expect(describeSync('connecting', 0, 0).label).toBe('Connecting…')
    expect(describeSync('online', 3, 2)).toMatchObject({ tone: 'busy', label: '3 changes in 2 tickets not yet on the server' })
    expect(describeSync('connecting', 1, 1).label).toBe('1 change in 1 ticket not yet on the server')
  })

  it('says offline changes are saved on this device', () => {
    expect(describeSync('offline', 0, 0)).toMatchObject({ tone: 'warn', label: 'Offline — changes are saved on this device' })
    expect(describeSync('offline', 4, 3).detail).toContain('4 changes in 3 tickets')
  })

  it('never claims fewer tickets than one when something is pending', () => {
    expect(describeSync('online', 2, 0).label).toBe('2 changes in 1 ticket not yet on the server')
    expect(describeSync('online', -1, 0).label).toBe('All changes synced')
  })

  it('explains why a record is not on the relay', () => {
    expect(pendingReason('offline', null)).toMatch(/Offline/)
    expect(pendingReason('online', null)).toMatch(/confirm/)
    expect(pendingReason('online', { reason: 'too large', permanent: true })).toBe('Rejected by the relay: too large')
    expect(pendingReason('online', { reason: 'busy', permanent: false })).toMatch(/retrying/)
  })
})

describe('counting changes', () => {
  it('counts changed fields, not Yjs ticks; a record with ticks but no field notes counts once', async () => {
    const { countChanges } = await import('../src/lib/syncStatus')
    expect(countChanges([])).toBe(0)
    expect(countChanges([{ pending: 30, pendingFields: ['$created', 'title', 'assignee'] }, { pending: 2, pendingFields: [] }, { pending: 0, pendingFields: ['x'] }])).toBe(3)
  })
})
