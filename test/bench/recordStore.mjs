/**
 * Record-store benchmark in Chromium (real IndexedDB): with N ticket records
 * stored on the device, how long until the first screen of a list shows, and
 * how long to open one record — next to plain y-indexeddb, which has no
 * catalog and must open one database per record to list them.
 *
 *     import { recordStoreBench } from './recordStore.mjs'
 *     const figures = await recordStoreBench({ records: 10_000 })
 *
 * The records are stored once in a Chromium profile directory. Every
 * measured run then starts a **new browser process** on that profile (a cold
 * start of the app: IndexedDB's backing store opens from disk; the OS file
 * cache is warm, as on a laptop that used the app recently) and times in the
 * page with performance.now(). Needs /usr/bin/chromium and the built engine
 * (`npm run build`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { buildTestPage, chromiumAvailable, launchChromiumProfile, openTestPage, servePage } from '../browser/support/browserPage.mjs'

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const p95 = (values) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * 0.95))]

/**
 * @param {{ records?: number, samples?: number, runs?: number, plainList?: boolean, log?: (line: string) => void }} [options]
 *   records: ticket records stored locally (default 10 000); runs: cold starts
 *   timed for the first screen (default 5); samples: single-record opens per
 *   median (default 25); plainList: also time plain y-indexeddb opening every
 *   record to list them (default true; ~15 s at 10 000)
 * @returns {Promise<{
 *   records: number, seedMs: number, chromium: string,
 *   firstScreenMs: number, firstScreenRuns: number[],
 *   firstScreenIdbMs: number, firstScreenIdbRuns: number[],
 *   catalogReadyMs: number, filterMs: number,
 *   openMs: number, openP95Ms: number,
 *   plainOpenMs: number, plainOpenP95Ms: number,
 *   plainFirstScreenMs: number | null,
 * } | { skipped: string }>}
 *   firstScreenMs: median cold start → first 50 tickets by updatedAt
 *   (`store.query`, answered from the first-screen snapshot an earlier
 *   session left in localStorage); firstScreenIdbMs: the same without the
 *   snapshot (from the catalog's IndexedDB index); catalogReadyMs: cold start → whole catalog in memory;
 *   filterMs: a filtered, re-sorted list over the loaded catalog; openMs: open
 *   one record through the store and read it; plain*: the same with
 *   y-indexeddb's IndexeddbPersistence and no catalog.
 */
export async function recordStoreBench(options = {}) {
  const { records = 10_000, samples = 25, runs = 5, plainList = true, log = () => {} } = options
  if (!chromiumAvailable()) return { skipped: '/usr/bin/chromium is missing' }
  const server = await servePage(await buildTestPage({ minify: true }))
  const profile = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-profile-'))
  const params = { relay: 'ws://127.0.0.1:9', user: 'bench', workspace: 'bench', auto: '0' } // no relay: all local
  /** Runs `body(page)` in a freshly started browser on the profile. */
  const coldStart = async (body) => {
    const context = await launchChromiumProfile(profile)
    try {
      const page = await openTestPage(context, server.url, params)
      return await body(page, context)
    } finally {
      await context.close()
    }
  }
  try {
    log(`record store: storing ${records} tickets in IndexedDB…`)
    let chromium = ''
    const t0 = Date.now()
    await coldStart(async (page, context) => {
      chromium = context.browser()?.version() ?? ''
      await page.evaluate((n) => window.concordTest.seed(n), records)
    })
    const seedMs = Date.now() - t0

    log('record store: first screen after a cold start…')
    const screens = []
    const idbScreens = []
    for (let i = 0; i < runs; i++) {
      for (const [snapshot, into] of [
        [true, screens],
        [false, idbScreens],
      ]) {
        const screen = await coldStart((page) => page.evaluate((s) => window.concordTest.firstScreen(s), snapshot))
        if (screen.shown !== 50 || screen.total !== records || !screen.same) {
          throw new Error(`first screen: ${JSON.stringify(screen)}`)
        }
        into.push(screen)
      }
    }

    log('record store and plain y-indexeddb: open one record…')
    const { open, plainOpen } = await coldStart(async (page) => {
      await page.evaluate(() => window.concordTest.ready())
      const open = await page.evaluate(([n, k]) => window.concordTest.openOne(n, k), [records, samples])
      const plainOpen = await page.evaluate(([n, k]) => window.concordTest.openOnePlain(n, k), [records, samples])
      return { open, plainOpen }
    })

    let plainFirstScreenMs = null
    if (plainList) {
      log(`plain y-indexeddb: open all ${records} records to list the first screen…`)
      const plain = await coldStart((page) => page.evaluate((n) => window.concordTest.firstScreenPlain(n), records))
      if (plain.opened !== records) throw new Error(`plain y-indexeddb opened ${plain.opened} of ${records}`)
      plainFirstScreenMs = plain.ms
    }

    return {
      records,
      seedMs,
      chromium,
      firstScreenMs: median(screens.map((s) => s.ms)),
      firstScreenRuns: screens.map((s) => s.ms),
      firstScreenIdbMs: median(idbScreens.map((s) => s.ms)),
      firstScreenIdbRuns: idbScreens.map((s) => s.ms),
      catalogReadyMs: median([...screens, ...idbScreens].map((s) => s.readyMs)),
      filterMs: median([...screens, ...idbScreens].map((s) => s.filterMs)),
      openMs: median(open),
      openP95Ms: p95(open),
      plainOpenMs: median(plainOpen),
      plainOpenP95Ms: p95(plainOpen),
      plainFirstScreenMs,
    }
  } finally {
    await server.close()
    rmSync(profile, { recursive: true, force: true })
  }
}
