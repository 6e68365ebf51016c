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
 * @module auth/JwtAuthenticator
 */
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, type JWTVerifyGetKey, type CryptoKey } from 'jose'
import { z } from 'zod'
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
}

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
        this.key = createRemoteJWKSet(new URL(source.url))
        this.algorithms = ['RS256', 'ES256']
        break
      case 'public-key':
        this.key = importSPKI(source.pem, source.algorithm)
        this.algorithms = [source.algorithm]
        break
    }
  }

  /** Resolves once keys are usable; rejects with a clear message for a bad public key. */
  async ready(): Promise<void> {
    try {
      await this.key
    } catch (error) {
      throw new Error(`the JWT public key cannot be used: ${(error as Error).message}`)
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

const describe = (error: unknown): string => {
  if (error instanceof errors.JWTExpired) return 'token expired'
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" is not valid: ${error.reason}`
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature is not valid'
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed'
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'token is malformed'
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key in the JWKS matches the token'
  if (error instanceof errors.JOSEError) return `token rejected: ${error.code}`
  return 'token could not be verified'
}
