/**
 * WorkspacePresence against the real relay in-process: two people in one workspace see
 * each other online; one leaves and is shown as last seen then; the relay's
 * `list-presence` answer and remembered records fill in people not seen live.
 */
import { afterEach, describe, expect, test, vi } from 'vitest'
import { WorkspacePresence, type WorkspacePerson } from '../src/index.js'
import { workspacePresenceDoc } from '../src/internal.js'
import { Harness } from './helpers.js'

const h = new Harness()
const presences: WorkspacePresence[] = []
afterEach(() => {
  for (const p of presences.splice(0)) p.destroy()
  h.cleanup()
})

const summary = (people: WorkspacePerson[]) => people.map((p) => `${p.name}:${p.online ? 'online' : 'offline'}${p.self ? ':me' : ''}`)

describe('WorkspacePresence', () => {
  test('people see each other online; whoever leaves is last seen then', async () => {
    const relay = h.relay()
    let now = 1_000_000
    const clock = () => now
    const alice = h.client(relay, { user: { id: 'u1', name: 'Alice', color: '#0a0' } })
    const bob = h.client(relay, { user: { id: 'u2', name: 'Bob', color: '#f00' } })
    const a = new WorkspacePresence(alice, 'acme', { refreshInterval: 0, now: clock })
    const b = new WorkspacePresence(bob, 'acme', { refreshInterval: 0, now: clock })
    presences.push(a, b)
    await relay.settle()
    expect(a.handle.name).toBe(workspacePresenceDoc('acme'))
    expect(summary(a.people)).toEqual(['Alice:online:me', 'Bob:online'])
    expect(summary(b.people)).toEqual(['Bob:online:me', 'Alice:online'])
    expect(a.people[1]).toMatchObject({ userId: 'u2', color: '#f00', clients: 1 })

    const changes: WorkspacePerson[][] = []
    a.on('change', (people) => changes.push(people))
    now += 5_000
    b.destroy()
    await relay.settle()
    expect(summary(a.people)).toEqual(['Alice:online:me', 'Bob:offline'])
    expect(a.people[1]).toMatchObject({ lastSeen: now, clients: 0 })
    expect(changes.length).toBeGreaterThan(0)
    expect(a.remembered.map((p) => p.userId).sort()).toEqual(['u1', 'u2'])
  })

  test('remembered people and the relay list-presence answer fill in teammates not seen live', async () => {
    const relay = h.relay()
    await relay.remember('acme', [{ userId: 'u7', name: 'Carol', lastSeen: 42 }])
    const alice = h.client(relay, { user: { id: 'u1', name: 'Alice' } })
    const a = new WorkspacePresence(alice, 'acme', {
      refreshInterval: 0,
      remembered: [{ userId: 'u9', name: 'Old Friend', color: '#00f', lastSeen: 5 }],
    })
    presences.push(a)
    await relay.settle()
    await a.refresh()
    const people = a.people
    expect(summary(people).slice(0, 1)).toEqual(['Alice:online:me'])
    expect(people.find((p) => p.userId === 'u7')).toMatchObject({ name: 'Carol', online: false, lastSeen: 42 })
    expect(people.find((p) => p.userId === 'u9')).toMatchObject({ name: 'Old Friend', online: false, lastSeen: 5, color: '#00f' })
    // Older records come last.
    expect(people.at(-1)!.userId).toBe('u9')
  })

  test('asks the relay for last-seen times when it comes online, and not again while it stays online', async () => {
    const relay = h.relay()
    const alice = h.client(relay, { user: { id: 'u1', name: 'Alice' } })
    const asked = vi.spyOn(alice, 'lastSeen')
    vi.useFakeTimers({ toFake: ['setInterval'] })
    try {
      const a = new WorkspacePresence(alice, 'acme')
      presences.push(a)
      await relay.settle()
      const atStart = asked.mock.calls.length
      vi.advanceTimersByTime(10 * 60_000) // ten idle minutes
      await relay.settle()
      expect(asked.mock.calls.length).toBe(atStart)
      alice.reconnect()
      await vi.waitFor(() => expect(alice.status).toBe('online'))
      await relay.settle()
      expect(asked.mock.calls.length).toBe(atStart + 1) // back online: asked once
    } finally {
      vi.useRealTimers()
    }
  })
})
