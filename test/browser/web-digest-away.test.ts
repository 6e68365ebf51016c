/**
 * The digest of what others changed, as a person reads it, in real Chromium
 * against a relay with JWT auth (so it can name people): its heading is true
 * whether the person was offline or had just closed the app.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signInWithToken, useWebApp } from './webApp.js'
import { TEST_SECRET, signToken } from '../helpers/tokens.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the digest wording tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** Opens ticket `id` and waits until its title shows. */
const openTicket = async (page: Page, url: string, id: string, title: string): Promise<void> => {
  await page.goto(`${url}#/t/${id}`)
  await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe(title)
}

describe.skipIf(!available)('web app: the digest in words', () => {
  const web = useWebApp({ relayEnv: { JWT_SECRET: TEST_SECRET } })

  it('after closing the app while online, the heading says "While you were away…", not "offline"', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { away: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { away: 'write' }, { name: 'Bob Stone' })
    const adaContext = await web.context()
    let ada = await signInWithToken(adaContext, url, adaToken)
    const id = await createTicket(ada, 'Invoices are late')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await ada.close() // online all along: she just closed the app

    const bob = await signInWithToken(await web.context(), url, bobToken)
    await openTicket(bob, url, id, 'Invoices are late')
    await bob.locator('#f-status').selectOption('in_progress')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    ada = await signInWithToken(adaContext, url, adaToken)
    const digest = ada.getByTestId('digest')
    await expect.poll(() => digest.getByRole('heading').innerText(), { timeout: 20_000 }).toBe('While you were away…')
    expect(await digest.innerText()).not.toContain('offline')
    expect(await digest.innerText()).toMatch(/Status: Open → In progress\s*— Bob Stone/)
    await screenshot(ada, 'web-digest-away-heading')
  }, 90_000)
})
