/**
 * Helpers for the web-app tests (test/browser/web-*.test.ts): make sure
 * apps/web/dist exists, start a relay serving it, and drive the app's UI
 * like a person would (sign in, create and open tickets).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium } from './support/browserPage.mjs'
import { removeDir, repoRoot, startRelay, type RelayProcess } from '../helpers/relayProcess.js'

export const webDist = path.join(repoRoot, 'apps/web/dist')
export const artifactsDir = path.join(repoRoot, 'test-artifacts')

/** `npm test` builds first; a lone `vitest run` of this file builds the app if dist is missing. */
export const ensureWebBuilt = (): void => {
  if (existsSync(path.join(webDist, 'index.html'))) return
  // A production build (vitest sets NODE_ENV=test, which would leave out the service worker).
  execFileSync('npm', ['run', 'build', '-w', '@concord/web'], {
    cwd: repoRoot,
    stdio: 'ignore',
    env: { ...process.env, NODE_ENV: 'production' },
  })
}

/** A relay on port 0 serving the built app at its origin (`args`: more relay options, `env`: e.g. JWT_SECRET). */
export const startWebRelay = (args: string[] = [], env?: Record<string, string>): Promise<RelayProcess> =>
  startRelay({ args: ['--web-root', webDist, ...args], ...(env === undefined ? {} : { env }) })

/** Opens the app and signs in as `name` into `workspace`; resolves on the ticket list. */
export const signIn = async (context: BrowserContext, url: string, name: string, workspace: string): Promise<Page> => {
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error(`[${name}] page error:`, error))
  await page.goto(url)
  await page.getByLabel('Your name').fill(name)
  await page.getByLabel('Workspace').fill(workspace)
  await page.getByRole('button', { name: 'Continue' }).click()
  await page.getByRole('heading', { name: 'Tickets' }).waitFor()
  return page
}

/** Creates a ticket through the UI, types its title, and returns its id (the ticket page stays open). */
export const createTicket = async (page: Page, title: string): Promise<string> => {
  await page.getByTestId('new-ticket').click()
  await page.locator('#f-title').waitFor()
  await page.locator('#f-title').click()
  await page.keyboard.type(title)
  const id = /#\/t\/(.+)$/.exec(page.url())?.[1]
  if (id === undefined) throw new Error(`not on a ticket page: ${page.url()}`)
  return id
}

/** {@link createTicket}, then leaves the title and waits until the relay has stored the ticket (nothing pending). */
export const createStoredTicket = async (page: Page, title: string): Promise<string> => {
  const id = await createTicket(page, title)
  await page.keyboard.press('Tab')
  await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
  return id
}

/** Cuts the context's network and waits until the app says it is offline. */
export const goOffline = async (context: BrowserContext, page: Page): Promise<void> => {
  await context.setOffline(true)
  await page.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
}

/** Creates a project through the UI and names it; resolves with its id (the project page stays open). */
export const createProject = async (page: Page, name: string): Promise<string> => {
  await page.getByRole('link', { name: 'Projects', exact: true }).click()
  await page.getByRole('heading', { name: 'Projects' }).waitFor()
  await page.getByTestId('new-project').click()
  await page.locator('#p-name').waitFor()
  await page.locator('#p-name').click()
  await page.keyboard.type(name)
  const id = /#\/p\/(.+)$/.exec(page.url())?.[1]
  if (id === undefined) throw new Error(`not on a project page: ${page.url()}`)
  return id
}

/**
 * Opens the app with an access token handed over in the fragment (`#token=…`)
 * and, when it grants more than one workspace, picks `workspace`; resolves on
 * the ticket list.
 */
export const signInWithToken = async (context: BrowserContext, url: string, token: string, workspace?: string): Promise<Page> => {
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error('[token sign-in] page error:', error))
  await page.goto(`${url}#token=${token}`)
  if (workspace !== undefined) {
    await page.getByLabel('Workspace').selectOption(workspace)
    await page.getByRole('button', { name: 'Continue' }).click()
  }
  await page.getByRole('heading', { name: 'Tickets' }).waitFor()
  return page
}

/** Makes the page record every state of the sync indicator from its first paint on (read them with {@link indicatorHistory}). */
export const watchIndicator = async (page: Page): Promise<void> => {
  await page.addInitScript(() => {
    const seen: Array<{ ready: string | null; label: string; short: string }> = []
    ;(window as unknown as { __indicator: typeof seen }).__indicator = seen
    const record = (): void => {
      const el = document.querySelector('[data-testid="sync-indicator"]')
      if (el === null) return
      // The label, and its short form for narrow screens (both are in the page; CSS shows one).
      const text = (selector: string): string => el.querySelector(selector)?.textContent?.trim() ?? ''
      const entry = { ready: el.getAttribute('data-ready'), label: text('.label.long'), short: text('.label.short') }
      const last = seen[seen.length - 1]
      if (last === undefined || last.ready !== entry.ready || last.label !== entry.label || last.short !== entry.short) seen.push(entry)
    }
    new MutationObserver(record).observe(document, { subtree: true, childList: true, characterData: true, attributes: true })
  })
}

/** Every state the sync indicator went through since the page loaded (see {@link watchIndicator}). */
export const indicatorHistory = (page: Page): Promise<Array<{ ready: string | null; label: string; short: string }>> =>
  page.evaluate(
    () => (window as unknown as { __indicator?: Array<{ ready: string | null; label: string; short: string }> }).__indicator ?? [],
  )

/** The names in the open record's presence (its people's `data-name`), as shown. */
export const viewerNames = (page: Page): Promise<Array<string | null>> =>
  page.getByTestId('viewer').evaluateAll((items) => items.map((item) => item.getAttribute('data-name')))

/** The global pending count the sync indicator shows. */
export const pendingShown = async (page: Page): Promise<number> =>
  Number(await page.getByTestId('sync-indicator').getAttribute('data-pending'))

export const screenshot = async (page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> => {
  mkdirSync(artifactsDir, { recursive: true })
  const file = path.join(artifactsDir, `${name}.png`)
  await page.screenshot({ path: file, fullPage: options.fullPage ?? true })
  return file
}

/**
 * Registers the hooks every web-app browser suite needs (build check, a relay
 * serving the built app, one Chromium, contexts closed after each test) and
 * returns accessors for them. Call inside a `describe`. `relayArgs`: more
 * relay options (e.g. limits); `relayEnv`: its environment (e.g. JWT_SECRET).
 */
export const useWebApp = (
  options: { relayArgs?: string[]; relayEnv?: Record<string, string> } = {},
): {
  relay: () => RelayProcess
  context: (viewport?: { width: number; height: number }, colorScheme?: 'light' | 'dark') => Promise<BrowserContext>
} => {
  let relay: RelayProcess | undefined
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []
  beforeAll(async () => {
    ensureWebBuilt()
    ;[relay, browser] = await Promise.all([startWebRelay(options.relayArgs, options.relayEnv), launchChromium()])
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await relay?.stop()
    if (relay) removeDir(relay.dataDir)
  })
  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close()
  })
  return {
    relay: () => relay!,
    context: async (viewport = { width: 1200, height: 820 }, colorScheme = 'light') => {
      const c = await browser!.newContext({ viewport, colorScheme })
      contexts.push(c)
      return c
    },
  }
}

/** Sets the clock of every page of `context` `ahead` ms ahead of the real time (as a device set wrong would be). */
export const clockAhead = async (context: BrowserContext, ahead: number): Promise<void> => {
  await context.addInitScript((ms: number) => {
    const RealDate = Date
    const realNow = RealDate.now.bind(RealDate)
    class DeviceDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(realNow() + ms)
        else super(...(args as [string]))
      }
      static override now(): number {
        return realNow() + ms
      }
    }
    ;(globalThis as { Date: DateConstructor }).Date = DeviceDate as DateConstructor
  }, ahead)
}
