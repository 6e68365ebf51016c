/**
 * Storage faults made by the operating system on a real relay process, for
 * `storage-faults.test.ts`:
 *
 * - {@link delayFsyncs}: `strace` attaches to the running relay (every thread,
 *   so the SQLite worker too) and delays the exit of each real `fsync` /
 *   `fdatasync` syscall — a slow disk, seen by SQLite exactly where it waits
 *   for durability. Detaching ends the fault.
 * - {@link mountTmpfs}: a small tmpfs of its own, remounted read-only and
 *   read-write while the relay runs — a data dir whose file system turned
 *   read-only (as root, permission bits would not stop a write).
 *
 * Both need privileges; {@link fsyncDelayUnavailable} and
 * {@link mountUnavailable} say why a fault cannot be made here (null when
 * it can), so the tests skip with that reason.
 *
 * @module test/reliability/lib/systemFaults
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, rmdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** Why fsyncs cannot be delayed here, or null when they can (strace present, ptrace permitted). */
export const fsyncDelayUnavailable = (): string | null => {
  const probe = spawnSync('strace', ['-o', '/dev/null', '-e', 'trace=fsync', 'true'])
  if (probe.error !== undefined) return 'strace is not installed'
  if (probe.status !== 0) return `strace cannot trace here (ptrace not permitted?): ${probe.stderr.toString().trim()}`
  return null
}

/** The syscalls strace's log `log` reports delayed (0 when there is no log). */
const countDelayed = (log: string): number => {
  try {
    return readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line.includes('(DELAYED)')).length
  } catch {
    return 0
  }
}

/** An fsync delay in force on a process; {@link FsyncDelay.stop} ends it. */
export interface FsyncDelay {
  /** How many fsync / fdatasync calls were delayed (read from strace's log; complete once stopped). */
  readonly delayed: () => number
  /** Detaches strace (SIGINT): syscalls run at full speed again. */
  stop(): Promise<void>
}

/**
 * Attaches `strace` to `pid` and all its threads, delaying the return of
 * every `fsync` and `fdatasync` by `delayMs`. Resolves once strace reports
 * the process attached; rejects when it exits before (ptrace refused).
 */
export const delayFsyncs = (pid: number, delayMs: number): Promise<FsyncDelay> => {
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'concord-strace-'))
  const log = path.join(logDir, 'fsyncs.log')
  const child: ChildProcess = spawn(
    'strace',
    ['-f', '-p', String(pid), '-o', log, '-e', 'trace=fsync,fdatasync', '-e', `inject=fsync,fdatasync:delay_exit=${delayMs * 1000}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let errors = ''
  let delayed = 0
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      delayed = countDelayed(log)
      rmSync(logDir, { recursive: true, force: true })
      resolve()
    }),
  )
  return new Promise((resolve, reject) => {
    const onExit = (): void => reject(new Error(`strace exited before attaching: ${errors}`))
    child.once('exit', onExit)
    child.stderr!.on('data', (chunk: Buffer) => {
      errors += chunk.toString()
      if (!/Process \d+ attached/.test(errors)) return
      child.off('exit', onExit)
      resolve({
        delayed: () => (child.exitCode === null && child.signalCode === null ? countDelayed(log) : delayed),
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
          await exited
        },
      })
    })
  })
}

/** Why a file system cannot be mounted here, or null when it can (root with CAP_SYS_ADMIN). */
export const mountUnavailable = (): string | null => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-mount-probe-'))
  try {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir])
    if (mounted.error !== undefined) return 'mount is not installed'
    if (mounted.status !== 0) return `cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): ${mounted.stderr.toString().trim()}`
    spawnSync('umount', [dir])
    return null
  } finally {
    rmdirSync(dir)
  }
}

/** A tmpfs mounted on a fresh temp dir. */
export interface MountedDir {
  /** Where it is mounted. */
  readonly dir: string
  /** `mount -o remount,ro` (`true`) or `remount,rw` (`false`). */
  readOnly(readOnly: boolean): void
  /** Unmounts it and removes the mount point. */
  remove(): void
}

/** Runs `mount`/`umount` with `args`; throws with its message when it fails. */
const run = (command: string, args: string[]): void => {
  const result = spawnSync(command, args)
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr.toString().trim()}`)
}

/** Mounts a tmpfs of `sizeMb` MiB on a fresh temp dir (needs what {@link mountUnavailable} checks). */
export const mountTmpfs = (sizeMb: number): MountedDir => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-tmpfs-'))
  run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir])
  return {
    dir,
    readOnly: (readOnly) => run('mount', ['-o', readOnly ? 'remount,ro' : 'remount,rw', dir]),
    remove: () => {
      spawnSync('umount', ['-l', dir])
      rmdirSync(dir)
    },
  }
}
