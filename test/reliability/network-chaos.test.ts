/**
 * Convergence under network chaos, bounded (`networkChaos.ts` says what is
 * checked): ≥ 200 small seeded schedules of edits, cuts, partitions, delays,
 * replayed frames and relay restarts against a real relay, 0 divergences.
 *
 * A fresh run seed each time, printed with the figures; a failure names the
 * run seed and the schedule seed. Replay a run with
 * `CHAOS_SEED=<seed> npx vitest run test/reliability/network-chaos.test.ts`,
 * one schedule with `CHAOS_SEED=<seed> CHAOS_SCHEDULE_SEED=<schedule seed>`. The long run:
 * `npm run test:chaos -- --suite chaos --schedules 10000 --seed S`.
 * Runs the relay from `apps/relay/dist`: build first.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir } from '../helpers/relayProcess.js'
import { runChaosSchedules, type ChaosRunOptions } from './networkChaos.js'
import { envInt, isLongRun, report, runSeed, summary } from './lib/runOptions.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir)
})

const run = async (options: Omit<ChaosRunOptions, 'dataDir'>) => {
  const dataDir = makeTempDir('concord-chaos-')
  dirs.push(dataDir)
  try {
    return await runChaosSchedules({ ...options, dataDir })
  } catch (error) {
    throw new Error(
      `network chaos failed with seed ${options.seed} (replay: CHAOS_SEED=${options.seed} npx vitest run test/reliability/network-chaos.test.ts): ${String(error)}`,
      { cause: error },
    )
  }
}

describe('convergence under network chaos', () => {
  const seed = runSeed()
  /** One schedule's seed, from a failure message: only that schedule runs. */
  const scheduleSeed = process.env.CHAOS_SCHEDULE_SEED
  const schedules = scheduleSeed ? 1 : envInt('CHAOS_SCHEDULES', 200)
  const minutes = envInt('CHAOS_MINUTES', 0)
  /** `CHAOS_RESUME=0`: the clients subscribe doc by doc after reconnects (the engine's `resume` option off). */
  const resume = process.env.CHAOS_RESUME !== '0'
  it(
    `seed ${seed}: ${schedules} schedules converge${resume ? '' : ' (resume off)'}, and the relay holds what every client holds`,
    { timeout: isLongRun() ? 0 : 180_000 },
    async () => {
      const started = performance.now()
      const figures = await run({ seed, schedules, minutes, resume, ...(scheduleSeed && { scheduleSeeds: [Number(scheduleSeed)] }) })
      report(
        'chaos',
        `seed ${seed}: ${figures.schedules} schedules in ${((performance.now() - started) / 1000).toFixed(1)} s, 0 divergences, ${figures.edits} edits, ` +
          `${figures.cuts} connections cut, ${figures.partitions} partitions, ${figures.replayed} frames replayed, ${figures.restarts} relay restarts, ` +
          `client errors ${JSON.stringify(figures.errors)}; ${figures.changedAfterConverging} read again after a change made after converging; time to converge after healing ${summary(figures.convergeMs)}`,
      )
      // A time-bounded long run (`--minutes`) stops early; a count-bounded one does them all.
      if (minutes === 0) expect(figures.schedules).toBe(schedules)
      else expect(figures.schedules).toBeGreaterThan(0)
    },
  )
  // Resume is an option: the doc-by-doc path it replaces keeps a bounded run of its own.
  const offSchedules = 50
  it.skipIf(isLongRun() || scheduleSeed !== undefined || !resume)(
    `seed ${seed}: ${offSchedules} schedules converge with resume off`,
    { timeout: 120_000 },
    async () => {
      const figures = await run({ seed, schedules: offSchedules, minutes: 0, resume: false })
      report(
        'chaos',
        `seed ${seed}: ${figures.schedules} schedules with resume off, 0 divergences, ${figures.replayed} frames replayed, ${figures.restarts} relay restarts`,
      )
      expect(figures.schedules).toBe(offSchedules)
    },
  )
})
