/**
 * `concord-relay inspect <doc>`: what is stored for one doc — sizes, the
 * update log, the checkpoint, the Yjs clients that wrote it with the users
 * bound to them, and the last change the record itself names. Reads one
 * snapshot from its own connection; safe while the relay runs.
 *
 * @module cli/inspect
 */
import * as Y from 'yjs'
import { AdminDatabase, type DocRows } from './adminDatabase.js'
import { CommandError, DATA_HELP, DATA_OPTION, dataDirOf, existingDatabaseOf, parseCommandArgs, type Command } from './command.js'

/** What `inspect --json` prints. */
export interface DocReport {
  doc: string
  /** Bytes stored: checkpoint plus log. */
  storedBytes: number
  /** Bytes of the merged state (what a new client downloads). */
  stateBytes: number
  /** Sequence number of the last logged update. */
  lastSeq: number
  log: { updates: number; bytes: number }
  checkpoint: { bytes: number; uptoSeq: number; writtenAt: string } | null
  /** Yjs clients with their number of items, and the user bound to each (null: written before attribution). */
  clients: Array<{ clientId: number; items: number; userId: string | null; name: string | null }>
  /** Distinct users that wrote it. */
  authors: Array<{ userId: string; name: string }>
  /** The record's own `updatedAt` / `updatedBy`, when it is a record doc that has them. */
  lastChange: { at: string; by: string | null } | null
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show what is stored for a doc: size, updates, checkpoint, clients, authors, last change',
  usage: `Usage: concord-relay inspect <doc> [--json] [--data <dir>]

Shows what the relay stores for <doc> (a doc name, e.g. acme/ticket-1): bytes
stored and of the merged state, the update log and checkpoint, the Yjs clients
that wrote it and the users bound to them, and the record's last change.
Safe while the relay runs.

  --json         print the report as JSON
${DATA_HELP}`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs('inspect', argv, { ...DATA_OPTION, json: { type: 'boolean' } }, { min: 1, max: 1, names: 'one <doc>' })
    if (args === 'help') return out(this.usage)
    const [doc] = args.positionals
    const dataDir = dataDirOf(args.values.data, env)
    const db = new AdminDatabase(existingDatabaseOf(dataDir))
    let rows: DocRows | null
    try {
      rows = db.readDoc(doc)
    } finally {
      db.close()
    }
    if (!rows) throw new CommandError(`no doc named "${doc}" in ${dataDir}`)
    const report = reportOf(doc, rows)
    out(args.values.json ? JSON.stringify(report, null, 2) : formatReport(report))
  },
}

/** The report of a doc's rows. */
export const reportOf = (doc: string, rows: DocRows): DocReport => {
  const ydoc = new Y.Doc()
  Y.applyUpdate(ydoc, rows.state)
  const bindings = new Map(rows.authors.map((a) => [a.clientId, a]))
  const clients = [...Y.decodeStateVector(Y.encodeStateVector(ydoc)).entries()]
    .sort(([, a], [, b]) => b - a)
    .map(([clientId, items]) => ({
      clientId,
      items,
      userId: bindings.get(clientId)?.userId ?? null,
      name: bindings.get(clientId)?.name ?? null,
    }))
  const authors = new Map<string, string>()
  for (const { userId, name } of rows.authors) authors.set(userId, name)
  const record = ydoc.getMap('record')
  const updatedAt = record.get('updatedAt')
  const updatedBy = record.get('updatedBy')
  ydoc.destroy()
  return {
    doc,
    storedBytes: (rows.checkpoint?.bytes ?? 0) + rows.logBytes,
    stateBytes: rows.state.byteLength,
    lastSeq: rows.lastSeq,
    log: { updates: rows.updates.length, bytes: rows.logBytes },
    checkpoint: rows.checkpoint
      ? { bytes: rows.checkpoint.bytes, uptoSeq: rows.checkpoint.uptoSeq, writtenAt: new Date(rows.checkpoint.updatedAt).toISOString() }
      : null,
    clients,
    authors: [...authors].map(([userId, name]) => ({ userId, name })),
    lastChange:
      typeof updatedAt === 'number'
        ? { at: new Date(updatedAt).toISOString(), by: typeof updatedBy === 'string' ? updatedBy : null }
        : null,
  }
}

/** The report as text, one fact a line. */
const formatReport = (r: DocReport): string =>
  [
    `doc          ${r.doc}`,
    `stored       ${r.storedBytes} bytes (checkpoint ${r.checkpoint?.bytes ?? 0} + log ${r.log.bytes}); merged state ${r.stateBytes} bytes`,
    `updates      ${r.log.updates} in the log, last sequence number ${r.lastSeq}`,
    `checkpoint   ${r.checkpoint ? `up to ${r.checkpoint.uptoSeq}, written ${r.checkpoint.writtenAt}` : 'none'}`,
    `last change  ${r.lastChange ? `${r.lastChange.at}${r.lastChange.by ? ` by ${r.lastChange.by}` : ''}` : 'unknown (not a record doc)'}`,
    `authors      ${r.authors.length === 0 ? 'none recorded' : r.authors.map((a) => `${a.name} (${a.userId})`).join(', ')}`,
    `clients      ${r.clients.length}`,
    ...r.clients.map(
      (c) =>
        `  ${String(c.clientId).padEnd(12)} ${String(c.items).padStart(8)} items  ${c.userId ? `${c.name} (${c.userId})` : 'no binding'}`,
    ),
  ].join('\n')
