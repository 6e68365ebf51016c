/**
 * The global sync indicator. Every sentence must be true: "synced" only when
 * the relay answered and durably stored every local change.
 *
 * @module lib/syncStatus
 */
import { ErrorCode } from '@concord/engine'

/** Colour family of the indicator. */
export type Tone = 'ok' | 'busy' | 'warn' | 'neutral'

export interface SyncSummary {
  tone: Tone
  label: string
  /** The label in a few words, for a narrow screen's top bar. */
  short: string
  detail: string
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`

/**
 * What to call records of these types: "ticket" / "project" when they are all
 * of one known type, "item" when mixed, "record" for other types.
 */
export function recordNoun(types: readonly string[]): { one: string; many: string } {
  const kinds = new Set(types)
  if (kinds.size === 1) {
    if (kinds.has('ticket')) return { one: 'ticket', many: 'tickets' }
    if (kinds.has('project')) return { one: 'project', many: 'projects' }
    return { one: 'record', many: 'records' }
  }
  if (kinds.size === 0) return { one: 'ticket', many: 'tickets' }
  return { one: 'item', many: 'items' }
}

/** What the indicator knows. */
export interface SyncState {
  /** The SyncClient's status. */
  status: string
  /**
   * The local catalog is loaded. Before that this device's own pending
   * changes are unknown, so nothing may be called synced.
   */
  ready: boolean
  /** Workspace total of changes the relay has not stored. */
  changes: number
  /** Type of each record holding them (`ticket`, `project`, …), one entry per record. */
  recordTypes: readonly string[]
  /**
   * Changes made here are saved on this device: the store is persistent
   * (IndexedDB opened) and no storage write is failing. When false, nothing
   * may say "saved on this device": changes live in this tab until the relay
   * stores them.
   */
  savedOnDevice: boolean
  /**
   * Records whose changes the relay refused for good (a permanent sync
   * error): those changes, and every later one of the record, wait until
   * someone retries or discards them.
   */
  rejected?: number
  /** The text is shown on the sync status page itself: it points below, not to that page. */
  onSyncPage?: boolean
}

/** Where a change waits for the relay, in words that are true for {@link SyncState.savedOnDevice}. */
const keptHere = (savedOnDevice: boolean): string =>
  savedOnDevice ? 'stored on this device' : 'kept in this tab only — not saved on this device —'

export function describeSync({
  status,
  ready,
  changes,
  recordTypes,
  savedOnDevice,
  rejected = 0,
  onSyncPage = false,
}: SyncState): SyncSummary {
  if (!ready) {
    return {
      tone: status === 'offline' ? 'warn' : 'neutral',
      label: status === 'offline' ? 'Offline — checking this device…' : 'Checking this device…',
      short: status === 'offline' ? 'Offline' : 'Checking…',
      detail: 'Looking on this device for changes the relay does not have yet.',
    }
  }
  /** What happens to edits made from now on, when they cannot be saved here. */
  const newEdits = savedOnDevice ? '' : ' New edits are kept in this tab only — not saved on this device — until the relay stores them.'
  const n = Math.max(0, Math.floor(changes))
  const m = Math.max(n > 0 ? 1 : 0, recordTypes.length)
  const noun = recordNoun(recordTypes)
  // The label stays short (it shares the top bar; a longer one would wrap it and move the page); the detail says where.
  const changed = plural(n, 'change', 'changes')
  const what = `${changed} in ${plural(m, noun.one, noun.many)}`
  const are = n === 1 ? 'is' : 'are'
  if (status === 'offline') {
    return n === 0
      ? {
          tone: 'warn',
          label: 'Offline — nothing waiting to sync',
          short: 'Offline',
          detail: savedOnDevice
            ? 'The relay is not reachable. It stored every change made here before the connection was lost; new edits are kept on this device and sent when it is back.'
            : 'The relay is not reachable. It stored every change made here before the connection was lost; new edits are kept in this tab only — not saved on this device — and sent when it is back.',
        }
      : {
          tone: 'warn',
          label: savedOnDevice ? `Offline — ${changed} saved on this device` : `Offline — ${changed} in this tab only`,
          short: savedOnDevice ? `Offline · ${n} unsynced` : `Offline · ${n} in tab only`,
          detail: savedOnDevice
            ? `The relay is not reachable. ${what} ${are} stored on this device and will be sent when it is back.`
            : `The relay is not reachable. ${what} ${are} kept in this tab only — not saved on this device — and will be sent when it is back; closing the tab before then loses them.`,
        }
  }
  const refused = Math.min(Math.max(0, Math.floor(rejected)), m)
  if (refused > 0) {
    const records = plural(refused, noun.one, noun.many)
    return {
      tone: 'warn',
      label: `Changes to ${records} rejected`,
      short: `${refused} rejected`,
      detail: `The relay refused changes to ${records} for good. They are ${keptHere(savedOnDevice)}, and later changes to ${refused === 1 ? 'it' : 'them'} wait behind them: retry or discard them ${onSyncPage ? 'below' : 'on the Sync status page'}.`,
    }
  }
  if (n > 0) {
    return {
      tone: status === 'online' ? 'busy' : 'neutral',
      label: `${changed} not yet on the server`,
      short: savedOnDevice ? `${n} unsynced` : `${n} in tab only`,
      detail:
        status === 'online'
          ? `Connected. The relay has not confirmed storing ${what} yet.${savedOnDevice ? '' : ` Until it does, ${n === 1 ? 'it is' : 'they are'} kept in this tab only — not saved on this device.`}`
          : `Reaching the relay. ${what} ${are} ${keptHere(savedOnDevice)} and sent as soon as it answers.`,
    }
  }
  if (status === 'online')
    return { tone: 'ok', label: 'All changes synced', short: 'Synced', detail: `Every change made here is stored on the relay.${newEdits}` }
  return { tone: 'neutral', label: 'Connecting…', short: 'Connecting…', detail: `Reaching the relay.${newEdits}` }
}

/** A record's last sync error as the app keeps it (from the engine's SyncError). */
export interface RecordSyncError {
  /** The engine's `ErrorCode`; unknown for errors kept before codes were. */
  code?: number
  /** The relay's own words. */
  reason: string
  permanent: boolean
}

/** The kind of problem behind an error code, in a few plain words. */
export function errorKind(code: number): string {
  switch (code) {
    case ErrorCode.permissionDenied:
      return 'no permission to change it'
    case ErrorCode.unauthorized:
      return 'not signed in to the relay'
    case ErrorCode.tooLarge:
      return 'too large'
    case ErrorCode.invalidUpdate:
    case ErrorCode.invalidDocName:
      return 'not valid'
    case ErrorCode.storageUnavailable:
      return 'the relay could not store it'
    case ErrorCode.limitExceeded:
      return 'too many changes at once'
    case ErrorCode.shuttingDown:
      return 'the relay is restarting'
    default:
      return 'refused'
  }
}

/** Why a record's changes are not on the relay yet: a headline and, from the relay, a detail. */
export function explainPending(status: string, error: RecordSyncError | null | undefined): { text: string; detail: string | null } {
  if (error) {
    const kind = error.code === undefined ? error.reason : errorKind(error.code)
    const text = error.permanent ? `Rejected by the relay: ${kind}` : `Relay problem, retrying: ${kind}`
    return { text, detail: error.reason !== '' && error.reason !== kind ? error.reason : null }
  }
  if (status === 'offline') return { text: 'Offline — waiting for the relay', detail: null }
  if (status === 'connecting') return { text: 'Connecting to the relay', detail: null }
  return { text: 'Sent, waiting for the relay to confirm', detail: null }
}

/** {@link explainPending} in one line: the headline, then the relay's reason in parentheses. */
export function pendingReason(status: string, error: RecordSyncError | null | undefined): string {
  const { text, detail } = explainPending(status, error)
  return detail === null ? text : `${text} (${detail})`
}

/** Changed fields not on the relay, over records (a record with pending ticks but no field notes counts once). */
export function countChanges(records: ReadonlyArray<{ pending: number; pendingFields: readonly string[] }>): number {
  let n = 0
  for (const record of records) if (record.pending > 0) n += Math.max(1, record.pendingFields.filter((f) => f !== '$created').length)
  return n
}

/** What the app says when the browser is not letting it store data at all (the store runs in memory). */
export const MEMORY_ONLY_TEXT = 'This browser is not letting the app store data: changes stay only in this tab until they reach the server.'

/** A storage failure (the engine's `StorageErrorEvent` / `StorageError`) in plain words; the engine's own reason stays for the detail. */
export function storageProblemText(kind: string): string {
  switch (kind) {
    case 'unavailable':
      return MEMORY_ONLY_TEXT
    case 'quota':
      return 'this browser’s storage for the app is full. Changes are kept in this tab until there is room again or they reach the server.'
    case 'closed':
      return 'the app’s storage in this browser was closed or removed (for example by signing out in another tab). Changes are kept in this tab until they reach the server.'
    default:
      return 'this browser could not write the app’s data. Changes are kept in this tab until they reach the server.'
  }
}
