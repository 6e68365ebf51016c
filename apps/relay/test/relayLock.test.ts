/**
 * `relay.lock`: how the admin commands tell that a relay holds a data dir —
 * a live process on this host or any process on another host holds it; a
 * lock left by a process that is gone does not; a relay removes only its own.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { assertNoRelay, holdDataDir, LOCK_FILE, relayHolding, RelayRunningError } from '../src/cli/relayLock.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})
const tempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-lock-'))
  dirs.push(dir)
  return dir
}
const writeLock = (dir: string, pid: number, host = os.hostname()): void =>
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host, startedAt: new Date().toISOString() }))

describe('relay.lock', () => {
  it('is held while this process holds it, and released only by its holder', () => {
    const dir = tempDir()
    expect(relayHolding(dir)).toBeNull()
    const release = holdDataDir(dir)
    expect(relayHolding(dir)).toMatchObject({ pid: process.pid, host: os.hostname() })
    expect(() => assertNoRelay(dir, 'restore')).toThrow(RelayRunningError)
    expect(() => assertNoRelay(dir, 'restore')).toThrow(/stop it before you restore/)
    // another relay took the dir over: releasing ours leaves its lock alone
    writeLock(dir, process.ppid)
    release()
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(true)
    fs.rmSync(path.join(dir, LOCK_FILE))
    const again = holdDataDir(dir)
    again()
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false)
  })

  it('a lock of a process that is gone does not count; one from another host does', () => {
    const dir = tempDir()
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    writeLock(dir, Number(gone.stdout))
    expect(relayHolding(dir)).toBeNull()
    writeLock(dir, Number(gone.stdout), `${os.hostname()}-elsewhere`)
    expect(relayHolding(dir)).toMatchObject({ host: `${os.hostname()}-elsewhere` })
    expect(() => assertNoRelay(dir, 'import')).toThrow(/delete relay\.lock/)
  })
})
