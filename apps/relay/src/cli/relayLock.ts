/**
 * How the admin commands know that a relay is using a data dir: a running
 * relay keeps `relay.lock` in it, a JSON file with its process id, host name
 * and start time. The relay writes it when it opens SQLite storage and
 * removes it when it stops. A relay killed with `kill -9` leaves it behind;
 * the file then names a process that no longer exists, which
 * {@link relayHolding} sees (on the same host) and ignores.
 *
 * On another host (a second container sharing the volume), the process
 * cannot be checked: for the commands the lock counts as held, and the error
 * says to delete the file once no relay runs; a relay starting replaces it
 * with a warning (a container recreated after a crash has a new host name).
 * A relay does not start while another relay on the same host holds the dir
 * ({@link holdDataDir}).
 *
 * This is advisory, for people: commands that change the database
 * (`restore`, `import`, `compact`) refuse while a relay holds the dir,
 * because a running relay keeps loaded docs in memory and would not see, or
 * would later overwrite, what they wrote. Reading (`backup`, `export`,
 * `inspect`) is safe while a relay runs.
 *
 * @module cli/relayLock
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** Name of the lock file inside the data dir. */
export const LOCK_FILE = 'relay.lock'

/** What `relay.lock` holds. */
export interface RelayLockInfo {
  pid: number
  host: string
  /** ISO time the relay started. */
  startedAt: string
}

/**
 * Takes the lock for this process; returns a function that removes it if it
 * is still ours. A lock left behind (its process is gone) is replaced, and so
 * is one written on another host, whose process cannot be checked (a
 * container recreated after a crash has a new host name; `replaced` says
 * whose it was). A relay running on this host keeps it: two relays on one
 * SQLite file would each checkpoint docs from their own memory and drop
 * what the other had acknowledged, so this throws a {@link RelayRunningError}.
 * Creating the file is exclusive, so of two relays starting at once one wins.
 */
export const holdDataDir = (dataDir: string, replaced?: (holder: RelayLockInfo) => void): (() => void) => {
  const file = path.join(dataDir, LOCK_FILE)
  const info: RelayLockInfo = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() }
  const text = JSON.stringify(info) + '\n'
  try {
    fs.writeFileSync(file, text, { flag: 'wx' })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    let holder = relayHolding(dataDir)
    if (holder?.pid === 0) {
      // Unreadable: a relay starting at this moment may be writing it, so look again shortly. Still unreadable, it is
      // what a crash left (an empty or cut file after a power loss), and is replaced like any lock left behind.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
      holder = relayHolding(dataDir)
    }
    if (holder !== null && holder.host === os.hostname()) throw new RelayRunningError(dataDir, 'start another relay on it', holder)
    if (holder !== null) replaced?.(holder)
    fs.rmSync(file, { force: true })
    // Exclusive again: a relay that started at the same moment and got here first keeps it.
    try {
      fs.writeFileSync(file, text, { flag: 'wx' })
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== 'EEXIST') throw again
      throw new RelayRunningError(dataDir, 'start another relay on it', relayHolding(dataDir) ?? holder ?? info)
    }
  }
  return () => {
    try {
      if (fs.readFileSync(file, 'utf8') === text) fs.unlinkSync(file)
    } catch {
      // already gone: nothing to release
    }
  }
}

/** The relay holding `dataDir`, or null when none does (no lock, or a lock of a process that is gone). */
export const relayHolding = (dataDir: string): RelayLockInfo | null => {
  let info: RelayLockInfo
  try {
    info = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE), 'utf8')) as RelayLockInfo
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    // unreadable or half-written: someone is there
    return { pid: 0, host: 'unknown', startedAt: 'unknown' }
  }
  if (info.host !== os.hostname()) return info
  return isAlive(info.pid) ? info : null
}

/** Throws a {@link RelayRunningError} when a relay holds `dataDir`. */
export const assertNoRelay = (dataDir: string, action: string): void => {
  const holder = relayHolding(dataDir)
  if (holder) throw new RelayRunningError(dataDir, action, holder)
}

/** A relay holds the data dir a command would change. */
export class RelayRunningError extends Error {
  constructor(dataDir: string, action: string, holder: RelayLockInfo) {
    super(
      `a relay is using ${dataDir} (process ${holder.pid} on ${holder.host}, started ${holder.startedAt}, from ${path.join(dataDir, LOCK_FILE)}): ` +
        `stop it before you ${action}. If no relay runs (it was killed on another host), delete ${LOCK_FILE}.`,
    )
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to another user
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
