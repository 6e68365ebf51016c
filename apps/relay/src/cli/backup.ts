/**
 * `concord-relay backup <file>`: a consistent copy of the data dir's SQLite
 * database, taken while the relay runs.
 *
 * It runs `VACUUM INTO` from a connection of its own: one read transaction,
 * so the copy is the database as of one commit (WAL mode lets the relay
 * keep committing meanwhile), holding every change the relay acknowledged
 * before the backup started. SQLite's online backup API was not used
 * because it starts over whenever another connection writes, which under
 * steady load may be forever. The copy is written next to the target,
 * flushed to disk, then renamed into place, so `<file>` is either absent or
 * complete.
 *
 * The webhook subscriptions (`webhooks.json`, which the relay replaces
 * atomically, so a copy is consistent) are copied next to it as
 * `<file>.webhooks.json`; `restore` puts them back.
 *
 * @module cli/backup
 */
import fs from 'node:fs'
import path from 'node:path'
import { AdminDatabase } from './adminDatabase.js'
import {
  backupWebhooksFileOf,
  CommandError,
  DATA_HELP,
  DATA_OPTION,
  dataDirOf,
  existingDatabaseOf,
  fsyncPath,
  parseCommandArgs,
  webhooksFileOf,
  type Command,
} from './command.js'

export const backupCommand: Command = {
  name: 'backup',
  summary: 'write a consistent copy of the database (safe while the relay runs)',
  usage: `Usage: concord-relay backup <file> [--data <dir>]

Writes a consistent copy of <dir>/concord.sqlite to <file> (which must not
exist), while the relay keeps running, and the webhook subscriptions
(webhooks.json) to <file>.webhooks.json. Restore both with concord-relay restore.

${DATA_HELP}`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs('backup', argv, DATA_OPTION, { min: 1, max: 1, names: 'one <file>' })
    if (args === 'help') return out(this.usage)
    const dataDir = dataDirOf(args.values.data, env)
    const source = existingDatabaseOf(dataDir)
    const target = path.resolve(args.positionals[0])
    const webhooksTarget = backupWebhooksFileOf(target)
    for (const file of [target, webhooksTarget]) {
      if (fs.existsSync(file)) throw new CommandError(`${file} already exists: choose another name or delete it`)
    }
    if (!fs.existsSync(path.dirname(target))) throw new CommandError(`the folder of ${target} does not exist`)
    const partial = `${target}.partial-${process.pid}`
    const db = new AdminDatabase(source)
    let docs: number
    try {
      db.connection.prepare('VACUUM INTO ?').run(partial)
      docs = db.listDocs('').length
    } catch (error) {
      fs.rmSync(partial, { force: true })
      throw new CommandError(`cannot back up ${source}: ${(error as Error).message}`)
    } finally {
      db.close()
    }
    fsyncPath(partial)
    fs.renameSync(partial, target)
    const webhooks = copyDurably(webhooksFileOf(dataDir), webhooksTarget)
    fsyncPath(path.dirname(target))
    out(
      `backed up ${docs} docs from ${dataDir} to ${target} (${fs.statSync(target).size} bytes)` +
        (webhooks ? `, webhook subscriptions to ${path.basename(webhooksTarget)}` : ''),
    )
  },
}

/** Copies `from` to `to` through a flushed temporary file, when `from` exists; false when it does not. */
const copyDurably = (from: string, to: string): boolean => {
  const partial = `${to}.partial-${process.pid}`
  try {
    fs.copyFileSync(from, partial)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new CommandError(`cannot copy ${from}: ${(error as Error).message}`)
  }
  fsyncPath(partial)
  fs.renameSync(partial, to)
  return true
}
