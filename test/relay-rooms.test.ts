/**
 * Room lifecycle on an in-process relay: load before serving, unload after the
 * last peer leaves and everything is stored, no load/unload race, log
 * compaction into checkpoints, and restart = checkpoint + log.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { MessageType, encodePing } from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import type { StoredDoc } from '../apps/relay/src/storage/Storage.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { makeTempDir, removeDir, waitFor } from './helpers/relayProcess.js'

/** Storage whose loads wait for the test. */
class SlowLoadStorage extends MemoryStorage {
  loadGate: Promise<void> | null = null
  loads = 0
  override async loadDoc(doc: string): Promise<StoredDoc> {
    this.loads++
    if (this.loadGate) await this.loadGate
    return super.loadDoc(doc)
  }
}

let relay: Relay | null = null
const clients: RawMuxClient[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await relay?.close()
  relay = null
  for (const d of dirs.splice(0)) removeDir(d)
})

const connect = async (): Promise<RawMuxClient> => {
  const client = new RawMuxClient(relay!.url.replace(/^http/, 'ws'))
  clients.push(client)
  await client.open()
  return client
}

const edit = (client: RawMuxClient, name: string, text: string): Y.Doc => {
  const doc = client.docs.get(name)!
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  client.sendUpdate(name, Y.encodeStateAsUpdate(doc, before))
  return doc
}

describe('rooms', () => {
  it('never serves an empty doc while loading: sync waits for storage', async () => {
    const storage = new SlowLoadStorage()
    const seed = new Y.Doc()
    seed.getText('t').insert(0, 'stored before')
    await storage.appendUpdates([{ doc: 'w/slow', updates: [Y.encodeStateAsUpdate(seed)] }])
    let release!: () => void
    storage.loadGate = new Promise((r) => (release = r))
    relay = await createRelay({ storage, port: 0, processMetrics: false })
    const client = await connect()
    const doc = client.subscribe('w/slow')
    // the relay has handled the subscribe and the step 1 (a ping after them is answered) and is loading the doc
    client.send(encodePing())
    await client.waitFor((m) => m.type === MessageType.pong, 'pong')
    await waitFor(() => storage.loads === 1, 'the load from storage')
    expect(client.received.filter((m) => m.type === MessageType.sync)).toHaveLength(0)
    release()
    await waitFor(() => doc.getText('t').toString() === 'stored before', 'stored state')
  })

  it('unloads an idle room only after everything is stored, and reloads it on the next open', async () => {
    const storage = new SlowLoadStorage()
    relay = await createRelay({ storage, port: 0, processMetrics: false, idleUnloadMs: 20 })
    const a = await connect()
    a.subscribe('w/idle')
    await a.waitFor((m) => m.type === MessageType.ack, 'ack')
    const doc = edit(a, 'w/idle', 'abc')
    await a.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'ack of edit')
    a.close()
    await waitFor(() => relay!.rooms.size === 0, 'room unloaded')
    const b = await connect()
    const docB = b.subscribe('w/idle')
    await waitFor(() => docB.getText('t').toString() === 'abc', 'reloaded state')
    expect(storage.loads).toBe(2)
  })

  it('opens racing with idle unloads never lose, duplicate or reorder edits', async () => {
    const storage = new SlowLoadStorage()
    relay = await createRelay({ storage, port: 0, processMetrics: false, idleUnloadMs: 30 })
    for (let round = 0; round < 20; round++) {
      const c = await connect()
      c.subscribe('w/race')
      await c.waitFor((m) => m.type === MessageType.ack, 'ack')
      edit(c, 'w/race', String(round % 10))
      c.close()
      // deliberate timing, not a wait for a result: around the 30 ms idle unload, so that opens land before, during and after unloads (the race under test)
      await new Promise((r) => setTimeout(r, round % 3 === 0 ? 40 : 5))
    }
    const last = await connect()
    const doc = last.subscribe('w/race')
    await waitFor(() => doc.getText('t').length === 20, 'all 20 edits')
    expect(doc.getText('t').toString()).toBe('01234567890123456789')
  })

  it('compacts the log into a checkpoint and a restart loads checkpoint + log', async () => {
    const dir = makeTempDir()
    dirs.push(dir)
    const file = `${dir}/concord.sqlite`
    relay = await createRelay({
      storage: SqliteStorage.open(file),
      port: 0,
      processMetrics: false,
      commit: { checkpointUpdates: 10 },
    })
    const c = await connect()
    c.subscribe('w/compact')
    await c.waitFor((m) => m.type === MessageType.ack, 'ack')
    let doc!: Y.Doc
    for (let i = 0; i < 25; i++) {
      doc = edit(c, 'w/compact', 'x')
      await c.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), `ack ${i}`)
    }
    expect(await relay.metrics.render()).toMatch(/concord_checkpoints_total [1-9]/)
    await relay.close()
    c.close()
    const reopened = SqliteStorage.open(file)
    const stored = await reopened.loadDoc('w/compact')
    expect(stored.checkpoint).not.toBeNull()
    expect(stored.updates.length).toBeLessThan(10)
    await reopened.close()
    relay = await createRelay({ storage: SqliteStorage.open(file), port: 0, processMetrics: false })
    const fresh = await connect()
    const freshDoc = fresh.subscribe('w/compact')
    await waitFor(() => freshDoc.getText('t').toString() === 'x'.repeat(25), 'restored text')
  })
})
