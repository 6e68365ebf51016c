/**
 * Long text without spaces (a pasted URL as a title, a long label), in real
 * Chromium against a relay with JWT auth: it wraps inside the digest, the
 * list, the sync page and the sign-out dialog instead of widening the page, on a laptop and on a
 * phone; a wide label does not push the next filter onto its own row; and a
 * label longer than the limit is refused with a message, not cut short. A
 * title pasted past its 500 characters stops there with a message, and the
 * relay stores what the field shows.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signInWithToken, useWebApp } from './webApp.js'
import { TEST_SECRET, signToken } from '../helpers/tokens.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the long-text tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** How far the page is wider than the window (0: no sideways scrolling). */
const overflow = (page: Page): Promise<number> =>
  page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)

const URL_TITLE = `https://example.com/${'very-long-path-segment/'.repeat(12)}?query=${'x'.repeat(60)}`
const LONG_LABEL = 'customer-reported-regression-in-export-' // 39 characters, no spaces
const TOO_LONG = `${'label'.repeat(21)}x` // 106 characters

describe.skipIf(!available)('web app: long unbroken text', () => {
  const web = useWebApp({ relayEnv: { JWT_SECRET: TEST_SECRET } })

  it('wraps in the digest, the list and the sync page; a too-long label is refused with a message', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { longtext: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { longtext: 'write' }, { name: 'Bob Stone' })
    const adaContext = await web.context()
    let ada = await signInWithToken(adaContext, url, adaToken)
    const id = await createTicket(ada, 'Link to the report')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await ada.close()

    // Bob pastes a URL as the title and adds labels; one is too long and is refused, with a message.
    const bob = await signInWithToken(await web.context(), url, bobToken)
    await bob.goto(`${url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Link to the report')
    await bob.locator('#f-title').fill(URL_TITLE)
    await bob.locator('#f-labels').fill(`ios, ${TOO_LONG}, ${LONG_LABEL}`)
    await bob.locator('#f-labels').press('Enter')
    const problem = bob.getByTestId('label-problem')
    await problem.waitFor()
    expect(await problem.innerText()).toBe('A label can have at most 40 characters; this one has 106. Shorten it to add it.')
    expect(await bob.locator('#f-labels').inputValue()).toBe(TOO_LONG) // kept for the person to shorten, not cut
    expect(await bob.locator('#f-labels').getAttribute('aria-invalid')).toBe('true')
    expect(await bob.locator('.label-chips .chip').allInnerTexts()).toEqual([
      expect.stringMatching(/^ios/),
      expect.stringMatching(new RegExp(`^${LONG_LABEL}`)),
    ])
    await screenshot(bob, 'web-long-text-label-refused')
    // Shortened, it is added and the message goes.
    await bob.locator('#f-labels').fill('label-shortened')
    await bob.locator('#f-labels').press('Enter')
    await expect.poll(() => problem.count()).toBe(0)
    await expect.poll(() => bob.locator('.label-chips .chip').count()).toBe(3)
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    expect(await overflow(bob)).toBe(0)

    // Ada comes back: the digest tells of the URL title; nothing is wider than the window.
    ada = await signInWithToken(adaContext, url, adaToken)
    const digest = ada.getByTestId('digest')
    // The catch-up that brings the news runs after the sign-in and the relay's listing: slow on a loaded machine.
    await digest.waitFor({ timeout: 60_000 })
    await expect.poll(() => digest.innerText(), { timeout: 20_000 }).toContain('very-long-path-segment')
    await expect.poll(() => ada.getByTestId('label-filter').locator('option').count(), { timeout: 10_000 }).toBe(4)
    const checkFits = async (name: string): Promise<void> => {
      expect(await overflow(ada)).toBe(0)
      const width = await ada.evaluate(() => document.documentElement.clientWidth)
      const dismiss = await ada.getByRole('button', { name: /^Dismiss https:/ }).boundingBox()
      expect(dismiss).not.toBeNull()
      expect(dismiss!.x + dismiss!.width).toBeLessThanOrEqual(width)
      await screenshot(ada, name)
    }
    await checkFits('web-long-text-digest-laptop')
    // The label filter, with its long option, stays on the row of the others: "Sort" is not pushed down.
    const top = async (label: string): Promise<number> => (await ada.locator('.filter').filter({ hasText: label }).boundingBox())!.y
    expect(await top('Sort')).toBe(await top('Label'))

    await ada.setViewportSize({ width: 375, height: 740 })
    await checkFits('web-long-text-digest-phone')

    // The sync page lists the title in its table, wrapped.
    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.goto(`${url}#/t/${id}`)
    await ada.locator('#f-status').selectOption('done')
    await ada.goto(`${url}#/sync`)
    await ada.locator(`[data-testid="unsynced-row"][data-id="${id}"]`).waitFor()
    expect(await overflow(ada)).toBe(0)
    await screenshot(ada, 'web-long-text-sync-phone')
    // The sign-out dialog lists it, wrapped inside the dialog.
    await ada.getByRole('button', { name: 'Sign out' }).click()
    const dialog = ada.getByRole('dialog')
    await dialog.getByText('very-long-path-segment', { exact: false }).waitFor()
    expect(await dialog.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true)
    await screenshot(ada, 'web-long-text-signout-phone', { fullPage: false })
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await adaContext.setOffline(false)
  }, 120_000)

  it('a title pasted past its 500 characters stops there, says so, and is stored as shown', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { longtext: 'write' }, { name: 'Ada Lovelace' })
    const ada = await signInWithToken(await web.context(), url, adaToken)
    const id = await createTicket(ada, 'Crash report')
    await ada.keyboard.press('ControlOrMeta+A')
    // A stack trace pasted into the title: the record API refuses a title over 500 characters, so the field does too.
    const trace = Array.from({ length: 20 }, (_, i) => `at render${i} (app.js:${100 + i}:7)`).join(' ')
    expect(trace.length).toBeGreaterThan(500)
    await ada.keyboard.insertText(trace)
    await expect.poll(() => ada.locator('#f-title').inputValue()).toBe(trace.slice(0, 500))
    const limit = ada.getByTestId('text-limit')
    await limit.waitFor()
    expect(await limit.innerText()).toBe('Title can have at most 500 characters; what goes past that is not added.')
    expect(await ada.locator('#f-title').getAttribute('aria-describedby')).toContain('f-title-limit')
    await screenshot(ada, 'web-long-text-title-limit')
    // Made shorter, the message goes; what the relay stores is what the field showed.
    await ada.keyboard.press('Backspace')
    await expect.poll(() => limit.count()).toBe(0)
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    const stored = await fetch(`${url}/api/v1/workspaces/longtext/records/${id}`, { headers: { Authorization: `Bearer ${adaToken}` } })
    expect(((await stored.json()) as { fields: { title: string } }).fields.title).toBe(trace.slice(0, 499))
  }, 120_000)
})
