/**
 * Shared by the Chromium tests (test/browser/*.test.ts) and the record-store
 * benchmark (test/bench/recordStore.mjs): bundle the test page with Vite (in
 * memory, no files written), serve it over HTTP on 127.0.0.1, and launch the
 * system Chromium through playwright-core.
 */
import { existsSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where Debian (and CI) install Chromium. */
export const CHROMIUM_PATH = '/usr/bin/chromium'

/** Whether the system Chromium is installed. */
export const chromiumAvailable = () => existsSync(CHROMIUM_PATH)

const pageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../page')

/** Builds made so far, by whether minified. */
const built = new Map()

/**
 * Bundles test/browser/page (the engine from packages/engine/dist) in memory,
 * once per process and option. Resolves with a map of URL path → { type, body }.
 * Tests use the readable build; `minify` builds it as a production build of
 * the app is (`vite build`'s default), for benchmarks of what a user loads.
 */
export const buildTestPage = ({ minify = false } = {}) => {
  if (!built.has(minify)) built.set(minify, bundlePage(minify))
  return built.get(minify)
}

const bundlePage = async (minify) => {
  const { build } = await import('vite')
  const result = await build({
    root: pageDir,
    configFile: false,
    logLevel: 'warn',
    build: { write: false, target: 'es2022', minify, reportCompressedSize: false },
  })
  const files = new Map()
  for (const output of Array.isArray(result) ? result : [result]) {
    for (const item of output.output) {
      const body = item.type === 'chunk' ? item.code : item.source
      files.set(`/${item.fileName}`, { type: TYPES[path.extname(item.fileName)] ?? 'application/octet-stream', body })
    }
  }
  if (!files.has('/index.html')) throw new Error('building the test page produced no index.html')
  return files
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css' }

/** Serves the built page (from {@link buildTestPage}) on http://127.0.0.1:<port>/. */
export const servePage = (files) =>
  new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://x').pathname
      const file = files.get(pathname === '/' ? '/index.html' : pathname)
      if (file === undefined) {
        res.writeHead(404).end('not found')
        return
      }
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' })
      res.end(file.body)
    })
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      resolve({
        url: `http://127.0.0.1:${port}/`,
        close: () => new Promise((r) => server.close(() => r())),
      })
    })
  })

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Launches the system Chromium headless (a fresh, in-memory profile per context). */
export const launchChromium = async () => {
  const { chromium } = await import('playwright-core')
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, timeout: 20_000 })
}

/**
 * Launches Chromium on a profile directory that outlives the browser, so a
 * later launch starts cold (new browser process) on the same IndexedDB data.
 * Returns a BrowserContext; closing it ends the browser.
 */
export const launchChromiumProfile = async (userDataDir) => {
  const { chromium } = await import('playwright-core')
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, args: ARGS, timeout: 20_000 })
}

/** Opens the test page in `context` and waits for its API. */
export const openTestPage = async (context, pageUrl, params) => {
  const page = await context.newPage()
  page.on('pageerror', (error) => process.stderr.write(`[page error] ${error.message}\n`))
  await page.goto(`${pageUrl}?${new URLSearchParams(params)}`)
  await page.waitForFunction(() => 'concordTest' in window, undefined, { timeout: 10_000 })
  return page
}
