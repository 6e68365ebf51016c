/** Types of redisServer.mjs (a real Redis server for tests and benchmarks). */

/** The Redis server binary. */
export declare const REDIS_SERVER: string

/** Why Redis tests cannot run here, or null when they can. */
export declare function redisUnavailable(): string | null

/** A Redis server in a temp dir. */
export declare class RedisServer {
  /** Temp dir the server runs in. */
  readonly dir: string
  /** TCP port on 127.0.0.1. */
  readonly port: number
  /** What clients must authenticate with, or null for none. */
  readonly password: string | null
  private constructor(dir: string, port: number, password?: string | null)
  /** Starts a server on a free port; with `password`, clients must authenticate with it. */
  static start(options?: { password?: string }): Promise<RedisServer>
  /** `redis://127.0.0.1:PORT` (without the password) */
  get url(): string
  /** Starts the server (again) and waits until it accepts connections. */
  start(): Promise<void>
  /** Stops the server (SIGKILL: clients see their connections drop). */
  stop(): Promise<void>
  /** Stops the server and removes its temp dir. */
  destroy(): Promise<void>
}
