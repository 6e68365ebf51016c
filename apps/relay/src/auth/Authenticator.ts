/**
 * Who a connection is and what it may do.
 *
 * An {@link Authenticator} turns a token into an {@link Identity}. Access is
 * granted per workspace (the first segment of a doc name) and optionally per
 * record (a full doc name), the most specific grant winning:
 *
 *     access: { "acme": "write", "acme/T-7": "read", "*": "read" }
 *
 * `"*"` grants every workspace (service accounts); listing every doc
 * (`list-docs` with an empty prefix) needs it.
 *
 * @module auth/Authenticator
 */

/** What a connection may do with a doc. */
export const Access = { none: 'none', read: 'read', write: 'write' } as const
export type Access = (typeof Access)[keyof typeof Access]

/** An authenticated (or, without auth, anonymous) user. */
export interface Identity {
  /** Stable user id (`sub`). */
  readonly userId: string
  /** Display name (`name`, else the user id). */
  readonly name: string
  /** Grants by workspace id, doc name or `"*"`. */
  readonly access: ReadonlyMap<string, 'read' | 'write'>
  /** When the token expires (ms since epoch), or null when it does not. */
  readonly expiresAt: number | null
  /** True for the anonymous identity of a relay without auth. */
  readonly anonymous: boolean
}

/** A token was missing, malformed, badly signed, expired or lacked claims. */
export class AuthError extends Error {
  override readonly name = 'AuthError'
}

/** Verifies tokens. */
export interface Authenticator {
  /** `jwt` or `none`. */
  readonly kind: string
  /** Resolves with the identity the token proves; rejects with {@link AuthError}. */
  verify(token: string): Promise<Identity>
}

/** The identity of every connection when the relay runs without auth. */
export const ANONYMOUS: Identity = Object.freeze({
  userId: 'anonymous',
  name: 'Anonymous',
  access: new Map([['*', 'write' as const]]),
  expiresAt: null,
  anonymous: true,
})

/** What `identity` may do with `docName` (`<workspaceId>/<recordId>`). */
export const accessFor = (identity: Identity, docName: string): Access => {
  const exact = identity.access.get(docName)
  if (exact) return exact
  const slash = docName.indexOf('/')
  const workspace = slash === -1 ? docName : docName.slice(0, slash)
  return identity.access.get(workspace) ?? identity.access.get('*') ?? Access.none
}

/**
 * What `identity` may list under `prefix`: an empty prefix needs `"*"`; any
 * other prefix must name a workspace and a `/` (so `acme` cannot list `acme-other/…`).
 */
export const listAccessFor = (identity: Identity, prefix: string): Access => {
  if (prefix === '') return identity.access.get('*') ?? Access.none
  const slash = prefix.indexOf('/')
  if (slash === -1) return identity.access.get('*') ?? Access.none
  const workspace = prefix.slice(0, slash)
  return identity.access.get(workspace) ?? identity.access.get('*') ?? Access.none
}

/** An authenticator that admits everyone as {@link ANONYMOUS} (no auth configured). */
export class NoAuthenticator implements Authenticator {
  readonly kind = 'none'
  async verify(): Promise<Identity> {
    return ANONYMOUS
  }
}
