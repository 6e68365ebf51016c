/**
 * Last-seen records reach storage in one write per flush, whatever the
 * number of workspaces: on SQLite one transaction (one fsync) instead of one
 * per workspace, which the storage thread would run ahead of the commits
 * that acks wait for. A failed write keeps everything for the next flush.
 */
import { describe, expect, it } from 'vitest'
import { LastSeen } from '../src/presence/LastSeen.js'
import { MemoryStorage } from '../src/storage/MemoryStorage.js'
import type { WorkspacePresence } from '../src/storage/Storage.js'
import { silentLogger } from '../src/observability/logger.js'

/** Memory storage that records each `recordPresence` call and can be made to fail. */
class RecordingStorage extends MemoryStorage {
  calls: WorkspacePresence[][] = []
  failNext = false
  override async recordPresence(batch: readonly WorkspacePresence[]): Promise<void> {
    this.calls.push(batch.map(({ workspace, records }) => ({ workspace, records: [...records] })))
    if (this.failNext) {
      this.failNext = false
      throw new Error('disk full')
    }
    return super.recordPresence(batch)
  }
}

const names = (list: { userId: string }[]): string[] => list.map((r) => r.userId).sort()

describe('last seen', () => {
  it('writes every workspace’s records in one call per flush; a failed write keeps them all for the next', async () => {
    const storage = new RecordingStorage()
    const seen = new LastSeen(storage, silentLogger(), 3_600_000)
    try {
      for (let w = 0; w < 50; w++) seen.enter(`team-${w}`, `user-${w}`, `User ${w}`)
      seen.enter('team-0', 'ada', 'Ada')
      seen.leave('team-0', 'ada')

      storage.failNext = true
      await seen.flush()
      expect(storage.calls).toHaveLength(1)
      expect(await storage.listPresence('team-0')).toEqual([])

      await seen.flush()
      expect(storage.calls).toHaveLength(2)
      expect(storage.calls[1]!.map((e) => e.workspace).sort()).toEqual(Array.from({ length: 50 }, (_, w) => `team-${w}`).sort())
      expect(names(await storage.listPresence('team-0'))).toEqual(['ada', 'user-0'])
      expect(names(await storage.listPresence('team-49'))).toEqual(['user-49'])
    } finally {
      await seen.close()
    }
  })

  it('does not write when nobody was seen', async () => {
    const storage = new RecordingStorage()
    const seen = new LastSeen(storage, silentLogger(), 3_600_000)
    await seen.flush()
    await seen.close()
    expect(storage.calls).toEqual([])
  })
})
