/**
 * A record the relay rejected, as the lists and the sync page show it, in
 * real Chromium against a relay with a small document size limit: the
 * ticket's row says "rejected" in red like the top bar (the reason on hover
 * and in the row's accessible name), not the amber "unsynced" of work that
 * is merely waiting; the sync status page does not send the person to the
 * page they are on.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the rejected-row tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app: a rejected record in the lists', () => {
  const web = useWebApp({ relayArgs: ['--max-doc-bytes', '24576'] })

  it('the ticket row says rejected, in red like the top bar, with the reason; the sync page points below', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    const ada = await signIn(ctx, url, 'Ada Lovelace', 'rejected-row')
    const waiting = await createTicket(ada, 'Waiting ticket')
    await ada.keyboard.press('Tab')
    await ada.goto(`${url}#/`)
    const id = await createTicket(ada, 'Invoice export')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)

    // Too large for the relay: rejected for good.
    await ada.locator('#f-description').fill('Line items: '.repeat(2600))
    await ada.locator('#f-priority').selectOption('high')
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 15_000 }).toBe('Changes to 1 ticket rejected')
    // And one that merely waits: offline, another ticket's status.
    await ctx.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.goto(`${url}#/t/${waiting}`)
    await ada.locator('#f-status').selectOption('in_progress')
    await ada.goto(`${url}#/`)

    const row = ada.locator(`[data-testid="ticket-row"][data-id="${id}"]`)
    const badge = row.getByTestId('rejected-badge')
    await badge.waitFor({ timeout: 10_000 })
    expect(await row.getByTestId('pending-badge').count()).toBe(0)
    expect(await badge.innerText()).toMatch(/^2 changes rejected/) // then the reason, for screen readers only
    expect(await badge.getAttribute('title')).toMatch(/^Rejected by the relay: too large/)
    // A screen reader hears the reason as part of the row's link.
    expect(await row.evaluate((el) => el.textContent?.replace(/\s+/g, ' '))).toMatch(/2 changes rejected: Rejected by the relay: too large/)
    // Red, as the top bar says it when online; the waiting ticket's badge stays amber.
    const colours = (selector: string) =>
      ada.locator(selector).evaluate((el) => {
        const style = getComputedStyle(el)
        return { bg: style.backgroundColor, fg: style.color }
      })
    const rejected = await colours(`[data-testid="ticket-row"][data-id="${id}"] [data-testid="rejected-badge"]`)
    const pending = await colours(`[data-testid="ticket-row"][data-id="${waiting}"] [data-testid="pending-badge"]`)
    expect(rejected).toEqual({ bg: 'rgb(255, 241, 240)', fg: 'rgb(165, 42, 30)' }) // --warn-bg, --warn-fg
    expect(pending).not.toEqual(rejected)
    await screenshot(ada, 'web-rejected-row-list')

    await ctx.setOffline(false)
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 20_000 }).toBe('Changes to 1 ticket rejected')
    expect(await colours('[data-testid="sync-indicator"]')).toEqual(rejected)
    // The count beside "Sync status" is red too, not the amber of waiting work.
    expect(await ada.getByTestId('nav-count').getAttribute('class')).toContain('rejected')

    // The sync status page: the rejection is explained, and "retry or discard" points below, not to this page.
    await ada
      .getByRole('link', { name: /Sync status/ })
      .first()
      .click()
    const summary = ada.getByTestId('sync-summary')
    await expect.poll(() => summary.innerText(), { timeout: 10_000 }).toContain('retry or discard them below')
    expect(await summary.innerText()).not.toContain('Sync status page')
    expect(await ada.getByTestId('sync-indicator').getAttribute('title')).toContain('on the Sync status page')
    await screenshot(ada, 'web-rejected-row-sync-page')
  }, 120_000)
})
