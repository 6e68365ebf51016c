/**
 * The record store in real Chromium (real IndexedDB, BroadcastChannel,
 * page reloads) against a real relay process:
 *
 * - edit offline → reload the page → edits and pending counts are still
 *   there → reconnect → pending goes to 0 only after the relay's ack;
 * - two tabs share edits at once and report the same pending counts;
 * - sign-out refuses to drop unsynced work, then wipes the user's databases
 *   (and only theirs), and the other tab signs out too;
 * - a record is removed to free space only where no tab has it open (Web
 *   Locks): its database goes, its catalog entry stays, and read online it
 *   comes back whole;
 * - quota exceeded and IndexedDB unavailable keep the app working.
 *
 * Skipped (with a message) only when /usr/bin/chromium is missing.
 */
import { describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { chromiumAvailable, openTestPage } from './support/browserPage.mjs'
import { relayText } from '../helpers/relayText.js'
import { useTestPage } from './testPage.js'

const available = chromiumAvailable()
if (!available) console.warn('test/browser: skipping the Chromium tests — /usr/bin/chromium is missing (apt-get install chromium)')

describe.skipIf(!available)('record store in Chromium', () => {
  const { relay, pageUrl, context, proxy } = useTestPage()
  const open = async (ctx: BrowserContext, params: Record<string, string>): Promise<Page> => {
    const page = await openTestPage(ctx, pageUrl(), params)
    await page.evaluate(() => window.concordTest.ready())
    return page
  }
  /** Reads a record straight from the relay with a Node client. */
  const onRelay = (doc: string, text: string): Promise<string> => relayText(relay().wsUrl, doc, text)

  it('offline edits survive a reload with their pending counts; pending reaches 0 only after the ack', async () => {
    const cut = await proxy()
    const ctx = await context()
    const page = await open(ctx, { relay: cut.wsUrl, user: 'ada', workspace: 'train' })
    await page.evaluate(() => window.concordTest.waitStatus('online'))
    await page.evaluate(() => window.concordTest.create('ticket', { title: 'On the train' }, 'TR-1'))
    await page.evaluate(() => window.concordTest.flush('TR-1'))

    cut.cut()
    await page.evaluate(() => window.concordTest.waitStatus('offline'))
    await page.evaluate(async () => {
      await window.concordTest.set('TR-1', { status: 'in_progress' })
      await window.concordTest.insertText('TR-1', 'description', 0, 'written with the lid half closed')
      // The burst's history entry is part of the edit (a page that goes writes it while it goes).
      await window.concordTest.endTyping('TR-1')
      await window.concordTest.whenSaved('TR-1')
    })
    const before = await page.evaluate(() => window.concordTest.record('TR-1'))
    expect(before.pending).toBeGreaterThan(0)
    expect(before.pendingFields).toEqual(['description', 'status'])
    expect(before.saved).toBe(true)

    await page.reload()
    await page.waitForFunction(() => 'concordTest' in window)
    const ready = await page.evaluate(() => window.concordTest.ready())
    expect(ready).toEqual({ persistent: true, pending: before.pending })
    const after = await page.evaluate(() => window.concordTest.record('TR-1'))
    expect(after.fields).toMatchObject({ title: 'On the train', status: 'in_progress', description: 'written with the lid half closed' })
    expect(after.pending).toBe(before.pending)
    expect(after.pendingFields).toEqual(before.pendingFields)
    expect(await page.evaluate(() => window.concordTest.status())).not.toBe('online')

    cut.restore()
    await page.evaluate(() => window.concordTest.waitPending(0))
    const statuses = await page.evaluate(() => window.concordTest.statuses())
    // It was online while the edits were still pending: only the ack brought them to 0.
    expect(statuses.some((s) => s.startsWith('online:') && Number(s.slice(7)) > 0)).toBe(true)
    expect((await page.evaluate(() => window.concordTest.record('TR-1'))).pendingFields).toEqual([])
    expect(await onRelay('train/TR-1', 'text:description')).toBe('written with the lid half closed')
  })

  it('a record whose catalog entry was lost is found again after a reload (indexedDB.databases()) and stops a wipe', async () => {
    const cut = await proxy()
    const ctx = await context()
    const page = await open(ctx, { relay: cut.wsUrl, user: 'ada', workspace: 'lost' })
    await page.evaluate(() => window.concordTest.waitStatus('online'))
    cut.cut()
    await page.evaluate(() => window.concordTest.waitStatus('offline'))
    await page.evaluate(async () => {
      await window.concordTest.create('ticket', { title: 'Only here' }, 'LO-1')
      await window.concordTest.whenSaved('LO-1')
    })
    const before = await page.evaluate(() => window.concordTest.record('LO-1'))
    expect(before.pending).toBeGreaterThan(0)
    await page.evaluate(() => window.concordTest.dropCatalogEntry('LO-1'))

    await page.reload()
    await page.waitForFunction(() => 'concordTest' in window)
    expect(await page.evaluate(() => window.concordTest.reconciled())).toEqual({ pending: before.pending, unsynced: ['LO-1'] })
    const refused = await page.evaluate(() => window.concordTest.signOut({ wipe: true }))
    expect(refused).toMatchObject({ signedOut: false, reason: 'unsynced', unsynced: [{ id: 'LO-1', title: 'Only here' }] })
    expect(await page.evaluate(() => window.concordTest.databases())).toContain('concord/ada/lost/record/LO-1')

    cut.restore()
    await page.evaluate(() => window.concordTest.waitPending(0))
    expect(await onRelay('lost/LO-1', 'text:title')).toBe('Only here')
  })

  it('a new device keeps pulled records in the inbox; after an offline reload they open from it, each moved into its own database', async () => {
    const ada = await open(await context(), { relay: relay().wsUrl, user: 'ada', workspace: 'inbox' })
    await ada.evaluate(async () => {
      for (const i of [1, 2, 3]) await window.concordTest.create('ticket', { title: `Pulled ${i}` }, `IN-${i}`)
      await window.concordTest.waitPending(0)
    })

    const cut = await proxy()
    const device = await open(await context(), { relay: cut.wsUrl, user: 'ada', workspace: 'inbox' })
    await device.evaluate(() => window.concordTest.waitStatus('online'))
    expect(await device.evaluate(() => window.concordTest.pull())).toEqual({ listed: 3, changed: 3, failed: 0 })
    expect(await device.evaluate(() => window.concordTest.inboxIds())).toEqual(['IN-1', 'IN-2', 'IN-3'])
    const records = async (): Promise<string[]> =>
      (await device.evaluate(() => window.concordTest.databases())).filter((n) => n.startsWith('concord/ada/inbox/record/'))
    expect(await records()).toEqual([])

    cut.cut()
    await device.evaluate(() => window.concordTest.waitStatus('offline'))
    await device.reload()
    await device.waitForFunction(() => 'concordTest' in window)
    await device.evaluate(() => window.concordTest.ready())
    expect(await device.evaluate(() => window.concordTest.status())).not.toBe('online')
    expect((await device.evaluate(() => window.concordTest.record('IN-2'))).fields).toMatchObject({ title: 'Pulled 2' })
    expect(await device.evaluate(() => window.concordTest.inboxIds())).toEqual(['IN-1', 'IN-3'])
    expect(await records()).toEqual(['concord/ada/inbox/record/IN-2'])

    // Moved, not copied: another reload (still offline) reads it from its own database.
    await device.reload()
    await device.waitForFunction(() => 'concordTest' in window)
    expect((await device.evaluate(() => window.concordTest.record('IN-2'))).fields).toMatchObject({ title: 'Pulled 2' })
    expect(await device.evaluate(() => window.concordTest.inboxIds())).toEqual(['IN-1', 'IN-3'])
  })

  it('two tabs share edits at once and report the same pending counts', async () => {
    const cut = await proxy()
    const ctx = await context()
    const params = { relay: cut.wsUrl, user: 'ada', workspace: 'tabs' }
    const a = await open(ctx, params)
    const b = await open(ctx, params)
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitStatus('online'))))
    await a.evaluate(() => window.concordTest.create('ticket', { title: 'Shared' }, 'T-1'))
    await b.evaluate(() => window.concordTest.waitText('T-1', 'title', 'Shared'))
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitPending(0))))

    // Without the relay, an edit in tab A reaches tab B through BroadcastChannel.
    cut.cut()
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitStatus('offline'))))
    await a.evaluate(() => window.concordTest.insertText('T-1', 'title', 6, ' by two tabs'))
    const seenInB = await b.evaluate(() => window.concordTest.waitText('T-1', 'title', 'Shared by two tabs'))
    const inA = await a.evaluate(() => window.concordTest.record('T-1'))
    expect(seenInB).toEqual({ pending: inA.pending, pendingFields: ['title'] })
    expect(inA.pending).toBeGreaterThan(0)
    const totalA = await a.evaluate(() => window.concordTest.pending())
    expect(await b.evaluate((n) => window.concordTest.waitPending(n), totalA)).toBe(totalA)
    // B does not write A's edit; it is saved in B once A's write completed (and said so).
    await a.evaluate(() => window.concordTest.whenSaved('T-1'))
    await b.evaluate(() => window.concordTest.whenSaved('T-1'))

    // A record only tab A has open counts in B's total too.
    await a.evaluate(() => window.concordTest.create('ticket', { title: 'Only in A' }, 'U-1'))
    const bothA = await a.evaluate(() => window.concordTest.pending())
    expect(await b.evaluate((n) => window.concordTest.waitPending(n), bothA)).toBe(bothA)

    cut.restore()
    await Promise.all([a, b].map((p) => p.evaluate(() => window.concordTest.waitPending(0))))
    expect(await onRelay('tabs/T-1', 'text:title')).toBe('Shared by two tabs')
  })

  it('sign-out refuses to drop unsynced work, then wipes only this user’s databases; the other tab signs out', async () => {
    const cut = await proxy()
    const ctx = await context()
    const a = await open(ctx, { relay: cut.wsUrl, user: 'ada', workspace: 'acme' })
    const b = await open(ctx, { relay: cut.wsUrl, user: 'ada', workspace: 'acme' })
    const bob = await open(ctx, { relay: relay().wsUrl, user: 'bob', workspace: 'acme' })
    await bob.evaluate(async () => {
      await window.concordTest.create('ticket', { title: "Bob's" }, 'B-1')
      await window.concordTest.whenSaved('B-1')
    })
    await a.evaluate(async () => {
      await window.concordTest.create('ticket', { title: 'One' }, 'T-1')
      await window.concordTest.create('ticket', { title: 'Two' }, 'T-2')
      await window.concordTest.waitPending(0)
    })
    cut.cut()
    await a.evaluate(() => window.concordTest.waitStatus('offline'))
    await a.evaluate(() => window.concordTest.set('T-2', { status: 'done' }))
    const refused = await a.evaluate(() => window.concordTest.signOut({ wipe: true }))
    expect(refused).toMatchObject({
      signedOut: false,
      reason: 'unsynced',
      unsynced: [{ id: 'T-2', title: 'Two', pendingFields: ['status'] }],
    })
    // The catalog, the inbox (records pulled, never opened) and one database per opened record.
    expect((await a.evaluate(() => window.concordTest.databases())).filter((n) => n.startsWith('concord/ada/'))).toEqual([
      'concord/ada/acme/catalog',
      'concord/ada/acme/inbox',
      'concord/ada/acme/record/T-1',
      'concord/ada/acme/record/T-2',
    ])

    cut.restore()
    await a.evaluate(() => window.concordTest.waitPending(0))
    expect(await a.evaluate(() => window.concordTest.signOut({ wipe: true }))).toEqual({ signedOut: true, wiped: true })
    await b.evaluate(() => window.concordTest.waitSignedOut())
    const names = await a.evaluate(() => window.concordTest.databases())
    expect(names.filter((n) => n.startsWith('concord/ada/'))).toEqual([])
    expect(names.filter((n) => n.startsWith('concord/bob/'))).toEqual([
      'concord/bob/acme/catalog',
      'concord/bob/acme/inbox',
      'concord/bob/acme/record/B-1',
    ])
  })

  it('a record is removed to free space only where no tab has it open: its database goes, its entry stays; read online, it comes back whole', async () => {
    const params = { relay: relay().wsUrl, user: 'ada', workspace: 'evict', idleTimeout: '0' }
    const ctx = await context()
    const a = await open(ctx, params)
    await a.evaluate(() => window.concordTest.waitStatus('online'))
    await a.evaluate(async () => {
      await window.concordTest.create('ticket', { title: 'Old and done' }, 'E-1')
      await window.concordTest.create('ticket', { title: 'Open in the other tab' }, 'E-2')
      await window.concordTest.flush('E-1')
      await window.concordTest.flush('E-2')
      window.concordTest.close('E-1')
      window.concordTest.close('E-2')
    })
    await expect.poll(() => a.evaluate(() => window.concordTest.openIds()), { timeout: 10_000 }).toEqual([])
    // Another tab has E-2 open: its Web Lock keeps it.
    const b = await open(ctx, params)
    expect((await b.evaluate(() => window.concordTest.record('E-2'))).fields.title).toBe('Open in the other tab')

    const result = await a.evaluate(() => window.concordTest.evict(['E-1', 'E-2']))
    expect(result).toEqual({ evicted: ['E-1'], kept: [{ id: 'E-2', reason: 'open' }] })
    const names = await a.evaluate(() => window.concordTest.databases())
    expect(names).not.toContain('concord/ada/evict/record/E-1')
    expect(names).toContain('concord/ada/evict/record/E-2')
    expect(await a.evaluate(() => window.concordTest.catalogEntry('E-1'))).toMatchObject({
      local: false,
      evicted: true,
      title: 'Old and done',
    })
    // The other tab's catalog heard of it too.
    await expect.poll(() => b.evaluate(() => window.concordTest.catalogEntry('E-1')?.evicted), { timeout: 10_000 }).toBe(true)
    expect((await a.evaluate(() => window.concordTest.list({ type: 'ticket' }))).map((e) => e.title).sort()).toEqual([
      'Old and done',
      'Open in the other tab',
    ])

    // Read while online: fetched whole from the relay, stored again.
    expect(await a.evaluate(() => window.concordTest.read('E-1'))).toMatchObject({ title: 'Old and done', status: 'open' })
    await expect.poll(() => a.evaluate(() => window.concordTest.catalogEntry('E-1')?.local), { timeout: 10_000 }).toBe(true)
    expect(await a.evaluate(() => window.concordTest.databases())).toContain('concord/ada/evict/record/E-1')
  })

  it('quota exceeded: the edit stays in memory and syncs, the store reports why, earlier data stays stored', async () => {
    const ctx = await context()
    const page = await ctx.newPage()
    const cdp = await ctx.newCDPSession(page)
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: pageUrl().replace(/\/$/, ''), quotaSize: 256 * 1024 })
    await page.goto(`${pageUrl()}?${new URLSearchParams({ relay: relay().wsUrl, user: 'ada', workspace: 'quota' })}`)
    await page.waitForFunction(() => 'concordTest' in window)
    await page.evaluate(() => window.concordTest.ready())
    await page.evaluate(async () => {
      await window.concordTest.create('ticket', { title: 'Small and stored' }, 'Q-1')
      await window.concordTest.whenSaved('Q-1')
    })
    await page.evaluate(() => window.concordTest.insertText('Q-1', 'description', 0, 'x'.repeat(600_000)))
    // The catalog's small write may hit the exhausted quota too (recordId null); the record's must.
    const errors = (await page.evaluate(() => window.concordTest.waitStorageError('Q-1'))).filter((e) => e.recordId === 'Q-1')
    expect(errors[0]).toMatchObject({ kind: 'quota', recordId: 'Q-1' })
    expect(errors[0]!.reason).toMatch(/storage quota for this site is exhausted \(QuotaExceededError\)/)
    const record = await page.evaluate(() => window.concordTest.record('Q-1'))
    expect(record).toMatchObject({ saved: false, storageError: 'quota' })
    expect((record.fields.description as string).length).toBe(600_000)
    await page.evaluate(() => window.concordTest.set('Q-1', { status: 'done' })) // still writable
    await page.evaluate(() => window.concordTest.flush('Q-1')) // and it syncs
    expect((await onRelay('quota/Q-1', 'text:description')).length).toBe(600_000)

    // What was stored before the quota ran out is still there after a reload (offline).
    await page.goto(`${pageUrl()}?${new URLSearchParams({ relay: 'ws://127.0.0.1:9', user: 'ada', workspace: 'quota' })}`)
    await page.waitForFunction(() => 'concordTest' in window)
    await page.evaluate(() => window.concordTest.ready())
    expect((await page.evaluate(() => window.concordTest.record('Q-1'))).fields.title).toBe('Small and stored')
  })

  it('IndexedDB unavailable: the store runs in memory, says so, and still syncs', async () => {
    const ctx = await context()
    await ctx.addInitScript(() => {
      Object.defineProperty(window, 'indexedDB', {
        configurable: true,
        get() {
          throw new DOMException('The user denied permission to access the database.', 'SecurityError')
        },
      })
    })
    const page = await openTestPage(ctx, pageUrl(), { relay: relay().wsUrl, user: 'ada', workspace: 'nodb' })
    expect(await page.evaluate(() => window.concordTest.ready())).toEqual({ persistent: false, pending: 0 })
    const errors = await page.evaluate(() => window.concordTest.storageErrors())
    expect(errors).toMatchObject([{ kind: 'unavailable', recordId: null }])
    await page.evaluate(() => window.concordTest.create('ticket', { title: 'Memory only' }, 'M-1'))
    const saved = await page.evaluate(() =>
      window.concordTest.whenSaved('M-1').then(
        () => 'saved',
        (e: Error) => e.message,
      ),
    )
    expect(saved).toMatch(/cannot be saved on this device/)
    await page.evaluate(() => window.concordTest.flush('M-1'))
    expect(await page.evaluate(() => window.concordTest.pending())).toBe(0)
    expect(await onRelay('nodb/M-1', 'text:title')).toBe('Memory only')
  })
})
