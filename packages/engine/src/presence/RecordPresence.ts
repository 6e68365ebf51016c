/**
 * Presence in one record: who is viewing it and which field each person is
 * editing (with the text selection for text fields), on top of the doc's
 * y-protocols Awareness.
 *
 * Local state: the awareness field `editing` = `{ field, anchor?, head? }`,
 * where `anchor`/`head` are `Y.RelativePosition`s (as JSON) in the field's
 * `Y.Text`, so a cursor stays on its character while others type. Names and
 * colours come from the state's `user` field, which a relay with auth stamps
 * from the token (clients cannot claim to be someone else).
 *
 * People leave presence when their client closes the record or disconnects
 * (the relay removes their state at once on a clean close, within 30 s
 * otherwise); a client that loses its connection drops every remote state.
 *
 * @example
 *   const presence = new RecordPresence(handle.awareness, handle.doc)
 *   presence.setEditing('description', { anchor: 4, head: 9 })
 *   presence.on('change', (viewers) => render(viewers.map((v) => `${v.user?.name}: ${v.field ?? 'viewing'}`)))
 *
 * @module presence/RecordPresence
 */
import * as Y from 'yjs'
import { ObservableV2 } from 'lib0/observable'
import type { Awareness } from 'y-protocols/awareness'
import { TEXT_PREFIX } from '../model/recordDoc.js'

/** The awareness field this module writes. */
export const EDITING_FIELD = 'editing'

/** A person in the record. */
export interface Viewer {
  /** Awareness client id (one per open record per tab). */
  clientId: number
  /** Whether this is the local client. */
  self: boolean
  /** `{ id, name, color }` as the relay stamped it (or as claimed, without auth). */
  user: { id: string; name: string; color?: string } | null
  /** Field being edited, or null when just viewing. */
  field: string | null
  /** Text fields: the selection as absolute indices in the field's text (anchor = head: a cursor). */
  selection: { anchor: number; head: number } | null
}

/** Events of {@link RecordPresence}. */
export interface RecordPresenceEvents {
  /** Someone came, left, or moved to another field / selection. */
  change: (viewers: Viewer[]) => void
}

interface EditingState {
  field: string
  anchor?: unknown
  head?: unknown
}

/** Options of {@link RecordPresence}. */
export interface RecordPresenceOptions {
  /** The local user stopped editing `field` (moved to another field, or to none). */
  left?: (field: string) => void
}

/** Presence of one record. Call {@link destroy} when done (it stops listening). */
export class RecordPresence extends ObservableV2<RecordPresenceEvents> {
  constructor(
    readonly awareness: Awareness,
    readonly doc: Y.Doc,
    private readonly options: RecordPresenceOptions = {},
  ) {
    super()
    awareness.on('change', this.onChange)
  }

  /**
   * Says which field the local user is editing (null: just viewing). For a
   * text field, `selection` gives the cursor / selection as indices into the
   * field's text.
   */
  setEditing(field: string | null, selection?: { anchor: number; head?: number }): void {
    const previous = (this.awareness.getLocalState() as { editing?: unknown } | null)?.editing
    if (isEditing(previous) && previous.field !== field) this.options.left?.(previous.field)
    if (field === null) {
      this.awareness.setLocalStateField(EDITING_FIELD, null)
      return
    }
    const state: EditingState = { field }
    if (selection !== undefined) {
      const text = this.doc.getText(TEXT_PREFIX + field)
      state.anchor = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, selection.anchor))
      state.head = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, selection.head ?? selection.anchor))
    }
    this.awareness.setLocalStateField(EDITING_FIELD, state)
  }

  /** Everyone present, the local client first, then by client id. */
  get viewers(): Viewer[] {
    const out: Viewer[] = []
    for (const [clientId, state] of this.awareness.getStates()) {
      if (state === null || typeof state !== 'object') continue
      const s = state as { user?: unknown; editing?: unknown }
      const user = isUser(s.user)
        ? { id: s.user.id, name: s.user.name, ...(typeof s.user.color === 'string' ? { color: s.user.color } : {}) }
        : null
      const editing = isEditing(s.editing) ? s.editing : null
      out.push({
        clientId,
        self: clientId === this.awareness.clientID,
        user,
        field: editing?.field ?? null,
        selection: editing === null ? null : this.resolve(editing),
      })
    }
    return out.sort((a, b) => Number(b.self) - Number(a.self) || a.clientId - b.clientId)
  }

  /** Stops listening to the awareness. */
  override destroy(): void {
    this.awareness.off('change', this.onChange)
    super.destroy()
  }

  private resolve(editing: EditingState): { anchor: number; head: number } | null {
    if (editing.anchor === undefined || editing.head === undefined) return null
    try {
      const anchor = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(editing.anchor), this.doc)
      const head = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(editing.head), this.doc)
      if (anchor === null || head === null) return null
      return { anchor: anchor.index, head: head.index }
    } catch {
      return null // a malformed position from someone else's state
    }
  }

  private readonly onChange = (): void => {
    this.emit('change', [this.viewers])
  }
}

const isUser = (value: unknown): value is { id: string; name: string; color?: unknown } =>
  value !== null &&
  typeof value === 'object' &&
  typeof (value as { id?: unknown }).id === 'string' &&
  typeof (value as { name?: unknown }).name === 'string'

const isEditing = (value: unknown): value is EditingState =>
  value !== null && typeof value === 'object' && typeof (value as { field?: unknown }).field === 'string'
