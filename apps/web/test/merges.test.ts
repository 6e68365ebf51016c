import { describe, expect, it } from 'vitest'
import { VERSION_SHOWN_WHOLE, versionExcerpt } from '../src/lib/merges'

const log = `Crash log:\n${Array.from({ length: 40 }, (_, i) => `  at render${i} (app.js:${100 + i}:${i * 7})`).join('\n')}\n`

describe('what a merge card shows of a version', () => {
  it('a short version whole', () => {
    const base = 'The app crashes when it starts.'
    expect(versionExcerpt(base, 'The app crashes on every start.')).toEqual({
      text: 'The app crashes on every start.',
      cutBefore: false,
      cutAfter: false,
    })
  })

  it('of a long one, the whole lines that differ from the base, and that lines were left out around them', () => {
    expect(log.length).toBeGreaterThan(VERSION_SHOWN_WHOLE)
    const base = `${log}Sync is slow on login.\nSeen on 2.4 and 2.5.`
    expect(versionExcerpt(base, `${log}Login takes 3 s on a cold start.\nSeen on 2.4 and 2.5.`)).toEqual({
      text: 'Login takes 3 s on a cold start.',
      cutBefore: true,
      cutAfter: true,
    })
    // A word changed inside a line: the whole line.
    expect(versionExcerpt(base, `${log}Sync is very slow on login.\nSeen on 2.4 and 2.5.`).text).toBe('Sync is very slow on login.')
    // At the start: nothing left out before it.
    expect(versionExcerpt(`Intro.\n${log}`, `Summary first.\n${log}`)).toEqual({ text: 'Summary first.', cutBefore: false, cutAfter: true })
    // Several lines apart: everything from the first to the last that differs.
    const two = versionExcerpt(`${log}one\ntwo\nthree`, `${log}ONE\ntwo\nTHREE`)
    expect(two).toEqual({ text: 'ONE\ntwo\nTHREE', cutBefore: true, cutAfter: false })
  })

  it('a version that only deleted lines shows the lines around the gap', () => {
    const base = `${log}Sync is slow on login.\nSeen on 2.4 and 2.5.\nOwner: tbd.`
    const version = `${log}Sync is slow on login.\nOwner: tbd.`
    const shown = versionExcerpt(base, version)
    expect(shown.cutBefore).toBe(true)
    expect(version).toContain(shown.text)
    expect(shown.text.length).toBeLessThan(60)
  })

  it('without a known base, whole', () => {
    expect(versionExcerpt(null, log)).toEqual({ text: log, cutBefore: false, cutAfter: false })
  })
})
