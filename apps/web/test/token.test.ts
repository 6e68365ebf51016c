import { describe, expect, it } from 'vitest'
import { accessTo, grantsEveryWorkspace, isExpired, readClaims, tokenFromHash, workspacesOf } from '../src/lib/token'
import { loadTokenSession, saveTokenSession, tokenSession } from '../src/lib/session'

/** An unsigned token with `payload` (the app reads claims only; the relay verifies signatures). */
const jwt = (payload: unknown): string => {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.signature`
}

const memory = () => {
  const map = new Map<string, string>()
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) }
}

describe('token claims', () => {
  it('reads sub, name, access and exp; ignores grants it does not know', () => {
    const claims = readClaims(
      jwt({ sub: 'ada', name: 'Ada Lovelace', access: { acme: 'write', 'beta/T-7': 'read', odd: 'admin' }, exp: 2_000_000_000 }),
    )
    expect(claims).toEqual({
      sub: 'ada',
      name: 'Ada Lovelace',
      access: { acme: 'write', 'beta/T-7': 'read' },
      expiresAt: 2_000_000_000_000,
    })
  })

  it('falls back to the user id for the name; non-ASCII names survive', () => {
    expect(readClaims(jwt({ sub: 'u-1' }))).toMatchObject({ name: 'u-1', access: {}, expiresAt: null })
    expect(readClaims(jwt({ sub: 'z', name: 'Zoë Ünal' }))?.name).toBe('Zoë Ünal')
  })

  it('is null for what is not a token', () => {
    for (const text of [
      '',
      'abc',
      'a.b',
      'a..c',
      `x.${Buffer.from('not json').toString('base64url')}.y`,
      jwt({ name: 'no sub' }),
      jwt('string'),
    ]) {
      expect(readClaims(text)).toBeNull()
    }
  })

  it('knows when a token expired', () => {
    const claims = readClaims(jwt({ sub: 'a', exp: 100 }))!
    expect(isExpired(claims, 99_000)).toBe(false)
    expect(isExpired(claims, 100_000)).toBe(true)
    expect(isExpired(readClaims(jwt({ sub: 'a' }))!, Date.now())).toBe(false)
  })
})

describe('workspaces of a token', () => {
  it('lists workspace grants and the workspaces of record grants, not "*"', () => {
    expect(workspacesOf({ zeta: 'read', acme: 'write', 'beta/T-7': 'read', '*': 'read' })).toEqual(['acme', 'beta', 'zeta'])
    expect(grantsEveryWorkspace({ '*': 'read' })).toBe(true)
    expect(grantsEveryWorkspace({ acme: 'write' })).toBe(false)
  })

  it('access in a workspace: its own grant, else "*", else none', () => {
    expect(accessTo({ acme: 'read', '*': 'write' }, 'acme')).toBe('read')
    expect(accessTo({ '*': 'write' }, 'other')).toBe('write')
    expect(accessTo({ acme: 'write' }, 'other')).toBe('none')
  })
})

describe('a token handed over in the address', () => {
  it('reads #token=… (alone or with other parameters), nothing from routes', () => {
    expect(tokenFromHash('#token=abc.def.ghi')).toBe('abc.def.ghi')
    expect(tokenFromHash('#workspace=acme&token=abc.def.ghi')).toBe('abc.def.ghi')
    expect(tokenFromHash('#/t/T-1')).toBeNull()
    expect(tokenFromHash('#token=')).toBeNull()
    expect(tokenFromHash('')).toBeNull()
  })
})

describe('token sessions', () => {
  it('carry the relay’s user id, the name, a colour and the token; stored and read back', () => {
    const store = memory()
    const session = tokenSession({ userId: 'ada', name: '  Ada   Lovelace ' }, 'acme', 't.o.k')
    expect(session).toMatchObject({ userId: 'ada', name: 'Ada Lovelace', workspaceId: 'acme', token: 't.o.k' })
    expect(session.color).toMatch(/^#[0-9a-f]{6}$/i)
    saveTokenSession(store, session)
    expect(loadTokenSession(store)).toEqual(session)
    saveTokenSession(store, null)
    expect(loadTokenSession(store)).toBeNull()
  })

  it('a stored session without a token, or with a bad workspace, is not a token session', () => {
    const store = memory()
    store.setItem('concord:session', JSON.stringify({ userId: 'ada', name: 'Ada', workspaceId: 'acme' }))
    expect(loadTokenSession(store)).toBeNull()
    store.setItem('concord:session', JSON.stringify({ userId: 'ada', name: 'Ada', workspaceId: 'a/b', token: 'x' }))
    expect(loadTokenSession(store)).toBeNull()
  })
})
