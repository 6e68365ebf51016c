/**
 * Cross-instance fan-out: several relay instances on one PostgreSQL database
 * (the store of record) tell each other through Redis pub/sub what they
 * stored and what presence they received, so the clients of one doc see each
 * other live whichever instance they reached.
 *
 * - **Updates.** After each commit, the instance publishes the doc's stored
 *   updates as they were stored (a list: merging them with
 *   `Y.mergeUpdates` cost the publisher CPU on every commit) with the
 *   sequence numbers storage gave them (`fromSeq…toSeq`) and their author
 *   bindings on the doc's channel (`concord:doc:<name>`). Every instance
 *   holding the doc in memory is subscribed to that channel; it applies the
 *   updates **in sequence order**, each message's list in one transaction
 *   (its peers get one update, its storage none: they are stored).
 *   A message of kind {@link KIND_UPDATE} (one merged update, from a relay
 *   of an earlier version during a rolling upgrade) is still understood;
 *   such a relay ignores this version's update lists and catches up from
 *   PostgreSQL (its periodic check) until it is upgraded too.
 * - **Nobody else holds the doc.** Redis answers a publish with the number of
 *   subscribers that got it. When only this instance's own subscription got
 *   a doc's message, no other instance holds the doc: its commits and
 *   presence changes are not published for the next `aloneProbeMs` (1 s),
 *   then one is published again to look. An instance that subscribes to a
 *   doc publishes a `holding` message on the channel; every holder hears it
 *   and publishes again at once, and one that skipped a publish answers with
 *   a `holding` message marked `unpublished`, upon which the others read the
 *   doc from storage (what it skipped may have been stored after the
 *   newcomer's catch-up read). Every holder also publishes the presence
 *   states of its own clients, which the newcomer missed (presence is stored
 *   nowhere). A lost `holding` message costs at most the
 *   next look, and the periodic check finds anything skipped meanwhile.
 * - **Sequence tracking.** Per open doc the instance keeps `applied`: every
 *   stored update numbered up to it is in the room's doc. Ranges that arrive
 *   ahead of it (its own commits, or messages that overtook an earlier one)
 *   wait; each arrival moves `applied` as far as the ranges now reach.
 * - **Gap repair.** Pub/sub can lose messages. A range that waits longer than
 *   `gapGraceMs` means a gap: the instance reads the missing updates from
 *   PostgreSQL (`updatesSince`, or the whole doc when a checkpoint covers
 *   them). A lost message with nothing after it leaves no gap to see: every
 *   `checkIntervalMs` the instance compares its open docs' `applied` with
 *   the last numbers in PostgreSQL (`lastSeqs`) and repairs those behind. It
 *   does the same for every open doc when its Redis subscription comes back
 *   after a disconnect, and once for a doc right after subscribing to it.
 * - **Compaction.** The room's `lastSeq` is kept at `applied`, so a
 *   checkpoint this instance writes covers only updates its doc holds; one it
 *   committed itself past a gap stays in the log.
 * - **Live lists.** The names of the docs each commit stored go on one
 *   channel ({@link CATALOG_CHANNEL}) with each doc's new last sequence
 *   number, so connections watching a workspace hear of changes made on any
 *   instance. An instance listens to that channel only while its connections
 *   watch a workspace, and says so in its heartbeats (and with one sent when
 *   it starts listening); while Redis answers that no other instance got
 *   this instance's last notice, and no heartbeat says one listens, notices
 *   are numbered but not published (looking again after `aloneProbeMs`). Each instance numbers its notices
 *   (`serial`) and its heartbeats carry the last number sent: a number
 *   skipped, a heartbeat ahead of the notices heard, or this instance's own
 *   subscription coming back means notices were lost. For every workspace
 *   watched here the instance keeps each doc's last sequence number as known
 *   from notices and its own commits (read from PostgreSQL when the
 *   workspace's first watch starts); after a loss it reads them again and
 *   tells its watchers of every doc whose number moved unannounced. A read
 *   that fails is tried again at every check (`checkIntervalMs`) until one
 *   succeeds.
 * - **Presence.** Awareness changes received by this instance are published
 *   too and applied by the others (their peers get them). Each instance
 *   notes which instance sent each presence state it applied.
 * - **Heartbeats.** Every instance publishes a heartbeat on
 *   {@link INSTANCES_CHANNEL} every `heartbeatIntervalMs` (2 s). An instance
 *   not heard from (heartbeat or any other message) for `instanceTimeoutMs`
 *   (10 s) is taken for dead — killed, or cut off from Redis: the others
 *   remove the presence states it had sent, and their peers see those
 *   clients leave (without heartbeats they would stay until the 30 s
 *   awareness timeout). An instance that was only cut off sends its
 *   clients' states again at their next renewal (≤ 15 s). While this
 *   instance's own subscription is down it hears nobody, so it removes
 *   nothing; once back it counts every instance's silence anew. An instance
 *   that stops ({@link Cluster.close}) says so in a last heartbeat
 *   (`leaving`): the others remove its presence states at once and log it
 *   at info level, not as a silence.
 *
 * Durability never depends on Redis: acks still follow the PostgreSQL commit,
 * and whatever Redis loses is read back from PostgreSQL. While Redis is
 * unreachable each instance goes on serving its own clients (`degraded`, and
 * logged), and catches up from PostgreSQL when it is back. Being degraded
 * is reported only once both connections have been ready (at start,
 * {@link Cluster.ready}): one connecting a moment after the other is not an
 * outage. A periodic check that cannot read PostgreSQL is logged once with
 * its error, then at most once a minute with a count, until one succeeds.
 *
 * @example
 * ```ts
 * const cluster = new Cluster(storage, { redisUrl: 'redis://cache:6379', logger })
 * const relay = await createRelay({ storage, cluster })
 * ```
 *
 * @module cluster/Cluster
 */

import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import type { Logger } from '../observability/logger.js'
import type { CommitObserver } from '../rooms/CommitQueue.js'
import type { Room } from '../rooms/Room.js'
import type { RoomFollower } from '../rooms/RoomRegistry.js'
import { decodeAwarenessUpdate } from '../security/awarenessFilter.js'
import type { AuthorBinding, DocSeq, StoredDoc } from '../storage/Storage.js'

/** What the cluster layer reads from the shared storage (`PostgresStorage` has it). */
export interface ClusterStore {
  loadDoc(doc: string): Promise<StoredDoc>
  /** Updates numbered above `afterSeq`, the doc's last number and its bindings; null when a checkpoint covers some of them. */
  updatesSince(doc: string, afterSeq: number): Promise<{ updates: Uint8Array[]; lastSeq: number; authors: AuthorBinding[] } | null>
  /** The last sequence number of each doc (0: never stored). */
  lastSeqs(docs: readonly string[]): Promise<Map<string, number>>
  /** Stored docs whose names start with `prefix`, with their last sequence numbers. */
  listDocSeqs(prefix: string): Promise<DocSeq[]>
}

/** A message between instances, as published on a doc's channel (`catalog`: on {@link CATALOG_CHANNEL}). */
export type ClusterMessage =
  /** `updates`: the stored updates numbered `fromSeq…toSeq`, in that order (one merged update from an earlier relay). */
  | { kind: 'update'; instance: string; doc: string; fromSeq: number; toSeq: number; updates: Uint8Array[]; authors: AuthorBinding[] }
  | { kind: 'awareness'; instance: string; doc: string; update: Uint8Array }
  /**
   * The sender holds the doc: it just subscribed to its channel (`unpublished`
   * false), or it stored updates of the doc without publishing them while no
   * other instance held it, which the receivers read from storage (true).
   */
  | { kind: 'holding'; instance: string; doc: string; unpublished: boolean }
  /** `serial`: the sender's count of catalog messages (0 from a relay that does not count them); `seqs`: each doc's last number. */
  | { kind: 'catalog'; instance: string; docs: string[]; serial: number; seqs: number[] }
  /**
   * `catalogSerial`: the serial of the sender's last catalog message;
   * `catalogListener`: the sender listens to catalog messages (its
   * connections watch workspaces; always true from relays of earlier versions);
   * `leaving`: the sender is stopping, this is its last message.
   */
  | { kind: 'heartbeat'; instance: string; catalogSerial: number; catalogListener: boolean; leaving: boolean }

/** Options of {@link Cluster}. */
export interface ClusterOptions {
  /** `redis://[:password@]host:6379[/db]` */
  redisUrl: string
  logger: Logger
  /** How often open docs' sequence numbers are compared with storage, ms. Default 2000. */
  checkIntervalMs?: number
  /** How long a range may wait for the one before it before that gap is read from storage, ms. Default 250. */
  gapGraceMs?: number
  /** How often this instance publishes its heartbeat and looks for silent instances, ms. Default 2000. */
  heartbeatIntervalMs?: number
  /** How long another instance may stay silent before the presence it sent is removed, ms. Default 10000. */
  instanceTimeoutMs?: number
  /**
   * How long an instance that found no other instance holding a doc skips
   * publishing its commits and presence before it publishes one again to
   * look, ms. Default 1000.
   */
  aloneProbeMs?: number
  /** Test hook: drops incoming messages for which it returns true (as pub/sub may lose them). */
  dropIncoming?: (message: ClusterMessage) => boolean
}

/** Channel names start with this; the doc name follows. */
const CHANNEL_PREFIX = 'concord:doc:'
/** The channel every instance hears: names of the docs each commit stored, for live lists (`catalog-changed`). */
export const CATALOG_CHANNEL = 'concord:catalog'
/** The channel of heartbeats, which every instance hears. */
export const INSTANCES_CHANNEL = 'concord:instances'

/** A doc's stored updates merged into one (what relays of an earlier version publish; decoded, never encoded). */
const KIND_UPDATE = 0
const KIND_AWARENESS = 1
const KIND_CATALOG = 2
const KIND_HEARTBEAT = 3
/** A doc's stored updates as a list. */
const KIND_UPDATES = 4
/** Notes after an empty {@link KIND_UPDATES} message: a `holding` message (see {@link ClusterMessage}). */
const HOLDING_SUBSCRIBED = 1
const HOLDING_UNPUBLISHED = 2

/** A stored range of a doc's sequence numbers that is not in the room's doc yet, or is but lies past a gap. */
interface WaitingRange {
  fromSeq: number
  toSeq: number
  /** The updates to apply; null for this instance's own commits (already in the doc). */
  updates: readonly Uint8Array[] | null
  authors: readonly AuthorBinding[]
}

/** What the cluster layer tracks of one open doc. */
interface FollowedDoc {
  room: Room
  /** Every stored update numbered up to this is in the room's doc. */
  applied: number
  /** Ranges beyond `applied + 1`, waiting for the gap before them to fill. */
  waiting: WaitingRange[]
  gapTimer: ReturnType<typeof setTimeout> | null
  /** The repair running for this doc, if any; `repairAgain` asks it for one more round. */
  repairing: Promise<void> | null
  repairAgain: boolean
  /** Awareness client ids whose state came from another instance, with that instance's id. */
  presenceFrom: Map<number, string>
  /** True once this instance's subscription to the doc's channel is in place. */
  subscribed: boolean
  /** Whether another instance holds the doc, as far as this one knows: its commits and presence are published only then. */
  listeners: Listeners
}

/**
 * Whether another instance listens on a channel, as far as this one knows:
 * Redis answers each publish with how many subscribers got it ({@link look}),
 * and another instance saying it listens ({@link heardOther}) counts at once.
 * While the last look found nobody else, and nobody said otherwise since,
 * publishes are skipped ({@link skip}) for `probeMs`; then one goes out to
 * look again.
 */
class Listeners {
  /** Until then (`performance.now()`), nobody else listened at the last look. */
  #aloneUntil = 0
  /** Counts signs of other listeners: a look's answer is stale once it moved. */
  #heard = 0
  /** True once a publish was skipped; the caller clears it when it has told a new listener. */
  skipped = false

  constructor(private readonly probeMs: number) {}

  /** True (and noted in {@link skipped}) while nobody else listened at the last look. */
  skip(): boolean {
    if (this.#aloneUntil <= performance.now()) return false
    this.skipped = true
    return true
  }

  /** Another instance listens (it said so, or sent on the channel): publish again at once. */
  heardOther(): void {
    this.#heard++
    this.#aloneUntil = 0
  }

  /** Starts a look at a publish: the returned function takes how many other instances got it. */
  look(): (others: number) => void {
    const heard = this.#heard
    return (others) => {
      if (this.#heard !== heard) return // another instance said it listens since the publish went out
      this.#aloneUntil = others > 0 ? 0 : performance.now() + this.probeMs
    }
  }
}

/** What this instance knows of the docs of a workspace its connections watch. */
interface WatchedCatalog {
  /** Each doc's last sequence number, from storage, notices and this instance's commits. */
  readonly seqs: Map<string, number>
  /** The first read of the workspace's docs from storage; until it is done, losses are not repaired. */
  readonly loaded: Promise<void>
  ready: boolean
  /** True when notices were found missing before the first read was done: the watched workspaces are read again after it. */
  recheck: boolean
}

/** What to say when Redis refused this instance's password or asked for one (WRONGPASS, NOAUTH), else null. */
const authRefusal = (error: Error | null): string | null => {
  if (error === null) return null
  if (/^WRONGPASS/.test(error.message)) return `Redis refused the password of the URL (${error.message})`
  if (/^NOAUTH/.test(error.message)) return `Redis needs a password: give it in the URL, redis://:password@host:port (${error.message})`
  return null
}

/** Encodes a message for publishing. */
export function encodeClusterMessage(message: ClusterMessage): Uint8Array {
  const encoder = encoding.createEncoder()
  if (message.kind === 'heartbeat') {
    encoding.writeVarUint(encoder, KIND_HEARTBEAT)
    encoding.writeVarString(encoder, message.instance)
    encoding.writeVarUint(encoder, message.catalogSerial)
    // after the serial, which is all a relay of an earlier version reads
    encoding.writeVarUint(encoder, message.catalogListener ? 1 : 0)
    // after the listener flag, which relays of earlier versions read last: to them a last heartbeat is a heartbeat
    if (message.leaving) encoding.writeVarUint(encoder, 1)
    return encoding.toUint8Array(encoder)
  }
  if (message.kind === 'catalog') {
    encoding.writeVarUint(encoder, KIND_CATALOG)
    encoding.writeVarString(encoder, message.instance)
    encoding.writeVarUint(encoder, message.docs.length)
    for (const doc of message.docs) encoding.writeVarString(encoder, doc)
    // after the names, which is all a relay that does not count its notices reads
    encoding.writeVarUint(encoder, message.serial)
    for (const seq of message.seqs) encoding.writeVarUint(encoder, seq)
    return encoding.toUint8Array(encoder)
  }
  encoding.writeVarUint(encoder, message.kind === 'awareness' ? KIND_AWARENESS : KIND_UPDATES)
  encoding.writeVarString(encoder, message.instance)
  encoding.writeVarString(encoder, message.doc)
  if (message.kind === 'holding') {
    // an empty range without bindings, which relays of earlier versions take for nothing to do; the note after it
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint(encoder, 0)
    encoding.writeVarUint(encoder, 0)
    encoding.writeVarUint(encoder, 0)
    encoding.writeVarUint(encoder, message.unpublished ? HOLDING_UNPUBLISHED : HOLDING_SUBSCRIBED)
  } else if (message.kind === 'update') {
    encoding.writeVarUint(encoder, message.fromSeq)
    encoding.writeVarUint(encoder, message.toSeq)
    encoding.writeVarUint(encoder, message.updates.length)
    for (const update of message.updates) encoding.writeVarUint8Array(encoder, update)
    encoding.writeVarUint(encoder, message.authors.length)
    for (const { clientId, userId, name } of message.authors) {
      encoding.writeVarUint(encoder, clientId)
      encoding.writeVarString(encoder, userId)
      encoding.writeVarString(encoder, name)
    }
  } else {
    encoding.writeVarUint8Array(encoder, message.update)
  }
  return encoding.toUint8Array(encoder)
}

/** Decodes a published message; throws on a malformed one. */
export function decodeClusterMessage(bytes: Uint8Array): ClusterMessage {
  const decoder = decoding.createDecoder(bytes)
  const kind = decoding.readVarUint(decoder)
  const instance = decoding.readVarString(decoder)
  if (kind === KIND_HEARTBEAT) {
    const catalogSerial = decoding.readVarUint(decoder)
    // relays of earlier versions always listen
    const catalogListener = decoding.hasContent(decoder) ? decoding.readVarUint(decoder) === 1 : true
    const leaving = decoding.hasContent(decoder) && decoding.readVarUint(decoder) === 1
    return { kind: 'heartbeat', instance, catalogSerial, catalogListener, leaving }
  }
  if (kind === KIND_CATALOG) {
    const docs: string[] = []
    for (let n = decoding.readVarUint(decoder); n > 0; n--) docs.push(decoding.readVarString(decoder))
    if (!decoding.hasContent(decoder)) return { kind: 'catalog', instance, docs, serial: 0, seqs: [] }
    const serial = decoding.readVarUint(decoder)
    const seqs = docs.map(() => decoding.readVarUint(decoder))
    return { kind: 'catalog', instance, docs, serial, seqs }
  }
  const doc = decoding.readVarString(decoder)
  if (kind === KIND_AWARENESS) return { kind: 'awareness', instance, doc, update: decoding.readVarUint8Array(decoder) }
  if (kind !== KIND_UPDATES && kind !== KIND_UPDATE) throw new Error(`unknown cluster message kind ${kind}`)
  const fromSeq = decoding.readVarUint(decoder)
  const toSeq = decoding.readVarUint(decoder)
  const updates: Uint8Array[] = []
  if (kind === KIND_UPDATE) updates.push(decoding.readVarUint8Array(decoder))
  else for (let n = decoding.readVarUint(decoder); n > 0; n--) updates.push(decoding.readVarUint8Array(decoder))
  const authors: AuthorBinding[] = []
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    authors.push({
      clientId: decoding.readVarUint(decoder),
      userId: decoding.readVarString(decoder),
      name: decoding.readVarString(decoder),
    })
  }
  if (kind === KIND_UPDATES && decoding.hasContent(decoder)) {
    const note = decoding.readVarUint(decoder)
    if (note !== HOLDING_SUBSCRIBED && note !== HOLDING_UNPUBLISHED) throw new Error(`unknown holding note ${note}`)
    return { kind: 'holding', instance, doc, unpublished: note === HOLDING_UNPUBLISHED }
  }
  return { kind: 'update', instance, doc, fromSeq, toSeq, updates, authors }
}

/** One relay instance's link to the others. */
export class Cluster implements CommitObserver, RoomFollower {
  /** Tells this instance's messages from the others'. */
  readonly instanceId = randomUUID()
  readonly #store: ClusterStore
  readonly #log: Logger
  /** Publishes; fails fast (no offline queue) while Redis is away: what it loses, storage has. */
  readonly #publisher: Redis
  /** Subscribes to the channels of open docs; resubscribes by itself after a reconnect. */
  readonly #subscriber: Redis
  readonly #docs = new Map<string, FollowedDoc>()
  readonly #gapGraceMs: number
  readonly #dropIncoming: ((message: ClusterMessage) => boolean) | null
  readonly #checkTimer: ReturnType<typeof setInterval>
  readonly #heartbeatTimer: ReturnType<typeof setInterval>
  readonly #instanceTimeoutMs: number
  readonly #aloneProbeMs: number
  /** When each other instance was last heard from (`performance.now()`). */
  readonly #lastHeard = new Map<string, number>()
  /** The serial of this instance's last catalog message (counting those not published). */
  #catalogSerial = 0
  /** True while this instance listens to {@link CATALOG_CHANNEL} (its connections watch workspaces). */
  #catalogListening = false
  /** The subscription to {@link CATALOG_CHANNEL} being made, if any. */
  #catalogSubscription: Promise<void> | null = null
  /** Whether another instance listens to catalog messages; `skipped` is cleared once a heartbeat told a listener. */
  readonly #catalogListeners: Listeners
  /** The serial of the last catalog message heard from each other instance. */
  readonly #catalogHeard = new Map<string, number>()
  /** Per workspace watched here: each doc's last sequence number as known here. */
  readonly #catalogKnown = new Map<string, WatchedCatalog>()
  /** The catalog repair running, if any; `catalogRepairAgain` asks it for one more round. */
  #catalogRepairing: Promise<void> | null = null
  #catalogRepairAgain = false
  /** True after a catalog repair failed to read storage: the next check tries again. */
  #catalogRepairFailed = false
  #checking = false
  /** True once the subscriber lost its connection, until it is back and every doc was checked. */
  #subscriberLost = false
  #degraded = false
  /** True once both Redis connections have been ready: before, one still connecting is not an outage. */
  #connectedOnce = false
  /** The last error a Redis connection reported (what {@link ready} names when it gives up). */
  #lastRedisError: Error | null = null
  /** Periodic checks that could not read storage since the last that could, and when the last of them was logged. */
  #checkFailures = 0
  #checkFailureLoggedAt = 0
  readonly #degradedListeners: Array<(degraded: boolean) => void> = []
  readonly #storedElsewhereListeners: Array<(docs: string[]) => void> = []
  #closed = false
  readonly #publishStats = { published: 0, skipped: 0 }

  constructor(store: ClusterStore, options: ClusterOptions) {
    this.#store = store
    this.#log = options.logger.child({ component: 'cluster' })
    this.#gapGraceMs = options.gapGraceMs ?? 250
    this.#instanceTimeoutMs = options.instanceTimeoutMs ?? 10_000
    this.#aloneProbeMs = options.aloneProbeMs ?? 1000
    this.#catalogListeners = new Listeners(this.#aloneProbeMs)
    this.#dropIncoming = options.dropIncoming ?? null
    const retryStrategy = (attempt: number): number => Math.min(2000, 50 * 2 ** Math.min(attempt, 6))
    this.#publisher = new Redis(options.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy })
    this.#subscriber = new Redis(options.redisUrl, { retryStrategy, maxRetriesPerRequest: null })
    for (const connection of [this.#publisher, this.#subscriber]) {
      connection.on('error', (error: Error) => {
        this.#lastRedisError = error
        this.#log.debug({ err: error }, 'redis connection error')
      })
      connection.on('close', () => this.#updateDegraded())
      connection.on('ready', () => this.#updateDegraded())
    }
    this.#subscriber.on('close', () => {
      if (!this.#closed) this.#subscriberLost = true
    })
    // Messages published while the subscription was down are lost: catch up from storage.
    this.#subscriber.on('ready', () => {
      if (!this.#subscriberLost) return
      this.#subscriberLost = false
      // nobody was heard meanwhile: every instance's silence counts from now
      const now = performance.now()
      for (const instance of this.#lastHeard.keys()) this.#lastHeard.set(instance, now)
      void this.#checkAll()
      void this.#repairCatalog()
    })
    this.#subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.#receive(message))
    this.#subscriber
      .subscribe(INSTANCES_CHANNEL)
      .catch((error: Error) => this.#log.warn({ err: error }, 'could not subscribe to the instances channel'))
    this.#checkTimer = setInterval(() => {
      void this.#checkAll()
      if (this.#catalogRepairFailed) void this.#repairCatalog()
    }, options.checkIntervalMs ?? 2000)
    this.#checkTimer.unref()
    this.#heartbeatTimer = setInterval(() => {
      this.#heartbeat()
      this.#removeSilentInstances()
    }, options.heartbeatIntervalMs ?? 2000)
    this.#heartbeatTimer.unref()
  }

  /** True while either Redis connection is down: this instance serves its own clients only, and catches up later. */
  get degraded(): boolean {
    return this.#degraded
  }

  /** How many commits and presence changes of open docs, and live-list notices, were published, and how many skipped because no other instance held the doc or listened. */
  get publishStats(): { readonly published: number; readonly skipped: number } {
    return { ...this.#publishStats }
  }

  /** Calls `listener` now and whenever {@link degraded} changes. */
  watchDegraded(listener: (degraded: boolean) => void): void {
    this.#degradedListeners.push(listener)
    listener(this.#degraded)
  }

  /**
   * Waits until both Redis connections are ready (tests, start-up checks);
   * rejects after `timeoutMs`, or at once when Redis refused the password
   * (or asked for one), with Redis's own error in the message.
   */
  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.#publisher.status !== 'ready' || this.#subscriber.status !== 'ready') {
      const refused = authRefusal(this.#lastRedisError)
      if (refused !== null) throw new Error(refused)
      if (Date.now() > deadline) {
        const cause = this.#lastRedisError === null ? this.#publisher.status : this.#lastRedisError.message
        throw new Error(`Redis not reachable within ${timeoutMs} ms (${cause})`)
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    this.#updateDegraded()
  }

  /** Starts following a loaded room: subscribes to its channel, then catches up with what was stored meanwhile. */
  follow(room: Room): void {
    const followed: FollowedDoc = {
      room,
      applied: room.lastSeq,
      waiting: [],
      gapTimer: null,
      repairing: null,
      repairAgain: false,
      presenceFrom: new Map(),
      subscribed: false,
      listeners: new Listeners(this.#aloneProbeMs),
    }
    this.#docs.set(room.name, followed)
    this.#subscriber.subscribe(CHANNEL_PREFIX + room.name).then(
      () => {
        followed.subscribed = true
        // instances that skip publishing the doc while nobody else holds it publish again
        this.#publishDoc(followed, { kind: 'holding', instance: this.instanceId, doc: room.name, unpublished: false }, true)
        // what other instances stored between the load and the subscription
        return this.#repair(followed)
      },
      (error: Error) => this.#log.warn({ err: error, doc: room.name }, 'could not subscribe; the periodic check keeps the doc up to date'),
    )
  }

  /** Stops following an unloaded room. */
  unfollow(room: Room): void {
    const followed = this.#docs.get(room.name)
    if (followed?.room !== room) return
    this.#docs.delete(room.name)
    if (followed.gapTimer !== null) clearTimeout(followed.gapTimer)
    this.#subscriber.unsubscribe(CHANNEL_PREFIX + room.name).catch(() => undefined)
  }

  /** Publishes what this instance stored, and records the range as in the room's doc. */
  committed(room: Room, fromSeq: number, toSeq: number, updates: readonly Uint8Array[], authors: readonly AuthorBinding[]): void {
    const followed = this.#docs.get(room.name)
    if (followed === undefined || followed.room !== room) return
    if (fromSeq <= toSeq) {
      followed.waiting.push({ fromSeq, toSeq, updates: null, authors })
      this.#advance(followed)
    }
    if (fromSeq > toSeq && authors.length === 0) return
    this.#publishDoc(followed, {
      kind: 'update',
      instance: this.instanceId,
      doc: room.name,
      fromSeq,
      toSeq,
      updates: [...updates],
      authors: [...authors],
    })
  }

  /**
   * Publishes the names of the docs a commit of this instance stored, with
   * their last sequence numbers (other instances tell their catalog watchers).
   */
  storedDocs(docs: string[], lastSeqs: ReadonlyMap<string, number>): void {
    const seqs = docs.map((doc) => lastSeqs.get(doc) ?? 0)
    this.#noteCatalogSeqs(docs, seqs)
    // numbered even when not published: an instance that starts listening finds it missing and reads storage
    const serial = ++this.#catalogSerial
    this.#publishListened(
      CATALOG_CHANNEL,
      { kind: 'catalog', instance: this.instanceId, docs, serial, seqs },
      this.#catalogListeners,
      () => this.#catalogListening && this.#catalogSubscription === null,
    )
  }

  /**
   * Calls `listener` with the names of the docs each commit of another
   * instance stored, and with those whose notices were lost (found by
   * {@link watchCatalog}'s repair).
   */
  onStoredElsewhere(listener: (docs: string[]) => void): void {
    this.#storedElsewhereListeners.push(listener)
  }

  /**
   * A connection of this instance watches `workspace` now: reads its docs'
   * last sequence numbers, against which lost notices are found later.
   * Resolves once they are read; watching a watched workspace again returns
   * the same read.
   */
  watchCatalog(workspace: string): Promise<void> {
    const known = this.#catalogKnown.get(workspace)
    if (known !== undefined) return known.loaded
    const seqs = new Map<string, number>()
    // listening first: what is stored after the read is then heard of
    const listening = this.#listenToCatalog()
    const watched: WatchedCatalog = {
      seqs,
      ready: false,
      recheck: false,
      loaded: listening
        .then(() => this.#store.listDocSeqs(`${workspace}/`))
        .then(
          (stored) => {
            for (const { doc, lastSeq } of stored) if (lastSeq > (seqs.get(doc) ?? 0)) seqs.set(doc, lastSeq)
            watched.ready = true
            // notices found missing during the read: it may have been made before they were stored
            if (watched.recheck && this.#catalogKnown.get(workspace) === watched) void this.#repairCatalog()
          },
          (error: Error) => {
            this.#catalogKnown.delete(workspace) // read again at the next watch
            this.#log.warn({ err: error, workspace }, 'could not read a watched workspace’s docs: its lost notices are not repaired')
          },
        ),
    }
    this.#catalogKnown.set(workspace, watched)
    return watched.loaded
  }

  /** No connection of this instance watches `workspace` any more. */
  unwatchCatalog(workspace: string): void {
    this.#catalogKnown.delete(workspace)
    if (this.#catalogKnown.size > 0 || !this.#catalogListening || this.#closed) return
    this.#catalogListening = false
    this.#subscriber.unsubscribe(CATALOG_CHANNEL).catch(() => undefined)
    this.#heartbeat() // the others stop publishing catalog messages once they find nobody else listens
  }

  /**
   * Subscribes to {@link CATALOG_CHANNEL} unless this instance listens
   * already; resolves once the subscription is in place (or failed: the
   * periodic heartbeat serials still find what was missed). Tells the other
   * instances with a heartbeat, so that any that stopped publishing catalog
   * messages publishes them again.
   */
  #listenToCatalog(): Promise<void> {
    if (this.#catalogListening) return this.#catalogSubscription ?? Promise.resolve()
    this.#catalogListening = true
    const subscription: Promise<void> = this.#subscriber.subscribe(CATALOG_CHANNEL).then(
      () => {
        if (this.#catalogSubscription === subscription) this.#catalogSubscription = null
        this.#heartbeat()
      },
      (error: Error) => {
        if (this.#catalogSubscription === subscription) this.#catalogSubscription = null
        this.#log.warn({ err: error }, 'could not subscribe to the catalog channel; lost notices are found at the next heartbeats')
      },
    )
    this.#catalogSubscription = subscription
    return subscription
  }

  /** Publishes this instance's heartbeat: the serial of its last catalog message, and whether it listens to them. */
  #heartbeat(): void {
    if (this.#closed || this.#publisher.status !== 'ready') return // the others count this instance's silence
    const message: ClusterMessage = {
      kind: 'heartbeat',
      instance: this.instanceId,
      catalogSerial: this.#catalogSerial,
      catalogListener: this.#catalogListening,
      leaving: false,
    }
    this.#publisher.publish(INSTANCES_CHANNEL, Buffer.from(encodeClusterMessage(message))).catch((error: Error) => {
      this.#log.debug({ err: error }, 'heartbeat not published')
    })
  }

  /**
   * Publishes the presence states this instance's own clients hold in a
   * followed doc, for an instance that just subscribed to it: it missed
   * those published before, and any skipped while nobody else held the doc.
   * Presence is kept nowhere else, so without this the newcomer's clients
   * would see them only at their next renewal (15 s).
   */
  #publishOwnPresence(followed: FollowedDoc): void {
    const awareness = followed.room.awareness
    if (awareness === null) return
    const own = [...awareness.getStates().keys()].filter((clientId) => !followed.presenceFrom.has(clientId))
    if (own.length === 0) return
    const update = awarenessProtocol.encodeAwarenessUpdate(awareness, own)
    this.#publishDoc(followed, { kind: 'awareness', instance: this.instanceId, doc: followed.room.name, update }, true)
  }

  /** Publishes presence changes this instance received. */
  awarenessChanged(room: Room, update: Uint8Array): void {
    const followed = this.#docs.get(room.name)
    if (followed === undefined || followed.room !== room) return
    this.#publishDoc(followed, { kind: 'awareness', instance: this.instanceId, doc: room.name, update })
  }

  /** Says goodbye to the other instances (a last heartbeat, `leaving`), stops checking and closes both Redis connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true // nothing else is published after the goodbye
    if (this.#publisher.status === 'ready') {
      const goodbye: ClusterMessage = {
        kind: 'heartbeat',
        instance: this.instanceId,
        catalogSerial: this.#catalogSerial,
        catalogListener: false,
        leaving: true,
      }
      await this.#publisher.publish(INSTANCES_CHANNEL, Buffer.from(encodeClusterMessage(goodbye))).catch((error: Error) => {
        this.#log.debug({ err: error }, 'leaving heartbeat not published; the others notice the silence')
      })
    }
    clearInterval(this.#checkTimer)
    clearInterval(this.#heartbeatTimer)
    for (const followed of this.#docs.values()) if (followed.gapTimer !== null) clearTimeout(followed.gapTimer)
    this.#docs.clear()
    // QUIT on a live connection; one that is down (and would queue QUIT until Redis is back) is just dropped.
    this.#storedElsewhereListeners.length = 0
    await Promise.all(
      [this.#publisher, this.#subscriber].map(async (connection) => {
        if (connection.status === 'ready') await connection.quit().catch(() => undefined)
        connection.disconnect()
      }),
    )
  }

  /**
   * Publishes on a followed doc's channel, unless no other instance held the
   * doc at the last look (less than `aloneProbeMs` ago; `always` publishes
   * anyway). Redis answers how many subscribers got the message: none but
   * this instance's own means nobody else holds the doc, and publishes are
   * skipped until the next look — or until another instance's message on
   * the channel (its `holding` message once subscribed) says otherwise.
   */
  #publishDoc(followed: FollowedDoc, message: ClusterMessage, always = false): void {
    this.#publishListened(CHANNEL_PREFIX + followed.room.name, message, followed.listeners, () => followed.subscribed, always)
  }

  /**
   * Publishes `message` on `channel` unless `listeners` says nobody else
   * listens there (`always` publishes anyway), and looks at Redis's answer:
   * how many subscribers got it, less this instance's own (`ownSubscribed`).
   * `holding` messages are not counted in {@link publishStats}.
   */
  #publishListened(channel: string, message: ClusterMessage, listeners: Listeners, ownSubscribed: () => boolean, always = false): void {
    if (!always && listeners.skip()) {
      this.#publishStats.skipped++
      return
    }
    if (this.#closed || this.#publisher.status !== 'ready') return // the others catch up from storage
    if (message.kind !== 'holding') this.#publishStats.published++
    const look = listeners.look()
    this.#publisher.publish(channel, Buffer.from(encodeClusterMessage(message))).then(
      (receivers) => look(receivers - (ownSubscribed() ? 1 : 0)),
      (error: Error) => this.#log.debug({ err: error, channel }, 'publish failed; other instances catch up from storage'),
    )
  }

  #receive(bytes: Buffer): void {
    let message: ClusterMessage
    try {
      message = decodeClusterMessage(bytes)
    } catch (error) {
      this.#log.warn({ err: error }, 'malformed cluster message ignored')
      return
    }
    if (message.instance === this.instanceId) return
    if (this.#dropIncoming !== null && this.#dropIncoming(message)) return
    if (message.kind === 'heartbeat' && message.leaving) {
      this.#removeInstances(new Set([message.instance]))
      this.#log.info({ instance: message.instance }, 'a relay instance stopped: its clients’ presence removed')
      return
    }
    this.#lastHeard.set(message.instance, performance.now())
    if (message.kind === 'heartbeat') {
      if (message.catalogListener) {
        this.#catalogListeners.heardOther()
        if (this.#catalogListeners.skipped) {
          // it may have started listening after a message this instance did not publish: the serial says so
          this.#catalogListeners.skipped = false
          this.#heartbeat()
        }
      }
      this.#noteCatalogSerial(message.instance, message.catalogSerial, true)
      return
    }
    if (message.kind === 'catalog') {
      this.#noteCatalogSeqs(message.docs, message.seqs)
      for (const listener of this.#storedElsewhereListeners) listener(message.docs)
      if (message.serial > 0) this.#noteCatalogSerial(message.instance, message.serial, false)
      return
    }
    const followed = this.#docs.get(message.doc)
    if (followed === undefined || followed.room.closed) return
    // another instance holds the doc: publish to it
    followed.listeners.heardOther()
    if (message.kind === 'holding') {
      if (message.unpublished) {
        // it stored updates it did not publish: they may have been stored after this instance's catch-up read
        void this.#repair(followed)
      } else {
        if (followed.listeners.skipped) {
          followed.listeners.skipped = false
          this.#publishDoc(followed, { kind: 'holding', instance: this.instanceId, doc: message.doc, unpublished: true }, true)
        }
        this.#publishOwnPresence(followed)
      }
      return
    }
    if (message.kind === 'awareness') {
      try {
        followed.room.applyClusterAwareness(message.update)
        for (const { clientId, state } of decodeAwarenessUpdate(message.update)) {
          if (state === null) followed.presenceFrom.delete(clientId)
          else followed.presenceFrom.set(clientId, message.instance)
        }
      } catch (error) {
        this.#log.warn({ err: error, doc: message.doc }, 'cluster awareness update could not be applied')
      }
      return
    }
    if (message.fromSeq > message.toSeq) {
      // bindings only: they do not move the sequence
      followed.room.bindClusterAuthors(message.authors)
      return
    }
    followed.waiting.push({ fromSeq: message.fromSeq, toSeq: message.toSeq, updates: message.updates, authors: message.authors })
    this.#advance(followed)
  }

  /** Applies every waiting range that now joins `applied`, in order; a range left waiting starts the gap timer. */
  #advance(followed: FollowedDoc): void {
    const { room } = followed
    followed.waiting.sort((a, b) => a.fromSeq - b.fromSeq)
    let next = 0
    for (; next < followed.waiting.length; next++) {
      const range = followed.waiting[next]
      if (range.fromSeq > followed.applied + 1) break
      if (range.toSeq <= followed.applied) continue
      if (range.updates !== null) room.applyClusterUpdates(range.updates, range.authors)
      followed.applied = range.toSeq
    }
    followed.waiting.splice(0, next)
    room.lastSeq = followed.applied
    if (followed.waiting.length === 0) {
      if (followed.gapTimer !== null) clearTimeout(followed.gapTimer)
      followed.gapTimer = null
    } else if (followed.gapTimer === null) {
      followed.gapTimer = setTimeout(() => {
        followed.gapTimer = null
        void this.#repair(followed)
      }, this.#gapGraceMs)
      followed.gapTimer.unref()
    }
  }

  /** Reads what the room lacks from storage and applies it; one repair per doc at a time. */
  #repair(followed: FollowedDoc): Promise<void> {
    if (followed.repairing !== null) {
      followed.repairAgain = true
      return followed.repairing
    }
    followed.repairing = (async () => {
      do {
        followed.repairAgain = false
        const { room } = followed
        const name = room.name
        const since = await this.#store.updatesSince(name, followed.applied)
        if (room.closed || this.#docs.get(name) !== followed) return
        if (since === null) {
          // a checkpoint covers part of the gap: apply the whole doc (Yjs skips what the room has)
          const stored = await this.#store.loadDoc(name)
          if (room.closed || this.#docs.get(name) !== followed) return
          room.applyClusterUpdates(stored.checkpoint === null ? stored.updates : [stored.checkpoint, ...stored.updates], stored.authors)
          followed.applied = Math.max(followed.applied, stored.lastSeq)
        } else {
          room.applyClusterUpdates(since.updates, since.authors)
          followed.applied = Math.max(followed.applied, since.lastSeq)
        }
        this.#advance(followed)
      } while (followed.repairAgain)
    })()
      .catch((error: Error) => {
        this.#log.warn({ err: error, doc: followed.room.name }, 'could not read missing updates from storage; retried by the next check')
      })
      .finally(() => {
        followed.repairing = null
      })
    return followed.repairing
  }

  /** Repairs every open doc whose last stored sequence number is past what its room holds. */
  async #checkAll(): Promise<void> {
    if (this.#checking || this.#closed || this.#docs.size === 0) return
    this.#checking = true
    try {
      const seqs = await this.#store.lastSeqs([...this.#docs.keys()])
      for (const [name, lastSeq] of seqs) {
        const followed = this.#docs.get(name)
        if (followed !== undefined && lastSeq > followed.applied) void this.#repair(followed)
      }
      if (this.#checkFailures > 0) {
        this.#log.info({ failures: this.#checkFailures }, 'open docs compared with storage again')
        this.#checkFailures = 0
      }
    } catch (error) {
      this.#checkFailed(error)
    } finally {
      this.#checking = false
    }
  }

  /** Logs a check that could not read storage: the first of a streak with its error, then a count at most once a minute. */
  #checkFailed(error: unknown): void {
    const now = performance.now()
    if (this.#checkFailures++ === 0) {
      this.#checkFailureLoggedAt = now
      this.#log.warn({ err: error }, 'could not compare open docs with storage; retried at every check')
    } else if (now - this.#checkFailureLoggedAt >= 60_000) {
      this.#checkFailureLoggedAt = now
      this.#log.warn(
        { failures: this.#checkFailures, error: (error as Error).message },
        'still cannot compare open docs with storage; retried at every check',
      )
    }
  }

  /** Records the last sequence numbers of stored docs of watched workspaces. */
  #noteCatalogSeqs(docs: readonly string[], seqs: readonly number[]): void {
    if (this.#catalogKnown.size === 0) return
    docs.forEach((doc, i) => {
      const known = this.#catalogKnown.get(doc.slice(0, doc.indexOf('/')))
      if (known !== undefined && (seqs[i] ?? 0) > (known.seqs.get(doc) ?? 0)) known.seqs.set(doc, seqs[i])
    })
  }

  /**
   * Records the serial of an instance's catalog message (or, from a
   * heartbeat, of its last one); a serial skipped means lost notices, which
   * are then repaired. An instance heard of for the first time counts from 0.
   */
  #noteCatalogSerial(instance: string, serial: number, fromHeartbeat: boolean): void {
    const last = this.#catalogHeard.get(instance) ?? 0
    if (serial > last) this.#catalogHeard.set(instance, serial)
    if (fromHeartbeat ? serial > last : serial > last + 1) void this.#repairCatalog()
  }

  /**
   * Reads the docs of every workspace watched here from storage and tells
   * the watchers of those whose last sequence number moved beyond what this
   * instance knew; one repair at a time.
   */
  #repairCatalog(): Promise<void> {
    if (this.#catalogRepairing !== null) {
      this.#catalogRepairAgain = true
      return this.#catalogRepairing
    }
    this.#catalogRepairFailed = false
    this.#catalogRepairing = (async () => {
      do {
        this.#catalogRepairAgain = false
        for (const [workspace, known] of this.#catalogKnown) {
          if (!known.ready) {
            // its first read, still under way, may have been made before the lost notices' commits: read again after it
            known.recheck = true
            continue
          }
          const stored = await this.#store.listDocSeqs(`${workspace}/`)
          const missed = stored.filter(({ doc, lastSeq }) => lastSeq > (known.seqs.get(doc) ?? 0)).map(({ doc }) => doc)
          for (const { doc, lastSeq } of stored) if (lastSeq > (known.seqs.get(doc) ?? 0)) known.seqs.set(doc, lastSeq)
          if (missed.length === 0 || this.#closed) continue
          this.#log.info({ workspace, docs: missed.length }, 'live-list notices were lost: watchers told of the docs from storage')
          for (const listener of this.#storedElsewhereListeners) listener(missed)
        }
      } while (this.#catalogRepairAgain && !this.#closed)
    })()
      .catch((error: Error) => {
        this.#catalogRepairFailed = true // what this round learned is kept; the next check reads again
        this.#log.warn({ err: error }, 'could not read watched workspaces to repair lost live-list notices; retried at the next check')
      })
      .finally(() => {
        this.#catalogRepairing = null
      })
    return this.#catalogRepairing
  }

  /** Removes, from every open doc, the presence states sent by instances silent for longer than the instance timeout. */
  #removeSilentInstances(): void {
    if (this.#closed || this.#subscriber.status !== 'ready') return // we hear nobody: their silence says nothing
    const now = performance.now()
    const silent = new Set<string>()
    for (const [instance, heard] of this.#lastHeard) if (now - heard > this.#instanceTimeoutMs) silent.add(instance)
    if (silent.size === 0) return
    this.#removeInstances(silent)
    this.#log.warn({ instances: [...silent] }, 'relay instances silent too long: their clients’ presence removed')
  }

  /** Forgets `instances` and removes, from every open doc, the presence states they sent. */
  #removeInstances(instances: ReadonlySet<string>): void {
    for (const instance of instances) this.#lastHeard.delete(instance)
    for (const followed of this.#docs.values()) {
      const gone: number[] = []
      for (const [clientId, instance] of followed.presenceFrom) if (instances.has(instance)) gone.push(clientId)
      if (gone.length === 0) continue
      for (const clientId of gone) followed.presenceFrom.delete(clientId)
      if (!followed.room.closed) followed.room.removeClusterAwareness(gone)
    }
  }

  #updateDegraded(): void {
    const bothReady = this.#publisher.status === 'ready' && this.#subscriber.status === 'ready'
    if (!this.#connectedOnce) {
      // starting: one connection ready before the other is no outage (ready() rejects if they never both are)
      if (!bothReady) return
      this.#connectedOnce = true
    }
    const degraded = !this.#closed && !bothReady
    if (degraded === this.#degraded) return
    this.#degraded = degraded
    for (const listener of this.#degradedListeners) listener(degraded)
    if (degraded) this.#log.warn('Redis unreachable: serving this instance’s clients only; catching up from storage once it is back')
    else this.#log.info('Redis reachable again')
  }
}
