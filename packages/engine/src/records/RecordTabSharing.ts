/**
 * How one open record is shared with the other tabs of the same user
 * (messages over the store's `TabChannel`):
 *
 * - Local edits go out at once (`update`); a record that opens asks the
 *   others for edits they have not stored yet (`sync-request`), and answers
 *   such requests (`sync-reply`).
 * - **Saved.** Edits from another tab are written by their author. Until the
 *   author says they are saved (`saved`) they do not count as saved here;
 *   when its write failed (`save-failed`), or it has not confirmed them
 *   within {@link TAB_SAVE_FALLBACK_MS}, this tab writes them itself.
 * - **Catch-up.** A tab that left the relay's sync step 1 to the outbox-duty
 *   tab (`catch-up`) sends what is still unacked itself after
 *   {@link CATCH_UP_FALLBACK_MS} (that tab may be frozen in the background).
 * - **Acked.** The relay acks only the connection whose updates it stored,
 *   so the tab that sent edits shares the acks it gets (`acked`); the other
 *   tabs holding those edits count them as pending until then. Should no
 *   ack covering an edit another tab sent come within
 *   {@link TAB_ACK_FALLBACK_MS} (its tab closed or froze before the ack
 *   arrived), this tab sends what is still pending itself, and the relay
 *   acks it here.
 *
 * @module records/RecordTabSharing
 */
import * as Y from 'yjs'
import type { DocHandle } from '../sync/DocHandle.js'
import type { FieldClocks } from '../model/fieldClocks.js'
import { TAB_ORIGIN } from '../model/origins.js'
import type { TabChannel } from '../tabs/TabChannel.js'
import type { FieldPending } from './FieldPending.js'
import type { RecordWriter } from './RecordWriter.js'
import type { SavedState } from './SavedState.js'

/**
 * How long a tab that left the catch-up to the outbox-duty tab waits before
 * sending what the relay still lacks itself (the duty tab may be frozen in
 * the background), ms.
 */
export const CATCH_UP_FALLBACK_MS = 5_000
/**
 * How long edits received from another tab may stay unconfirmed (no `saved`
 * from their author) before this tab writes them itself, ms.
 */
export const TAB_SAVE_FALLBACK_MS = 2_000
/**
 * How long an edit another tab sent to the relay may stay unacked here (no
 * `acked` from that tab covering it) before this tab sends what is pending
 * itself, ms.
 */
export const TAB_ACK_FALLBACK_MS = 5_000

/** What a {@link RecordTabSharing} works with: parts of its record and of the store. */
export interface RecordTabSharingOptions {
  readonly id: string
  readonly doc: Y.Doc
  readonly sync: DocHandle
  readonly tabs: TabChannel
  readonly fieldPending: FieldPending
  readonly saved: SavedState
  readonly writer: RecordWriter
  /** Starts the tab-save fallback timer; returns its cancel function. */
  tabSaveTimer(write: () => void, delayMs: number): () => void
  /** Whether this tab sends the catch-up after a (re)subscribe. */
  sendsCatchUp(): boolean
  /** Whether the record is parked (another tab discards its changes): nothing is written. */
  parked(): boolean
  /** A Yjs client id wrote an edit of this device (another tab's). */
  noteOwnClient(client: number): void
  /** The Yjs client ids this device wrote the record with. */
  ownClients(): number[]
  /** The doc changed from another tab: pending may have changed. */
  checkPending(): void
  /** What is known to be stored changed. */
  checkSaved(): void
}

/** Shares one record with the other tabs. See the module documentation. */
export class RecordTabSharing {
  private readonly options: RecordTabSharingOptions
  private catchUpTimer: ReturnType<typeof setTimeout> | null = null
  /** Fires when edits other tabs sent may still lack an ack here; null when none is waiting. */
  private ackFallbackTimer: ReturnType<typeof setTimeout> | null = null
  /** Per client id, the clock up to which edits other tabs sent are waiting for an ack here. */
  private readonly awaitedAcks = new Map<number, number>()
  /** Cancels the pending tab-save fallback; null when none is pending. */
  private cancelTabSave: (() => void) | null = null
  private stopped = false

  constructor(options: RecordTabSharingOptions) {
    this.options = options
  }

  /** Asks the other tabs for edits they have not written to storage yet (the record just opened). */
  requestEdits(): void {
    const { tabs, id, doc } = this.options
    tabs.post({ t: 'sync-request', id, stateVector: Y.encodeStateVector(doc) })
  }

  /** Shares a local edit (`sent`: whether this tab sent it to the relay live). */
  postEdit(update: Uint8Array, fieldClocks: FieldClocks | null, sent: boolean): void {
    this.options.tabs.post({ t: 'update', id: this.options.id, update, fieldClocks, sent })
  }

  /** A write completed: tell the other tabs what is stored (only what is known to be). */
  postSaved(): void {
    const { tabs, id, saved } = this.options
    tabs.post({ t: 'saved', id, stateVector: Y.encodeStateVector(saved.stateVector) })
    this.stopTabSaveWhenSaved()
  }

  /** The relay acked (to this tab) what it stored of the record: tell the other tabs, which hold this tab's edits too. */
  postAcked(acked: ReadonlyMap<number, number>): void {
    this.options.tabs.post({ t: 'acked', id: this.options.id, stateVector: Y.encodeStateVector(new Map(acked)) })
  }

  /**
   * Another tab got an ack of this record from the relay: what it covers is
   * durably stored there, also the edits of that tab this one holds.
   */
  ackedByTab(stateVector: Uint8Array): void {
    if (this.stopped) return
    const { sync, fieldPending, writer } = this.options
    let acked: Map<number, number>
    try {
      acked = Y.decodeStateVector(stateVector)
    } catch {
      return // a corrupt message acks nothing
    }
    sync.learnAck(acked)
    if (fieldPending.prune(sync.ackedStateVector)) writer.metaChanged('fieldClocks')
    for (const [client, clock] of this.awaitedAcks) if ((sync.ackedStateVector.get(client) ?? 0) >= clock) this.awaitedAcks.delete(client)
    if (this.awaitedAcks.size === 0) this.stopAckFallback()
    this.options.checkPending()
  }

  /** This tab's write failed: other tabs holding its edits in memory write them. */
  postSaveFailed(): void {
    this.options.tabs.post({ t: 'save-failed', id: this.options.id })
  }

  /**
   * Applies an update from another tab. `authorOffline`: the author could
   * not send it (it was not subscribed), so the tab that sends the catch-up
   * sends it now, if it is subscribed and knows the relay's state.
   */
  applyFromTab(update: Uint8Array, fieldClocks: FieldClocks | null, authorOffline = false): void {
    if (this.stopped) return
    const { doc, fieldPending, sync } = this.options
    if (fieldClocks) fieldPending.merge(fieldClocks)
    try {
      Y.applyUpdate(doc, update, TAB_ORIGIN)
    } catch {
      // A corrupt message; the relay and storage still converge.
    }
    if (authorOffline && this.options.sendsCatchUp()) sync.catchUp()
    this.options.checkPending()
    // Its author writes it; should it not say so in time, this tab does.
    if (this.cancelTabSave === null && !this.options.parked() && this.options.writer.unsavedClocks() > 0) {
      this.cancelTabSave = this.options.tabSaveTimer(() => {
        this.cancelTabSave = null
        this.saveUnconfirmed()
      }, TAB_SAVE_FALLBACK_MS)
    }
  }

  /**
   * Notes the writers of an edit another tab of this device made (its
   * local update): their entries are the user's own and pending until
   * acked, also after a reload. `sent`: its tab sent it to the relay, which
   * acks it to that tab: wait for that tab's `acked` (or fall back, see the
   * module documentation). Call before {@link applyFromTab}.
   */
  noteTabEdit(update: Uint8Array, sent: boolean): void {
    if (this.stopped) return
    let written: Map<number, number>
    try {
      written = Y.parseUpdateMeta(update).to // per writer, the clock after its last change
    } catch {
      return // a corrupt message names no writer
    }
    for (const client of written.keys()) this.options.noteOwnClient(client)
    if (sent) this.awaitAck(written)
  }

  /** Notes writers of this device another tab names (its `sync-reply`). Call before {@link applyFromTab}. */
  noteOwnClients(clients: readonly number[]): void {
    if (this.stopped) return
    for (const client of clients) if (Number.isInteger(client)) this.options.noteOwnClient(client)
  }

  /**
   * Another tab stored everything below `stateVector` in this record's
   * database (its own completed writes and what it loaded; see
   * {@link SavedState}).
   */
  savedByTab(stateVector: Uint8Array): void {
    if (this.stopped) return
    try {
      this.options.saved.addStateVector(Y.decodeStateVector(stateVector))
    } catch {
      return // a corrupt message confirms nothing
    }
    this.stopTabSaveWhenSaved()
    this.options.checkSaved()
  }

  /**
   * Writes what the doc holds beyond what is known to be stored — edits
   * other tabs made and did not confirm (their write failed, or their tab
   * froze or closed first). Also called when another tab's write failed.
   */
  saveUnconfirmed(): void {
    if (this.stopped || this.options.parked()) return
    if (this.options.writer.writeUnsaved()) this.options.checkSaved()
  }

  /** What another tab (that has `stateVector`) lacks, plus our pending-field notes and this device's writers. */
  replyTo(stateVector: Uint8Array): { update: Uint8Array; fieldClocks: FieldClocks; ownClients: number[] } {
    return {
      update: Y.encodeStateAsUpdate(this.options.doc, stateVector),
      fieldClocks: this.options.fieldPending.serialize(),
      ownClients: this.options.ownClients(),
    }
  }

  /**
   * This tab left the relay's sync step 1 unanswered: the outbox-duty tab
   * sends what the relay lacks. Should that tab not manage (frozen in the
   * background), what is still unacked a while later goes out from here.
   */
  catchUpDeferred(relayStateVector: Uint8Array): void {
    const { tabs, id, sync } = this.options
    tabs.post({ t: 'catch-up', id, stateVector: relayStateVector })
    if (this.catchUpTimer !== null) clearTimeout(this.catchUpTimer)
    this.catchUpTimer = setTimeout(() => {
      this.catchUpTimer = null
      if (!this.stopped && sync.pending > 0) sync.catchUp()
    }, CATCH_UP_FALLBACK_MS)
  }

  /** Stops the fallback timers (the record is parked). */
  pause(): void {
    if (this.catchUpTimer !== null) clearTimeout(this.catchUpTimer)
    this.catchUpTimer = null
    this.awaitedAcks.clear()
    this.stopAckFallback()
    this.cancelTabSave?.()
    this.cancelTabSave = null
  }

  /** Stops the fallback timers and ignores every later message (the record closes). */
  stop(): void {
    this.stopped = true
    this.pause()
  }

  /**
   * Waits for an ack of `written` (an edit another tab sent) to be shared;
   * should none come in time, sends what is still pending from here.
   */
  private awaitAck(written: ReadonlyMap<number, number>): void {
    const acked = this.options.sync.ackedStateVector
    for (const [client, clock] of written) {
      if ((acked.get(client) ?? 0) < clock && clock > (this.awaitedAcks.get(client) ?? 0)) this.awaitedAcks.set(client, clock)
    }
    if (this.awaitedAcks.size === 0 || this.ackFallbackTimer !== null) return
    this.ackFallbackTimer = setTimeout(() => {
      this.ackFallbackTimer = null
      const { sync } = this.options
      // covered meanwhile by another tab's ack or by one of this tab's own: nothing to send
      const stillAwaited = [...this.awaitedAcks].some(([client, clock]) => (sync.ackedStateVector.get(client) ?? 0) < clock)
      this.awaitedAcks.clear()
      if (!this.stopped && !this.options.parked() && stillAwaited) sync.resendPending()
    }, TAB_ACK_FALLBACK_MS)
  }

  private stopAckFallback(): void {
    if (this.ackFallbackTimer !== null) clearTimeout(this.ackFallbackTimer)
    this.ackFallbackTimer = null
  }

  /** Stops the tab-save fallback once everything the doc holds is stored. */
  private stopTabSaveWhenSaved(): void {
    if (this.cancelTabSave !== null && this.options.writer.unsavedClocks() === 0) {
      this.cancelTabSave()
      this.cancelTabSave = null
    }
  }
}
