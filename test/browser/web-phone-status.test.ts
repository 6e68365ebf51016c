/**
 * The sync state on a phone and "Sync now" with the relay unreachable, in
 * real Chromium: the top bar's short status fits a 375 px screen whole (the
 * full sentence stays for screen readers), and "Sync now" says it is trying
 * to reach the relay, then reports the failed attempt at once — never
 * "sending" to a relay it has not reached. On a 1,200 px laptop a long
 * workspace name is cut (whole in its tooltip), and a status sentence that
 * would not fit beside it shows its short form, so the top bar stays one row.
 * A record's head keeps one line while someone types online, so the page
 * does not jump at every keystroke (a phone, a small laptop; a project on a
 * 360 px phone, where the word "Project" before its id is left to screen
 * readers).
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createProject, createStoredTicket, goOffline, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the phone status tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** What a frame painted while someone types: the title field's place, and whether changes were on their way. */
interface Frame {
  top: number
  pending: boolean
}

describe.skipIf(!available)('web app: sync state on a phone and a laptop', () => {
  const web = useWebApp()

  it('"Offline · 2 unsynced" fits at 375 px; "Sync now" offline tries, then says at once that the relay was not reached', async () => {
    const url = web.relay().url
    const ctx = await web.context({ width: 375, height: 740 })
    const page = await signIn(ctx, url, 'Ada Lovelace', 'phone-status')
    const id = await createStoredTicket(page, 'Read on the bus')

    await goOffline(ctx, page)
    await page.locator('#f-status').selectOption('in_progress')
    await page.locator('#f-priority').selectOption('high')
    const pill = page.getByTestId('sync-indicator')
    const short = pill.locator('.label.short')
    await expect.poll(() => short.innerText(), { timeout: 10_000 }).toBe('Offline · 2 unsynced')
    // Shown whole: the label is not cut (no ellipsis), and the pill is inside the screen.
    expect(await short.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true)
    const box = (await pill.boundingBox())!
    expect(box.x + box.width).toBeLessThanOrEqual(375)
    // On a 360 px phone too.
    await page.setViewportSize({ width: 360, height: 740 })
    expect(await short.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true)
    await page.setViewportSize({ width: 375, height: 740 })
    // Assistive tech gets the whole sentence.
    expect(await page.getByRole('link', { name: 'Offline — 2 changes saved on this device' }).count()).toBe(1)
    await screenshot(page, 'web-phone-status-offline', { fullPage: false })

    // "Sync now" with the relay unreachable: "trying to reach the relay", then the failure as soon as the attempt fails.
    await page.goto(`${url}#/sync`)
    await page.locator(`[data-testid="unsynced-row"][data-id="${id}"]`).waitFor()
    await page.evaluate(() => {
      const w = window as unknown as { __progress: string[] }
      w.__progress = []
      new MutationObserver(() => {
        const line = document.getElementById('sync-progress')?.textContent?.replace(/\s+/g, ' ').trim() ?? ''
        if (line !== '' && w.__progress[w.__progress.length - 1] !== line) w.__progress.push(line)
      }).observe(document.body, { subtree: true, childList: true, characterData: true })
    })
    const started = Date.now()
    await page.getByRole('button', { name: 'Sync now' }).click()
    const progress = page.locator('#sync-progress')
    await expect.poll(() => progress.innerText(), { timeout: 5_000 }).toMatch(/^Could not reach the relay\./)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(await progress.innerText()).toBe('Could not reach the relay. Changes stay on this device; Concord keeps trying.')
    const seen = await page.evaluate(() => (window as unknown as { __progress: string[] }).__progress)
    expect(seen).toEqual(['Trying to reach the relay…', 'Could not reach the relay. Changes stay on this device; Concord keeps trying.'])
    expect(await page.getByRole('button', { name: 'Sync now' }).isEnabled()).toBe(true)
    await screenshot(page, 'web-phone-status-sync-now-offline')

    // Back online, "Sync now" reaches the relay and sends.
    await ctx.setOffline(false)
    await page.getByRole('button', { name: 'Sync now' }).click()
    await expect.poll(() => pendingShown(page), { timeout: 20_000 }).toBe(0)
    await expect.poll(() => progress.innerText(), { timeout: 10_000 }).toBe('Everything is on the relay.')
  }, 90_000)

  it('the record does not jump while someone types online, on a phone or a small laptop: its head stays one line', async () => {
    const url = web.relay().url
    // A ticket on two phones and a small laptop; a project (whose head names it) on a 360 px phone.
    for (const [width, noun] of [
      [320, 'ticket'],
      [375, 'ticket'],
      [1024, 'ticket'],
      [360, 'project'],
    ] as const) {
      const ctx = await web.context({ width, height: 800 })
      const page = await signIn(ctx, url, 'Ada Lovelace', `typing-${width}`)
      if (noun === 'ticket') await createStoredTicket(page, 'Crash on start')
      else {
        await createProject(page, 'Checkout')
        await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
      }
      const input = noun === 'ticket' ? 'f-title' : 'p-name'
      // Where the name field is in every frame the browser paints while Ada types, each keystroke sent and acked.
      await page.evaluate(
        ({ noun, input }) => {
          const w = window as unknown as { __frames: Frame[] }
          w.__frames = []
          const sync = document.querySelector(`[data-testid="${noun}-sync"]`)!
          const title = document.getElementById(input)!
          const frame = (): void => {
            w.__frames.push({
              top: Math.round(title.getBoundingClientRect().top + window.scrollY),
              pending: sync.getAttribute('data-pending') !== '0',
            })
            requestAnimationFrame(frame)
          }
          requestAnimationFrame(frame)
        },
        { noun, input },
      )
      await page.locator(`#${input}`).click()
      await page.keyboard.press('End')
      await page.keyboard.type(' on iOS 18', { delay: 120 })
      await page.keyboard.press('Tab')
      await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
      const frames = await page.evaluate(() => (window as unknown as { __frames: Frame[] }).__frames)
      expect(new Set(frames.map((f) => f.pending))).toEqual(new Set([true, false])) // painted both ways
      // Before, a ticket's head took one to four lines ("Not yet on the server" and why): the form jumped 31–90 px;
      // a project's head at 360 px took two lines when synced ("Project #…", then "Synced" and "Archive") and one
      // while changes were on their way: 31 px. At 320 px the top bar's "Sync status" with its count of changes on
      // their way wrapped to two lines: 21 px.
      expect([...new Set(frames.map((f) => f.top))], `${noun} at ${width} px`).toHaveLength(1)
      expect(await page.getByTestId(`${noun}-sync`).innerText()).toContain('Synced')
      if (noun === 'project') await screenshot(page, 'web-phone-project-head')
    }
  }, 120_000)

  it('on a 1,200 px laptop a long workspace name is cut (whole in its tooltip), so the top bar stays one row', async () => {
    const url = web.relay().url
    const workspace = 'customer-success-emea-escalations-2026' // the longest a workspace name can be is 40
    const ctx = await web.context({ width: 1200, height: 800 })
    const page = await signIn(ctx, url, 'Ada Lovelace', workspace)
    await createStoredTicket(page, 'Renewal call notes')
    const name = page.locator('.topbar-inner .crumb-page')
    expect(await name.getAttribute('title')).toBe(`Workspace ${workspace}`)
    expect(await name.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true) // cut, with an ellipsis
    const top = async (selector: string): Promise<number> => (await page.locator(selector).boundingBox())!.y
    const brand = await top('.topbar-inner .brand')
    const pill = page.getByTestId('sync-indicator')
    expect(Math.abs((await pill.boundingBox())!.y + (await pill.boundingBox())!.height / 2 - (brand + 14))).toBeLessThan(10)
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBe(0)
    await screenshot(page, 'web-laptop-long-workspace', { fullPage: false })

    // Offline with several changes waiting, the status says so whole and the bar still holds one row.
    await goOffline(ctx, page)
    await page.locator('#f-status').selectOption('in_progress')
    await page.locator('#f-priority').selectOption('high')
    await page.locator('#f-title').fill('Renewal call notes, EMEA')
    await page.keyboard.press('Tab')
    // Its name: the words shown, then the whole sentence.
    await expect
      .poll(() => pill.getAttribute('aria-label'), { timeout: 10_000 })
      .toBe('Offline · 3 unsynced (Offline — 3 changes saved on this device)')
    await screenshot(page, 'web-laptop-offline-changes', { fullPage: false })
    const shown = pill.locator('.label:visible')
    expect(await shown.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true) // not cut
    expect(Math.abs((await pill.boundingBox())!.y + (await pill.boundingBox())!.height / 2 - (brand + 14))).toBeLessThan(10)
    const me = (await page.locator('.topbar-status .me').boundingBox())!
    expect(Math.abs(me.y + me.height / 2 - (brand + 14))).toBeLessThan(10)
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBe(0)
    // The short form only while the sentence would not fit: it shows "Offline · 3 unsynced", and the whole sentence again once synced.
    expect(await shown.innerText()).toBe('Offline · 3 unsynced')
    await ctx.setOffline(false)
    await expect.poll(() => pill.locator('.label:visible').innerText(), { timeout: 20_000 }).toBe('All changes synced')
  }, 90_000)
})

describe.skipIf(!available)('web app: a record while its changes are on their way to a slow relay', () => {
  const web = useWebApp({ relayArgs: ['--commit-delay-ms', '800'] })

  it('"Not yet on the server" and why take the head\'s one line, cut short: the form stays put, the card in its column', async () => {
    for (const width of [375, 1024, 1200]) {
      const ctx = await web.context({ width, height: 800 })
      const page = await signIn(ctx, web.relay().url, 'Ada Lovelace', `slow-${width}`)
      await createStoredTicket(page, 'Crash on start')
      const place = async () => {
        const title = (await page.locator('#f-title').boundingBox())!
        const card = (await page.locator('.ticket-card').boundingBox())!
        const side = (await page.locator('.ticket-side').boundingBox())!
        const beside = side.y < card.y + card.height // two columns
        return { top: title.y, overlap: beside && card.x + card.width > side.x }
      }
      const synced = await place()
      await page.locator('#f-title').click()
      await page.keyboard.press('End')
      await page.keyboard.type(' on iOS')
      // On its way, stored on this device: the longest the head's words get.
      await page.locator('[data-testid="ticket-sync"][data-saved="true"]:not([data-pending="0"])').waitFor()
      expect(await place(), `${width} px`).toEqual({ top: synced.top, overlap: false })
      const reason = page.getByTestId('ticket-sync').locator('.reason')
      expect(await reason.getAttribute('title')).toBe('Sent, waiting for the relay to confirm · saved on this device')
      await screenshot(page, `web-record-sending-${width}`, { fullPage: false })
      await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
      expect(await place(), `${width} px`).toEqual(synced)
    }
  }, 120_000)
})
