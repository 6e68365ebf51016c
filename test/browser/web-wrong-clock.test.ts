/**
 * The web app in Chromium with a laptop whose clock runs an hour ahead. Its
 * changes must not count as an hour later than they were: when its owner
 * sets a ticket's status offline and a colleague sets it a moment later,
 * the colleague's change is the later one and stands on both screens, and
 * both timelines say "just now" of both changes. The page learns the
 * offset from the relay and keeps it, so this holds after an offline
 * reload too.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { clockAhead, createStoredTicket, goOffline, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the wrong-clock tests — /usr/bin/chromium is missing (apt-get install chromium)')

const HOUR = 3_600_000

/** The "when" of the newest timeline entry by `who` that says `what`. */
const whenShown = async (page: Page, who: string, what: RegExp): Promise<string> => {
  for (const item of await page.getByTestId('history').locator('.timeline li').all()) {
    const by = await item.locator('.t-who').innerText()
    if (by === who && what.test(await item.locator('.t-what').innerText())) return item.locator('.t-when').innerText()
  }
  return ''
}

describe.skipIf(!available)('web app with a device clock an hour ahead', () => {
  const web = useWebApp()

  it("a change made offline on it does not win over a colleague's later one, after an offline reload too", async () => {
    const url = web.relay().url
    const [adaContext, bobContext] = await Promise.all([web.context(), web.context()])
    await clockAhead(bobContext, HOUR)
    const [ada, bob] = await Promise.all([signIn(adaContext, url, 'Ada Lovelace', 'clock'), signIn(bobContext, url, 'Bob Stone', 'clock')])
    expect((await bob.evaluate(() => Date.now())) - Date.now()).toBeGreaterThan(HOUR - 60_000) // the page sees the wrong clock
    const id = await createStoredTicket(ada, 'Export drops the last row')
    await bob.goto(`${url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Export drops the last row')

    // Bob on the train: offline, the tab reloaded, then his change.
    await goOffline(bobContext, bob)
    await bob.reload()
    await bob.locator('#f-status').waitFor()
    await bob.locator('#f-status').selectOption('done')
    await bob.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()
    const bobChanged = Date.now()
    // A moment later, Ada.
    await expect.poll(() => Date.now() - bobChanged, { timeout: 5_000 }).toBeGreaterThan(1_500)
    await ada.locator('#f-status').selectOption('cancelled')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)

    await bobContext.setOffline(false)
    await expect.poll(() => pendingShown(bob), { timeout: 20_000 }).toBe(0)
    for (const page of [ada, bob]) {
      await page.getByTestId('merge').first().waitFor({ timeout: 15_000 })
      // Ada's change is the later one: it stands on both screens, Bob's is offered back.
      await expect.poll(() => page.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('cancelled')
      await expect.poll(() => page.getByTestId('merge').first().innerText()).toMatch(/Done[\s\S]*Cancelled|Cancelled[\s\S]*Done/)
      // Both changes were made within the last minute, whichever screen tells it.
      await expect.poll(() => whenShown(page, 'Bob Stone', /status/i)).toBe('just now')
      await expect.poll(() => whenShown(page, 'Ada Lovelace', /status/i)).toBe('just now')
    }
    // Ada is still in the status field: on Bob's screen the tag beside its label ends within the field's column (her
    // name is cut short there, not drawn over the label of the priority next to it).
    await bob.getByTestId('editing-status').waitFor({ timeout: 10_000 })
    const [tag, field, next] = await Promise.all(
      [bob.getByTestId('editing-status'), bob.locator('#f-status'), bob.locator('#f-priority')].map((l) => l.boundingBox()),
    )
    expect(tag!.x + tag!.width).toBeLessThanOrEqual(field!.x + field!.width)
    expect(field!.x + field!.width).toBeLessThan(next!.x)
    await screenshot(bob, 'web-wrong-clock-bob')
    await screenshot(ada, 'web-wrong-clock-ada')
  }, 90_000)
})
