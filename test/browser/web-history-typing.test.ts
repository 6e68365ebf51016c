/**
 * The web app in Chromium: text typed into a ticket's title (an editor bound
 * straight to the field's Y.Text, not the record API) appears in the ticket's
 * history, attributed to the person who typed it — on their screen and on
 * the other person's. One typing burst is one entry; leaving the field ends
 * the burst at once, a pause ends it too.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available)
  console.warn('test/browser: skipping the web-app typing history test — /usr/bin/chromium is missing (apt-get install chromium)')

/** The history panel's timeline lines, newest first, as "who · what". */
const timeline = async (page: Page): Promise<string[]> =>
  page
    .getByTestId('history')
    .locator('.timeline li')
    .evaluateAll((items) =>
      items.map((li) => `${li.querySelector('.t-who')?.textContent?.trim()} · ${li.querySelector('.t-what')?.textContent?.trim()}`),
    )

describe.skipIf(!available)('web app: typing is in the history (Chromium)', () => {
  const web = useWebApp()

  it('typing into a ticket title shows one text-edit entry attributed to the typist, for both people', async () => {
    const [ada, bob] = await Promise.all([
      web.context().then((c) => signIn(c, web.relay().url, 'Ada Lovelace', 'typing')),
      web.context().then((c) => signIn(c, web.relay().url, 'Bob Stone', 'typing')),
    ])
    const id = await createTicket(ada, 'Payment page times out') // typed key by key into the title
    await ada.keyboard.press('Tab') // leaving the field ends the typing burst
    await expect.poll(() => timeline(ada), { timeout: 10_000 }).toContain('Ada Lovelace · added “Payment page times out” to title')
    // One burst, one entry: not one per keystroke.
    expect((await timeline(ada)).filter((line) => line.includes('to title'))).toHaveLength(1)

    // Bob opens it and types at the end of the title; he stays in the field: the pause ends his burst.
    await bob.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Payment page times out')
    await bob.locator('#f-title').click()
    await bob.keyboard.press('End')
    await bob.keyboard.type(' on Safari', { delay: 30 })
    for (const page of [bob, ada]) {
      await expect.poll(() => timeline(page), { timeout: 10_000 }).toContain('Bob Stone · added “ on Safari” to title')
      expect(await timeline(page)).toContain('Ada Lovelace · added “Payment page times out” to title')
    }
    await expect.poll(() => ada.locator('#f-title').inputValue()).toBe('Payment page times out on Safari')
    await screenshot(ada, 'web-history-typing')
  }, 90_000)
})
