/**
 * A reload while the last keystrokes are not stored yet, in Chromium, offline:
 * an init script keeps IndexedDB's write transactions from completing while
 * `window.__stallWrites` is set (as when the page goes a few milliseconds
 * after a keystroke, before its transaction committed: the browser aborts
 * it). The page keeps what it had not stored while it goes; after the
 * reload the typed text is there, with its history entry, counted as
 * unsynced, and it reaches the relay (and another person) once online.
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { BrowserContext } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createStoredTicket, goOffline, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the reload tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** While `window.__stallWrites` is true, IndexedDB write transactions never complete (they stay busy). */
const stallableWrites = async (context: BrowserContext): Promise<void> => {
  await context.addInitScript(() => {
    const original = IDBDatabase.prototype.transaction
    IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
      const transaction = original.apply(this, args)
      if (args[1] === 'readwrite' && (window as unknown as { __stallWrites?: boolean }).__stallWrites === true) {
        const store = transaction.objectStore(transaction.objectStoreNames[0]!)
        const keepBusy = (): void => {
          store.count().onsuccess = keepBusy
        }
        keepBusy()
      }
      return transaction
    }
  })
}

describe.skipIf(!available)('web app: reload before the last keystrokes were stored', () => {
  const web = useWebApp()

  it('offline, the text typed just before a reload is there after it, unsynced, and reaches the others once online', async () => {
    const url = web.relay().url
    const adaContext = await web.context()
    await stallableWrites(adaContext)
    const ada = await signIn(adaContext, url, 'Ada Lovelace', 'reload')
    const id = await createStoredTicket(ada, 'Printer jams')

    await goOffline(adaContext, ada)
    await ada.evaluate(() => void ((window as unknown as { __stallWrites?: boolean }).__stallWrites = true))
    await ada.locator('#f-description').click()
    await ada.keyboard.type('Tray 2 only, after the firmware update.')
    await ada.reload()

    await ada.locator('#f-description').waitFor()
    await expect.poll(() => ada.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('Tray 2 only, after the firmware update.')
    await expect
      .poll(() => ada.getByTestId('sync-indicator').innerText(), { timeout: 10_000 })
      .toMatch(/^Offline — \d+ changes? saved on this device$/)
    await expect.poll(() => ada.getByTestId('history').innerText(), { timeout: 10_000 }).toMatch(/description/i)
    await screenshot(ada, 'web-reload-unsaved-after-reload')
    // Stored now: another reload keeps it without any help.
    await ada.reload()
    await expect.poll(() => ada.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('Tray 2 only, after the firmware update.')

    await adaContext.setOffline(false)
    await expect.poll(() => pendingShown(ada), { timeout: 20_000 }).toBe(0)
    const bob = await signIn(await web.context(), url, 'Bob Stone', 'reload')
    await bob.goto(`${url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe('Tray 2 only, after the firmware update.')
  }, 120_000)
})
