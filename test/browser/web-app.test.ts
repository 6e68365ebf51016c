/**
 * The web app (apps/web/dist, served by a real relay process) in real
 * Chromium, two people in two browser contexts:
 *
 * - they co-edit one ticket's title: both end with the same text and see
 *   each other in the ticket;
 * - one goes offline, edits, reloads while offline (the edits and the
 *   pending count are still there), comes back: pending reaches 0 and the
 *   other sees the changes.
 *
 * - cold start with the network off after one online visit: the service
 *   worker serves the app shell and the list shows the cached tickets.
 *
 * Screenshots of each final state go to test-artifacts/ (git-ignored).
 * Skipped (with a message) only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, indicatorHistory, pendingShown, screenshot, signIn, useWebApp, watchIndicator } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the web-app tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app in Chromium', () => {
  const web = useWebApp()
  const context = web.context

  it('two people co-edit one title: identical final text, each sees the other', async () => {
    const [ada, bob] = await Promise.all([
      context().then((c) => signIn(c, web.relay().url, 'Ada Lovelace', 'coedit')),
      context().then((c) => signIn(c, web.relay().url, 'Bob Stone', 'coedit')),
    ])
    const id = await createTicket(ada, 'Login fails')
    await ada.getByTestId('ticket-sync').and(ada.locator('[data-pending="0"]')).waitFor({ timeout: 10_000 })

    // Bob sees it in his list and opens it.
    await bob.locator(`[data-testid="ticket-row"][data-id="${id}"]`).click()
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Login fails')

    // Both type at once: Ada at the end, Bob at the start.
    await ada.locator('#f-title').click()
    await ada.keyboard.press('End')
    await bob.locator('#f-title').click()
    await bob.keyboard.press('Home')
    await Promise.all([ada.keyboard.type(' on Safari', { delay: 15 }), bob.keyboard.type('Urgent: ', { delay: 15 })])

    const expected = 'Urgent: Login fails on Safari'
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(expected)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(expected)

    // Presence: each sees the other in the ticket, editing the title.
    await ada.locator('[data-testid="viewer"][data-name="Bob Stone"]').waitFor({ timeout: 10_000 })
    await bob.locator('[data-testid="viewer"][data-name="Ada Lovelace"]').waitFor({ timeout: 10_000 })
    await ada.getByTestId('editing-title').waitFor({ timeout: 10_000 })
    await bob.getByTestId('editing-title').waitFor({ timeout: 10_000 })
    // …and the other's caret drawn in the title field.
    await bob.locator('[data-testid="remote-caret"][data-name="Ada Lovelace"]').waitFor({ timeout: 10_000 })
    await ada.locator('[data-testid="remote-caret"][data-name="Bob Stone"]').waitFor({ timeout: 10_000 })

    // Everything reaches the relay.
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    // Ada selects "fails": Bob sees the word highlighted in her colour, over the word.
    await ada.locator('#f-title').evaluate((field: HTMLInputElement) => {
      const start = field.value.indexOf('fails')
      field.setSelectionRange(start, start + 'fails'.length)
      field.dispatchEvent(new Event('select'))
    })
    const highlight = bob.locator('[data-testid="remote-selection"][data-name="Ada Lovelace"]')
    await highlight.waitFor({ timeout: 10_000 })
    const box = await highlight.boundingBox()
    const word = await bob.locator('#f-title').evaluate((field: HTMLInputElement) => {
      const probe = document.createElement('span')
      const style = getComputedStyle(field)
      probe.style.font = style.font
      probe.style.whiteSpace = 'pre'
      probe.textContent = 'fails'
      document.body.appendChild(probe)
      const width = probe.getBoundingClientRect().width
      probe.remove()
      return width
    })
    expect(box).not.toBeNull()
    expect(Math.abs(box!.width - word)).toBeLessThan(2)
    await screenshot(ada, 'web-coedit-ada')
    await screenshot(bob, 'web-coedit-bob')

    // Ada's caret near the right edge of Bob's title field: her name tag goes to its left, whole, inside the field.
    const filler = await bob.locator('#f-title').evaluate((field: HTMLInputElement) => {
      const style = getComputedStyle(field)
      const context = document.createElement('canvas').getContext('2d')!
      context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`
      const room = field.clientWidth - parseFloat(style.paddingRight) - 60
      let text = ''
      while (context.measureText(`${field.value} ${text}x`).width + parseFloat(style.paddingLeft) < room) text += 'x'
      return ` ${text}`
    })
    await ada.locator('#f-title').click()
    await ada.keyboard.press('End')
    await ada.keyboard.type(filler)
    const caret = bob.locator('[data-testid="remote-caret"][data-name="Ada Lovelace"]')
    const tag = caret.locator('.remote-caret-name')
    await expect.poll(() => tag.getAttribute('class'), { timeout: 10_000 }).toMatch(/\bflip\b/)
    const [tagBox, fieldBox] = await Promise.all([tag.boundingBox(), bob.locator('#f-title').boundingBox()])
    expect(tagBox!.x + tagBox!.width).toBeLessThanOrEqual(fieldBox!.x + fieldBox!.width)
    await screenshot(bob, 'web-coedit-caret-at-edge')
    // Typing on, past what Bob's field shows: her caret is out of his view, and not drawn outside the field.
    await ada.keyboard.type(' and on Firefox for Android tablets in landscape')
    await expect.poll(() => caret.count(), { timeout: 10_000 }).toBe(0)
    await bob.getByTestId('editing-title').waitFor()

    // Ada in the due date: on Bob's screen the tag beside its label stays on the label's line, and the field stays on
    // the row of the project field next to it (the tag used to wrap and push the field a row down).
    const before = await bob.locator('#f-due').boundingBox()
    await ada.locator('#f-due').focus()
    await bob.getByTestId('editing-dueDate').waitFor({ timeout: 10_000 })
    expect((await bob.locator('#f-due').boundingBox())!.y).toBe(before!.y)
    expect(await bob.getByTestId('editing-dueDate').getAttribute('title')).toBe('Ada Lovelace is editing')
    await screenshot(bob, 'web-coedit-due-date-tag')
    // Ada left the title: her typing's entry is written, and the title keeps every word both typed, on both screens
    // (before, hers left it: her first words had no entry when Bob typed in front of them, and the two collided).
    const everything = `Urgent: Login fails on Safari${filler} and on Firefox for Android tablets in landscape`
    for (const page of [ada, bob]) await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(everything)
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    expect(await bob.getByTestId('text-merge').count()).toBe(0)

    // After a reload the indicator checks this device's own changes first, and never says synced before that.
    await watchIndicator(ada)
    await ada.reload()
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 15_000 }).toBe('All changes synced')
    const states = await indicatorHistory(ada)
    expect(states[0]).toEqual({ ready: 'false', label: 'Checking this device…', short: 'Checking…' })
    expect(states.filter((s) => s.ready !== 'true').every((s) => !/synced/i.test(`${s.label} ${s.short}`))).toBe(true)
  }, 60_000)

  it('offline edits survive a reload, show as pending, and reach the other person on reconnect', async () => {
    const adaContext = await context()
    const [ada, bob] = await Promise.all([
      signIn(adaContext, web.relay().url, 'Ada Lovelace', 'train'),
      context().then((c) => signIn(c, web.relay().url, 'Bob Stone', 'train')),
    ])
    const ids: string[] = []
    const titles = ['Checkout button misaligned', 'Search is slow', 'Typo on pricing page']
    for (const title of titles) {
      await ada.goto(`${web.relay().url}#/`)
      ids.push(await createTicket(ada, title))
    }
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    // Bob has the tickets (the catalog fills as they sync to him once opened).
    for (const id of ids) {
      await bob.goto(`${web.relay().url}#/t/${id}`)
      await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).not.toBe('')
    }
    await bob.goto(`${web.relay().url}#/`)

    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })

    // Three tickets edited offline.
    for (const [i, id] of ids.entries()) {
      await ada.goto(`${web.relay().url}#/t/${id}`)
      await ada.locator('#f-status').waitFor()
      await ada.locator('#f-status').selectOption(i === 0 ? 'done' : 'in_progress')
      await ada.locator('#f-title').click()
      await ada.keyboard.press('End')
      await ada.keyboard.type(' (offline)')
      await ada.keyboard.press('Tab') // leaving the title ends the typing burst: its history entry is written now
      await ada.getByTestId('unsynced-status').waitFor()
      await ada.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()
      expect(await ada.getByTestId('ticket-sync').innerText()).toContain('saved on this device')
    }
    const before = await pendingShown(ada)
    expect(before).toBeGreaterThan(0)

    // Reload with the network still off: the service worker serves the app, IndexedDB the edits.
    await ada.reload()
    await ada.locator('#f-title').waitFor({ timeout: 15_000 })
    expect(await ada.locator('#f-title').inputValue()).toMatch(/\(offline\)$/)
    await ada.getByTestId('unsynced-status').waitFor()
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(before)
    await ada.goto(`${web.relay().url}#/`)
    await expect.poll(() => ada.getByTestId('pending-badge').count(), { timeout: 10_000 }).toBe(3)
    await screenshot(ada, 'web-offline-list')

    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    await expect.poll(() => ada.getByTestId('pending-badge').count(), { timeout: 10_000 }).toBe(0)

    // Bob sees the changes to all three tickets.
    for (const [i, id] of ids.entries()) {
      await bob.goto(`${web.relay().url}#/`)
      await bob.locator(`[data-testid="ticket-row"][data-id="${id}"]`).click()
      await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe(`${titles[i]} (offline)`)
      await expect.poll(() => bob.locator('#f-status').inputValue(), { timeout: 15_000 }).toBe(i === 0 ? 'done' : 'in_progress')
    }
    await screenshot(ada, 'web-offline-reconnected-ada')
    await screenshot(bob, 'web-offline-reconnected-bob')
  }, 90_000)

  it('cold start offline: the service worker serves the app and the cached tickets are listed', async () => {
    const ctx = await context()
    const page = await signIn(ctx, web.relay().url, 'Dana Reyes', 'cold')
    await createTicket(page, 'Printer on floor 3 jams')
    await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready
    })
    await page.close()

    await ctx.setOffline(true)
    const cold = await ctx.newPage()
    await cold.goto(web.relay().url)
    await cold.getByRole('heading', { name: 'Tickets' }).waitFor({ timeout: 15_000 })
    await cold.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await expect.poll(() => cold.getByTestId('ticket-row').first().innerText(), { timeout: 10_000 }).toContain('Printer on floor 3 jams')
    await screenshot(cold, 'web-cold-start-offline')
  }, 60_000)
})
