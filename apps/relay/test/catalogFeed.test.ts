import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { CatalogFeed, MAX_NAMES_PER_NOTICE, type CatalogWatcher } from '../src/rooms/CatalogFeed.js'

/** A watcher that records its notices and may read what `readable` allows. */
const watcher = (readable: (doc: string) => boolean = () => true) => {
  const notices: Array<{ workspace: string; names: string[] }> = []
  const w: CatalogWatcher = {
    mayRead: readable,
    sendCatalogChanged: (workspace, names) => notices.push({ workspace, names: [...names] }),
  }
  return { w, notices }
}

describe('CatalogFeed', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('coalesces the commits of one window into one notice, one name per doc', () => {
    const feed = new CatalogFeed({ coalesceMs: 50 })
    const ada = watcher()
    feed.watch('acme', ada.w)
    for (let i = 0; i < 20; i++) feed.publish(['acme/T-1'])
    feed.publish(['acme/T-2', 'globex/S-1', 'no-workspace'])
    expect(ada.notices).toEqual([])
    vi.advanceTimersByTime(50)
    expect(ada.notices).toEqual([{ workspace: 'acme', names: ['acme/T-1', 'acme/T-2'] }])
    feed.publish(['acme/T-1'])
    vi.advanceTimersByTime(50)
    expect(ada.notices).toHaveLength(2)
  })

  it('tells only watchers of the workspace, only docs they may read at send time, nothing after unwatch', () => {
    const feed = new CatalogFeed({ coalesceMs: 10 })
    let granted = true
    const ada = watcher((doc) => doc !== 'acme/hidden' && granted)
    const eve = watcher()
    feed.watch('acme', ada.w)
    feed.watch('acme', ada.w) // once
    feed.watch('globex', eve.w)
    feed.publish(['acme/T-1', 'acme/hidden'])
    vi.advanceTimersByTime(10)
    expect(ada.notices).toEqual([{ workspace: 'acme', names: ['acme/T-1'] }])
    expect(eve.notices).toEqual([])
    granted = false
    feed.publish(['acme/T-2'])
    vi.advanceTimersByTime(10)
    expect(ada.notices).toHaveLength(1)
    granted = true
    feed.publish(['acme/T-3'])
    feed.unwatch('acme', ada.w)
    vi.advanceTimersByTime(10)
    expect(ada.notices).toHaveLength(1)
    expect(feed.size).toBe(1)
  })

  it('says when a workspace gets its first watch and loses its last', () => {
    const feed = new CatalogFeed()
    const events: Array<[string, boolean]> = []
    feed.onWorkspaceWatched((workspace, watched) => events.push([workspace, watched]))
    const [ada, bob] = [watcher(), watcher()]
    feed.watch('acme', ada.w)
    feed.watch('acme', bob.w)
    feed.watch('acme', ada.w)
    feed.unwatch('acme', ada.w)
    expect(events).toEqual([['acme', true]])
    feed.unwatch('acme', bob.w)
    feed.unwatch('acme', bob.w)
    expect(events).toEqual([
      ['acme', true],
      ['acme', false],
    ])
  })

  it('splits a large window into notices of at most MAX_NAMES_PER_NOTICE names', () => {
    const feed = new CatalogFeed({ coalesceMs: 1 })
    const ada = watcher()
    feed.watch('acme', ada.w)
    feed.publish(Array.from({ length: MAX_NAMES_PER_NOTICE + 5 }, (_, i) => `acme/T-${i}`))
    vi.advanceTimersByTime(1)
    expect(ada.notices.map((n) => n.names.length)).toEqual([MAX_NAMES_PER_NOTICE, 5])
  })
})
