/**
 * People are shown by name on every device, in real Chromium, with the
 * relay's token auth and without it:
 *
 * - Ada and Bob edit a ticket (Bob offline, syncing it once he is back on
 *   the list: the ticket shows no presence of his then); Carol, on a
 *   brand-new device that never saw either of them, opens it and sees
 *   "Ada …" and "Bob …" as the authors in its history and as the people in
 *   it — never "Someone", never a user id;
 * - Carol assigns Bob with the assignee picker, which offers the
 *   workspace's people by name — also Dave, who was in the workspace
 *   earlier and left (the relay's list of its people): every device shows
 *   Bob's name as the assignee (and in the history);
 * - Carol reloads with the network off: the names are still there.
 *
 * Screenshots go to test-artifacts/. Skipped only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signIn, signInWithToken, useWebApp } from './webApp.js'
import { TEST_SECRET, signToken } from '../helpers/tokens.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the web-names tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** How a person signs in on a new device. */
type SignInAs = (context: BrowserContext, person: keyof typeof NAMES) => Promise<Page>

const NAMES = { ada: 'Ada Lovelace', bob: 'Bob Stone', carol: 'Carol Diaz', dave: 'Dave Ito' } as const

/** The authors of the history's timeline, top to bottom. */
const historyAuthors = (page: Page): Promise<string[]> => page.locator('[data-testid="history"] .t-who').allInnerTexts()

/** The names in the ticket's "In this ticket". */
const viewerNames = (page: Page): Promise<string[]> => page.getByTestId('viewer').locator('.person-name').allInnerTexts()

/** What the whole history panel says. */
const historyText = (page: Page): Promise<string> => page.getByTestId('history').innerText()

const scenario =
  (signInAs: SignInAs, context: () => Promise<BrowserContext>, url: () => string, label: string) => async (): Promise<void> => {
    // Dave was in the workspace earlier and left: he wrote nothing, nobody here saw him.
    const dave = await signInAs(await context(), 'dave')
    await expect.poll(() => dave.getByTestId('sync-indicator').innerText(), { timeout: 15_000 }).toBe('All changes synced')
    await dave.close()

    const [ada, bob] = await Promise.all([context().then((c) => signInAs(c, 'ada')), context().then((c) => signInAs(c, 'bob'))])

    const id = await createTicket(ada, 'Names everywhere')
    await ada.locator('#f-status').selectOption('in_progress')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)

    await bob.goto(`${url()}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Names everywhere')
    // Bob's first change of it is made offline, and he is back on the list when he reconnects: the ticket syncs
    // while it is not on his screen (no presence of his in it).
    await bob.context().setOffline(true)
    await bob.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await bob.locator('#f-priority').selectOption('high')
    await bob.goto(`${url()}#/`)
    await bob.context().setOffline(false)
    await expect.poll(() => pendingShown(bob), { timeout: 15_000 }).toBe(0)

    // Both leave the ticket. Carol, on a device that never saw Ada or Bob, opens it.
    await Promise.all([ada.goto(`${url()}#/`), bob.goto(`${url()}#/`)])
    const carolContext = await context()
    const carol = await signInAs(carolContext, 'carol')
    await carol.goto(`${url()}#/t/${id}`)
    await expect.poll(() => carol.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Names everywhere')
    await expect.poll(() => historyText(carol), { timeout: 15_000 }).toMatch(/Bob Stone\s*set priority to High/)
    const authors = await historyAuthors(carol)
    expect(new Set(authors)).toEqual(new Set([NAMES.ada, NAMES.bob]))
    expect(await viewerNames(carol)).toEqual([`${NAMES.carol} (you)`])

    // Ada and Bob come back: "In this ticket" names them.
    await Promise.all([ada.goto(`${url()}#/t/${id}`), bob.goto(`${url()}#/t/${id}`)])
    await expect
      .poll(async () => (await viewerNames(carol)).sort(), { timeout: 15_000 })
      .toEqual([NAMES.ada, NAMES.bob, `${NAMES.carol} (you)`])
    const shown = await carol.locator('main').innerText()
    expect(shown).not.toMatch(/Someone/)
    expect(shown).not.toMatch(/\bU[- ]?(Ada|Bob)\b|user-ada|user-bob/i)
    await screenshot(carol, `web-names-${label}-carol-history`)

    // The picker offers the workspace's people by name (Dave too, from the relay's list); picking Bob shows his name everywhere.
    await carol.locator('#f-assignee').click()
    await expect
      .poll(() => carol.locator('#f-assignee option').allInnerTexts(), { timeout: 15_000 })
      .toEqual(['Unassigned', NAMES.ada, NAMES.bob, NAMES.carol, NAMES.dave])
    await carol.locator('#f-assignee').selectOption({ label: NAMES.bob })
    for (const page of [carol, ada, bob]) {
      await expect.poll(() => page.locator('#f-assignee option:checked').innerText(), { timeout: 15_000 }).toBe(NAMES.bob)
      await expect.poll(() => historyText(page), { timeout: 15_000 }).toMatch(/Carol Diaz\s*set assignee to Bob Stone/)
    }
    await screenshot(ada, `web-names-${label}-ada-assigned`)

    // The ticket list names the assignee too (the avatar's initials and what a screen reader says), and so does its filter.
    await ada.goto(`${url()}#/`)
    const row = ada.locator(`[data-testid="ticket-row"][data-id="${id}"]`)
    await expect.poll(() => row.locator('.row-assignee').innerText(), { timeout: 15_000 }).toMatch(/^BS\s*Assigned to Bob Stone$/)
    expect(await ada.getByLabel('Assignee').locator('option').allInnerTexts()).toContain(NAMES.bob)

    // Offline, after a reload: the names are kept on Carol's device.
    await carolContext.setOffline(true)
    await carol.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await carol.reload()
    await carol.locator('#f-title').waitFor({ timeout: 15_000 })
    await expect.poll(() => carol.locator('#f-assignee option:checked').innerText(), { timeout: 15_000 }).toBe(NAMES.bob)
    await expect.poll(() => historyAuthors(carol), { timeout: 15_000 }).toEqual(expect.arrayContaining([NAMES.ada, NAMES.bob, NAMES.carol]))
    expect(await carol.locator('main').innerText()).not.toMatch(/Someone/)
    await screenshot(carol, `web-names-${label}-carol-offline`)
    await carolContext.setOffline(false)
  }

describe.skipIf(!available)('names on every device — relay with token auth', () => {
  const web = useWebApp({ relayEnv: { JWT_SECRET: TEST_SECRET } })
  const signInAs: SignInAs = async (context, person) =>
    signInWithToken(context, web.relay().url, await signToken(`user-${person}`, { names: 'write' }, { name: NAMES[person] }))

  it(
    'Carol on a new device sees Ada and Bob by name in history and presence; assigning Bob shows his name everywhere',
    scenario(signInAs, web.context, () => web.relay().url, 'token'),
    120_000,
  )
})

describe.skipIf(!available)('names on every device — relay without auth', () => {
  const web = useWebApp()
  const signInAs: SignInAs = (context, person) => signIn(context, web.relay().url, NAMES[person], 'names')

  it(
    'Carol on a new device sees Ada and Bob by name in history and presence; assigning Bob shows his name everywhere',
    scenario(signInAs, web.context, () => web.relay().url, 'no-auth'),
    120_000,
  )
})
