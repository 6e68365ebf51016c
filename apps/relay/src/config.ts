/**
 * Relay configuration: every option is a flag and an environment variable
 * (flags win), listed once in {@link FLAGS} with its description; `--help`
 * ({@link USAGE}) is generated from that table. Secrets have no flag:
 * `JWT_SECRET` is read from the environment only ({@link ENV_ONLY}).
 *
 * Parsing is strict (`node:util` `parseArgs` with `strict: true`): an
 * unknown flag, a flag that needs a value but is followed by another flag
 * (`--web-root --port 9000`), a value given to a switch (`--insecure=yes`) or
 * a stray argument is an error naming it. Values are then validated once with
 * zod; every wrong value gets its own message, and all of them are reported
 * together.
 *
 * Adding an option: a key in `schema` (its message names the flag) and a row
 * in `FLAGS` (flag, env, one-line description, default shown by `--help`).
 *
 * @module config
 */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { LOG_LEVELS } from './observability/logger.js'
import { parseAddressRange } from './security/admission.js'
import { DEFAULT_LIMITS, limitContradictions, resolveLimits, type RelayLimits } from './security/limits.js'
import { DEFAULT_SQLITE_CACHE_MB } from './storage/SqliteDatabase.js'

const intString = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`))

/** An on/off option: a flag without a value, or its environment variable set to 1 or 0 (true or false). */
const switchValue = (env: string) =>
  z
    .enum(['true', 'false', '1', '0'], { error: (issue) => `${env} must be 1, 0, true or false (got "${String(issue.input)}")` })
    .transform((v) => v === 'true' || v === '1')
    .default(false)

const schema = z.object({
  port: intString('--port', 0, 65535).default(8787),
  host: z.string().min(1, '--host must not be empty').default('127.0.0.1'),
  data: z.string().min(1, '--data must not be empty').default('./data'),
  storage: z.enum(['sqlite', 'memory', 'postgres'], { error: '--storage must be "sqlite", "memory" or "postgres"' }).default('sqlite'),
  // Checked only with --storage postgres (see storageContradictions): DATABASE_URL is a common variable that may name another app's database.
  databaseUrl: z.string().min(1).optional(),
  // Likewise: read only with --storage postgres.
  redisUrl: z.string().min(1).optional(),
  webRoot: z.string().min(1, '--web-root must not be empty (use --no-web to serve no web app)').optional(),
  noWeb: switchValue('NO_WEB'),
  logLevel: z.enum(LOG_LEVELS, { error: `--log-level must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  idleUnloadMs: intString('--idle-unload-ms', 0, 86_400_000).default(10_000),
  dormantAfterMs: intString('--dormant-after-ms', 0, 86_400_000).default(10_000),
  maxPayload: intString('--max-payload', 1024, 256 * 1024 * 1024).default(1024 * 1024),
  checkpointUpdates: intString('--checkpoint-updates', 1, 10_000_000).default(500),
  checkpointBytes: intString('--checkpoint-bytes', 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  shutdownTimeoutMs: intString('--shutdown-timeout-ms', 100, 600_000).default(10_000),
  sqliteSynchronous: z.enum(['full', 'normal'], { error: '--sqlite-synchronous must be "full" or "normal"' }).default('full'),
  sqliteCacheMb: intString('--sqlite-cache-mb', 1, 65_536).default(DEFAULT_SQLITE_CACHE_MB),
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
    .pipe(
      z.array(
        z.string().regex(/^https?:\/\/[^/\s]+$/, {
          error: (issue) =>
            `--allowed-origins entry "${String(issue.input)}" is not an origin: entries look like https://app.example.com (no path)`,
        }),
      ),
    )
    .optional(),
  insecure: switchValue('INSECURE'),
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

/** One option of the command line: its config key, environment variable, description and default for `--help`. */
interface FlagSpec {
  key: keyof RelayConfig
  env: string
  /** One line for `--help`. */
  help: string
  /** The default `--help` shows; limits show theirs from `DEFAULT_LIMITS`, options without one show nothing. */
  default?: string
  /** A switch: takes no value (`--insecure`), or 1/0 in its environment variable. */
  boolean?: true
}

/** Every flag, in the order `--help` lists them. */
export const FLAGS: Record<string, FlagSpec> = {
  '--port': { key: 'port', env: 'PORT', help: 'TCP port to listen on; 0 picks a free one', default: '8787' },
  '--host': {
    key: 'host',
    env: 'HOST',
    help: 'address to bind; anything but loopback needs a way to verify tokens or --insecure',
    default: '127.0.0.1',
  },
  '--data': { key: 'data', env: 'DATA_DIR', help: 'directory of concord.sqlite', default: './data' },
  '--storage': {
    key: 'storage',
    env: 'STORAGE',
    help: 'sqlite; postgres (several relay instances, see --database-url); or memory (loses everything on exit)',
    default: 'sqlite',
  },
  '--database-url': {
    key: 'databaseUrl',
    env: 'DATABASE_URL',
    help: 'postgres://user:password@host:5432/database, for --storage postgres (read only then)',
  },
  '--redis-url': {
    key: 'redisUrl',
    env: 'REDIS_URL',
    help: 'redis://host:6379: with --storage postgres, fan-out and presence between relay instances',
  },
  '--web-root': {
    key: 'webRoot',
    env: 'WEB_ROOT',
    help: 'folder of the built web app to serve at /',
    default: 'apps/web/dist when it is built',
  },
  '--no-web': { key: 'noWeb', env: 'NO_WEB', help: 'serve no web app (only the sync endpoint, health and metrics)', boolean: true },
  '--log-level': { key: 'logLevel', env: 'LOG_LEVEL', help: LOG_LEVELS.join(' '), default: 'info' },
  '--idle-unload-ms': {
    key: 'idleUnloadMs',
    env: 'IDLE_UNLOAD_MS',
    help: 'how long a doc nobody is connected to stays in memory',
    default: '10000',
  },
  '--dormant-after-ms': {
    key: 'dormantAfterMs',
    env: 'DORMANT_AFTER_MS',
    help: 'how long a loaded doc nobody writes to keeps its Yjs doc before holding only its encoded state; 0: always keep it',
    default: '10000',
  },
  '--max-payload': { key: 'maxPayload', env: 'MAX_PAYLOAD', help: 'largest WebSocket frame, bytes; larger frames close with 1009' },
  '--checkpoint-updates': {
    key: 'checkpointUpdates',
    env: 'CHECKPOINT_UPDATES',
    help: "compact a doc's update log after this many updates…",
    default: '500',
  },
  '--checkpoint-bytes': { key: 'checkpointBytes', env: 'CHECKPOINT_BYTES', help: '…or after this many bytes', default: '1048576' },
  '--shutdown-timeout-ms': {
    key: 'shutdownTimeoutMs',
    env: 'SHUTDOWN_TIMEOUT_MS',
    help: 'longest graceful shutdown (storing and acking what is in flight)',
    default: '10000',
  },
  '--commit-delay-ms': {
    key: 'commitDelayMs',
    env: 'COMMIT_DELAY_MS',
    help: 'group-commit window: one fsync and one round of acks per window',
    default: '4',
  },
  '--sqlite-synchronous': {
    key: 'sqliteSynchronous',
    env: 'SQLITE_SYNCHRONOUS',
    help: 'full survives power loss; normal survives process crashes only',
    default: 'full',
  },
  '--sqlite-cache-mb': {
    key: 'sqliteCacheMb',
    env: 'SQLITE_CACHE_MB',
    help: "SQLite's page cache, MiB: part of the relay's steady memory once full",
    default: String(DEFAULT_SQLITE_CACHE_MB),
  },
  '--jwt-secret-file': { key: 'jwtSecretFile', env: 'JWT_SECRET_FILE', help: 'file holding the HS256 secret (instead of JWT_SECRET)' },
  '--jwks-url': { key: 'jwksUrl', env: 'JWKS_URL', help: 'verify RS256/ES256 tokens with the keys of this JWKS URL' },
  '--jwt-public-key-file': {
    key: 'jwtPublicKeyFile',
    env: 'JWT_PUBLIC_KEY_FILE',
    help: 'verify tokens with this PEM public key (see --jwt-algorithm)',
  },
  '--jwt-algorithm': { key: 'jwtAlgorithm', env: 'JWT_ALGORITHM', help: 'RS256 or ES256, for --jwt-public-key-file', default: 'RS256' },
  '--jwt-issuer': { key: 'jwtIssuer', env: 'JWT_ISSUER', help: 'required iss claim of tokens' },
  '--jwt-audience': { key: 'jwtAudience', env: 'JWT_AUDIENCE', help: 'required aud claim of tokens' },
  '--allowed-origins': {
    key: 'allowedOrigins',
    env: 'ALLOWED_ORIGINS',
    help: 'comma-separated browser origins allowed to connect',
    default: 'any',
  },
  '--insecure': { key: 'insecure', env: 'INSECURE', help: 'allow a non-loopback --host without authentication', boolean: true },
  '--trusted-proxies': {
    key: 'trustedProxies',
    env: 'TRUSTED_PROXIES',
    help: 'reverse proxies (IPs, CIDR ranges) whose X-Forwarded-For is believed',
  },
  '--max-connections': { key: 'maxConnections', env: 'MAX_CONNECTIONS', help: 'open WebSocket connections of the whole relay' },
  '--max-connections-per-user': { key: 'maxConnectionsPerUser', env: 'MAX_CONNECTIONS_PER_USER', help: 'open connections of one user' },
  '--max-docs-per-connection': {
    key: 'maxDocsPerConnection',
    env: 'MAX_DOCS_PER_CONNECTION',
    help: 'docs one connection may subscribe to',
  },
  '--max-docs-per-user': { key: 'maxDocsPerUser', env: 'MAX_DOCS_PER_USER', help: 'docs one user may subscribe to across connections' },
  '--max-catalog-watches-per-connection': {
    key: 'maxCatalogWatchesPerConnection',
    env: 'MAX_CATALOG_WATCHES_PER_CONNECTION',
    help: 'workspaces one connection may watch',
  },
  '--messages-per-second': { key: 'messagesPerSecond', env: 'MESSAGES_PER_SECOND', help: 'sustained messages per second per connection' },
  '--message-burst': { key: 'messageBurst', env: 'MESSAGE_BURST', help: 'burst of messages per connection' },
  '--awareness-per-second': {
    key: 'awarenessPerSecond',
    env: 'AWARENESS_PER_SECOND',
    help: 'sustained awareness messages per second per connection',
  },
  '--max-awareness-bytes': {
    key: 'maxAwarenessStateBytes',
    env: 'MAX_AWARENESS_BYTES',
    help: 'largest awareness state of one client, bytes',
  },
  '--max-awareness-entries': {
    key: 'maxAwarenessEntries',
    env: 'MAX_AWARENESS_ENTRIES',
    help: 'awareness entries one message may carry (y-websocket sends every state of a doc in one)',
  },
  '--max-awareness-ids': { key: 'maxAwarenessIds', env: 'MAX_AWARENESS_IDS', help: 'awareness client ids one connection may use per doc' },
  '--max-awareness-bytes-per-connection': {
    key: 'maxAwarenessBytesPerConnection',
    env: 'MAX_AWARENESS_BYTES_PER_CONNECTION',
    help: 'awareness bytes one connection may hold',
  },
  '--max-doc-bytes': { key: 'maxDocBytes', env: 'MAX_DOC_BYTES', help: 'largest stored size of one doc; updates beyond it are refused' },
  '--max-queued-bytes': {
    key: 'maxQueuedBytes',
    env: 'MAX_QUEUED_BYTES',
    help: 'bytes of messages one connection may have waiting',
    default: '4 × --max-payload',
  },
  '--max-buffered-bytes': {
    key: 'maxBufferedBytes',
    env: 'MAX_BUFFERED_BYTES',
    help: 'send buffer of a slow reader before it is disconnected',
  },
  '--apply-ms-per-second': {
    key: 'applyMsPerSecond',
    env: 'APPLY_MS_PER_SECOND',
    help: 'sustained Yjs apply time per second a connection may cause, ms',
  },
  '--apply-burst-ms': { key: 'applyBurstMs', env: 'APPLY_BURST_MS', help: 'burst of apply time, ms' },
  '--work-ms-per-second': {
    key: 'workMsPerSecond',
    env: 'WORK_MS_PER_SECOND',
    help: 'sustained answering work per second a connection may cause, ms',
  },
  '--work-burst-ms': { key: 'workBurstMs', env: 'WORK_BURST_MS', help: 'burst of answering work, ms' },
  '--max-type-depth': { key: 'maxTypeDepth', env: 'MAX_TYPE_DEPTH', help: 'deepest nesting of shared types in a doc' },
  '--max-key-conflicts': { key: 'maxKeyConflicts', env: 'MAX_KEY_CONFLICTS', help: 'concurrent map entries for one key' },
  '--max-key-walk': { key: 'maxKeyWalk', env: 'MAX_KEY_WALK', help: 'map-key history entries Yjs may walk for one update' },
  '--auth-timeout-ms': { key: 'authTimeoutMs', env: 'AUTH_TIMEOUT_MS', help: 'time a connection has to authenticate, ms' },
  '--max-unauthenticated-messages': {
    key: 'maxUnauthenticatedMessages',
    env: 'MAX_UNAUTHENTICATED_MESSAGES',
    help: 'messages before authentication',
  },
  '--max-unauthenticated-connections': {
    key: 'maxUnauthenticatedConnections',
    env: 'MAX_UNAUTHENTICATED_CONNECTIONS',
    help: 'sockets without an identity yet, relay-wide',
    default: '--max-connections / 10, at most 1000',
  },
  '--max-unauthenticated-per-address': {
    key: 'maxUnauthenticatedPerAddress',
    env: 'MAX_UNAUTHENTICATED_PER_ADDRESS',
    help: 'sockets without an identity yet from one address',
  },
  '--connections-per-address-per-second': {
    key: 'connectionsPerAddressPerSecond',
    env: 'CONNECTIONS_PER_ADDRESS_PER_SECOND',
    help: 'sustained upgrades per second from one address',
  },
  '--connection-burst-per-address': {
    key: 'connectionBurstPerAddress',
    env: 'CONNECTION_BURST_PER_ADDRESS',
    help: 'burst of upgrades from one address',
  },
  '--max-preauth-queued-bytes': {
    key: 'maxPreAuthQueuedBytes',
    env: 'MAX_PREAUTH_QUEUED_BYTES',
    help: 'bytes waiting for authentication per connection',
  },
  '--header-timeout-ms': { key: 'headerTimeoutMs', env: 'HEADER_TIMEOUT_MS', help: 'time to send a complete HTTP request header, ms' },
  '--max-incomplete-requests': {
    key: 'maxIncompleteRequests',
    env: 'MAX_INCOMPLETE_REQUESTS',
    help: 'sockets with an incomplete HTTP request, relay-wide',
  },
  '--initial-sync-chunk-bytes': {
    key: 'initialSyncChunkBytes',
    env: 'INITIAL_SYNC_CHUNK_BYTES',
    help: 'size of the chunks a large doc is first sent in',
    default: 'min(524288, --max-payload)',
  },
  '--max-initial-sync-bytes': {
    key: 'maxInitialSyncBytes',
    env: 'MAX_INITIAL_SYNC_BYTES',
    help: 'bytes of initial syncs in flight, relay-wide',
  },
}

/** Environment variables read that have no flag (secrets do not belong in argv). */
const ENV_ONLY: Record<string, keyof RelayConfig> = { JWT_SECRET: 'jwtSecret' }

/** Result of {@link parseConfig}. */
export type ConfigResult = { ok: true; config: RelayConfig } | { ok: false; errors: string[] } | { ok: 'help' }

/** The default `--help` shows for a flag. */
const defaultOf = (spec: FlagSpec): string | undefined => {
  if (spec.default !== undefined) return spec.default
  if (spec.key in DEFAULT_LIMITS) return String(DEFAULT_LIMITS[spec.key as keyof RelayLimits])
  return spec.boolean ? 'off' : undefined
}

/** Usage text for `--help`: one line per flag with its environment variable and default. */
export const USAGE = `Usage: concord-relay [options]            start the relay
       concord-relay <command> [arguments]  administer a data dir (concord-relay <command> --help)

Options (each also read from the environment variable in brackets; a flag wins; switches take no value):
${Object.entries(FLAGS)
  .map(([flag, spec]) => {
    const value = defaultOf(spec)
    return `  ${flag.padEnd(38)} [${spec.env}] ${spec.help}${value === undefined ? '' : ` (default: ${value})`}`
  })
  .join('\n')}
  ${'-h, --help'.padEnd(38)} show this text

Tokens: the relay verifies JWTs when one key source is set: JWT_SECRET (HS256
secret, at least 32 characters, environment only: never a flag), --jwt-secret-file,
--jwks-url or --jwt-public-key-file. Without one, anyone who can reach the relay
may read and write every doc; only loopback hosts are allowed then, unless --insecure.

The web app: without --web-root the relay serves apps/web/dist next to its package
when that folder is built (npm run build); --no-web turns it off.`

/** `parseArgs` options for {@link FLAGS} (names without the leading dashes). */
const PARSE_OPTIONS = Object.fromEntries([
  ...Object.entries(FLAGS).map(([flag, spec]) => [flag.slice(2), { type: spec.boolean ? ('boolean' as const) : ('string' as const) }]),
  ['help', { type: 'boolean' as const, short: 'h' }],
])

/**
 * Reads flags (`--name value` or `--name=value`) and environment variables.
 * Never throws: returns every problem it found.
 */
export const parseConfig = (argv: readonly string[], env: Record<string, string | undefined>): ConfigResult => {
  const raw: Record<string, string> = {}
  for (const { key, env: name } of Object.values(FLAGS)) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[key] = value
  }
  for (const [name, key] of Object.entries(ENV_ONLY)) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const args = readArgs(argv)
  if (args.help) return { ok: 'help' }
  const errors = [...args.errors]
  for (const [name, value] of Object.entries(args.values)) {
    const spec = FLAGS[`--${name}`]
    raw[spec.key] = typeof value === 'boolean' ? String(value) : value
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
  // token checks without a key would leave auth off: a misconfiguration, not a choice
  const tokenChecks = (['jwtAlgorithm', 'jwtIssuer', 'jwtAudience'] as const).filter((key) => raw[key] !== undefined).map(flagOf)
  if (keySources.length === 0 && tokenChecks.length > 0) {
    errors.push(
      `${tokenChecks.join(', ')} ${tokenChecks.length === 1 ? 'needs' : 'need'} a key to verify tokens with: set JWT_SECRET, --jwt-secret-file, --jwks-url or --jwt-public-key-file (without one, authentication is off)`,
    )
  }
  if (keySources.length === 0 && !config.insecure && !isLoopback(config.host)) {
    errors.push(
      `refusing to listen on ${config.host} without authentication: set JWT_SECRET, --jwt-secret-file, --jwks-url or --jwt-public-key-file, or pass --insecure to accept anyone who can reach it`,
    )
  }
  if (config.noWeb && config.webRoot !== undefined) errors.push('choose --web-root or --no-web, not both')
  errors.push(...storageContradictions(config))
  errors.push(...limitContradictions(resolveLimits(limitsOf(config))))
  if (errors.length > 0) return { ok: false, errors }
  return { ok: true, config }
}

/** The flag of a config key (`jwtIssuer` → `--jwt-issuer`). */
const flagOf = (key: keyof RelayConfig): string => Object.entries(FLAGS).find(([, spec]) => spec.key === key)?.[0] ?? key

/** What the command line says: flag values by name, whether help was asked for, and every syntax error. */
interface ParsedArgs {
  values: Record<string, string | boolean>
  help: boolean
  errors: string[]
}

/**
 * Parses argv strictly. When `parseArgs` refuses it (it stops at the first
 * problem), the tokens of a lenient pass name every problem, so one run
 * reports all of them, each naming its flag.
 */
const readArgs = (argv: readonly string[]): ParsedArgs => {
  try {
    const { values } = parseArgs({ args: [...argv], options: PARSE_OPTIONS, strict: true, allowPositionals: false })
    const { help, ...flags } = values as Record<string, string | boolean | undefined>
    return { values: flags as Record<string, string | boolean>, help: help === true, errors: [] }
  } catch {
    return describeArgErrors(argv)
  }
}

/** Every problem of a command line `parseArgs` refused in strict mode, in order, with the values that were fine. */
const describeArgErrors = (argv: readonly string[]): ParsedArgs => {
  const { tokens } = parseArgs({ args: [...argv], options: PARSE_OPTIONS, strict: false, allowPositionals: true, tokens: true })
  const result: ParsedArgs = { values: {}, help: false, errors: [] }
  for (const token of tokens) {
    if (token.kind === 'positional') {
      result.errors.push(`unexpected argument "${token.value}" (options start with --; see --help)`)
      continue
    }
    if (token.kind !== 'option') continue
    if (token.name === 'help' || token.name === 'h') {
      result.help = true
      continue
    }
    const spec = FLAGS[`--${token.name}`]
    if (!spec) {
      result.errors.push(`unknown option "${token.rawName}" (see --help)`)
      continue
    }
    if (spec.boolean) {
      if (token.inlineValue) result.errors.push(`${token.rawName} takes no value (got "${token.value}")`)
      else result.values[token.name] = true
      continue
    }
    if (token.value === undefined) result.errors.push(`${token.rawName} needs a value`)
    else if (!token.inlineValue && token.value.startsWith('-')) {
      result.errors.push(
        `${token.rawName} needs a value, but is followed by ${token.value} (write ${token.rawName}=${token.value} if that is the value)`,
      )
    } else result.values[token.name] = token.value
  }
  return result
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
