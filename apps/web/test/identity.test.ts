import { describe, expect, it } from 'vitest'
import {
  PALETTE,
  STORAGE_KEY,
  cleanName,
  initials,
  loadIdentity,
  nextColor,
  randomIdentity,
  type KeyValueStore,
} from '../src/lib/identity'

const memoryStore = (initial: Record<string, string> = {}): KeyValueStore & { data: Map<string, string> } => {
  const data = new Map(Object.entries(initial))
  return { data, getItem: (key) => data.get(key) ?? null, setItem: (key, value) => void data.set(key, value) }
}

describe('identity', () => {
  it('creates a guest name with a palette colour', () => {
    const identity = randomIdentity()
    expect(identity.name).toMatch(/^Guest \d{4}$/)
    expect(PALETTE).toContain(identity.color)
    expect(identity.id).toMatch(/^[0-9a-f]{16}$/)
  })

  it('creates and then keeps the same identity', () => {
    const store = memoryStore()
    const first = loadIdentity(store)
    expect(store.data.has(STORAGE_KEY)).toBe(true)
    expect(loadIdentity(store)).toEqual(first)
  })

  it('repairs broken stored values', () => {
    const store = memoryStore({ [STORAGE_KEY]: JSON.stringify({ id: 'u1', name: '   ', color: 'red' }) })
    const identity = loadIdentity(store)
    expect(identity.id).toBe('u1')
    expect(identity.name).toMatch(/^Guest \d{4}$/)
    expect(PALETTE).toContain(identity.color)
    expect(loadIdentity(memoryStore({ [STORAGE_KEY]: '{not json' })).name).toMatch(/^Guest/)
  })

  it('works without storage and with failing storage', () => {
    expect(loadIdentity(null).name).toMatch(/^Guest/)
    const failing: KeyValueStore = {
      getItem: () => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('quota')
      },
    }
    expect(loadIdentity(failing).name).toMatch(/^Guest/)
  })

  it('cleans names, cycles colours and makes initials', () => {
    expect(cleanName('  Ada   Lovelace ', 'x')).toBe('Ada Lovelace')
    expect(cleanName('   ', 'Guest 1')).toBe('Guest 1')
    expect(cleanName('x'.repeat(100), 'g')).toHaveLength(40)
    expect(nextColor(PALETTE[0]!)).toBe(PALETTE[1])
    expect(nextColor(PALETTE[PALETTE.length - 1]!)).toBe(PALETTE[0])
    expect(nextColor('#123456')).toBe(PALETTE[0])
    expect(initials('Ada Lovelace')).toBe('AL')
    expect(initials('Guest 4821')).toBe('G4')
    expect(initials('émile')).toBe('É')
    expect(initials('')).toBe('?')
  })
})
