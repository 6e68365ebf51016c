/**
 * Sweeps over many rooms or connections run in slices, the event loop free
 * between them: each slice stops once its time is up (a fake clock here, so
 * the counts are exact), always after at least one item.
 */
import { describe, expect, it } from 'vitest'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { inSlices } from '../src/inSlices.js'

/** A clock that moves 1 ms with every item visited. */
const steppingClock = () => {
  let t = 0
  return { now: () => t, step: () => void t++ }
}

describe('inSlices', () => {
  it('visits every item once, in order, as many per turn as fit in the slice, and lets other work run between slices', async () => {
    const clock = steppingClock()
    const seen: number[] = []
    const between: number[] = []
    const done = inSlices(
      Array.from({ length: 10 }, (_, i) => i),
      (i) => {
        seen.push(i)
        clock.step()
      },
      { sliceMs: 3, now: clock.now },
    )
    // the first slice runs at once: items 0, 1 and 2 take the slice's 3 ms
    expect(seen).toEqual([0, 1, 2])
    // work queued meanwhile runs before the next slice
    const other = (async () => {
      for (let k = 0; k < 4; k++) {
        between.push(seen.length)
        await nextTurn()
      }
    })()
    await done
    await other
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(between).toEqual([3, 6, 9, 10])
  })

  it('one item per turn when the slice is 0 ms, so a sweep of many items never holds the loop for more than one', async () => {
    const seen: string[] = []
    const done = inSlices(['a', 'b', 'c'], (x) => void seen.push(x), { sliceMs: 0, now: () => 0 })
    expect(seen).toEqual(['a'])
    await nextTurn()
    expect(seen).toEqual(['a', 'b'])
    await done
    expect(seen).toEqual(['a', 'b', 'c'])
  })

  it('a set changed between slices goes on from where it was: deleted items are skipped, added ones visited', async () => {
    const items = new Set(['a', 'b', 'c', 'd'])
    const seen: string[] = []
    const done = inSlices(items, (x) => void seen.push(x), { sliceMs: 0, now: () => 0 })
    items.delete('c')
    items.add('e')
    await done
    expect(seen).toEqual(['a', 'b', 'd', 'e'])
  })

  it('an exception ends the sweep and rejects; items after it are not visited', async () => {
    const seen: number[] = []
    const done = inSlices(
      [1, 2, 3],
      (i) => {
        if (i === 2) throw new Error('room 2 failed')
        seen.push(i)
      },
      { sliceMs: 0, now: () => 0 },
    )
    await expect(done).rejects.toThrow('room 2 failed')
    expect(seen).toEqual([1])
  })

  it('an empty list resolves at once', async () => {
    let calls = 0
    await inSlices([], () => void calls++)
    expect(calls).toBe(0)
  })
})
