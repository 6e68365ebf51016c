/**
 * Storage faults made by the operating system on a real relay process, for
 * `storage-faults.test.ts`:
 *
 * - {@link delayFsyncs}: `strace` attaches to the running relay (every thread,
 *   so the SQLite worker too) and delays the exit of each real `fsync` /
 *   `fdatasync` syscall — a slow disk, seen by SQLite exactly where it waits
 *   for durability. Detaching ends the fault.
 * - {@link mountExt4}: an ext4 file system of its own (an image file on a
 *   loop device, `errors=remount-ro`) that the kernel turns read-only under
 *   the running relay when told of a file system error
 *   (`/sys/fs/ext4/<dev>/trigger_fs_error`, as after a failing disk), then
 *   repaired (`umount`, `e2fsck`, `mount`) once the relay is stopped. A plain
 *   `mount -o remount,ro` cannot do this: Linux refuses it (EBUSY) while a
 *   process holds a file there open for writing, as the relay always does.
 * - {@link mountTmpfs}: a small tmpfs remounted read-only while no relay
 *   runs — a data dir the relay is started on read-only (as root, permission
 *   bits would not stop a write).
 *
 * All need privileges; {@link fsyncDelayUnavailable},
 * {@link mountUnavailable} and {@link ext4ErrorUnavailable} say why a fault
 * cannot be made here (null when it can), so the tests skip with that reason.
 *
 * @module test/reliability/lib/systemFaults
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, truncateSync, writeFileSync } from 'node:fs'
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

/** An ext4 file system on a loop device, mounted on a fresh temp dir. */
export interface Ext4Volume {
  /** Where it is mounted. */
  readonly dir: string
  /** Reports a file system error to the kernel: with `errors=remount-ro` it turns the mount read-only at once, open files included. */
  failReadOnly(): void
  /** Unmounts it (nothing may hold a file there open), repairs it with `e2fsck -fy` and mounts it read-write again. */
  repair(): void
  /** Unmounts it and removes the image. */
  remove(): void
}

/** Mounts a fresh ext4 image of `sizeMb` MiB (needs what {@link ext4ErrorUnavailable} checks). */
export const mountExt4 = (sizeMb: number): Ext4Volume => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'concord-ext4-'))
  const image = path.join(root, 'image')
  const dir = path.join(root, 'mnt')
  mkdirSync(dir)
  writeFileSync(image, '')
  truncateSync(image, sizeMb * 1024 * 1024)
  run('mkfs.ext4', ['-q', '-F', image])
  const mount = (): string => {
    run('mount', ['-o', 'loop,errors=remount-ro', image, dir])
    return path.basename(spawnSync('findmnt', ['-n', '-o', 'SOURCE', dir]).stdout.toString().trim())
  }
  let device = mount()
  return {
    dir,
    failReadOnly: () => writeFileSync(`/sys/fs/ext4/${device}/trigger_fs_error`, 'concord storage-fault test'),
    repair: () => {
      run('umount', [dir])
      // 0: clean, 1: errors corrected; anything else leaves it broken.
      const fsck = spawnSync('e2fsck', ['-f', '-y', image])
      if (fsck.status !== 0 && fsck.status !== 1) throw new Error(`e2fsck failed (${fsck.status}): ${fsck.stdout.toString()}`)
      device = mount()
    },
    remove: () => {
      spawnSync('umount', [dir])
      rmSync(root, { recursive: true, force: true })
    },
  }
}

/** Why {@link mountExt4} and its read-only fault cannot be made here, or null when they can. */
export const ext4ErrorUnavailable = (): string | null => {
  const cannotMount = mountUnavailable()
  if (cannotMount !== null) return cannotMount
  if (spawnSync('mkfs.ext4', ['-V']).error !== undefined) return 'mkfs.ext4 is not installed (e2fsprogs)'
  let volume: Ext4Volume
  try {
    volume = mountExt4(4)
  } catch (error) {
    return `cannot mount an ext4 image on a loop device here: ${(error as Error).message}`
  }
  try {
    const devices = readdirSync('/sys/fs/ext4').filter((name) => existsSync(`/sys/fs/ext4/${name}/trigger_fs_error`))
    return devices.length > 0 ? null : 'this kernel has no /sys/fs/ext4/<dev>/trigger_fs_error'
  } finally {
    volume.remove()
  }
}
