/**
 * The global sync indicator. Every sentence must be true: "synced" only when
 * the relay answered and durably stored every local change.
 *
 * @module lib/syncStatus
 */
/** Colour family of the indicator. */
export type Tone = 'ok' | 'busy' | 'warn' | 'neutral'

export interface SyncSummary {
  tone: Tone
  label: string
  detail: string
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`

/**
 * @param status   the SyncClient's status
 * @param pending  workspace total of changes the relay has not stored
 * @param records  how many records hold them
 */
export function describeSync(status: string, pending: number, records: number): SyncSummary {
  const n = Math.max(0, Math.floor(pending))
  const m = Math.max(n > 0 ? 1 : 0, Math.floor(records))
  const what = `${plural(n, 'change', 'changes')} in ${plural(m, 'ticket', 'tickets')}`
  if (status === 'offline') {
    return {
      tone: 'warn',
      label: 'Offline — changes are saved on this device',
      detail:
        n === 0
          ? 'The relay is not reachable. Keep working: edits are stored on this device and sent when it is back.'
          : `The relay is not reachable. ${what} are stored on this device and will be sent when it is back.`,
    }
  }
  if (n > 0) {
    return {
      tone: status === 'online' ? 'busy' : 'neutral',
      label: `${what} not yet on the server`,
      detail:
        status === 'online'
          ? 'Connected. The relay has not confirmed storing these changes yet.'
          : 'Reaching the relay. These changes are stored on this device and sent as soon as it answers.',
    }
  }
  if (status === 'online') return { tone: 'ok', label: 'All changes synced', detail: 'Every change made here is stored on the relay.' }
  return { tone: 'neutral', label: 'Connecting…', detail: 'Reaching the relay.' }
}

/** Why a record's changes are not on the relay yet. */
export function pendingReason(status: string, error: { reason: string; permanent: boolean } | null | undefined): string {
  if (error) return error.permanent ? `Rejected by the relay: ${error.reason}` : `Relay problem: ${error.reason} (retrying)`
  if (status === 'offline') return 'Offline — waiting for the relay'
  if (status === 'connecting') return 'Connecting to the relay'
  return 'Sent, waiting for the relay to confirm'
}

/** Changed fields not on the relay, over records (a record with pending ticks but no field notes counts once). */
export function countChanges(records: ReadonlyArray<{ pending: number; pendingFields: readonly string[] }>): number {
  let n = 0
  for (const record of records) if (record.pending > 0) n += Math.max(1, record.pendingFields.filter((f) => f !== '$created').length)
  return n
}
