/**
 * Accessibility of every page of the web app, checked with axe-core inside
 * real Chromium (WCAG 2.0 / 2.1, levels A and AA), in light and dark mode:
 * sign-in, ticket list, a ticket page with its history and a second person
 * in it (his caret in the title), project list, a project page and the sync
 * status page, online and offline with a change waiting. No page may
 * have a violation of impact "serious" or "critical"; a failure lists each
 * one with the elements it concerns. And with the keyboard alone, a record
 * made with "New ticket" / "New project" takes what is typed next.
 *
 * Screenshots go to test-artifacts/ (`a11y-<scheme>-<page>.png`). Skipped
 * only when /usr/bin/chromium is missing.
 */
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createProject, createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the accessibility tests — /usr/bin/chromium is missing (apt-get install chromium)')

const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  helpUrl: string
  nodes: Array<{ target: unknown[]; failureSummary?: string }>
}

/** Runs axe on the page as it is now; resolves with the serious and critical violations, one readable paragraph each. */
const seriousViolations = async (page: Page): Promise<string[]> => {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: axeSource })
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(options: unknown): Promise<{ violations: AxeViolation[] }> } }).axe
    const result = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
    return result.violations
  })
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `[${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n` +
        v.nodes.map((n) => `  - ${n.target.join(' ')}\n    ${(n.failureSummary ?? '').replace(/\n/g, '\n    ')}`).join('\n'),
    )
}

/** Checks the page and saves a screenshot of it; resolves with what axe found, headed by the page's name. */
const check = async (page: Page, name: string): Promise<string[]> => {
  await screenshot(page, name)
  return (await seriousViolations(page)).map((v) => `${name}: ${v}`)
}

describe.skipIf(!available)('accessibility (axe-core, WCAG 2.1 AA)', () => {
  const web = useWebApp()

  for (const scheme of ['light', 'dark'] as const) {
    it(`${scheme} mode, every page: sign-in, tickets, a ticket with history and presence, projects, a project, sync status`, async () => {
      const url = web.relay().url
      const found: string[] = []
      const context = await web.context(undefined, scheme)
      const signInPage = await context.newPage()
      await signInPage.goto(url)
      await signInPage.getByLabel('Your name').waitFor()
      found.push(...(await check(signInPage, `a11y-${scheme}-sign-in`)))
      await signInPage.close()

      const workspace = `access-${scheme}`
      const ada = await signIn(context, url, 'Ada Lovelace', workspace)
      const bob = await signIn(await web.context(undefined, scheme), url, 'Bob Stone', workspace)
      const projectId = await createProject(ada, 'Accessible app')
      await ada.locator('#p-status').selectOption('active')
      await ada.goto(`${url}#/`)
      await ada.getByRole('heading', { name: 'Tickets' }).waitFor()
      const id = await createTicket(ada, 'Contrast of muted text')
      await ada.locator('#f-status').selectOption('in_progress')
      await ada.locator('#f-priority').selectOption('high')
      await ada.locator('#f-project').selectOption(projectId)
      await ada.locator('#f-labels').fill('a11y')
      await ada.keyboard.press('Enter')
      await ada.goto(`${url}#/`)
      await createTicket(ada, 'Second ticket')
      await expect.poll(() => pendingShown(ada), { timeout: 15_000 }).toBe(0)

      // The ticket page, with Bob in it and the history filled.
      await bob.goto(`${url}#/t/${id}`)
      await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Contrast of muted text')
      await ada.goto(`${url}#/t/${id}`)
      await expect.poll(() => ada.getByTestId('viewer').count(), { timeout: 15_000 }).toBe(2)
      await ada.getByTestId('history').getByText('set priority to High').waitFor()
      // Bob's caret in the title, with his name on it, and "Bob Stone is editing".
      await bob.locator('#f-title').click()
      await ada.getByTestId('remote-caret').waitFor({ timeout: 15_000 })
      await ada.getByTestId('editing-title').waitFor({ timeout: 15_000 })
      found.push(...(await check(ada, `a11y-${scheme}-ticket`)))

      await ada.goto(`${url}#/`)
      await expect.poll(() => ada.getByTestId('ticket-row').count(), { timeout: 15_000 }).toBe(2)
      found.push(...(await check(ada, `a11y-${scheme}-tickets`)))

      await ada.getByRole('link', { name: 'Projects', exact: true }).click()
      await ada.getByRole('heading', { name: 'Projects' }).waitFor()
      await ada.getByText('Accessible app').first().waitFor()
      found.push(...(await check(ada, `a11y-${scheme}-projects`)))

      await ada.goto(`${url}#/p/${projectId}`)
      await expect.poll(() => ada.locator('#p-name').inputValue(), { timeout: 15_000 }).toBe('Accessible app')
      await ada.getByText('Contrast of muted text').first().waitFor()
      found.push(...(await check(ada, `a11y-${scheme}-project`)))

      await ada.getByRole('link', { name: 'Sync status' }).click()
      await ada.getByRole('heading', { name: 'Sync status' }).waitFor()
      found.push(...(await check(ada, `a11y-${scheme}-sync`)))

      // Offline with a change waiting: the banner, the count in the menu, the waiting ticket on the sync page.
      await context.setOffline(true)
      await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
      await ada.goto(`${url}#/t/${id}`)
      await ada.locator('#f-priority').selectOption('urgent')
      await ada.getByRole('link', { name: /Sync status/ }).click()
      await ada.getByTestId('unsynced-row').waitFor({ timeout: 15_000 })
      found.push(...(await check(ada, `a11y-${scheme}-sync-offline`)))
      await context.setOffline(false)

      expect(found.join('\n\n'), 'serious or critical accessibility violations').toBe('')
    }, 180_000)
  }

  it('with the keyboard alone, "New ticket" and "New project" put the focus in the new record’s name; another page, on its content', async () => {
    const url = web.relay().url
    const ada = await signIn(await web.context(), url, 'Ada Lovelace', 'keyboard')
    await ada.getByTestId('new-ticket').focus()
    await ada.keyboard.press('Enter')
    await ada.locator('#f-title').waitFor()
    await expect.poll(() => ada.evaluate(() => document.activeElement?.id)).toBe('f-title')
    await ada.keyboard.type('Typed without the mouse')
    await expect.poll(() => ada.locator('#f-title').inputValue()).toBe('Typed without the mouse')

    await ada.goto(`${url}#/projects`)
    await ada.getByTestId('new-project').focus()
    await ada.keyboard.press('Enter')
    await ada.locator('#p-name').waitFor()
    await expect.poll(() => ada.evaluate(() => document.activeElement?.id)).toBe('p-name')
    await ada.keyboard.type('Keyboard project')
    await expect.poll(() => ada.locator('#p-name').inputValue()).toBe('Keyboard project')
    // An existing record opened later puts the focus on the page's content, not in a field, nor nowhere.
    await ada.goto(`${url}#/`)
    await ada.getByTestId('ticket-row').first().focus()
    await ada.keyboard.press('Enter')
    await ada.locator('#f-title').waitFor()
    await expect.poll(() => ada.evaluate(() => document.activeElement?.id)).toBe('main')
    await ada.keyboard.press('Tab')
    expect(await ada.evaluate(() => document.activeElement?.tagName)).not.toBe('BODY')
  }, 60_000)
})
