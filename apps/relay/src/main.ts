#!/usr/bin/env node
/**
 * Entry point: the only module that reads `process.env` and argv. Validates
 * config once, opens storage, starts the relay, prints
 * `listening on http://HOST:PORT` on stdout, and shuts down gracefully on
 * SIGTERM / SIGINT.
 *
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration or
 * storage that cannot be opened.
 *
 * @module main
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { authConfigured, isLoopback, parseConfig, USAGE, type RelayConfig } from './config.js'
import { JwtAuthenticator } from './auth/JwtAuthenticator.js'
import type { Authenticator } from './auth/Authenticator.js'
import { createLogger } from './observability/logger.js'
import { createRelay } from './Relay.js'
import { MemoryStorage } from './storage/MemoryStorage.js'
import { SqliteStorage } from './storage/SqliteStorage.js'
import type { Storage } from './storage/Storage.js'

const main = async (): Promise<void> => {
  const result = parseConfig(process.argv.slice(2), process.env)
  if (result.ok === 'help') {
    process.stdout.write(USAGE + '\n')
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
    auth = createAuthenticator(config)
    if (auth instanceof JwtAuthenticator) await auth.ready()
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

  let storage: Storage
  try {
    storage =
      config.storage === 'memory'
        ? new MemoryStorage()
        : SqliteStorage.open(path.join(path.resolve(config.data), 'concord.sqlite'), {
            synchronous: config.sqliteSynchronous,
          })
  } catch (error) {
    process.stderr.write(`concord-relay: cannot open ${config.storage} storage in ${config.data}: ${(error as Error).message}\n`)
    process.exitCode = 2
    return
  }

  const relay = await createRelay({
    storage,
    port: config.port,
    host: config.host,
    logger: log,
    webRoot: config.webRoot ?? null,
    idleUnloadMs: config.idleUnloadMs,
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
    await storage.close().catch(() => undefined)
    process.stderr.write(`concord-relay: cannot listen on ${config.host}:${config.port}: ${error.message}\n`)
    process.exitCode = 1
    return null
  })
  if (!relay) return
  log.info(
    { url: relay.url, storage: storage.kind, data: config.storage === 'sqlite' ? path.resolve(config.data) : undefined },
    'relay listening',
  )
  let signals = 0
  const shutdown = (signal: string): void => {
    signals++
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    log.info({ signal }, 'signal received')
    const hardStop = setTimeout(() => {
      log.error('graceful shutdown did not finish in time; exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs + 5000)
    hardStop.unref()
    relay.close().then(
      () => process.exit(0),
      (error: unknown) => {
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

/** The authenticator the config asks for, or undefined for none. Throws with a clear message. */
const createAuthenticator = (config: RelayConfig): Authenticator | undefined => {
  if (!authConfigured(config)) return undefined
  const common = { issuer: config.jwtIssuer, audience: config.jwtAudience }
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
