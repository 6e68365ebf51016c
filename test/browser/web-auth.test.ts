/**
 * The web app against a relay with JWT auth (JWT_SECRET), in real Chromium:
 *
 * - the relay tells the app that sign-in takes a token (`/.concord/config`);
 * - Ada's token is handed over in the address (`#token=…`): she is signed
 *   in as the user the relay proved, and the token leaves the address bar;
 *   a reload keeps her signed in (the token stays with the tab);
 * - Bob pastes a read-only token: he sees a read-only notice, Ada's edits
 *   reach him, and the ticket's fields are disabled for him;
 * - a token signed with another key is refused with the relay's reason, and
 *   a token that expires while in use sends the user back to sign-in —
 *   saying so when changes made offline still wait, which a fresh token
 *   then sends;
 * - a device whose clock runs ahead signs in with a token the relay still
 *   takes (the relay's clock decides when a token has expired);
 * - a fresh token handed over while the app is open (`#token=…`) replaces the
 *   expiring one without leaving the workspace.
 *
 * Screenshots go to test-artifacts/. Skipped only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import { chromiumAvailable } from './support/browserPage.mjs'
import { clockAhead, createTicket, pendingShown, screenshot, signInWithToken, useWebApp } from './webApp.js'
import { TEST_SECRET, signToken } from '../helpers/tokens.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the web-auth tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('web app with the relay’s token auth', () => {
  const web = useWebApp({ relayEnv: { JWT_SECRET: TEST_SECRET } })
  const context = web.context

  it('a writer and a read-only reader: identity from the token, edits reach the reader, who cannot edit', async () => {
    const url = web.relay().url
    const adaToken = await signToken('ada', { acme: 'write' }, { name: 'Ada Lovelace' })
    const bobToken = await signToken('bob', { acme: 'read', other: 'write' }, { name: 'Bob Stone' })

    // Ada: handed over in the fragment, one workspace: signed in without a click; the token leaves the address.
    const ada = await signInWithToken(await context(), url, adaToken)
    expect(ada.url()).not.toContain('token')
    expect(await ada.locator('.me-name').innerText()).toBe('Ada Lovelace')
    expect(await ada.getByTestId('read-only-banner').count()).toBe(0)
    const id = await createTicket(ada, 'Rotate the signing key')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)

    // Bob pastes his token and picks the workspace he may only read.
    const bob = await (await context()).newPage()
    await bob.goto(url)
    await bob.getByLabel('Access token').fill(bobToken)
    await bob.getByLabel('Workspace').selectOption('acme')
    expect(await bob.getByLabel('Workspace').locator('option:checked').innerText()).toBe('acme (read only)')
    await screenshot(bob, 'web-auth-signin-token')
    await bob.getByRole('button', { name: 'Continue' }).click()
    await bob.getByRole('heading', { name: 'Tickets' }).waitFor()
    expect(await bob.locator('.me-name').innerText()).toBe('Bob Stone')
    await bob.getByTestId('read-only-banner').waitFor()
    expect(await bob.getByTestId('new-ticket').isDisabled()).toBe(true)

    await bob.goto(`${url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Rotate the signing key')
    expect(await bob.locator('#f-title').isDisabled()).toBe(true)
    expect(await bob.locator('#f-status').isDisabled()).toBe(true)

    // Ada keeps editing; Bob sees it, and nothing of his waits for the relay.
    await ada.locator('#f-title').click()
    await ada.keyboard.press('End')
    await ada.keyboard.type(' today')
    await ada.locator('#f-status').selectOption('in_progress')
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Rotate the signing key today')
    await expect.poll(() => bob.locator('#f-status').inputValue(), { timeout: 15_000 }).toBe('in_progress')
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    expect(await bob.getByTestId('sync-indicator').innerText()).toMatch(/synced/i)
    await screenshot(bob, 'web-auth-read-only')

    // The token stays with the tab: a reload keeps Ada signed in.
    await ada.reload()
    await ada.locator('#f-title').waitFor({ timeout: 15_000 })
    expect(await ada.locator('.me-name').innerText()).toBe('Ada Lovelace')
    await screenshot(ada, 'web-auth-writer')
  }, 90_000)

  it('a token the relay refuses shows why; an expiring token sends the user back to sign-in', async () => {
    const url = web.relay().url
    const forged = await signToken('mallory', { acme: 'write' }, { secret: 'another-secret-that-is-at-least-32-bytes' })
    const page = await (await context()).newPage()
    await page.goto(url)
    await page.getByLabel('Access token').fill(forged)
    await page.getByRole('button', { name: 'Continue' }).click()
    await expect.poll(() => page.getByTestId('token-error').innerText(), { timeout: 15_000 }).toMatch(/relay refused this access token/)
    await screenshot(page, 'web-auth-refused')

    const short = await signToken('cleo', { acme: 'write' }, { name: 'Cleo Park', expiresIn: 4 })
    const cleo = await signInWithToken(await context(), url, short)
    await cleo.getByTestId('signin-message').waitFor({ timeout: 30_000 })
    expect(await cleo.getByTestId('signin-message').innerText()).toMatch(/expired/)
    await screenshot(cleo, 'web-auth-expired')
  }, 90_000)

  it('the relay, not the device, says when a token has expired: two hours ahead, a token valid for an hour signs in; two hours behind, a lapsed one is refused', async () => {
    const url = web.relay().url
    const token = await signToken('dana', { acme: 'write' }, { name: 'Dana Reyes', expiresIn: 3_600 })
    const danaContext = await context()
    await clockAhead(danaContext, 2 * 3_600_000)
    const page = await danaContext.newPage()
    await page.goto(url)
    await page.getByLabel('Access token').fill(token)
    await page.getByRole('button', { name: 'Continue' }).click()
    await page.getByRole('heading', { name: 'Tickets' }).waitFor({ timeout: 15_000 })
    expect(await page.getByTestId('token-error').count()).toBe(0)
    await screenshot(page, 'web-auth-clock-ahead')

    // And the other way: a device two hours behind, a token that lapsed a minute ago — the relay refuses it as expired.
    const lapsed = await signToken('erin', { acme: 'write' }, { name: 'Erin Holt', expiresIn: -60 })
    const erinContext = await context()
    await clockAhead(erinContext, -2 * 3_600_000)
    const erin = await erinContext.newPage()
    await erin.goto(url)
    await erin.getByLabel('Access token').fill(lapsed)
    await erin.getByRole('button', { name: 'Continue' }).click()
    await expect.poll(() => erin.getByTestId('token-error').innerText(), { timeout: 15_000 }).toMatch(/access token has expired/)
  }, 60_000)

  it('a token that expires while changes wait offline: the sign-in page says they are kept and sent after signing in again', async () => {
    const url = web.relay().url
    const ctx = await context()
    const short = await signToken('erin', { acme: 'write' }, { name: 'Erin Holt', expiresIn: 5 })
    const erin = await signInWithToken(ctx, url, short)
    await expect.poll(() => erin.getByTestId('sync-indicator').innerText(), { timeout: 10_000 }).toBe('All changes synced')
    await ctx.setOffline(true)
    await erin.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await createTicket(erin, 'Written as the token ran out')
    await expect.poll(() => pendingShown(erin)).toBeGreaterThan(0)
    await erin.waitForTimeout(5_500) // past the token's expiry
    await ctx.setOffline(false)
    await erin.getByTestId('signin-message').waitFor({ timeout: 30_000 })
    const message = await erin.getByTestId('signin-message').innerText()
    expect(message).toMatch(/expired/)
    expect(message).toMatch(
      /changes? made here (is|are) not on the server yet: kept on this device, (it is|they are) sent once you sign in again/,
    )
    await screenshot(erin, 'web-auth-expired-waiting')
    // Signing in again with a fresh token sends them.
    const fresh = await signToken('erin', { acme: 'write' }, { name: 'Erin Holt', expiresIn: 3600 })
    await erin.getByLabel('Access token').fill(fresh)
    await erin.getByRole('button', { name: 'Continue' }).click()
    await expect.poll(() => erin.getByTestId('sync-indicator').innerText(), { timeout: 20_000 }).toBe('All changes synced')
    await erin.evaluate(() => (location.hash = '#/'))
    await expect
      .poll(() => erin.getByTestId('ticket-row').first().innerText(), { timeout: 15_000 })
      .toContain('Written as the token ran out')
  }, 90_000)

  it('a fresh token handed over while the app is open keeps the user signed in past the old expiry', async () => {
    const url = web.relay().url
    const first = await signToken('dana', { acme: 'write' }, { name: 'Dana Reyes', expiresIn: 4 })
    const dana = await signInWithToken(await context(), url, first)
    await expect.poll(() => dana.getByTestId('sync-indicator').innerText(), { timeout: 10_000 }).toBe('All changes synced')
    const fresh = await signToken('dana', { acme: 'write' }, { name: 'Dana Reyes', expiresIn: 3600 })
    await dana.evaluate((token) => (location.hash = `#token=${token}`), fresh)
    await expect.poll(() => dana.url()).not.toContain('token')
    await dana.waitForTimeout(6_000) // past the first token's expiry
    expect(await dana.getByTestId('signin-message').count()).toBe(0)
    const id = await createTicket(dana, 'Still signed in')
    expect(id).not.toBe('')
    await expect.poll(() => pendingShown(dana), { timeout: 10_000 }).toBe(0)
  }, 60_000)
})
