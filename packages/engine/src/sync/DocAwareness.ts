/**
 * The awareness (presence) of one open doc on the wire, for its
 * {@link DocHandle}:
 *
 * - this client's own state goes out whenever it changes (or y-protocols
 *   renews it) while the doc is subscribed — but only while it shows
 *   presence: a null or empty state (`{}`, what a fresh Awareness holds)
 *   stays on this device, so a doc nobody set presence in costs no traffic
 *   (no initial state, no keep-alive every 15 s). The one change that takes
 *   a shown state away (to null or `{}`) goes out, so the others see it go;
 *   remote states that time out locally are the relay's business (it drops
 *   them when their socket goes);
 * - states from the relay are applied with the client as origin, and the
 *   relay's `query-awareness` is answered with this client's state;
 * - on every (re)subscribe a shown local state is set again, so its clock is
 *   newer than the one the relay and the peers kept from the last socket;
 * - remote states are removed when the doc disconnects or is parked, and
 *   their clocks forgotten, so the same states sent again show at once.
 *
 * The y-protocols `Awareness` itself is made when first used: when the
 * handle's `awareness` is read (e.g. to show presence, or because the handle
 * opened with a `user`) or the relay sends a state of another client. Most
 * docs a client syncs never show presence (records pulled for offline use,
 * the docs of a service), and an `Awareness` costs its set-up at every open
 * and a 3 s timer for as long as it lives.
 *
 * @module sync/DocAwareness
 */
import type * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import { encodeAwareness } from '../protocol/messages.js'

/** What the awareness of a doc uses of its handle. */
export interface AwarenessChannel {
  /** Origin of everything applied from the relay: the SyncClient itself. */
  readonly origin: object
  /** Whether the doc is subscribed on the current connection: own changes go out only then. */
  readonly subscribed: boolean
  /** Sends a message when the socket is open; drops it otherwise. */
  send(data: Uint8Array): void
}

/** Whether an awareness state shows presence: it is set and carries at least one field. */
const showsPresence = (state: Record<string, unknown> | null): boolean => state !== null && Object.keys(state).length > 0

/** Sends and receives the awareness of one doc. See the module documentation. */
export class DocAwareness {
  /**
   * Whether the last own state sent on the current subscription showed
   * presence, i.e. the relay and the peers hold it: then a change that takes
   * it away must go out too.
   */
  private sentShown = false
  /** The doc's `Awareness`, once made (see the module documentation). */
  private made: awarenessProtocol.Awareness | null = null
  private stopped = false

  /**
   * Sends this client's changes of the doc's awareness once it exists.
   *
   * @param doc the doc the awareness is made on (its client id is the awareness's)
   * @param name the doc name the messages carry
   */
  constructor(
    private readonly doc: Y.Doc,
    private readonly name: string,
    private readonly channel: AwarenessChannel,
  ) {}

  /** The doc's `Awareness`, made now if it does not exist yet (with the local state `{}`, which shows nothing). */
  get awareness(): awarenessProtocol.Awareness {
    if (this.made === null) {
      this.made = new awarenessProtocol.Awareness(this.doc)
      // read after the handle closed: an awareness like the one it would have destroyed (no timer, nothing sent)
      if (this.stopped) this.made.destroy()
      else this.made.on('update', this.onUpdate)
    }
    return this.made
  }

  /**
   * Subscribed anew: set the local state again, so its clock is newer than
   * the one the relay and the peers kept when the last socket dropped — they
   * ignore an equal clock, and would not show this client until its next change.
   */
  announce(): void {
    this.sentShown = false // a new subscription: the relay holds no state of this client
    const awareness = this.made
    if (awareness === null) return
    const state = awareness.getLocalState()
    if (showsPresence(state)) awareness.setLocalState(state)
  }

  /** An `awareness` message from the relay (states of others: the awareness is made for them). */
  apply(update: Uint8Array): void {
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, this.channel.origin)
  }

  /** The relay's `query-awareness`: answered with this client's state, when it shows presence. */
  answerQuery(): void {
    const awareness = this.made
    if (awareness === null || !showsPresence(awareness.getLocalState())) return
    this.channel.send(encodeAwareness(this.name, awarenessProtocol.encodeAwarenessUpdate(awareness, [awareness.clientID])))
  }

  /**
   * Removes every remote state (the doc disconnected or is parked) and
   * forgets their clocks: y-protocols keeps a removed client's clock and
   * ignores a state with the same clock, so the states the relay sends at
   * the next subscribe — the others' unchanged states — would not show until
   * each renewed its own (up to ~15 s).
   */
  removeRemote(): void {
    const awareness = this.made
    if (awareness === null) return
    const remote = Array.from(awareness.getStates().keys()).filter((client) => client !== awareness.clientID)
    if (remote.length > 0) awarenessProtocol.removeAwarenessStates(awareness, remote, this.channel.origin)
    for (const client of awareness.meta.keys()) if (client !== awareness.clientID) awareness.meta.delete(client)
  }

  /** Takes this client's state away (sent while the doc is subscribed and the state showed presence). */
  leave(): void {
    this.made?.setLocalState(null)
  }

  /** Stops sending and destroys the awareness (the handle closes). */
  destroy(): void {
    this.stopped = true
    if (this.made === null) return
    this.made.off('update', this.onUpdate)
    this.made.destroy()
  }

  private readonly onUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    const awareness = this.made
    if (awareness === null || origin === this.channel.origin || !this.channel.subscribed) return
    // Only this client's own state goes out: remote states that time out
    // locally are the relay's business (it drops them when their socket goes).
    const own = awareness.clientID
    if (!added.includes(own) && !updated.includes(own) && !removed.includes(own)) return
    // No presence and none on the wire: nothing to say (this is where keep-alives of an empty state stop).
    const shown = showsPresence(awareness.getLocalState())
    if (!shown && !this.sentShown) return
    this.sentShown = shown
    this.channel.send(encodeAwareness(this.name, awarenessProtocol.encodeAwarenessUpdate(awareness, [own])))
  }
}
