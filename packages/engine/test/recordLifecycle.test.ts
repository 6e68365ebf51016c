/**
 * The record lifecycle: every state a record doc can be in, which may
 * follow which, and a clear error for a move the table does not allow.
 */
import { describe, expect, test } from 'vitest'
import type { OpenRecord } from '../src/records/OpenRecord.js'
import { CLOSED, LifecycleError, NEXT_STATES, RecordLifecycle, RecordState } from '../src/records/RecordLifecycle.js'

/** A stand-in record: the lifecycle only holds it. */
const fakeRecord = (id: string): OpenRecord => ({ id }) as unknown as OpenRecord

describe('RecordLifecycle', () => {
  test('a record goes closed → opening → open → idle → closing → closed', async () => {
    const lifecycle = new RecordLifecycle()
    const record = fakeRecord('T-1')
    expect(lifecycle.stateOf('T-1')).toBe(CLOSED)
    lifecycle.toOpening('T-1', Promise.resolve(record))
    expect(lifecycle.stateOf('T-1')).toBe(RecordState.opening)
    expect(lifecycle.recordOf('T-1')).toBeUndefined()
    lifecycle.toOpen('T-1', record)
    expect(lifecycle.recordOf('T-1')).toBe(record)
    let timerCancelled = 0
    lifecycle.toIdle('T-1', record, () => timerCancelled++)
    expect(lifecycle.stateOf('T-1')).toBe(RecordState.idle)
    expect(lifecycle.openIds()).toEqual(['T-1'])
    let closed!: () => void
    lifecycle.toClosing('T-1', new Promise<void>((resolve) => (closed = resolve)))
    expect(timerCancelled).toBe(1) // leaving idle stops its timer
    expect(lifecycle.stateOf('T-1')).toBe(RecordState.closing)
    expect(lifecycle.records()).toEqual([])
    closed()
    await Promise.resolve()
    await Promise.resolve()
    expect(lifecycle.stateOf('T-1')).toBe(CLOSED) // the entry goes once closing is done
  })

  test('an idle record used again is open again, with its idle timer stopped', () => {
    const lifecycle = new RecordLifecycle()
    const record = fakeRecord('T-1')
    lifecycle.toOpening('T-1', Promise.resolve(record))
    lifecycle.toOpen('T-1', record)
    let timerCancelled = 0
    lifecycle.toIdle('T-1', record, () => timerCancelled++)
    lifecycle.toOpen('T-1', record)
    expect(lifecycle.stateOf('T-1')).toBe(RecordState.open)
    expect(timerCancelled).toBe(1)
  })

  test('a move the table does not allow is refused with a clear error, and the state stays', () => {
    const lifecycle = new RecordLifecycle()
    const record = fakeRecord('T-1')
    // Closed: a record must be loaded before it is open.
    expect(() => lifecycle.toOpen('T-1', record)).toThrow(LifecycleError)
    expect(() => lifecycle.toOpen('T-1', record)).toThrow('record "T-1": cannot go from closed to open (allowed: opening, closing, parked)')
    expect(lifecycle.stateOf('T-1')).toBe(CLOSED)

    lifecycle.toOpening('T-1', Promise.resolve(record))
    // Opening twice would load the record twice.
    const twice = (): void => lifecycle.toOpening('T-1', Promise.resolve(record))
    expect(twice).toThrow(/cannot go from opening to opening/)
    expect(() => lifecycle.toIdle('T-1', record, () => {})).toThrow(/cannot go from opening to idle/)
    expect(lifecycle.stateOf('T-1')).toBe(RecordState.opening)

    lifecycle.toParked('T-1', {
      taken: Promise.resolve(undefined),
      done: new Promise<void>(() => {}),
      release: () => {},
      cancelTimer: () => {},
    })
    // A parked record waits for the discarding tab: it is never opened from there directly.
    expect(() => lifecycle.toOpening('T-1', Promise.resolve(record))).toThrow(/cannot go from parked to opening/)
    try {
      lifecycle.toOpen('T-1', record)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(LifecycleError)
      expect(error).toMatchObject({ recordId: 'T-1', from: RecordState.parked, to: RecordState.open })
    }
  })

  test('every state is in the table and every move in it names a state', () => {
    const states = [...Object.values(RecordState), CLOSED]
    expect(Object.keys(NEXT_STATES).sort()).toEqual([...states].sort())
    for (const next of Object.values(NEXT_STATES)) for (const state of next) expect(states).toContain(state)
  })

  test('clearing ends every entry and stops the timers it holds', () => {
    const lifecycle = new RecordLifecycle()
    const a = fakeRecord('A')
    let stopped = 0
    lifecycle.toOpening('A', Promise.resolve(a))
    lifecycle.toOpen('A', a)
    lifecycle.toIdle('A', a, () => stopped++)
    lifecycle.toParked('B', { taken: Promise.resolve(undefined), done: Promise.resolve(), release: () => {}, cancelTimer: () => stopped++ })
    expect(lifecycle.clear().map((entry) => entry.state)).toEqual([RecordState.idle, RecordState.parked])
    expect(stopped).toBe(2)
    expect(lifecycle.stateOf('A')).toBe(CLOSED)
    expect(lifecycle.stateOf('B')).toBe(CLOSED)
  })
})
