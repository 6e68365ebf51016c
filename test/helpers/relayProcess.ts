/**
 * Starts a real relay process (`apps/relay/bundle/main.js`, what `npm start`
 * and the container run; `npm run build` makes it) for integration tests:
 * port 0, its own temp data dir, and the URL read from the `listening on …`
 * line it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const relayMain = path.join(repoRoot, 'apps/relay/bundle/main.js')

/**
 * Throws unless the bundle is at least as new as the last compile of the
 * relay and engine (`tsc -b` rewrites their build info when it emits), so a
 * test never runs an old relay.
 */
const assertBundleCurrent = (): void => {
  const mtime = (file: string): number => (existsSync(file) ? statSync(file).mtimeMs : -1)
  const built = mtime(relayMain)
  const compiled = Math.max(...['apps/relay', 'packages/engine'].map((p) => mtime(path.join(repoRoot, p, 'tsconfig.tsbuildinfo'))))
  if (built < compiled) {
    throw new Error(
      `${relayMain} is missing or older than the compiled relay: run \`npm run build\` (or \`node scripts/bundle-relay.mjs\`)`,
    )
  }
}

/** A relay child process. */
export interface RelayProcess {
  /** `http://127.0.0.1:PORT` */
  url: string
  /** `ws://127.0.0.1:PORT` */
  wsUrl: string
  dataDir: string
  child: ChildProcess
  /** Everything the process wrote to stdout / stderr so far. */
  output(): string
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>
  /** Resolves with the exit code once the process exited (sends nothing). */
  exited: Promise<number | null>
}

/** Creates a temp dir removed by {@link removeDir}. */
export const makeTempDir = (prefix = 'concord-test-'): string => mkdtempSync(path.join(os.tmpdir(), prefix))

/** Removes a temp dir. */
export const removeDir = (dir: string): void => rmSync(dir, { recursive: true, force: true })

/**
 * Starts a relay and resolves once it prints its URL. A relay that prints
 * none within `startTimeoutMs` (default 15 s) is killed and the promise rejects.
 */
export const startRelay = (
  options: {
    dataDir?: string
    args?: string[]
    env?: Record<string, string>
    startTimeoutMs?: number
    /** Options of node itself, before the relay's script (e.g. `--inspect=127.0.0.1:0`). */
    nodeArgs?: string[]
  } = {},
): Promise<RelayProcess> => {
  assertBundleCurrent()
  const dataDir = options.dataDir ?? makeTempDir()
  const relayArgs = [relayMain, '--port', '0', '--data', dataDir, '--log-level', 'warn', ...(options.args ?? [])]
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...relayArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const startTimeoutMs = options.startTimeoutMs ?? 15_000
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay did not start in ${startTimeoutMs / 1000} s:\n${out}`))
    }, startTimeoutMs)
    const onData = (chunk: Buffer): void => {
      out += chunk.toString()
      const match = /^listening on (http:\/\/\S+)$/m.exec(out)
      if (match) {
        clearTimeout(timer)
        const url = match[1]
        resolve({
          url,
          wsUrl: url.replace(/^http/, 'ws'),
          dataDir,
          child,
          output: () => out,
          exited,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
            return exited
          },
          kill: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
            await exited
          },
        })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${code} before listening:\n${out}`))
    })
  })
}

/** Runs the relay to completion with the given args (for config errors). */
export const runRelay = (
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    assertBundleCurrent()
    const child = spawn(process.execPath, [relayMain, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/** Resolves when `predicate` is true, checking on every tick of `interval` ms; rejects after `timeout`. */
export const waitFor = async (predicate: () => boolean, what: string, timeout = 10_000, interval = 10): Promise<void> => {
  const deadline = Date.now() + timeout
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, interval))
  }
}
