import { describe, expect, it } from 'vitest'
import { colorFor, knownWorkspaces, loadSession, makeSession, rememberWorkspace, saveSession, slugify } from '../src/lib/session'
import { PALETTE } from '../src/lib/identity'

const memory = () => {
  const map = new Map<string, string>()
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v), map }
}

describe('session', () => {
  it('derives ids from names and workspaces', () => {
    expect(slugify('  Ada Lovelace ')).toBe('ada-lovelace')
    expect(slugify('Zoë Ünal')).toBe('zoe-unal')
    expect(slugify('!!!')).toBe('')
    const made = makeSession(' Ada   Lovelace ', 'Acme Corp')
    expect(made).toEqual({
      ok: true,
      session: { userId: 'ada-lovelace', name: 'Ada Lovelace', color: colorFor('ada-lovelace'), workspaceId: 'acme-corp' },
    })
  })

  it('explains what is missing, field by field', () => {
    expect(makeSession('', '')).toEqual({ ok: false, errors: { name: expect.any(String), workspace: expect.any(String) } })
    expect(makeSession('Ada', '—')).toEqual({ ok: false, errors: { workspace: expect.any(String) } })
  })

  it('gives the same user the same palette colour', () => {
    expect(colorFor('ada')).toBe(colorFor('ada'))
    expect(PALETTE).toContain(colorFor('bob'))
  })

  it('stores the session and remembers workspaces, most recent first', () => {
    const store = memory()
    expect(loadSession(store)).toBeNull()
    const a = makeSession('Ada', 'alpha')
    const b = makeSession('Ada', 'beta')
    if (!a.ok || !b.ok) throw new Error('unreachable')
    saveSession(store, a.session)
    saveSession(store, b.session)
    expect(loadSession(store)).toEqual(b.session)
    expect(knownWorkspaces(store)).toEqual(['beta', 'alpha'])
    saveSession(store, null)
    expect(loadSession(store)).toBeNull()
    expect(rememberWorkspace(['a', 'b', 'c'], 'b')).toEqual(['b', 'a', 'c'])
  })

  it('ignores broken storage', () => {
    const store = memory()
    store.setItem('concord:session', '{nope')
    expect(loadSession(store)).toBeNull()
    store.setItem('concord:session', JSON.stringify({ name: 'Ada', workspaceId: 42 }))
    expect(loadSession(store)).toBeNull()
    expect(loadSession(null)).toBeNull()
  })
})
