/**
 * The deploy kit (`deploy/`) tried for real where the tools exist on this
 * machine, skipped with the reason where they do not:
 *
 * - `deploy/nginx.conf` itself (only ports, names and certificate paths
 *   replaced) runs in nginx on loopback with a self-signed certificate in
 *   front of a relay process: `/readyz` over HTTPS, the redirect from HTTP,
 *   and a Yjs sync of two clients over `wss://`.
 * - `deploy/Caddyfile` is validated by `caddy validate`, and runs in Caddy
 *   (Debian's package) on loopback with a certificate from Caddy's local CA
 *   in front of a relay process: `/readyz` over HTTPS and a Yjs sync of two
 *   clients over `wss://`.
 * - `deploy/concord-relay.service` passes `systemd-analyze verify`.
 *
 * The container image has its own test (`deploy-docker.test.ts`).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import http from 'node:http'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { freePort, startNginx, which } from './helpers/nginx.js'
import { makeTempDir, removeDir, repoRoot, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'

const nginx = which('nginx')
const openssl = which('openssl')
const caddy = which('caddy')
const systemdAnalyze = which('systemd-analyze')
const deploy = path.join(repoRoot, 'deploy')
if (!nginx || !openssl) console.warn(`deploy-kit: nginx test skipped: ${!nginx ? 'nginx' : 'openssl'} is not installed`)
if (!caddy) console.warn('deploy-kit: Caddy test skipped: caddy is not installed (apt-get install caddy)')

const cleanups: Array<() => void | Promise<unknown>> = []
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/** GET over HTTP(S) trusting `ca`; resolves with the status, headers and body, or rejects on a connection error. */
const get = (url: string, ca?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> =>
  new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? https : http).get(url, { ca, agent: false }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    request.on('error', reject)
  })

/** Two stock y-websocket clients trusting `ca` sync a doc through the proxy `name` at `wss://localhost:<port>`. */
const syncsThrough = async (name: string, port: number, ca: string): Promise<void> => {
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca })
    }
  }
  const a = new Y.Doc()
  const b = new Y.Doc()
  const options = { WebSocketPolyfill: TrustingWebSocket as never, disableBc: true }
  const pa = new WebsocketProvider(`wss://localhost:${port}`, 'proxied/doc', a, options)
  const pb = new WebsocketProvider(`wss://localhost:${port}`, 'proxied/doc', b, options)
  cleanups.push(() => {
    pa.destroy()
    pb.destroy()
  })
  a.getText('t').insert(0, `through ${name}`)
  await waitFor(() => b.getText('t').toString() === `through ${name}`, `the change to reach b through ${name} over wss://`, 15_000)
}

describe.skipIf(!nginx || !openssl)(
  `nginx in front of the relay (deploy/nginx.conf)${!nginx || !openssl ? `: skipped, ${!nginx ? 'nginx' : 'openssl'} is not installed (apt-get install nginx-light openssl)` : ''}`,
  () => {
    it('serves /readyz over TLS, redirects HTTP, and syncs two clients over wss://', { timeout: 60_000 }, async () => {
      const dir = makeTempDir('concord-nginx-')
      cleanups.push(() => removeDir(dir))
      execFileSync(
        openssl!,
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
          '-keyout',
          path.join(dir, 'key.pem'),
          '-out',
          path.join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      )
      const ca = readFileSync(path.join(dir, 'cert.pem'), 'utf8')

      const relay: RelayProcess = await startRelay({ args: ['--storage', 'memory', '--trusted-proxies', '127.0.0.1'] })
      cleanups.push(() => relay.stop())
      const httpPort = await freePort()
      let httpsPort = await freePort()
      while (httpsPort === httpPort) httpsPort = await freePort()
      const site = readFileSync(path.join(deploy, 'nginx.conf'), 'utf8')
        .replace(/^\s*listen \[::\]:.*$/gm, '')
        .replace('listen 80;', `listen 127.0.0.1:${httpPort};`)
        .replace('listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`)
        .replace('server 127.0.0.1:8787;', `server 127.0.0.1:${new URL(relay.url).port};`)
        .replace(/\/etc\/letsencrypt\/live\/relay\.example\.com\/fullchain\.pem/, path.join(dir, 'cert.pem'))
        .replace(/\/etc\/letsencrypt\/live\/relay\.example\.com\/privkey\.pem/, path.join(dir, 'key.pem'))
        .replaceAll('relay.example.com', 'localhost')
      cleanups.push(await startNginx(nginx!, dir, site))

      const base = `https://localhost:${httpsPort}`
      const ready = await get(`${base}/readyz`, ca)
      expect(ready.status).toBe(200)
      expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready' })
      expect(ready.headers['strict-transport-security']).toBe('max-age=31536000')

      const redirect = await get(`http://127.0.0.1:${httpPort}/readyz`)
      expect(redirect.status).toBe(301)
      expect(redirect.headers.location).toBe(`https://127.0.0.1/readyz`)

      await syncsThrough('nginx', httpsPort, ca)
    })
  },
)

describe.skipIf(!caddy)(
  `Caddy in front of the relay (deploy/Caddyfile)${caddy ? '' : ': skipped, caddy is not installed (apt-get install caddy)'}`,
  () => {
    it('is a valid Caddy configuration', () => {
      const result = spawnSync(caddy!, ['validate', '--adapter', 'caddyfile', '--config', path.join(deploy, 'Caddyfile')], {
        encoding: 'utf8',
        env: { ...process.env, HOME: makeTempDir('concord-caddy-home-') },
      })
      expect(result.status, result.stderr).toBe(0)
    })

    it('serves /readyz over TLS and syncs two clients over wss://', { timeout: 60_000 }, async () => {
      const dir = makeTempDir('concord-caddy-')
      cleanups.push(() => removeDir(dir))
      const relay: RelayProcess = await startRelay({ args: ['--storage', 'memory', '--trusted-proxies', '127.0.0.1'] })
      cleanups.push(() => relay.stop())
      const httpPort = await freePort()
      let httpsPort = await freePort()
      while (httpsPort === httpPort) httpsPort = await freePort()
      // The example itself, for localhost on free ports, with a certificate from Caddy's own local CA instead of a public one.
      const site = readFileSync(path.join(deploy, 'Caddyfile'), 'utf8')
        .replace('relay.example.com {', `localhost:${httpsPort} {`)
        .replace('127.0.0.1:8787', `127.0.0.1:${new URL(relay.url).port}`)
      expect(site).toContain(`localhost:${httpsPort} {`)
      const global = `{
	admin off
	local_certs
	skip_install_trust
	storage file_system ${path.join(dir, 'data')}
	http_port ${httpPort}
	https_port ${httpsPort}
}
`
      writeFileSync(path.join(dir, 'Caddyfile'), global + site)
      const server: ChildProcess = spawn(caddy!, ['run', '--adapter', 'caddyfile', '--config', path.join(dir, 'Caddyfile')], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, HOME: dir, XDG_DATA_HOME: path.join(dir, 'xdg-data'), XDG_CONFIG_HOME: path.join(dir, 'xdg-config') },
      })
      let caddyLog = ''
      server.stderr!.on('data', (chunk: Buffer) => (caddyLog += chunk.toString()))
      const exited = new Promise((resolve) => server.once('exit', resolve))
      cleanups.push(() => {
        if (server.exitCode === null) server.kill('SIGTERM')
        return exited
      })
      // Caddy makes its local CA and the site's certificate at start: wait for the root, then for an answer over TLS
      const root = path.join(dir, 'data', 'pki', 'authorities', 'local', 'root.crt')
      await waitFor(() => existsSync(root) || server.exitCode !== null, 'caddy to create its local CA', 30_000)
      expect(server.exitCode, caddyLog).toBeNull()
      const ca = readFileSync(root, 'utf8')
      const base = `https://localhost:${httpsPort}`
      // the site's certificate follows the CA a moment later: retry until the TLS handshake succeeds
      let ready: Awaited<ReturnType<typeof get>> | null = null
      for (const deadline = Date.now() + 30_000; ready === null;) {
        ready = await get(`${base}/readyz`, ca).catch((error: unknown) => {
          if (Date.now() > deadline) throw new Error(`caddy never answered over TLS: ${String(error)}\n${caddyLog.slice(-1000)}`)
          return new Promise<null>((resolve) => setTimeout(() => resolve(null), 100))
        })
      }
      expect(ready!.status).toBe(200)
      expect(JSON.parse(ready!.body)).toMatchObject({ status: 'ready' })

      await syncsThrough('caddy', httpsPort, ca)
    })
  },
)

describe.skipIf(!systemdAnalyze)(
  `the systemd unit (deploy/concord-relay.service)${systemdAnalyze ? '' : ': skipped, systemd-analyze is not installed'}`,
  () => {
    it('passes systemd-analyze verify', () => {
      const dir = makeTempDir('concord-unit-')
      cleanups.push(() => removeDir(dir))
      // the unit names /usr/bin/node; where node lives elsewhere, verify the unit with this node
      const unit = readFileSync(path.join(deploy, 'concord-relay.service'), 'utf8').replace(
        '/usr/bin/node',
        existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath,
      )
      const file = path.join(dir, 'concord-relay.service')
      writeFileSync(file, unit)
      const result = spawnSync(systemdAnalyze!, ['verify', file], { encoding: 'utf8' })
      expect(result.status, result.stderr).toBe(0)
      expect(result.stderr).not.toMatch(/Unknown key|Unknown section|Failed to parse/i)
    })
  },
)
