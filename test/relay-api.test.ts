/**
 * The relay's HTTP API against a real relay process with JWT auth: every
 * route and its errors, a change made through the API reaching a live engine
 * client at once and showing in the record's history as the token's user's,
 * and an answered write surviving kill -9 right after its 200.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { MemoryStorage, RecordStore, SyncClient } from '@concord/engine'
import { readRecord } from '@concord/engine/internal'
import { appSchemas, ticketSchema } from '../apps/web/src/lib/schemas.js'
import { makeTempDir, removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { callApi } from './helpers/httpApi.js'

let relay: RelayProcess
let writer: string
let reader: string
let outsider: string
const clients: SyncClient[] = []
const stores: RecordStore[] = []

beforeAll(async () => {
  relay = await startRelay({ env: { JWT_SECRET: TEST_SECRET } })
  writer = await signToken('bot', { acme: 'write', list: 'write' }, { name: 'CI Bot' })
  reader = await signToken('rita', { acme: 'read' }, { name: 'Rita' })
  outsider = await signToken('otto', { other: 'write' })
})
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
  for (const client of clients.splice(0)) client.close()
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})

const api = (method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
  callApi(relay.url, method, `/api/v1${path}`, { token: writer, ...options })

/** A live engine client of `userId` with write access to `workspace`. */
const engineClient = async (userId: string, workspace: string) => {
  const token = await signToken(userId, { [workspace]: 'write' }, { name: userId.toUpperCase() })
  const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, token })
  clients.push(client)
  const store = new RecordStore({ client, userId, workspaceId: workspace, schemas: appSchemas, tabs: false, storage: new MemoryStorage() })
  stores.push(store)
  return store
}

describe('OpenAPI', () => {
  it('is served without a token and describes every route', async () => {
    const answer = await callApi(relay.url, 'GET', '/api/v1/openapi.json')
    expect(answer.status).toBe(200)
    expect(answer.body.openapi).toBe('3.1.0')
    expect(Object.keys(answer.body.paths).sort()).toEqual([
      '/api/v1/openapi.json',
      '/api/v1/workspaces/{workspace}/records',
      '/api/v1/workspaces/{workspace}/records/{id}',
      '/api/v1/workspaces/{workspace}/records/{id}/archive',
      '/api/v1/workspaces/{workspace}/webhooks',
      '/api/v1/workspaces/{workspace}/webhooks/{id}',
    ])
  })
})

describe('records', () => {
  it('creates a record and reads it as JSON and as its Yjs state', async () => {
    const created = await api('POST', '/workspaces/acme/records', {
      body: { type: 'ticket', id: 'T-1', fields: { title: 'Login fails', priority: 'high', labels: ['bug'] } },
    })
    expect(created.status).toBe(201)
    expect(created.headers.get('location')).toBe('/api/v1/workspaces/acme/records/T-1')
    expect(created.body).toMatchObject({
      id: 'T-1',
      workspace: 'acme',
      type: 'ticket',
      archived: false,
      createdBy: 'bot',
      fields: { title: 'Login fails', status: 'open', priority: 'high', labels: ['bug'], assignee: null },
    })
    expect(created.body.seq).toBeGreaterThan(0)

    const read = await api('GET', '/workspaces/acme/records/T-1', { token: reader })
    expect(read.status).toBe(200)
    expect(read.body).toEqual(created.body)

    const binary = await api('GET', '/workspaces/acme/records/T-1', { token: reader, headers: { accept: 'application/octet-stream' } })
    expect(binary.status).toBe(200)
    expect(binary.headers.get('content-type')).toBe('application/octet-stream')
    expect(Number(binary.headers.get('concord-seq'))).toBe(created.body.seq)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, binary.bytes)
    expect(readRecord(doc, 'T-1', ticketSchema).fields).toEqual(created.body.fields)
  })

  it('changes fields, archives and unarchives; each answer holds the stored record', async () => {
    await api('POST', '/workspaces/acme/records', { body: { type: 'ticket', id: 'T-2', fields: { title: 'Old title' } } })
    const changed = await api('PATCH', '/workspaces/acme/records/T-2', {
      body: { fields: { title: 'New title', status: 'in_progress', dueDate: '2027-01-31' } },
    })
    expect(changed.status).toBe(200)
    expect(changed.body.fields).toMatchObject({ title: 'New title', status: 'in_progress', dueDate: '2027-01-31' })
    expect(changed.body.updatedBy).toBe('bot')
    const archived = await api('POST', '/workspaces/acme/records/T-2/archive')
    expect(archived.status).toBe(200)
    expect(archived.body.archived).toBe(true)
    expect(archived.body.seq).toBeGreaterThan(changed.body.seq)
    const unarchived = await api('PATCH', '/workspaces/acme/records/T-2', { body: { archived: false } })
    expect(unarchived.body.archived).toBe(false)
    const again = await api('POST', '/workspaces/acme/records/T-2/archive', { body: { archived: true } })
    expect((await api('GET', '/workspaces/acme/records/T-2')).body).toEqual(again.body)
  })

  it('lists records in pages, filtered by type, archived and field values', async () => {
    const statuses = ['open', 'done', 'open', 'done', 'open']
    for (const [i, status] of statuses.entries()) {
      const answer = await api('POST', '/workspaces/list/records', {
        body: { type: 'ticket', id: `T-${i}`, fields: { title: `Ticket ${i}`, status, labels: i === 0 ? ['bug', 'ui'] : [] } },
      })
      expect(answer.status).toBe(201)
    }
    await api('POST', '/workspaces/list/records', { body: { type: 'project', id: 'P-1', fields: { name: 'Launch' } } })
    await api('POST', '/workspaces/list/records/T-4/archive')

    const ids: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = await api('GET', `/workspaces/list/records?type=ticket&limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      expect(page.status).toBe(200)
      expect(page.body.records.length).toBeLessThanOrEqual(2)
      ids.push(...page.body.records.map((r: { id: string }) => r.id))
      cursor = page.body.nextCursor
      pages++
    } while (cursor !== null && pages < 10)
    expect(ids).toEqual(['T-0', 'T-1', 'T-2', 'T-3', 'T-4'])

    const done = await api('GET', '/workspaces/list/records?field.status=done')
    expect(done.body.records.map((r: { id: string }) => r.id)).toEqual(['T-1', 'T-3'])
    const labelled = await api('GET', '/workspaces/list/records?field.labels=ui')
    expect(labelled.body.records.map((r: { id: string }) => r.id)).toEqual(['T-0'])
    const archived = await api('GET', '/workspaces/list/records?archived=true')
    expect(archived.body.records.map((r: { id: string }) => r.id)).toEqual(['T-4'])
    const projects = await api('GET', '/workspaces/list/records?type=project')
    expect(projects.body.records).toMatchObject([{ id: 'P-1', fields: { name: 'Launch', status: 'planned' } }])
    expect(projects.body.nextCursor).toBeNull()
  })

  it('generates an id when the body has none', async () => {
    const created = await api('POST', '/workspaces/acme/records', { body: { type: 'project', fields: { name: 'Roadmap' } } })
    expect(created.status).toBe(201)
    expect(created.body.id).toMatch(/^[A-Za-z0-9_-]{16}$/)
    expect((await api('GET', `/workspaces/acme/records/${created.body.id}`)).body.fields.name).toBe('Roadmap')
  })
})

const expectError = (answer: { status: number; body: any }, status: number, code: string) => {
  expect(answer.status).toBe(status)
  expect(answer.body.error.code).toBe(code)
  expect(typeof answer.body.error.message).toBe('string')
}

describe('errors', () => {
  beforeAll(async () => {
    await api('POST', '/workspaces/acme/records', { body: { type: 'ticket', id: 'E-1', fields: { title: 'Target' } } })
  })

  it('401 without a token or with a bad one', async () => {
    expectError(await callApi(relay.url, 'GET', '/api/v1/workspaces/acme/records/E-1'), 401, 'unauthorized')
    const expired = await signToken('bot', { acme: 'write' }, { expiresIn: -60 })
    const answer = await api('GET', '/workspaces/acme/records/E-1', { token: expired })
    expectError(answer, 401, 'unauthorized')
    expect(answer.body.error.message).toMatch(/expired/)
    expectError(await api('GET', '/workspaces/acme/records/E-1', { token: 'not.a.token' }), 401, 'unauthorized')
    const forged = await signToken('bot', { acme: 'write' }, { secret: 'another-secret-that-is-at-least-32-bytes' })
    expectError(
      await api('PATCH', '/workspaces/acme/records/E-1', { token: forged, body: { fields: { status: 'done' } } }),
      401,
      'unauthorized',
    )
  })

  it('403 for a read-only user writing and for a user without access', async () => {
    expectError(
      await api('PATCH', '/workspaces/acme/records/E-1', { token: reader, body: { fields: { status: 'done' } } }),
      403,
      'forbidden',
    )
    expectError(await api('POST', '/workspaces/acme/records', { token: reader, body: { type: 'ticket', fields: {} } }), 403, 'forbidden')
    expectError(await api('POST', '/workspaces/acme/records/E-1/archive', { token: reader }), 403, 'forbidden')
    expectError(await api('GET', '/workspaces/acme/records/E-1', { token: outsider }), 403, 'forbidden')
    expectError(await api('GET', '/workspaces/acme/records', { token: outsider }), 403, 'forbidden')
    expect((await api('GET', '/workspaces/acme/records/E-1')).body.fields.status).toBe('open')
  })

  it('400 naming the field for an invalid or unknown field value; nothing is written', async () => {
    const invalid = await api('PATCH', '/workspaces/acme/records/E-1', { body: { fields: { title: 'Fine', status: 'finished' } } })
    expectError(invalid, 400, 'invalid-field')
    expect(invalid.body.error.field).toBe('status')
    expect(invalid.body.error.message).toMatch(/status/)
    const unknown = await api('PATCH', '/workspaces/acme/records/E-1', { body: { fields: { colour: 'red' } } })
    expectError(unknown, 400, 'invalid-field')
    expect(unknown.body.error.field).toBe('colour')
    const badCreate = await api('POST', '/workspaces/acme/records', { body: { type: 'ticket', fields: { dueDate: 'tomorrow' } } })
    expectError(badCreate, 400, 'invalid-field')
    expect(badCreate.body.error.field).toBe('dueDate')
    expect((await api('GET', '/workspaces/acme/records/E-1')).body.fields.title).toBe('Target')
  })

  it('400 for malformed bodies, 404 for unknown records and routes, 405, 409, 415, 422', async () => {
    expectError(await api('PATCH', '/workspaces/acme/records/E-1', { body: '{"fields": ' }), 400, 'bad-request')
    expectError(await api('PATCH', '/workspaces/acme/records/E-1', { body: { title: 'x' } }), 400, 'bad-request')
    expectError(await api('PATCH', '/workspaces/acme/records/E-1', { body: {} }), 400, 'bad-request')
    expectError(await api('GET', '/workspaces/acme/records?limit=0'), 400, 'bad-request')
    // A query parameter is named as one (before: "the body: Unrecognized key"), and a filter on a field no record
    // type has is an error (before: 200 with no records).
    const unknownParameter = await api('GET', '/workspaces/acme/records?foo=1')
    expectError(unknownParameter, 400, 'bad-request')
    expect(unknownParameter.body.error.message).toMatch(/^the query: /)
    expectError(await api('GET', '/workspaces/acme/records?field.bogus=1'), 400, 'invalid-field')
    expectError(await api('GET', '/workspaces/acme/records?type=project&field.priority=high'), 400, 'invalid-field')
    expect((await api('GET', '/workspaces/acme/records?type=ticket&field.status=open')).status).toBe(200)
    expectError(await api('GET', '/workspaces/acme/records/.hidden'), 400, 'bad-request')
    expectError(await api('GET', '/workspaces/acme/records/nope'), 404, 'not-found')
    expectError(await api('PATCH', '/workspaces/acme/records/nope', { body: { fields: { status: 'done' } } }), 404, 'not-found')
    expectError(await api('POST', '/workspaces/acme/records/nope/archive'), 404, 'not-found')
    expectError(await api('GET', '/workspaces/acme/tickets'), 404, 'not-found')
    const wrongMethod = await api('DELETE', '/workspaces/acme/records/E-1')
    expectError(wrongMethod, 405, 'method-not-allowed')
    expect(wrongMethod.headers.get('allow')).toBe('GET, PATCH')
    expectError(await api('POST', '/workspaces/acme/records', { body: { type: 'ticket', id: 'E-1' } }), 409, 'conflict')
    expectError(
      await api('PATCH', '/workspaces/acme/records/E-1', { body: 'fields=1', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported-media-type',
    )
    expectError(await api('POST', '/workspaces/acme/records', { body: { type: 'sprint' } }), 422, 'unknown-type')
  })

  it('413 for a body over the limit', async () => {
    const answer = await api('PATCH', '/workspaces/acme/records/E-1', { body: { fields: { description: 'x'.repeat(300 * 1024) } } })
    expectError(answer, 413, 'payload-too-large')
    expect((await api('GET', '/workspaces/acme/records/E-1')).body.fields.description).toBe('')
  })
})

describe('changes through the API, seen by clients', () => {
  it('reach a live engine client at once and show in its history as the token user’s change', async () => {
    await api('POST', '/workspaces/acme/records', { body: { type: 'ticket', id: 'L-1', fields: { title: 'Live' } } })
    const store = await engineClient('ada', 'acme')
    const handle = await store.open('L-1')
    await waitFor(() => handle.get('title') === 'Live', 'the record at the client')

    const changed = await api('PATCH', '/workspaces/acme/records/L-1', { body: { fields: { status: 'done', title: 'Live and well' } } })
    expect(changed.status).toBe(200)
    await waitFor(() => handle.get('status') === 'done' && handle.get('title') === 'Live and well', 'the change at the client')
    await waitFor(
      () => handle.history().entries.some((e) => e.kind === 'change' && e.field === 'status' && e.author.userId === 'bot'),
      'the change in the history, attributed',
    )
    const entry = handle.history().entries.find((e) => e.kind === 'change' && e.field === 'status')!
    // status was never set: the entry's previous value is unset, as a client's write of it would record
    expect(entry).toMatchObject({ value: 'done', prev: null, author: { userId: 'bot', name: 'CI Bot' } })

    // and the other way: the client's edit is what the API reads next
    handle.set('priority', 'urgent')
    await handle.whenSaved()
    expect((await api('GET', '/workspaces/acme/records/L-1')).body.fields.priority).toBe('urgent')
  })
})

describe('text writes with the text they were read from', () => {
  it('keep what someone typed between the read and the write; 409 when they changed the same part', async () => {
    await api('POST', '/workspaces/acme/records', {
      body: { type: 'ticket', id: 'B-1', fields: { title: 'Login fails', description: 'Steps: open the app.\nOwner: tbd.' } },
    })
    const store = await engineClient('ada', 'acme')
    const handle = await store.open('B-1')
    await waitFor(() => handle.get('title') === 'Login fails', 'the record at the client')

    // A script reads the record; then Ada types into both fields, before the script writes.
    const read = (await api('GET', '/workspaces/acme/records/B-1')).body.fields
    handle.text('title').insert(0, 'Urgent: ')
    const description = handle.text('description')
    description.insert(description.length, ' Ada.'.replace(' ', '\n'))
    handle.flushHistory()
    await handle.flush()

    const write = (fields: Record<string, string>) =>
      api('PATCH', '/workspaces/acme/records/B-1', {
        body: { fields, base: Object.fromEntries(Object.keys(fields).map((f) => [f, read[f]])) },
      })
    const changed = await write({ title: 'Login fails on iOS', description: 'Steps: open the app on iOS.\nOwner: tbd.' })
    expect(changed.status).toBe(200)
    // Without "base" the write replaced her words: "Login fails on iOS", and her line gone.
    expect(changed.body.fields.title).toBe('Urgent: Login fails on iOS')
    expect(changed.body.fields.description).toBe('Steps: open the app on iOS.\nOwner: tbd.\nAda.')
    await waitFor(() => handle.get('title') === 'Urgent: Login fails on iOS', 'the merged title at the client')

    // The same part changed since it was read: 409, nothing written.
    expectError(await write({ title: 'Login broken' }), 409, 'conflict')
    expectError(await write({ description: 'Steps: open the app on Android.\nOwner: tbd.' }), 409, 'conflict')
    const after = (await api('GET', '/workspaces/acme/records/B-1')).body.fields
    expect(after).toMatchObject({ title: 'Urgent: Login fails on iOS', description: 'Steps: open the app on iOS.\nOwner: tbd.\nAda.' })

    // "base" names text fields the body writes.
    expectError(
      await api('PATCH', '/workspaces/acme/records/B-1', { body: { fields: { status: 'done' }, base: { status: 'open' } } }),
      400,
      'invalid-field',
    )
    expectError(
      await api('PATCH', '/workspaces/acme/records/B-1', { body: { fields: { status: 'done' }, base: { title: 'x' } } }),
      400,
      'bad-request',
    )
  })
})

describe('without auth', () => {
  it('takes writes as the anonymous user, as the socket does, but not from another origin’s web page', async () => {
    const open = await startRelay({ args: ['--storage', 'memory'] })
    try {
      const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
        callApi(open.url, method, `/api/v1${path}`, { body, headers })
      const created = await call('POST', '/workspaces/local/records', { type: 'ticket', id: 'A-1', fields: { title: 'Mine' } })
      expect(created.status).toBe(201)
      expect(created.body.createdBy).toBe('anonymous')
      const host = new URL(open.url).host
      const sameSite = await call('POST', '/workspaces/local/records/A-1/archive', undefined, { origin: `http://${host}` })
      expect(sameSite.status).toBe(200)
      const crossSite = await call('PATCH', '/workspaces/local/records/A-1', { archived: false }, { origin: 'https://evil.example' })
      expect(crossSite.status).toBe(403)
      expect(crossSite.body.error.code).toBe('forbidden')
      expect((await call('GET', '/workspaces/local/records/A-1', undefined, { origin: 'https://evil.example' })).body.archived).toBe(true)
    } finally {
      await open.stop()
      removeDir(open.dataDir)
    }
  })
})

describe('durability', () => {
  it('a change answered 200 is there after kill -9 right after the answer', async () => {
    const dataDir = makeTempDir()
    let victim = await startRelay({ dataDir, env: { JWT_SECRET: TEST_SECRET } })
    try {
      const write = (method: string, path: string, body: unknown) => callApi(victim.url, method, `/api/v1${path}`, { token: writer, body })
      expect((await write('POST', '/workspaces/acme/records', { type: 'ticket', id: 'K-1', fields: { title: 'Durable' } })).status).toBe(
        201,
      )
      await victim.kill()
      victim = await startRelay({ dataDir, env: { JWT_SECRET: TEST_SECRET } })
      for (const status of ['in_progress', 'done', 'cancelled']) {
        const answer = await write('PATCH', '/workspaces/acme/records/K-1', { fields: { status } })
        expect(answer.status).toBe(200)
        await victim.kill()
        victim = await startRelay({ dataDir, env: { JWT_SECRET: TEST_SECRET } })
        const read = await callApi(victim.url, 'GET', '/api/v1/workspaces/acme/records/K-1', { token: writer })
        expect(read.body.fields).toMatchObject({ title: 'Durable', status })
        expect(read.body.seq).toBe(answer.body.seq)
      }
    } finally {
      await victim.stop()
      removeDir(dataDir)
    }
  })
})
