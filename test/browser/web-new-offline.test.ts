/**
 * A ticket created offline, in real Chromium: the list, the top bar and the
 * sync status page count and name the same changes ("New ticket: Assignee,
 * Description, Title" is three), and its page says once that the ticket is
 * new — not field by field, the assignee the app filled in included. Once
 * the relay has it, a later change is marked on its field again.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the new-offline tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app: a ticket created offline', () => {
  const web = useWebApp()

  it('list, top bar and sync page agree on its changes; its page says "new" once, not on each field', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    const page = await signIn(ctx, url, 'Ada Lovelace', 'new-offline')
    await ctx.setOffline(true)
    await page.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    const id = await createTicket(page, 'Written on the train')
    await page.locator('#f-description').fill('Steps: open, click, wait.')
    await page.keyboard.press('Tab')
    await page.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()

    // Its page: new as a whole, said once; no field marked, the assignee (filled in by the app) included.
    const head = page.getByTestId('ticket-sync')
    expect(await head.innerText()).toContain('Not yet on the server')
    expect(await head.innerText()).toContain('New ticket, not on the relay at all yet')
    expect(await page.locator('[data-testid^="unsynced-"]').count()).toBe(0)
    await screenshot(page, 'web-new-offline-page')

    // The list and the top bar: 3 changes.
    await page.goto(`${url}#/`)
    const badge = page.locator(`[data-testid="ticket-row"][data-id="${id}"]`).getByTestId('pending-badge')
    await expect.poll(() => badge.innerText(), { timeout: 10_000 }).toBe('3 changes unsynced')
    expect(await badge.getAttribute('title')).toBe('Not yet on the server: New ticket: Assignee, Description, Title')
    // The top bar's status: the whole sentence for assistive tech and in the offline banner; on screen its short
    // form, as the sentence does not fit the bar's row beside the navigation at 1,200 px.
    expect(await page.getByRole('link', { name: 'Offline — 3 changes saved on this device' }).count()).toBe(1)
    expect(await page.getByTestId('sync-indicator').innerText()).toBe('Offline · 3 unsynced')

    // The sync page names the same three, and that the ticket is new (no "Created" field).
    await page.goto(`${url}#/sync`)
    const row = page.locator(`[data-testid="unsynced-row"][data-id="${id}"]`)
    await row.waitFor()
    expect(await row.locator('td').nth(1).innerText()).toBe('New ticket: Assignee, Description, Title')
    expect(await page.getByTestId('sync-summary').innerText()).toContain('3 changes in 1 ticket')
    await screenshot(page, 'web-new-offline-sync')

    // On the relay, a later offline change is marked on its own field again.
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(page), { timeout: 20_000 }).toBe(0)
    await ctx.setOffline(true)
    await page.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await page.goto(`${url}#/t/${id}`)
    await page.locator('#f-priority').selectOption('high')
    await page.getByTestId('unsynced-priority').waitFor()
    expect(await page.locator('[data-testid^="unsynced-"]').count()).toBe(1)
    expect(await page.getByTestId('ticket-sync').innerText()).not.toContain('New ticket')
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(page), { timeout: 20_000 }).toBe(0)
  }, 90_000)
})
