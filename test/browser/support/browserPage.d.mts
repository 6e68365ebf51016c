import type { Browser, BrowserContext, Page } from 'playwright-core'

export declare const CHROMIUM_PATH: string
export declare const chromiumAvailable: () => boolean
export type BuiltPage = Map<string, { type: string; body: string | Uint8Array }>
export declare const buildTestPage: () => Promise<BuiltPage>
export declare const servePage: (files: BuiltPage) => Promise<{ url: string; close(): Promise<void> }>
export declare const launchChromium: () => Promise<Browser>
export declare const launchChromiumProfile: (userDataDir: string) => Promise<BrowserContext>
export declare const openTestPage: (context: BrowserContext, pageUrl: string, params: Record<string, string>) => Promise<Page>
