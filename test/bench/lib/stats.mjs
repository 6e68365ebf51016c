/**
 * Small statistics and formatting helpers for the benchmarks.
 *
 * @module bench/lib/stats
 */

/** Median of a list of numbers (NaN for an empty list). */
export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** The p-quantile (0 ≤ p ≤ 1) of a Float64Array or array, nearest-rank. Sorts a copy. */
export const quantile = (xs, p) => {
  if (xs.length === 0) return NaN
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
}

/** Median of one field over a list of result objects. */
export const medianOf = (results, key) => median(results.map((r) => r[key]))

/** A number with 3 significant digits (integers above 100 as integers). */
export const fmt = (n) => {
  if (n === undefined || n === null || Number.isNaN(n)) return '—'
  const a = Math.abs(n)
  if (a >= 100) return Math.round(n).toLocaleString('en-US')
  if (a >= 10) return n.toFixed(1)
  if (a >= 1) return n.toFixed(2)
  return n.toPrecision(2)
}

/** An integer with thousands separators. */
export const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—')

/** `a / b` as `1.23×`, or — when either is missing. */
export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—')

/** Bytes as B / KiB / MiB. */
export const bytes = (n) => {
  if (!Number.isFinite(n)) return '—'
  if (Math.abs(n) >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`
  if (Math.abs(n) >= 10 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (Math.abs(n) >= 1024) return `${(n / 1024).toFixed(2)} KiB`
  return `${Math.round(n)} B`
}

/** Contender order for repetition `rep`: as given on even repetitions, reversed on odd ones. */
export const alternate = (list, rep) => (rep % 2 === 0 ? [...list] : [...list].reverse())

/** A seeded PRNG (mulberry32): returns floats in [0, 1). */
export const prng = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with `promise`, or rejects after `ms` with `what` in the message. */
export const withTimeout = (promise, ms, what) => {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
