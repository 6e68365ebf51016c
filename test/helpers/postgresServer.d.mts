/** Types of postgresServer.mjs (a real PostgreSQL server for tests and benchmarks). */

/** Where the PostgreSQL 15 server binaries are. */
export declare const POSTGRES_BIN: string

/** Why PostgreSQL tests cannot run here, or null when they can. */
export declare function postgresUnavailable(): string | null

/** A TCP port nobody listens on right now. */
export declare function freePort(): Promise<number>

/** A PostgreSQL server in a temp dir. */
export declare class PostgresServer {
  /** Temp dir holding `data/`, `socket/` and `server.log`. */
  readonly dir: string
  /** TCP port on 127.0.0.1. */
  readonly port: number
  private constructor(dir: string, port: number)
  /** Creates the cluster (`initdb`, trust auth for `postgres`) and starts it on a free port. */
  static start(): Promise<PostgresServer>
  /** The cluster's data directory. */
  get dataDir(): string
  /** URL of database `name` (default `postgres`). */
  url(name?: string): string
  /** Starts the server (again) and waits until it accepts connections. */
  start(): Promise<void>
  /** Stops the server: `fast` (default) shuts down cleanly, `immediate` is like a crash. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(): Promise<string>
  /** Stops the server and removes its temp dir. */
  destroy(): Promise<void>
}
