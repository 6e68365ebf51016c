/**
 * The engine against a relay with a small --max-payload: a change larger than
 * the relay accepts is kept on the device and reported on its doc, instead of
 * closing the socket and being resent after every reconnect.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import WebSocket from 'ws'
import { ErrorCode, SyncClient, type SyncError } from '@concord/engine'
import { removeDir, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'

let relay: RelayProcess
beforeAll(async () => {
  relay = await startRelay({ args: ['--max-payload', '65536'] })
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})

it('an oversize change stays pending with a permanent too-large error; the socket and other docs keep working', async () => {
  const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never })
  try {
    const big = client.open('acme/big')
    const small = client.open('acme/small')
    await Promise.all([big.synced, small.synced])
    expect(client.relay?.maxPayload).toBe(65536)
    const errors: SyncError[] = []
    big.on('error', (e: SyncError) => errors.push(e))
    let statusChanges = 0
    client.on('status', () => statusChanges++)
    big.doc.getText('body').insert(0, 'x'.repeat(100_000))
    await waitFor(() => errors.length > 0, 'too-large error')
    expect(errors[0].code).toBe(ErrorCode.tooLarge)
    expect(errors[0].permanent).toBe(true)
    expect(big.pending).toBeGreaterThan(0)
    small.doc.getText('body').insert(0, 'still syncing')
    await client.flush('acme/small')
    expect(small.pending).toBe(0)
    expect(statusChanges).toBe(0)
    expect(client.status).toBe('online')
  } finally {
    client.close()
  }
})
