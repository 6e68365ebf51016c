/**
 * What every admin command shares: the {@link Command} shape, exit codes,
 * strict argument parsing with `--help`, and where the data dir and its
 * database file are.
 *
 * Exit codes of every command: 0 done, 1 failed (the message says why),
 * 2 wrong usage, 3 refused because a relay is using the data dir.
 *
 * @module cli/command
 */
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { RelayRunningError } from './relayLock.js'

/** Exit codes of the admin commands. */
export const ExitCode = { ok: 0, failed: 1, usage: 2, relayRunning: 3 } as const

/** Where a command writes and what it reads from the environment. */
export interface CommandContext {
  env: Record<string, string | undefined>
  /** Writes a line of result to stdout. */
  out(line: string): void
}

/** An admin command (`concord-relay <name> …`). */
export interface Command {
  name: string
  /** One line for the command list. */
  summary: string
  /** Text of `concord-relay <name> --help`. */
  usage: string
  /** Runs the command; throws {@link UsageError}, {@link CommandError} or `RelayRunningError`. */
  run(argv: string[], context: CommandContext): Promise<void>
}

/** The command line was wrong: exit code 2, with the command's usage hint. */
export class UsageError extends Error {}

/** The command could not do its work: exit code 1. */
export class CommandError extends Error {}

/** Exit code and message for an error a command threw. */
export const describeFailure = (error: unknown): { code: number; message: string } => {
  if (error instanceof UsageError) return { code: ExitCode.usage, message: error.message }
  if (error instanceof RelayRunningError) return { code: ExitCode.relayRunning, message: error.message }
  if (error instanceof CommandError) return { code: ExitCode.failed, message: error.message }
  return { code: ExitCode.failed, message: (error as Error).stack ?? String(error) }
}

/** `--data` with its environment variable, for the commands that work on a data dir. */
export const DATA_OPTION = {
  data: { type: 'string' },
} as const satisfies ParseArgsConfig['options']

/** Help text line for {@link DATA_OPTION}. */
export const DATA_HELP = "  --data <dir>   the relay's data dir [DATA_DIR, default: ./data]"

/** Parsed arguments of a command, or `'help'` when `--help` was given. */
export type ParsedCommandArgs<O extends NonNullable<ParseArgsConfig['options']>> =
  | 'help'
  | {
      values: { [K in keyof O]?: O[K] extends { multiple: true } ? string[] : O[K]['type'] extends 'boolean' ? boolean : string }
      positionals: string[]
    }

/**
 * Parses a command's arguments strictly: unknown flags, missing values and a
 * wrong number of positional arguments are {@link UsageError}s.
 */
export const parseCommandArgs = <O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: O,
  positionals: { min: number; max: number; names: string },
): ParsedCommandArgs<O> => {
  let parsed: { values: Record<string, unknown>; positionals: string[] }
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true })
  } catch (error) {
    // parseArgs names the flag in its first sentence; the rest is advice about `--`
    const problem = (error as Error).message
      .split('\n')
      .slice(0, 2)
      .join(' ')
      .replace(/\. To specify .*$/, '')
    throw new UsageError(`${problem} (see concord-relay ${command} --help)`)
  }
  if (parsed.values.help === true) return 'help'
  const count = parsed.positionals.length
  if (count < positionals.min || count > positionals.max) {
    throw new UsageError(
      `${command} takes ${positionals.names}, got ${count === 0 ? 'nothing' : parsed.positionals.join(' ')} (see concord-relay ${command} --help)`,
    )
  }
  delete parsed.values.help
  return parsed as Exclude<ParsedCommandArgs<O>, 'help'>
}

/**
 * The data dir from `--data`, `DATA_DIR` or the default `./data`, as an
 * absolute path. Without `--data`, a {@link UsageError} when `STORAGE=postgres`
 * says the relay keeps its data in PostgreSQL: the commands work on SQLite
 * data dirs only.
 */
export const dataDirOf = (flag: string | undefined, env: Record<string, string | undefined>): string => {
  if (flag === undefined && env.STORAGE === 'postgres') {
    throw new UsageError(
      'the admin commands work on the SQLite storage only, and STORAGE=postgres is set: back up and restore PostgreSQL with pg_dump and pg_restore (every table is prefixed concord_); give --data to work on a SQLite data dir anyway',
    )
  }
  return path.resolve(flag ?? (env.DATA_DIR || './data'))
}

/** The SQLite file of a data dir (the name `main.ts` opens). */
export const databaseFileOf = (dataDir: string): string => path.join(dataDir, 'concord.sqlite')

/** The webhook subscriptions file of a data dir (see `webhooks/WebhookSubscriptions`), kept with the database in backups. */
export const webhooksFileOf = (dataDir: string): string => path.join(dataDir, 'webhooks.json')

/** Where a backup keeps the data dir's webhook subscriptions: next to the database copy. */
export const backupWebhooksFileOf = (backupFile: string): string => `${backupFile}.webhooks.json`

/** The database file of `dataDir`; a {@link CommandError} when there is none. */
export const existingDatabaseOf = (dataDir: string): string => {
  const file = databaseFileOf(dataDir)
  if (!fs.existsSync(file)) throw new CommandError(`no relay database in ${dataDir} (${path.basename(file)} does not exist; see --data)`)
  return file
}

/** Flushes a file (or directory) to disk. */
export const fsyncPath = (file: string): void => {
  const fd = fs.openSync(file, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}
