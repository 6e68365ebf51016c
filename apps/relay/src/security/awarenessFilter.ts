/**
 * Awareness ownership. A y-protocols awareness update is
 *
 *     varUint(n) • n × ( varUint(clientID) • varUint(clock) • varString(JSON state | "null") )
 *
 * The relay refuses an update with more entries than `maxAwarenessEntries`,
 * then decodes it entry by entry and keeps only entries for client ids the
 * sending connection owns (claimed at first use, at most `maxAwarenessIds`
 * per connection and doc), under the size cap, with identity fields stamped
 * from the connection's token. Claims live in memory only (see
 * `Room.applyPeerAwareness`). Stock y-websocket
 * clients re-send every awareness change they see, including other clients'
 * states; those echoes are dropped silently, and only entries that would have
 * changed another client's state count as forged.
 *
 * @module security/awarenessFilter
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { equalityDeep } from 'lib0/function'
import type { Awareness } from 'y-protocols/awareness'

const utf8 = new TextDecoder()

/** One decoded awareness entry. */
export interface AwarenessEntry {
  clientId: number
  clock: number
  /** Parsed state, or null for a removal. */
  state: Record<string, unknown> | null
  /** Length of the JSON text as sent, UTF-8 bytes. */
  size: number
  /** The JSON text as sent (decoded entries only). */
  json?: string
}

/** The number of entries an awareness update says it has (read before decoding them). Throws on malformed input. */
export const awarenessEntryCount = (update: Uint8Array): number => decoding.readVarUint(decoding.createDecoder(update))

/**
 * Decodes an awareness update. Throws on malformed input (counts bounded by
 * the input length). `known` may answer a state's JSON text with a state
 * decoded from the same text before; that state is then taken as it is
 * instead of parsing the text again.
 */
export const decodeAwarenessUpdate = (
  update: Uint8Array,
  known?: (json: string) => Record<string, unknown> | undefined,
): AwarenessEntry[] => {
  const decoder = decoding.createDecoder(update)
  const count = decoding.readVarUint(decoder)
  if (count > update.length) throw new Error('awareness update claims more entries than it has bytes')
  const entries: AwarenessEntry[] = []
  for (let i = 0; i < count; i++) {
    const clientId = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    // the state is sent as UTF-8: its byte length is what the size cap counts
    const raw = decoding.readVarUint8Array(decoder)
    if (decoder.pos > update.length) throw new Error('awareness update is truncated')
    const json = utf8.decode(raw)
    const state: unknown = known?.(json) ?? JSON.parse(json)
    if (state !== null && (typeof state !== 'object' || Array.isArray(state))) {
      throw new Error('awareness state must be an object or null')
    }
    entries.push({ clientId, clock, state: state as Record<string, unknown> | null, size: raw.byteLength, json })
  }
  if (decoder.pos !== update.length) throw new Error('awareness update has trailing bytes')
  return entries
}

/**
 * The JSON text of states the relay holds, as `JSON.stringify` writes it:
 * a state is written to every peer that joins and with every change, and
 * the relay never changes a state object it holds, so each is stringified
 * once.
 */
const jsonOfState = new WeakMap<object, string>()

/** `JSON.stringify(state)`, remembered for the state object (see {@link jsonOfState}). */
export const stateJson = (state: Record<string, unknown> | null): string => {
  if (state === null) return 'null'
  let json = jsonOfState.get(state)
  if (json === undefined) jsonOfState.set(state, (json = JSON.stringify(state)))
  return json
}

/** Encodes entries back into an awareness update. */
export const encodeAwarenessEntries = (entries: readonly AwarenessEntry[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const entry of entries) {
    encoding.writeVarUint(encoder, entry.clientId)
    encoding.writeVarUint(encoder, entry.clock)
    encoding.writeVarString(encoder, stateJson(entry.state))
  }
  return encoding.toUint8Array(encoder)
}

/** An awareness update with the states of `clientIds` the Awareness holds (y-protocols' `encodeAwarenessUpdate`, each state's text made once). */
export const encodeAwarenessStates = (awareness: Awareness, clientIds: Iterable<number>): Uint8Array => {
  const entries: AwarenessEntry[] = []
  for (const clientId of clientIds) {
    const state = (awareness.states.get(clientId) as Record<string, unknown> | undefined) ?? null
    entries.push({ clientId, clock: awareness.meta.get(clientId)?.clock ?? 0, state, size: 0 })
  }
  return encodeAwarenessEntries(entries)
}

/**
 * y-protocols' `applyAwarenessUpdate` for entries already decoded (and
 * filtered): the same rules for clocks and removals, the same `change` and
 * `update` events — without encoding the entries into an update for it to
 * parse every state again. Two differences: a state equal to the one held
 * (a keep-alive) keeps the object held, so an unchanged state is not a new
 * object every 15 s per client and doc; and the `update` event also lists
 * those keep-alives apart, as `renewed`.
 */
export const applyAwarenessEntries = (awareness: Awareness, entries: readonly AwarenessEntry[], origin: unknown): void => {
  const timestamp = Date.now()
  const added: number[] = []
  const updated: number[] = []
  const filteredUpdated: number[] = []
  const removed: number[] = []
  for (const entry of entries) {
    const { clientId, state } = entry
    let clock = entry.clock
    const meta = awareness.meta.get(clientId)
    const previous = awareness.states.get(clientId) as Record<string, unknown> | undefined
    const currentClock = meta === undefined ? 0 : meta.clock
    if (!(currentClock < clock || (currentClock === clock && state === null && awareness.states.has(clientId)))) continue
    let changed = true
    if (state === null) {
      // never let a remote client remove the local state (the relay holds none; as y-protocols does it)
      if (clientId === awareness.clientID && awareness.getLocalState() != null) clock++
      else awareness.states.delete(clientId)
    } else if (previous !== undefined && equalityDeep(state, previous)) {
      changed = false
    } else {
      awareness.states.set(clientId, state)
    }
    awareness.meta.set(clientId, { clock, lastUpdated: timestamp })
    if (meta === undefined && state !== null) added.push(clientId)
    else if (meta !== undefined && state === null) removed.push(clientId)
    else if (state !== null) {
      if (changed) filteredUpdated.push(clientId)
      updated.push(clientId)
    }
  }
  if (added.length > 0 || filteredUpdated.length > 0 || removed.length > 0) {
    awareness.emit('change', [{ added, updated: filteredUpdated, removed }, origin])
  }
  if (added.length > 0 || updated.length > 0 || removed.length > 0) {
    // `renewed`: the ids of `updated` whose state did not change (keep-alives), which y-protocols' event does not tell apart
    const renewed = updated.length === filteredUpdated.length ? NONE : updated.filter((id) => !filteredUpdated.includes(id))
    awareness.emit('update', [{ added, updated, removed, renewed }, origin])
  }
}

const NONE: readonly number[] = []

/** A stable colour for a user id (the relay stamps it; clients cannot choose another user's). */
export const colorForUser = (userId: string): string => {
  let hash = 2166136261
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 16777619)
  const hue = (hash >>> 0) % 360
  return `hsl(${hue} 65% 45%)`
}
