/**
 * Relay configuration: every limit has a flag and an environment variable,
 * flags win over the environment, and out-of-range values are refused.
 */
import { describe, expect, it } from 'vitest'
import { FLAGS, parseConfig, USAGE } from '../src/config.js'

const LIMIT_FLAGS: Array<[flag: string, env: string, key: string, value: number]> = [
  ['--max-payload', 'MAX_PAYLOAD', 'maxPayload', 65536],
  ['--max-docs-per-connection', 'MAX_DOCS_PER_CONNECTION', 'maxDocsPerConnection', 10],
  ['--messages-per-second', 'MESSAGES_PER_SECOND', 'messagesPerSecond', 10],
  ['--message-burst', 'MESSAGE_BURST', 'messageBurst', 20],
  ['--awareness-per-second', 'AWARENESS_PER_SECOND', 'awarenessPerSecond', 5],
  ['--max-awareness-bytes', 'MAX_AWARENESS_BYTES', 'maxAwarenessStateBytes', 2048],
  ['--max-doc-bytes', 'MAX_DOC_BYTES', 'maxDocBytes', 4096],
  ['--max-unauthenticated-messages', 'MAX_UNAUTHENTICATED_MESSAGES', 'maxUnauthenticatedMessages', 4],
  ['--auth-timeout-ms', 'AUTH_TIMEOUT_MS', 'authTimeoutMs', 500],
  ['--max-queued-bytes', 'MAX_QUEUED_BYTES', 'maxQueuedBytes', 2 * 1024 * 1024],
  ['--max-connections', 'MAX_CONNECTIONS', 'maxConnections', 100],
  ['--max-buffered-bytes', 'MAX_BUFFERED_BYTES', 'maxBufferedBytes', 4 * 1024 * 1024],
  ['--apply-ms-per-second', 'APPLY_MS_PER_SECOND', 'applyMsPerSecond', 100],
  ['--apply-burst-ms', 'APPLY_BURST_MS', 'applyBurstMs', 500],
  ['--max-type-depth', 'MAX_TYPE_DEPTH', 'maxTypeDepth', 50],
  ['--max-key-conflicts', 'MAX_KEY_CONFLICTS', 'maxKeyConflicts', 50],
  ['--max-key-walk', 'MAX_KEY_WALK', 'maxKeyWalk', 5000],
  ['--max-unauthenticated-connections', 'MAX_UNAUTHENTICATED_CONNECTIONS', 'maxUnauthenticatedConnections', 20],
  ['--max-unauthenticated-per-address', 'MAX_UNAUTHENTICATED_PER_ADDRESS', 'maxUnauthenticatedPerAddress', 5],
  ['--connections-per-address-per-second', 'CONNECTIONS_PER_ADDRESS_PER_SECOND', 'connectionsPerAddressPerSecond', 5],
  ['--connection-burst-per-address', 'CONNECTION_BURST_PER_ADDRESS', 'connectionBurstPerAddress', 50],
  ['--max-preauth-queued-bytes', 'MAX_PREAUTH_QUEUED_BYTES', 'maxPreAuthQueuedBytes', 8192],
  ['--header-timeout-ms', 'HEADER_TIMEOUT_MS', 'headerTimeoutMs', 2000],
  ['--max-incomplete-requests', 'MAX_INCOMPLETE_REQUESTS', 'maxIncompleteRequests', 50],
  ['--max-connections-per-user', 'MAX_CONNECTIONS_PER_USER', 'maxConnectionsPerUser', 5],
  ['--max-docs-per-user', 'MAX_DOCS_PER_USER', 'maxDocsPerUser', 100],
  ['--work-ms-per-second', 'WORK_MS_PER_SECOND', 'workMsPerSecond', 100],
  ['--work-burst-ms', 'WORK_BURST_MS', 'workBurstMs', 1000],
  ['--initial-sync-chunk-bytes', 'INITIAL_SYNC_CHUNK_BYTES', 'initialSyncChunkBytes', 65536],
  ['--max-initial-sync-bytes', 'MAX_INITIAL_SYNC_BYTES', 'maxInitialSyncBytes', 128 * 1024 * 1024],
  ['--max-awareness-entries', 'MAX_AWARENESS_ENTRIES', 'maxAwarenessEntries', 200],
  ['--max-awareness-ids', 'MAX_AWARENESS_IDS', 'maxAwarenessIds', 4],
  ['--max-awareness-bytes-per-connection', 'MAX_AWARENESS_BYTES_PER_CONNECTION', 'maxAwarenessBytesPerConnection', 65536],
]

describe('--trusted-proxies', () => {
  it('takes addresses and CIDR ranges, from the flag or TRUSTED_PROXIES', () => {
    const fromFlag = parseConfig(['--trusted-proxies', '10.0.0.0/8, ::1'], {})
    expect(fromFlag.ok === true && fromFlag.config.trustedProxies).toEqual(['10.0.0.0/8', '::1'])
    const fromEnv = parseConfig([], { TRUSTED_PROXIES: '127.0.0.1' })
    expect(fromEnv.ok === true && fromEnv.config.trustedProxies).toEqual(['127.0.0.1'])
  })

  it('refuses host names and bad ranges with a clear message', () => {
    const result = parseConfig(['--trusted-proxies', 'proxy.local,10.0.0.0/40'], {})
    expect(result.ok).toBe(false)
    expect(result.ok === false && result.errors.join('\n')).toMatch(/--trusted-proxies entries are IP addresses or CIDR ranges/)
  })
})

describe('limit options', () => {
  for (const [flag, env, key, value] of LIMIT_FLAGS) {
    it(`${flag} / ${env}`, () => {
      const fromFlag = parseConfig([flag, String(value)], {})
      expect(fromFlag.ok === true && fromFlag.config[key as keyof typeof fromFlag.config]).toBe(value)
      const fromEnv = parseConfig([], { [env]: String(value) })
      expect(fromEnv.ok === true && fromEnv.config[key as keyof typeof fromEnv.config]).toBe(value)
      const both = parseConfig([`${flag}=${value}`], { [env]: String(value + 1) })
      expect(both.ok === true && both.config[key as keyof typeof both.config]).toBe(value)
      expect(USAGE).toContain(`${flag}`)
      expect(USAGE).toContain(`[${env}]`)
    })
  }

  it('--sqlite-cache-mb / SQLITE_CACHE_MB: 16 by default, a positive whole number of MiB', () => {
    const byDefault = parseConfig([], {})
    expect(byDefault.ok === true && byDefault.config.sqliteCacheMb).toBe(16)
    const fromFlag = parseConfig(['--sqlite-cache-mb', '64'], { SQLITE_CACHE_MB: '8' })
    expect(fromFlag.ok === true && fromFlag.config.sqliteCacheMb).toBe(64)
    const fromEnv = parseConfig([], { SQLITE_CACHE_MB: '8' })
    expect(fromEnv.ok === true && fromEnv.config.sqliteCacheMb).toBe(8)
    const zero = parseConfig(['--sqlite-cache-mb', '0'], {})
    expect(zero.ok === false && zero.errors.join('\n')).toMatch(/--sqlite-cache-mb must be at least 1/)
  })

  it('refuses values out of range with the flag name', () => {
    const result = parseConfig(['--max-connections', '0', '--max-queued-bytes', '12', '--max-unauthenticated-messages', 'many'], {})
    expect(result.ok).toBe(false)
    const errors = result.ok === false ? result.errors.join('\n') : ''
    expect(errors).toMatch(/--max-connections must be at least 1/)
    expect(errors).toMatch(/--max-queued-bytes must be at least 1024/)
    expect(errors).toMatch(/--max-unauthenticated-messages must be a whole number/)
  })

  it('refuses limits that contradict each other, naming both', () => {
    const errorsOf = (argv: string[]): string => {
      const result = parseConfig(argv, {})
      return result.ok === false ? result.errors.join('\n') : ''
    }
    expect(errorsOf(['--max-queued-bytes', '65536'])).toMatch(/--max-queued-bytes \(65536\) is below --max-payload \(1048576\)/)
    expect(errorsOf(['--max-buffered-bytes', '1048576'])).toMatch(/--max-buffered-bytes \(1048576\) is below twice --max-payload/)
    expect(errorsOf(['--initial-sync-chunk-bytes', '2097152'])).toMatch(/--initial-sync-chunk-bytes \(2097152\) is above --max-payload/)
    expect(
      errorsOf([
        '--max-payload',
        '65536',
        '--max-buffered-bytes',
        '131072',
        '--initial-sync-chunk-bytes',
        '65536',
        '--max-doc-bytes',
        '4096',
        '--max-initial-sync-bytes',
        '32768',
      ]),
    ).toMatch(/--max-initial-sync-bytes \(32768\) is below --initial-sync-chunk-bytes/)
    expect(errorsOf(['--max-doc-bytes', String(512 * 1024 * 1024)])).toMatch(
      /--max-doc-bytes \(536870912\) is above --max-initial-sync-bytes/,
    )
    // the defaults fit together, and a small --max-payload brings the chunk size down with it
    expect(parseConfig([], {}).ok).toBe(true)
    expect(parseConfig(['--max-payload', '65536'], {}).ok).toBe(true)
  })
})

describe('strict flag parsing', () => {
  const errorsOf = (argv: string[]): string => {
    const result = parseConfig(argv, {})
    return result.ok === false ? result.errors.join('\n') : ''
  }

  it('a flag that needs a value followed by another flag is an error naming it, not a value', () => {
    expect(errorsOf(['--web-root', '--port', '9000'])).toMatch(/--web-root needs a value, but is followed by --port/)
    expect(errorsOf(['--port'])).toMatch(/--port needs a value/)
    const explicit = parseConfig(['--web-root=--odd-folder-name'], {})
    expect(explicit.ok === true && explicit.config.webRoot).toBe('--odd-folder-name')
  })

  it('names unknown flags, values given to switches and stray arguments, all in one run', () => {
    const errors = errorsOf(['--bogus', '--insecure=yes', 'stray', '--port', 'eighty'])
    expect(errors).toMatch(/unknown option "--bogus"/)
    expect(errors).toMatch(/--insecure takes no value/)
    expect(errors).toMatch(/unexpected argument "stray"/)
    expect(errors).toMatch(/--port must be a whole number/)
  })

  it('switches come from the flag or their variable set to 1', () => {
    const flag = parseConfig(['--no-web'], {})
    expect(flag.ok === true && flag.config.noWeb).toBe(true)
    const env = parseConfig([], { NO_WEB: '1' })
    expect(env.ok === true && env.config.noWeb).toBe(true)
    expect(errorsOf(['--no-web', '--web-root', 'dist'])).toMatch(/choose --web-root or --no-web/)
  })

  it('--help describes every flag on one line with its variable and default, and names every key source', () => {
    expect(parseConfig(['--help'], {}).ok).toBe('help')
    expect(parseConfig(['-h'], {}).ok).toBe('help')
    const lines = USAGE.split('\n')
    for (const [flag, spec] of Object.entries(FLAGS)) {
      const line = lines.find((l) => l.trimStart().startsWith(`${flag} `))
      expect(line, flag).toBeDefined()
      expect(line).toContain(`[${spec.env}]`)
      expect(line!.length, flag).toBeGreaterThan(flag.length + spec.env.length + 12)
    }
    expect(lines.find((l) => l.trimStart().startsWith('--port '))).toContain('(default: 8787)')
    expect(lines.find((l) => l.trimStart().startsWith('--max-connections '))).toContain('(default: 10000)')
    for (const source of ['JWT_SECRET', '--jwt-secret-file', '--jwks-url', '--jwt-public-key-file']) expect(USAGE).toContain(source)
    expect(USAGE).toMatch(/apps\/web\/dist/)
  })
})

describe('--storage postgres', () => {
  it('takes the database URL from --database-url or DATABASE_URL', () => {
    const url = 'postgres://concord:secret@db:5432/concord'
    const fromEnv = parseConfig(['--storage', 'postgres'], { DATABASE_URL: url })
    expect(fromEnv.ok === true && fromEnv.config).toMatchObject({ storage: 'postgres', databaseUrl: url })
    const fromFlag = parseConfig(['--storage=postgres', '--database-url', 'postgresql://db/concord'], { DATABASE_URL: url })
    expect(fromFlag.ok === true && fromFlag.config.databaseUrl).toBe('postgresql://db/concord')
    expect(USAGE).toContain('--database-url')
    expect(USAGE).toContain('[DATABASE_URL]')
  })

  it('refuses a missing or malformed URL; other storages ignore DATABASE_URL', () => {
    const errorsOf = (argv: string[], env: Record<string, string> = {}): string => {
      const result = parseConfig(argv, env)
      return result.ok === false ? result.errors.join('\n') : ''
    }
    expect(errorsOf(['--storage', 'postgres'])).toMatch(/--storage postgres needs --database-url or DATABASE_URL/)
    expect(errorsOf(['--storage', 'postgres', '--database-url', 'db:5432'])).toMatch(/--database-url must be a postgres:\/\/ URL/)
    expect(parseConfig([], { DATABASE_URL: 'mysql://another-app/db' }).ok).toBe(true)
    expect(errorsOf(['--storage', 'mongo'])).toMatch(/--storage must be "sqlite", "memory" or "postgres"/)
  })
})

describe('token settings and values named in errors', () => {
  const errorsOf = (argv: string[], env: Record<string, string> = {}): string => {
    const result = parseConfig(argv, env)
    return result.ok === false ? result.errors.join('\n') : ''
  }

  it('--jwt-algorithm, --jwt-issuer or --jwt-audience without a key to verify tokens with is an error naming them', () => {
    expect(errorsOf(['--jwt-algorithm', 'ES256'])).toMatch(/^--jwt-algorithm needs a key to verify tokens with: set JWT_SECRET/)
    expect(errorsOf([], { JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'concord' })).toMatch(
      /^--jwt-issuer, --jwt-audience need a key to verify tokens with/,
    )
    expect(errorsOf(['--jwt-issuer', 'foo'], { JWT_SECRET: 'x'.repeat(32) })).toBe('')
    expect(errorsOf(['--jwt-algorithm', 'ES256', '--jwt-public-key-file', 'key.pem'])).toBe('')
  })

  it('a switch variable accepts 1, 0, true and false, and the error lists them with the value refused', () => {
    for (const value of ['1', 'true']) expect(parseConfig([], { INSECURE: value }).ok).toBe(true)
    expect(errorsOf([], { INSECURE: 'no' })).toBe('INSECURE must be 1, 0, true or false (got "no")')
  })

  it('--allowed-origins names the entry it refuses', () => {
    expect(errorsOf(['--allowed-origins', 'https://ok.example.com, app.example.com/x'])).toBe(
      '--allowed-origins entry "app.example.com/x" is not an origin: entries look like https://app.example.com (no path)',
    )
  })

  it('--max-awareness-entries is described as a limit per message', () => {
    expect(USAGE.split('\n').find((l) => l.trimStart().startsWith('--max-awareness-entries '))).toMatch(/one message/)
  })
})
