import type { Browser, BrowserContext, Page } from 'playwright-core'

export declare const CHROMIUM_PATH: string
export declare const chromiumAvailable: () => boolean
export declare const buildTestPage: () => Promise<string>
export declare const servePage: (dir: string) => Promise<{ url: string; close(): Promise<void> }>
export declare const launchChromium: () => Promise<Browser>
export declare const launchChromiumProfile: (userDataDir: string) => Promise<BrowserContext>
export declare const openTestPage: (context: BrowserContext, pageUrl: string, params: Record<string, string>) => Promise<Page>
