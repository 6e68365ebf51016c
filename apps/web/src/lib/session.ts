/**
 * Who is signed in, and into which workspace. In the default single-machine
 * setup (a relay without auth on loopback) a name is enough: the user id is
 * derived from the name, so the same name means the same person. With the
 * relay's auth configured, the user id and name are the ones the relay
 * proved from the access token, and the session carries the token; such a
 * session is kept in `sessionStorage` (this tab, until it closes), not in
 * `localStorage`.
 *
 * @module lib/session
 */
import { PALETTE, type KeyValueStore } from './identity'

export interface Session {
  userId: string
  name: string
  color: string
  workspaceId: string
  /** The access token, when the relay authenticates (see `lib/token`). */
  token?: string
}

export const SESSION_KEY = 'concord:session'
export const WORKSPACES_KEY = 'concord:workspaces'
export const DEFAULT_WORKSPACE = 'demo'

/** `Ada Lovelace` → `ada-lovelace`; empty when nothing usable is left. */
export function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
}

/** A stable palette colour for a user id. */
export function colorFor(userId: string): string {
  let hash = 0
  for (const ch of userId) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0
  return PALETTE[hash % PALETTE.length]!
}

/** Validates the sign-in form; returns the session or the problems, field by field. */
export function makeSession(
  name: string,
  workspace: string,
): { ok: true; session: Session } | { ok: false; errors: { name?: string; workspace?: string } } {
  const cleanName = name.replace(/\s+/g, ' ').trim().slice(0, 40)
  const userId = slugify(cleanName)
  const workspaceId = slugify(workspace)
  const errors: { name?: string; workspace?: string } = {}
  if (userId === '') errors.name = 'Enter your name (letters or digits).'
  if (workspaceId === '') errors.workspace = 'Enter a workspace name (letters or digits).'
  if (errors.name !== undefined || errors.workspace !== undefined) return { ok: false, errors }
  return { ok: true, session: { userId, name: cleanName, color: colorFor(userId), workspaceId } }
}

const read = (store: KeyValueStore | null, key: string): unknown => {
  try {
    const raw = store?.getItem(key)
    return raw ? JSON.parse(raw) : null
  } catch {
    return null
  }
}

const write = (store: KeyValueStore | null, key: string, value: unknown): void => {
  try {
    store?.setItem(key, JSON.stringify(value))
  } catch {
    // private mode / quota: the user signs in again next time
  }
}

/** A session for the identity the relay proved from `token`. */
export function tokenSession(identity: { userId: string; name: string }, workspaceId: string, token: string): Session {
  const name = identity.name.replace(/\s+/g, ' ').trim().slice(0, 40) || identity.userId
  return { userId: identity.userId, name, color: colorFor(identity.userId), workspaceId, token }
}

/** The token session of this tab, or null. */
export function loadTokenSession(store: KeyValueStore | null): Session | null {
  const value = read(store, SESSION_KEY) as Partial<Session> | null
  if (value === null || typeof value !== 'object') return null
  const { userId, name, workspaceId, token } = value
  if (typeof userId !== 'string' || userId === '' || typeof name !== 'string' || typeof token !== 'string' || token === '') return null
  if (typeof workspaceId !== 'string' || workspaceId === '' || workspaceId.includes('/')) return null
  return tokenSession({ userId, name }, workspaceId, token)
}

/** Keeps (or, with null, forgets) this tab's token session. */
export function saveTokenSession(store: KeyValueStore | null, session: Session | null): void {
  write(store, SESSION_KEY, session)
}

/** The stored session, or null when there is none (or it is broken). */
export function loadSession(store: KeyValueStore | null): Session | null {
  const value = read(store, SESSION_KEY) as Partial<Session> | null
  if (value === null || typeof value !== 'object') return null
  if (typeof value.name !== 'string' || typeof value.workspaceId !== 'string') return null
  const made = makeSession(value.name, value.workspaceId)
  return made.ok ? made.session : null
}

export function saveSession(store: KeyValueStore | null, session: Session | null): void {
  if (session === null) {
    write(store, SESSION_KEY, null)
    return
  }
  write(store, SESSION_KEY, session)
  write(store, WORKSPACES_KEY, rememberWorkspace(knownWorkspaces(store), session.workspaceId))
}

/** Workspaces this browser has used, most recent first. */
export function knownWorkspaces(store: KeyValueStore | null): string[] {
  const value = read(store, WORKSPACES_KEY)
  return Array.isArray(value) ? value.filter((w): w is string => typeof w === 'string' && slugify(w) === w).slice(0, 20) : []
}

export function rememberWorkspace(list: readonly string[], workspaceId: string): string[] {
  return [workspaceId, ...list.filter((w) => w !== workspaceId)].slice(0, 20)
}
