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

  it('names an anonymous writer by the name the relay kept from their presence', () => {
    const names = new AuthorNames(memory(), 'k')
    expect(names.nameOf({ clientId: 3, userId: 'anonymous', name: 'Ada Lovelace' })).toBe('Ada Lovelace')
    expect(names.nameOf({ clientId: 3, userId: 'anonymous', name: 'Anonymous' })).toBe('Someone')
  })

  it('knows people by user id: from presence and bindings, remembered, the id’s words until then', () => {
    const store = memory()
    const names = new AuthorNames(store, 'k')
    expect(names.personName('user-bob')).toBe('User Bob')
    expect(names.knows('user-bob')).toBe(false)
    expect(names.learnPerson('user-bob', 'Bob Stone')).toBe(true)
    expect(names.learnPerson('user-bob', 'Bob Stone')).toBe(false)
    expect(names.learnPerson('anonymous', 'Anonymous')).toBe(false)
    expect(
      names.learnAuthors([
        { clientId: 1, userId: 'user-ada', name: 'Ada Lovelace' },
        { clientId: 2, userId: 'anonymous', name: 'Cleo Park' },
        { clientId: 4, userId: 'anonymous', name: 'Anonymous' },
      ]),
    ).toBe(true)
    expect(names.personName('user-bob')).toBe('Bob Stone')
    // a binding's name is from when the user wrote: it does not replace the name presence gave
    expect(names.learnAuthors([{ clientId: 5, userId: 'user-bob', name: 'Robert Stone' }])).toBe(false)
    expect(names.personName('user-bob')).toBe('Bob Stone')
    expect(names.people).toEqual([
      { userId: 'user-ada', name: 'Ada Lovelace' },
      { userId: 'user-bob', name: 'Bob Stone' },
      { userId: 'cleo-park', name: 'Cleo Park' },
    ])
    // a bound author whose binding lost its name is named by what is known of the user
    expect(names.nameOf({ clientId: 9, userId: 'user-bob', name: '' })).toBe('Bob Stone')
    names.save()
    const again = new AuthorNames(store, 'k')
    expect(again.personName('user-ada')).toBe('Ada Lovelace')
    expect(again.nameOf({ clientId: 2, userId: null, name: null })).toBe('Cleo Park')
  })

  it('reads the names an earlier version remembered (client ids only)', () => {
    const store = memory()
    store.setItem('k', JSON.stringify([[1, 'Ada']]))
    expect(new AuthorNames(store, 'k').nameOf({ clientId: 1, userId: 'anonymous', name: 'Anonymous' })).toBe('Ada')
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
