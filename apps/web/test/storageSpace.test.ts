import { describe, expect, it } from 'vitest'
import { formatBytes, spaceLineText, spaceWarningText, usedPercent } from '../src/lib/storageSpace'

describe('storage space texts', () => {
  it('sizes as people read them', () => {
    expect(formatBytes(0)).toBe('0 bytes')
    expect(formatBytes(1)).toBe('1 byte')
    expect(formatBytes(999)).toBe('999 bytes')
    expect(formatBytes(1_000)).toBe('1 kB')
    expect(formatBytes(740_400)).toBe('740 kB')
    expect(formatBytes(9_960_000)).toBe('10 MB')
    expect(formatBytes(2_441_371)).toBe('2.4 MB')
    expect(formatBytes(10_739_859_611)).toBe('11 GB')
    expect(formatBytes(1_400_000_000)).toBe('1.4 GB')
  })

  it('a share that is not full never reads 100 %', () => {
    expect(usedPercent({ usage: 999_999, quota: 1_000_000 })).toBe(99)
    expect(usedPercent({ usage: 1_000_000, quota: 1_000_000 })).toBe(100)
    expect(usedPercent({ usage: 2_441_371, quota: 10_739_859_611 })).toBe(0)
  })

  it('the sync page says whether the browser may clear the data', () => {
    const space = { usage: 5_000_000, quota: 100_000_000, low: false }
    expect(spaceLineText({ ...space, persisted: true })).toBe(
      '5 MB of 100 MB used (5 %). The browser keeps this data when the disk runs low.',
    )
    expect(spaceLineText({ ...space, persisted: false })).toMatch(
      /may clear this data when the disk runs low: what the relay has stored is safe/,
    )
    expect(spaceLineText({ ...space, persisted: null })).toBe('5 MB of 100 MB used (5 %).')
  })

  it('the warning says whether records were removed to make room, never that room was made when none was', () => {
    const space = { usage: 86_000_000, quota: 100_000_000, low: true, persisted: false }
    expect(spaceWarningText(space, 0)).toBe(
      '86 MB of the 100 MB this browser allows the app are used (86 %). Changes are still saved here. Records nobody changed or opened here for a month are removed to make room (they stay on the relay); none has been so far. Once it is full, new changes are kept in this tab only until the relay has them — free up space on this device, or keep the app online.',
    )
    expect(spaceWarningText(space, 1)).toMatch(
      /saved here\. 1 record nobody changed or opened here for a month was removed to make room \(they stay on the relay\)\. Once/,
    )
    expect(spaceWarningText(space, 2)).toMatch(/ 2 records nobody changed or opened here for a month were removed to make room /)
  })
})
