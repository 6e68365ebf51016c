/**
 * Relay configuration: CLI flags mirror environment variables; flags win.
 * Validated once at start with zod; every wrong value gets its own message.
 *
 * | flag                 | env                  | default    |
 * |----------------------|----------------------|------------|
 * | --port               | PORT                 | 8787 (0 = any free port) |
 * | --host               | HOST                 | 127.0.0.1  |
 * | --data               | DATA_DIR             | ./data     |
 * | --storage            | STORAGE              | sqlite (or memory, postgres) |
 * | --database-url       | DATABASE_URL         | (none; read only by --storage postgres) |
 * | --redis-url          | REDIS_URL            | (none; with --storage postgres: fan-out between relay instances) |
 * | --web-root           | WEB_ROOT             | (none)     |
 * | --log-level          | LOG_LEVEL            | info       |
 * | --idle-unload-ms     | IDLE_UNLOAD_MS       | 10000      |
 * | --max-payload        | MAX_PAYLOAD          | 1048576    |
 * | --checkpoint-updates | CHECKPOINT_UPDATES   | 500        |
 * | --checkpoint-bytes   | CHECKPOINT_BYTES     | 1048576    |
 * | --shutdown-timeout-ms| SHUTDOWN_TIMEOUT_MS  | 10000      |
 * | --sqlite-synchronous | SQLITE_SYNCHRONOUS   | full       |
 * | (env only)           | JWT_SECRET           | (none)     |
 * | --jwt-secret-file    | JWT_SECRET_FILE      | (none)     |
 * | --jwks-url           | JWKS_URL             | (none)     |
 * | --jwt-public-key-file| JWT_PUBLIC_KEY_FILE  | (none)     |
 * | --jwt-algorithm      | JWT_ALGORITHM        | RS256      |
 * | --jwt-issuer         | JWT_ISSUER           | (none)     |
 * | --jwt-audience       | JWT_AUDIENCE         | (none)     |
 * | --allowed-origins    | ALLOWED_ORIGINS      | (any)      |
 * | --insecure           | INSECURE=1           | off        |
 * | --trusted-proxies    | TRUSTED_PROXIES      | (none)     |
 * | limits (--max-connections, --max-queued-bytes, …): see docs/security.md |
 *
 * @module config
 */
import { z } from 'zod'
import { LOG_LEVELS } from './observability/logger.js'
import { parseAddressRange } from './security/admission.js'
import { DEFAULT_LIMITS, limitContradictions, resolveLimits, type RelayLimits } from './security/limits.js'

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
  storage: z.enum(['sqlite', 'memory', 'postgres'], { error: '--storage must be "sqlite", "memory" or "postgres"' }).default('sqlite'),
  // Checked only with --storage postgres (see storageContradictions): DATABASE_URL is a common variable that may name another app's database.
  databaseUrl: z.string().min(1).optional(),
  // Likewise: read only with --storage postgres.
  redisUrl: z.string().min(1).optional(),
  webRoot: z.string().min(1).optional(),
  logLevel: z.enum(LOG_LEVELS, { error: `--log-level must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  idleUnloadMs: intString('--idle-unload-ms', 0, 86_400_000).default(10_000),
  maxPayload: intString('--max-payload', 1024, 256 * 1024 * 1024).default(1024 * 1024),
  checkpointUpdates: intString('--checkpoint-updates', 1, 10_000_000).default(500),
  checkpointBytes: intString('--checkpoint-bytes', 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  shutdownTimeoutMs: intString('--shutdown-timeout-ms', 100, 600_000).default(10_000),
  sqliteSynchronous: z.enum(['full', 'normal'], { error: '--sqlite-synchronous must be "full" or "normal"' }).default('full'),
  jwtSecret: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
  jwtSecretFile: z.string().min(1).optional(),
  jwksUrl: z.url({ error: '--jwks-url must be an http(s) URL' }).optional(),
  jwtPublicKeyFile: z.string().min(1).optional(),
  jwtAlgorithm: z.enum(['RS256', 'ES256'], { error: '--jwt-algorithm must be "RS256" or "ES256"' }).default('RS256'),
  jwtIssuer: z.string().min(1).optional(),
  jwtAudience: z.string().min(1).optional(),
  allowedOrigins: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o.length > 0),
    )
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, '--allowed-origins entries look like https://app.example.com (no path)')))
    .optional(),
  insecure: z
    .enum(['true', 'false', '1', '0'], { error: 'INSECURE must be 1 or 0' })
    .transform((v) => v === 'true' || v === '1')
    .default(false),
  maxDocsPerConnection: intString('--max-docs-per-connection', 1, 1_000_000).optional(),
  maxCatalogWatchesPerConnection: intString('--max-catalog-watches-per-connection', 1, 10_000).optional(),
  messagesPerSecond: intString('--messages-per-second', 1, 10_000_000).optional(),
  messageBurst: intString('--message-burst', 1, 100_000_000).optional(),
  awarenessPerSecond: intString('--awareness-per-second', 1, 100_000).optional(),
  maxAwarenessStateBytes: intString('--max-awareness-bytes', 64, 16 * 1024 * 1024).optional(),
  maxDocBytes: intString('--max-doc-bytes', 1024, 1024 * 1024 * 1024 * 16).optional(),
  authTimeoutMs: intString('--auth-timeout-ms', 100, 600_000).optional(),
  maxUnauthenticatedMessages: intString('--max-unauthenticated-messages', 1, 100_000).optional(),
  maxQueuedBytes: intString('--max-queued-bytes', 1024, 16 * 1024 * 1024 * 1024).optional(),
  maxConnections: intString('--max-connections', 1, 10_000_000).optional(),
  maxBufferedBytes: intString('--max-buffered-bytes', 1024, 1024 * 1024 * 1024).optional(),
  applyMsPerSecond: intString('--apply-ms-per-second', 1, 1000).optional(),
  applyBurstMs: intString('--apply-burst-ms', 1, 600_000).optional(),
  maxTypeDepth: intString('--max-type-depth', 1, 10_000).optional(),
  maxKeyConflicts: intString('--max-key-conflicts', 1, 1_000_000).optional(),
  maxKeyWalk: intString('--max-key-walk', 1000, 1_000_000_000).optional(),
  maxAwarenessEntries: intString('--max-awareness-entries', 1, 1_000_000).optional(),
  maxAwarenessIds: intString('--max-awareness-ids', 1, 10_000).optional(),
  maxAwarenessBytesPerConnection: intString('--max-awareness-bytes-per-connection', 1024, 16 * 1024 * 1024 * 1024).optional(),
  commitDelayMs: intString('--commit-delay-ms', 0, 1000).default(4),
  maxUnauthenticatedConnections: intString('--max-unauthenticated-connections', 1, 10_000_000).optional(),
  maxUnauthenticatedPerAddress: intString('--max-unauthenticated-per-address', 1, 10_000_000).optional(),
  connectionsPerAddressPerSecond: intString('--connections-per-address-per-second', 1, 1_000_000).optional(),
  connectionBurstPerAddress: intString('--connection-burst-per-address', 1, 10_000_000).optional(),
  maxPreAuthQueuedBytes: intString('--max-preauth-queued-bytes', 1024, 1024 * 1024 * 1024).optional(),
  headerTimeoutMs: intString('--header-timeout-ms', 100, 600_000).optional(),
  maxIncompleteRequests: intString('--max-incomplete-requests', 1, 10_000_000).optional(),
  maxConnectionsPerUser: intString('--max-connections-per-user', 1, 10_000_000).optional(),
  maxDocsPerUser: intString('--max-docs-per-user', 1, 100_000_000).optional(),
  workMsPerSecond: intString('--work-ms-per-second', 1, 1000).optional(),
  workBurstMs: intString('--work-burst-ms', 1, 600_000).optional(),
  trustedProxies: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a.length > 0),
    )
    .pipe(
      z.array(
        z.string().refine((a) => parseAddressRange(a) !== null, {
          error: '--trusted-proxies entries are IP addresses or CIDR ranges (10.0.0.0/8, ::1)',
        }),
      ),
    )
    .optional(),
  initialSyncChunkBytes: intString('--initial-sync-chunk-bytes', 1024, 256 * 1024 * 1024).optional(),
  maxInitialSyncBytes: intString('--max-initial-sync-bytes', 1024, 64 * 1024 * 1024 * 1024).optional(),
})

/** Validated relay configuration. */
export type RelayConfig = z.infer<typeof schema>

const FLAGS: Record<string, { key: keyof RelayConfig; env: string; boolean?: true }> = {
  '--port': { key: 'port', env: 'PORT' },
  '--host': { key: 'host', env: 'HOST' },
  '--data': { key: 'data', env: 'DATA_DIR' },
  '--storage': { key: 'storage', env: 'STORAGE' },
  '--database-url': { key: 'databaseUrl', env: 'DATABASE_URL' },
  '--redis-url': { key: 'redisUrl', env: 'REDIS_URL' },
  '--web-root': { key: 'webRoot', env: 'WEB_ROOT' },
  '--log-level': { key: 'logLevel', env: 'LOG_LEVEL' },
  '--idle-unload-ms': { key: 'idleUnloadMs', env: 'IDLE_UNLOAD_MS' },
  '--max-payload': { key: 'maxPayload', env: 'MAX_PAYLOAD' },
  '--checkpoint-updates': { key: 'checkpointUpdates', env: 'CHECKPOINT_UPDATES' },
  '--checkpoint-bytes': { key: 'checkpointBytes', env: 'CHECKPOINT_BYTES' },
  '--shutdown-timeout-ms': { key: 'shutdownTimeoutMs', env: 'SHUTDOWN_TIMEOUT_MS' },
  '--sqlite-synchronous': { key: 'sqliteSynchronous', env: 'SQLITE_SYNCHRONOUS' },
  '--jwt-secret-file': { key: 'jwtSecretFile', env: 'JWT_SECRET_FILE' },
  '--jwks-url': { key: 'jwksUrl', env: 'JWKS_URL' },
  '--jwt-public-key-file': { key: 'jwtPublicKeyFile', env: 'JWT_PUBLIC_KEY_FILE' },
  '--jwt-algorithm': { key: 'jwtAlgorithm', env: 'JWT_ALGORITHM' },
  '--jwt-issuer': { key: 'jwtIssuer', env: 'JWT_ISSUER' },
  '--jwt-audience': { key: 'jwtAudience', env: 'JWT_AUDIENCE' },
  '--allowed-origins': { key: 'allowedOrigins', env: 'ALLOWED_ORIGINS' },
  '--insecure': { key: 'insecure', env: 'INSECURE', boolean: true },
  '--max-docs-per-connection': { key: 'maxDocsPerConnection', env: 'MAX_DOCS_PER_CONNECTION' },
  '--max-catalog-watches-per-connection': { key: 'maxCatalogWatchesPerConnection', env: 'MAX_CATALOG_WATCHES_PER_CONNECTION' },
  '--messages-per-second': { key: 'messagesPerSecond', env: 'MESSAGES_PER_SECOND' },
  '--message-burst': { key: 'messageBurst', env: 'MESSAGE_BURST' },
  '--awareness-per-second': { key: 'awarenessPerSecond', env: 'AWARENESS_PER_SECOND' },
  '--max-awareness-bytes': { key: 'maxAwarenessStateBytes', env: 'MAX_AWARENESS_BYTES' },
  '--max-doc-bytes': { key: 'maxDocBytes', env: 'MAX_DOC_BYTES' },
  '--auth-timeout-ms': { key: 'authTimeoutMs', env: 'AUTH_TIMEOUT_MS' },
  '--max-unauthenticated-messages': { key: 'maxUnauthenticatedMessages', env: 'MAX_UNAUTHENTICATED_MESSAGES' },
  '--max-queued-bytes': { key: 'maxQueuedBytes', env: 'MAX_QUEUED_BYTES' },
  '--max-connections': { key: 'maxConnections', env: 'MAX_CONNECTIONS' },
  '--max-buffered-bytes': { key: 'maxBufferedBytes', env: 'MAX_BUFFERED_BYTES' },
  '--apply-ms-per-second': { key: 'applyMsPerSecond', env: 'APPLY_MS_PER_SECOND' },
  '--apply-burst-ms': { key: 'applyBurstMs', env: 'APPLY_BURST_MS' },
  '--max-type-depth': { key: 'maxTypeDepth', env: 'MAX_TYPE_DEPTH' },
  '--max-key-conflicts': { key: 'maxKeyConflicts', env: 'MAX_KEY_CONFLICTS' },
  '--max-key-walk': { key: 'maxKeyWalk', env: 'MAX_KEY_WALK' },
  '--max-awareness-entries': { key: 'maxAwarenessEntries', env: 'MAX_AWARENESS_ENTRIES' },
  '--max-awareness-ids': { key: 'maxAwarenessIds', env: 'MAX_AWARENESS_IDS' },
  '--max-awareness-bytes-per-connection': { key: 'maxAwarenessBytesPerConnection', env: 'MAX_AWARENESS_BYTES_PER_CONNECTION' },
  '--commit-delay-ms': { key: 'commitDelayMs', env: 'COMMIT_DELAY_MS' },
  '--max-unauthenticated-connections': { key: 'maxUnauthenticatedConnections', env: 'MAX_UNAUTHENTICATED_CONNECTIONS' },
  '--max-unauthenticated-per-address': { key: 'maxUnauthenticatedPerAddress', env: 'MAX_UNAUTHENTICATED_PER_ADDRESS' },
  '--connections-per-address-per-second': { key: 'connectionsPerAddressPerSecond', env: 'CONNECTIONS_PER_ADDRESS_PER_SECOND' },
  '--connection-burst-per-address': { key: 'connectionBurstPerAddress', env: 'CONNECTION_BURST_PER_ADDRESS' },
  '--max-preauth-queued-bytes': { key: 'maxPreAuthQueuedBytes', env: 'MAX_PREAUTH_QUEUED_BYTES' },
  '--header-timeout-ms': { key: 'headerTimeoutMs', env: 'HEADER_TIMEOUT_MS' },
  '--max-incomplete-requests': { key: 'maxIncompleteRequests', env: 'MAX_INCOMPLETE_REQUESTS' },
  '--max-connections-per-user': { key: 'maxConnectionsPerUser', env: 'MAX_CONNECTIONS_PER_USER' },
  '--max-docs-per-user': { key: 'maxDocsPerUser', env: 'MAX_DOCS_PER_USER' },
  '--work-ms-per-second': { key: 'workMsPerSecond', env: 'WORK_MS_PER_SECOND' },
  '--work-burst-ms': { key: 'workBurstMs', env: 'WORK_BURST_MS' },
  '--trusted-proxies': { key: 'trustedProxies', env: 'TRUSTED_PROXIES' },
  '--initial-sync-chunk-bytes': { key: 'initialSyncChunkBytes', env: 'INITIAL_SYNC_CHUNK_BYTES' },
  '--max-initial-sync-bytes': { key: 'maxInitialSyncBytes', env: 'MAX_INITIAL_SYNC_BYTES' },
}

/** Environment variables read that have no flag (secrets do not belong in argv). */
const ENV_ONLY: Record<string, keyof RelayConfig> = { JWT_SECRET: 'jwtSecret' }

/** Result of {@link parseConfig}. */
export type ConfigResult = { ok: true; config: RelayConfig } | { ok: false; errors: string[] } | { ok: 'help' }

/** Usage text for `--help`. */
export const USAGE = `Usage: concord-relay [options]

Options (each also read from the environment variable in brackets):
${Object.entries(FLAGS)
  .map(([flag, { env }]) => `  ${flag.padEnd(30)} [${env}]`)
  .join('\n')}
  --help                         show this text

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
  for (const [name, key] of Object.entries(ENV_ONLY)) {
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
    else if (spec.boolean) value = 'true'
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
  const config = parsed.data
  const keySources = [
    config.jwtSecret && 'JWT_SECRET',
    config.jwtSecretFile && '--jwt-secret-file',
    config.jwksUrl && '--jwks-url',
    config.jwtPublicKeyFile && '--jwt-public-key-file',
  ].filter(Boolean)
  if (keySources.length > 1) errors.push(`choose one way to verify tokens, not ${keySources.join(' and ')}`)
  if (keySources.length === 0 && !config.insecure && !isLoopback(config.host)) {
    errors.push(
      `refusing to listen on ${config.host} without authentication: set JWT_SECRET, --jwt-secret-file, --jwks-url or --jwt-public-key-file, or pass --insecure to accept anyone who can reach it`,
    )
  }
  errors.push(...storageContradictions(config))
  errors.push(...limitContradictions(resolveLimits(limitsOf(config))))
  if (errors.length > 0) return { ok: false, errors }
  return { ok: true, config }
}

/** What is wrong with the database and Redis URLs of PostgreSQL storage (other storages ignore both). */
const storageContradictions = (config: RelayConfig): string[] => {
  if (config.storage !== 'postgres') return []
  const errors: string[] = []
  if (config.databaseUrl === undefined) {
    errors.push('--storage postgres needs --database-url or DATABASE_URL (postgres://user:password@host:5432/database)')
  } else if (!/^postgres(ql)?:\/\/\S+$/.test(config.databaseUrl)) {
    errors.push('--database-url must be a postgres:// URL (postgres://user:password@host:5432/database)')
  }
  if (config.redisUrl !== undefined && !/^rediss?:\/\/\S+$/.test(config.redisUrl)) {
    errors.push('--redis-url must be a redis:// or rediss:// URL (redis://:password@host:6379)')
  }
  return errors
}

/** The limits a config sets (options named like the limits; unset ones are left out: defaults apply). */
export const limitsOf = (config: RelayConfig): Partial<RelayLimits> => {
  const limits: Partial<RelayLimits> = {}
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof RelayLimits>) {
    const value: unknown = (config as Record<string, unknown>)[key]
    if (typeof value === 'number') limits[key] = value
  }
  return limits
}

/** True for addresses only this machine can reach. */
export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/** True when the config names a way to verify tokens. */
export const authConfigured = (config: RelayConfig): boolean =>
  Boolean(config.jwtSecret || config.jwtSecretFile || config.jwksUrl || config.jwtPublicKeyFile)
