/**
 * Webhook subscriptions: which URL hears about which workspace's changes,
 * with the secret its deliveries are signed with, and how its deliveries are
 * going (last error, next retry) for the list route and the metrics.
 *
 * Subscriptions are kept in a JSON file in the relay's data folder
 * (`webhooks.json`), replaced atomically (written to a temporary file,
 * flushed, renamed over the old one) on every change; without a file (memory
 * storage) they live as long as the process. Delivery status is not stored:
 * after a restart it starts over.
 *
 * @module webhooks/WebhookSubscriptions
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, open, rename } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
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

  /** Loads the subscriptions stored in `file` (none when it does not exist); null keeps them in memory only. */
  constructor(private readonly file: string | null) {
    if (file === null) return
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    const parsed = fileSchema.safeParse(JSON.parse(text))
    if (!parsed.success) throw new Error(`${file} is not a webhook subscription file: ${parsed.error.message}`)
    for (const subscription of parsed.data.subscriptions) this.index(subscription)
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
