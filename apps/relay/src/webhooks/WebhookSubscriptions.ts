/**
 * Webhook subscriptions: which URL hears about which workspace's changes,
 * with the secret its deliveries are signed with, and how its deliveries are
 * going (last error, next retry) for the list route and the metrics.
 *
 * Where they are kept:
 * - **one relay**: in a JSON file in the relay's data folder
 *   (`webhooks.json`), replaced atomically (written to a temporary file,
 *   flushed, renamed over the old one) on every change; without a file
 *   (memory storage) they live as long as the process;
 * - **several instances on PostgreSQL** ({@link SharedWebhookStore}): in a
 *   table every instance reads, so a subscription created or deleted through
 *   any instance holds for all. Each instance keeps a copy in memory (the
 *   update path asks it on every transaction), read again every `refreshMs`
 *   (2 s) and before every webhook route answers; a subscription created
 *   elsewhere is delivered to by this instance from its next read. A
 *   `webhooks.json` left in the data folder by an earlier relay is imported
 *   into the table at the first read, then renamed `webhooks.json.imported`.
 *
 * Delivery status is not stored: after a restart it starts over, and with
 * several instances each shows its own deliveries (each instance delivers the
 * changes committed through it).
 *
 * @module webhooks/WebhookSubscriptions
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, open, rename } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'

/** A stored subscription. */
export interface WebhookSubscription {
  id: string
  workspace: string
  url: string
  /** Key of the deliveries' HMAC-SHA256 signature; shown once, when the subscription is created. */
  secret: string
  /** ms since epoch */
  createdAt: number
  /** User id of whoever created it. */
  createdBy: string
}

/** How a subscription's deliveries are going. */
export interface DeliveryStatus {
  /** When a delivery last succeeded (ms since epoch), or null. */
  lastDeliveryAt: number | null
  /** The last failed attempt, or null when the last attempt succeeded (or none was made). */
  lastError: { message: string; at: number } | null
  /** Failed attempts in a row. */
  failures: number
  /** When the next retry is due (ms since epoch), or null when none waits. */
  nextRetryAt: number | null
  /** Deliveries waiting (queued or waiting for a retry). */
  pending: number
}

/** Where several relay instances keep their shared subscriptions (`PostgresStorage` has it). */
export interface SharedWebhookStore {
  /** Every subscription, oldest first. */
  listWebhooks(): Promise<WebhookSubscription[]>
  /** Stores a subscription unless its workspace has `maxPerWorkspace` already or its id exists; false then. */
  insertWebhook(subscription: WebhookSubscription, maxPerWorkspace: number): Promise<boolean>
  /** Deletes a subscription; false when it did not exist. */
  deleteWebhook(id: string): Promise<boolean>
}

/** Default interval of reading shared subscriptions again, ms. */
export const DEFAULT_WEBHOOK_REFRESH_MS = 2000

/** Most subscriptions one workspace may have. */
export const MAX_SUBSCRIPTIONS_PER_WORKSPACE = 20

const fileSchema = z.object({
  version: z.literal(1),
  subscriptions: z.array(
    z.object({
      id: z.string(),
      workspace: z.string(),
      url: z.string(),
      secret: z.string(),
      createdAt: z.number(),
      createdBy: z.string(),
    }),
  ),
})

/** The relay's webhook subscriptions. */
export class WebhookSubscriptions {
  private readonly byId = new Map<string, WebhookSubscription>()
  private readonly byWorkspace = new Map<string, WebhookSubscription[]>()
  private readonly status = new Map<string, DeliveryStatus>()
  /** The write of the file in progress; writes run one after the other. */
  private saving: Promise<void> = Promise.resolve()
  /** The read of the shared store in progress, if any; callers meanwhile wait for it. */
  private refreshing: Promise<void> | null = null
  private readonly refreshTimer: ReturnType<typeof setInterval> | null = null
  /** A file of an earlier relay still to import into the shared store. */
  private legacyFile: string | null = null

  /**
   * Loads the subscriptions stored in `file` (none when it does not exist);
   * null keeps them in memory only. With `shared`, subscriptions live there
   * instead (read by {@link refresh}) and `file`, if it exists, is imported.
   */
  constructor(
    private readonly file: string | null,
    private readonly shared: SharedWebhookStore | null = null,
    refreshMs = DEFAULT_WEBHOOK_REFRESH_MS,
  ) {
    if (shared !== null) {
      this.legacyFile = file
      this.refreshTimer = setInterval(() => void this.refresh().catch(() => undefined), refreshMs)
      this.refreshTimer.unref()
      return
    }
    for (const subscription of readFile(file)) this.index(subscription)
  }

  /**
   * Reads the shared subscriptions again (resolves at once without a shared
   * store); rejects when the store cannot be read, keeping the last copy.
   */
  refresh(): Promise<void> {
    if (this.shared === null) return Promise.resolve()
    this.refreshing ??= this.readShared(this.shared).finally(() => {
      this.refreshing = null
    })
    return this.refreshing
  }

  /** Stops reading the shared store. Idempotent. */
  close(): void {
    if (this.refreshTimer !== null) clearInterval(this.refreshTimer)
  }

  /** The subscriptions of a workspace, oldest first. */
  of(workspace: string): readonly WebhookSubscription[] {
    return this.byWorkspace.get(workspace) ?? []
  }

  /** Whether any subscription listens to `workspace`. */
  watches(workspace: string): boolean {
    return this.byWorkspace.has(workspace)
  }

  /** The subscription `id`, if it exists. */
  get(id: string): WebhookSubscription | undefined {
    return this.byId.get(id)
  }

  /** Creates a subscription with a fresh secret and stores it; resolves once it is stored. */
  async create(workspace: string, url: string, createdBy: string): Promise<WebhookSubscription> {
    if (this.of(workspace).length >= MAX_SUBSCRIPTIONS_PER_WORKSPACE) {
      throw new Error(`a workspace has at most ${MAX_SUBSCRIPTIONS_PER_WORKSPACE} webhook subscriptions`)
    }
    const subscription: WebhookSubscription = {
      id: randomUUID(),
      workspace,
      url,
      secret: randomBytes(32).toString('base64url'),
      createdAt: Date.now(),
      createdBy,
    }
    if (this.shared !== null) {
      if (!(await this.shared.insertWebhook(subscription, MAX_SUBSCRIPTIONS_PER_WORKSPACE))) {
        throw new Error(`a workspace has at most ${MAX_SUBSCRIPTIONS_PER_WORKSPACE} webhook subscriptions`)
      }
      if (!this.byId.has(subscription.id)) this.index(subscription)
      return subscription
    }
    this.index(subscription)
    try {
      await this.save()
    } catch (error) {
      this.unindex(subscription)
      throw error
    }
    return subscription
  }

  /** Deletes a subscription; resolves once that is stored. False when it did not exist. */
  async delete(id: string): Promise<boolean> {
    const subscription = this.byId.get(id)
    if (subscription === undefined) return false
    if (this.shared !== null) {
      const deleted = await this.shared.deleteWebhook(id)
      if (this.byId.get(id) === subscription) this.unindex(subscription)
      return deleted
    }
    this.unindex(subscription)
    try {
      await this.save()
    } catch (error) {
      this.index(subscription)
      throw error
    }
    return true
  }

  /** The delivery status of a subscription (a fresh one for a subscription nothing was sent to). */
  statusOf(id: string): DeliveryStatus {
    let status = this.status.get(id)
    if (status === undefined) {
      status = { lastDeliveryAt: null, lastError: null, failures: 0, nextRetryAt: null, pending: 0 }
      if (this.byId.has(id)) this.status.set(id, status)
    }
    return status
  }

  /** Number of subscriptions whose last attempt failed. */
  get failing(): number {
    let count = 0
    for (const status of this.status.values()) if (status.lastError !== null) count++
    return count
  }

  /** Imports an earlier relay's file once, then replaces the copy in memory with what the shared store holds. */
  private async readShared(shared: SharedWebhookStore): Promise<void> {
    const legacy = this.legacyFile
    if (legacy !== null) {
      for (const subscription of readFile(legacy)) await shared.insertWebhook(subscription, Infinity)
      if (existsSync(legacy)) await rename(legacy, `${legacy}.imported`)
      this.legacyFile = null
    }
    const stored = await shared.listWebhooks()
    const kept = new Set(stored.map((s) => s.id))
    for (const id of this.status.keys()) if (!kept.has(id)) this.status.delete(id)
    this.byId.clear()
    this.byWorkspace.clear()
    for (const subscription of stored) this.index(subscription)
  }

  private index(subscription: WebhookSubscription): void {
    this.byId.set(subscription.id, subscription)
    const list = this.byWorkspace.get(subscription.workspace) ?? []
    list.push(subscription)
    this.byWorkspace.set(subscription.workspace, list)
  }

  private unindex(subscription: WebhookSubscription): void {
    this.byId.delete(subscription.id)
    this.status.delete(subscription.id)
    const list = (this.byWorkspace.get(subscription.workspace) ?? []).filter((s) => s.id !== subscription.id)
    if (list.length > 0) this.byWorkspace.set(subscription.workspace, list)
    else this.byWorkspace.delete(subscription.workspace)
  }

  /** Replaces the file with the current subscriptions (after any write in progress). */
  private save(): Promise<void> {
    const file = this.file
    if (file === null) return Promise.resolve()
    const text = JSON.stringify({ version: 1, subscriptions: [...this.byId.values()] }, null, 2) + '\n'
    const run = this.saving.catch(() => undefined).then(() => writeAtomically(file, text))
    this.saving = run
    return run
  }
}

/** The subscriptions stored in `file` (none when there is no file). */
const readFile = (file: string | null): WebhookSubscription[] => {
  if (file === null) return []
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const parsed = fileSchema.safeParse(JSON.parse(text))
  if (!parsed.success) throw new Error(`${file} is not a webhook subscription file: ${parsed.error.message}`)
  return parsed.data.subscriptions
}

/** Writes `text` to `file` so that a crash leaves either the old or the new content. */
const writeAtomically = async (file: string, text: string): Promise<void> => {
  await mkdir(path.dirname(file), { recursive: true })
  const temporary = `${file}.${process.pid}.tmp`
  const handle = await open(temporary, 'w', 0o600)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temporary, file)
  // the rename is durable once the folder is flushed
  const folder = await open(path.dirname(file), 'r')
  try {
    await folder.sync()
  } finally {
    await folder.close()
  }
}
