/**
 * Relay configuration: CLI flags mirror environment variables; flags win.
 * Validated once at start with zod; every wrong value gets its own message.
 *
 * | flag                 | env                  | default    |
 * |----------------------|----------------------|------------|
 * | --port               | PORT                 | 8787 (0 = any free port) |
 * | --host               | HOST                 | 127.0.0.1  |
 * | --data               | DATA_DIR             | ./data     |
 * | --storage            | STORAGE              | sqlite     |
 * | --web-root           | WEB_ROOT             | (none)     |
 * | --log-level          | LOG_LEVEL            | info       |
 * | --idle-unload-ms     | IDLE_UNLOAD_MS       | 10000      |
 * | --max-payload        | MAX_PAYLOAD          | 1048576    |
 * | --checkpoint-updates | CHECKPOINT_UPDATES   | 500        |
 * | --checkpoint-bytes   | CHECKPOINT_BYTES     | 1048576    |
 * | --shutdown-timeout-ms| SHUTDOWN_TIMEOUT_MS  | 10000      |
 * | --sqlite-synchronous | SQLITE_SYNCHRONOUS   | full       |
 *
 * @module config
 */
import { z } from 'zod'
import { LOG_LEVELS } from './observability/logger.js'

const intString = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`))

const schema = z.object({
  port: intString('--port', 0, 65535).default(8787),
  host: z.string().min(1, '--host must not be empty').default('127.0.0.1'),
  data: z.string().min(1, '--data must not be empty').default('./data'),
  storage: z.enum(['sqlite', 'memory'], { error: '--storage must be "sqlite" or "memory"' }).default('sqlite'),
  webRoot: z.string().min(1).optional(),
  logLevel: z.enum(LOG_LEVELS, { error: `--log-level must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  idleUnloadMs: intString('--idle-unload-ms', 0, 86_400_000).default(10_000),
  maxPayload: intString('--max-payload', 1024, 256 * 1024 * 1024).default(1024 * 1024),
  checkpointUpdates: intString('--checkpoint-updates', 1, 10_000_000).default(500),
  checkpointBytes: intString('--checkpoint-bytes', 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  shutdownTimeoutMs: intString('--shutdown-timeout-ms', 100, 600_000).default(10_000),
  sqliteSynchronous: z
    .enum(['full', 'normal'], { error: '--sqlite-synchronous must be "full" or "normal"' })
    .default('full'),
})

/** Validated relay configuration. */
export type RelayConfig = z.infer<typeof schema>

const FLAGS: Record<string, { key: keyof RelayConfig; env: string }> = {
  '--port': { key: 'port', env: 'PORT' },
  '--host': { key: 'host', env: 'HOST' },
  '--data': { key: 'data', env: 'DATA_DIR' },
  '--storage': { key: 'storage', env: 'STORAGE' },
  '--web-root': { key: 'webRoot', env: 'WEB_ROOT' },
  '--log-level': { key: 'logLevel', env: 'LOG_LEVEL' },
  '--idle-unload-ms': { key: 'idleUnloadMs', env: 'IDLE_UNLOAD_MS' },
  '--max-payload': { key: 'maxPayload', env: 'MAX_PAYLOAD' },
  '--checkpoint-updates': { key: 'checkpointUpdates', env: 'CHECKPOINT_UPDATES' },
  '--checkpoint-bytes': { key: 'checkpointBytes', env: 'CHECKPOINT_BYTES' },
  '--shutdown-timeout-ms': { key: 'shutdownTimeoutMs', env: 'SHUTDOWN_TIMEOUT_MS' },
  '--sqlite-synchronous': { key: 'sqliteSynchronous', env: 'SQLITE_SYNCHRONOUS' },
}

/** Result of {@link parseConfig}. */
export type ConfigResult = { ok: true; config: RelayConfig } | { ok: false; errors: string[] } | { ok: 'help' }

/** Usage text for `--help`. */
export const USAGE = `Usage: concord-relay [options]

Options (each also read from the environment variable in brackets):
${Object.entries(FLAGS)
  .map(([flag, { env }]) => `  ${flag.padEnd(22)} [${env}]`)
  .join('\n')}
  --help                 show this text

Defaults: --port 8787 --host 127.0.0.1 --data ./data --storage sqlite`

/**
 * Reads flags (`--name value` or `--name=value`) and environment variables.
 * Never throws: returns every problem it found.
 */
export const parseConfig = (argv: readonly string[], env: Record<string, string | undefined>): ConfigResult => {
  const raw: Record<string, string> = {}
  const errors: string[] = []
  for (const { key, env: name } of Object.values(FLAGS)) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[key] = value
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') return { ok: 'help' }
    const eq = arg.indexOf('=')
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const spec = FLAGS[flag]
    if (!spec) {
      errors.push(`unknown option "${arg}" (see --help)`)
      continue
    }
    let value: string | undefined
    if (eq !== -1) value = arg.slice(eq + 1)
    else value = argv[++i]
    if (value === undefined) {
      errors.push(`${flag} needs a value`)
      continue
    }
    raw[spec.key] = value
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push(issue.message)
  }
  if (errors.length > 0 || !parsed.success) return { ok: false, errors }
  return { ok: true, config: parsed.data }
}
