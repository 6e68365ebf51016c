/**
 * Turns the record changes of watched workspaces into webhook events: one
 * event per record once its changes have been stored and it has been quiet
 * for `debounceMs` (several quick edits, one event), saying which fields
 * changed (values before and after) and who changed them.
 *
 * How it knows:
 * - Every room is watched from the moment it is loaded
 *   ({@link RoomRegistry.onOpen}); for workspaces without a subscription
 *   that costs one map lookup per transaction.
 * - Before each transaction of a watched record the record's values are read
 *   (`beforeTransaction`); the first read is the "before" of the event. After
 *   a transaction of this instance they are read again, and the fields that
 *   differ are noted as the event's fields. Those reads of one small record
 *   are all this adds to the update path (for watched workspaces only); the
 *   rest runs on a timer.
 * - The Yjs client ids whose content each change added are noted, and when
 *   the event is made they are resolved to users through the room's author
 *   bindings (the same bindings the history reads); a change that only
 *   deletes adds no content, so the user of the connection that sent it is
 *   noted too.
 * - When the timer fires and the room still has updates waiting for storage,
 *   the event waits another `debounceMs`: an event never reports a change
 *   that is not stored. The record's room is held open while an event waits.
 *
 * Events are best effort while the relay runs: changes still waiting for
 * their quiet period when the relay stops are not reported.
 *
 * With several relay instances each reports the changes committed through it
 * (its clients' and API writes), not those it applies from the others, so a
 * change is delivered once whichever instances hold the record: an event
 * names only the fields this instance's transactions changed. Their "after"
 * is the record as this instance holds it then, which includes a change from
 * another instance to the same field applied during the quiet period.
 *
 * @module webhooks/RecordChanges
 */
import { randomUUID } from 'node:crypto'
import type * as Y from 'yjs'
import type { SchemaRegistry } from '@concord/engine'
import { HISTORY_ARRAY, RECORD_MAP, RecordKey, laterValues, readRecord } from '@concord/engine/internal'
import { CLUSTER_ORIGIN, isPeerOrigin, type Room } from '../rooms/Room.js'
import type { RoomRegistry } from '../rooms/RoomRegistry.js'
import type { CommitQueue } from '../rooms/CommitQueue.js'
import type { WebhookSubscriptions } from './WebhookSubscriptions.js'
import type { WebhookDeliveries } from './WebhookDeliveries.js'

/** Default quiet period of a record before its event is sent, ms. */
export const DEFAULT_DEBOUNCE_MS = 1000

/** A record's values as an event compares them. */
interface RecordValues {
  type: string
  archived: boolean
  deleted: boolean
  fields: Record<string, unknown>
}

/** One field of an event: its value before and after. `$archived` / `$deleted` for the record's flags. */
export interface FieldChange {
  field: string
  before: unknown
  after: unknown
}

/** The body of a webhook delivery. */
export interface RecordChangeEvent {
  /** Event id, also sent as `Concord-Webhook-Id` (the same on every retry). */
  id: string
  type: 'record.created' | 'record.changed'
  /** When the event was made, ms since epoch. */
  at: number
  workspace: string
  record: { id: string; type: string; archived: boolean; deleted: boolean; seq: number }
  changes: FieldChange[]
  /** Who made the changes, from the relay's author bindings. */
  authors: Array<{ userId: string; name: string }>
}

/** Changes of one record waiting for their quiet period to end. */
interface PendingEvent {
  room: Room
  /** The record before the first change (null: the doc held no record). */
  before: RecordValues | null
  /** Yjs client ids whose content the changes added. */
  clients: Set<number>
  /** Users of the connections that sent the changes. */
  senders: Map<string, string>
  /** The fields (and `$archived` / `$deleted`) this instance's transactions changed: the only ones the event names. */
  fields: Set<string>
  timer: ReturnType<typeof setTimeout>
}

/** Watches rooms and queues webhook events. */
export class RecordChanges {
  private readonly pending = new Map<Room, PendingEvent>()
  /** Values read before a transaction of a quiet record; becomes the "before" if the transaction changes something. */
  private readonly beforeTransaction = new WeakMap<Room, RecordValues | null>()
  private closed = false

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly commits: CommitQueue,
    private readonly subscriptions: WebhookSubscriptions,
    private readonly schemas: SchemaRegistry,
    private readonly deliveries: WebhookDeliveries,
    private readonly debounceMs = DEFAULT_DEBOUNCE_MS,
  ) {
    rooms.onOpen((room) => this.watch(room))
  }

  /** Stops making events; changes waiting for their quiet period are not reported. Idempotent. */
  close(): void {
    this.closed = true
    for (const event of this.pending.values()) clearTimeout(event.timer)
    this.pending.clear()
  }

  private watch(room: Room): void {
    const workspace = workspaceOfRecord(room.name)
    if (workspace === null) return // not a record doc (e.g. a workspace's presence doc)
    // every Y.Doc of the room: a dormant room makes a new one when it wakes
    room.watchDoc((doc) => this.observe(room, doc, workspace))
  }

  private observe(room: Room, doc: Y.Doc, workspace: string): void {
    doc.on('beforeTransaction', () => {
      if (this.closed || !this.subscriptions.watches(workspace)) return
      // What an event starts from reads the merges' outcome (below); later transactions of the event only need a hint.
      this.beforeTransaction.set(room, this.valuesOf(doc, !this.pending.has(room)))
    })
    doc.on('update', (_update: Uint8Array, origin: unknown, _doc: Y.Doc, transaction: Y.Transaction) => {
      const before = this.beforeTransaction.has(room) ? this.beforeTransaction.get(room)! : null
      this.beforeTransaction.delete(room)
      // changes another relay instance committed are reported by that instance
      if (this.closed || origin === CLUSTER_ORIGIN || !this.subscriptions.watches(workspace)) return
      const history = doc.share.get(HISTORY_ARRAY)
      const now = this.valuesOf(doc, history !== undefined && transaction.changed.has(history))
      const changed = now === null ? [] : diff(before, now).map((change) => change.field)
      let event = this.pending.get(room)
      if (event === undefined) {
        const timer = setTimeout(() => this.fire(room), this.debounceMs)
        event = { room, before, clients: new Set(), senders: new Map(), fields: new Set(), timer }
        this.pending.set(room, event)
        // the room stays loaded until the event is made (the room exists: acquiring it only takes a reference)
        void this.rooms.acquire(room.name)
      } else {
        event.timer.refresh()
      }
      for (const field of changed) event.fields.add(field)
      for (const [client, clock] of transaction.afterState) {
        if (clock > (transaction.beforeState.get(client) ?? 0)) event.clients.add(client)
      }
      if (isPeerOrigin(origin)) event.senders.set(origin.peer.identity.userId, origin.peer.identity.name)
    })
  }

  /** The quiet period of a record is over: queues its event once its changes are stored. */
  private fire(room: Room): void {
    const event = this.pending.get(room)
    if (event === undefined || this.closed) return
    if (this.commits.isBusy(room)) {
      event.timer.refresh()
      return
    }
    this.pending.delete(room)
    try {
      const after = this.valuesOf(room.doc, true)
      if (after === null) return
      const changes = diff(event.before, after).filter((change) => event.fields.has(change.field))
      if (changes.length === 0) return
      const body: RecordChangeEvent = {
        id: randomUUID(),
        type: event.before === null ? 'record.created' : 'record.changed',
        at: Date.now(),
        workspace: workspaceOfRecord(room.name)!,
        record: {
          id: room.name.slice(room.name.indexOf('/') + 1),
          type: after.type,
          archived: after.archived,
          deleted: after.deleted,
          seq: room.lastSeq,
        },
        changes,
        authors: this.authorsOf(room, event),
      }
      this.deliveries.enqueue(body.workspace, body.id, JSON.stringify(body))
    } finally {
      this.rooms.release(room)
    }
  }

  /** The users behind an event's changes: bound client ids first, then the senders. */
  private authorsOf(room: Room, event: PendingEvent): Array<{ userId: string; name: string }> {
    const users = new Map<string, string>()
    for (const client of event.clients) {
      const binding = room.authors.get(client)
      if (binding !== undefined && !users.has(binding.userId)) users.set(binding.userId, binding.name)
    }
    for (const [userId, name] of event.senders) if (!users.has(userId)) users.set(userId, name)
    return [...users].map(([userId, name]) => ({ userId, name }))
  }

  /**
   * The record a doc holds, or null. `later`: concurrent sets nobody's device has settled yet read as the later
   * change (what every device will write), so an event says the merge's outcome and none follows when a device
   * settles it. Reading the history for it is skipped where only a hint is needed: a transaction that did not touch
   * the history changed no merge.
   */
  private valuesOf(doc: Y.Doc, later: boolean): RecordValues | null {
    const type = doc.getMap<unknown>(RECORD_MAP).get(RecordKey.type)
    if (typeof type !== 'string') return null
    const schema = this.schemas.get(type)
    const read = readRecord(doc, '', schema)
    const record = later ? laterValues(doc, schema, read) : read
    return { type, archived: record.archived, deleted: record.deleted, fields: { ...record.unknownFields, ...record.fields } }
  }
}

/** The workspace of a record doc (`<workspace>/<id>`), or null for any other doc name. */
const workspaceOfRecord = (name: string): string | null => {
  const slash = name.indexOf('/')
  if (slash <= 0 || name.indexOf('/', slash + 1) !== -1) return null
  return name.slice(0, slash)
}

/** The fields whose values differ (and the record's flags, as `$archived` / `$deleted`). */
const diff = (before: RecordValues | null, after: RecordValues): FieldChange[] => {
  const changes: FieldChange[] = []
  const names = new Set([...Object.keys(before?.fields ?? {}), ...Object.keys(after.fields)])
  for (const field of names) {
    const old = before?.fields[field] ?? null
    const now = after.fields[field] ?? null
    if (JSON.stringify(old) !== JSON.stringify(now)) changes.push({ field, before: old, after: now })
  }
  if ((before?.archived ?? false) !== after.archived)
    changes.push({ field: '$archived', before: before?.archived ?? false, after: after.archived })
  if ((before?.deleted ?? false) !== after.deleted)
    changes.push({ field: '$deleted', before: before?.deleted ?? false, after: after.deleted })
  return changes
}
