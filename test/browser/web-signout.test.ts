/**
 * Signing out, in real Chromium: the dialog counts and names what waits by
 * record type ("2 tickets and 1 project"); signing out in one tab signs the
 * person out in their other tabs too, which keep what they had not synced.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createProject, createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the sign-out tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app: signing out', () => {
  const web = useWebApp()

  it('the dialog counts what waits by type: "2 tickets and 1 project", each named', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    const page = await signIn(ctx, url, 'Eve Tan', 'signout-kinds')
    await ctx.setOffline(true)
    await page.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await createTicket(page, 'Written on the plane')
    await page.goto(`${url}#/`)
    await createTicket(page, 'Written on the train')
    await createProject(page, 'Travel')
    await page.locator('[data-testid="project-sync"][data-saved="true"]').waitFor()

    await page.getByRole('button', { name: 'Sign out' }).click()
    const waiting = page.getByTestId('signout-waiting')
    expect(await waiting.innerText()).toContain('2 tickets and 1 project have changes that are not on the server yet.')
    const dialog = await page.getByRole('dialog').innerText()
    for (const title of ['Written on the plane', 'Written on the train', 'Travel']) expect(dialog).toContain(title)
    await screenshot(page, 'web-signout-kinds')
    await page.getByRole('button', { name: 'Sign out and remove data' }).click()
    await page.getByRole('dialog').getByRole('alert').waitFor()
    expect(await page.getByRole('dialog').getByRole('alert').innerText()).toContain(
      '2 tickets and 1 project have changes that are not on the server yet.',
    )
    await page.getByRole('button', { name: 'Cancel' }).click()
  }, 60_000)

  it('"Sign out" in one tab signs the person out in the other, which keeps its unsynced edit on this device', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    const first = await signIn(ctx, url, 'Eve Tan', 'signout-tabs')
    const id = await createTicket(first, 'Shared between tabs')
    await first.keyboard.press('Tab')
    await expect.poll(() => pendingShown(first), { timeout: 10_000 }).toBe(0)
    // The second tab opens the app where the first is signed in: same person, same session.
    const second = await ctx.newPage()
    await second.goto(`${url}#/t/${id}`)
    await expect.poll(() => second.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Shared between tabs')

    // Offline, the second tab changes the ticket; then the first signs out, keeping the data.
    await ctx.setOffline(true)
    await second.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await second.locator('#f-priority').selectOption('high')
    await second.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()
    await first.goto(`${url}#/`)
    await first.getByRole('button', { name: 'Sign out' }).click()
    await first.getByRole('dialog').getByRole('button', { name: 'Sign out', exact: true }).click()
    await first.getByLabel('Your name').waitFor({ timeout: 15_000 })

    // The second tab is signed out too, and says why and that the change waits on this device.
    await second.getByLabel('Your name').waitFor({ timeout: 15_000 })
    expect(await second.getByRole('heading', { name: 'Tickets' }).count()).toBe(0)
    expect(await second.locator('#f-priority').count()).toBe(0) // nothing left to edit
    expect(await second.getByTestId('signin-message').innerText()).toBe(
      'You signed out in another tab. 1 change made here is not on the server yet: kept on this device, it is sent once you sign in again.',
    )
    await screenshot(second, 'web-signout-other-tab')
    // No session is left to come back to: a reload shows the sign-in page.
    await second.reload()
    await second.getByLabel('Your name').waitFor({ timeout: 15_000 })

    // Signed in again, the change is still here, and it syncs once the relay is reachable.
    await second.getByLabel('Your name').fill('Eve Tan')
    await second.getByLabel('Workspace').fill('signout-tabs')
    await second.getByRole('button', { name: 'Continue' }).click()
    const row = second.locator(`[data-testid="ticket-row"][data-id="${id}"]`)
    await expect.poll(() => row.innerText(), { timeout: 15_000 }).toContain('High')
    expect(await row.getByTestId('pending-badge').count()).toBe(1)
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(second), { timeout: 20_000 }).toBe(0)
  }, 90_000)
})
