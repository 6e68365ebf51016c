/**
 * Errors reported by the relay (or detected by the client) for one doc or
 * for the whole connection.
 *
 * @module sync/SyncError
 */
import { ErrorCode, PERMANENT_ERRORS } from '../protocol/messages.js'

const CODE_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]))

/**
 * An error of the sync protocol.
 *
 * `permanent` errors (see `PERMANENT_ERRORS`: invalid doc name, permission
 * denied, too large, unauthorized, invalid update) will be refused again if
 * the same input is sent again, so the client does not retry them by itself.
 */
export class SyncError extends Error {
  /** One of `ErrorCode`. */
  readonly code: number
  /** Human-readable reason, as sent by the relay. */
  readonly reason: string
  /** Whether retrying the same input is pointless. */
  readonly permanent: boolean
  /** The doc the error is about; `''` for the whole connection. */
  readonly doc: string

  constructor(doc: string, code: number, reason: string) {
    const codeName = CODE_NAMES.get(code) ?? `code ${code}`
    super(doc === '' ? `relay error (${codeName}): ${reason}` : `relay error for doc "${doc}" (${codeName}): ${reason}`)
    this.name = 'SyncError'
    this.doc = doc
    this.code = code
    this.reason = reason
    this.permanent = PERMANENT_ERRORS.has(code)
  }
}

/** The message of a thrown value, for the reason of a {@link SyncError} the client reports itself. */
export const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error))
