/**
 * The webhook delivery queue against a local HTTP endpoint: it holds at most
 * `maxQueued` deliveries however slow the endpoint (the oldest are dropped
 * and counted), gives a delivery up after `maxAttempts` with the failure left
 * visible, and a subscription file written by one relay is read by the next.
 */
import http from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { WebhookDeliveries } from '../src/webhooks/WebhookDeliveries.js'
import { WebhookSubscriptions } from '../src/webhooks/WebhookSubscriptions.js'
import { RelayMetrics } from '../src/observability/metrics.js'
import { silentLogger } from '../src/observability/logger.js'
import { makeTempDir, removeDir, waitFor } from '../../../test/helpers/relayProcess.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A local endpoint answering every request with `respond`. */
const endpoint = async (respond: (req: http.IncomingMessage, res: http.ServerResponse) => void) => {
  const requests: string[] = []
  const server = http.createServer((req, res) => {
    requests.push(req.headers['concord-webhook-id'] as string)
    req.resume()
    respond(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, requests }
}

const counted = async (metrics: RelayMetrics, result: string): Promise<number> => {
  const metric = await metrics.webhookDeliveries.get()
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0
}

describe('WebhookDeliveries', () => {
  it('holds at most maxQueued deliveries for an endpoint that never answers; the oldest are dropped and counted', async () => {
    const silent = await endpoint(() => {}) // never answers
    const subscriptions = new WebhookSubscriptions(null)
    await subscriptions.create('acme', silent.url, 'ada')
    const metrics = new RelayMetrics({ collectDefault: false })
    const deliveries = new WebhookDeliveries(subscriptions, metrics, silentLogger(), { maxQueued: 3, concurrency: 1, timeoutMs: 60_000 })
    cleanups.push(() => deliveries.close())
    for (let i = 0; i < 10; i++) deliveries.enqueue('acme', `event-${i}`, '{}')
    expect(deliveries.size).toBe(3)
    expect(await counted(metrics, 'dropped')).toBe(7)
    await waitFor(() => silent.requests.length === 1, 'the first request sent')
    // the one in flight is the first; the newest two wait behind it
    expect(silent.requests).toEqual(['event-0'])
    expect((await metrics.webhookQueued.get()).values[0].value).toBe(3)
  })

  it('gives a delivery up after maxAttempts and leaves the failure visible', async () => {
    const failing = await endpoint((_req, res) => {
      res.writeHead(502)
      res.end()
    })
    const subscriptions = new WebhookSubscriptions(null)
    const subscription = await subscriptions.create('acme', failing.url, 'ada')
    const metrics = new RelayMetrics({ collectDefault: false })
    const deliveries = new WebhookDeliveries(subscriptions, metrics, silentLogger(), {
      maxAttempts: 3,
      retryMinDelayMs: 5,
      retryMaxDelayMs: 20,
    })
    cleanups.push(() => deliveries.close())
    deliveries.enqueue('acme', 'event-1', '{}')
    deliveries.enqueue('globex', 'event-2', '{}') // no subscription there: nothing sent
    await waitFor(() => subscriptions.statusOf(subscription.id).pending === 0, 'the delivery given up')
    expect(failing.requests).toEqual(['event-1', 'event-1', 'event-1'])
    expect(subscriptions.statusOf(subscription.id)).toMatchObject({ lastError: { message: 'HTTP 502' }, failures: 3, nextRetryAt: null })
    expect(await counted(metrics, 'failed')).toBe(2)
    expect(await counted(metrics, 'abandoned')).toBe(1)
    expect((await metrics.webhookFailing.get()).values[0].value).toBe(1)
    expect(deliveries.size).toBe(0)
  })

  it('keeps subscriptions in a file that the next relay reads; a deleted one is gone from it', async () => {
    const dir = makeTempDir()
    cleanups.push(() => removeDir(dir))
    const file = path.join(dir, 'data', 'webhooks.json')
    const first = new WebhookSubscriptions(file)
    const kept = await first.create('acme', 'https://example.com/a', 'ada')
    const gone = await first.create('acme', 'https://example.com/b', 'ada')
    await first.delete(gone.id)
    const next = new WebhookSubscriptions(file)
    expect(next.of('acme')).toEqual([kept])
    expect(next.watches('globex')).toBe(false)
    expect(JSON.parse(readFileSync(file, 'utf8')).subscriptions).toHaveLength(1)
  })
})
