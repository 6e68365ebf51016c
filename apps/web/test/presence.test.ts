import { describe, expect, it } from 'vitest'
import { editorsOf, peersFromStates, presenceSummary } from '../src/lib/presence'

describe('peersFromStates', () => {
  const states = new Map<number, Record<string, unknown>>([
    [3, { user: { id: 'u-b', name: 'Bea', color: '#30a46c' }, editing: 'title' }],
    [1, { user: { id: 'u-me', name: 'Me', color: '#0090ff' }, editing: null }],
    [7, { user: { id: 'u-me', name: 'Me', color: '#0090ff' }, editing: 'description' }],
    [5, { user: { id: 'u-a', name: 'Ann', color: 'javascript:alert(1)' }, editing: 'bogus' }],
    [9, {}],
  ])

  it('lists this tab first, then others by name, with sanitised fields', () => {
    const peers = peersFromStates(states, 1, 'u-me')
    expect(peers.map((peer) => [peer.clientId, peer.name])).toEqual([
      [1, 'Me'],
      [5, 'Ann'],
      [9, 'Anonymous'],
      [3, 'Bea'],
      [7, 'Me'],
    ])
    expect(peers[0]!.isSelf).toBe(true)
    const ann = peers.find((peer) => peer.clientId === 5)!
    expect(ann.color).toBe('#8b8d98')
    expect(ann.editing).toBeNull()
    const otherTab = peers.find((peer) => peer.clientId === 7)!
    expect(otherTab.isSelfElsewhere).toBe(true)
    expect(otherTab.isSelf).toBe(false)
  })

  it('finds who edits a field, excluding this tab', () => {
    const peers = peersFromStates(states, 3, 'u-b')
    expect(editorsOf(peers, 'title')).toEqual([])
    expect(editorsOf(peers, 'description').map((peer) => peer.clientId)).toEqual([7])
  })

  it('lists a user editing in two tabs once', () => {
    const twoTabs = new Map<number, Record<string, unknown>>([
      [1, { user: { id: 'me', name: 'Me' } }],
      [2, { user: { id: 'ada', name: 'Ada' }, editing: 'title' }],
      [3, { user: { id: 'ada', name: 'Ada' }, editing: 'title' }],
    ])
    expect(editorsOf(peersFromStates(twoTabs, 1, 'me'), 'title').map((peer) => peer.clientId)).toEqual([2])
  })

  it('summarises', () => {
    expect(presenceSummary(peersFromStates(new Map([[1, { user: { name: 'Me' } }]]), 1, 'x'))).toBe('Only you right now')
    expect(presenceSummary(peersFromStates(states, 1, 'u-me'))).toBe('You and 4 others')
  })
})
