/**
 * The relay process on PostgreSQL storage (`--storage postgres`, URL from
 * `DATABASE_URL`), against a real PostgreSQL 15 this file starts: everything
 * acked survives kill -9 of the relay, `/readyz` follows the database, and
 * bad or unreachable URLs stop the start with a clear message.
 *
 * Skipped, with a message, when the PostgreSQL binaries are missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { SyncClient, type DocHandle } from '@concord/engine'
import { PostgresServer, postgresUnavailable } from './helpers/postgresServer.mjs'
import { removeDir, runRelay, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'

const unavailable = postgresUnavailable()
if (unavailable !== null) console.warn(unavailable)

const text = (h: DocHandle): string => h.doc.getText('body').toString()

describe.skipIf(unavailable !== null)('relay on PostgreSQL', () => {
  let server: PostgresServer
  const clients: SyncClient[] = []
  const relays: RelayProcess[] = []

  beforeAll(async () => {
    server = await PostgresServer.start()
  })

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close()
    for (const relay of relays.splice(0)) {
      await relay.kill()
      removeDir(relay.dataDir)
    }
    await server?.destroy()
  })

  const client = (url: string): SyncClient => {
    const c = new SyncClient({ url, WebSocket: WebSocket as never, reconnect: { minDelay: 20, maxDelay: 200 } })
    clients.push(c)
    return c
  }

  /** Starts a relay on the database at `databaseUrl` (`args` added to its command line). */
  const relayOn = async (databaseUrl: string, args: string[] = []): Promise<RelayProcess> => {
    const relay = await startRelay({ args: ['--storage', 'postgres', ...args], env: { DATABASE_URL: databaseUrl } })
    relays.push(relay)
    return relay
  }

  it('everything acked before kill -9 is there after a restart', async () => {
    const databaseUrl = await server.createDatabase()
    const first = await relayOn(databaseUrl)
    const writer = client(first.wsUrl)
    const names = Array.from({ length: 5 }, (_, i) => `durable/pg${i}`)
    const handles = names.map((name) => writer.open(name))
    await Promise.all(handles.map((h) => h.synced))
    for (let round = 0; round < 10; round++) {
      handles.forEach((h, i) => h.doc.getText('body').insert(text(h).length, `${i}.${round} `))
      if (round % 3 === 0) await writer.flush()
    }
    await writer.flush()
    const acked = handles.map(text)
    // More edits in flight (maybe stored, maybe not) when the relay dies.
    handles.forEach((h) => h.doc.getText('body').insert(text(h).length, 'unacked '))
    await first.kill()
    writer.close()

    const second = await relayOn(databaseUrl)
    const reader = client(second.wsUrl)
    const loaded = names.map((name) => reader.open(name))
    await Promise.all(loaded.map((h) => h.synced))
    loaded.forEach((h, i) => expect(text(h).startsWith(acked[i])).toBe(true))
    expect(await (await fetch(`${second.url}/readyz`)).json()).toEqual({ status: 'ready', storage: 'postgres' })
  })

  it(
    '/readyz fails while PostgreSQL is down; edits made meanwhile are stored and acked once it is back, and the log says so',
    { timeout: 90_000 },
    async () => {
      const databaseUrl = await server.createDatabase()
      const relay = await relayOn(databaseUrl, ['--log-level', 'info'])
      const writer = client(relay.wsUrl)
      const h = writer.open('outage/doc')
      await h.synced
      h.doc.getText('body').insert(0, 'before ')
      await writer.flush()

      await server.stop()
      try {
        const response = await fetch(`${relay.url}/readyz`)
        expect(response.status).toBe(503)
        expect(await response.json()).toMatchObject({ status: 'storage unavailable' })
        h.doc.getText('body').insert(text(h).length, 'during ')
        // Nothing can be committed, so nothing is acked.
        await waitFor(() => h.pending > 0, 'the edit to be pending')
        // The HTTP API says storage is down, and to retry: before, 500 "internal", documented as a bug of the relay.
        const api = (method: string, path: string, body?: unknown) =>
          fetch(`${relay.url}/api/v1/workspaces/outage/${path}`, {
            method,
            ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
          })
        for (const answer of [
          await api('GET', 'records/never-loaded'),
          await api('GET', 'records'),
          await api('POST', 'records', { type: 'ticket', id: 'T-9', fields: { title: 'During' } }),
        ]) {
          expect(answer.status).toBe(503)
          expect(answer.headers.get('retry-after')).toBe('5')
          expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('unavailable')
        }
      } finally {
        await server.start()
      }
      await writer.flush()
      expect(h.pending).toBe(0)
      expect((await fetch(`${relay.url}/readyz`)).status).toBe(200)
      const logged = relay
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line))
      expect(
        logged.filter((line) => line.msg === 'storage commit failed; updates kept in memory and retried, nothing acked').length,
      ).toBeGreaterThan(0)
      const recovered = logged.filter((line) => /^storage commits succeed again/.test(line.msg))
      expect(recovered).toHaveLength(1)
      expect(recovered[0]).toMatchObject({ level: 30, failedCommits: expect.any(Number) })
      const reader = client(relay.wsUrl)
      const loaded = reader.open('outage/doc')
      await loaded.synced
      expect(text(loaded)).toBe('before during ')
    },
  )

  it('a missing, malformed or unreachable database URL stops the start with exit code 2 and says why', async () => {
    const missing = await runRelay(['--port', '0', '--storage', 'postgres'], { DATABASE_URL: '' })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--storage postgres needs --database-url or DATABASE_URL')
    const malformed = await runRelay(['--port', '0', '--storage', 'postgres', '--database-url', 'mysql://x'])
    expect(malformed.code).toBe(2)
    expect(malformed.stderr).toContain('--database-url must be a postgres:// URL')
    const unreachable = await runRelay(['--port', '0', '--storage', 'postgres'], {
      DATABASE_URL: 'postgres://concord:secret@127.0.0.1:1/concord',
    })
    expect(unreachable.code).toBe(2)
    expect(unreachable.stderr).toMatch(
      /cannot open PostgreSQL storage at postgres:\/\/concord:\*\*\*@127\.0\.0\.1:1\/concord: .*ECONNREFUSED/,
    )
    expect(unreachable.stderr).not.toContain('secret')
  })
})
