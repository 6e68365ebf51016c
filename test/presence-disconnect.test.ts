/**
 * "A person whose connection is lost disappears from presence within 30 s",
 * against a relay process with its default heartbeat: the network under one
 * client is stalled (a TCP proxy stops forwarding without closing anything:
 * no close frame, no FIN, no RST), and the other client must see that person
 * leave — removed by the relay, which terminates the peer that stopped
 * answering pings and broadcasts the removal of its awareness states.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { MemoryStorage, RecordStore, SyncClient, type RecordPresence } from '@concord/engine'
import { appSchemas } from '../apps/web/src/lib/schemas.js'
import { removeDir, startRelay, type RelayProcess } from './helpers/relayProcess.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcpProxy.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'

let relay: RelayProcess
let proxy: TcpProxy
beforeAll(async () => {
  relay = await startRelay({ env: { JWT_SECRET: TEST_SECRET } })
  proxy = await startTcpProxy(Number(new URL(relay.wsUrl).port))
})
afterAll(async () => {
  await proxy.close()
  await relay.stop()
  removeDir(relay.dataDir)
})

const person = async (userId: string, url: string) => {
  const token = await signToken(userId, { gone: 'write' }, { name: userId.toUpperCase() })
  // No reconnect during the test: a reconnect through the stalled network would hang anyway.
  const client = new SyncClient({ url, token, WebSocket: WebSocket as never, reconnect: { minDelay: 1e9, maxDelay: 1e9, random: () => 1 } })
  const store = new RecordStore({ client, userId, workspaceId: 'gone', schemas: appSchemas, tabs: false, storage: new MemoryStorage() })
  return { client, store }
}

/** Resolves when `predicate` holds for the presence (checked on every change). */
const until = (presence: RecordPresence, predicate: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    const check = (): void => {
      if (!predicate()) return
      presence.off('change', check)
      resolve()
    }
    presence.on('change', check)
    check()
  })

describe('presence after an unclean disconnect', () => {
  it('a person whose network silently stops is gone from the others’ presence within 30 s (relay heartbeat, default settings)', async () => {
    const ada = await person('ada', proxy.wsUrl)
    const bob = await person('bob', relay.wsUrl)
    const a = await ada.store.create('ticket', { title: 'Hello' }, { id: 'T-1' })
    await a.flush()
    const b = await bob.store.open('T-1')
    await b.sync.synced
    const pa = a.presence()
    const pb = b.presence()
    pa.setEditing('title', { anchor: 2 })
    const seesAda = () => pb.viewers.some((v) => v.user?.id === 'ada')
    await until(pb, () => pb.viewers.find((v) => v.user?.id === 'ada')?.field === 'title')
    const adaClient = a.awareness.clientID
    // Who removed Ada: the relay (an awareness update from it), or Bob's own 30 s outdated timeout ('timeout').
    let removedBy: unknown = null
    b.awareness.on('change', ({ removed }: { removed: number[] }, origin: unknown) => {
      if (removed.includes(adaClient)) removedBy = origin
    })

    proxy.stall()
    const cutAt = performance.now()
    const gone = until(pb, () => !seesAda())
    const bound = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 35_000).unref())
    expect(await Promise.race([gone.then(() => 'gone' as const), bound])).toBe('gone')
    const seconds = (performance.now() - cutAt) / 1000
    console.log(
      `unclean disconnect: gone from presence after ${seconds.toFixed(1)} s (removed by ${removedBy === 'timeout' ? 'the outdated timeout' : 'the relay'})`,
    )
    expect(seconds).toBeLessThan(30)
    expect(removedBy).not.toBe('timeout') // the relay found the dead peer and broadcast the removal
    expect(pb.viewers.filter((v) => !v.self)).toEqual([])

    pa.destroy()
    pb.destroy()
    a.close()
    b.close()
    await bob.store.close()
    bob.client.close()
    await ada.store.close()
    ada.client.close()
  }, 45_000)
})
