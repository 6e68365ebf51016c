/**
 * `concord-relay restore <file>`: replaces the data dir's database with a
 * backup, while no relay runs (see `relayLock`: a running relay holds its
 * docs in memory and would go on from the replaced state).
 *
 * The backup is checked first (a SQLite file, `integrity_check` ok, a
 * schema this relay understands). The current database, if any, is folded
 * into one file (its WAL checkpointed) and kept next to it as
 * `concord.sqlite.before-restore-<time>`; then the backup is copied in,
 * flushed and renamed into place, so an interrupted restore leaves either
 * database whole.
 *
 * When the backup has webhook subscriptions next to it
 * (`<file>.webhooks.json`, written by `backup`), they replace the data dir's
 * `webhooks.json` the same way (the old one kept as
 * `webhooks.json.before-restore-<time>`).
 *
 * @module cli/restore
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { SQLITE_SCHEMA_VERSION } from '../storage/SqliteDatabase.js'
import {
  backupWebhooksFileOf,
  CommandError,
  DATA_HELP,
  DATA_OPTION,
  databaseFileOf,
  dataDirOf,
  fsyncPath,
  parseCommandArgs,
  webhooksFileOf,
  type Command,
} from './command.js'
import { assertNoRelay } from './relayLock.js'

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'replace the database with a backup (the relay must be stopped)',
  usage: `Usage: concord-relay restore <file> [--data <dir>]

Replaces <dir>/concord.sqlite with the backup <file> (made by concord-relay
backup). Stop the relay first: restore refuses (exit code 3) while a relay
holds <dir>/relay.lock. The database it replaces is kept as
concord.sqlite.before-restore-<time> in <dir>. Webhook subscriptions saved
next to the backup (<file>.webhooks.json) replace <dir>/webhooks.json.

${DATA_HELP}`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs('restore', argv, DATA_OPTION, { min: 1, max: 1, names: 'one <file>' })
    if (args === 'help') return out(this.usage)
    const dataDir = dataDirOf(args.values.data, env)
    const backup = path.resolve(args.positionals[0])
    const docs = checkBackup(backup)
    const backupWebhooks = backupWebhooksFileOf(backup)
    const webhooks = fs.existsSync(backupWebhooks) ? readWebhooks(backupWebhooks) : null
    assertNoRelay(dataDir, 'restore')
    fs.mkdirSync(dataDir, { recursive: true })
    const current = databaseFileOf(dataDir)
    const incoming = `${current}.restoring`
    fs.copyFileSync(backup, incoming)
    fsyncPath(incoming)
    const suffix = `.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`
    let kept: string | null = null
    if (fs.existsSync(current)) {
      foldWal(current)
      kept = current + suffix
      fs.renameSync(current, kept)
    }
    // a WAL of another database must never be applied to the restored one
    for (const wal of ['-wal', '-shm']) fs.rmSync(current + wal, { force: true })
    fs.renameSync(incoming, current)
    if (webhooks !== null) {
      const target = webhooksFileOf(dataDir)
      const partial = `${target}.restoring`
      fs.writeFileSync(partial, webhooks)
      fsyncPath(partial)
      if (fs.existsSync(target)) fs.renameSync(target, target + suffix)
      fs.renameSync(partial, target)
    }
    fsyncPath(dataDir)
    out(
      `restored ${docs} docs from ${backup} into ${dataDir}` +
        (webhooks !== null ? ', and the webhook subscriptions' : '') +
        (kept ? `; the previous database is kept as ${path.basename(kept)}` : ''),
    )
  },
}

/** Checks that `file` is a healthy relay database; returns its number of docs. */
const checkBackup = (file: string): number => {
  if (!fs.existsSync(file)) throw new CommandError(`${file} does not exist`)
  let db: Database.Database | undefined
  try {
    db = new Database(file, { readonly: true, fileMustExist: true })
    const version = db.pragma('user_version', { simple: true }) as number
    if (version < 1 || version > SQLITE_SCHEMA_VERSION) {
      throw new Error(`schema version ${version}, this relay understands 1 to ${SQLITE_SCHEMA_VERSION}`)
    }
    const integrity = db.pragma('integrity_check', { simple: true })
    if (integrity !== 'ok') throw new Error(`integrity check failed: ${String(integrity)}`)
    return (db.prepare('SELECT count(*) AS n FROM docs').get() as { n: number }).n
  } catch (error) {
    throw new CommandError(`${file} is not a usable relay backup: ${(error as Error).message}`)
  } finally {
    db?.close()
  }
}

/** The text of a backup's webhook subscriptions, checked to be JSON. */
const readWebhooks = (file: string): string => {
  const text = fs.readFileSync(file, 'utf8')
  try {
    JSON.parse(text)
  } catch (error) {
    throw new CommandError(`${file} is not the webhook subscriptions of a backup: ${(error as Error).message}`)
  }
  return text
}

/** Moves everything in the database's WAL into the database file, so the file alone is complete. */
const foldWal = (file: string): void => {
  const db = new Database(file, { fileMustExist: true })
  try {
    db.pragma('busy_timeout = 5000')
    db.pragma('wal_checkpoint(TRUNCATE)')
  } finally {
    db.close()
  }
}
