import { describe, expect, it } from 'vitest'
import { AuthorNames } from '../src/lib/authorNames'

const memory = () => {
  const map = new Map<string, string>()
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) }
}

describe('author names', () => {
  it('prefers the relay binding, then names learned from presence', () => {
    const store = memory()
    const names = new AuthorNames(store, 'k')
    expect(names.nameOf({ clientId: 1, userId: 'u-ada', name: 'Ada (token)' })).toBe('Ada (token)')
    expect(names.nameOf({ clientId: 1, userId: 'anonymous', name: 'Anonymous' })).toBe('Someone')
    expect(names.nameOf({ clientId: 1, userId: null, name: null })).toBe('Someone (not synced yet)')
    expect(names.learn(1, 'Ada')).toBe(true)
    expect(names.learn(1, 'Ada')).toBe(false)
    expect(names.learn(2, '  ')).toBe(false)
    expect(names.nameOf({ clientId: 1, userId: 'anonymous', name: 'Anonymous' })).toBe('Ada')
    names.save()
    expect(new AuthorNames(store, 'k').nameOf({ clientId: 1, userId: null, name: null })).toBe('Ada')
  })

  it('survives broken storage', () => {
    const store = memory()
    store.setItem('k', 'not json')
    expect(new AuthorNames(store, 'k').nameOf({ clientId: 1, userId: 'anonymous', name: null })).toBe('Someone')
    expect(new AuthorNames(null, 'k').learn(1, 'Ada')).toBe(true)
  })
})

describe('bound authors', () => {
  it('only relay-bound, non-anonymous users count as known', async () => {
    const { isBound } = await import('../src/lib/authorNames')
    expect(isBound({ userId: 'u-ada' })).toBe(true)
    expect(isBound({ userId: 'anonymous' })).toBe(false)
    expect(isBound({ userId: null })).toBe(false)
  })
})
