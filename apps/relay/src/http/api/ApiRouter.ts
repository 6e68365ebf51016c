/**
 * The relay's HTTP API under `/api/v1/`: finds the route of a request,
 * authenticates it (`Authorization: Bearer <token>`, the WebSocket's tokens
 * and permissions) and turns every error into a JSON answer
 * `{ "error": { "code", "message", … } }` with its status code.
 *
 *     GET /api/v1/openapi.json                      the OpenAPI 3.1 description (no token needed)
 *     …/workspaces/{workspace}/records[/{id}[/archive]]   see http/api/records
 *     …/workspaces/{workspace}/webhooks[/{id}]            see http/api/webhooks
 *
 * @module http/api/ApiRouter
 */
import type http from 'node:http'
import { validateDocName } from '@concord/engine/protocol'
import type { Authenticator } from '../../auth/Authenticator.js'
import type { Logger } from '../../observability/logger.js'
import type { RelayMetrics } from '../../observability/metrics.js'
import type { RoomRegistry } from '../../rooms/RoomRegistry.js'
import type { WebhookSubscriptions } from '../../webhooks/WebhookSubscriptions.js'
import { openApiDocument } from './openapi.js'
import type { RecordAccess } from './RecordAccess.js'
import { handleRecords } from './records.js'
import { ApiError, ErrorCode, identify, sendError, sendJson } from './respond.js'
import { handleWebhooks } from './webhooks.js'

/** Path prefix of the API. */
export const API_PREFIX = '/api/'

/** Largest request body by default, bytes. */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024

/** What the router needs from the relay. */
export interface ApiRouterOptions {
  auth: Authenticator
  rooms: RoomRegistry
  records: RecordAccess
  subscriptions: WebhookSubscriptions
  metrics: RelayMetrics
  log: Logger
  /** Largest request body, bytes (413 above). */
  maxBodyBytes: number
  /** True while the relay shuts down: writes are refused with 503. */
  draining: () => boolean
  /** Browser origins besides the relay's own that may write (the WebSocket's `allowedOrigins`); null: none. */
  allowedOrigins: ReadonlySet<string> | null
}

/** Routes of the API, as counted in `concord_api_requests_total`. */
type RouteName = 'openapi' | 'records' | 'record' | 'archive' | 'webhooks' | 'webhook' | 'unknown'

/** The HTTP API. */
export class ApiRouter {
  constructor(private readonly options: ApiRouterOptions) {}

  /** Whether `pathname` is the API's. */
  static handles(pathname: string): boolean {
    return pathname === '/api' || pathname.startsWith(API_PREFIX)
  }

  /** Answers an API request; never throws. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const [pathname, search = ''] = (req.url ?? '/').split('?', 2)
    let route: RouteName = 'unknown'
    try {
      const segments = decodeSegments(pathname)
      route = routeName(segments)
      await this.dispatch(req, res, segments, route, new URLSearchParams(search))
    } catch (error) {
      const answer = error instanceof ApiError ? error : this.internalError(error)
      if (answer.cause !== undefined)
        this.options.log.warn({ err: answer.cause, route }, `API request answered ${answer.status}: ${answer.message}`)
      if (res.headersSent) res.end()
      else sendError(res, answer)
    } finally {
      this.options.metrics.apiRequests.labels(route, `${Math.floor(res.statusCode / 100)}xx`).inc()
    }
  }

  private async dispatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    segments: string[],
    route: RouteName,
    query: URLSearchParams,
  ): Promise<void> {
    const { options } = this
    if (route === 'unknown')
      throw new ApiError(
        404,
        ErrorCode.notFound,
        `no API route ${segments.length ? '/' + segments.join('/') : '/'}; see /api/v1/openapi.json`,
      )
    if (route === 'openapi') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new ApiError(405, ErrorCode.methodNotAllowed, 'use GET', {}, { allow: 'GET' })
      return sendJson(res, 200, openApiDocument)
    }
    const [, , , workspace, , id = null, action = null] = segments
    const invalid = validateDocName(id === null ? workspace : `${workspace}/${id}`)
    if (invalid !== null) throw new ApiError(400, ErrorCode.badRequest, invalid)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      if (options.draining())
        throw new ApiError(503, ErrorCode.unavailable, 'the relay is shutting down; retry later', {}, { 'retry-after': '5' })
      this.refuseCrossSiteWrite(req)
    }
    const identity = await identify(req, options.auth)
    if (route === 'webhooks' || route === 'webhook') {
      return handleWebhooks(
        { subscriptions: options.subscriptions, maxBodyBytes: options.maxBodyBytes },
        { req, res, identity, workspace, id },
      )
    }
    return handleRecords(
      { records: options.records, rooms: options.rooms, maxBodyBytes: options.maxBodyBytes },
      { req, res, identity, workspace, id, action, query },
    )
  }

  /**
   * Refuses a write a web page of another origin sends (an HTML form can POST
   * without a preflight, and a relay without auth would take it): a request
   * whose `Origin` is not the relay's own, nor one of `allowedOrigins`.
   * Requests without an `Origin` (curl, servers) are not from a web page.
   */
  private refuseCrossSiteWrite(req: http.IncomingMessage): void {
    const origin = req.headers.origin
    if (origin === undefined || this.options.allowedOrigins?.has(origin)) return
    let host: string | null = null
    try {
      host = new URL(origin).host
    } catch {
      // `null` (sandboxed pages) or garbage: not the relay's own origin
    }
    if (host !== null && host === req.headers.host) return
    throw new ApiError(
      403,
      ErrorCode.forbidden,
      `writes from web pages of ${origin} are refused (not this relay's origin, nor an allowed one)`,
    )
  }

  private internalError(error: unknown): ApiError {
    this.options.log.error({ err: error }, 'API request failed')
    return new ApiError(500, ErrorCode.internal, 'the relay failed to answer; see its log')
  }
}

/** The path's segments after the leading `/`, percent-decoded (400 for bad encoding). */
const decodeSegments = (pathname: string): string[] => {
  try {
    return pathname
      .split('/')
      .filter((segment) => segment !== '')
      .map((segment) => decodeURIComponent(segment))
  } catch {
    throw new ApiError(400, ErrorCode.badRequest, 'the path is not valid percent-encoding')
  }
}

/** Which route the segments name (`api`, `v1`, …). */
const routeName = (segments: string[]): RouteName => {
  if (segments[0] !== 'api' || segments[1] !== 'v1') return 'unknown'
  if (segments.length === 3 && segments[2] === 'openapi.json') return 'openapi'
  if (segments[2] !== 'workspaces' || segments.length < 5) return 'unknown'
  const resource = segments[4]
  if (resource === 'records') {
    if (segments.length === 5) return 'records'
    if (segments.length === 6) return 'record'
    if (segments.length === 7 && segments[6] === 'archive') return 'archive'
  }
  if (resource === 'webhooks') {
    if (segments.length === 5) return 'webhooks'
    if (segments.length === 6) return 'webhook'
  }
  return 'unknown'
}
