/** Signs test JWTs with jose. */
import { SignJWT, type JWTPayload } from 'jose'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!'

/** An HS256 token for `sub` with `access`, expiring in `expiresIn` seconds (negative = already expired). */
export const signToken = async (
  sub: string,
  access: Record<string, 'read' | 'write'>,
  options: { name?: string; expiresIn?: number; secret?: string; extra?: JWTPayload } = {},
): Promise<string> => {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ name: options.name ?? sub, access, ...options.extra })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? TEST_SECRET))
}
