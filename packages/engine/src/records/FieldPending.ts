/**
 * Which fields of a record hold changes the relay has not durably stored.
 *
 * The pending count of a doc comes from state vectors (see PendingTracker).
 * State vectors do not say which field a clock tick belongs to, so for every
 * local transaction this tracker notes, per changed field, the clock of this
 * client that an ack must reach to cover the change:
 *
 *     insertions:  afterState[clientID]
 *     delete-only: afterState[clientID] + 1   (the delete marker that follows)
 *
 * A field is pending while some noted clock is above the acked clock of its
 * client. Notes are pruned once acked, persisted next to the doc (so they
 * survive a reload) and shared with other tabs together with the update.
 *
 * @module records/FieldPending
 */
import * as Y from 'yjs'
import { HISTORY_ARRAY } from '../history/historyLog.js'
import { fieldsOfChange } from '../model/recordDoc.js'
import type { FieldClocks } from '../model/fieldClocks.js'

/** Pending-field notes of one record. */
export class FieldPending {
  private readonly notes = new Map<string, Map<number, number>>()

  constructor(initial?: FieldClocks | null) {
    if (initial) this.merge(initial)
  }

  /**
   * Notes the fields a local transaction changed. Returns the new notes (to
   * persist and share), or null when it changed no field.
   */
  noteTransaction(doc: Y.Doc, transaction: Y.Transaction): FieldClocks | null {
    const names = new Set<string>()
    const client = doc.clientID
    const before = transaction.beforeState.get(client) ?? 0
    const after = transaction.afterState.get(client) ?? 0
    for (const [type, keys] of transaction.changed) {
      if (type._item !== null) continue // only top-level types are fields
      const topName = topLevelName(doc, type)
      if (topName === HISTORY_ARRAY) for (const name of historyFieldsWritten(doc, type, before, after)) names.add(name)
      else if (topName !== null) for (const name of fieldsOfChange(topName, keys)) names.add(name)
    }
    if (names.size === 0) return null
    const clock = after > before ? after : after + 1
    const added: FieldClocks = []
    for (const name of names) {
      this.noteOne(name, client, clock)
      added.push([name, [[client, clock]]])
    }
    return added
  }

  /** Adds notes from storage or another tab. */
  merge(clocks: FieldClocks): void {
    for (const [name, entries] of clocks) for (const [client, clock] of entries) this.noteOne(name, client, clock)
  }

  /** Fields with a change the acked state vector does not cover, sorted. */
  pendingFields(acked: ReadonlyMap<number, number>): string[] {
    const out: string[] = []
    for (const [name, clocks] of this.notes) {
      for (const [client, clock] of clocks) {
        if ((acked.get(client) ?? 0) < clock) {
          out.push(name)
          break
        }
      }
    }
    return out.sort()
  }

  /** Drops notes the acked state vector covers. Returns whether anything was dropped. */
  prune(acked: ReadonlyMap<number, number>): boolean {
    let dropped = false
    for (const [name, clocks] of this.notes) {
      for (const [client, clock] of clocks) {
        if ((acked.get(client) ?? 0) >= clock) {
          clocks.delete(client)
          dropped = true
        }
      }
      if (clocks.size === 0) this.notes.delete(name)
    }
    return dropped
  }

  /** All notes, serialized. */
  serialize(): FieldClocks {
    return [...this.notes].map(([name, clocks]) => [name, [...clocks]])
  }

  private noteOne(name: string, client: number, clock: number): void {
    let clocks = this.notes.get(name)
    if (clocks === undefined) this.notes.set(name, (clocks = new Map()))
    if (clock > (clocks.get(client) ?? 0)) clocks.set(client, clock)
  }
}

/**
 * The fields named by history entries this client appended to `history` in
 * clocks `[before, after)` — e.g. the entry of a typing burst, written after
 * the keystrokes themselves were acked: that field's history is what waits.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a shared type of any kind (Y.Map, Y.Array, Y.Text…): the event type varies
const historyFieldsWritten = (doc: Y.Doc, history: Y.AbstractType<any>, before: number, after: number): string[] => {
  const structs = doc.store.clients.get(doc.clientID) ?? []
  const names: string[] = []
  for (let i = structs.length - 1; i >= 0; i--) {
    const struct = structs[i]!
    if (struct.id.clock + struct.length <= before) break
    if (struct.id.clock >= after || !(struct instanceof Y.Item) || struct.parent !== history || struct.deleted) continue
    for (const entry of struct.content.getContent()) {
      const field = (entry as { f?: unknown } | null)?.f
      if (typeof field === 'string') names.push(field)
    }
  }
  return names
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a shared type of any kind (Y.Map, Y.Array, Y.Text…): the event type varies
const topLevelName = (doc: Y.Doc, type: Y.AbstractType<any>): string | null => {
  for (const [name, shared] of doc.share) if (shared === type) return name
  return null
}
