/**
 * `concord-relay compact [<doc>]`: folds a doc's update log into its
 * checkpoint (what the relay does on its own after `--checkpoint-updates`
 * or `--checkpoint-bytes`), for one doc or every doc, while no relay runs.
 * It goes through the relay's own storage code (`writeCheckpoint`: the new
 * checkpoint and the removal of the log it covers are one transaction).
 *
 * The relay must be stopped (see `relayLock`): a running relay tracks which
 * logged updates its own checkpoints cover.
 *
 * @module cli/compact
 */
import { SqliteDatabase } from '../storage/SqliteDatabase.js'
import { AdminDatabase } from './adminDatabase.js'
import { CommandError, DATA_HELP, DATA_OPTION, dataDirOf, existingDatabaseOf, parseCommandArgs, type Command } from './command.js'
import { assertNoRelay } from './relayLock.js'

export const compactCommand: Command = {
  name: 'compact',
  summary: "fold docs' update logs into their checkpoints (the relay must be stopped)",
  usage: `Usage: concord-relay compact [<doc>] [--data <dir>]

Folds the update log of <doc>, or of every doc, into its checkpoint, so the
doc loads from one stored state. Stop the relay first: compact refuses (exit
code 3) while a relay holds <dir>/relay.lock.

${DATA_HELP}`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs('compact', argv, DATA_OPTION, { min: 0, max: 1, names: 'at most one <doc>' })
    if (args === 'help') return out(this.usage)
    const dataDir = dataDirOf(args.values.data, env)
    const file = existingDatabaseOf(dataDir)
    assertNoRelay(dataDir, 'compact')
    const reader = new AdminDatabase(file)
    const writer = SqliteDatabase.open(file)
    let compacted = 0
    let before = 0
    let after = 0
    try {
      const docs = args.positionals.length === 1 ? args.positionals : reader.listDocs('')
      for (const doc of docs) {
        const rows = reader.readDoc(doc)
        if (!rows) throw new CommandError(`no doc named "${doc}" in ${dataDir}`)
        const stored = (rows.checkpoint?.bytes ?? 0) + rows.logBytes
        before += stored
        if (rows.updates.length === 0) {
          after += stored
          continue
        }
        writer.writeCheckpoint(doc, rows.state, rows.lastSeq)
        after += rows.state.byteLength
        compacted++
      }
      out(`compacted ${compacted} of ${docs.length} docs in ${dataDir}: ${before} bytes stored before, ${after} after`)
    } finally {
      writer.close()
      reader.close()
    }
  },
}
