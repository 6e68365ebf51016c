/**
 * Structured JSON logs (pino). The root logger is created once in `main.ts`;
 * rooms and connections take child loggers.
 *
 * @module observability/logger
 */
import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * Creates the relay's root logger. Query strings are stripped from logged
 * URLs by the callers; `redact` removes anything that looks like a credential.
 */
export const createLogger = (level: LogLevel, destination?: DestinationStream): Logger =>
  pino(
    {
      level,
      base: { service: 'concord-relay' },
      redact: { paths: ['token', '*.token', 'req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    destination,
  )

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger = (): Logger => pino({ level: 'silent' })
