/**
 * Helpers for the suites that drive the engine's test page (test/browser/page,
 * `window.concordTest`) in Chromium against a real relay process: one relay,
 * the built page on a local server and one Chromium per suite; browser
 * contexts and TCP proxies (to cut a tab's connection) closed after each test.
 */
import { afterAll, afterEach, beforeAll } from 'vitest'
import type { Browser, BrowserContext } from 'playwright-core'
import type { ConcordTestApi } from './page/main.js'
import { buildTestPage, launchChromium, servePage } from './support/browserPage.mjs'
import { removeDir, startRelay, type RelayProcess } from '../helpers/relayProcess.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js'

declare global {
  interface Window {
    concordTest: ConcordTestApi
  }
}

/** What {@link useTestPage} gives a suite. */
export interface TestPageSuite {
  relay: () => RelayProcess
  /** The URL of the test page. */
  pageUrl: () => string
  /** A new browser context (closed after the test). */
  context: () => Promise<BrowserContext>
  /** A TCP proxy in front of the relay, to cut and restore a tab's connection (closed after the test). */
  proxy: () => Promise<TcpProxy>
}

/** Registers the suite's hooks (call inside a `describe`) and returns accessors for what they start. */
export const useTestPage = (): TestPageSuite => {
  let relay: RelayProcess | undefined
  let server: { url: string; close(): Promise<void> } | undefined
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []
  const proxies: TcpProxy[] = []

  beforeAll(async () => {
    ;[relay, server, browser] = await Promise.all([startRelay(), buildTestPage().then(servePage), launchChromium()])
  }, 60_000)
  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close()
    for (const proxy of proxies.splice(0)) await proxy.close()
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    await relay?.stop()
    if (relay) removeDir(relay.dataDir)
  })

  return {
    relay: () => relay!,
    pageUrl: () => server!.url,
    context: async () => {
      const c = await browser!.newContext()
      contexts.push(c)
      return c
    },
    proxy: async () => {
      const p = await startTcpProxy(Number(new URL(relay!.url).port))
      proxies.push(p)
      return p
    },
  }
}
