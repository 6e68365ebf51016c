/**
 * Tracker basics of the web app in Chromium, against a relay with token auth
 * (so the relay tells Ada and Bob apart and every author is proven):
 *
 * - archive with Undo, Unarchive, and an archived ticket found by search and
 *   by "Show archived", marked as archived;
 * - Bob edits a ticket offline while Ada archives it: after the reconnect
 *   both see the edit kept, the ticket archived, and both in the history;
 * - comments Ada writes offline reach Bob after the reconnect under her
 *   name; Bob gets no Edit or Delete on them, Ada edits and deletes hers;
 * - "New ticket" then back leaves no "Untitled ticket" behind: not in the
 *   list, not after a reload, not in Bob's list; nor does "New project";
 *   an archived project leaves the projects page and its search finds it.
 *
 * Screenshots go to test-artifacts/. Skipped only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signInWithToken, useWebApp } from './webApp.js'
import { TEST_SECRET, signToken } from '../helpers/tokens.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the tracker-basics tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app tracker basics in Chromium', () => {
  const web = useWebApp({ relayEnv: { JWT_SECRET: TEST_SECRET } })

  /** Ada and Bob signed in to workspace `workspace`, each in a browser context of their own. */
  const adaAndBob = async (workspace: string) => {
    const [adaToken, bobToken] = await Promise.all([
      signToken('ada', { [workspace]: 'write' }, { name: 'Ada Lovelace' }),
      signToken('bob', { [workspace]: 'write' }, { name: 'Bob Stone' }),
    ])
    const [adaContext, bobContext] = await Promise.all([web.context(), web.context()])
    const [ada, bob] = await Promise.all([
      signInWithToken(adaContext, web.relay().url, adaToken),
      signInWithToken(bobContext, web.relay().url, bobToken),
    ])
    return { ada, bob, adaContext, bobContext }
  }

  /** Creates a ticket titled `title` on Ada's page and waits until the relay stored it; Bob opens it. */
  const sharedTicket = async (ada: Page, bob: Page, title: string): Promise<string> => {
    const id = await createTicket(ada, title)
    await ada.keyboard.press('Tab') // leaving the title ends the typing burst
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bob.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe(title)
    return id
  }

  const rowTitles = (page: Page): Promise<string[]> => page.getByTestId('ticket-row').locator('.row-title').allInnerTexts()
  const historyText = (page: Page): Promise<string> => page.getByTestId('history').innerText()

  it('archive with Undo, Unarchive; search and "Show archived" find the archived ticket, marked as archived', async () => {
    const { ada, bob } = await adaAndBob('archive')
    const id = await sharedTicket(ada, bob, 'Refund button charges twice')

    await ada.getByTestId('archive').click()
    await expect.poll(() => ada.getByTestId('toast').innerText()).toMatch(/Ticket archived[\s\S]*Undo/)
    await ada.getByTestId('archived-note').waitFor()
    await bob.getByText('This ticket is archived.').waitFor({ timeout: 10_000 })
    await screenshot(ada, 'web-tracker-archived-toast')

    // The Archive button is gone: the focus is on Undo (a keyboard user is not dropped to the page's start).
    await expect.poll(() => ada.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('undo')
    // Undo (with the keyboard) takes it back, for both, and the focus returns to Archive.
    await ada.keyboard.press('Enter')
    await ada.getByTestId('archived-note').waitFor({ state: 'detached' })
    await bob.getByTestId('archived-note').waitFor({ state: 'detached', timeout: 10_000 })
    expect(await ada.getByTestId('archive').isVisible()).toBe(true)
    await expect.poll(() => ada.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('archive')

    await ada.getByTestId('archive').click()
    await bob.getByTestId('archived-note').waitFor({ timeout: 10_000 })
    await expect.poll(() => historyText(bob), { timeout: 10_000 }).toMatch(/Ada Lovelace\s*archived this ticket/)
    expect(await historyText(bob)).toMatch(/Ada Lovelace\s*unarchived this ticket/)

    // The list does not show it any more; a search finds it, marked as archived.
    await ada.getByRole('link', { name: '← All tickets' }).click()
    await ada.getByRole('heading', { name: 'Tickets' }).waitFor()
    await expect.poll(() => rowTitles(ada)).not.toContain('Refund button charges twice')
    await ada.getByTestId('search').fill('refund')
    const found = ada.getByTestId('ticket-row').filter({ hasText: 'Refund button charges twice' })
    await found.waitFor()
    expect(await found.getByTestId('archived-chip').innerText()).toBe('Archived')
    await screenshot(ada, 'web-tracker-search-archived')
    await ada.getByTestId('search').fill('')
    await expect.poll(() => rowTitles(ada)).not.toContain('Refund button charges twice')
    await ada.getByTestId('show-archived').check()
    await found.waitFor()
    expect(await found.getByTestId('archived-chip').isVisible()).toBe(true)

    // Its page says it is archived; Unarchive brings it back to the list, for Bob too.
    await found.click()
    await ada.getByText('This ticket is archived.').waitFor()
    await ada.getByTestId('unarchive').click()
    await ada.getByTestId('archived-note').waitFor({ state: 'detached' })
    await expect.poll(() => ada.getByTestId('toast').innerText()).toMatch(/Ticket unarchived[\s\S]*Undo/)
    await bob.getByTestId('archived-note').waitFor({ state: 'detached', timeout: 10_000 })
    await ada.getByRole('link', { name: '← All tickets' }).click()
    await ada.getByTestId('show-archived').uncheck()
    const row = ada.getByTestId('ticket-row').filter({ hasText: 'Refund button charges twice' })
    await row.waitFor()
    expect(await row.getByTestId('archived-chip').count()).toBe(0)
    expect(await row.getAttribute('data-id')).toBe(id)
  }, 120_000)

  it('Bob edits a ticket offline while Ada archives it: the edit is kept and the history shows both', async () => {
    const { ada, bob, bobContext } = await adaAndBob('archive-race')
    await sharedTicket(ada, bob, 'Export is slow')

    await bobContext.setOffline(true)
    await bob.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await bob.locator('#f-title').click()
    await bob.keyboard.press('End')
    await bob.keyboard.type(' for large workspaces')
    await bob.keyboard.press('Tab')
    await ada.getByTestId('archive').click()
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    expect(await ada.locator('#f-title').inputValue()).toBe('Export is slow')

    await bobContext.setOffline(false)
    await expect.poll(() => pendingShown(bob), { timeout: 30_000 }).toBe(0)
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Export is slow for large workspaces')
      await page.getByText('This ticket is archived.').waitFor({ timeout: 15_000 })
      await expect.poll(() => historyText(page), { timeout: 10_000 }).toMatch(/Ada Lovelace\s*archived this ticket/)
      expect(await historyText(page)).toMatch(/Bob Stone\s*added “ for large workspaces” to title/)
    }
    await screenshot(ada, 'web-tracker-archive-and-offline-edit')
  }, 120_000)

  it('comments written offline reach Bob under Ada’s name; only their author can edit or delete them', async () => {
    const { ada, bob, adaContext } = await adaAndBob('comments')
    const id = await sharedTicket(ada, bob, 'Search ignores accents')

    await adaContext.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.getByTestId('comment-input').fill('Reproduced with “café” on Firefox')
    await ada.getByTestId('add-comment').click()
    const adasComment = (page: Page) => page.getByTestId('comment').filter({ hasText: 'café' })
    await adasComment(ada).waitFor()
    expect(await adasComment(ada).getByTestId('comment-author').innerText()).toBe('Ada Lovelace')
    expect(await ada.getByTestId('ticket-sync').innerText()).toContain('Not yet on the server')
    // The comments say it too, as a field does: what waits is a comment.
    expect(await ada.getByTestId('unsynced-comments').innerText()).toBe('Not yet synced')
    expect(await bob.getByTestId('comment').count()).toBe(0)

    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 30_000 }).toBe(0)
    await ada.getByTestId('unsynced-comments').waitFor({ state: 'detached', timeout: 10_000 })
    await adasComment(bob).waitFor({ timeout: 15_000 })
    expect(await adasComment(bob).getByTestId('comment-author').innerText()).toBe('Ada Lovelace')
    expect(await adasComment(bob).getByTestId('edit-comment').count()).toBe(0)
    expect(await adasComment(bob).getByTestId('delete-comment').count()).toBe(0)
    await expect.poll(() => historyText(bob), { timeout: 10_000 }).toMatch(/Ada Lovelace\s*commented “Reproduced with “café” on Firefox”/)

    // Bob's own comment has the buttons for him, not for Ada.
    await bob.getByTestId('comment-input').fill('Same with “naïve” in titles')
    await bob.getByTestId('add-comment').click()
    const bobsComment = (page: Page) => page.getByTestId('comment').filter({ hasText: 'naïve' })
    await bobsComment(bob).getByTestId('edit-comment').waitFor()
    await bobsComment(ada).waitFor({ timeout: 10_000 })
    expect(await bobsComment(ada).getByTestId('comment-author').innerText()).toBe('Bob Stone')
    expect(await bobsComment(ada).getByTestId('edit-comment').count()).toBe(0)
    await screenshot(bob, 'web-tracker-comments-bob')

    // Ada edits hers: Bob sees the new text, marked edited; then she deletes it.
    await adasComment(ada).getByTestId('edit-comment').click()
    await ada.getByTestId('edit-comment-input').fill('Reproduced with “café” on Firefox and Chrome')
    await ada.getByRole('button', { name: 'Save' }).click()
    const edited = bob.getByTestId('comment').filter({ hasText: 'Firefox and Chrome' })
    await edited.waitFor({ timeout: 10_000 })
    expect(await edited.innerText()).toContain('(edited)')
    await expect.poll(() => historyText(bob), { timeout: 10_000 }).toMatch(/Ada Lovelace\s*edited a comment/)
    await screenshot(ada, 'web-tracker-comments-ada')

    // Comments are part of the ticket: a reload shows them from this device.
    await ada.reload()
    await adasComment(ada).waitFor({ timeout: 15_000 })
    await adasComment(ada).getByTestId('delete-comment').click()
    await adasComment(bob).waitFor({ state: 'detached', timeout: 10_000 })
    expect(await bob.getByTestId('comment').count()).toBe(1)
    await expect.poll(() => historyText(bob), { timeout: 10_000 }).toMatch(/Ada Lovelace\s*deleted a comment/)
    expect(await ada.url()).toContain(id)
  }, 120_000)

  it('back from a ticket far down a long list, the list is where it was', async () => {
    const workspace = 'long-list'
    const token = await signToken('ada', { [workspace]: 'write' }, { name: 'Ada Lovelace' })
    for (let i = 1; i <= 30; i++) {
      const response = await fetch(`${web.relay().url}/api/v1/workspaces/${workspace}/records`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'ticket', fields: { title: `Ticket ${i}` } }),
      })
      expect(response.status).toBe(201)
    }
    const ada = await signInWithToken(await web.context(), web.relay().url, token)
    await expect.poll(() => ada.getByTestId('ticket-row').count(), { timeout: 20_000 }).toBe(30)
    const last = ada.getByTestId('ticket-row').last()
    await last.scrollIntoViewIfNeeded()
    const scrolled = await ada.evaluate(() => window.scrollY)
    expect(scrolled).toBeGreaterThan(500)
    await last.click()
    await ada.locator('#f-title').waitFor()
    await ada.getByRole('link', { name: '← All tickets' }).click()
    await expect.poll(() => ada.getByTestId('ticket-row').count()).toBe(30)
    await expect.poll(() => ada.evaluate(() => window.scrollY)).toBe(scrolled)
  }, 60_000)

  it('"New ticket" then back leaves no untitled ticket: not in the list, not after a reload, not in Bob’s list', async () => {
    const { ada, bob } = await adaAndBob('blank')
    await createTicket(ada, 'Keep this one')
    await ada.keyboard.press('Tab')
    await ada.goBack()
    await ada.getByRole('heading', { name: 'Tickets' }).waitFor()

    await ada.getByTestId('new-ticket').click()
    await ada.locator('#f-title').waitFor()
    // Bob's list learns of the new ticket (the app pulls new records from the relay).
    await expect.poll(() => rowTitles(bob), { timeout: 30_000 }).toContain('Untitled ticket')
    await ada.goBack()
    await ada.getByRole('heading', { name: 'Tickets' }).waitFor()
    await expect.poll(() => rowTitles(ada)).toEqual(['Keep this one'])
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await ada.reload()
    await ada.getByRole('heading', { name: 'Tickets' }).waitFor()
    await expect.poll(() => rowTitles(ada), { timeout: 10_000 }).toEqual(['Keep this one'])
    await expect.poll(() => rowTitles(bob), { timeout: 30_000 }).toEqual(['Keep this one'])
    await screenshot(bob, 'web-tracker-no-blank-ticket-bob')

    // The same for a project; one with a name stays.
    await ada.getByRole('link', { name: 'Projects' }).click()
    await ada.getByTestId('new-project').click()
    await ada.locator('#p-name').waitFor()
    await ada.goBack()
    await ada.getByRole('heading', { name: 'Projects' }).waitFor()
    await ada.getByTestId('new-project').click()
    await ada.locator('#p-name').click()
    await ada.keyboard.type('Checkout revamp')
    await ada.keyboard.press('Tab')
    await ada.goBack()
    await expect.poll(() => ada.getByTestId('project-row').allInnerTexts()).toEqual([expect.stringContaining('Checkout revamp')])

    // An archived project leaves the projects page too; its search finds it, marked as archived.
    await ada.getByTestId('project-row').click()
    await ada.getByTestId('archive').click()
    await expect.poll(() => ada.getByTestId('toast').innerText()).toMatch(/Project archived[\s\S]*Undo/)
    await ada.getByText('This project is archived.').waitFor()
    await ada.goBack()
    await ada.getByRole('heading', { name: 'Projects' }).waitFor()
    await expect.poll(() => ada.getByTestId('project-row').count()).toBe(0)
    // Not "No projects yet": the page says where the project went.
    await ada.getByText('No open projects here: 1 project is archived.').waitFor()
    await ada.getByTestId('project-search').fill('checkout')
    const found = ada.getByTestId('project-row').filter({ hasText: 'Checkout revamp' })
    await found.waitFor()
    expect(await found.getByTestId('archived-chip').innerText()).toBe('Archived')
    await screenshot(ada, 'web-tracker-project-archived-search')
  }, 120_000)
})
