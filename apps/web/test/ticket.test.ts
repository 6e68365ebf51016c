import { describe, expect, it } from 'vitest'
import { STATUSES, parseStatus, statusSlug } from '../src/lib/ticket'

describe('ticket status', () => {
  it('accepts the known values and defaults to Open', () => {
    for (const status of STATUSES) expect(parseStatus(status)).toBe(status)
    expect(parseStatus(undefined)).toBe('Open')
    expect(parseStatus('Closed')).toBe('Open')
    expect(parseStatus(3)).toBe('Open')
  })

  it('makes slugs', () => {
    expect(statusSlug('In progress')).toBe('in-progress')
  })
})
