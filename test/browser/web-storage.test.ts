/**
 * The web app when this browser cannot save its data, in Chromium:
 *
 * - IndexedDB unavailable (an init script makes `window.indexedDB` throw, as
 *   private modes and policies do): the store runs in memory; a banner says
 *   changes stay only in this tab, with no Retry (a retry cannot help), and
 *   nothing — sync indicator, offline banner, ticket badge, empty list —
 *   ever says "saved on this device", online or offline;
 * - the site's quota exhausted (an init script makes IndexedDB's write
 *   transactions throw `QuotaExceededError` while `window.__storageFull` is set): the "Not saved
 *   on this device" banner comes; Retry while it still fails keeps it (with
 *   the reason), Retry once there is room again clears it;
 * - a disk filling up (`navigator.storage.estimate()` says so while
 *   `window.__space` is set): a warning with the figures before saving
 *   fails, gone once there is room; the sync page's storage line; tickets
 *   nobody touched for a month are removed from the device to make room,
 *   stay listed (also after a reload, online or offline), say why offline and
 *   come back when opened online.
 *
 * Every state the page showed is watched from its first paint for the claim.
 * Screenshots go to test-artifacts/. Skipped only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import WebSocket from 'ws'
import { MemoryStorage, RecordStore, SyncClient } from '@concord/engine'
import { appSchemas } from '../../apps/web/src/lib/schemas.js'
import { createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the storage-failure tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** Records every text (and tooltip) the page shows that claims changes are saved on this device. */
const watchClaims = async (context: BrowserContext): Promise<void> => {
  await context.addInitScript(() => {
    const claims: string[] = []
    ;(window as unknown as { __claims: string[] }).__claims = claims
    const claim = /(?<!not )(saved|stored) on this device/i
    const check = (): void => {
      const texts = [
        document.body?.innerText ?? '',
        ...Array.from(document.querySelectorAll('[title]'), (el) => el.getAttribute('title') ?? ''),
      ]
      for (const text of texts) {
        const line = text.split('\n').find((l: string) => claim.test(l))
        if (line !== undefined && !claims.includes(line)) claims.push(line)
      }
    }
    new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true, attributes: true })
  })
}

/** IndexedDB refuses every write (`readwrite` transaction) with `QuotaExceededError`, as when the site's quota is exhausted, while `window.__storageFull` is true. */
const simulateQuota = async (context: BrowserContext): Promise<void> => {
  await context.addInitScript(() => {
    const original = IDBDatabase.prototype.transaction
    IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
      const w = window as unknown as { __storageFull?: boolean; __refused?: number }
      if (args[1] === 'readwrite' && w.__storageFull === true) {
        w.__refused = (w.__refused ?? 0) + 1
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      }
      return original.apply(this, args)
    }
  })
}

/**
 * `navigator.storage.estimate()` says what `window.__space` holds (bytes used and the quota) while it is set — a disk
 * filling up, which this machine's Chromium cannot be made to report (its quota is the free disk plus a fixed share,
 * and CDP's quota override does not reach `estimate()`); the real answer otherwise.
 */
const simulateSpace = async (context: BrowserContext, space: { usage: number; quota: number }): Promise<void> => {
  await context.addInitScript((initial) => {
    const w = window as unknown as { __space?: { usage: number; quota: number }; __estimates?: number }
    w.__space = initial
    const real = StorageManager.prototype.estimate
    StorageManager.prototype.estimate = function (this: StorageManager) {
      w.__estimates = (w.__estimates ?? 0) + 1
      return w.__space === undefined ? real.call(this) : Promise.resolve({ ...w.__space })
    }
  }, space)
}

const setSpace = (page: Page, space: { usage: number; quota: number }): Promise<void> =>
  page.evaluate((value) => void ((window as unknown as { __space?: unknown }).__space = value), space)

const setStorageFull = (page: Page, full: boolean): Promise<void> =>
  page.evaluate((value) => void ((window as unknown as { __storageFull?: boolean }).__storageFull = value), full)

const claimsSeen = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { __claims: string[] }).__claims)

/** Forgets the claims seen so far (they were true then). */
const forgetClaims = (page: Page): Promise<void> =>
  page.evaluate(() => void ((window as unknown as { __claims: string[] }).__claims.length = 0))

describe.skipIf(!available)('web app: storage failures', () => {
  const web = useWebApp()

  it('IndexedDB unavailable: the app says changes stay in this tab, has no Retry, never says "saved on this device"', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    await ctx.addInitScript(() => {
      Object.defineProperty(window, 'indexedDB', {
        configurable: true,
        get() {
          throw new DOMException('The user denied permission to access the database.', 'SecurityError')
        },
      })
    })
    await watchClaims(ctx)
    const ada = await signIn(ctx, url, 'Ada Lovelace', 'no-storage')
    const banner = ada.getByTestId('storage-banner')
    await banner.waitFor()
    expect(await banner.getAttribute('data-persistent')).toBe('false')
    expect(await banner.innerText()).toContain(
      'Not saved on this device: This browser is not letting the app store data: changes stay only in this tab until they reach the server.',
    )
    expect(await banner.getByRole('button').count()).toBe(0)
    // Once the relay's listing came ("Getting the workspace's tickets…" before): the empty list says where a new ticket is kept.
    await ada.getByText(/Create the first one — it is kept in this tab/).waitFor()

    const id = await createTicket(ada, 'Memory only')
    await ada.keyboard.press('Tab') // leaving the title ends the typing burst: its history entry is written now
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    expect(await ada.getByTestId('sync-indicator').getAttribute('data-saved-on-device')).toBe('false')

    // Offline: an edit waits in this tab only, and every place says so.
    await ctx.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    expect(await ada.getByTestId('offline-banner').innerText()).toMatch(/changes are kept in this tab only, not saved on this device/)
    await ada.locator('#f-status').selectOption('in_progress')
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 10_000 }).toBe('Offline — 1 change in this tab only')
    expect(await ada.getByTestId('ticket-sync').innerText()).toMatch(/in this tab only, not saved on this device/)
    await screenshot(ada, 'web-storage-unavailable-offline')
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await ada.locator(`[data-testid="unsynced-row"][data-id="${id}"]`).waitFor()
    // (between reconnect attempts; during one it says "Reaching the relay…")
    await expect
      .poll(() => ada.getByTestId('sync-summary').innerText(), { timeout: 10_000 })
      .toBe(
        'The relay is not reachable. 1 change in 1 ticket is kept in this tab only — not saved on this device — and will be sent when it is back; closing the tab before then loses them.',
      )

    // Back online, the change reaches the relay; the banner stays (the store still runs in memory).
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    await ada.goto(`${url}#/t/${id}`)
    await ada.getByTestId('ticket-sync').getByText('Synced').waitFor({ timeout: 10_000 })
    expect(await banner.isVisible()).toBe(true)
    expect(await claimsSeen(ada)).toEqual([])
  }, 120_000)

  it('quota exhausted: the not-saved banner stays through a failing Retry and goes once a Retry works', async () => {
    const url = web.relay().url
    const ctx = await web.context()
    await watchClaims(ctx)
    await simulateQuota(ctx)
    const ada = await signIn(ctx, url, 'Ada Lovelace', 'quota')
    await createTicket(ada, 'Quota')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await ada.getByTestId('ticket-sync').getByText('Synced').waitFor({ timeout: 10_000 })
    expect(await ada.getByTestId('sync-indicator').getAttribute('data-saved-on-device')).toBe('true')

    await setStorageFull(ada, true)
    await ctx.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.locator('#f-title').click()
    await ada.keyboard.type(' — more than fits')
    const banner = ada.getByTestId('storage-banner')
    await banner.waitFor({ timeout: 15_000 })
    // Until now storage worked (the edit's own write is what failed): from here on nothing may claim it.
    await forgetClaims(ada)
    expect(await banner.getAttribute('data-persistent')).toBe('true')
    expect(await banner.innerText()).toMatch(/Not saved on this device: this browser’s storage for the app is full/)
    expect(await banner.getAttribute('title')).toMatch(/quota for this site is exhausted/)
    expect(await ada.getByTestId('sync-indicator').innerText()).toMatch(/^Offline — \d+ changes? in this tab only$/)
    expect(await ada.getByTestId('ticket-sync').innerText()).toMatch(/in this tab only, not saved on this device/)
    expect(await ada.getByTestId('offline-banner').innerText()).toMatch(/kept in this tab only/)
    expect(await ada.getByTestId('ticket-sync').getAttribute('data-unsaved')).toBe('true')

    // Retry while the quota is still exhausted: the writes are tried (and refused) again; the banner stays, with the reason.
    const refused = (): Promise<number> => ada.evaluate(() => (window as unknown as { __refused?: number }).__refused ?? 0)
    const before = await refused()
    await banner.getByRole('button', { name: 'Retry' }).click()
    await expect.poll(refused, { timeout: 15_000 }).toBeGreaterThan(before)
    await banner.getByRole('button', { name: 'Retry' }).waitFor({ timeout: 15_000 })
    expect(await banner.isVisible()).toBe(true)
    expect(await banner.innerText()).toMatch(/storage for the app is full/)
    await screenshot(ada, 'web-storage-quota-retry-failed')
    expect(await claimsSeen(ada)).toEqual([])

    // Room again: Retry writes everything and the banner goes.
    await setStorageFull(ada, false)
    await banner.getByRole('button', { name: 'Retry' }).click()
    await banner.waitFor({ state: 'detached', timeout: 15_000 })
    expect(await ada.getByTestId('sync-indicator').getAttribute('data-saved-on-device')).toBe('true')
    await expect.poll(() => ada.getByTestId('ticket-sync').getAttribute('data-saved'), { timeout: 10_000 }).toBe('true')
    expect(await ada.getByTestId('sync-indicator').innerText()).toMatch(/^Offline — \d+ changes? saved on this device$/)
    await ctx.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    expect(await claimsSeen(ada)).toEqual(expect.arrayContaining([expect.stringMatching(/saved on this device/)])) // the watcher works
    await ada.reload()
    await ada.locator('#f-title').waitFor()
    expect(await ada.locator('#f-title').inputValue()).toBe('Quota — more than fits')
  }, 120_000)

  it('a disk filling up: a warning with the figures before saving fails, the sync page says what the browser may clear; it goes once there is room', async () => {
    const url = web.relay().url
    const ctx = await web.context({ width: 360, height: 760 })
    const MB = 1_000_000
    await simulateSpace(ctx, { usage: 20 * MB, quota: 100 * MB })
    const ada = await signIn(ctx, url, 'Ada Lovelace', 'space')
    const id = await createTicket(ada, 'Roomy')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    // Read at start-up: plenty of room, no warning; the sync page has the figures.
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await expect
      .poll(() => ada.getByTestId('storage-space').innerText(), { timeout: 10_000 })
      .toBe(
        '20 MB of 100 MB used (20 %). The browser may clear this data when the disk runs low: what the relay has stored is safe, changes not yet synced are not.',
      )
    expect(await ada.getByTestId('space-banner').count()).toBe(0)
    await screenshot(ada, 'web-storage-space-sync-page', { fullPage: true })

    // The disk fills up while she works: the next stored change reads it, and the warning comes — saving still works.
    await setSpace(ada, { usage: 86.4 * MB, quota: 100 * MB })
    await ada.goto(`${url}#/t/${id}`)
    await ada.locator('#f-status').selectOption('in_progress')
    const banner = ada.getByTestId('space-banner')
    await banner.waitFor({ timeout: 20_000 })
    expect(await banner.innerText()).toBe(
      'This device is running out of room for the app: 86 MB of the 100 MB this browser allows the app are used (86 %). Changes are still saved here. Records nobody changed or opened here for a month are removed to make room (they stay on the relay); none has been so far. Once it is full, new changes are kept in this tab only until the relay has them — free up space on this device, or keep the app online.',
    )
    expect(await ada.getByTestId('storage-banner').count()).toBe(0) // nothing failed: no "not saved" claim
    await expect.poll(() => ada.getByTestId('ticket-sync').getAttribute('data-saved'), { timeout: 10_000 }).toBe('true')
    // On a phone the banner wraps inside the screen.
    const box = await banner.boundingBox()
    expect(box!.x + box!.width).toBeLessThanOrEqual(360)
    await screenshot(ada, 'web-storage-space-low')

    // Room again (she emptied the downloads folder): the next change reads it and the warning goes.
    await setSpace(ada, { usage: 41 * MB, quota: 100 * MB })
    await ada.locator('#f-status').selectOption('done')
    await banner.waitFor({ state: 'detached', timeout: 20_000 })
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await expect.poll(() => ada.getByTestId('storage-space').innerText(), { timeout: 10_000 }).toMatch(/^41 MB of 100 MB used \(41 %\)\./)
  }, 120_000)

  it('a device out of room lets go of tickets nobody touched for a month: still listed, "removed to free space" offline, back when opened online', async () => {
    const url = web.relay().url
    const MB = 1_000_000
    // Two tickets another device wrote 40 days ago (its clock says so), nobody touched since.
    const old = Date.now() - 40 * 24 * 60 * 60 * 1000
    const client = new SyncClient({ url: web.relay().wsUrl, WebSocket: WebSocket as never })
    const bob = new RecordStore({
      client,
      userId: 'local-bob',
      workspaceId: 'attic',
      schemas: appSchemas,
      tabs: false,
      storage: new MemoryStorage(),
      now: () => old,
    })
    for (const [id, title] of [
      ['OLD-1', 'Printer driver crash'],
      ['OLD-2', 'Fonts blurry on Windows 7'],
    ] as const) {
      const ticket = await bob.create('ticket', { title }, { id })
      await ticket.flush()
      ticket.close()
    }
    await bob.close()
    client.close()

    const ctx = await web.context()
    await simulateSpace(ctx, { usage: 20 * MB, quota: 100 * MB })
    const ada = await signIn(ctx, url, 'Ada Lovelace', 'attic')
    await ada.getByText('Fonts blurry on Windows 7').waitFor({ timeout: 15_000 })
    const id = await createTicket(ada, 'Checkout button misaligned')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    expect(await ada.evaluate(() => indexedDB.databases().then((d) => d.length))).toBeGreaterThan(0)

    // The disk fills up: at the next reading the old tickets go (hers, changed just now, stays).
    await setSpace(ada, { usage: 92 * MB, quota: 100 * MB })
    await ada.locator('#f-status').selectOption('in_progress')
    // Still low (the simulated disk does not empty): the warning says what was removed, not that room was made.
    await expect
      .poll(() => ada.getByTestId('space-banner').innerText(), { timeout: 20_000 })
      .toMatch(
        /saved here\. 2 records nobody changed or opened here for a month were removed to make room \(they stay on the relay\)\. Once/,
      )
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await expect
      .poll(() => ada.getByTestId('removed-here').innerText(), { timeout: 20_000 })
      .toBe(
        '2 records nobody changed or opened here for a month were removed from this device to free space. They are still listed, and come back from the relay when opened online.',
      )
    await screenshot(ada, 'web-storage-removed-sync-page', { fullPage: true })
    const databases = async (): Promise<number> => ada.evaluate(() => indexedDB.databases().then((d) => d.length))
    const stored = await databases()

    // A reload online (room again, as the init script says): the relay still has them unchanged, so they are neither
    // fetched back nor forgotten — listed, counted as removed, and their databases stay gone.
    await ada.reload()
    await expect
      .poll(() => ada.getByTestId('removed-here').innerText(), { timeout: 20_000 })
      .toMatch(/^2 records nobody changed or opened here for a month were removed/)
    await ada.goto(`${url}#/`)
    for (const title of ['Printer driver crash', 'Fonts blurry on Windows 7', 'Checkout button misaligned'])
      await ada.getByText(title).waitFor({ timeout: 10_000 })
    await expect.poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 15_000 }).toBe('All changes synced')
    expect(await databases()).toBe(stored)

    // Offline, and a reload from the app's cached files: a removed ticket says why it is not here; her own is.
    await ctx.setOffline(true)
    await ada.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await ada.reload()
    await ada.getByText('Printer driver crash').click({ timeout: 15_000 })
    await ada.getByText('This ticket was removed from this device to free space.').waitFor({ timeout: 10_000 })
    expect(await ada.getByText('It will appear as soon as the relay is reachable.').isVisible()).toBe(true)
    await screenshot(ada, 'web-storage-removed-offline')
    await ada.goto(`${url}#/t/${id}`)
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Checkout button misaligned')
    await ada.goBack()
    await ada.getByText('This ticket was removed from this device to free space.').waitFor({ timeout: 10_000 })

    // Online again: it comes back whole, and is on this device again.
    await ctx.setOffline(false)
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 20_000 }).toBe('Printer driver crash')
    await ada.getByRole('link', { name: /Sync status/ }).click()
    await expect
      .poll(() => ada.getByTestId('removed-here').innerText(), { timeout: 10_000 })
      .toMatch(/^1 record nobody changed or opened here for a month was removed from this device to free space\. It is still listed/)
  }, 120_000)
})
