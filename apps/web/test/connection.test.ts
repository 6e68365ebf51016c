import { describe, expect, it } from 'vitest'
import { changes, describeConnection, describeDocSync } from '../src/lib/connection'

describe('describeConnection', () => {
  it('says "all changes synced" only when online with nothing pending', () => {
    expect(describeConnection('online', 0)).toMatchObject({ tone: 'ok', label: 'Online — all changes synced' })
    for (const status of ['connecting', 'offline']) {
      expect(describeConnection(status, 0).label).not.toContain('synced')
    }
    expect(describeConnection('online', 1).label).not.toContain('synced')
  })

  it('counts what is not on the server yet', () => {
    expect(describeConnection('online', 1).label).toBe('Online — 1 change not yet on the server')
    expect(describeConnection('online', 12).label).toBe('Online — 12 changes not yet on the server')
  })

  it('is honest while connecting and offline', () => {
    expect(describeConnection('connecting', 0).label).toBe('Connecting…')
    expect(describeConnection('connecting', 2).label).toBe('Connecting… 2 changes waiting')
    expect(describeConnection('offline', 3)).toMatchObject({
      tone: 'warn',
      label: 'Offline — 3 changes waiting for the relay',
    })
    expect(describeConnection('offline', 0).label).toBe('Offline — no changes waiting')
    // Nothing is persisted on the device yet: never claim it is.
    expect(describeConnection('offline', 3).detail).not.toMatch(/saved on this device/i)
  })

  it('handles unknown statuses and odd counts', () => {
    expect(describeConnection('closed', 0).label).toBe('Not connected')
    expect(describeConnection('online', -4).label).toBe('Online — all changes synced')
  })
})

describe('describeDocSync', () => {
  it('describes the ticket save state', () => {
    expect(describeDocSync(true, 0, 'online')).toBe('All changes saved on the relay')
    expect(describeDocSync(true, 2, 'online')).toBe('Saving — 2 changes not yet on the server')
    expect(describeDocSync(false, 2, 'offline')).toBe('2 changes waiting for the relay')
    expect(describeDocSync(false, 0, 'online')).toBe('Loading from the relay…')
    expect(describeDocSync(false, 0, 'offline')).toBe('Not connected to the relay')
  })

  it('pluralises', () => {
    expect(changes(0)).toBe('0 changes')
    expect(changes(1)).toBe('1 change')
  })
})
