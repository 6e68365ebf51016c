/**
 * Presence renewals on an in-process relay. A person whose tab stays
 * connected but stops renewing its presence (a frozen tab keeps its socket)
 * leaves the others' presence once y-protocols' outdated timeout (30 s) has
 * passed: the relay checks every room for that from one timer (the
 * registry's `expirePresence`, every 3 s) instead of a timer per room. A
 * renewal that changes nothing (a keep-alive, every 15 s per client and doc)
 * waits ~3 s in its room so that several reach each peer in one message
 * (the registry's `sendRenewals`); a change goes out at once. The tests run
 * the registry's checks themselves with their clocks ahead rather than
 * waiting. (A live client that hears its own state was removed announces it
 * again at its next renewal, within 15 s.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import { SyncClient, type DocHandle } from '@concord/engine'
import { MessageType, encodeAwareness } from '@concord/engine/protocol'
import { createRelay, type Relay } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { RawMuxClient } from './helpers/rawClient.js'

let relay: Relay | null = null
const clients: Array<SyncClient | RawMuxClient> = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await relay?.close()
  relay = null
})

/** Sends `raw`'s presence in `doc` (client id `clientId`) at `clock`. */
const announce = async (raw: RawMuxClient, doc: string, clientId: number, clock: number, name: string): Promise<void> => {
  const update = encoding.createEncoder()
  encoding.writeVarUint(update, 1)
  encoding.writeVarUint(update, clientId)
  encoding.writeVarUint(update, clock)
  encoding.writeVarString(update, JSON.stringify({ user: { name } }))
  raw.send(encodeAwareness(doc, encoding.toUint8Array(update)))
  await raw.roundTrip()
}

/** A tab that announced its presence in `doc` once and froze: its socket stays open, it reads nothing and renews nothing. */
const frozenTab = async (doc: string, clientId: number, name: string): Promise<RawMuxClient> => {
  const raw = new RawMuxClient(relay!.url.replace(/^http/, 'ws'))
  clients.push(raw)
  await raw.open()
  raw.subscribe(doc)
  await announce(raw, doc, clientId, 1, name)
  return raw
}

/** Names of the other people `handle` shows as present. */
const othersPresent = (handle: DocHandle): string[] =>
  [...handle.awareness.getStates().entries()]
    .filter(([id]) => id !== handle.doc.clientID)
    .map(([, state]) => (state as { user?: { name?: string } }).user?.name ?? '?')
    .sort()

/** Resolves once `predicate` holds for `handle`'s presence (checked on every change). */
const presenceUntil = (handle: DocHandle, predicate: (names: string[]) => boolean): Promise<void> =>
  new Promise((resolve) => {
    const check = (): void => {
      if (!predicate(othersPresent(handle))) return
      handle.awareness.off('change', check)
      resolve()
    }
    handle.awareness.on('change', check)
    check()
  })

describe('presence renewals', () => {
  it('a frozen tab leaves the others’ presence once 30 s passed without a renewal, in every doc', async () => {
    relay = await createRelay({ storage: new MemoryStorage(), port: 0, processMetrics: false })
    // Bob looks at T-1 without showing presence himself; Ada's and Dan's tabs froze on T-1 and T-2.
    const viewer = new SyncClient({ url: relay.url.replace(/^http/, 'ws'), WebSocket: WebSocket as never })
    clients.push(viewer)
    const bob = viewer.open('acme/T-1')
    await bob.synced
    await frozenTab('acme/T-1', 777_001, 'Ada')
    await frozenTab('acme/T-2', 777_002, 'Dan')
    await presenceUntil(bob, (names) => names.includes('Ada'))

    // Renewed just now: nothing is outdated.
    expect(await relay.rooms.expirePresence()).toBe(0)
    expect(othersPresent(bob)).toEqual(['Ada'])

    // 31 s on with no renewal, both are outdated: the relay drops them and tells whoever looks.
    expect(await relay.rooms.expirePresence(() => Date.now() + 31_000)).toBe(2)
    await presenceUntil(bob, (names) => names.length === 0)
    expect(relay.rooms.peek('acme/T-1')!.awarenessStates.size).toBe(0)
    expect(relay.rooms.peek('acme/T-2')!.awarenessStates.size).toBe(0)
  })

  it('keep-alives that change nothing reach the others a few seconds later, several in one message', async () => {
    relay = await createRelay({ storage: new MemoryStorage(), port: 0, processMetrics: false })
    const viewer = new RawMuxClient(relay.url.replace(/^http/, 'ws'))
    clients.push(viewer)
    await viewer.open()
    viewer.subscribe('acme/T-1')
    const ada = await frozenTab('acme/T-1', 888_001, 'Ada')
    const dan = await frozenTab('acme/T-1', 888_002, 'Dan')
    const awarenessOf = (): Array<Array<{ clientId: number }>> =>
      viewer.received.filter((m) => m.type === MessageType.awareness && m.doc === 'acme/T-1').map((m) => m.awareness!)
    await viewer.waitFor((m) => m.type === MessageType.awareness && m.awareness!.some((e) => e.clientId === 888_002), 'Dan shown')
    const before = awarenessOf().length

    // both renew, changing nothing: nothing goes out yet
    await announce(ada, 'acme/T-1', 888_001, 2, 'Ada')
    await announce(dan, 'acme/T-1', 888_002, 2, 'Dan')
    await viewer.roundTrip()
    expect(awarenessOf()).toHaveLength(before)
    // ~3 s later (the registry's check, run here with its clock ahead) they go out together
    expect(relay.rooms.sendRenewals(performance.now() + 3_000)).toBe(1)
    const renewed = await viewer.waitFor((m) => m.type === MessageType.awareness && m.awareness!.length === 2, 'the two keep-alives')
    expect(renewed.awareness!.map((e) => e.clientId).sort()).toEqual([888_001, 888_002])
    expect(awarenessOf()).toHaveLength(before + 1)
    // a change goes out at once
    await announce(dan, 'acme/T-1', 888_002, 3, 'Daniel')
    await viewer.waitFor(
      (m) => m.type === MessageType.awareness && m.awareness!.some((e) => (e.state?.user as { name?: string })?.name === 'Daniel'),
      'the change',
    )
  })
})
