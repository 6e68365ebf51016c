/**
 * The soak run (`soak.ts` says what it does and samples): long only,
 *
 * ```
 * npm run test:chaos -- --suite soak --minutes M [--seed S]
 * ```
 *
 * It prints the relay's RSS and heap over time and fails when, after the
 * warm-up, either grows faster than its bound. There is no bounded version
 * in `npm test`: in 30 s the warm-up (JIT, pools, the hot docs' minute-long
 * growth) is larger than any growth a line could show, so it would prove
 * nothing; under `npm test` the test is skipped with that reason. Runs shorter than
 * {@link MIN_VERDICT_MINUTES} print their trend without a verdict.
 * Replay a run's choices with `--seed` (real processes and sockets are not
 * seeded). Runs the relay from `apps/relay/dist`: build first.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir } from '../helpers/relayProcess.js'
import { fitTrend, runSoak, windowMinima, WARM_UP_SHARE, type SoakSample } from './soak.js'
import { envInt, isLongRun, report, runSeed } from './lib/runOptions.js'

/**
 * Growth bounds after the warm-up, bytes per hour. On a quiet machine the use
 * makes about 200 edits and 6 doc opens a second, so a leak of 100 bytes per
 * edit shows as about 70 MB/h and one of 1 KB per doc opened as about 20 MB/h
 * on the heap. What the relay holds of the hot docs stays bounded (they are
 * replaced every minute, `soak.ts`). RSS follows the heap with allocator and
 * code-space slack.
 */
const MAX_HEAP_GROWTH_PER_HOUR = 16 * 1024 * 1024
const MAX_RSS_GROWTH_PER_HOUR = 48 * 1024 * 1024
/** Shorter runs report their trend without failing on it: too few minutes after the warm-up for a line to mean anything. */
const MIN_VERDICT_MINUTES = 10

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir)
})

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)

const printSample = (s: SoakSample): void =>
  console.log(
    `soak t=${s.t.toFixed(0)} s rss=${mb(s.rssBytes)} MB heap=${mb(s.heapUsedBytes)} MB (after GC) rooms=${s.roomsOpen} edits=${s.edits}`,
  )

/** About `rows` samples spread evenly over the run, first and last included. */
const spread = (samples: readonly SoakSample[], rows: number): SoakSample[] => {
  const step = Math.max(1, Math.round((samples.length - 1) / (rows - 1)))
  const picked = samples.filter((_, i) => i % step === 0)
  if (picked.at(-1) !== samples.at(-1)) picked.push(samples.at(-1)!)
  return picked
}

describe('soak trend', () => {
  /** A sample every 5 s for 20 minutes: a GC-like sawtooth of 30 MB (10 s teeth) over a floor that rises `perHour`. */
  const sawtooth = (perHour: number) => {
    const times: number[] = []
    const values: number[] = []
    for (let t = 0; t < 1200; t += 5) {
      times.push(t)
      values.push(100e6 + (perHour * t) / 3600 + (t % 10 === 0 ? 0 : 30e6))
    }
    return { times, values }
  }

  it('fits the floor of each minute: a sawtooth without growth has none, a growing floor shows its growth', () => {
    const flat = sawtooth(0)
    const floor = windowMinima(flat.times, flat.values, 60)
    expect(floor.values).toHaveLength(19) // the 20th minute is not over at the last sample (1,195 s)
    // one more sample just into a 21st minute, at a tooth's top: the 20th is whole now, the 21st is not and is left out
    const withLast = windowMinima([...flat.times, 1210], [...flat.values, 200e6], 60)
    expect(withLast.values).toHaveLength(20)
    expect(Math.max(...withLast.values)).toBe(100e6)
    expect(fitTrend(floor.times, floor.values).perHour).toBeCloseTo(0, 0)
    const growing = sawtooth(40e6)
    const grown = windowMinima(growing.times, growing.values, 60)
    expect(fitTrend(grown.times, grown.values).perHour / 40e6).toBeCloseTo(1, 2)
  })
})

describe('soak', () => {
  const seed = runSeed()
  const minutes = envInt('CHAOS_MINUTES', 0)
  it(`seed ${seed}: relay memory over ${minutes} minutes of steady editing, reconnects and room churn`, { timeout: 0 }, async (ctx) => {
    if (!isLongRun() || minutes === 0)
      ctx.skip('long only: npm run test:chaos -- --suite soak --minutes M (a 30 s run cannot tell growth from the warm-up)')
    const dataDir = makeTempDir('concord-soak-')
    dirs.push(dataDir)
    const sampleMs = envInt('CHAOS_SOAK_SAMPLE_SECONDS', Math.max(2, Math.round((minutes * 60) / 120))) * 1000
    let figures
    try {
      figures = await runSoak({ seed, minutes, sampleMs, dataDir, onSample: printSample })
    } catch (error) {
      throw new Error(
        `soak failed with seed ${seed} (replay: npm run test:chaos -- --suite soak --minutes ${minutes} --seed ${seed}): ${String(error)}`,
        {
          cause: error,
        },
      )
    }
    report('soak', `seed ${seed}, ${minutes} min, a sample every ${sampleMs / 1000} s:`)
    report('soak', '| t (min) | RSS (MB) | heap after GC (MB) | rooms open | edits |')
    report('soak', '|---|---|---|---|---|')
    for (const s of spread(figures.samples, 13))
      report(
        'soak',
        `| ${(s.t / 60).toFixed(1)} | ${mb(s.rssBytes)} | ${mb(s.heapUsedBytes)} | ${s.roomsOpen} | ${s.edits.toLocaleString('en')} |`,
      )
    const verdict = minutes >= MIN_VERDICT_MINUTES
    report(
      'soak',
      `after the first ${WARM_UP_SHARE * 100}%, fitted to the lowest sample of each minute (${figures.heap.samples} points): heap ${mb(figures.heap.perHour)} MB/h (bound ${mb(MAX_HEAP_GROWTH_PER_HOUR)}), ` +
        `RSS ${mb(figures.rss.perHour)} MB/h (bound ${mb(MAX_RSS_GROWTH_PER_HOUR)})${verdict ? '' : ` — no verdict under ${MIN_VERDICT_MINUTES} min`}; ` +
        `${figures.edits} edits, ${figures.reconnects} reconnects, ${figures.clientsReplaced} clients replaced, ${figures.docsChurned} docs opened and closed ` +
        `(${figures.newDocs} new); final flush ${figures.finalFlushSeconds.toFixed(1)} s; a fresh client read every hot doc as the editors hold it`,
    )
    if (verdict) {
      expect(figures.heap.perHour, 'heap growth per hour after the warm-up').toBeLessThanOrEqual(MAX_HEAP_GROWTH_PER_HOUR)
      expect(figures.rss.perHour, 'RSS growth per hour after the warm-up').toBeLessThanOrEqual(MAX_RSS_GROWTH_PER_HOUR)
    }
  })
})
