/**
 * The relay serving a web app folder: caching headers, the single-page-app
 * fallback, paths that try to leave the folder, and files that disappear
 * while they are being served (a rebuild of the app) — the relay answers
 * those requests with 404 or a cut connection and keeps running.
 */
import fs from 'node:fs'
import http from 'node:http'
import { syncBuiltinESMExports } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createRelay, type Relay } from '../src/Relay.js'
import { MemoryStorage } from '../src/storage/MemoryStorage.js'

let root: string
let relay: Relay

/** Writes a build of the app: index.html, sw.js and hashed assets named after `build`. */
const writeBuild = (build: string): void => {
  fs.mkdirSync(path.join(root, 'assets'), { recursive: true })
  fs.writeFileSync(path.join(root, 'index.html'), `<!doctype html><title>${build}</title>`)
  fs.writeFileSync(path.join(root, 'sw.js'), `// service worker ${build}`)
  fs.writeFileSync(path.join(root, 'assets', `index-${build}.js`), `console.log(${JSON.stringify(build)})`.repeat(2000))
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-web-'))
  writeBuild('one')
  relay = await createRelay({ storage: new MemoryStorage(), port: 0, webRoot: root, processMetrics: false })
})
afterAll(async () => {
  await relay.close()
  fs.rmSync(root, { recursive: true, force: true })
})
afterEach(() => {
  vi.restoreAllMocks()
  syncBuiltinESMExports()
})

/** A GET with the path sent as is (fetch would normalize `..`); resolves with the status, or `'cut'` when the connection broke. */
const rawGet = async (pathname: string): Promise<number | 'cut'> => (await rawGetBody(pathname)).status

/** {@link rawGet} with the body. */
const rawGetBody = (pathname: string): Promise<{ status: number | 'cut'; body: string }> =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: relay.port, path: pathname, agent: false }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', () => resolve({ status: 'cut', body }))
      res.on('aborted', () => resolve({ status: 'cut', body }))
    })
    req.on('error', () => resolve({ status: 'cut', body: '' }))
  })

describe('static files', () => {
  it('serves the app with caching headers: hashed assets immutable, the rest revalidated', async () => {
    const index = await fetch(`${relay.url}/`)
    expect(index.status).toBe(200)
    expect(index.headers.get('content-type')).toMatch(/^text\/html/)
    expect(index.headers.get('cache-control')).toBe('no-cache')
    expect(index.headers.get('x-content-type-options')).toBe('nosniff')
    const etag = index.headers.get('etag')
    expect(etag).toBeTruthy()
    expect((await fetch(`${relay.url}/`, { headers: { 'if-none-match': etag! } })).status).toBe(304)

    const asset = await fetch(`${relay.url}/assets/index-one.js`)
    expect(asset.status).toBe(200)
    expect(asset.headers.get('content-type')).toMatch(/javascript/)
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')

    const worker = await fetch(`${relay.url}/sw.js`)
    expect(worker.headers.get('cache-control')).toBe('no-cache')
  })

  it('answers paths without an extension with index.html, never marked immutable, and unknown files with 404', async () => {
    const route = await fetch(`${relay.url}/t/ticket-1`)
    expect(route.status).toBe(200)
    expect(await route.text()).toContain('<title>one</title>')
    const underAssets = await fetch(`${relay.url}/assets/no-such-route`)
    expect(underAssets.status).toBe(200)
    expect(underAssets.headers.get('cache-control')).toBe('no-cache')
    expect((await fetch(`${relay.url}/assets/index-gone.js`)).status).toBe(404)
  })

  it('never serves a file outside the folder', async () => {
    fs.writeFileSync(path.join(path.dirname(root), 'concord-outside.txt'), 'secret')
    for (const attempt of ['/../concord-outside.txt', '/%2e%2e/concord-outside.txt', '/assets/../../concord-outside.txt']) {
      expect(await rawGet(attempt), attempt).toBe(404)
    }
    // an encoded slash stays part of a name: no such file, so the app's index.html
    const encoded = await rawGetBody('/assets/..%2f..%2fconcord-outside.txt')
    expect(encoded.body).not.toContain('secret')
    fs.rmSync(path.join(path.dirname(root), 'concord-outside.txt'))
  })

  it('keeps running when a file disappears between its stat and its read', async () => {
    // remove the file at the moment it is opened: the race of a rebuild, made certain
    const open = fs.createReadStream
    vi.spyOn(fs, 'createReadStream').mockImplementation(((file: fs.PathLike, options?: unknown) => {
      fs.rmSync(file, { force: true })
      return open(file, options as Parameters<typeof open>[1])
    }) as typeof fs.createReadStream)
    syncBuiltinESMExports()
    const status = await rawGet('/assets/index-one.js')
    expect(['cut', 404]).toContain(status)
    vi.restoreAllMocks()
    syncBuiltinESMExports()
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200)
    writeBuild('one')
  })

  it('keeps serving while the app is rebuilt under it', async () => {
    const statuses = new Set<number | 'cut'>()
    let rebuilding = true
    const rebuilds = (async () => {
      for (let build = 0; build < 40; build++) {
        fs.rmSync(root, { recursive: true, force: true })
        writeBuild(`b${build % 2}`)
        await new Promise((resolve) => setImmediate(resolve))
      }
      rebuilding = false
    })()
    const requests = (async () => {
      while (rebuilding) {
        const results = await Promise.all(['/', '/assets/index-b0.js', '/assets/index-b1.js', '/sw.js', '/t/x'].map(rawGet))
        for (const status of results) statuses.add(status)
      }
    })()
    await Promise.all([rebuilds, requests])
    for (const status of statuses) expect([200, 304, 404, 'cut']).toContain(status)
    expect((await fetch(`${relay.url}/`)).status).toBe(200)
  })
})
