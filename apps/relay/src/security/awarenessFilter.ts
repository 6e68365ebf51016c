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

const utf8 = new TextDecoder()

/** One decoded awareness entry. */
export interface AwarenessEntry {
  clientId: number
  clock: number
  /** Parsed state, or null for a removal. */
  state: Record<string, unknown> | null
  /** Length of the JSON text as sent, UTF-8 bytes. */
  size: number
}

/** The number of entries an awareness update says it has (read before decoding them). Throws on malformed input. */
export const awarenessEntryCount = (update: Uint8Array): number => decoding.readVarUint(decoding.createDecoder(update))

/** Decodes an awareness update. Throws on malformed input (counts bounded by the input length). */
export const decodeAwarenessUpdate = (update: Uint8Array): AwarenessEntry[] => {
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
    const state: unknown = JSON.parse(utf8.decode(raw))
    if (state !== null && (typeof state !== 'object' || Array.isArray(state))) {
      throw new Error('awareness state must be an object or null')
    }
    entries.push({ clientId, clock, state: state as Record<string, unknown> | null, size: raw.byteLength })
  }
  if (decoder.pos !== update.length) throw new Error('awareness update has trailing bytes')
  return entries
}

/** Encodes entries back into an awareness update. */
export const encodeAwarenessEntries = (entries: readonly AwarenessEntry[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const entry of entries) {
    encoding.writeVarUint(encoder, entry.clientId)
    encoding.writeVarUint(encoder, entry.clock)
    encoding.writeVarString(encoder, JSON.stringify(entry.state))
  }
  return encoding.toUint8Array(encoder)
}

/** A stable colour for a user id (the relay stamps it; clients cannot choose another user's). */
export const colorForUser = (userId: string): string => {
  let hash = 2166136261
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 16777619)
  const hue = (hash >>> 0) % 360
  return `hsl(${hue} 65% 45%)`
}
