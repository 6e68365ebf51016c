/**
 * The sync status page in Chromium against a relay that refuses docs over
 * 24 KiB:
 *
 * - offline with nothing waiting, it says so (not "stored on the relay" as if online);
 * - after edits made offline, the progress line shows while the sync after
 *   reconnecting runs — no "Sync now" click needed;
 * - a change the relay rejects is worded from its error code ("too large")
 *   with the relay's reason below, and "Retry" sends it again (and it is
 *   rejected again, the row coming back).
 *
 * Screenshots go to test-artifacts/. Skipped only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the sync-page tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('sync status page', () => {
  const web = useWebApp({ relayArgs: ['--max-doc-bytes', '24576'] })

  it('offline truth, progress of the sync after reconnecting, rejection by error code and retry', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    const ada = await signIn(ctx, url, 'Ada Lovelace', 'sync-page')
    const id = await createTicket(ada, 'Invoice export')
    await ada.keyboard.press('Tab') // leaving the title ends the typing burst: its history entry is written now
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)

    // Offline, nothing waiting (once the relay has stored everything, the ticket's late writes too).
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await expect.poll(() => ada.getByTestId('sync-empty').count(), { timeout: 15_000 }).toBe(1)
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await ctx.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    expect(await ada.getByTestId('sync-empty').innerText()).toMatch(/before the connection was lost/)
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 10_000 }).toBe('Offline — nothing waiting to sync')

    // An edit offline, then back online with the sync page open: the progress line shows by itself.
    await ada.goto(`${url}#/t/${id}`)
    await ada.locator('#f-status').selectOption('in_progress')
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await ada.locator(`[data-testid="unsynced-row"][data-id="${id}"]`).waitFor()
    await expect
      .poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 10_000 })
      .toBe('Offline — 1 change saved on this device')
    expect(await ada.getByTestId('sync-summary').innerText()).toContain('1 change in 1 ticket is stored on this device')
    await ada.evaluate(() => {
      const w = window as unknown as { __progress: string[] }
      w.__progress = []
      new MutationObserver(() => {
        const line = document.getElementById('sync-progress')?.textContent?.trim() ?? ''
        if (document.querySelector('[data-testid="sync-progress"]') !== null && !w.__progress.includes(line)) w.__progress.push(line)
      }).observe(document.body, { subtree: true, childList: true, characterData: true })
    })
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    const progress = await ada.evaluate(() => (window as unknown as { __progress: string[] }).__progress)
    expect(progress.some((line) => /Connected again — sending 1 change/.test(line))).toBe(true)

    // Too large for the relay: rejected, worded from the code, the relay's reason below; retry sends it again.
    await ada.goto(`${url}#/t/${id}`)
    await ada.locator('#f-description').fill('Line items: '.repeat(2600))
    await ada.getByRole('link', { name: /Sync status/ }).click()
    const row = ada.locator(`[data-testid="unsynced-row"][data-id="${id}"]`)
    await expect
      .poll(() => row.getByTestId('unsynced-why').innerText(), { timeout: 15_000 })
      .toMatch(/^Rejected by the relay: too large\n?.+/)
    const retry = row.getByRole('button', { name: 'Retry sending Invoice export' })
    await retry.waitFor()
    await screenshot(ada, 'web-sync-page-rejected')
    await ada.evaluate(() => {
      const w = window as unknown as { __why: string[] }
      w.__why = []
      new MutationObserver(() => {
        const why = document.querySelector('[data-testid="unsynced-why"]')?.textContent?.trim() ?? ''
        if (w.__why[w.__why.length - 1] !== why) w.__why.push(why)
      }).observe(document.body, { subtree: true, childList: true, characterData: true })
    })
    await retry.click()
    // The error is cleared at once (the change is sent again); the relay rejects it again and the row says so again.
    await expect
      .poll(() => ada.evaluate(() => (window as unknown as { __why: string[] }).__why), { timeout: 15_000 })
      .toEqual([expect.not.stringMatching(/Rejected/), expect.stringMatching(/^Rejected by the relay: too large/)])
    await retry.waitFor({ timeout: 15_000 })
    expect(await pendingShown(ada)).toBeGreaterThan(0)
  }, 120_000)
})
