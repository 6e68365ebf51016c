/**
 * The answers to a connection's `resume` messages (docs/PROTOCOL.md,
 * "Resume"): many docs subscribed at once, each with the client's state
 * vector, answered with one `resumed` message per batch of docs instead of
 * an `authors`, a sync step 1, an `ack` and a sync step 2 per doc (and the
 * client's step 2 and its ack, when the relay lacks nothing of the client).
 *
 * Docs load independently; those whose rooms are loaded by the end of an
 * event-loop turn are answered together in the next one. For each, in one
 * synchronous run: the subscription joins its room and its entry is made
 * from the room's state at that moment ({@link Subscription.answerResume}),
 * the `resumed` message goes out, and only then are the doc's presence
 * states sent and the client's messages that waited for it handled. So a
 * doc's catch-up reaches the client before any live update of that doc on
 * the socket, and nothing applied in between is missed: it is in the entry.
 *
 * Making the entries is answering work, charged to the connection's work
 * budget like the sync step 1s it replaces.
 *
 * @example
 *   const answers = new ResumeAnswers(connection)
 *   answers.add(subscription, clientStateVector) // the answer comes once the doc is loaded
 *
 * @module connections/ResumeAnswers
 */
// the module's own `setImmediate`, not the global: a test that fakes the global clock must not hold answers back
import { setImmediate } from 'node:timers'
import { encodeResumed, type ResumedDoc } from '@concord/engine/protocol'
import type { Room } from '../rooms/Room.js'
import type { Connection } from './Connection.js'
import type { Subscription } from './Subscription.js'
import { inOneBatch } from './batches.js'

/** A doc of a `resume` whose room is loaded and whose entry is not made yet. */
interface LoadedDoc {
  readonly sub: Subscription
  readonly room: Room
  /** The client's state vector of the doc (validated). */
  readonly stateVector: Uint8Array
}

/** The `resume` answers of one connection. */
export class ResumeAnswers {
  /** Docs loaded since the last answer. */
  private loaded: LoadedDoc[] = []
  /** True while an answer is scheduled. */
  private scheduled = false

  constructor(private readonly conn: Connection) {}

  /** Loads `sub`'s doc and answers `stateVector` once it is loaded (in the next turn's batch). */
  add(sub: Subscription, stateVector: Uint8Array): void {
    sub.loadForResume((room) => {
      this.loaded.push({ sub, room, stateVector })
      if (this.scheduled) return
      this.scheduled = true
      ;(this.conn.ctx.scheduleResumeAnswer ?? setImmediate)(this.answer)
    })
  }

  /** Joins every loaded doc and sends their entries, in `resumed` messages of at most a chunk each. */
  private readonly answer = (): void => {
    // to a client that speaks batches: the bindings, entries and presence of this answer in few frames
    inOneBatch(this.answerLoaded)
  }

  private readonly answerLoaded = (): void => {
    this.scheduled = false
    const loaded = this.loaded
    this.loaded = []
    const started = performance.now()
    const joined: { sub: Subscription; room: Room }[] = []
    const messages: Uint8Array[] = []
    const chunkBytes = this.conn.ctx.limits.initialSyncChunkBytes
    let batch: ResumedDoc[] = []
    let batchBytes = 0
    for (const { sub, room, stateVector } of loaded) {
      const entry = sub.answerResume(room, stateVector)
      if (entry === null) continue
      joined.push({ sub, room })
      const bytes = entrySize(entry)
      if (batch.length > 0 && batchBytes + bytes > chunkBytes) {
        messages.push(encodeResumed(batch))
        batch = []
        batchBytes = 0
      }
      batch.push(entry)
      batchBytes += bytes
    }
    if (batch.length > 0) messages.push(encodeResumed(batch))
    // over the budget the connection is closed: its subscriptions end with it
    if (!this.conn.chargeWork(`resume of ${loaded.length} docs`, performance.now() - started)) return
    for (const message of messages) this.conn.send('resumed', message)
    for (const { sub, room } of joined) sub.finishJoin(room)
  }
}

/** Bytes an entry takes in a `resumed` message, roughly (names and vectors are short beside updates). */
const entrySize = (entry: ResumedDoc): number =>
  entry.doc.length * 3 +
  16 +
  (entry.relayStateVector?.byteLength ?? 0) +
  (entry.ack instanceof Uint8Array ? entry.ack.byteLength : 0) +
  (entry.update?.byteLength ?? 0)
