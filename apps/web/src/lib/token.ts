/**
 * Access tokens on the app's side. With the relay's auth configured, the
 * host app hands a signed token (a JWT, see docs/security.md) to the user;
 * the relay verifies it. The app only reads its claims — never trusts them
 * for anything the relay does not check again — to offer the workspaces the
 * token grants and to show read-only access before the relay refuses a write.
 *
 * @module lib/token
 */

/** What a workspace grant allows. */
export type Grant = 'read' | 'write'

/** The claims the app reads from a token (unverified: the relay verifies). */
export interface TokenClaims {
  /** User id (`sub`). */
  sub: string
  /** Display name (`name`, else the user id). */
  name: string
  /** Grants by workspace id, record (`<workspace>/<record>`) or `"*"`. */
  access: Record<string, Grant>
  /** Expiry, ms since epoch, or null when the token has none. */
  expiresAt: number | null
}

const base64UrlDecode = (part: string): string => {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/')
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4)
  const binary = atob(padded)
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
  return new TextDecoder().decode(bytes)
}

/** The claims of a JWT, or null when `token` does not look like one (or lacks `sub`). */
export function readClaims(token: string): TokenClaims | null {
  const parts = token.trim().split('.')
  if (parts.length !== 3 || parts[1] === '') return null
  let payload: unknown
  try {
    payload = JSON.parse(base64UrlDecode(parts[1]!))
  } catch {
    return null
  }
  if (typeof payload !== 'object' || payload === null) return null
  const claims = payload as Record<string, unknown>
  if (typeof claims.sub !== 'string' || claims.sub === '') return null
  const access: Record<string, Grant> = {}
  if (typeof claims.access === 'object' && claims.access !== null) {
    for (const [key, value] of Object.entries(claims.access as Record<string, unknown>)) {
      if (value === 'read' || value === 'write') access[key] = value
    }
  }
  return {
    sub: claims.sub,
    name: typeof claims.name === 'string' && claims.name.trim() !== '' ? claims.name.trim() : claims.sub,
    access,
    expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : null,
  }
}

/** Whether the claims' expiry has passed (a minute of leeway is the relay's business). */
export const isExpired = (claims: TokenClaims, now = Date.now()): boolean => claims.expiresAt !== null && claims.expiresAt <= now

/**
 * The workspaces a token names, sorted. Record grants (`acme/T-7`) name
 * their workspace too; `"*"` (every workspace) is not listed — see
 * {@link grantsEveryWorkspace}.
 */
export function workspacesOf(access: Readonly<Record<string, Grant>>): string[] {
  const out = new Set<string>()
  for (const key of Object.keys(access)) {
    if (key === '*' || key === '') continue
    const slash = key.indexOf('/')
    out.add(slash === -1 ? key : key.slice(0, slash))
  }
  return [...out].sort()
}

/** Whether the token grants every workspace (`"*"`): any workspace name can be typed. */
export const grantsEveryWorkspace = (access: Readonly<Record<string, Grant>>): boolean => access['*'] !== undefined

/** What the token allows in a workspace (the workspace grant, else `"*"`), as the relay decides for its records. */
export function accessTo(access: Readonly<Record<string, Grant>>, workspaceId: string): Grant | 'none' {
  return access[workspaceId] ?? access['*'] ?? 'none'
}

/**
 * A token handed over in the address's fragment (`#token=…`, possibly with
 * other `&`-separated parameters), or null.
 */
export function tokenFromHash(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''))
  const token = params.get('token')
  return token !== null && token.trim() !== '' ? token.trim() : null
}
