/**
 * Webhook signatures. Every delivery carries
 *
 *     Concord-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *
 * The timestamp is signed with the body, so a receiver that checks the
 * signature and refuses a timestamp older than a few minutes cannot be fed a
 * recorded delivery again (replay). Retries are signed anew, with the time
 * of the retry. {@link verifySignature} is what a receiver does.
 *
 * @example
 *   const header = signatureHeader(secret, body, Math.floor(Date.now() / 1000))
 *   verifySignature(secret, body, header, { toleranceSeconds: 300 }) // true
 *
 * @module webhooks/signature
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** Name of the signature header. */
export const SIGNATURE_HEADER = 'concord-signature'

/** The hex HMAC-SHA256 of `<timestamp>.<body>` with `secret`. */
export const sign = (secret: string, body: string, timestamp: number): string =>
  createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')

/** The value of the signature header of `body` sent at `timestamp` (unix seconds). */
export const signatureHeader = (secret: string, body: string, timestamp: number): string =>
  `t=${timestamp},v1=${sign(secret, body, timestamp)}`

/**
 * Whether `header` signs `body` with `secret` at a time no further than
 * `toleranceSeconds` (default 300) from `now` (unix seconds, default the clock).
 */
export const verifySignature = (
  secret: string,
  body: string,
  header: string,
  options: { toleranceSeconds?: number; now?: number } = {},
): boolean => {
  const parts = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]))
  const timestamp = Number(parts.get('t'))
  const signature = parts.get('v1')
  if (!Number.isInteger(timestamp) || signature === undefined) return false
  const now = options.now ?? Math.floor(Date.now() / 1000)
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false
  const expected = Buffer.from(sign(secret, body, timestamp), 'hex')
  const given = Buffer.from(signature, 'hex')
  return given.byteLength === expected.byteLength && timingSafeEqual(given, expected)
}
