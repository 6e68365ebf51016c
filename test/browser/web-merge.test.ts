/**
 * The web app in Chromium: both people set the same ticket's status while
 * one of them is offline. After the reconnect both see one merge in the
 * ticket's history with both values and the later change standing (whatever
 * Yjs's client ids would have kept), the offline person gets a "while you
 * were offline…" digest on the ticket list, and one click on "Restore" brings the other value
 * back for everyone. Also looks at the sync status page while offline and
 * at the app on a narrow (phone) screen in dark mode.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createStoredTicket, createTicket, goOffline, pendingShown, screenshot, signIn, useWebApp, viewerNames } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the web-app merge tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app merges in Chromium', () => {
  const web = useWebApp()
  const context = web.context

  it('concurrent status changes show as a merge with both values; restore brings the other back', async () => {
    const adaContext = await context()
    const [ada, bob] = await Promise.all([
      signIn(adaContext, web.relay().url, 'Ada Lovelace', 'merge'),
      context().then((c) => signIn(c, web.relay().url, 'Bob Stone', 'merge')),
    ])
    const id = await createTicket(ada, 'Payment page times out')
    await ada.keyboard.press('Tab') // leaving the title ends the typing burst: its history entry is written now
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bob.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Payment page times out')

    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.locator('#f-status').selectOption('done')
    await bob.locator('#f-status').selectOption('cancelled')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    // The sync status page tells Ada what is waiting, and why.
    await ada.goto(`${web.relay().url}#/sync`)
    await ada.getByTestId('unsynced-row').first().waitFor()
    // (between reconnect attempts the row says "Offline"; during one, "Connecting to the relay")
    await expect
      .poll(() => ada.getByTestId('unsynced-row').first().innerText(), { timeout: 10_000 })
      .toMatch(/Payment page times out[\s\S]*Status[\s\S]*Offline/)
    await screenshot(ada, 'web-sync-page-offline')
    await ada.goto(`${web.relay().url}#/t/${id}`)
    await ada.locator('#f-status').waitFor()

    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)

    // Both see one merge of the status with both values, and the same current value.
    for (const page of [ada, bob]) {
      await page.getByTestId('merge').first().waitFor({ timeout: 15_000 })
      const text = await page.getByTestId('merge').first().innerText()
      expect(text).toContain('Done')
      expect(text).toContain('Cancelled')
    }
    // Bob's change, made after Ada's offline one, stands on both screens; Ada's is one click away.
    for (const page of [ada, bob]) await expect.poll(() => page.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('cancelled')
    const other = 'done'

    // Ada hears what happened while she was away: on the ticket list, the merge with her own change.
    await ada.goto(`${web.relay().url}#/`)
    await expect
      .poll(() => ada.getByTestId('digest-merge').innerText(), { timeout: 10_000 })
      .toMatch(/Your status Done — Bob Stone set Cancelled/)
    await screenshot(ada, 'web-merge-digest')
    await ada.getByTestId('digest').getByRole('link', { name: 'Payment page times out' }).click()
    await ada.locator('#f-status').waitFor()
    await screenshot(ada, 'web-merge-before-restore')

    // One click restores the value that did not stand, for everyone; the button says which.
    await ada.getByRole('button', { name: 'Restore status to Done' }).click()
    await expect.poll(() => ada.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe(other)
    await expect.poll(() => bob.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe(other)
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await screenshot(ada, 'web-merge-restored-ada')
    await screenshot(bob, 'web-merge-restored-bob')
  }, 90_000)

  it('three people set the status, two of them offline: each reconnect ends every screen on the latest change and shows who is there', async () => {
    const url = web.relay().url
    const [adaContext, bobContext, carolContext] = await Promise.all([context(), context(), context({ width: 390, height: 844 })])
    const [ada, bob, carol] = await Promise.all([
      signIn(adaContext, url, 'Ada Lovelace', 'three'),
      signIn(bobContext, url, 'Bob Stone', 'three'),
      signIn(carolContext, url, 'Carol Chen', 'three'),
    ])
    const id = await createStoredTicket(ada, 'Invoice totals are rounded twice')
    for (const page of [bob, carol]) {
      await page.goto(`${url}#/t/${id}`)
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Invoice totals are rounded twice')
    }
    await goOffline(adaContext, ada)
    await goOffline(carolContext, carol)
    // In this order: Ada (offline), Bob (online), Carol (offline) — Carol's is the latest change.
    await ada.locator('#f-status').selectOption('in_progress')
    await ada.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()
    await bob.locator('#f-status').selectOption('cancelled')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    await carol.locator('#f-status').selectOption('done')
    await carol.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()

    // Ada comes back: Bob's change is later than hers and stands on both screens; hers is offered back.
    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    for (const page of [ada, bob]) await expect.poll(() => page.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('cancelled')
    await ada.goto(`${url}#/`)
    await expect
      .poll(() => ada.getByTestId('digest-merge').innerText(), { timeout: 10_000 })
      .toMatch(/Your status In progress — Bob Stone set Cancelled/)

    // Carol comes back: hers is the latest of the three, on every screen. Bob, who stayed on the ticket without a
    // change of his presence since she left, shows in it again at once — not when his presence is next renewed
    // (every 15 s: the states the relay sends again carry clocks her page had seen before it went offline).
    await carolContext.setOffline(false)
    await expect.poll(() => pendingShown(carol), { timeout: 20_000 }).toBe(0)
    await expect.poll(() => viewerNames(carol), { timeout: 3_000 }).toContain('Bob Stone')
    await ada.goto(`${url}#/t/${id}`)
    for (const page of [ada, bob, carol]) {
      await expect.poll(() => page.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('done')
      await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
    }
    // Every value is in the ticket's history, each a click away.
    const history = await bob.getByTestId('history').innerText()
    for (const value of ['In progress', 'Cancelled', 'Done']) expect(history).toContain(value)
    expect(await bob.getByRole('button', { name: 'Restore status to Cancelled' }).count()).toBeGreaterThan(0)
    await screenshot(bob, 'web-merge-three-status')
    await screenshot(carol, 'web-merge-three-status-phone')
  }, 120_000)

  it('labels changed by both, one offline: every removal holds, a label both added shows once, the ticket opens everywhere', async () => {
    const bobContext = await context()
    const [ada, bob] = await Promise.all([
      context().then((c) => signIn(c, web.relay().url, 'Ada Lovelace', 'labels')),
      signIn(bobContext, web.relay().url, 'Bob Stone', 'labels'),
    ])
    const chips = (page: Page): Promise<string[]> =>
      page
        .locator('.label-chips .chip')
        .allInnerTexts()
        .then((texts) => texts.map((t) => t.replace('×', '').trim()).sort())
    const id = await createTicket(ada, 'Export to CSV drops rows')
    await ada.locator('#f-labels').click()
    await ada.keyboard.type('bug, ui, export')
    await ada.keyboard.press('Enter')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bob.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => chips(bob), { timeout: 10_000 }).toEqual(['bug', 'export', 'ui'])

    // Bob, offline, removes "bug" and adds "ios"; Ada removes "ui" and adds "ios" too.
    await bobContext.setOffline(true)
    await bob.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await bob.getByRole('button', { name: 'Remove label bug' }).click()
    await bob.locator('#f-labels').fill('ios')
    await bob.keyboard.press('Enter')
    await ada.getByRole('button', { name: 'Remove label ui' }).click()
    await ada.locator('#f-labels').fill('ios')
    await ada.keyboard.press('Enter')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bobContext.setOffline(false)
    await expect.poll(() => pendingShown(bob), { timeout: 20_000 }).toBe(0)
    for (const page of [ada, bob]) await expect.poll(() => chips(page), { timeout: 10_000 }).toEqual(['export', 'ios'])
    await screenshot(bob, 'web-labels-merged')

    // A new device opens the ticket (its labels once each), and the list shows them once.
    const carol = await signIn(await context(), web.relay().url, 'Carol Diaz', 'labels')
    await carol.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => chips(carol), { timeout: 15_000 }).toEqual(['export', 'ios'])
    await carol.goto(`${web.relay().url}#/`)
    const row = carol.locator(`[data-testid="ticket-row"][data-id="${id}"]`)
    await expect.poll(() => row.locator('.chip.label').allInnerTexts(), { timeout: 15_000 }).toEqual(['export', 'ios'])
  }, 90_000)

  it('works on a narrow screen (in dark mode)', async () => {
    const phone = await context({ width: 390, height: 844 }, 'dark')
    const page = await signIn(phone, web.relay().url, 'Cleo Park', 'phone')
    await createTicket(page, 'Dark mode toggle')
    await page.locator('#f-labels').fill('ui, settings')
    await page.keyboard.press('Enter')
    await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
    await screenshot(page, 'web-narrow-ticket')
    await page.goto(`${web.relay().url}#/`)
    await page.getByTestId('ticket-row').first().waitFor()
    // Nothing sticks out sideways.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    // The top bar's sync status fits in a few words, and the filters fold away: the first ticket is on the first screen.
    expect(await page.getByTestId('sync-indicator').innerText()).toBe('Synced')
    expect(await page.getByLabel('Status').isVisible()).toBe(false)
    const row = await page.getByTestId('ticket-row').first().boundingBox()
    expect(row!.y + row!.height).toBeLessThanOrEqual(844)
    await screenshot(page, 'web-narrow-list')
    await page.getByTestId('filters-toggle').click()
    await page.getByLabel('Status').selectOption('open')
    await expect.poll(() => page.getByTestId('filters-toggle').innerText()).toBe('Filters (1)')
    await expect.poll(() => page.getByTestId('ticket-row').count()).toBe(1)
    await screenshot(page, 'web-narrow-list-filters')
  }, 60_000)

  it('sign-out says which work is not on the server yet, refuses to remove it, and keeping the data brings it back at the next sign-in', async () => {
    const ctx = await context()
    const page = await signIn(ctx, web.relay().url, 'Eve Tan', 'leaving')
    await ctx.setOffline(true)
    await page.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await createTicket(page, 'Written on the plane')
    await page.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()
    // Offline, nobody's presence is known — not even "only you", nor Eve herself as online.
    expect(await page.getByTestId('presence-unknown').innerText()).toContain('You are offline')
    await page.getByTestId('workspace-people').click()
    const eve = page.locator('[data-testid="workspace-person"][data-name="Eve Tan"]')
    await expect.poll(() => eve.innerText(), { timeout: 10_000 }).toMatch(/Eve Tan \(you\)\s*Offline/)
    expect(await eve.getAttribute('data-online')).toBe('false')
    await page.keyboard.press('Escape')

    await page.getByRole('button', { name: 'Sign out' }).click()
    // Before anything is chosen the dialog says what would wait on this device, unseen by others, if Eve signed out.
    const waiting = await page.getByTestId('signout-waiting').innerText()
    expect(waiting).toContain('1 ticket has changes that are not on the server yet')
    expect(waiting).toContain('nobody else sees them until you sign in here again')
    expect(await page.getByRole('dialog').innerText()).toContain('Written on the plane')
    await screenshot(page, 'web-signout-waiting')
    await page.getByRole('button', { name: 'Sign out and remove data' }).click()
    await page.getByRole('dialog').getByRole('alert').getByText('not on the server yet').waitFor()
    expect(await page.getByRole('dialog').innerText()).toContain('Written on the plane')
    await screenshot(page, 'web-signout-refused')
    await page.getByRole('button', { name: 'Sign out, keep data' }).click()
    await page.getByLabel('Your name').waitFor()

    await page.getByLabel('Your name').fill('Eve Tan')
    // The name typed becomes the workspace's id: the form says which one it opens.
    await page.getByLabel('Workspace').fill('Leaving')
    await expect
      .poll(() => page.getByTestId('workspace-hint').innerText())
      .toBe('Opens the workspace “leaving” (its id in links and the HTTP API).')
    await page.getByRole('button', { name: 'Continue' }).click()
    await expect.poll(() => page.getByTestId('ticket-row').first().innerText(), { timeout: 10_000 }).toContain('Written on the plane')
    expect(await page.getByTestId('pending-badge').count()).toBe(1)
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(page), { timeout: 20_000 }).toBe(0)
  }, 60_000)
})
