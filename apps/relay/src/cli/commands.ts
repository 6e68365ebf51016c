/**
 * The admin commands (`concord-relay <command> …`, `npm run relay -- <command> …`),
 * one module each, and {@link runCommand}, which `main.ts` calls when the
 * first argument is not a flag.
 *
 * @module cli/commands
 */
import { backupCommand } from './backup.js'
import { describeFailure, ExitCode, type Command, type CommandContext } from './command.js'
import { compactCommand } from './compact.js'
import { exportCommand } from './export.js'
import { importCommand } from './import.js'
import { inspectCommand } from './inspect.js'
import { restoreCommand } from './restore.js'
import { tokenCommand } from './token.js'

/** Every command, in the order the usage lists them. */
export const COMMANDS: readonly Command[] = [
  backupCommand,
  restoreCommand,
  exportCommand,
  importCommand,
  inspectCommand,
  compactCommand,
  tokenCommand,
]

/** The command list for `--help`. */
export const COMMANDS_USAGE = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')

/** Runs `concord-relay <name> <argv…>`; resolves with the exit code, after writing errors to stderr. */
export const runCommand = async (name: string, argv: string[], env: CommandContext['env']): Promise<number> => {
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) {
    process.stderr.write(`concord-relay: unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(', ')}\n`)
    return ExitCode.usage
  }
  try {
    await command.run(argv, { env, out: (line) => process.stdout.write(line + '\n') })
    return ExitCode.ok
  } catch (error) {
    const { code, message } = describeFailure(error)
    process.stderr.write(`concord-relay ${name}: ${message}\n`)
    return code
  }
}
