/**
 * Initial syncs larger than one frame. The state a client lacks (the answer
 * to its sync step 1, or to a `fetch`) is one Yjs update; when it is larger
 * than `initialSyncChunkBytes` it is cut into several valid Yjs updates of at
 * most that size ({@link updateParts}) and sent one after another as the
 * socket drains ({@link InitialSyncQueue}): the next part goes out when an
 * earlier one has left the send buffer, so a fresh client on a slow link is
 * never mistaken for a slow reader, while live traffic still is.
 *
 * Memory is bounded: a connection sends one such sync at a time, and the
 * relay-wide bytes of syncs being sent stay within `maxInitialSyncBytes`
 * (others wait their turn, holding only their state vector).
 *
 * Consistency: the parts of one sync come from one encoding of the state,
 * made when the sync starts. The client is already a peer of the room then,
 * so every update applied after that encoding reaches it live; whatever was
 * applied before is in the encoding. Nothing is lost; what arrives twice is
 * harmless in Yjs.
 *
 * @example
 *   for (const part of updateParts(Y.encodeStateAsUpdate(doc), 512 * 1024)) send(part)
 *
 * @module connections/initialSync
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'

/** Bytes a part needs besides its structs: client count, and the (empty) delete set. */
const PART_OVERHEAD = 16
/** Bytes a run of one client's structs needs besides them: struct count, client id, first clock. */
const RUN_OVERHEAD = 24

type Struct = Y.Item | Y.GC | Y.Skip

/** Encoded size of one struct, bytes. */
const measure = (struct: Struct): number => {
  const encoder = new Y.UpdateEncoderV1()
  struct.write(encoder, 0)
  return encoding.length(encoder.restEncoder)
}

/** The part [start, end) of a decoded (not integrated) item, as an item of its own. */
const sliceItem = (item: Y.Item, start: number, end: number): Y.Item => {
  let content = item.content.copy()
  if (end < item.length) content.splice(end)
  if (start > 0) content = content.splice(start)
  const { client, clock } = item.id
  const origin = start > 0 ? Y.createID(client, clock + start - 1) : item.origin
  return new Y.Item(Y.createID(client, clock + start), null, origin, null, item.rightOrigin, item.parent, item.parentSub, content)
}

/** A cut point of `item` at or near `at` that does not split a UTF-16 surrogate pair. */
const safeCut = (item: Y.Item, start: number, at: number): number => {
  if (!(item.content instanceof Y.ContentString) || at >= item.length) return at
  const code = item.content.str.charCodeAt(at - 1)
  if (code < 0xd800 || code > 0xdbff) return at
  return at - 1 > start ? at - 1 : at + 1
}

/**
 * `struct` in pieces of at most `budget` encoded bytes each. Items whose
 * content can be cut (text, JSON values, deleted ranges) are cut; others
 * (one embedded binary, one nested type) stay whole — no larger than the
 * update that brought them, which the relay accepted within `maxPayload`.
 */
function* pieces(struct: Struct, budget: number): Generator<{ struct: Struct; size: number }> {
  const size = measure(struct)
  if (size <= budget || !(struct instanceof Y.Item) || struct.length <= 1) {
    yield { struct, size }
    return
  }
  // units per piece, guessed from the whole item and corrected per piece
  const perPiece = Math.max(1, Math.floor((struct.length * budget) / size))
  let start = 0
  while (start < struct.length) {
    let end = safeCut(struct, start, Math.min(struct.length, start + perPiece))
    let piece = sliceItem(struct, start, end)
    let pieceSize = measure(piece)
    while (pieceSize > budget && end - start > 1) {
      end = safeCut(struct, start, start + Math.max(1, Math.floor(((end - start) * budget * 0.9) / pieceSize)))
      piece = sliceItem(struct, start, end)
      pieceSize = measure(piece)
    }
    yield { struct: piece, size: pieceSize }
    start = end
  }
}

interface Run {
  client: number
  structs: Struct[]
}

/** One Yjs update of the given runs of structs and an empty delete set (Yjs's own V1 layout). */
const writePart = (runs: readonly Run[]): Uint8Array => {
  const encoder = new Y.UpdateEncoderV1()
  encoding.writeVarUint(encoder.restEncoder, runs.length)
  for (const run of runs) {
    encoding.writeVarUint(encoder.restEncoder, run.structs.length)
    encoder.writeClient(run.client)
    encoding.writeVarUint(encoder.restEncoder, run.structs[0].id.clock)
    for (const struct of run.structs) struct.write(encoder, 0)
  }
  encoding.writeVarUint(encoder.restEncoder, 0) // no deletions
  return encoder.toUint8Array()
}

/** The id a struct depends on (an origin, right origin or parent item), or null. */
type Dependency = { client: number; clock: number } | null

/** The ids a decoded item refers to: its origins and its parent item. */
const dependenciesOf = (struct: Struct): Dependency[] => {
  if (!(struct instanceof Y.Item)) return []
  const parent = struct.parent as unknown
  const parentId = parent !== null && typeof parent === 'object' && parent instanceof Y.ID ? parent : null
  return [struct.origin, struct.rightOrigin, parentId]
}

/**
 * The structs of a decoded update in causal order: every struct after the
 * structs it refers to (origins, parent item) and after its own client's
 * earlier structs. Applied in this order, parts leave nothing pending in
 * Yjs; in the update's own order (client by client) a part of one client
 * that refers to a later part of another waits as pending, and Yjs merges
 * every later part into what waits — quadratic for docs of many writers.
 * Iterative (a stack of clients), linear in the structs.
 */
export const causalOrder = (structs: readonly Struct[]): Struct[] => {
  const byClient = new Map<number, Struct[]>()
  for (const struct of structs) {
    let list = byClient.get(struct.id.client)
    if (!list) byClient.set(struct.id.client, (list = []))
    list.push(struct)
  }
  const next = new Map<number, number>()
  for (const client of byClient.keys()) next.set(client, 0)
  /** True once the struct holding `dep` is out (or it is not in the update: the receiver has it). */
  const done = (dep: Dependency): boolean => {
    if (dep === null) return true
    const list = byClient.get(dep.client)
    if (!list || dep.clock < list[0].id.clock) return true
    const i = next.get(dep.client)!
    return i >= list.length || dep.clock < list[i].id.clock
  }
  const order: Struct[] = []
  const onStack = new Set<number>()
  for (const [root, list] of byClient) {
    while (next.get(root)! < list.length) {
      const stack = [root]
      onStack.add(root)
      while (stack.length > 0) {
        const client = stack[stack.length - 1]
        const own = byClient.get(client)!
        const i = next.get(client)!
        if (i >= own.length) {
          stack.pop()
          onStack.delete(client)
          continue
        }
        const struct = own[i]
        const missing = dependenciesOf(struct).find(
          (dep) => dep !== null && dep.client !== client && !done(dep) && !onStack.has(dep.client),
        )
        if (missing) {
          // emit what it refers to first (a reference back into a client on the stack cannot happen causally; if it does, Yjs keeps it pending)
          stack.push(missing.client)
          onStack.add(missing.client)
          continue
        }
        order.push(struct)
        next.set(client, i + 1)
        stack.pop()
        onStack.delete(client)
      }
    }
  }
  return order
}

/**
 * Cuts a Yjs (V1) update into valid updates of at most `maxBytes` each
 * (a struct that cannot be cut may exceed it alone): the structs in causal
 * order ({@link causalOrder}), then one update with the whole delete set and
 * no structs. Applied in order, the parts give the same doc as the update,
 * with nothing left pending between them; each one alone is a valid update.
 * Parts are made as they are asked for.
 */
export function* updateParts(update: Uint8Array, maxBytes: number): Generator<Uint8Array> {
  const { structs } = Y.decodeUpdate(update)
  const ends = new Map<number, number>()
  for (const struct of structs) ends.set(struct.id.client, Math.max(ends.get(struct.id.client) ?? 0, struct.id.clock + struct.length))
  // the update minus every struct it carries: its delete set alone
  const deletions = Y.diffUpdate(update, Y.encodeStateVector(ends))
  update = new Uint8Array(0) // the decoded structs are what is sent from now on: free the bytes while parts go out
  const budget = Math.max(1, maxBytes - PART_OVERHEAD - RUN_OVERHEAD)
  // one run per client and part: in causal order a part gets each client's structs as one range of clocks
  let runs = new Map<number, Run>()
  let size = PART_OVERHEAD
  for (const whole of causalOrder(structs)) {
    if (whole instanceof Y.Skip) continue
    for (const { struct, size: structSize } of pieces(whole, budget)) {
      const adds = structSize + (runs.has(struct.id.client) ? 0 : RUN_OVERHEAD)
      if (runs.size > 0 && size + adds > maxBytes) {
        yield writePart([...runs.values()])
        runs = new Map()
        size = PART_OVERHEAD
      }
      const run = runs.get(struct.id.client)
      if (run !== undefined) run.structs.push(struct)
      else {
        runs.set(struct.id.client, { client: struct.id.client, structs: [struct] })
        size += RUN_OVERHEAD
      }
      size += structSize
    }
  }
  if (runs.size > 0) yield writePart([...runs.values()])
  yield deletions
}

/** Where the parts of one initial sync go. */
export interface InitialSyncTarget {
  /** The connection: it sends one initial sync at a time. */
  readonly owner: object
  /** What the sync is for (a doc name, or `fetch:` + doc name): a newer sync for the same key replaces one still waiting. */
  readonly key: string
  /**
   * Makes the update to send, when it is the sync's turn (null: nothing to
   * send any more, e.g. the doc was unsubscribed).
   */
  open(): Promise<Uint8Array | null> | Uint8Array | null
  /**
   * Sends one part (`last` for the final one); calls `sent` once the part
   * left the send buffer, with an error if it never will. Returns false when
   * the connection cannot send any more.
   */
  sendPart(part: Uint8Array, last: boolean, sent: (error?: Error) => void): boolean
}

interface Job {
  readonly target: InitialSyncTarget
  /** Bytes reserved against the relay-wide budget (the size known when it was queued). */
  bytes: number
  cancelled: boolean
  /** The update made when it was queued, while the sync may still start with it. */
  ready: Uint8Array | null
}

/** Parts of one sync that may wait in a socket's send buffer at once. */
const PARTS_IN_FLIGHT = 2

/**
 * The relay's initial syncs larger than a chunk: one per connection at a
 * time, within a relay-wide budget of bytes, paced by the sockets draining.
 */
export class InitialSyncQueue {
  private readonly waiting: Job[] = []
  private readonly running = new Map<object, Job>()
  private inFlightBytes = 0

  /**
   * @param chunkBytes largest part, bytes
   * @param budgetBytes relay-wide bytes of syncs being sent at once (one sync may exceed it alone)
   * @param onBytes told the relay-wide bytes in flight whenever they change (metrics)
   */
  constructor(
    readonly chunkBytes: number,
    private readonly budgetBytes: number,
    private readonly onBytes: (bytes: number) => void = () => {},
  ) {}

  /** Bytes of initial syncs being sent now. */
  get bytesInFlight(): number {
    return this.inFlightBytes
  }

  /** Syncs waiting for their turn. */
  get waitingCount(): number {
    return this.waiting.length
  }

  /**
   * Queues a sync whose update, made now, is `ready`: sent as it is if the
   * sync can start at once; otherwise dropped (nothing is held while waiting)
   * and made again by `target.open()` when it is its turn. Unless `replace` is
   * false, a sync of the same owner and key that has not started yet is
   * replaced (this one covers what it would have sent).
   */
  enqueue(target: InitialSyncTarget, ready: Uint8Array, { replace = true }: { replace?: boolean } = {}): void {
    if (replace) {
      const index = this.waiting.findIndex((job) => job.target.owner === target.owner && job.target.key === target.key)
      if (index !== -1) this.waiting.splice(index, 1)
    }
    const job: Job = { target, bytes: ready.byteLength, cancelled: false, ready }
    this.waiting.push(job)
    this.pump()
    job.ready = null
  }

  /** Whether the owner has a sync of `key` waiting or being sent. */
  has(owner: object, key: string): boolean {
    const running = this.running.get(owner)
    if (running?.target.key === key) return true
    return this.waiting.some((job) => job.target.owner === owner && job.target.key === key)
  }

  /** Drops the owner's syncs (all, or those of `key`): the connection closed or unsubscribed. */
  cancel(owner: object, key?: string): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const { target } = this.waiting[i]
      if (target.owner === owner && (key === undefined || target.key === key)) this.waiting.splice(i, 1)
    }
    const job = this.running.get(owner)
    if (job && (key === undefined || job.target.key === key)) this.finish(job)
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length; i++) {
      const job = this.waiting[i]
      if (this.running.has(job.target.owner)) continue
      // first come, first served: a sync that does not fit holds back the ones after it
      if (this.inFlightBytes > 0 && this.inFlightBytes + job.bytes > this.budgetBytes) return
      this.waiting.splice(i--, 1)
      this.start(job)
    }
  }

  private start(job: Job): void {
    this.running.set(job.target.owner, job)
    this.reserve(job.bytes)
    const ready = job.ready
    job.ready = null
    Promise.resolve()
      .then(() => ready ?? job.target.open())
      .then(
        (update) => {
          if (job.cancelled) return
          if (update === null) return this.finish(job)
          this.reserve(update.byteLength - job.bytes)
          job.bytes = update.byteLength
          this.pace(job, updateParts(update, this.chunkBytes))
        },
        () => this.finish(job),
      )
  }

  /** Sends parts while fewer than {@link PARTS_IN_FLIGHT} wait in the send buffer. */
  private pace(job: Job, parts: Generator<Uint8Array>): void {
    let next = parts.next()
    let inBuffer = 0
    const sendMore = (): void => {
      while (!job.cancelled && !next.done && inBuffer < PARTS_IN_FLIGHT) {
        const part = next.value
        next = parts.next()
        inBuffer++
        const ok = job.target.sendPart(part, next.done === true, (error) => {
          inBuffer--
          if (job.cancelled) return
          if (error) return this.finish(job)
          if (next.done && inBuffer === 0) return this.finish(job)
          sendMore()
        })
        if (!ok) return this.finish(job)
      }
    }
    sendMore()
  }

  private finish(job: Job): void {
    if (job.cancelled) return
    job.cancelled = true
    if (this.running.get(job.target.owner) === job) this.running.delete(job.target.owner)
    this.reserve(-job.bytes)
    this.pump()
  }

  private reserve(bytes: number): void {
    this.inFlightBytes += bytes
    this.onBytes(this.inFlightBytes)
  }
}
