/**
 * Turning awareness states into the list of people in the ticket.
 *
 * Awareness state of one client, as this app writes it:
 *
 *     { user: { id, name, color }, editing: 'title' | 'description' | 'status' | null }
 *
 * @module lib/presence
 */

/** Fields of the scratch ticket someone can be editing. */
export type FieldName = 'title' | 'description' | 'status'

export const FIELD_LABELS: Record<FieldName, string> = {
  title: 'Title',
  description: 'Description',
  status: 'Status',
}

export interface Peer {
  /** Awareness client id (one per tab). */
  clientId: number
  /** Stable user id; the same person in two tabs has two peers with one userId. */
  userId: string
  name: string
  color: string
  /** The field this peer has focused, if any. */
  editing: FieldName | null
  /** Whether this is the local tab. */
  isSelf: boolean
  /** Same user as the local tab, in another tab or window. */
  isSelfElsewhere: boolean
}

const FALLBACK_COLOR = '#8b8d98'
const isField = (value: unknown): value is FieldName => value === 'title' || value === 'description' || value === 'status'

/**
 * Peers from awareness states: the local tab first, then everybody else by
 * name. States without a `user` (other tools, half-initialised clients) are
 * shown as "Anonymous" rather than hidden, so the list never lies about who
 * can see the ticket.
 */
export function peersFromStates(
  states: ReadonlyMap<number, Record<string, unknown>>,
  selfClientId: number,
  selfUserId: string,
): Peer[] {
  const peers: Peer[] = []
  for (const [clientId, state] of states) {
    if (state === null || typeof state !== 'object') continue
    const user = (typeof state.user === 'object' && state.user !== null ? state.user : {}) as Record<string, unknown>
    const name = typeof user.name === 'string' && user.name.trim() !== '' ? user.name.trim().slice(0, 60) : 'Anonymous'
    const color = typeof user.color === 'string' && /^#[0-9a-f]{3,8}$/i.test(user.color) ? user.color : FALLBACK_COLOR
    const userId = typeof user.id === 'string' ? user.id : `client-${clientId}`
    const isSelf = clientId === selfClientId
    peers.push({
      clientId,
      userId,
      name,
      color,
      editing: isField(state.editing) ? state.editing : null,
      isSelf,
      isSelfElsewhere: !isSelf && userId === selfUserId,
    })
  }
  return peers.sort((a, b) => {
    if (a.isSelf !== b.isSelf) return a.isSelf ? -1 : 1
    return a.name.localeCompare(b.name) || a.clientId - b.clientId
  })
}

/**
 * Other peers (not this tab) with the given field focused; one entry per
 * user, even if they have the ticket open in several tabs.
 */
export function editorsOf(peers: readonly Peer[], field: FieldName): Peer[] {
  const seen = new Set<string>()
  return peers.filter((peer) => {
    if (peer.isSelf || peer.editing !== field || seen.has(peer.userId)) return false
    seen.add(peer.userId)
    return true
  })
}

/** "Only you", "You and 1 other person", "You and 3 others". */
export function presenceSummary(peers: readonly Peer[]): string {
  const others = peers.filter((peer) => !peer.isSelf).length
  if (others === 0) return 'Only you right now'
  return others === 1 ? 'You and 1 other' : `You and ${others} others`
}
