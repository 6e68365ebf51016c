/**
 * Public surface of the relay package for embedding, tests and benchmarks.
 * @module @concord/relay
 */
export { createRelay, type Relay, type RelayOptions } from './Relay.js'
export { parseConfig, type RelayConfig } from './config.js'
export { createLogger, silentLogger, type Logger } from './observability/logger.js'
export { RelayMetrics } from './observability/metrics.js'
export type { Storage, StoredDoc, DocUpdates, AppendResult } from './storage/Storage.js'
export { MemoryStorage } from './storage/MemoryStorage.js'
export { SqliteStorage } from './storage/SqliteStorage.js'
