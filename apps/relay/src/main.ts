#!/usr/bin/env node
/**
 * Entry point: the only module that reads `process.env` and argv.
 *
 * `concord-relay <command> …` (a first argument that is not a flag) runs
 * that admin command of `cli/commands` and exits with its code.
 *
 * Otherwise it validates config once, opens storage, starts the relay,
 * prints `listening on http://HOST:PORT` on stdout, and shuts down gracefully
 * on SIGTERM / SIGINT. With SQLite storage it holds the data dir
 * (`relay.lock`, see `cli/relayLock`) while it runs, so the commands that
 * change the database refuse to run meanwhile, and a second relay on this
 * machine refuses to start on it (exit 2). Without `--web-root` it
 * serves the web app built next to this package (`apps/web/dist`) when there
 * is one; `--no-web` turns that off.
 *
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration or
 * storage that cannot be opened.
 *
 * @module main
 */
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { authConfigured, isLoopback, parseConfig, USAGE, type RelayConfig } from './config.js'
import type { JwtAuthenticator } from './auth/JwtAuthenticator.js'
import type { Authenticator } from './auth/Authenticator.js'
import { createLogger, type Logger } from './observability/logger.js'
import { createRelay } from './Relay.js'
import { MemoryStorage } from './storage/MemoryStorage.js'
import type { Cluster, ClusterStore } from './cluster/Cluster.js'
import type { SharedWebhookStore } from './webhooks/WebhookSubscriptions.js'
import { SqliteOpenError } from './storage/SqliteDatabase.js'
import { SQLITE_SCHEMA_VERSION, SqliteStorage } from './storage/SqliteStorage.js'
import type { Storage } from './storage/Storage.js'
import { holdDataDir, LOCK_FILE, RelayRunningError, relayHolding } from './cli/relayLock.js'

/** A signal within this long after the first is the same stop delivered twice, not a second request to exit at once. */
const REPEATED_SIGNAL_MS = 1000

/** The web app's build output next to this package (`apps/web/dist` in the repository and in the container image). */
const BUILT_WEB_APP = fileURLToPath(new URL('../../web/dist', import.meta.url))

const main = async (): Promise<void> => {
  const [first, ...rest] = process.argv.slice(2)
  if (first !== undefined && !first.startsWith('-')) {
    // the admin commands (and what they use: jose, the exporters) load only when one is run
    const { runCommand } = await import('./cli/commands.js')
    process.exitCode = await runCommand(first, rest, process.env)
    return
  }
  const result = parseConfig(process.argv.slice(2), process.env)
  if (result.ok === 'help') {
    const { COMMANDS_USAGE } = await import('./cli/commands.js')
    process.stdout.write(`${USAGE}\n\nCommands (concord-relay <command> --help tells more):\n${COMMANDS_USAGE}\n`)
    return
  }
  if (!result.ok) {
    for (const error of result.errors) process.stderr.write(`concord-relay: ${error}\n`)
    process.exitCode = 2
    return
  }
  const config = result.config
  const log = createLogger(config.logLevel)

  let auth: Authenticator | undefined
  try {
    const jwt = await createAuthenticator(config, log)
    await jwt?.ready()
    auth = jwt
  } catch (error) {
    process.stderr.write(`concord-relay: ${(error as Error).message}\n`)
    process.exitCode = 2
    return
  }
  if (!auth) {
    const exposure = isLoopback(config.host)
      ? `only this machine can connect (${config.host})`
      : `anyone who can reach ${config.host}:${config.port} can read and write every doc (--insecure)`
    log.warn({ host: config.host }, `authentication is off: ${exposure}`)
    process.stderr.write(`concord-relay: authentication is off: ${exposure}\n`)
  }

  const webRoot = webRootOf(config)
  // Another relay on this machine using the same SQLite file: refuse before touching it (see cli/relayLock).
  if (config.storage === 'sqlite') {
    const holder = relayHolding(path.resolve(config.data))
    if (holder !== null && holder.host === os.hostname()) {
      process.stderr.write(
        `concord-relay: ${new RelayRunningError(path.resolve(config.data), 'start another relay on it', holder).message}\n`,
      )
      process.exitCode = 2
      return
    }
  }
  let storage: Storage
  let releaseDataDir = (): void => undefined
  /** The storage shared with other relay instances (PostgreSQL), which the cluster layer reads from and webhook subscriptions live in. */
  let shared: (ClusterStore & SharedWebhookStore) | null = null
  try {
    if (config.storage === 'postgres') {
      // Loaded only here: a relay on SQLite never loads pg (nor ioredis, below).
      const { PostgresStorage } = await import('./storage/PostgresStorage.js')
      // Connects and checks the schema now: an unreachable server or a wrong URL stops the start.
      storage = shared = await PostgresStorage.open(config.databaseUrl!)
    } else {
      storage =
        config.storage === 'memory'
          ? new MemoryStorage()
          : SqliteStorage.open(path.join(path.resolve(config.data), 'concord.sqlite'), {
              synchronous: config.sqliteSynchronous,
              cacheMb: config.sqliteCacheMb,
            })
    }
  } catch (error) {
    // PostgresStorage's errors say where already (password hidden); SQLite's name the file, the data dir comes first.
    const message =
      config.storage === 'postgres'
        ? (error as Error).message
        : `cannot open ${config.storage} storage in ${config.data}: ${error instanceof SqliteOpenError ? error.reason : (error as Error).message}`
    process.stderr.write(`concord-relay: ${message}\n`)
    process.exitCode = 2
    return
  }
  if (storage instanceof SqliteStorage && storage.upgradedFrom !== null) {
    log.info(
      { file: storage.file, from: storage.upgradedFrom, to: SQLITE_SCHEMA_VERSION },
      `upgraded the SQLite schema from version ${storage.upgradedFrom} to ${SQLITE_SCHEMA_VERSION}: relays older than this one refuse the file now`,
    )
  }
  if (config.storage === 'sqlite') {
    const dataDir = path.resolve(config.data)
    try {
      releaseDataDir = holdDataDir(dataDir, (holder) =>
        log.warn(
          { holder },
          holder.pid === 0
            ? `replaced an unreadable ${LOCK_FILE} (cut short by a crash)`
            : `replaced ${LOCK_FILE} of a relay on another host: make sure it no longer runs on this data dir`,
        ),
      )
    } catch (error) {
      await storage.close().catch(() => undefined)
      const message =
        error instanceof RelayRunningError ? error.message : `cannot write ${LOCK_FILE} in ${dataDir}: ${(error as Error).message}`
      process.stderr.write(`concord-relay: ${message}\n`)
      process.exitCode = 2
      return
    }
  }

  // Several instances on one PostgreSQL database: live fan-out between them through Redis.
  let cluster: Cluster | undefined
  if (shared !== null && config.redisUrl !== undefined) {
    const [{ Cluster }, { redactUrl }] = await Promise.all([import('./cluster/Cluster.js'), import('./storage/PostgresStorage.js')])
    cluster = new Cluster(shared, { redisUrl: config.redisUrl, logger: log })
    try {
      await cluster.ready()
    } catch (error) {
      process.stderr.write(`concord-relay: cannot reach Redis at ${redactUrl(config.redisUrl)}: ${(error as Error).message}\n`)
      await cluster.close()
      await storage.close()
      process.exitCode = 2
      return
    }
  }

  const relay = await createRelay({
    storage,
    cluster,
    port: config.port,
    host: config.host,
    logger: log,
    webRoot,
    // webhook subscriptions live next to the data they watch: in the data folder, or in PostgreSQL for every instance
    // (which imports a file an earlier relay left in the data folder)
    webhooks: {
      file: config.storage === 'memory' ? null : path.join(path.resolve(config.data), 'webhooks.json'),
      shared,
    },
    idleUnloadMs: config.idleUnloadMs,
    dormantAfterMs: config.dormantAfterMs,
    auth,
    allowedOrigins: config.allowedOrigins,
    limits: {
      maxPayload: config.maxPayload,
      maxDocsPerConnection: config.maxDocsPerConnection,
      maxCatalogWatchesPerConnection: config.maxCatalogWatchesPerConnection,
      messagesPerSecond: config.messagesPerSecond,
      messageBurst: config.messageBurst,
      awarenessPerSecond: config.awarenessPerSecond,
      maxAwarenessStateBytes: config.maxAwarenessStateBytes,
      maxDocBytes: config.maxDocBytes,
      authTimeoutMs: config.authTimeoutMs,
      maxUnauthenticatedMessages: config.maxUnauthenticatedMessages,
      maxQueuedBytes: config.maxQueuedBytes,
      maxConnections: config.maxConnections,
      maxBufferedBytes: config.maxBufferedBytes,
      applyMsPerSecond: config.applyMsPerSecond,
      applyBurstMs: config.applyBurstMs,
      maxTypeDepth: config.maxTypeDepth,
      maxKeyConflicts: config.maxKeyConflicts,
      maxKeyWalk: config.maxKeyWalk,
      maxUnauthenticatedConnections: config.maxUnauthenticatedConnections,
      maxUnauthenticatedPerAddress: config.maxUnauthenticatedPerAddress,
      connectionsPerAddressPerSecond: config.connectionsPerAddressPerSecond,
      connectionBurstPerAddress: config.connectionBurstPerAddress,
      maxPreAuthQueuedBytes: config.maxPreAuthQueuedBytes,
      headerTimeoutMs: config.headerTimeoutMs,
      maxIncompleteRequests: config.maxIncompleteRequests,
      maxConnectionsPerUser: config.maxConnectionsPerUser,
      maxDocsPerUser: config.maxDocsPerUser,
      workMsPerSecond: config.workMsPerSecond,
      workBurstMs: config.workBurstMs,
      initialSyncChunkBytes: config.initialSyncChunkBytes,
      maxInitialSyncBytes: config.maxInitialSyncBytes,
      maxAwarenessEntries: config.maxAwarenessEntries,
      maxAwarenessIds: config.maxAwarenessIds,
      maxAwarenessBytesPerConnection: config.maxAwarenessBytesPerConnection,
    },
    trustedProxies: config.trustedProxies,
    commit: {
      checkpointUpdates: config.checkpointUpdates,
      checkpointBytes: config.checkpointBytes,
      commitDelayMs: config.commitDelayMs,
    },
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  }).catch(async (error: Error) => {
    await cluster?.close()
    await storage.close().catch(() => undefined)
    releaseDataDir()
    process.stderr.write(`concord-relay: cannot listen on ${config.host}:${config.port}: ${error.message}\n`)
    process.exitCode = 1
    return null
  })
  if (!relay) return
  log.info(
    { url: relay.url, storage: storage.kind, data: config.storage === 'sqlite' ? path.resolve(config.data) : undefined, webRoot },
    webRoot === null ? 'relay listening (no web app)' : `relay listening, serving the web app from ${webRoot}`,
  )
  let firstSignalAt: number | null = null
  const shutdown = (signal: string): void => {
    if (firstSignalAt !== null) {
      // The same stop delivered twice — a terminal's Ctrl-C reaches a wrapper script too, which forwards it; systemd
      // signals every process of the unit — is no second request: only one a person makes after a moment is.
      if (performance.now() - firstSignalAt < REPEATED_SIGNAL_MS) return
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    firstSignalAt = performance.now()
    log.info({ signal }, 'signal received')
    const hardStop = setTimeout(() => {
      log.error('graceful shutdown did not finish in time; exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs + 5000)
    hardStop.unref()
    relay.close().then(
      () => {
        releaseDataDir()
        process.exit(0)
      },
      (error: unknown) => {
        releaseDataDir()
        log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  // Only now: whoever waits for this line may send SIGTERM at once, and it must find the handler.
  process.stdout.write(`listening on ${relay.url}\n`)
}

/** The folder of the web app to serve: `--web-root`, else the built app next to this package if there is one; null with `--no-web`. */
const webRootOf = (config: RelayConfig): string | null => {
  if (config.noWeb) return null
  if (config.webRoot !== undefined) return path.resolve(config.webRoot)
  return existsSync(path.join(BUILT_WEB_APP, 'index.html')) ? BUILT_WEB_APP : null
}

/** The authenticator the config asks for, or undefined for none (then jose is not loaded). Throws with a clear message. */
const createAuthenticator = async (config: RelayConfig, logger: Logger): Promise<JwtAuthenticator | undefined> => {
  if (!authConfigured(config)) return undefined
  const { JwtAuthenticator } = await import('./auth/JwtAuthenticator.js')
  const common = { issuer: config.jwtIssuer, audience: config.jwtAudience, logger }
  if (config.jwtSecret) return new JwtAuthenticator({ key: { kind: 'secret', secret: config.jwtSecret }, ...common })
  if (config.jwtSecretFile) {
    const secret = readText(config.jwtSecretFile, '--jwt-secret-file').trim()
    return new JwtAuthenticator({ key: { kind: 'secret', secret }, ...common })
  }
  if (config.jwksUrl) return new JwtAuthenticator({ key: { kind: 'jwks', url: config.jwksUrl }, ...common })
  const pem = readText(config.jwtPublicKeyFile!, '--jwt-public-key-file')
  return new JwtAuthenticator({ key: { kind: 'public-key', pem, algorithm: config.jwtAlgorithm }, ...common })
}

const readText = (file: string, flag: string): string => {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(`${flag}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`concord-relay: ${(error as Error).stack ?? String(error)}\n`)
  process.exit(1)
})
