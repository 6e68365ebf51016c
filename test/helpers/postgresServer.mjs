/**
 * A real PostgreSQL 15 server for tests: `initdb` and `pg_ctl` from
 * `/usr/lib/postgresql/15/bin` (or `$POSTGRES_BIN`) in a temp dir, listening
 * on 127.0.0.1 on a free port, with its socket in a dir it owns; stopped and
 * removed by {@link PostgresServer.destroy}.
 *
 * PostgreSQL refuses to run as root: as root, every command runs as the
 * `postgres` user (`runuser -u postgres --`), who owns the temp dir.
 *
 * When the binaries are missing, {@link postgresUnavailable} says why, and
 * suites skip themselves with that message (CI installs them: `.ci/run`).
 *
 * @example
 * ```ts
 * const pg = await PostgresServer.start()
 * const url = await pg.createDatabase() // a fresh, empty database
 * await pg.stop()  // the server goes away (connections fail)…
 * await pg.start() // …and comes back with the same data
 * await pg.destroy()
 * ```
 *
 * Plain JavaScript (types in `postgresServer.d.mts`) so that the benchmarks,
 * which run without a TypeScript loader, start their servers with it too.
 *
 * @module test/helpers/postgresServer
 */

import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

const run = promisify(execFile)

/** Where the PostgreSQL 15 server binaries are. */
export const POSTGRES_BIN = process.env.POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin'

/** Why PostgreSQL tests cannot run here, or null when they can. */
export function postgresUnavailable() {
  for (const tool of ['initdb', 'pg_ctl']) {
    if (!existsSync(path.join(POSTGRES_BIN, tool))) {
      return `PostgreSQL tests skipped: ${path.join(POSTGRES_BIN, tool)} not found (install postgresql 15, or set POSTGRES_BIN)`
    }
  }
  if (asRoot()) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' })
    } catch {
      return 'PostgreSQL tests skipped: running as root and there is no `postgres` user to run the server as'
    }
  }
  return null
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** True when this process runs as root (PostgreSQL then runs as `postgres`). */
const asRoot = () => process.getuid?.() === 0

/** Runs a PostgreSQL tool, as `postgres` when we are root. */
async function runTool(tool, args) {
  const file = path.join(POSTGRES_BIN, tool)
  const [command, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
  try {
    await run(command, argv, { timeout: 60_000 })
  } catch (error) {
    const { stdout, stderr } = error
    throw new Error(`${tool} ${args.join(' ')} failed: ${error.message}\n${stdout ?? ''}${stderr ?? ''}`, { cause: error })
  }
}

/** A PostgreSQL server in a temp dir. */
export class PostgresServer {
  /** Databases handed out so far (names are `test_1`, `test_2`…). */
  #databases = 0

  /**
   * Use {@link PostgresServer.start}.
   *
   * @param {string} dir temp dir holding `data/`, `socket/` and `server.log`
   * @param {number} port TCP port on 127.0.0.1
   */
  constructor(dir, port) {
    this.dir = dir
    this.port = port
  }

  /** Creates the cluster (`initdb`, trust auth for `postgres`) and starts it on a free port. */
  static async start() {
    const unavailable = postgresUnavailable()
    if (unavailable !== null) throw new Error(unavailable)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-pg-'))
    const server = new PostgresServer(dir, await freePort())
    try {
      if (asRoot()) {
        const { uid, gid } = await postgresIds()
        chownSync(dir, uid, gid)
      }
      await runTool('initdb', ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
      await server.start()
      return server
    } catch (error) {
      rmSync(dir, { recursive: true, force: true })
      throw error
    }
  }

  /** The cluster's data directory. */
  get dataDir() {
    return path.join(this.dir, 'data')
  }

  /** URL of database `name` (default `postgres`). */
  url(name = 'postgres') {
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`
  }

  /** Starts the server (again) and waits until it accepts connections. */
  async start() {
    const socketDir = this.dir
    await runTool('pg_ctl', [
      '-D',
      this.dataDir,
      '-l',
      path.join(this.dir, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${socketDir} -c max_connections=200`,
      'start',
    ])
  }

  /**
   * Stops the server. `fast` (default) ends every connection and shuts down
   * cleanly, so a restart is quick; `immediate` is like a crash (committed
   * data survives; the restart replays the WAL).
   */
  async stop(mode = 'fast') {
    // Also a server whose start was cut short: whatever wrote the pid file is stopped.
    if (!existsSync(path.join(this.dataDir, 'postmaster.pid'))) return
    await runTool('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']).catch((error) => {
      if (existsSync(path.join(this.dataDir, 'postmaster.pid'))) throw error
    })
  }

  /** Creates a fresh, empty database and returns its URL. */
  async createDatabase() {
    const name = `test_${++this.#databases}`
    const client = new pg.Client({ connectionString: this.url() })
    await client.connect()
    try {
      // FILE_COPY: the template's files are copied instead of written to the WAL, which keeps restarts quick.
      await client.query(`CREATE DATABASE ${name} STRATEGY FILE_COPY`)
    } finally {
      await client.end()
    }
    return this.url(name)
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

/** User and group id of the `postgres` user. */
async function postgresIds() {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])])
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) }
}
