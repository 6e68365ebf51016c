/**
 * Two tabs of the same user with the same record open, in real Chromium
 * against a real relay process: edits made in both while the relay is
 * unreachable reach the relay exactly once after the reconnect — also when
 * the tab holding the outbox duty closed meanwhile or does not respond,
 * and when only one tab's connection dropped.
 *
 * Every WebSocket frame each tab sends is decoded (mux header, then the
 * y-protocols sync message); the structs of every Yjs update for the record
 * are collected as (client id, clock) units. Each unit must have been sent
 * once in total, by one tab — not once per tab.
 *
 * Skipped (with a message) only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import type { BrowserContext, Page } from 'playwright-core'
import { protocol } from '@concord/engine'
import { chromiumAvailable } from './support/browserPage.mjs'
import { relayText } from '../helpers/relayText.js'
import { useTestPage } from './testPage.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the Chromium tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** y-protocols sync message types that carry an update. */
const SYNC_STEP_2 = 1
const SYNC_UPDATE = 2

/** Per `client:clock` of a record doc, how often a tab sent that struct unit. */
type SentUnits = Map<string, number>

/** Counts, per `client:clock`, how often a tab sent that struct unit for `doc`. */
const recordFrames = (page: Page, doc: string, counts: SentUnits): void => {
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      if (typeof payload === 'string') return
      const body = decoding.createDecoder(new Uint8Array(payload))
      if (decoding.readVarUint(body) !== protocol.MessageType.sync || decoding.readVarString(body) !== doc) return
      const syncType = decoding.readVarUint(body)
      if (syncType !== SYNC_STEP_2 && syncType !== SYNC_UPDATE) return
      for (const struct of Y.decodeUpdate(decoding.readVarUint8Array(body)).structs) {
        for (let i = 0; i < struct.length; i++) {
          const key = `${struct.id.client}:${struct.id.clock + i}`
          counts.set(key, (counts.get(key) ?? 0) + 1)
        }
      }
    })
  })
}

describe.skipIf(!available)('two tabs send each change once', () => {
  const { relay, pageUrl, context, proxy } = useTestPage()

  /** Opens a tab of user `ada` in `workspace`, counting what it sends for `doc`. */
  const tab = async (ctx: BrowserContext, relayUrl: string, workspace: string, doc: string): Promise<{ page: Page; sent: SentUnits }> => {
    const page = await ctx.newPage()
    const sent: SentUnits = new Map()
    recordFrames(page, doc, sent)
    await page.goto(`${pageUrl()}?${new URLSearchParams({ relay: relayUrl, user: 'ada', workspace })}`)
    await page.waitForFunction(() => 'concordTest' in window)
    await page.evaluate(() => window.concordTest.ready())
    await page.evaluate(() => window.concordTest.waitStatus('online'))
    return { page, sent }
  }
  const onRelay = (doc: string, text: string): Promise<string> => relayText(relay().wsUrl, doc, text)
  /** Struct units sent more than once in total by these tabs. */
  const sentTwice = (...tabs: SentUnits[]): string[] => {
    const total = new Map<string, number>()
    for (const sent of tabs) for (const [key, n] of sent) total.set(key, (total.get(key) ?? 0) + n)
    return [...total].filter(([, n]) => n > 1).map(([key]) => key)
  }
  /** Client ids of the units sent since `before` (a copy of the counts taken earlier). */
  const clientsSentSince = (before: SentUnits, ...tabs: SentUnits[]): Set<string> =>
    new Set(tabs.flatMap((sent) => [...sent.keys()].filter((key) => !before.has(key)).map((key) => key.split(':')[0]!)))

  it('after a reconnect, the edits both tabs made offline reach the relay once', async () => {
    const cut = await proxy()
    const ctx = await context()
    const { page: a, sent: sentA } = await tab(ctx, cut.wsUrl, 'once', 'once/S-1')
    const { page: b, sent: sentB } = await tab(ctx, cut.wsUrl, 'once', 'once/S-1')
    const tabs = [a, b]
    await a.evaluate(() => window.concordTest.create('ticket', { title: 'Once' }, 'S-1'))
    await b.evaluate(() => window.concordTest.waitText('S-1', 'title', 'Once'))
    await Promise.all(tabs.map((p) => p.evaluate(() => window.concordTest.waitPending(0))))

    cut.cut()
    await Promise.all(tabs.map((p) => p.evaluate(() => window.concordTest.waitStatus('offline'))))
    const before = new Map([...sentA, ...sentB])
    await a.evaluate(() => window.concordTest.insertText('S-1', 'title', 4, ' and only once'))
    await b.evaluate(() => window.concordTest.insertText('S-1', 'description', 0, 'typed in the second tab'))
    await b.evaluate(() => window.concordTest.set('S-1', { status: 'in_progress' }))
    await a.evaluate(() => window.concordTest.waitText('S-1', 'description', 'typed in the second tab'))
    await b.evaluate(() => window.concordTest.waitText('S-1', 'title', 'Once and only once'))
    const pending = (await a.evaluate(() => window.concordTest.record('S-1'))).pending
    expect(pending).toBeGreaterThan(0)
    expect((await b.evaluate(() => window.concordTest.record('S-1'))).pending).toBe(pending)

    cut.restore()
    await Promise.all(tabs.map((p) => p.evaluate(() => window.concordTest.waitPending(0))))

    const twice = sentTwice(sentA, sentB)
    expect(twice, `${twice.length} struct units sent more than once`).toEqual([])
    expect(clientsSentSince(before, sentA, sentB).size).toBe(2) // the offline edits of both tabs went out
    const [recordA, recordB] = await Promise.all(tabs.map((p) => p.evaluate(() => window.concordTest.record('S-1'))))
    expect(recordA).toMatchObject({ pending: 0, pendingFields: [] })
    expect(recordB).toMatchObject({ pending: 0, pendingFields: [] })
    expect(recordB.fields).toEqual(recordA.fields)
    expect(recordA.fields).toMatchObject({ title: 'Once and only once', description: 'typed in the second tab', status: 'in_progress' })
    expect(await onRelay('once/S-1', 'text:description')).toBe('typed in the second tab')
  })

  it("the tab with the outbox duty closes while offline: the next one sends both tabs' edits, once", async () => {
    const cut = await proxy()
    const ctx = await context()
    const { page: a, sent: sentA } = await tab(ctx, cut.wsUrl, 'handover', 'handover/S-2')
    const { page: b, sent: sentB } = await tab(ctx, cut.wsUrl, 'handover', 'handover/S-2')
    await a.evaluate(() => window.concordTest.create('ticket', { title: 'Handed over' }, 'S-2'))
    await b.evaluate(() => window.concordTest.waitText('S-2', 'title', 'Handed over'))
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitPending(0))))

    cut.cut()
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitStatus('offline'))))
    const before = new Map([...sentA, ...sentB])
    await a.evaluate(() => window.concordTest.insertText('S-2', 'description', 0, 'from the tab that closes'))
    await b.evaluate(() => window.concordTest.set('S-2', { priority: 'high' }))
    await b.evaluate(() => window.concordTest.waitText('S-2', 'description', 'from the tab that closes'))
    await a.evaluate(() => window.concordTest.whenSaved('S-2'))
    await a.close()

    cut.restore()
    await b.evaluate(() => window.concordTest.waitPending(0))
    const twice = sentTwice(sentA, sentB)
    expect(twice, `${twice.length} struct units sent more than once`).toEqual([])
    expect(clientsSentSince(before, sentB).size).toBe(2) // tab B sent the closed tab's edits and its own
    expect((await b.evaluate(() => window.concordTest.record('S-2'))).fields).toMatchObject({
      description: 'from the tab that closes',
      priority: 'high',
    })
    expect(await onRelay('handover/S-2', 'text:description')).toBe('from the tab that closes')
  })

  it('the tab with the outbox duty does not respond (frozen or busy): the other tab sends the catch-up itself after a while', async () => {
    const cut = await proxy()
    const ctx = await context()
    const { page: a, sent: sentA } = await tab(ctx, cut.wsUrl, 'stuck', 'stuck/S-4')
    const { page: b, sent: sentB } = await tab(ctx, cut.wsUrl, 'stuck', 'stuck/S-4')
    await a.evaluate(() => window.concordTest.create('ticket', { title: 'Stuck' }, 'S-4'))
    await b.evaluate(() => window.concordTest.waitText('S-4', 'title', 'Stuck'))
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitPending(0))))

    cut.cut()
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitStatus('offline'))))
    await a.evaluate(() => window.concordTest.insertText('S-4', 'title', 5, ' in the background'))
    await b.evaluate(() => window.concordTest.insertText('S-4', 'description', 0, 'sent by the tab in front'))
    await a.evaluate(() => window.concordTest.waitText('S-4', 'description', 'sent by the tab in front'))
    await b.evaluate(() => window.concordTest.waitText('S-4', 'title', 'Stuck in the background'))
    // Tab A keeps the outbox duty (its Web Lock) but runs no task for a while.
    const stuckFor = 12_000
    const stuckUntil = Date.now() + stuckFor
    const stuck = a.evaluate((ms) => {
      const end = Date.now() + ms
      while (Date.now() < end) {
        // busy
      }
    }, stuckFor)

    cut.restore()
    await b.evaluate(() => window.concordTest.waitPending(0))
    expect(await onRelay('stuck/S-4', 'text:description')).toBe('sent by the tab in front')
    expect(await onRelay('stuck/S-4', 'text:title')).toBe('Stuck in the background')
    expect(Date.now()).toBeLessThan(stuckUntil) // tab B did it on its own

    await stuck
    await a.evaluate(() => window.concordTest.waitPending(0))
    const twice = sentTwice(sentA, sentB)
    expect(twice, `${twice.length} struct units sent more than once`).toEqual([])
  }, 40_000)

  it('only one tab loses its connection: its edits go out once, through the tab that still has one', async () => {
    const [viaA, viaB] = await Promise.all([proxy(), proxy()])
    const ctx = await context()
    const { page: a, sent: sentA } = await tab(ctx, viaA.wsUrl, 'half', 'half/S-3')
    const { page: b, sent: sentB } = await tab(ctx, viaB.wsUrl, 'half', 'half/S-3')
    await a.evaluate(() => window.concordTest.create('ticket', { title: 'Half' }, 'S-3'))
    await b.evaluate(() => window.concordTest.waitText('S-3', 'title', 'Half'))
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitPending(0))))

    viaB.cut()
    await b.evaluate(() => window.concordTest.waitStatus('offline'))
    await b.evaluate(() => window.concordTest.insertText('S-3', 'description', 0, 'while only this tab was cut off'))
    await a.evaluate(() => window.concordTest.waitText('S-3', 'description', 'while only this tab was cut off'))
    // Tab A (outbox duty, still connected) sends it at once and gets the ack.
    await a.evaluate(() => window.concordTest.waitPending(0))
    expect(await onRelay('half/S-3', 'text:description')).toBe('while only this tab was cut off')

    viaB.restore()
    await b.evaluate(() => window.concordTest.waitPending(0))
    await a.evaluate(() => window.concordTest.insertText('S-3', 'title', 4, ', then whole'))
    await b.evaluate(() => window.concordTest.waitText('S-3', 'title', 'Half, then whole'))
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitPending(0))))
    const twice = sentTwice(sentA, sentB)
    expect(twice, `${twice.length} struct units sent more than once`).toEqual([])
    expect(await onRelay('half/S-3', 'text:title')).toBe('Half, then whole')
  })
})
