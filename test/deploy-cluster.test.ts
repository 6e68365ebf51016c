/**
 * The deploy kit's multi-instance setup tried for real, without Docker:
 * `deploy/compose.cluster.yaml` is read for its services and each
 * instance's settings, and `deploy/nginx-cluster.conf` itself (only its
 * listening port and the instances' addresses replaced) runs in nginx on
 * loopback in front of three relay processes started with those settings
 * (the addresses of PostgreSQL and Redis, and the trusted proxy, replaced
 * by this machine's) on one PostgreSQL database and one Redis (real servers
 * this file starts).
 *
 * People connect through the balancer only: engine clients and a stock
 * y-websocket provider, with tokens, land on different instances (round
 * robin, no sticky sessions), edit one ticket and converge; an instance is
 * killed with SIGKILL, and its client comes back through the balancer on
 * another instance with the edit it made meanwhile, losing nothing that was
 * acked.
 *
 * Skipped, with the reason, when nginx, PostgreSQL or Redis is missing.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { parse } from 'yaml'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { SyncClient, type DocHandle } from '@concord/engine'
import { freePort, startNginx, which } from './helpers/nginx.js'
import { PostgresServer, postgresUnavailable } from './helpers/postgresServer.mjs'
import { RedisServer, redisUnavailable } from './helpers/redisServer.mjs'
import { makeTempDir, removeDir, repoRoot, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'

const nginx = which('nginx')
const unavailable =
  nginx === null
    ? 'deploy-cluster: skipped, nginx is not installed (apt-get install nginx-light)'
    : (postgresUnavailable() ?? redisUnavailable())
if (unavailable !== null) console.warn(unavailable)

interface ComposeService {
  environment?: Record<string, string>
  volumes?: string[]
  depends_on?: Record<string, unknown>
}

/** The services of deploy/compose.cluster.yaml (anchors and aliases resolved). */
const composeServices = (): Record<string, ComposeService> =>
  (parse(readFileSync(path.join(repoRoot, 'deploy', 'compose.cluster.yaml'), 'utf8')) as { services: Record<string, ComposeService> })
    .services

/** Compose's `${NAME:?message}` and `${NAME:-default}` in `value`, with `vars` as the environment. */
const interpolate = (value: string, vars: Record<string, string>): string =>
  value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_match, name: string, kind?: string, rest?: string) => {
    if (vars[name] !== undefined) return vars[name]
    if (kind === '-') return rest ?? ''
    throw new Error(`compose.cluster.yaml needs ${name}: ${rest ?? ''}`)
  })

/** Open WebSocket connections of the multiplexed endpoint on one instance, from its /metrics. */
const muxConnections = async (relay: RelayProcess): Promise<number> => {
  const text = await (await fetch(`${relay.url}/metrics`)).text()
  const match = /^concord_connections\{protocol="mux"\} (\S+)$/m.exec(text)
  return match ? Number(match[1]) : 0
}

describe.skipIf(unavailable !== null)(
  `three instances behind nginx (deploy/compose.cluster.yaml, deploy/nginx-cluster.conf)${unavailable ? `: ${unavailable}` : ''}`,
  () => {
    let pg: PostgresServer
    let redis: RedisServer
    const relays: RelayProcess[] = []
    const clients: SyncClient[] = []
    const providers: WebsocketProvider[] = []
    let stopNginx: (() => Promise<unknown>) | null = null
    let dir = ''
    let balancer = ''

    beforeAll(async () => {
      ;[pg, redis] = await Promise.all([PostgresServer.start(), RedisServer.start()])
      const services = composeServices()
      const names = Object.keys(services).filter((name) => /^relay-\d+$/.test(name))
      let site = readFileSync(path.join(repoRoot, 'deploy', 'nginx-cluster.conf'), 'utf8')
      // the balancer forwards to exactly the compose file's instances, and compose mounts this config into it
      expect(names).toHaveLength(3)
      expect([...site.matchAll(/^\s*server (relay-\d+):8787 /gm)].map((m) => m[1])).toEqual(names)
      expect(services.lb?.volumes).toContain('./nginx-cluster.conf:/etc/nginx/conf.d/default.conf:ro')
      expect(Object.keys(services.lb?.depends_on ?? {})).toEqual(names)

      const databaseUrl = await pg.createDatabase()
      for (const name of names) {
        const composed = Object.fromEntries(
          Object.entries(services[name].environment ?? {}).map(([key, value]) => [
            key,
            interpolate(String(value), { JWT_SECRET: TEST_SECRET, POSTGRES_PASSWORD: 'set-by-compose' }),
          ]),
        )
        // the instances reach PostgreSQL and Redis by their service names
        expect(new URL(composed.DATABASE_URL).hostname).toBe('db')
        expect(new URL(composed.REDIS_URL).hostname).toBe('cache')
        relays.push(
          await startRelay({ env: { ...composed, DATABASE_URL: databaseUrl, REDIS_URL: redis.url, TRUSTED_PROXIES: '127.0.0.1' } }),
        )
      }
      dir = makeTempDir('concord-nginx-cluster-')
      const port = await freePort()
      site = site.replace('listen 8787;', `listen 127.0.0.1:${port};`)
      names.forEach((name, i) => (site = site.replace(`server ${name}:8787 `, `server 127.0.0.1:${new URL(relays[i].url).port} `)))
      stopNginx = await startNginx(nginx!, dir, site)
      balancer = `127.0.0.1:${port}`
    }, 60_000)

    afterAll(async () => {
      for (const c of clients.splice(0)) c.close()
      for (const p of providers.splice(0)) p.destroy()
      await stopNginx?.()
      for (const relay of relays.splice(0)) {
        await relay.kill()
        removeDir(relay.dataDir)
      }
      if (dir) removeDir(dir)
      await Promise.all([pg?.destroy(), redis?.destroy()])
    })

    const client = async (userId: string): Promise<SyncClient> => {
      const token = await signToken(userId, { acme: 'write' }, { name: userId })
      const c = new SyncClient({
        url: `ws://${balancer}`,
        token,
        WebSocket: WebSocket as never,
        reconnect: { minDelay: 20, maxDelay: 200 },
      })
      clients.push(c)
      return c
    }
    const title = (h: DocHandle): string => h.doc.getText('title').toString()

    it(
      'people land on different instances, edit one ticket and converge; a killed instance’s client comes back through the balancer with what it wrote meanwhile',
      { timeout: 90_000 },
      async () => {
        const ready = await fetch(`http://${balancer}/readyz`)
        expect(ready.status).toBe(200)
        expect(await ready.json()).toMatchObject({ status: 'ready', storage: 'postgres' })

        // one after the other, so that round robin gives each their own instance
        const people: SyncClient[] = []
        const handles: DocHandle[] = []
        for (const userId of ['ada', 'bob', 'carol']) {
          const c = await client(userId)
          const handle = c.open('acme/T-1')
          await handle.synced
          people.push(c)
          handles.push(handle)
        }
        expect(await Promise.all(relays.map(muxConnections))).toEqual([1, 1, 1])
        const stock = new Y.Doc()
        const token = await signToken('dan', { acme: 'write' }, { name: 'dan' })
        providers.push(
          new WebsocketProvider(`ws://${balancer}`, 'acme/T-1', stock, {
            WebSocketPolyfill: WebSocket as never,
            disableBc: true,
            params: { token },
          }),
        )

        const [ada, bob, carol] = handles
        ada.doc.getText('title').insert(0, 'Checkout')
        await waitFor(() => handles.every((h) => title(h) === 'Checkout'), 'Ada’s words on every instance')
        bob.doc.getText('title').insert(8, ' times out')
        carol.doc.getText('title').insert(0, 'iOS: ')
        await waitFor(() => stock.getText('title').toString() === 'iOS: Checkout times out', 'the stock client to catch up')
        stock.getText('title').insert(0, '[web] ')
        await Promise.all(people.map((c) => c.flush()))
        await waitFor(
          () => new Set([...handles.map(title), stock.getText('title').toString()]).size === 1 && title(ada).includes('[web] '),
          'everyone, the stock client too, to hold the same title',
        )
        const acked = title(ada)
        expect(acked).toBe('[web] iOS: Checkout times out')

        // kill -9 one instance: exactly one of the three people was on it, and types while cut off
        const cutOff = new Set<number>()
        let pendingWhileCutOff = 0
        people.forEach((c, i) =>
          c.on('status', (status) => {
            if (status === 'online' || cutOff.has(i)) return
            cutOff.add(i)
            handles[i].doc.getText('title').insert(acked.length, ' (urgent)')
            pendingWhileCutOff = handles[i].pending
          }),
        )
        const [doomed] = relays.splice(0, 1)
        await doomed.kill()
        removeDir(doomed.dataDir)
        await waitFor(() => cutOff.size > 0, 'the killed instance’s client to notice')
        expect(cutOff.size).toBe(1)
        expect(pendingWhileCutOff).toBeGreaterThan(0)

        await waitFor(() => people.every((c) => c.status === 'online'), 'every client back online, through the balancer')
        expect((await Promise.all(relays.map(muxConnections))).reduce((a, b) => a + b, 0)).toBe(3)
        await Promise.all(people.map((c) => c.flush()))
        await waitFor(() => handles.every((h) => title(h) === `${acked} (urgent)`), 'convergence after the kill')
        expect(handles.every((h) => h.pending === 0)).toBe(true)
        await waitFor(() => stock.getText('title').toString() === `${acked} (urgent)`, 'the stock client too')
      },
    )
  },
)
