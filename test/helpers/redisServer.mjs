/**
 * A real Redis server for tests: `redis-server` (or `$REDIS_SERVER`) on
 * 127.0.0.1 on a free port, without persistence, in a temp dir; stopped and
 * removed by {@link RedisServer.destroy}. {@link RedisServer.stop} and
 * {@link RedisServer.start} take it away and bring it back on the same port.
 *
 * When the binary is missing, {@link redisUnavailable} says why, and suites
 * skip themselves with that message (CI installs it: `.ci/run`).
 *
 * Plain JavaScript (types in `redisServer.d.mts`) so that the benchmarks,
 * which run without a TypeScript loader, start their servers with it too.
 *
 * @module test/helpers/redisServer
 */

import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './postgresServer.mjs'

/** The Redis server binary. */
export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'

/** Why Redis tests cannot run here, or null when they can. */
export function redisUnavailable() {
  try {
    execFileSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' })
    return null
  } catch {
    return `Redis tests skipped: ${REDIS_SERVER} not found (install redis-server, or set REDIS_SERVER)`
  }
}

/** A Redis server in a temp dir. */
export class RedisServer {
  /** @type {import('node:child_process').ChildProcess | null} */
  #child = null

  /**
   * Use {@link RedisServer.start}.
   *
   * @param {string} dir temp dir the server runs in
   * @param {number} port TCP port on 127.0.0.1
   * @param {string | null} password what clients must authenticate with (`requirepass`), or null for none
   */
  constructor(dir, port, password = null) {
    this.dir = dir
    this.port = port
    this.password = password
  }

  /**
   * Starts a server on a free port.
   *
   * @param {{ password?: string }} [options] `password`: clients must authenticate with it
   */
  static async start(options = {}) {
    const server = new RedisServer(mkdtempSync(path.join(os.tmpdir(), 'concord-redis-')), await freePort(), options.password ?? null)
    await server.start()
    return server
  }

  /** `redis://127.0.0.1:PORT` (without the password) */
  get url() {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts the server (again) and waits until it accepts connections. */
  async start() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir]
    if (this.password !== null) args.push('--requirepass', this.password)
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    let output = ''
    await new Promise((resolve, reject) => {
      const onData = (chunk) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) resolve()
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready:\n${output}`)))
    })
  }

  /** Stops the server (SIGKILL: clients see their connections drop). */
  async stop() {
    const child = this.#child
    this.#child = null
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** Stops the server and removes its temp dir. */
  async destroy() {
    try {
      await this.stop()
    } finally {
      rmSync(this.dir, { recursive: true, force: true })
    }
  }
}
