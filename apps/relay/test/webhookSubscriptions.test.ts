/**
 * Webhook subscriptions shared by several relay instances (a
 * `SharedWebhookStore`, here an in-memory one; PostgreSQL's is tested in
 * postgresStorage.test.ts): what one instance creates or deletes holds for
 * the others from their next read, the per-workspace limit is the store's,
 * and a `webhooks.json` an earlier relay left is imported once.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  MAX_SUBSCRIPTIONS_PER_WORKSPACE,
  WebhookSubscriptions,
  type SharedWebhookStore,
  type WebhookSubscription,
} from '../src/webhooks/WebhookSubscriptions.js'

/** The store several instances share, in memory. */
class MemoryWebhookStore implements SharedWebhookStore {
  readonly rows = new Map<string, WebhookSubscription>()
  async listWebhooks(): Promise<WebhookSubscription[]> {
    return [...this.rows.values()].sort((a, b) => a.createdAt - b.createdAt)
  }
  async insertWebhook(subscription: WebhookSubscription, maxPerWorkspace: number): Promise<boolean> {
    const count = [...this.rows.values()].filter((s) => s.workspace === subscription.workspace).length
    if (this.rows.has(subscription.id) || count >= maxPerWorkspace) return false
    this.rows.set(subscription.id, { ...subscription })
    return true
  }
  async deleteWebhook(id: string): Promise<boolean> {
    return this.rows.delete(id)
  }
}

describe('shared webhook subscriptions', () => {
  const opened: WebhookSubscriptions[] = []
  const dirs: string[] = []
  afterEach(() => {
    for (const subscriptions of opened.splice(0)) subscriptions.close()
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })
  const open = (store: SharedWebhookStore, file: string | null = null, refreshMs = 20): WebhookSubscriptions => {
    const subscriptions = new WebhookSubscriptions(file, store, refreshMs)
    opened.push(subscriptions)
    return subscriptions
  }

  it('what one instance creates and deletes, the other reads on its own (timer) and on refresh', async () => {
    const store = new MemoryWebhookStore()
    const [a, b] = [open(store), open(store)]
    const created = await a.create('acme', 'https://example.com/hook', 'ada')
    expect(a.of('acme')).toEqual([created])
    await vi.waitFor(() => expect(b.watches('acme')).toBe(true)) // the periodic read
    expect(b.get(created.id)).toEqual(created)
    expect(await b.delete(created.id)).toBe(true)
    await a.refresh()
    expect(a.watches('acme')).toBe(false)
    expect(a.get(created.id)).toBeUndefined()
  })

  it('the per-workspace limit counts every instance’s subscriptions', async () => {
    const store = new MemoryWebhookStore()
    const [a, b] = [open(store), open(store)]
    for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_WORKSPACE; i++) await (i % 2 ? a : b).create('acme', `https://example.com/${i}`, 'ada')
    await expect(a.create('acme', 'https://example.com/one-more', 'ada')).rejects.toThrow(/at most/)
    expect(store.rows.size).toBe(MAX_SUBSCRIPTIONS_PER_WORKSPACE)
  })

  it('a webhooks.json an earlier relay left is imported once, then renamed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-webhooks-'))
    dirs.push(dir)
    const file = path.join(dir, 'webhooks.json')
    const old: WebhookSubscription = {
      id: 'old-1',
      workspace: 'acme',
      url: 'https://example.com/old',
      secret: 's',
      createdAt: 1,
      createdBy: 'ada',
    }
    writeFileSync(file, JSON.stringify({ version: 1, subscriptions: [old] }))
    const store = new MemoryWebhookStore()
    const subscriptions = open(store, file, 60_000)
    await subscriptions.refresh()
    expect(subscriptions.of('acme')).toEqual([old])
    expect(existsSync(file)).toBe(false)
    expect(existsSync(`${file}.imported`)).toBe(true)
    // deleted afterwards, it stays deleted (the file is not imported again)
    expect(await subscriptions.delete('old-1')).toBe(true)
    await open(store, file, 60_000).refresh()
    expect(store.rows.size).toBe(0)
  })
})
