/**
 * What the connection pill says. Every sentence must be true: "synced" only
 * when the relay answered and has durably stored every local change.
 *
 * @module lib/connection
 */

/** Connection status of the sync client. */
export type ConnectionStatus = 'connecting' | 'online' | 'offline'

/** Colour family of the pill. */
export type Tone = 'ok' | 'busy' | 'warn' | 'neutral'

export interface ConnectionSummary {
  tone: Tone
  /** Short sentence shown in the pill. */
  label: string
  /** Longer explanation (tooltip / screen readers). */
  detail: string
}

/** `1 change`, `3 changes`. */
export function changes(count: number): string {
  return `${count} ${count === 1 ? 'change' : 'changes'}`
}

/**
 * The pill text for a client status and the number of local changes the relay
 * has not durably stored yet. There is no on-device persistence yet, so
 * offline changes live only in this tab until the relay is back.
 */
export function describeConnection(status: string, pending: number): ConnectionSummary {
  const waiting = Math.max(0, Math.floor(pending))
  switch (status) {
    case 'online':
      return waiting === 0
        ? {
            tone: 'ok',
            label: 'Online — all changes synced',
            detail: 'Connected to the relay, and every change made here is stored on it.',
          }
        : {
            tone: 'busy',
            label: `Online — ${changes(waiting)} not yet on the server`,
            detail: 'Connected. The relay has not confirmed storing these changes yet; this usually takes a moment.',
          }
    case 'connecting':
      return waiting === 0
        ? { tone: 'neutral', label: 'Connecting…', detail: 'Reaching the relay.' }
        : {
            tone: 'neutral',
            label: `Connecting… ${changes(waiting)} waiting`,
            detail: 'Reaching the relay. Changes made here are sent as soon as it answers.',
          }
    case 'offline':
      return waiting === 0
        ? {
            tone: 'warn',
            label: 'Offline — no changes waiting',
            detail: 'The relay is not reachable. Edits you make now are kept in this tab and sent when it is back.',
          }
        : {
            tone: 'warn',
            label: `Offline — ${changes(waiting)} waiting for the relay`,
            detail:
              'The relay is not reachable. These changes exist only in this tab until it is back — keep the tab open.',
          }
    default:
      return { tone: 'neutral', label: 'Not connected', detail: `Sync client status: ${status}.` }
  }
}

/** Per-ticket save state, shown on the card. */
export function describeDocSync(isSynced: boolean, pending: number, status: string): string {
  if (pending > 0) {
    return status === 'online'
      ? `Saving — ${changes(pending)} not yet on the server`
      : `${changes(pending)} waiting for the relay`
  }
  if (!isSynced) return status === 'online' ? 'Loading from the relay…' : 'Not connected to the relay'
  return 'All changes saved on the relay'
}
