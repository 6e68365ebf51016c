/**
 * WorkspacePresence against a real relay process with JWT auth: people see
 * each other in the workspace with the names from their tokens (a client
 * cannot claim another name), a reader is present too, whoever closes is
 * shown as last seen, the relay's `list-presence` agrees, and the presence
 * doc never shows up as a record (`store.pull`).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { MemoryStorage, RecordStore, SyncClient, WorkspacePresence, type WorkspacePerson } from '@concord/engine'
import { appSchemas } from '../apps/web/src/lib/schemas.js'
import { removeDir, startRelay, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'

let relay: RelayProcess
const clients: SyncClient[] = []
const presences: WorkspacePresence[] = []
const stores: RecordStore[] = []
beforeAll(async () => {
  relay = await startRelay({ env: { JWT_SECRET: TEST_SECRET } })
})
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const p of presences.splice(0)) p.destroy()
  for (const c of clients.splice(0)) c.close()
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})

const join = async (userId: string, workspace: string, access: 'read' | 'write' = 'write') => {
  const token = await signToken(userId, { [workspace]: access }, { name: userId.toUpperCase() })
  const client = new SyncClient({ url: relay.wsUrl, WebSocket: WebSocket as never, token, user: { id: userId, name: 'Claimed Name' } })
  clients.push(client)
  const presence = new WorkspacePresence(client, workspace, { refreshInterval: 0 })
  presences.push(presence)
  return { client, presence }
}

/** Resolves when `predicate(people)` holds. */
const until = (presence: WorkspacePresence, predicate: (people: WorkspacePerson[]) => boolean): Promise<WorkspacePerson[]> =>
  new Promise((resolve) => {
    const check = (): void => {
      if (!predicate(presence.people)) return
      presence.off('change', check)
      resolve(presence.people)
    }
    presence.on('change', check)
    check()
  })

const online = (people: WorkspacePerson[]): string[] =>
  people
    .filter((p) => p.online)
    .map((p) => p.name)
    .sort()

describe('WorkspacePresence on a relay with auth', () => {
  it('people see each other with their token names; a reader is present; who closes is last seen', async () => {
    const ada = await join('ada', 'team')
    const bob = await join('bob', 'team')
    const cleo = await join('cleo', 'team', 'read')
    await until(ada.presence, (people) => online(people).length === 3)
    await until(cleo.presence, (people) => online(people).length === 3)
    await until(bob.presence, (people) => online(people).length === 3)
    // Others' names are the relay-stamped token names, not what their clients claimed.
    const others = (people: WorkspacePerson[]) => online(people.filter((p) => !p.self))
    expect(others(bob.presence.people)).toEqual(['ADA', 'CLEO'])
    expect(others(cleo.presence.people)).toEqual(['ADA', 'BOB'])
    expect(bob.presence.people.find((p) => p.userId === 'ada')).toMatchObject({ online: true, self: false, clients: 1 })
    expect(bob.presence.people[0]).toMatchObject({ userId: 'bob', self: true })

    const leftAt = Date.now()
    ada.presence.destroy()
    ada.client.close()
    const people = await until(bob.presence, (list) => list.find((p) => p.userId === 'ada')?.online === false)
    expect(people.find((p) => p.userId === 'ada')!.lastSeen).toBeGreaterThanOrEqual(leftAt - 1000)

    // The relay's list-presence knows the same people (it counts the presence doc as being in the workspace).
    const seen = await bob.client.lastSeen('team')
    expect(seen.find((u) => u.userId === 'bob')).toMatchObject({ online: true, name: 'BOB' })
    expect(seen.find((u) => u.userId === 'ada')).toMatchObject({ online: false, name: 'ADA' })
    await bob.presence.refresh()
    expect(bob.presence.people.find((p) => p.userId === 'ada')).toMatchObject({ online: false, name: 'ADA' })
  })

  it('the presence doc is not a record: pull lists only records', async () => {
    const ada = await join('ada2', 'team2')
    const store = new RecordStore({
      client: ada.client,
      userId: 'ada2',
      workspaceId: 'team2',
      schemas: appSchemas,
      tabs: false,
      storage: new MemoryStorage(),
    })
    stores.push(store)
    const ticket = await store.create('ticket', { title: 'Only record' }, { id: 'T-1' })
    await ticket.flush()
    ticket.close()
    const bob = await join('bob2', 'team2')
    const other = new RecordStore({
      client: bob.client,
      userId: 'bob2',
      workspaceId: 'team2',
      schemas: appSchemas,
      tabs: false,
      storage: new MemoryStorage(),
    })
    stores.push(other)
    await other.pull()
    expect(other.list().entries.map((e) => e.id)).toEqual(['T-1'])
  })
})
