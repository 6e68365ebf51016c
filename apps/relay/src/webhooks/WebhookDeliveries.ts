/**
 * Sends webhook deliveries: a bounded queue, a few requests at a time,
 * retries with exponential backoff and full jitter (the engine's
 * {@link Backoff}), and a bounded number of attempts.
 *
 * Nothing here runs on the commit path: a delivery is queued after the
 * change it reports was stored, and sending is asynchronous. When the queue
 * is full the oldest waiting delivery is dropped (and counted), so a dead
 * endpoint can never hold more than `maxQueued` bodies in memory.
 *
 * A delivery is `POST <url>` with the JSON body, `Concord-Webhook-Id` (the
 * same on every retry: receivers drop duplicates by it), and the signature
 * header (see `webhooks/signature`), signed anew for every attempt. A 2xx
 * answer is success; anything else (redirects too), a network error or no
 * answer within `timeoutMs` is a failed attempt, shown in the subscription's
 * status (last error, next retry) and in the metrics.
 *
 * @module webhooks/WebhookDeliveries
 */
import { Backoff } from '@concord/engine/internal'
import type { Logger } from '../observability/logger.js'
import type { RelayMetrics } from '../observability/metrics.js'
import { RELAY_VERSION } from '../version.js'
import { SIGNATURE_HEADER, signatureHeader } from './signature.js'
import type { WebhookSubscription, WebhookSubscriptions } from './WebhookSubscriptions.js'

/** Options of {@link WebhookDeliveries}. */
export interface WebhookDeliveryOptions {
  /** Most deliveries waiting (queued, sending or waiting for a retry). Default 1000. */
  maxQueued?: number
  /** Requests in flight at once. Default 4. */
  concurrency?: number
  /** Longest wait for an endpoint's answer, ms. Default 10 000. */
  timeoutMs?: number
  /** Attempts of one delivery before it is given up. Default 10. */
  maxAttempts?: number
  /** Upper bound of the first retry delay, ms (doubles per attempt). Default 1000. */
  retryMinDelayMs?: number
  /** Cap of the retry delay, ms. Default 600 000 (10 minutes). */
  retryMaxDelayMs?: number
}

/** One delivery of one event to one subscription. */
interface Delivery {
  subscription: WebhookSubscription
  eventId: string
  body: string
  backoff: Backoff
  /** Retry timer while waiting for a retry. */
  timer: ReturnType<typeof setTimeout> | null
}

/** The relay's outgoing webhook requests. */
export class WebhookDeliveries {
  private readonly ready: Delivery[] = []
  private readonly retrying = new Set<Delivery>()
  private inFlight = 0
  private closed = false
  private readonly aborts = new AbortController()
  private readonly maxQueued: number
  private readonly concurrency: number
  private readonly timeoutMs: number
  private readonly maxAttempts: number
  private readonly retryMinDelayMs: number
  private readonly retryMaxDelayMs: number

  constructor(
    private readonly subscriptions: WebhookSubscriptions,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
    options: WebhookDeliveryOptions = {},
  ) {
    this.maxQueued = options.maxQueued ?? 1000
    this.concurrency = options.concurrency ?? 4
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.maxAttempts = options.maxAttempts ?? 10
    this.retryMinDelayMs = options.retryMinDelayMs ?? 1000
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 600_000
  }

  /** Deliveries waiting (queued, sending or waiting for a retry). */
  get size(): number {
    return this.ready.length + this.retrying.size + this.inFlight
  }

  /** Queues one delivery of the event `eventId` (JSON `body`) to every subscription of `workspace`. */
  enqueue(workspace: string, eventId: string, body: string): void {
    if (this.closed) return
    for (const subscription of this.subscriptions.of(workspace)) {
      if (this.size >= this.maxQueued) this.dropOldest()
      const backoff = new Backoff({ minDelay: this.retryMinDelayMs, maxDelay: this.retryMaxDelayMs })
      this.ready.push({ subscription, eventId, body, backoff, timer: null })
      this.subscriptions.statusOf(subscription.id).pending++
    }
    this.updateGauges()
    this.pump()
  }

  /** Stops sending: pending retries are cancelled, requests in flight aborted. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const delivery of this.retrying) if (delivery.timer) clearTimeout(delivery.timer)
    this.retrying.clear()
    this.ready.length = 0
    this.aborts.abort()
    this.updateGauges()
  }

  /** Drops the oldest queued delivery (else the retry due last) to make room. */
  private dropOldest(): void {
    let dropped = this.ready.shift()
    if (dropped === undefined) {
      dropped = [...this.retrying].at(-1)
      if (dropped === undefined) return
      if (dropped.timer) clearTimeout(dropped.timer)
      this.retrying.delete(dropped)
    }
    this.finish(dropped)
    this.metrics.webhookDeliveries.labels('dropped').inc()
    this.log.warn({ subscription: dropped.subscription.id, event: dropped.eventId }, 'webhook queue full: oldest delivery dropped')
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.concurrency && this.ready.length > 0) {
      const delivery = this.ready.shift()!
      if (this.subscriptions.get(delivery.subscription.id) === undefined) continue // deleted meanwhile
      this.inFlight++
      void this.attempt(delivery).finally(() => {
        this.inFlight--
        this.updateGauges()
        this.pump()
      })
    }
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const { subscription, eventId, body } = delivery
    let failure: string | null = null
    try {
      const response = await fetch(subscription.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.any([this.aborts.signal, AbortSignal.timeout(this.timeoutMs)]),
        headers: {
          'content-type': 'application/json',
          'user-agent': `concord-relay/${RELAY_VERSION}`,
          'concord-webhook-id': eventId,
          'concord-webhook-subscription': subscription.id,
          [SIGNATURE_HEADER]: signatureHeader(subscription.secret, body, Math.floor(Date.now() / 1000)),
        },
      })
      await response.body?.cancel()
      if (response.status < 200 || response.status > 299) failure = `HTTP ${response.status}`
    } catch (error) {
      failure = describeFetchError(error)
    }
    if (this.closed) return
    const status = this.subscriptions.statusOf(subscription.id)
    if (failure === null) {
      status.lastDeliveryAt = Date.now()
      status.lastError = null
      status.failures = 0
      status.nextRetryAt = null
      this.finish(delivery)
      this.metrics.webhookDeliveries.labels('delivered').inc()
      return
    }
    status.failures++
    status.lastError = { message: failure, at: Date.now() }
    if (delivery.backoff.attempt + 1 >= this.maxAttempts) {
      status.nextRetryAt = null
      this.finish(delivery)
      this.metrics.webhookDeliveries.labels('abandoned').inc()
      this.log.warn({ subscription: subscription.id, event: eventId, error: failure }, 'webhook delivery given up')
      return
    }
    const delay = delivery.backoff.next()
    status.nextRetryAt = Date.now() + delay
    this.metrics.webhookDeliveries.labels('failed').inc()
    this.log.info({ subscription: subscription.id, event: eventId, error: failure, retryInMs: delay }, 'webhook delivery failed')
    this.retrying.add(delivery)
    delivery.timer = setTimeout(() => {
      delivery.timer = null
      this.retrying.delete(delivery)
      this.ready.push(delivery)
      this.pump()
    }, delay)
    delivery.timer.unref()
  }

  /** A delivery is over (delivered, given up or dropped). */
  private finish(delivery: Delivery): void {
    const status = this.subscriptions.statusOf(delivery.subscription.id)
    status.pending = Math.max(0, status.pending - 1)
    this.updateGauges()
  }

  private updateGauges(): void {
    this.metrics.webhookQueued.set(this.size)
    this.metrics.webhookFailing.set(this.subscriptions.failing)
  }
}

/** A short reason for a failed request (fetch wraps the network error in `cause`). */
const describeFetchError = (error: unknown): string => {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time'
  let cause = (error as { cause?: unknown }).cause
  if (cause instanceof AggregateError) cause = cause.errors[0] // one error per address tried
  const { code, message } = (cause ?? {}) as { code?: string; message?: string }
  if (code) return `${code}: ${message ?? ''}`.trim()
  return (error as Error).message ?? String(error)
}
