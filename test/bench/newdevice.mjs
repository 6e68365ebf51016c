/**
 * New device: the app opened for the first time on a device, against a
 * relay (SQLite, pinned to one core) holding `records` tickets of the
 * workspace. Chromium with a fresh profile directory (real IndexedDB on
 * disk) opens the test page (the engine's browser bundle, see
 * test/browser/page, minified as a production build of the app is); the
 * page's first `RecordStore`, set up as the app does (`live: true`), fills
 * itself from the relay — `list-docs`, then pipelined
 * `fetch`es over the one socket, every record stored in IndexedDB.
 *
 * Timed in the page from navigation start (the app opening): until the list
 * shows its first screen (50 tickets by updatedAt — whichever have arrived),
 * and until every record is available offline (the catalog lists all of
 * them and is written, the records are stored — in the inbox database, as
 * none was opened; the records stored are counted to check).
 *
 * @module bench/newdevice
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { buildTestPage, chromiumAvailable, launchChromiumProfile, openTestPage, servePage } from '../browser/support/browserPage.mjs'
import { startChild } from './lib/processes.mjs'
import { WORKSPACE, seedRecords } from './lib/records.mjs'
import { median, withTimeout } from './lib/stats.mjs'
import { SERVER_HOST } from './fanout.mjs'

/**
 * Runs the case `repeats` times, each with a fresh relay (from the same
 * seeded data) and a fresh browser profile; medians of the figures.
 *
 * @returns {Promise<{ config, runs, median } | { skipped: string }>}
 */
export const newDevice = async ({ records = 10_000, repeats = 3, cores = null, log = () => {} }) => {
  if (!chromiumAvailable()) return { skipped: '/usr/bin/chromium is missing' }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-newdevice-'))
  const page = await servePage(await buildTestPage({ minify: true }))
  try {
    const template = path.join(dir, 'template')
    mkdirSync(template)
    await seedRecords(path.join(template, 'concord.sqlite'), records)
    const runs = []
    for (let rep = 0; rep < repeats; rep++) {
      const runDir = path.join(dir, `run-${rep}`)
      const profile = path.join(dir, `profile-${rep}`)
      cpSync(template, runDir, { recursive: true })
      const server = await startChild(SERVER_HOST, [JSON.stringify({ kind: 'concord', storage: 'sqlite', dataDir: runDir })], {
        core: cores?.server ?? null,
      })
      let context
      try {
        context = await launchChromiumProfile(profile)
        // The page starts the store at load (`newDevice`), as the app does: the harness's own round trips are not timed.
        const tab = await openTestPage(context, page.url, {
          relay: server.info.url,
          user: 'newcomer',
          workspace: WORKSPACE,
          auto: '0',
          newDevice: String(records),
        })
        const run = await withTimeout(
          tab.evaluate(() => window.concordNewDevice),
          120_000 + records * 20,
          `new device with ${records} records`,
        )
        if (run.total !== records || run.stored !== records)
          throw new Error(`new device: listed ${run.total}, stored ${run.stored} of ${records}`)
        runs.push(run)
        log(
          `  new device ${records} records #${rep + 1}: first screen ${run.firstScreenMs.toFixed(0)} ms, all offline ${run.allMs.toFixed(0)} ms (store created at ${run.startedMs.toFixed(0)} ms, online at ${run.onlineMs.toFixed(0)} ms, ready at ${run.readyMs.toFixed(0)} ms, listing asked at ${run.listing.askedMs.toFixed(0)} ms, its first page answered at ${run.listing.firstPageMs.toFixed(0)} ms and the last at ${run.listing.answeredMs.toFixed(0)} ms, first record listed at ${run.firstListedMs.toFixed(0)} ms)`,
        )
      } finally {
        await context?.close()
        await server.stop()
        rmSync(runDir, { recursive: true, force: true })
        rmSync(profile, { recursive: true, force: true })
      }
    }
    return {
      config: { records, repeats },
      runs,
      median: { firstScreenMs: median(runs.map((r) => r.firstScreenMs)), allMs: median(runs.map((r) => r.allMs)) },
    }
  } finally {
    await page.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
