/**
 * Sizes, seeds and figures shared by the reliability suites.
 *
 * Every suite runs bounded in `npm test` and long through
 * `npm run test:chaos -- --cycles N --seed S --minutes M` (see
 * `test/reliability/chaos.mjs`), which passes its options as the
 * environment variables read here. A run uses one seed: `CHAOS_SEED` when
 * given (to replay a failure), else a fresh one, printed with the figures and
 * in every failure message.
 *
 * @module test/reliability/lib/runOptions
 */

/** The seed of this run: `CHAOS_SEED`, else a fresh one. */
export const runSeed = (): number => {
  const given = process.env.CHAOS_SEED
  if (given !== undefined && given !== '') return Number(given)
  return Math.floor(Math.random() * 2 ** 31)
}

/** A whole number from the environment variable `name`, else `fallback`. */
export const envInt = (name: string, fallback: number): number => {
  const value = process.env[name]
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${value}"`)
  return n
}

/** Whether the long run (`npm run test:chaos`) is running, rather than `npm test`. */
export const isLongRun = (): boolean => process.env.CHAOS_LONG === '1'

/** The `p`-th percentile (0–100) of `values` (nearest rank); NaN when empty. */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/** `p50 / p99 / max` of `values`, in ms with one decimal. */
export const summary = (values: readonly number[]): string =>
  `p50 ${percentile(values, 50).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms, max ${percentile(values, 100).toFixed(1)} ms (n=${values.length})`

/** Prints one figure line of a suite, marked so the long run's output can be grepped. */
export const report = (suite: string, line: string): void => {
  console.log(`[reliability] ${suite}: ${line}`)
}

/**
 * How long the suites wait for a relay to print `listening on …`: on a
 * loaded machine a start can take many seconds, and a slow start is not
 * what these suites test (start-up time is measured, in `relay-startup.test.ts`).
 */
export const RELAY_START_TIMEOUT_MS = 60_000
