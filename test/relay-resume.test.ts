/**
 * Bulk resume (`resume` / `resumed`, docs/PROTOCOL.md "Resume"), against an
 * in-process relay over real WebSockets: many docs subscribed in one
 * message, answered without per-doc sync and ack messages where nothing
 * changed, each doc's catch-up ahead of its live updates, the relay's step 1
 * only where it lacks the client's changes, and per-doc `subscribe` working
 * as before next to it.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ErrorCode, MAX_RESUME_DOCS, MessageType, RelayFeatures, encodeResume, type ResumedDoc } from '@concord/engine/protocol'
import type { RelayLimits } from '../apps/relay/src/security/limits.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import { inProcessRelay } from './helpers/inProcessRelay.js'
import { type RawMuxClient, covers } from './helpers/rawClient.js'
import { makeTempDir, removeDir } from './helpers/relayProcess.js'

const relays = inProcessRelay()
const start = (limits: Partial<RelayLimits> = {}): Promise<string> => relays.start({ limits })
const connect = (url: string): Promise<RawMuxClient> => relays.connect(url)

/** Every `resumed` entry the client received, in order. */
const entriesOf = (client: RawMuxClient): ResumedDoc[] => client.received.flatMap((m) => m.resumed ?? [])

/** Resolves once the client has a `resumed` entry for every doc of `names`. */
const answered = (client: RawMuxClient, names: readonly string[]) =>
  client.waitFor(() => names.every((name) => entriesOf(client).some((e) => e.doc === name)), `resumed entries of ${names.length} docs`)

/** Appends `text` to the doc's text and sends the change as an update. */
const write = (client: RawMuxClient, name: string, text: string): void => {
  const doc = client.docs.get(name)!
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  client.sendUpdate(name, Y.encodeStateAsUpdate(doc, before))
}

/** Resolves once the relay acked everything the client's doc holds. */
const acked = (client: RawMuxClient, name: string) =>
  client.waitFor((m) => m.type === MessageType.ack && m.doc === name && covers(m.ack, client.docs.get(name)!), `ack of ${name}`)

/** A copy of a doc: what a device kept of it while away. */
const copyOf = (doc: Y.Doc): Y.Doc => {
  const copy = new Y.Doc()
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
  return copy
}

/** Whether an update carries any structs (beyond its delete set). */
const hasStructs = (update: Uint8Array | null): boolean => update !== null && Y.parseUpdateMeta(update).to.size > 0

const NAMES = Array.from({ length: 20 }, (_, i) => `ws1/doc-${i}`)

describe('resume', () => {
  it('is announced in hello', async () => {
    const client = await connect(await start())
    const hello = await client.waitFor((m) => m.type === MessageType.hello, 'hello')
    expect(hello.hello!.features & RelayFeatures.resume).toBe(RelayFeatures.resume)
  })

  it('a client that resumes 20 unchanged docs gets one resumed answer and no sync or ack message per doc', async () => {
    const url = await start()
    const first = await connect(url)
    first.resume(NAMES)
    await answered(first, NAMES)
    for (const name of NAMES) write(first, name, `text of ${name}`)
    for (const name of NAMES) await acked(first, name)
    const kept = NAMES.map((name) => copyOf(first.docs.get(name)!))
    first.close()

    const again = await connect(url)
    NAMES.forEach((name, i) => again.docs.set(name, kept[i]))
    again.resume(NAMES)
    await answered(again, NAMES)
    await again.roundTrip()
    const entries = entriesOf(again)
    expect(entries.map((e) => e.doc).sort()).toEqual([...NAMES].sort())
    for (const entry of entries) {
      expect(entry.relayStateVector).toBeNull() // the relay lacks nothing: no step 1, so no step 2 from the client
      expect(entry.ack).toBe('client-state') // stored up to what the client has
      expect(hasStructs(entry.update)).toBe(false) // nothing to catch up on
    }
    expect(again.received.filter((m) => m.type === MessageType.resumed)).toHaveLength(1)
    expect(again.received.filter((m) => m.type === MessageType.sync || m.type === MessageType.ack || m.type === MessageType.error)).toEqual(
      [],
    )
    NAMES.forEach((name, i) => expect(again.docs.get(name)!.getText('t').toString()).toBe(kept[i].getText('t').toString()))
  })

  it('a doc changed while the client was away comes in its entry, before any live update of it', async () => {
    const url = await start()
    const doc = 'ws1/busy'
    const writer = await connect(url)
    writer.resume([doc])
    await answered(writer, [doc])
    write(writer, doc, 'seen before leaving;')
    await acked(writer, doc)
    const kept = copyOf(writer.docs.get(doc)!)
    for (let i = 0; i < 5; i++) write(writer, doc, ` while away ${i};`)
    await acked(writer, doc)

    const back = await connect(url)
    back.docs.set(doc, kept)
    back.resume([doc])
    // the writer keeps typing while the relay answers
    for (let i = 0; i < 10; i++) {
      write(writer, doc, ` live ${i};`)
      await writer.roundTrip()
    }
    await answered(back, [doc])
    await acked(writer, doc)
    await back.roundTrip()

    const entryAt = back.received.findIndex((m) => m.resumed?.some((e) => e.doc === doc))
    const firstLiveAt = back.received.findIndex((m) => m.type === MessageType.sync && m.doc === doc)
    expect(entryAt).toBeGreaterThanOrEqual(0)
    expect(firstLiveAt).toBeGreaterThan(entryAt) // live updates came, all after the entry
    const entry = entriesOf(back).find((e) => e.doc === doc)!
    expect(hasStructs(entry.update)).toBe(true) // the changes made while away
    expect(back.docs.get(doc)!.store.pendingStructs).toBeNull() // nothing arrived ahead of what it builds on
    expect(back.docs.get(doc)!.getText('t').toString()).toBe(writer.docs.get(doc)!.getText('t').toString())
    expect(back.received.filter((m) => m.type === MessageType.error)).toEqual([])
  })

  it("a client's changes made offline: the entry carries the relay's state vector, the step 2 is stored and acked", async () => {
    const url = await start()
    const doc = 'ws1/offline'
    const first = await connect(url)
    first.resume([doc])
    await answered(first, [doc])
    write(first, doc, 'online;')
    await acked(first, doc)
    const kept = copyOf(first.docs.get(doc)!)
    first.close()
    kept.getText('t').insert(kept.getText('t').length, ' offline;')

    const back = await connect(url)
    back.docs.set(doc, kept)
    back.resume([doc])
    await answered(back, [doc])
    const entry = entriesOf(back).find((e) => e.doc === doc)!
    expect(entry.relayStateVector).not.toBeNull()
    await acked(back, doc) // the step 2 the client answered with is stored
    const reader = await connect(url)
    reader.resume([doc])
    await answered(reader, [doc])
    expect(reader.docs.get(doc)!.getText('t').toString()).toBe('online; offline;')
  })

  it('a resume answered while a commit compacts another of its docs gets an ack of what that commit stored', async () => {
    // A commit of two docs: the first one's log reaches the checkpoint threshold, and its
    // checkpoint waits for the test — the commit is stored, the second doc not yet marked durable.
    let openGate = (): void => {}
    const gate = new Promise<void>((resolve) => (openGate = resolve))
    let checkpointStarted = (): void => {}
    const started = new Promise<void>((resolve) => (checkpointStarted = resolve))
    class SlowCheckpoints extends MemoryStorage {
      override async writeCheckpoint(doc: string, state: Uint8Array, uptoSeq: number): Promise<void> {
        checkpointStarted()
        await gate
        return super.writeCheckpoint(doc, state, uptoSeq)
      }
    }
    const url = await relays.start({ storage: new SlowCheckpoints(), commit: { checkpointUpdates: 1 } })
    const [compacted, other] = ['ws1/compacted', 'ws1/other']
    const writer = await connect(url)
    writer.resume([compacted, other])
    await answered(writer, [compacted, other])
    write(writer, compacted, 'first;')
    write(writer, other, 'second;')
    await started
    // the writer's socket ends before the commit's acks reach it; the device comes back with what it has
    const kept = copyOf(writer.docs.get(other)!)
    writer.close()
    const back = await connect(url)
    back.docs.set(other, kept)
    back.resume([other])
    await answered(back, [other])
    openGate()
    const entry = entriesOf(back).find((e) => e.doc === other)!
    expect(entry.relayStateVector).toBeNull() // the relay has all of it
    // the ack comes in the entry (the device's own state vector) or after the commit: either covers what it sent
    if (entry.ack !== 'client-state' && !(entry.ack !== null && covers(Y.decodeStateVector(entry.ack), kept))) {
      await back.waitFor(
        (m) => m.type === MessageType.ack && m.doc === other && covers(m.ack, kept),
        `an ack of ${other} covering what the device sent (the entry's ack was ${entry.ack === null ? 'none' : 'stale'})`,
        3000,
      )
    }
  })

  it('a deletion of text the relay lost is stored with the delete marker that follows it: after a restart, the resume that asks nothing loses nothing', async () => {
    // Device C typed "hello"; device A got it through the relay; then the relay lost C's change
    // (killed before storing it: here, it never had it). A deletes "he" with the engine's two
    // updates: the delete, then the delete marker that advances A's clock. A's socket ends before
    // it can answer the relay's resync; C comes back and stores "hello" again; then A resumes.
    // The relay has every clock A has, so it asks A for nothing: the deletion must already be stored.
    const dir = makeTempDir()
    const doc = 'ws1/lost-insert'
    const open = async (): Promise<string> => {
      return relays.start({ storage: SqliteStorage.open(join(dir, 'concord.sqlite')) })
    }
    try {
      const deviceC = new Y.Doc()
      deviceC.getText('t').insert(0, 'hello')
      const deviceA = new Y.Doc()
      Y.applyUpdate(deviceA, Y.encodeStateAsUpdate(deviceC))
      const sent: Uint8Array[] = []
      deviceA.on('update', (update: Uint8Array) => sent.push(update))
      deviceA.getText('t').delete(0, 2)
      deviceA.getMap('concord:meta').set('d', 1)
      expect(sent).toHaveLength(2)

      let url = await open()
      const a = await connect(url)
      a.resume([doc]) // resumed with an empty doc: this socket does not answer the relay's step 1 with A's state
      await answered(a, [doc])
      for (const update of sent) a.sendUpdate(doc, update)
      await a.roundTrip()
      expect(a.received.filter((m) => m.type === MessageType.error).map((m) => m.error!.code)).toContain(ErrorCode.missingDependencies)
      a.close()
      await relays.stop()

      url = await open() // a restart: only what was stored counts
      const c = await connect(url)
      c.docs.set(doc, deviceC)
      c.resume([doc])
      await answered(c, [doc])
      await acked(c, doc)

      const back = await connect(url)
      back.docs.set(doc, deviceA)
      back.resume([doc])
      await answered(back, [doc])
      await back.roundTrip()
      const entry = entriesOf(back).find((e) => e.doc === doc)!
      expect(entry.relayStateVector).toBeNull() // the relay holds every clock A has: A sends nothing more
      expect(entry.ack === 'client-state' || (entry.ack !== null && covers(Y.decodeStateVector(entry.ack), deviceA))).toBe(true)

      const reader = await connect(url)
      reader.resume([doc])
      await answered(reader, [doc])
      expect(reader.docs.get(doc)!.getText('t').toString()).toBe('llo')
      expect(c.docs.get(doc)!.getText('t').toString()).toBe('llo') // C got the deletion too
    } finally {
      await relays.stop()
      removeDir(dir)
    }
  })

  it('a client that subscribes doc by doc works as before, next to one that resumes', async () => {
    const url = await start()
    const doc = 'ws1/mixed'
    const resumer = await connect(url)
    resumer.resume([doc])
    await answered(resumer, [doc])
    const old = await connect(url)
    const oldDoc = old.subscribe(doc)
    await old.waitFor((m) => m.type === MessageType.ack && m.doc === doc, 'first ack of the old client')
    await old.waitFor((m) => m.type === MessageType.sync && m.doc === doc, 'sync of the old client')
    write(resumer, doc, 'from the resumer;')
    await acked(resumer, doc)
    const local = new Y.Doc()
    local.getText('t').insert(0, 'from the old client;')
    old.sendUpdate(doc, Y.encodeStateAsUpdate(local))
    Y.applyUpdate(oldDoc, Y.encodeStateAsUpdate(local))
    await acked(old, doc)
    await resumer.roundTrip()
    await old.roundTrip()
    expect(resumer.docs.get(doc)!.getText('t').toString()).toBe(oldDoc.getText('t').toString())
    expect(old.received.some((m) => m.type === MessageType.resumed)).toBe(false)
  })

  it('a subscribe sent again for a doc of a resume (loading or joined) gets the relay step 1 again, after the entry', async () => {
    const client = await connect(await start())
    await client.waitFor((m) => m.type === MessageType.hello, 'hello')
    const [doc] = client.resume(['ws1/again'])
    // sent again while the doc loads: not subscribed twice, but its step 1 follows the entry
    client.subscribe('ws1/again')
    await answered(client, ['ws1/again'])
    const step1s = () => client.received.filter((m) => m.type === MessageType.sync && m.doc === 'ws1/again' && m.syncType === 0)
    await client.waitFor(() => step1s().length >= 1, 'the relay step 1 after the entry')
    const entryAt = client.received.findIndex((m) => m.resumed?.some((e) => e.doc === 'ws1/again'))
    expect(client.received.indexOf(step1s()[0])).toBeGreaterThan(entryAt)
    // and again once joined: at once
    client.subscribe('ws1/again')
    await client.waitFor(() => step1s().length >= 2, 'a second relay step 1')
    // one subscription all along: what the client writes is applied and acked once
    doc.getText('t').insert(0, 'x')
    client.sendUpdate('ws1/again', Y.encodeStateAsUpdate(doc))
    await acked(client, 'ws1/again')
    expect(client.received.filter((m) => m.type === MessageType.error)).toEqual([])
  })

  it('a catch-up larger than a chunk comes in parts after the entry, the last one a step 2', async () => {
    const url = await start({ initialSyncChunkBytes: 4096 })
    const doc = 'ws1/big'
    const writer = await connect(url)
    writer.resume([doc])
    await answered(writer, [doc])
    for (let i = 0; i < 20; i++) write(writer, doc, `${i} `.padEnd(1000, 'x'))
    await acked(writer, doc)

    const reader = await connect(url)
    reader.resume([doc])
    await answered(reader, [doc])
    await reader.waitFor((m) => m.type === MessageType.sync && m.doc === doc && m.syncType === 1, 'the last part (a step 2)')
    const entry = entriesOf(reader).find((e) => e.doc === doc)!
    expect(entry.update).toBeNull()
    const entryAt = reader.received.findIndex((m) => m.type === MessageType.resumed)
    const parts = reader.received.filter((m) => m.type === MessageType.sync && m.doc === doc)
    expect(parts.length).toBeGreaterThan(2)
    expect(reader.received.indexOf(parts[0])).toBeGreaterThan(entryAt)
    expect(reader.docs.get(doc)!.getText('t').toString()).toBe(writer.docs.get(doc)!.getText('t').toString())
  })

  it('docs of a resume beyond what a connection may hold are refused one by one; a resume of too many docs is refused whole; a bad state vector closes the socket', async () => {
    const url = await start({ maxDocsPerConnection: 5 })
    const few = await connect(url)
    few.resume(NAMES.slice(0, 6))
    const refused = await few.waitFor((m) => m.type === MessageType.error && m.doc === NAMES[5], 'the refusal of the sixth doc')
    expect(refused.error!.code).toBe(ErrorCode.limitExceeded)
    await answered(few, NAMES.slice(0, 5))
    expect(entriesOf(few).map((e) => e.doc)).not.toContain(NAMES[5])

    const many = await connect(url)
    many.resume(Array.from({ length: MAX_RESUME_DOCS + 1 }, (_, i) => `ws1/many-${i}`))
    const whole = await many.waitFor((m) => m.type === MessageType.error && m.doc === '', 'the refusal of the whole resume')
    expect(whole.error!.code).toBe(ErrorCode.limitExceeded)
    await many.roundTrip()
    expect(entriesOf(many)).toEqual([])
    expect(many.received.filter((m) => m.type === MessageType.error)).toHaveLength(1)

    const bad = await connect(url)
    bad.send(encodeResume([{ doc: 'ws1/doc-0', stateVector: Uint8Array.of(5, 1) }]))
    expect((await bad.waitClosed()).code).toBe(1002)
  })
})
