/**
 * JWT verification with jose. See docs/security.md for the token contract:
 *
 * - HS256 with a shared secret (`JWT_SECRET` or `--jwt-secret-file`), or
 * - RS256 / ES256 with keys from a JWKS URL (`--jwks-url`) or a PEM public
 *   key file (`--jwt-public-key-file`).
 * - Claims: `sub` (user id, required), `name` (display name), `exp`
 *   (required), `access` (object: workspace id or doc name or `"*"` →
 *   `"read"` | `"write"`). Optional `iss` / `aud` checks.
 *
 * A JWKS URL that cannot be fetched (unreachable, not 200, not a key set)
 * refuses every token with `token could not be verified: the relay cannot
 * fetch its keys (JWKS)`; the `logger` gets one warning per failure streak
 * naming the URL and the error, and one info line once it answers again.
 *
 * @module auth/JwtAuthenticator
 */
import { createPublicKey } from 'node:crypto'
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, type JWTVerifyGetKey, type CryptoKey } from 'jose'
import { z } from 'zod'
import type { Logger } from '../observability/logger.js'
import { AuthError, type Authenticator, type Identity } from './Authenticator.js'

/** How tokens are verified. */
export type JwtKeySource =
  { kind: 'secret'; secret: string } | { kind: 'jwks'; url: string } | { kind: 'public-key'; pem: string; algorithm: 'RS256' | 'ES256' }

/** Options of {@link JwtAuthenticator}. */
export interface JwtOptions {
  key: JwtKeySource
  issuer?: string
  audience?: string
  /** Allowed clock skew, seconds. Default 5. */
  clockToleranceSeconds?: number
  /** Where a JWKS URL that cannot be fetched is reported (once per failure streak). */
  logger?: Logger
}

/** The JWKS could not be fetched or read: no token can be verified, whatever it holds. */
class KeySetUnavailable extends Error {}

const claimsSchema = z.object({
  sub: z.string({ error: 'token has no "sub" claim (user id)' }).min(1, 'token "sub" claim is empty').max(256),
  name: z.string().max(256).optional(),
  exp: z.number({ error: 'token has no "exp" claim; tokens must expire' }),
  access: z.record(z.string().min(1).max(512), z.enum(['read', 'write'], { error: 'access values must be "read" or "write"' }), {
    error: 'token has no "access" claim (object of workspace id → "read" | "write")',
  }),
})

/** Verifies JWTs and maps their claims to an {@link Identity}. */
export class JwtAuthenticator implements Authenticator {
  readonly kind = 'jwt'
  private readonly key: Uint8Array | CryptoKey | JWTVerifyGetKey | Promise<CryptoKey>
  private readonly algorithms: string[]

  constructor(private readonly options: JwtOptions) {
    const source = options.key
    switch (source.kind) {
      case 'secret':
        if (Buffer.byteLength(source.secret) < 32) throw new Error('the JWT secret must be at least 32 bytes')
        this.key = new TextEncoder().encode(source.secret)
        this.algorithms = ['HS256']
        break
      case 'jwks':
        this.key = this.#watchKeySet(new URL(source.url))
        this.algorithms = ['RS256', 'ES256']
        break
      case 'public-key':
        this.key = importSPKI(source.pem, source.algorithm)
        this.algorithms = [source.algorithm]
        break
    }
  }

  /** Failed fetches of the JWKS since it last answered. */
  #keySetFailures = 0

  /**
   * jose's remote key set, with its failures told apart from the token's:
   * a fetch that fails (or answers with no key set) becomes a
   * {@link KeySetUnavailable}, logged at the first of a streak.
   */
  #watchKeySet(url: URL): JWTVerifyGetKey {
    const remote = createRemoteJWKSet(url)
    const shown = url.origin + url.pathname
    return async (header, token) => {
      let key: CryptoKey
      try {
        key = await remote(header, token)
      } catch (error) {
        // the set answered, but holds no key for this token: the token's fault
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error
        if (error instanceof errors.JOSENotSupported) throw error
        if (++this.#keySetFailures === 1) {
          this.options.logger?.warn(
            { jwksUrl: shown, err: error },
            `cannot fetch the JWKS at ${shown} (${fetchFailure(error)}): every token is refused until it answers`,
          )
        }
        throw new KeySetUnavailable(fetchFailure(error), { cause: error })
      }
      if (this.#keySetFailures > 0) {
        this.options.logger?.info({ jwksUrl: shown, failures: this.#keySetFailures }, `the JWKS at ${shown} answers again`)
        this.#keySetFailures = 0
      }
      return key
    }
  }

  /** Resolves once keys are usable; rejects with a clear message for a bad public key. */
  async ready(): Promise<void> {
    try {
      await this.key
    } catch (error) {
      const source = this.options.key
      const hint = source.kind === 'public-key' ? keyTypeHint(source.pem, source.algorithm) : ''
      throw new Error(`the JWT public key cannot be used: ${(error as Error).message}${hint}`)
    }
  }

  async verify(token: string): Promise<Identity> {
    if (!token) throw new AuthError('no token')
    let payload: unknown
    try {
      const key = await this.key
      const result = await jwtVerify(token, key as Uint8Array, {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSeconds ?? 5,
      })
      payload = result.payload
    } catch (error) {
      throw new AuthError(describe(error))
    }
    const claims = claimsSchema.safeParse(payload)
    if (!claims.success) throw new AuthError(claims.error.issues.map((i) => i.message).join('; '))
    const { sub, name, exp, access } = claims.data
    return {
      userId: sub,
      name: name ?? sub,
      access: new Map(Object.entries(access)),
      expiresAt: exp * 1000,
      anonymous: false,
    }
  }
}

/** Why a JWKS fetch failed, in a few words: the network error's code (ECONNREFUSED…) or jose's message. */
const fetchFailure = (error: unknown): string => {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : null
  const message = (error as Error | null)?.message ?? String(error)
  return detail === null ? message : `${message}: ${detail}`
}

/** Names the algorithm a PEM public key's type needs, when it is not `algorithm`: `" (an EC key needs --jwt-algorithm ES256)"`. */
const keyTypeHint = (pem: string, algorithm: 'RS256' | 'ES256'): string => {
  let type: string | undefined
  let curve: string | undefined
  try {
    const key = createPublicKey(pem)
    type = key.asymmetricKeyType
    curve = key.asymmetricKeyDetails?.namedCurve
  } catch {
    return '' // not a public key at all: jose's message says so
  }
  if (type === 'ec' && curve === 'prime256v1') return algorithm === 'ES256' ? '' : ' (an EC P-256 key needs --jwt-algorithm ES256)'
  if (type === 'rsa') return algorithm === 'RS256' ? '' : ' (an RSA key needs --jwt-algorithm RS256)'
  const what = type === 'ec' ? `an EC key on curve ${curve ?? 'unknown'}` : `a key of type ${type ?? 'unknown'}`
  return ` (${what}: the relay takes RSA keys with --jwt-algorithm RS256 and EC P-256 keys with --jwt-algorithm ES256)`
}

const describe = (error: unknown): string => {
  if (error instanceof KeySetUnavailable) return 'token could not be verified: the relay cannot fetch its keys (JWKS)'
  if (error instanceof errors.JWTExpired) return 'token expired'
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" is not valid: ${error.reason}`
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature is not valid'
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed'
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'token is malformed'
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key in the JWKS matches the token'
  if (error instanceof errors.JOSEError) return `token rejected: ${error.code}`
  return 'token could not be verified'
}
