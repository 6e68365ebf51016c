/**
 * The digest of what others changed, as a person reads it, in real Chromium
 * against a relay with JWT auth (so it can name people): its heading is true
 * whether the person was offline or had just closed the app; a ticket
 * someone archived while she changed it offline is told in words, with a way
 * back to it and her changes; one she unarchived offline while someone else
 * archived it again later stays archived (the later change), and the card
 * and the digest say who did which, her choice one click away.
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

  it('archived while she changed it offline: "Bob Stone archived this ticket", her changes are in it, and one click unarchives it', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { shelf: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { shelf: 'write' }, { name: 'Bob Stone' })
    const adaContext = await web.context()
    const ada = await signInWithToken(adaContext, url, adaToken)
    const id = await createTicket(ada, 'Refund flow')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    const bob = await signInWithToken(await web.context(), url, bobToken)
    await openTicket(bob, url, id, 'Refund flow')

    // Ada, offline, changes the ticket; Bob archives it meanwhile.
    await ada.evaluate(async () => {
      await navigator.serviceWorker.ready
    })
    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.locator('#f-priority').selectOption('urgent')
    await ada.locator('#f-status').selectOption('in_progress')
    await bob.getByTestId('archive').click()
    await bob.getByTestId('archived-note').waitFor()
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    await ada.goto(`${url}#/`)
    await ada.getByTestId('ticket-row').first().waitFor()
    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    const item = ada.locator(`[data-testid="digest-item"][data-record="${id}"]`)
    await expect.poll(() => item.count(), { timeout: 20_000 }).toBe(1)
    const text = await item.innerText()
    expect(text).toContain('Bob Stone archived this ticket')
    expect(text).not.toMatch(/Archived:|false|true/)
    const note = item.getByTestId('digest-archived')
    expect(await note.innerText()).toMatch(
      /^Your changes are in it\. Archived tickets are not in the list: open it or unarchive it\.\s*Unarchive$/,
    )
    // The ticket has left her list (it is archived), which the note explains.
    expect(await ada.getByTestId('ticket-row').count()).toBe(0)
    await screenshot(ada, 'web-digest-archived-with-yours')

    // "open it" leads to the ticket, with her changes; back on the list, "Unarchive" brings it back for everyone.
    expect(await note.getByRole('link', { name: 'open it' }).getAttribute('href')).toBe(`#/t/${id}`)
    await note.getByRole('button', { name: 'Unarchive' }).click()
    const row = ada.locator(`[data-testid="ticket-row"][data-id="${id}"]`)
    await expect.poll(() => row.innerText(), { timeout: 10_000 }).toMatch(/Refund flow[\s\S]*In progress[\s\S]*Urgent/)
    await expect.poll(() => note.count()).toBe(0) // no longer archived: the way back goes; the line of what Bob did stays
    expect(await item.innerText()).toContain('Bob Stone archived this ticket')
    expect(await item.getByTestId('digest-unarchived').innerText()).toBe(
      'You unarchived it: it is back in the ticket list, with your changes.',
    )
    await expect.poll(() => bob.getByTestId('archived-note').count(), { timeout: 10_000 }).toBe(0)
    await screenshot(ada, 'web-digest-archived-unarchived')
  }, 90_000)

  it('unarchived offline while Bob unarchived and archived it again later: archived on both screens, her choice one click away', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { attic: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { attic: 'write' }, { name: 'Bob Stone' })
    const adaContext = await web.context()
    const ada = await signInWithToken(adaContext, url, adaToken)
    const id = await createTicket(ada, 'Old invoices export')
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    const bob = await signInWithToken(await web.context(), url, bobToken)
    await openTicket(bob, url, id, 'Old invoices export')
    await bob.getByTestId('archive').click()
    await ada.getByTestId('archived-note').waitFor({ timeout: 10_000 })

    // On the train Ada brings the ticket back; Bob, in the office, brings it back too, then decides it is done after all.
    await ada.evaluate(async () => {
      await navigator.serviceWorker.ready
    })
    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.getByTestId('unarchive').click()
    await ada.getByTestId('archive').waitFor()
    await bob.getByTestId('unarchive').click()
    await bob.getByTestId('archive').click()
    await bob.getByTestId('archived-note').waitFor()
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)

    // Back online: Bob's later change stands on both screens, whichever one the CRDT had kept.
    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    for (const page of [ada, bob]) await page.getByTestId('archived-note').waitFor({ timeout: 15_000 })
    const card = ada.getByTestId('merge')
    await expect.poll(() => card.count(), { timeout: 10_000 }).toBe(1)
    const cardText = await card.innerText()
    expect(cardText).toMatch(/^Archived and unarchived at the same time/)
    expect(cardText).toMatch(/Archived\s*by Bob Stone[\s\S]*Current/)
    expect(cardText).toMatch(/Not archived\s*by Ada Lovelace[\s\S]*Restore/)
    expect(cardText).not.toMatch(/true|false/)
    await screenshot(ada, 'web-archive-merge-card')

    // The digest on her list says who did which and what stands; "Use yours" brings it back for both.
    await ada.goto(`${url}#/`)
    const item = ada.locator(`[data-testid="digest-item"][data-record="${id}"]`)
    await expect.poll(() => item.count(), { timeout: 20_000 }).toBe(1)
    const merge = item.getByTestId('digest-merge')
    expect(await merge.innerText()).toMatch(/^You unarchived it — Bob Stone archived it later, which stands\s*Use yours$/)
    expect(await item.getByTestId('digest-archived').count()).toBe(0) // no second way back saying the same
    await screenshot(ada, 'web-archive-merge-digest')
    await merge.getByRole('button', { name: 'Use yours' }).click()
    await ada.locator(`[data-testid="ticket-row"][data-id="${id}"]`).waitFor({ timeout: 10_000 })
    await expect.poll(() => bob.getByTestId('archived-note').count(), { timeout: 10_000 }).toBe(0)
  }, 90_000)
})
