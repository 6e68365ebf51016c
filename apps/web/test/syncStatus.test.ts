import { describe, expect, it } from 'vitest'
import {
  countChanges,
  describeSync,
  errorKind,
  explainPending,
  MEMORY_ONLY_TEXT,
  pendingReason,
  recordNoun,
  storageProblemText,
} from '../src/lib/syncStatus'

const tickets = (n: number): string[] => Array.from({ length: n }, () => 'ticket')
const sync = (status: string, changes: number, recordTypes: readonly string[], ready = true, savedOnDevice = true) =>
  describeSync({ status, ready, changes, recordTypes, savedOnDevice })

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
    for (const [status, n] of [
      ['online', 999],
      ['connecting', 999],
      ['offline', 999],
      ['offline', 0],
    ] as const) {
      expect(sync(status, n, ['ticket', 'project']).label.length).toBeLessThanOrEqual(42)
    }
  })

  it('has a short label for a narrow top bar that says no more than the long one', () => {
    expect(sync('online', 0, []).short).toBe('Synced')
    expect(sync('online', 3, tickets(2)).short).toBe('3 unsynced')
    expect(sync('connecting', 0, []).short).toBe('Connecting…')
    expect(sync('offline', 0, []).short).toBe('Offline')
    expect(sync('offline', 4, tickets(3)).short).toBe('Offline · 4 unsynced')
    expect(sync('offline', 4, tickets(3), true, false).short).toBe('Offline · 4 in tab only')
    expect(sync('online', 2, tickets(1), true, false).short).toBe('2 in tab only')
    for (const status of ['online', 'connecting', 'offline']) {
      for (const n of [0, 1, 999]) {
        for (const ready of [true, false]) {
          for (const saved of [true, false]) {
            const summary = sync(status, n, tickets(Math.min(n, 3)), ready, saved)
            expect(summary.short.length).toBeLessThanOrEqual(25)
            // "Synced" only where the long label says so; "Offline" only where it does.
            expect(summary.short === 'Synced').toBe(summary.label === 'All changes synced')
            expect(summary.short.startsWith('Offline')).toBe(summary.label.startsWith('Offline'))
          }
        }
      }
    }
  })

  it('says changes the relay refused for good are rejected, not on their way; offline it says offline', () => {
    const refused = describeSync({ status: 'online', ready: true, changes: 3, recordTypes: tickets(2), savedOnDevice: true, rejected: 1 })
    expect(refused).toMatchObject({ tone: 'warn', label: 'Changes to 1 ticket rejected', short: '1 rejected' })
    expect(refused.detail).toContain('The relay refused changes to 1 ticket for good')
    expect(refused.detail).toContain('later changes to it wait behind them')
    // Never more rejected records than records waiting; none waiting, nothing rejected.
    expect(
      describeSync({ status: 'online', ready: true, changes: 2, recordTypes: tickets(1), savedOnDevice: true, rejected: 4 }).label,
    ).toBe('Changes to 1 ticket rejected')
    expect(describeSync({ status: 'online', ready: true, changes: 0, recordTypes: [], savedOnDevice: true, rejected: 1 }).label).toBe(
      'All changes synced',
    )
    expect(
      describeSync({ status: 'offline', ready: true, changes: 2, recordTypes: tickets(1), savedOnDevice: true, rejected: 1 }).label,
    ).toBe('Offline — 2 changes saved on this device')
  })

  it('says offline changes are saved on this device, with a verb that agrees', () => {
    expect(sync('offline', 4, tickets(3))).toMatchObject({ tone: 'warn', label: 'Offline — 4 changes saved on this device' })
    expect(sync('offline', 4, tickets(3)).detail).toContain('4 changes in 3 tickets are stored')
    expect(sync('offline', 1, tickets(1)).detail).toContain('1 change in 1 ticket is stored')
  })

  it('says "saved/stored on this device" only when changes really are (every status × pending or not × saved or not)', () => {
    const claim = /(?<!not )(saved|stored) on this device/
    for (const status of ['online', 'connecting', 'offline']) {
      for (const n of [0, 1, 3]) {
        const notSaved = sync(status, n, tickets(n), true, false)
        expect(`${notSaved.label} ${notSaved.detail}`).not.toMatch(claim)
        expect(notSaved.label.length).toBeLessThanOrEqual(42)
        expect(notSaved.detail).toMatch(/kept in this tab only — not saved on this device/)
        const saved = sync(status, n, tickets(n), true, true)
        expect(`${saved.label} ${saved.detail}`).not.toMatch(/not saved on this device|this tab only/)
      }
      // Before the catalog is loaded nothing is claimed either way.
      expect(`${sync(status, 0, [], false, false).label} ${sync(status, 0, [], false, false).detail}`).not.toMatch(claim)
    }
    // Where changes wait is said when there are some (online the relay has them once synced).
    expect(sync('offline', 2, tickets(1), true, true).detail).toContain('2 changes in 1 ticket are stored on this device')
    expect(sync('connecting', 1, tickets(1), true, true).detail).toContain('1 change in 1 ticket is stored on this device')
    expect(sync('online', 0, [], true, true)).toEqual({
      tone: 'ok',
      label: 'All changes synced',
      short: 'Synced',
      detail: 'Every change made here is stored on the relay.',
    })
  })

  it('not saved on this device: the wording says changes live in this tab', () => {
    expect(sync('offline', 4, tickets(3), true, false)).toEqual({
      tone: 'warn',
      label: 'Offline — 4 changes in this tab only',
      short: 'Offline · 4 in tab only',
      detail:
        'The relay is not reachable. 4 changes in 3 tickets are kept in this tab only — not saved on this device — and will be sent when it is back; closing the tab before then loses them.',
    })
    expect(sync('offline', 0, [], true, false)).toMatchObject({ tone: 'warn', label: 'Offline — nothing waiting to sync' })
    expect(sync('offline', 0, [], true, false).detail).toMatch(
      /new edits are kept in this tab only — not saved on this device — and sent when it is back/,
    )
    expect(sync('connecting', 1, tickets(1), true, false)).toMatchObject({
      label: '1 change not yet on the server',
      detail:
        'Reaching the relay. 1 change in 1 ticket is kept in this tab only — not saved on this device — and sent as soon as it answers.',
    })
    expect(sync('online', 1, tickets(1), true, false).detail).toBe(
      'Connected. The relay has not confirmed storing 1 change in 1 ticket yet. Until it does, it is kept in this tab only — not saved on this device.',
    )
    expect(sync('online', 2, tickets(2), true, false).detail).toMatch(/Until it does, they are kept in this tab only/)
    expect(sync('online', 0, [], true, false)).toMatchObject({ tone: 'ok', label: 'All changes synced' })
    expect(sync('online', 0, [], true, false).detail).toMatch(
      /^Every change made here is stored on the relay\. New edits are kept in this tab only/,
    )
    expect(sync('connecting', 0, [], true, false)).toMatchObject({ label: 'Connecting…' })
    expect(sync('connecting', 0, [], true, false).detail).toMatch(/New edits are kept in this tab only/)
  })

  it('words storage failures plainly', () => {
    expect(storageProblemText('unavailable')).toBe(MEMORY_ONLY_TEXT)
    expect(MEMORY_ONLY_TEXT).toMatch(/not letting the app store data: changes stay only in this tab until they reach the server/)
    expect(storageProblemText('quota')).toMatch(/storage for the app is full/)
    expect(storageProblemText('closed')).toMatch(/closed or removed/)
    expect(storageProblemText('failed')).toMatch(/could not write/)
    for (const kind of ['unavailable', 'quota', 'closed', 'failed'])
      expect(storageProblemText(kind)).not.toMatch(/(?<!not )(saved|stored) on this device/)
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
    expect(pendingReason('online', { code: 6, reason: 'read-only access', permanent: true })).toBe(
      'Rejected by the relay: no permission to change it (read-only access)',
    )
    expect(explainPending('online', { code: 9, reason: '', permanent: true })).toEqual({
      text: 'Rejected by the relay: not valid',
      detail: null,
    })
    expect(pendingReason('online', { code: 5, reason: 'disk full', permanent: false })).toBe(
      'Relay problem, retrying: the relay could not store it (disk full)',
    )
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
    expect(
      countChanges([
        { pending: 30, pendingFields: ['$created', 'title', 'assignee'] },
        { pending: 2, pendingFields: [] },
        { pending: 0, pendingFields: ['x'] },
      ]),
    ).toBe(3)
  })
})
