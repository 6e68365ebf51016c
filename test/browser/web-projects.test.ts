/**
 * The web app's projects, workspace presence and "discard" in real
 * Chromium against a real relay process:
 *
 * - Ada creates a project, assigns a ticket to it, and filters the list by
 *   project and by label; Bob, in a second browser context, sees the
 *   project and filters his list by it;
 * - two people see each other's avatars in the workspace header; when one
 *   leaves, the other sees "last seen";
 * - discard: refused while offline; a change the relay rejects (the doc
 *   would exceed the relay's --max-doc-bytes) is discarded after confirming
 *   in a dialog that lists the field: the ticket returns to the relay's
 *   value and the indicator says everything is synced; a second tab that
 *   has the ticket open goes back to the relay's value too, its editor keeps
 *   working, and the discarded text never reaches the relay.
 *
 * Screenshots of the final states go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createProject, createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'
import { relayText } from '../helpers/relayText.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the web-app tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** Waits until the open project is on the relay (its header stops changing). */
const projectSynced = (page: Page): Promise<void> =>
  page.getByTestId('project-sync').and(page.locator('[data-pending="0"]')).waitFor({ timeout: 10_000 })

const rowTitles = (page: Page): Promise<string[]> => page.getByTestId('ticket-row').locator('.row-title').allInnerTexts()

describe.skipIf(!available)('web app: projects and workspace presence', () => {
  const web = useWebApp()

  it('a project is created, a ticket assigned to it, the list filtered by project and label; a second person sees it', async () => {
    const [ada, bob] = await Promise.all([
      web.context().then((c) => signIn(c, web.relay().url, 'Ada Lovelace', 'projects')),
      web.context().then((c) => signIn(c, web.relay().url, 'Bob Stone', 'projects')),
    ])
    const projectId = await createProject(ada, 'Checkout revamp')
    await ada.locator('#p-description').click()
    await ada.keyboard.type('One-page checkout with saved cards.')
    await ada.getByTestId('project-status').selectOption('active')
    await projectSynced(ada)

    // A ticket created from the project page belongs to it.
    await ada.getByTestId('new-project-ticket').click()
    await ada.locator('#f-title').waitFor()
    await ada.locator('#f-title').click()
    await ada.keyboard.type('Pay button does nothing on Safari')
    await expect.poll(() => ada.getByTestId('project').inputValue()).toBe(projectId)
    await ada.locator('#f-labels').click()
    await ada.keyboard.type('bug')
    await ada.keyboard.press('Enter')

    // One assigned through the ticket's Project select, one left out.
    await ada.goto(`${web.relay().url}#/`)
    await createTicket(ada, 'Saved cards list')
    await ada.getByTestId('project').selectOption({ label: 'Checkout revamp' })
    // The history names the project; the back link leads to it.
    await expect.poll(() => ada.locator('.timeline').innerText()).toContain('set project to Checkout revamp')
    await ada.locator('.back').getByRole('link', { name: 'Checkout revamp' }).waitFor()
    await screenshot(ada, 'web-ticket-in-project')
    await ada.goto(`${web.relay().url}#/`)
    await createTicket(ada, 'Office plants need water')
    await ada.locator('#f-labels').click()
    await ada.keyboard.type('bug')
    await ada.keyboard.press('Enter')
    await ada.goto(`${web.relay().url}#/`)
    await expect.poll(() => ada.getByTestId('ticket-row').count()).toBe(3)

    await ada.getByTestId('project-filter').selectOption({ label: 'Checkout revamp' })
    await expect.poll(() => rowTitles(ada).then((t) => t.sort())).toEqual(['Pay button does nothing on Safari', 'Saved cards list'])
    await ada.getByTestId('label-filter').selectOption('bug')
    await expect.poll(() => rowTitles(ada)).toEqual(['Pay button does nothing on Safari'])
    await ada.getByTestId('project-filter').selectOption({ label: 'No project' })
    await expect.poll(() => rowTitles(ada)).toEqual(['Office plants need water'])
    await ada.getByTestId('label-filter').selectOption('')
    await ada.getByTestId('project-filter').selectOption({ label: 'Checkout revamp' })
    await expect.poll(() => ada.getByTestId('project-chip').allInnerTexts()).toEqual(['Checkout revamp', 'Checkout revamp'])
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await screenshot(ada, 'web-projects-filtered-ada')
    // The filter is still there after opening a ticket and going back.
    await ada.getByTestId('ticket-row').first().click()
    await ada.locator('#f-title').waitFor()
    await ada.getByRole('link', { name: '← All tickets' }).click()
    await expect.poll(() => ada.getByTestId('project-filter').inputValue()).toBe(projectId)
    await expect.poll(() => ada.getByTestId('ticket-row').count()).toBe(2)

    // The project page lists its tickets.
    await ada.goto(`${web.relay().url}#/p/${projectId}`)
    await expect.poll(() => ada.getByTestId('project-ticket').count()).toBe(2)
    await expect.poll(() => ada.locator('#p-description').inputValue()).toBe('One-page checkout with saved cards.')
    await screenshot(ada, 'web-project-ada')

    // Bob: the project reaches his catalog (pull), he opens it and filters his list by it.
    await bob.getByRole('link', { name: 'Projects', exact: true }).click()
    const card = bob.locator(`[data-testid="project-row"][data-id="${projectId}"]`)
    await card.waitFor({ timeout: 25_000 })
    await expect.poll(() => card.innerText(), { timeout: 15_000 }).toContain('Checkout revamp')
    await expect.poll(() => card.innerText(), { timeout: 15_000 }).toContain('2 open')
    await screenshot(bob, 'web-projects-list-bob')
    await bob.getByRole('link', { name: 'Tickets', exact: true }).click()
    await bob.getByTestId('project-filter').selectOption({ label: 'Checkout revamp' })
    await expect
      .poll(() => rowTitles(bob).then((t) => t.sort()), { timeout: 15_000 })
      .toEqual(['Pay button does nothing on Safari', 'Saved cards list'])
    await card.count() // (the card locator is on the other page now)
    await bob.goto(`${web.relay().url}#/p/${projectId}`)
    await expect.poll(() => bob.locator('#p-name').inputValue(), { timeout: 15_000 }).toBe('Checkout revamp')
    await bob.locator('[data-testid="viewer"][data-name="Ada Lovelace"]').count() // Ada is elsewhere; just Bob here
    await screenshot(bob, 'web-project-bob')

    // Ada archives the project: its tickets keep its name in the list, marked, and the list can still be filtered by it.
    await ada.getByTestId('archive').click()
    await ada.getByText('This project is archived.').waitFor()
    await ada.getByRole('link', { name: 'Tickets', exact: true }).click()
    await ada.getByTestId('project-filter').selectOption({ label: 'Checkout revamp (archived)' })
    await expect.poll(() => ada.getByTestId('ticket-row').count()).toBe(2)
    await expect
      .poll(() => ada.getByTestId('project-chip').allInnerTexts())
      .toEqual(['Checkout revamp (archived)', 'Checkout revamp (archived)'])
    // A ticket made while the list shows an archived project goes into no project.
    await ada.getByTestId('new-ticket').click()
    await ada.locator('#f-title').waitFor()
    expect(await ada.locator('#f-project option:checked').innerText()).toBe('No project')
  }, 120_000)

  it('two people see each other in the workspace header; after one leaves, "last seen"', async () => {
    const [ada, bob] = await Promise.all([
      web.context().then((c) => signIn(c, web.relay().url, 'Ada Lovelace', 'presence')),
      web.context().then((c) => signIn(c, web.relay().url, 'Bob Stone', 'presence')),
    ])
    await ada.locator('[data-testid="workspace-avatar"][data-name="Bob Stone"]').waitFor({ timeout: 15_000 })
    await bob.locator('[data-testid="workspace-avatar"][data-name="Ada Lovelace"]').waitFor({ timeout: 15_000 })
    expect(await ada.getByRole('button', { name: /^People in this workspace\..*Bob Stone/ }).getAttribute('data-testid')).toBe(
      'workspace-people',
    )

    // Keyboard: the people button opens the list, Escape closes it.
    await ada.getByTestId('workspace-people').focus()
    await ada.keyboard.press('Enter')
    const bobInList = ada.locator('[data-testid="workspace-person"][data-name="Bob Stone"]')
    await bobInList.waitFor()
    expect(await bobInList.getAttribute('data-online')).toBe('true')
    await screenshot(ada, 'web-workspace-presence-ada')
    await ada.keyboard.press('Escape')
    await bobInList.waitFor({ state: 'hidden' })

    // Bob leaves: he is last seen just now.
    await bob.close()
    await ada.locator('[data-testid="workspace-avatar"][data-name="Bob Stone"]').waitFor({ state: 'detached', timeout: 35_000 })
    await ada.getByTestId('workspace-people').click()
    await expect.poll(() => bobInList.getAttribute('data-online')).toBe('false')
    expect(await bobInList.innerText()).toContain('Last seen just now')
    await screenshot(ada, 'web-workspace-presence-left')
  }, 90_000)

  it('narrow screen (360 px): header with people, projects list and project page fit, long names too', async () => {
    const ctx = await web.context({ width: 360, height: 740 })
    const [ada, bob] = await Promise.all([
      signIn(ctx, web.relay().url, 'Ada Lovelace', 'narrow'),
      web.context({ width: 360, height: 740 }, 'dark').then((c) => signIn(c, web.relay().url, 'Bob Stone', 'narrow')),
    ])
    await ada.locator('[data-testid="workspace-avatar"][data-name="Bob Stone"]').waitFor({ timeout: 15_000 })
    // Long names: the project's wraps on its card and its tickets' are cut short; neither widens the page.
    const name = 'Quarterly infrastructure migration and cleanup programme'
    const id = await createProject(ada, name)
    await projectSynced(ada)
    // Leave the name field first: on a narrow screen leaving it reflows the page (the field's own notes go), and a
    // click whose mousedown is that blur would land where the button was. Leaving it also writes the typing's history
    // entry, so the name is briefly "not yet synced" again (its note comes and goes): wait until the relay has it.
    await ada.keyboard.press('Tab')
    await expect.poll(() => ada.evaluate(() => document.activeElement?.id)).not.toBe('p-name')
    await projectSynced(ada)
    await ada.getByTestId('new-project-ticket').click()
    await ada.locator('#f-title').waitFor()
    await ada.locator('#f-title').click()
    await ada.keyboard.type('Upgrade the load balancer firmware on every edge node')
    await ada.goto(`${web.relay().url}#/p/${id}`)
    await expect.poll(() => ada.getByTestId('project-ticket').count()).toBe(1)
    const overflow = (): Promise<number> => ada.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    expect(await overflow()).toBeLessThanOrEqual(0)
    await screenshot(ada, 'web-project-narrow')
    await ada.getByRole('link', { name: 'Projects', exact: true }).click()
    await ada.getByTestId('project-row').first().waitFor()
    expect(await overflow()).toBeLessThanOrEqual(0)
    // Its status stays one word on one line beside the name.
    const chip = ada.getByTestId('project-row').first().locator('.chip')
    expect(await chip.evaluate((el) => el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight))).toBeLessThan(2)
    await screenshot(ada, 'web-projects-narrow')
    // On the ticket list the project's long name is cut short on one line of its chip.
    await ada.getByRole('link', { name: 'Tickets', exact: true }).click()
    const projectChip = ada.getByTestId('project-chip').first()
    await projectChip.waitFor()
    expect(
      await projectChip.evaluate((el) => el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)),
    ).toBeLessThan(2)
    expect(await projectChip.getAttribute('title')).toBe(name)
    expect(await overflow()).toBeLessThanOrEqual(0)

    // Bob, in dark mode, opens the project by its link and sees Ada there.
    await bob.goto(`${web.relay().url}#/p/${id}`)
    await expect.poll(() => bob.locator('#p-name').inputValue(), { timeout: 15_000 }).toBe(name)
    await expect.poll(() => bob.getByTestId('project-ticket').count(), { timeout: 25_000 }).toBe(1)
    await bob.getByRole('link', { name: 'Projects', exact: true }).click()
    await bob.getByTestId('project-row').first().waitFor({ timeout: 15_000 })
    await screenshot(bob, 'web-projects-narrow-dark')
  }, 90_000)
})

describe.skipIf(!available)('web app: discarding unsynced changes', () => {
  // A small doc limit, so the relay rejects a long description for good.
  const web = useWebApp({ relayArgs: ['--max-doc-bytes', '24576'] })

  it('refused offline; a change the relay rejected is discarded after confirming, back to the relay value', async () => {
    const ctx = await web.context()
    const ada = await signIn(ctx, web.relay().url, 'Ada Lovelace', 'discard')
    const id = await createTicket(ada, 'Quarterly report')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)

    // Offline: the change is pending and "Discard" is refused (the relay's version is unknown).
    await ctx.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.locator('#f-status').selectOption('in_progress')
    await ada.getByRole('link', { name: /Sync status/ }).click()
    const row = ada.locator(`[data-testid="unsynced-row"][data-id="${id}"]`)
    await row.waitFor()
    expect(await row.getByTestId('discard').isDisabled()).toBe(true)
    await ada.getByTestId('discard-offline').waitFor()
    await screenshot(ada, 'web-discard-offline')

    // Online again: the status change syncs.
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)

    // A description too large for the relay: rejected for good.
    await ada.goto(`${web.relay().url}#/t/${id}`)
    await ada.locator('#f-description').fill('Q3 numbers: '.repeat(2600))
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await row.waitFor()
    await expect.poll(() => row.innerText(), { timeout: 15_000 }).toMatch(/exceed|too large|rejected/i)
    expect(await pendingShown(ada)).toBeGreaterThan(0)
    // The status says what holds: a rejection, not a wait for the relay; the ticket says its later edits wait behind it.
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText()).toBe('Changes to 1 ticket rejected')
    expect(await ada.getByTestId('sync-summary').innerText()).toContain('The relay refused changes to 1 ticket for good')
    await ada.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => ada.getByTestId('ticket-blocked').innerText()).toMatch(/Later changes to this ticket wait behind it/)
    await screenshot(ada, 'web-rejected-ticket')
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await row.waitFor()

    // Discard: the dialog lists the field; keyboard-focus starts on the safe choice.
    await row.getByTestId('discard').click()
    const dialog = ada.getByTestId('discard-dialog')
    await dialog.waitFor()
    expect(await dialog.getByTestId('discard-fields').innerText()).toContain('Description')
    expect(await ada.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Keep changes')
    await screenshot(ada, 'web-discard-dialog')
    await dialog.getByTestId('confirm-discard').click()
    await ada.getByTestId('discarded').waitFor({ timeout: 15_000 })
    await expect.poll(() => row.count()).toBe(0)
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    expect(await ada.getByTestId('sync-indicator').innerText()).toMatch(/synced/i)
    await screenshot(ada, 'web-discard-done')

    // The ticket holds the relay's values: no description, the status that synced; editing works again.
    await ada.goto(`${web.relay().url}#/t/${id}`)
    await ada.locator('#f-description').waitFor()
    expect(await ada.locator('#f-description').inputValue()).toBe('')
    expect(await ada.locator('#f-status').inputValue()).toBe('in_progress')
    await ada.locator('#f-status').selectOption('done')
    await expect.poll(() => pendingShown(ada), { timeout: 15_000 }).toBe(0)
    await ada.getByTestId('ticket-sync').and(ada.locator('[data-pending="0"]')).waitFor()
    await screenshot(ada, 'web-discard-ticket')
  }, 120_000)

  it('a ticket open in another tab goes back to the relay value when one tab discards; its editor keeps working', async () => {
    const ctx = await web.context()
    const editor = await signIn(ctx, web.relay().url, 'Ada Lovelace', 'discard-tabs')
    const id = await createTicket(editor, 'Budget')
    await expect.poll(() => pendingShown(editor), { timeout: 10_000 }).toBe(0)

    // Tab 1 keeps the ticket open and types a description too large for the relay.
    await editor.locator('#f-description').fill('Q4 numbers: '.repeat(2600))
    await expect.poll(() => pendingShown(editor), { timeout: 15_000 }).toBeGreaterThan(0)

    // Tab 2 (same user) discards it from the sync page.
    const other = await ctx.newPage()
    other.on('pageerror', (error) => console.error('[tab 2] page error:', error))
    await other.goto(`${web.relay().url}#/sync`)
    const row = other.locator(`[data-testid="unsynced-row"][data-id="${id}"]`)
    await row.waitFor({ timeout: 15_000 })
    await expect.poll(() => row.getByTestId('discard').isDisabled(), { timeout: 15_000 }).toBe(false)
    await row.getByTestId('discard').click()
    await other.getByTestId('discard-dialog').getByTestId('confirm-discard').click()
    await other.getByTestId('discarded').waitFor({ timeout: 15_000 })

    // Tab 1 shows the relay's value, with nothing pending, and its editor still works.
    await expect.poll(() => editor.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('')
    await expect.poll(() => pendingShown(editor), { timeout: 10_000 }).toBe(0)
    await editor.getByTestId('ticket-sync').and(editor.locator('[data-pending="0"]')).waitFor()
    await screenshot(editor, 'web-discard-other-tab')
    await editor.locator('#f-description').click()
    await editor.keyboard.type('Short summary')
    await expect.poll(() => pendingShown(editor), { timeout: 15_000 }).toBe(0)
    await expect.poll(() => pendingShown(other), { timeout: 15_000 }).toBe(0)

    // The relay has the new text and never got the discarded one (also after both tabs reconnect).
    await ctx.setOffline(true)
    await editor.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(editor), { timeout: 20_000 }).toBe(0)
    expect(await relayText(web.relay().wsUrl, `discard-tabs/${id}`, 'text:description')).toBe('Short summary')
  }, 120_000)
})
