/**
 * Webhooks against a real relay process with JWT auth, delivering to a local
 * HTTP server: subscriptions need write access and survive a restart; a
 * delivery is signed (the signature verifies, a changed body or an old
 * timestamp does not), names the changed fields with their values before
 * and after and who changed them (API and live engine clients); several
 * quick edits make one delivery; a failing endpoint is retried and its
 * failure is visible in the list route and the metrics. The relay puts rooms
 * to sleep after 200 ms without use (`DORMANT_AFTER_MS`), so records go
 * dormant and wake between the edits of these tests; one test waits for it.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { MemoryStorage, RecordStore, SyncClient } from '@concord/engine'
import { readRecord, validatePatch, writeWithHistory } from '@concord/engine/internal'
import { appSchemas, ticketSchema } from '../apps/web/src/lib/schemas.js'
import { verifySignature } from '../apps/relay/src/webhooks/signature.js'
import { removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { callApi } from './helpers/httpApi.js'

/** A delivery as the endpoint received it. */
interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: string
  event: any
}

/** A local webhook endpoint: records every request; answers each path's next statuses from `failures`, then 200. */
class Endpoint {
  readonly received: Received[] = []
  /** Statuses to answer, per path, before answering 200. */
  readonly failures = new Map<string, number[]>()
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      this.received.push({ path: req.url ?? '/', headers: req.headers, body, event: JSON.parse(body) })
      const status = this.failures.get(req.url ?? '/')?.shift() ?? 200
      res.writeHead(status)
      res.end()
    })
  })
  url = ''

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** Deliveries to `path`. */
  to(path: string): Received[] {
    return this.received.filter((r) => r.path === path)
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

let relay: RelayProcess
/** Auth on; rooms unused for 200 ms go dormant. */
const RELAY_ENV = { JWT_SECRET: TEST_SECRET, DORMANT_AFTER_MS: '200' }
let endpoint: Endpoint
let writer: string
const stores: RecordStore[] = []
const clients: SyncClient[] = []

beforeAll(async () => {
  endpoint = new Endpoint()
  await endpoint.start()
  relay = await startRelay({ env: RELAY_ENV })
  writer = await signToken('bot', { '*': 'write' }, { name: 'CI Bot' })
})
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
  for (const client of clients.splice(0)) client.close()
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
  await endpoint.close()
})

const api = (method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
  callApi(relay.url, method, `/api/v1${path}`, { token: writer, ...options })

/** Asks `read` again (each answer waits for the relay) until `done` holds for its answer; at most 200 times. */
const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> => {
  for (let i = 0; i < 200; i++) {
    const value = await read()
    if (done(value)) return value
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Subscribes `path` of the endpoint to `workspace`; returns the subscription with its secret. */
const subscribe = async (workspace: string, path: string) => {
  const answer = await api('POST', `/workspaces/${workspace}/webhooks`, { body: { url: endpoint.url + path } })
  expect(answer.status).toBe(201)
  expect(answer.body.secret).toMatch(/^[A-Za-z0-9_-]{40,}$/)
  return answer.body as { id: string; secret: string }
}

describe('subscriptions', () => {
  it('need write access to the workspace, list without their secret, and survive a restart', async () => {
    const reader = await signToken('rita', { subs: 'read' })
    const refused = await api('POST', '/workspaces/subs/webhooks', { token: reader, body: { url: endpoint.url + '/x' } })
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe('forbidden')
    expect((await api('GET', '/workspaces/subs/webhooks', { token: reader })).status).toBe(403)
    const invalid = await api('POST', '/workspaces/subs/webhooks', { body: { url: 'ftp://example.com/hook' } })
    expect(invalid.status).toBe(400)

    const created = await subscribe('subs', '/subs')
    const listed = await api('GET', '/workspaces/subs/webhooks')
    expect(listed.body.webhooks).toEqual([
      {
        id: created.id,
        workspace: 'subs',
        url: endpoint.url + '/subs',
        createdAt: expect.any(Number),
        createdBy: 'bot',
        status: { lastDeliveryAt: null, lastError: null, failures: 0, nextRetryAt: null, pending: 0 },
      },
    ])

    const dataDir = relay.dataDir
    await relay.stop()
    relay = await startRelay({ dataDir, env: RELAY_ENV })
    expect((await api('GET', '/workspaces/subs/webhooks')).body.webhooks.map((w: { id: string }) => w.id)).toEqual([created.id])
    expect((await api('DELETE', `/workspaces/subs/webhooks/${created.id}`)).status).toBe(204)
    expect((await api('DELETE', `/workspaces/subs/webhooks/${created.id}`)).status).toBe(404)
    expect((await api('GET', '/workspaces/subs/webhooks')).body.webhooks).toEqual([])
  })
})

/** Opens record `id` of `workspace` in a live engine store of Ada's (write access to the workspace). */
const openAsAda = async (workspace: string, id: string) => {
  const token = await signToken('ada', { [workspace]: 'write' }, { name: 'Ada Lovelace' })
  const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, token })
  clients.push(client)
  const store = new RecordStore({
    client,
    userId: 'ada',
    workspaceId: workspace,
    schemas: appSchemas,
    tabs: false,
    storage: new MemoryStorage(),
  })
  stores.push(store)
  return store.open(id)
}

describe('deliveries', () => {
  it('are signed, and name the changed fields and who changed them', async () => {
    const { secret } = await subscribe('signed', '/signed')
    await api('POST', '/workspaces/signed/records', { body: { type: 'ticket', id: 'S-1', fields: { title: 'Signed' } } })
    await waitFor(() => endpoint.to('/signed').length === 1, 'the creation delivered')
    const created = endpoint.to('/signed')[0]
    expect(created.event).toMatchObject({
      type: 'record.created',
      workspace: 'signed',
      record: { id: 'S-1', type: 'ticket', archived: false },
      authors: [{ userId: 'bot', name: 'CI Bot' }],
    })
    expect(created.event.changes).toContainEqual({ field: 'title', before: null, after: 'Signed' })

    const changed = await api('PATCH', '/workspaces/signed/records/S-1', { body: { fields: { status: 'done' } } })
    await waitFor(() => endpoint.to('/signed').length === 2, 'the change delivered')
    const delivery = endpoint.to('/signed')[1]
    expect(delivery.event).toMatchObject({
      type: 'record.changed',
      record: { id: 'S-1', seq: changed.body.seq },
      changes: [{ field: 'status', before: 'open', after: 'done' }],
      authors: [{ userId: 'bot', name: 'CI Bot' }],
    })
    expect(delivery.headers['content-type']).toBe('application/json')
    expect(delivery.headers['concord-webhook-id']).toBe(delivery.event.id)
    const signature = String(delivery.headers['concord-signature'])
    expect(verifySignature(secret, delivery.body, signature)).toBe(true)
    expect(verifySignature(secret, delivery.body.replace('done', 'open'), signature)).toBe(false)
    expect(verifySignature('another-secret', delivery.body, signature)).toBe(false)
    expect(verifySignature(secret, delivery.body, signature, { now: Math.floor(Date.now() / 1000) + 3600 })).toBe(false)

    // a live engine client's edit names that client's user (from the relay's author bindings)
    const handle = await openAsAda('signed', 'S-1')
    await waitFor(() => handle.get('status') === 'done', 'the record at the client')
    handle.set('priority', 'urgent')
    await waitFor(() => endpoint.to('/signed').length === 3, "the client's change delivered")
    expect(endpoint.to('/signed')[2].event).toMatchObject({
      changes: [{ field: 'priority', before: 'none', after: 'urgent' }],
      authors: [{ userId: 'ada', name: 'Ada Lovelace' }],
    })
  })

  it('of a record that went dormant name what its next edit changed, before and after', async () => {
    await subscribe('sleepy', '/sleepy')
    await api('POST', '/workspaces/sleepy/records', { body: { type: 'ticket', id: 'Z-1', fields: { title: 'Sleepy', status: 'open' } } })
    await waitFor(() => endpoint.to('/sleepy').length === 1, 'the creation delivered')
    // a live client keeps the record open (its room loaded) while nobody writes to it
    const handle = await openAsAda('sleepy', 'Z-1')
    await waitFor(() => handle.get('title') === 'Sleepy', 'the record at the client')
    const dormant = async () => Number(/^concord_rooms_dormant (\d+)$/m.exec(await (await fetch(`${relay.url}/metrics`)).text())?.[1] ?? 0)
    await expect.poll(dormant, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(1)
    handle.set('status', 'done')
    await waitFor(() => endpoint.to('/sleepy').length === 2, 'the change delivered')
    expect(endpoint.to('/sleepy')[1].event).toMatchObject({
      type: 'record.changed',
      changes: [{ field: 'status', before: 'open', after: 'done' }],
      authors: [{ userId: 'ada', name: 'Ada Lovelace' }],
    })
  })

  it('of statuses two people set apart say the later one, as the API does, before any device settles the merge', async () => {
    await subscribe('apart', '/apart')
    await api('POST', '/workspaces/apart/records', { body: { type: 'ticket', id: 'A-1', fields: { title: 'Apart', status: 'open' } } })
    await waitFor(() => endpoint.to('/apart').length === 1, 'the creation delivered')
    // Ada (offline, at 10:00) and Bob (at 10:05) each set the status on the ticket as it was; Yjs keeps Ada's (the
    // higher client id). No device holds the record open to settle it: the relay gets both at once.
    const stored = await api('GET', '/workspaces/apart/records/A-1', { headers: { accept: 'application/octet-stream' } })
    const apart = (clientID: number, status: string, now: number): Uint8Array => {
      const doc = new Y.Doc()
      doc.clientID = clientID
      Y.applyUpdate(doc, stored.bytes)
      const before = Y.encodeStateVector(doc)
      doc.transact(() => writeWithHistory(doc, validatePatch(ticketSchema, 'A-1', { status }), { now }))
      return Y.encodeStateAsUpdate(doc, before)
    }
    const ten = Date.UTC(2026, 11, 7, 10)
    const both = Y.mergeUpdates([apart(2 ** 32 - 1, 'cancelled', ten), apart(1, 'done', ten + 5 * 60_000)])
    const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, token: writer })
    clients.push(client)
    const handle = client.open('apart/A-1')
    await handle.synced
    Y.applyUpdate(handle.doc, both)
    await handle.flush()
    expect(readRecord(handle.doc, 'A-1', ticketSchema).fields.status).toBe('cancelled') // Yjs's pick, not settled

    const read = await api('GET', '/workspaces/apart/records/A-1')
    expect(read.body.fields.status).toBe('done')
    await waitFor(() => endpoint.to('/apart').length === 2, 'the merge delivered')
    expect(endpoint.to('/apart')[1].event.changes).toEqual([{ field: 'status', before: 'open', after: 'done' }])

    // A device that opens it settles the merge on the same value: nothing changed for an integration, nothing delivered.
    const ada = await openAsAda('apart', 'A-1')
    await waitFor(() => ada.get('status') === 'done', 'the settlement at the device')
    await waitFor(() => handle.doc.getMap('fields').get('status') === 'done', 'the settlement at the relay')
    ada.set('priority', 'high') // a later change, so the wait below ends on a delivery
    await waitFor(() => endpoint.to('/apart').length === 3, 'the next change delivered')
    expect(endpoint.to('/apart')[2].event.changes).toEqual([{ field: 'priority', before: 'none', after: 'high' }])
  })

  it('are debounced per record: quick edits make one delivery with the first value before and the last after', async () => {
    await subscribe('quick', '/quick')
    await api('POST', '/workspaces/quick/records', { body: { type: 'ticket', id: 'Q-1', fields: { title: 'v0' } } })
    await waitFor(() => endpoint.to('/quick').length === 1, 'the creation delivered')
    for (let i = 1; i <= 5; i++) {
      expect((await api('PATCH', '/workspaces/quick/records/Q-1', { body: { fields: { title: `v${i}` } } })).status).toBe(200)
    }
    await api('PATCH', '/workspaces/quick/records/Q-1', { body: { fields: { priority: 'low' } } })
    await waitFor(() => endpoint.to('/quick').length >= 2, 'the edits delivered')
    const delivery = endpoint.to('/quick')[1].event
    // one delivery holds every edit: had any edit been delivered alone, this one would start after it
    expect(delivery.changes).toEqual([
      { field: 'title', before: 'v0', after: 'v5' },
      { field: 'priority', before: 'none', after: 'low' },
    ])
    // a later edit of the record is delivered after it, and nothing else came for the quick edits
    await api('PATCH', '/workspaces/quick/records/Q-1', { body: { fields: { status: 'done' } } })
    const marked = (r: Received) =>
      r.event.changes.some((c: { field: string; after: unknown }) => c.field === 'status' && c.after === 'done')
    await waitFor(() => endpoint.to('/quick').some(marked), 'the later edit delivered')
    expect(endpoint.to('/quick')).toHaveLength(3)
  })

  it('are retried after the endpoint fails twice (same id, signed anew)', async () => {
    const { secret } = await subscribe('retry', '/retry')
    endpoint.failures.set('/retry', [500, 503])
    await api('POST', '/workspaces/retry/records', { body: { type: 'ticket', id: 'R-1', fields: { title: 'Retry me' } } })
    await waitFor(() => endpoint.to('/retry').length === 3, 'two failures and a retry', 20_000)
    const attempts = endpoint.to('/retry')
    expect(new Set(attempts.map((a) => a.headers['concord-webhook-id'])).size).toBe(1)
    for (const attempt of attempts) expect(verifySignature(secret, attempt.body, String(attempt.headers['concord-signature']))).toBe(true)
    // the relay notes the success once it has the answer
    const status = await until(
      async () => (await api('GET', '/workspaces/retry/webhooks')).body.webhooks[0].status,
      (s) => s.lastDeliveryAt !== null,
      'the success noted',
    )
    expect(status).toMatchObject({ lastError: null, failures: 0, nextRetryAt: null, pending: 0 })
    expect(status.lastDeliveryAt).toEqual(expect.any(Number))
  })

  it('to a failing endpoint show the last error and the next retry in the list route and the metrics', async () => {
    await subscribe('failing', '/failing')
    endpoint.failures.set('/failing', Array(100).fill(500))
    await api('POST', '/workspaces/failing/records', { body: { type: 'ticket', id: 'F-1', fields: { title: 'Nobody hears' } } })
    await waitFor(() => endpoint.to('/failing').length >= 1, 'a first attempt')
    const status = await until(
      async () => (await api('GET', '/workspaces/failing/webhooks')).body.webhooks[0].status,
      (s) => s.lastError !== null,
      'the failure noted',
    )
    expect(status.lastError).toEqual({ message: 'HTTP 500', at: expect.any(Number) })
    expect(status.failures).toBeGreaterThanOrEqual(1)
    expect(status.pending).toBe(1)
    expect(status.nextRetryAt).toEqual(expect.any(Number))
    const metrics = await (await fetch(`${relay.url}/metrics`)).text()
    expect(metrics).toMatch(/^concord_webhook_failing_subscriptions [1-9]/m)
    expect(metrics).toMatch(/^concord_webhook_deliveries_total\{result="failed"\} [1-9]/m)
  })
})
