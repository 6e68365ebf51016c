/**
 * Presence nobody renews: a person whose tab stays connected but stops
 * renewing its presence (a frozen tab keeps its socket and answers pings)
 * leaves the others' presence once y-protocols' outdated timeout (30 s) has
 * passed. The relay checks every room for that from one timer (the
 * registry's `expirePresence`, every 3 s) instead of a timer per room; the
 * test runs that check itself with a clock 31 s ahead rather than waiting.
 * (A live client that hears its own state was removed announces it again at
 * its next renewal, within 15 s.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import { SyncClient, type DocHandle } from '@concord/engine'
import { encodeAwareness } from '@concord/engine/protocol'
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

/** A tab that announced its presence in `doc` once and froze: its socket stays open, it reads nothing and renews nothing. */
const frozenTab = async (doc: string, clientId: number, name: string): Promise<RawMuxClient> => {
  const raw = new RawMuxClient(relay!.url.replace(/^http/, 'ws'))
  clients.push(raw)
  await raw.open()
  raw.subscribe(doc)
  const update = encoding.createEncoder()
  encoding.writeVarUint(update, 1)
  encoding.writeVarUint(update, clientId)
  encoding.writeVarUint(update, 1)
  encoding.writeVarString(update, JSON.stringify({ user: { name } }))
  raw.send(encodeAwareness(doc, encoding.toUint8Array(update)))
  await raw.roundTrip()
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

describe('presence nobody renews', () => {
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
})
