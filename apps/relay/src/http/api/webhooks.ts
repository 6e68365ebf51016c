/**
 * The webhook routes of the HTTP API (see `docs/api.md`):
 *
 *     GET    /api/v1/workspaces/{workspace}/webhooks        list, with each one's delivery status
 *     POST   /api/v1/workspaces/{workspace}/webhooks        subscribe a URL (answers its secret, once)
 *     DELETE /api/v1/workspaces/{workspace}/webhooks/{id}   unsubscribe
 *
 * Every route needs write access to the workspace: a subscription reads
 * every change of it, and only writers may decide where they go.
 *
 * @module http/api/webhooks
 */
import type http from 'node:http'
import { z } from 'zod'
import { Access, type Identity } from '../../auth/Authenticator.js'
import type { WebhookSubscription, WebhookSubscriptions } from '../../webhooks/WebhookSubscriptions.js'
import { MAX_SUBSCRIPTIONS_PER_WORKSPACE } from '../../webhooks/WebhookSubscriptions.js'
import { ApiError, ErrorCode, fromStorage, parseBody, readJson, sendJson } from './respond.js'

const subscribeBody = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).max(2000),
})

/** What a webhook route is given. */
export interface WebhooksContext {
  readonly subscriptions: WebhookSubscriptions
  readonly maxBodyBytes: number
}

/** One request to a webhook route. */
export interface WebhooksRequest {
  req: http.IncomingMessage
  res: http.ServerResponse
  identity: Identity
  workspace: string
  /** The subscription id, for `/webhooks/{id}`. */
  id: string | null
}

/** Answers a webhook route; throws {@link ApiError}. */
export const handleWebhooks = async (ctx: WebhooksContext, request: WebhooksRequest): Promise<void> => {
  const { req, res, identity, workspace, id } = request
  const access = identity.access.get(workspace) ?? identity.access.get('*') ?? Access.none
  if (access !== Access.write) {
    throw new ApiError(403, ErrorCode.forbidden, `webhooks of "${workspace}" need write access to the workspace`)
  }
  // shared with other relay instances: what they created or deleted counts too
  await fromStorage(ctx.subscriptions.refresh())
  const method = req.method ?? 'GET'
  if (id !== null) {
    if (method !== 'DELETE') throw new ApiError(405, ErrorCode.methodNotAllowed, 'use DELETE on this route', {}, { allow: 'DELETE' })
    const subscription = ctx.subscriptions.get(id)
    if (subscription === undefined || subscription.workspace !== workspace) {
      throw new ApiError(404, ErrorCode.notFound, `no webhook "${id}" in workspace "${workspace}"`)
    }
    await fromStorage(ctx.subscriptions.delete(id))
    res.writeHead(204)
    res.end()
    return
  }
  if (method === 'GET' || method === 'HEAD') {
    return sendJson(res, 200, { webhooks: ctx.subscriptions.of(workspace).map((s) => describe(ctx.subscriptions, s)) })
  }
  if (method !== 'POST') throw new ApiError(405, ErrorCode.methodNotAllowed, 'use GET or POST on this route', {}, { allow: 'GET, POST' })
  const { url } = parseBody(subscribeBody, await readJson(req, ctx.maxBodyBytes))
  if (ctx.subscriptions.of(workspace).length >= MAX_SUBSCRIPTIONS_PER_WORKSPACE) {
    throw new ApiError(409, ErrorCode.conflict, `a workspace has at most ${MAX_SUBSCRIPTIONS_PER_WORKSPACE} webhooks`)
  }
  const subscription = await fromStorage(ctx.subscriptions.create(workspace, url, identity.userId))
  sendJson(res, 201, { ...describe(ctx.subscriptions, subscription), secret: subscription.secret })
}

/** A subscription as listed: everything but its secret, with its delivery status. */
const describe = (subscriptions: WebhookSubscriptions, subscription: WebhookSubscription): Record<string, unknown> => {
  const { id, workspace, url, createdAt, createdBy } = subscription
  const { lastDeliveryAt, lastError, failures, nextRetryAt, pending } = subscriptions.statusOf(id)
  return { id, workspace, url, createdAt, createdBy, status: { lastDeliveryAt, lastError, failures, nextRetryAt, pending } }
}
