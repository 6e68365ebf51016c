import { describe, expect, it } from 'vitest'
import { formatBytes, spaceLineText, usedPercent } from '../src/lib/storageSpace'

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
})
