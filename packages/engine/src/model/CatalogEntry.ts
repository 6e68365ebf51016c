/**
 * One line of the local catalog: what a list view needs of a record, kept
 * without opening the record's own database.
 *
 * @module catalog/CatalogEntry
 */

/** A record as the catalog knows it. */
export interface CatalogEntry {
  /** Record id. */
  id: string
  /** Record type, or null when unknown (e.g. listed by the relay, not fetched yet). */
  type: string | null
  /** The title field's text (first 500 characters: the longest a valid title is). */
  title: string
  /** The schema's catalog fields (e.g. status, priority, assignee). */
  fields: Record<string, unknown>
  createdAt: number | null
  updatedAt: number | null
  archived: boolean
  deleted: boolean
  /** Clock ticks of the record not durably stored on the relay. */
  pending: number
  /** Fields with such changes. */
  pendingFields: string[]
  /** Encoded local state vector of the record doc (what this device holds). */
  stateVector: Uint8Array
  /** Whether the record's content is stored on this device (false: only listed, not fetched yet). */
  local: boolean
  /**
   * The relay's change sequence of the record when this device last fetched
   * it (`client.listDocsWithSeqs`): this device holds everything the relay
   * had stored then. A pull skips the record while the relay still lists
   * this number. Absent: unknown (the record is fetched).
   */
  relaySeq?: number
  /**
   * The record's content was removed from this device to free space (all of
   * it was on the relay, see `store.evict`): the entry is what the device
   * had then; `local` is false and `stateVector` empty. A pull skips it
   * while the relay lists the same `relaySeq`; one that changed, or an
   * open while online, fetches it whole again.
   */
  evicted?: boolean
  /**
   * Of a record removed to free space: the encoded state vector of what
   * this device had last seen of it (its stored `viewed`), so that when it
   * comes back the news is what changed since, not the whole record.
   */
  viewed?: Uint8Array
  /** When the record was last opened for someone to see on this device (a handle with presence); absent: not since this was kept. */
  openedAt?: number
}
