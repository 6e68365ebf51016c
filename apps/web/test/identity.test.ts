import { describe, expect, it } from 'vitest'
import {
  PALETTE,
  avatarColors,
  contrast,
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

describe('avatar colours', () => {
  it('computes WCAG contrast ratios', () => {
    expect(contrast('#ffffff', '#000000')).toBeCloseTo(21, 5)
    expect(contrast('#8a929c', '#ffffff')).toBeCloseTo(3.15, 2)
    expect(contrast('#777777', '#777777')).toBe(1)
  })

  it('gives every palette colour initials that read at 4.5:1, keeping the colour where white or dark initials read', () => {
    for (const color of PALETTE) {
      const { background, text } = avatarColors(color)
      expect(contrast(background, text), color).toBeGreaterThanOrEqual(4.5)
    }
    expect(avatarColors('#6e56cf')).toEqual({ background: '#6e56cf', text: '#ffffff' }) // violet: white reads
    expect(avatarColors('#d6a100')).toEqual({ background: '#d6a100', text: '#16191d' }) // amber: dark reads
    const pink = avatarColors('#d6409f') // neither reads: darkened a little, white initials
    expect(pink.text).toBe('#ffffff')
    expect(pink.background).not.toBe('#d6409f')
    expect(contrast(pink.background, '#d6409f')).toBeLessThan(1.3)
  })

  it('passes a colour it cannot read through, with white initials', () => {
    expect(avatarColors('tomato')).toEqual({ background: 'tomato', text: '#ffffff' })
  })
})
