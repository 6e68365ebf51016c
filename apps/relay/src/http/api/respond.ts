/**
 * What every HTTP API route shares: JSON answers, errors as
 * `{ "error": { "code", "message" } }` with a status code, request bodies
 * read with a size limit and validated with zod, and the caller's identity
 * from `Authorization: Bearer <token>`.
 *
 * A route throws {@link ApiError}; the router turns it into the answer.
 *
 * @example
 *   const body = parseBody(createSchema, await readJson(req, maxBodyBytes))
 *   if (!found) throw new ApiError(404, 'not-found', `record "${id}" does not exist`)
 *
 * @module http/api/respond
 */
import type http from 'node:http'
import type { z } from 'zod'
import { ANONYMOUS, AuthError, type Authenticator, type Identity } from '../../auth/Authenticator.js'

/** Machine-readable error codes of the API (the `code` of an error answer). */
export const ErrorCode = {
  badRequest: 'bad-request',
  invalidField: 'invalid-field',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  notFound: 'not-found',
  methodNotAllowed: 'method-not-allowed',
  conflict: 'conflict',
  payloadTooLarge: 'payload-too-large',
  unsupportedMediaType: 'unsupported-media-type',
  unknownType: 'unknown-type',
  notStored: 'not-stored',
  unavailable: 'unavailable',
  internal: 'internal',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** An error answer: status, code, message and optional details (e.g. which field is invalid). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/**
 * Awaits work that reads or writes storage for a request: a failure of
 * storage itself — a database that is down or refuses — is `503
 * unavailable` (retry later), not a bug of the relay; the cause goes to the
 * log ({@link ApiError.cause}), not to the client. ApiErrors pass as they are.
 */
export const fromStorage = async <T>(work: Promise<T>): Promise<T> => {
  try {
    return await work
  } catch (error) {
    if (error instanceof ApiError) throw error
    const answer = new ApiError(
      503,
      ErrorCode.unavailable,
      'storage is not answering (nothing was changed); retry later',
      {},
      {
        'retry-after': '5',
      },
    )
    answer.cause = error
    throw answer
  }
}

/** Sends `body` as JSON. */
export const sendJson = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  const text = JSON.stringify(body) + '\n'
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** Sends an error answer. */
export const sendError = (res: http.ServerResponse, error: ApiError): void =>
  sendJson(res, error.status, { error: { code: error.code, message: error.message, ...error.details } }, error.headers)

/**
 * Reads a JSON request body of at most `maxBytes` bytes. An empty body reads
 * as `undefined`. Rejects with 413 for a larger body (without reading it all),
 * 415 for another content type, 400 for malformed JSON.
 */
export const readJson = async (req: http.IncomingMessage, maxBytes: number): Promise<unknown> => {
  const type = req.headers['content-type']
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > maxBytes) throw tooLarge(maxBytes)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength
    if (size > maxBytes) throw tooLarge(maxBytes)
    chunks.push(chunk)
  }
  if (size === 0) return undefined
  if (type !== undefined && !/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new ApiError(415, ErrorCode.unsupportedMediaType, 'request bodies are JSON (Content-Type: application/json)')
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (error) {
    throw new ApiError(400, ErrorCode.badRequest, `the body is not valid JSON: ${(error as Error).message}`)
  }
}

const tooLarge = (maxBytes: number): ApiError =>
  new ApiError(413, ErrorCode.payloadTooLarge, `request bodies are limited to ${maxBytes} bytes`, {}, { connection: 'close' })

/** Validates a parsed body with `schema`; 400 naming the first wrong property otherwise. */
export const parseBody = <T>(schema: z.ZodType<T>, body: unknown, what: 'the body' | 'the query' = 'the body'): T => {
  const result = schema.safeParse(body)
  if (result.success) return result.data
  const issues = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }))
  const first = issues[0]
  const where = first.path === '' ? what : `"${first.path}"`
  throw new ApiError(400, ErrorCode.badRequest, `${where}: ${first.message}`, { issues })
}

/**
 * The identity of an API request: `Authorization: Bearer <token>` verified
 * like a WebSocket token. Without auth configured every request is the
 * anonymous user with write access, as on the socket (the relay then binds
 * loopback only unless started with `--insecure`).
 */
export const identify = async (req: http.IncomingMessage, auth: Authenticator): Promise<Identity> => {
  if (auth.kind === 'none') return ANONYMOUS
  const header = req.headers.authorization
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) {
    throw new ApiError(401, ErrorCode.unauthorized, 'a token is required (Authorization: Bearer <token>)', {}, BEARER_CHALLENGE)
  }
  try {
    return await auth.verify(match[1])
  } catch (error) {
    const reason = error instanceof AuthError ? error.message : 'token could not be verified'
    throw new ApiError(401, ErrorCode.unauthorized, `unauthorized: ${reason}`, {}, BEARER_CHALLENGE)
  }
}

const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer' }
