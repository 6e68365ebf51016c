/**
 * The engine against a relay process with JWT auth: in-band tokens, identity
 * stamped into presence, read-only refusals surfaced per doc, bad tokens halt
 * the client until a new token is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { SyncClient, type SyncError } from '@concord/engine'
import { removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'

let relay: RelayProcess
const clients: SyncClient[] = []
beforeAll(async () => {
  relay = await startRelay({ env: { JWT_SECRET: TEST_SECRET } })
})
afterAll(async () => {
  for (const c of clients) c.close()
  await relay.stop()
  removeDir(relay.dataDir)
})

const client = (token: string | (() => Promise<string>), user?: { id: string; name: string }) => {
  const c = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, token, user, reconnect: { minDelay: 20, maxDelay: 200 } })
  clients.push(c)
  return c
}

describe('engine with auth', () => {
  it('syncs with an in-band token, and presence carries the identity from the token', async () => {
    const ada = client(await signToken('u-ada', { acme: 'write' }, { name: 'Ada' }), { id: 'u-bob', name: 'I am Bob' })
    const eve = client(async () => signToken('u-eve', { acme: 'write' }, { name: 'Eve' }))
    const a = ada.open('acme/T-1')
    const e = eve.open('acme/T-1')
    await Promise.all([a.synced, e.synced])
    expect(ada.identity).toMatchObject({ userId: 'u-ada', name: 'Ada' })
    a.doc.getText('title').insert(0, 'hello')
    await ada.flush()
    await waitFor(() => e.doc.getText('title').toString() === 'hello', 'sync')
    await waitFor(() => [...e.awareness.getStates().values()].some((s) => s.user?.id === 'u-ada'), 'ada in presence as herself')
    const adaAtEve = [...e.awareness.getStates().values()].find((s) => s.user?.id === 'u-ada')!
    expect(adaAtEve.user.name).toBe('Ada')
    expect([...e.awareness.getStates().values()].some((s) => s.user?.name === 'I am Bob')).toBe(false)
  })

  it('a read-only user gets the doc, and an explicit permanent error when it edits', async () => {
    const writer = client(await signToken('u-w', { acme: 'write' }))
    const w = writer.open('acme/T-2')
    await w.synced
    w.doc.getText('title').insert(0, 'written')
    await writer.flush()
    const reader = client(await signToken('u-r', { acme: 'read' }))
    const r = reader.open('acme/T-2')
    await r.synced
    expect(r.doc.getText('title').toString()).toBe('written')
    const errors: SyncError[] = []
    r.on('error', (e: SyncError) => errors.push(e))
    r.doc.getText('title').insert(0, 'sneaky ')
    await waitFor(() => errors.length > 0, 'permission error')
    expect(errors[0].permanent).toBe(true)
    expect(errors[0].reason).toMatch(/read-only/)
    expect(r.pending).toBeGreaterThan(0) // the edit is kept locally, and not claimed as synced
    const fresh = client(await signToken('u-w2', { acme: 'write' })).open('acme/T-2')
    await fresh.synced
    expect(fresh.doc.getText('title').toString()).toBe('written')
  })

  it('a refused token halts reconnects until a new token is set', async () => {
    const bad = await signToken('u-x', { acme: 'write' }, { secret: 'y'.repeat(40) })
    const c = client(bad)
    const errors: SyncError[] = []
    c.on('error', (e: SyncError) => errors.push(e))
    await waitFor(() => errors.some((e) => e.doc === '' && /signature/.test(e.reason)), 'unauthorized error')
    expect(c.status).toBe('offline')
    c.setToken(await signToken('u-x', { acme: 'write' }))
    await waitFor(() => c.status === 'online', 'online with the new token')
  })
})
