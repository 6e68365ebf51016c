/**
 * Signing out, in real Chromium: the dialog counts and names what waits by
 * record type ("2 tickets and 1 project").
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createProject, createTicket, screenshot, signIn, useWebApp } from './webApp.js'

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
})
