/**
 * Relay configuration: every limit has a flag and an environment variable,
 * flags win over the environment, and out-of-range values are refused.
 */
import { describe, expect, it } from 'vitest'
import { parseConfig, USAGE } from '../src/config.js'

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
  ['--max-queued-bytes', 'MAX_QUEUED_BYTES', 'maxQueuedBytes', 65536],
  ['--max-connections', 'MAX_CONNECTIONS', 'maxConnections', 100],
  ['--max-buffered-bytes', 'MAX_BUFFERED_BYTES', 'maxBufferedBytes', 65536],
  ['--apply-ms-per-second', 'APPLY_MS_PER_SECOND', 'applyMsPerSecond', 100],
  ['--apply-burst-ms', 'APPLY_BURST_MS', 'applyBurstMs', 500],
  ['--max-type-depth', 'MAX_TYPE_DEPTH', 'maxTypeDepth', 50],
  ['--max-key-conflicts', 'MAX_KEY_CONFLICTS', 'maxKeyConflicts', 50],
  ['--max-key-walk', 'MAX_KEY_WALK', 'maxKeyWalk', 5000],
  ['--max-awareness-entries', 'MAX_AWARENESS_ENTRIES', 'maxAwarenessEntries', 200],
  ['--max-awareness-ids', 'MAX_AWARENESS_IDS', 'maxAwarenessIds', 4],
]

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

  it('refuses values out of range with the flag name', () => {
    const result = parseConfig(['--max-connections', '0', '--max-queued-bytes', '12', '--max-unauthenticated-messages', 'many'], {})
    expect(result.ok).toBe(false)
    const errors = result.ok === false ? result.errors.join('\n') : ''
    expect(errors).toMatch(/--max-connections must be at least 1/)
    expect(errors).toMatch(/--max-queued-bytes must be at least 1024/)
    expect(errors).toMatch(/--max-unauthenticated-messages must be a whole number/)
  })
})
