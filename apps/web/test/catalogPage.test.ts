/**
 * The list pages' shared parts without a browser: following the catalog
 * (and the clock of relative times), and the "New …" button's creator.
 */
import type { RecordHandle, RecordStore } from '@concord/engine'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CLOCK_INTERVAL_MS, RecordCreator, followCatalog } from '../src/lib/catalogPage.svelte'

afterEach(() => {
  vi.useRealTimers()
})

/** A store that only has events. */
const eventStore = () => {
  const listeners = new Map<string, Set<() => void>>()
  return {
    listeners,
    on: (event: string, f: () => void) => {
      if (!listeners.has(event)) listeners.set(event, new Set())
      listeners.get(event)!.add(f)
    },
    off: (event: string, f: () => void) => listeners.get(event)?.delete(f),
    emit: (event: string) => listeners.get(event)?.forEach((f) => f()),
  }
}

describe('followCatalog', () => {
  it('refreshes now, on catalog and pending changes, ticks the clock, and stops', () => {
    vi.useFakeTimers()
    const store = eventStore()
    const refresh = vi.fn()
    const tick = vi.fn()
    const stop = followCatalog(store as unknown as RecordStore, refresh, tick)
    expect(refresh).toHaveBeenCalledTimes(1)
    store.emit('catalog')
    store.emit('pending')
    expect(refresh).toHaveBeenCalledTimes(3)
    vi.advanceTimersByTime(CLOCK_INTERVAL_MS * 2)
    expect(tick).toHaveBeenCalledTimes(2)

    stop()
    store.emit('catalog')
    store.emit('pending')
    vi.advanceTimersByTime(CLOCK_INTERVAL_MS * 2)
    expect(refresh).toHaveBeenCalledTimes(3)
    expect(tick).toHaveBeenCalledTimes(2)
    expect([...store.listeners.values()].every((set) => set.size === 0)).toBe(true)
  })
})

describe('RecordCreator', () => {
  const setup = (fail = false) => {
    let finish!: () => void
    const handle = { id: 'N1', close: vi.fn() }
    const create = vi.fn(
      () =>
        new Promise<RecordHandle>((resolve, reject) => {
          finish = () => (fail ? reject(new Error('storage is full')) : resolve(handle as unknown as RecordHandle))
        }),
    )
    const oncreated = vi.fn()
    const navigate = vi.fn()
    const creator = new RecordCreator({ store: () => ({ create }), oncreated, navigate })
    return { creator, create, handle, oncreated, navigate, finish: () => finish() }
  }

  it('creates one record at a time, tells its id, releases it and opens its page', async () => {
    const t = setup()
    const first = t.creator.create('project', { lead: 'ada' })
    expect(t.creator.creating).toBe(true)
    await t.creator.create('project', { lead: 'ada' }) // a second click while creating: nothing
    expect(t.create).toHaveBeenCalledTimes(1)
    t.finish()
    await first
    expect(t.create).toHaveBeenCalledWith('project', { lead: 'ada' })
    expect(t.oncreated).toHaveBeenCalledWith('N1')
    expect(t.handle.close).toHaveBeenCalled()
    expect(t.navigate).toHaveBeenCalledWith('#/p/N1')
    expect(t.creator.creating).toBe(false)

    const second = t.creator.create('ticket', { assignee: 'ada' })
    t.finish()
    await second
    expect(t.navigate).toHaveBeenLastCalledWith('#/t/N1')
  })

  it('a failed create rejects and lets the button be used again', async () => {
    const t = setup(true)
    const creating = t.creator.create('ticket', {})
    t.finish()
    await expect(creating).rejects.toThrow('storage is full')
    expect(t.creator.creating).toBe(false)
    expect(t.oncreated).not.toHaveBeenCalled()
    expect(t.navigate).not.toHaveBeenCalled()
  })
})
