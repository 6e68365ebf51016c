/**
 * "While you were away…" in real Chromium, against a relay with JWT auth
 * (so the digest can name people): Ada goes offline and changes two tickets;
 * Bob meanwhile changes one of them, changes a ticket Ada never opened in
 * this session and creates a new one; Ada reloads the app before she is
 * back online. Back online, Ada's ticket list shows
 * what Bob did — the merge with her own change first, with a button that
 * brings her value back for everyone (without showing her in the ticket's
 * presence: she did not open it) — and never her own edits. Items go
 * when dismissed and stay gone after a reload; after Ada closed the app and
 * Bob changed two tickets, opening the app again tells her just that;
 * opening a record reads its item; signing out with removal of this
 * device's data removes the digest too.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signInWithToken, useWebApp, viewerNames } from './webApp.js'
import { TEST_SECRET, signToken } from '../helpers/tokens.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the digest tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** The digest's items as shown, top to bottom. */
const digestItems = (page: Page): Promise<string[]> => page.getByTestId('digest-item').allInnerTexts()

/** Opens ticket `id` and waits until its title shows. */
const openTicket = async (page: Page, url: string, id: string, title: string): Promise<void> => {
  await page.goto(`${url}#/t/${id}`)
  await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe(title)
}

describe.skipIf(!available)('web app: the digest of what others changed', () => {
  const web = useWebApp({ relayEnv: { JWT_SECRET: TEST_SECRET } })
  const context = web.context

  it('after a reconnect and after time away: who changed what, merges with her own changes first, never her own edits', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { acme: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { acme: 'write' }, { name: 'Bob Stone' })

    // Bob files a ticket of low priority before Ada starts: her device gets it with the list, and she never opens it.
    const bob = await signInWithToken(await context(), url, bobToken)
    const t3 = await createTicket(bob, 'Search ignores accents')
    await bob.locator('#f-priority').selectOption('low')
    await bob.keyboard.press('Tab')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    const adaContext = await context()
    let ada = await signInWithToken(adaContext, url, adaToken)
    await expect
      .poll(() => ada.getByTestId('ticket-row').allInnerTexts(), { timeout: 15_000 })
      .toEqual([expect.stringContaining('Search ignores accents')])
    const t1 = await createTicket(ada, 'Checkout fails')
    await ada.keyboard.press('Tab') // leaving the title ends the typing burst
    await ada.goto(`${url}#/`)
    const t2 = await createTicket(ada, 'Export is slow')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await ada.goto(`${url}#/`)
    await expect.poll(() => ada.getByTestId('ticket-row').count(), { timeout: 10_000 }).toBe(3)
    expect(await ada.getByTestId('digest').count()).toBe(0) // nothing changed by others: nothing shown

    await openTicket(ada, url, t1, 'Checkout fails')
    await openTicket(bob, url, t1, 'Checkout fails')
    // Bob's status for T1, set after Ada's offline one, is the later change: it stands, whatever Yjs's client ids
    // would have kept (a new one per page load), and Ada's is the one her digest offers back.
    // Ada on a train: T1 done, and T2's title; then she reloads the app, still offline (the service worker serves it).
    await ada.evaluate(async () => {
      await navigator.serviceWorker.ready
    })
    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.locator('#f-status').selectOption('done')
    await ada.goto(`${url}#/t/${t2}`)
    await ada.locator('#f-title').click()
    await ada.keyboard.press('End')
    await ada.keyboard.type(' to CSV')
    await ada.keyboard.press('Tab')
    await ada.locator('[data-testid="ticket-sync"][data-saved="true"]').waitFor()
    // The reloaded page writes with new Yjs client ids, and the relay has not bound the old ones to her yet.
    await ada.reload()
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Export is slow to CSV')

    // Bob meanwhile: T1 cancelled, T3's priority up, and a new ticket.
    await bob.locator('#f-status').selectOption('cancelled')
    await openTicket(bob, url, t3, 'Search ignores accents')
    await bob.locator('#f-priority').selectOption('high')
    await bob.getByTestId('comment-input').fill('Also "Uberprufung" finds nothing')
    await bob.getByTestId('add-comment').click()
    await bob.getByTestId('comment').first().waitFor()
    await bob.goto(`${url}#/`)
    await createTicket(bob, 'Dark mode')
    await bob.keyboard.press('Tab')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    // Ada is back on the list and online again.
    await ada.goto(`${url}#/`)
    await ada.getByTestId('ticket-row').first().waitFor()
    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    await expect.poll(() => digestItems(ada), { timeout: 20_000 }).toHaveLength(3)
    const digest = ada.getByTestId('digest')
    expect(await digest.innerText()).toContain('Bob Stone changed or commented on 3 tickets')
    const items = await digestItems(ada)
    // The merge with her own change comes first.
    expect(await ada.getByTestId('digest-item').first().getAttribute('data-record')).toBe(t1)
    expect(items[0]).toContain('Checkout fails')
    expect(items.find((text) => text.includes('Search ignores accents'))).toMatch(/Priority: Low → High\s*— Bob Stone/)
    expect(items.find((text) => text.includes('Search ignores accents'))).toMatch(/1 new comment\s*— Bob Stone/)
    expect(items.find((text) => text.includes('Dark mode'))).toContain('New ticket by Bob Stone')
    // Her own T2 edit is hers: not in the digest at all, nor is her own status anywhere but in the merge.
    expect(await digest.innerText()).not.toContain('Export is slow')
    expect(await ada.locator(`[data-testid="digest-item"][data-record="${t2}"]`).count()).toBe(0)
    await screenshot(ada, 'web-digest-after-reconnect')
    // The projects list shows it too; pages about other things do not.
    await ada.goto(`${url}#/projects`)
    await expect.poll(() => digestItems(ada)).toHaveLength(3)
    await ada.goto(`${url}#/sync`)
    await ada.getByTestId('sync-summary').waitFor()
    expect(await ada.getByTestId('digest').count()).toBe(0)
    await ada.goto(`${url}#/`)
    await expect.poll(() => digestItems(ada)).toHaveLength(3)

    // Bob's Cancelled was kept: "use yours" brings Ada's Done back, as a normal change by her that Bob gets.
    const merge = ada.getByTestId('digest-merge')
    expect(await merge.innerText()).toMatch(/^Your status Done — Bob Stone set Cancelled\s*Use yours$/)
    await merge.getByRole('button', { name: 'Use yours' }).click()
    await openTicket(bob, url, t1, 'Checkout fails')
    await expect.poll(() => bob.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('done')
    // Restoring from the list is not viewing the ticket: Bob, on it, sees himself alone, although T1 stays in memory on
    // Ada's page for a while (Ada's presence in T1 went out before her restored value, so Bob would have it by now).
    await expect.poll(() => viewerNames(bob), { timeout: 10_000 }).toContain('Bob Stone')
    expect(await viewerNames(bob)).toEqual(['Bob Stone'])
    await screenshot(bob, 'web-digest-restored-not-viewing')
    await expect
      .poll(() => ada.getByTestId('ticket-row').filter({ hasText: 'Checkout fails' }).innerText(), { timeout: 10_000 })
      .toContain('Done')
    // Decided: the merge (and T1's item with it) goes.
    await expect.poll(() => digestItems(ada), { timeout: 10_000 }).toHaveLength(2)
    expect(await ada.getByTestId('digest-merge').count()).toBe(0)

    // Dismiss one, then all.
    await ada.getByRole('button', { name: 'Dismiss Search ignores accents' }).click()
    await expect.poll(() => digestItems(ada)).toEqual([expect.stringContaining('Dark mode')])
    await screenshot(ada, 'web-digest-one-left')
    await ada.getByRole('button', { name: 'Dismiss all' }).click()
    await expect.poll(() => digest.count()).toBe(0)

    // A reload after dismissing shows nothing again.
    await ada.reload()
    await expect.poll(() => ada.getByTestId('ticket-row').count(), { timeout: 15_000 }).toBe(4)
    await expect.poll(() => ada.getByTestId('sync-indicator').getAttribute('data-ready'), { timeout: 15_000 }).toBe('true')
    expect(await ada.getByTestId('digest').count()).toBe(0)

    // Ada closes the app; Bob changes T2 and T3; Ada opens the app again on this device: just that.
    await ada.close()
    await openTicket(bob, url, t2, 'Export is slow to CSV')
    await bob.locator('#f-status').selectOption('in_progress')
    await openTicket(bob, url, t3, 'Search ignores accents')
    await bob.locator('#f-priority').selectOption('urgent')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    ada = await signInWithToken(adaContext, url, adaToken)
    await expect.poll(() => digestItems(ada), { timeout: 20_000 }).toHaveLength(2)
    expect((await digestItems(ada)).sort()).toEqual([
      expect.stringMatching(/^Export is slow to CSV[\s\S]*Status: Open → In progress\s*— Bob Stone$/),
      expect.stringMatching(/^Search ignores accents[\s\S]*Priority: High → Urgent\s*— Bob Stone$/),
    ])
    expect(await ada.getByTestId('digest').innerText()).toContain('Bob Stone changed 2 tickets')
    await screenshot(ada, 'web-digest-after-time-away')

    // Opening a record reads its news: back on the list, its item is gone.
    await ada.getByTestId('digest').getByRole('link', { name: 'Export is slow to CSV' }).click()
    await expect.poll(() => ada.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('in_progress')
    await ada.goto(`${url}#/`)
    await ada.getByTestId('ticket-row').first().waitFor()
    expect(await digestItems(ada)).toEqual([expect.stringContaining('Search ignores accents')])

    // Signing out and removing this device's data removes the digest too: signed in again, nothing is shown.
    await ada.getByRole('button', { name: 'Sign out' }).click()
    await ada.getByRole('button', { name: 'Sign out and remove data' }).click()
    await ada.getByLabel('Access token').waitFor({ timeout: 15_000 })
    // signed out for good: the token she came with is not offered again (it would sign her straight back in)
    expect(await ada.getByLabel('Access token').inputValue()).toBe('')
    await ada.close()
    ada = await signInWithToken(adaContext, url, adaToken)
    await expect.poll(() => ada.getByTestId('ticket-row').count(), { timeout: 15_000 }).toBe(4)
    expect(await ada.getByTestId('digest').count()).toBe(0)
  }, 180_000)

  it('a description both rewrote while she was offline: both versions are in it, and "Use yours" leaves hers', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { acme2: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { acme2: 'write' }, { name: 'Bob Stone' })
    const adaContext = await context()
    const ada = await signInWithToken(adaContext, url, adaToken)
    const bob = await signInWithToken(await context(), url, bobToken)
    const id = await createTicket(ada, 'Login is slow')
    await ada.locator('#f-description').fill('Sync is slow on login.')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await openTicket(bob, url, id, 'Login is slow')
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('Sync is slow on login.')

    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    const adas = 'Login takes 3 s on a cold start (measured).'
    const bobs = 'Sync is slow since version 1.2, on every device.'
    for (const [page, text] of [
      [ada, adas],
      [bob, bobs],
    ] as const) {
      await page.locator('#f-description').click()
      await page.keyboard.press('ControlOrMeta+A')
      await page.keyboard.type(text)
      await page.keyboard.press('Tab')
    }
    // Labels too: Ada adds "ios", Bob adds "export". Her digest names his addition, not hers.
    for (const [page, label] of [
      [ada, 'ios'],
      [bob, 'export'],
    ] as const) {
      await page.locator('#f-labels').fill(label)
      await page.keyboard.press('Enter')
    }
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    await ada.goto(`${url}#/`)
    await ada.getByTestId('ticket-row').first().waitFor()
    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    const merge = ada.getByTestId('digest-merge')
    await merge.waitFor({ timeout: 20_000 })
    expect(await merge.innerText()).toMatch(
      /^Your description and Bob Stone’s changed the same lines at the same time: both versions are in it, one after the other\s*Use yours\s*Use Bob Stone’s$/,
    )
    expect(await ada.getByTestId('digest-change').allInnerTexts()).toEqual([expect.stringMatching(/^Labels: added export\s*— Bob Stone$/)])
    // Both versions whole on Bob's screen, hers first (the earlier change), not their characters mixed.
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(`${adas}\n${bobs}`)
    await screenshot(ada, 'web-digest-description-both')
    await merge.getByRole('button', { name: 'Use yours' }).click()
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(adas)
    await expect.poll(() => ada.getByTestId('digest-merge').count(), { timeout: 10_000 }).toBe(0)
  }, 120_000)
})
