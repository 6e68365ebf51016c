/**
 * The long run of the reliability suites in `test/reliability/` (their
 * bounded versions run in `npm test`):
 *
 * ```
 * npm run test:chaos -- [--suite crash|chaos|startup|faults|lifecycle|pageclose|soak|all] [--cycles N] [--schedules N] [--starts N] [--closes N] [--seed S] [--minutes M]
 * ```
 *
 * - `--suite`: which suite (default `all`, one after the other);
 * - `--cycles`: SIGKILL cycles of the crash durability suite (default 1,000);
 * - `--schedules`: network chaos schedules (default 10,000);
 * - `--starts`: relay starts on 10,000 stored docs (default 200);
 * - `--closes`: seeded browser kills and tab closes while typing offline in
 *   Chromium (`test/browser/web-page-close.test.ts`, default 50; 4 in
 *   `npm test`);
 * - `faults` (storage faults) has no size; `lifecycle` opens and closes
 *   10,000 docs in the long run (1,000 in `npm test`);
 * - `soak` runs only here, for `--minutes` (skipped without): steady
 *   editing, reconnects and room churn against one relay, whose RSS and heap
 *   are sampled (every `CHAOS_SOAK_SAMPLE_SECONDS`, default 1/120 of the
 *   run) and must not keep growing after the warm-up (`soak.test.ts`);
 * - `--seed`: the run seed of every suite (default: a fresh one each, printed);
 * - `--minutes`: each suite stops starting new cycles / schedules after this
 *   long (with `--minutes` and no `--cycles` / `--schedules`, the time alone
 *   bounds them).
 *
 * The suites run in vitest (one process, `CHAOS_*` environment variables
 * carry the options, see `lib/runOptions.ts`); this script prints their
 * figure lines again at the end. Exit code: vitest's.
 *
 * @module test/reliability/chaos
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const SUITES = {
  crash: 'test/reliability/crash-durability.test.ts',
  chaos: 'test/reliability/network-chaos.test.ts',
  startup: 'test/reliability/relay-startup.test.ts',
  faults: 'test/reliability/storage-faults.test.ts',
  lifecycle: 'test/reliability/lifecycle.test.ts',
  pageclose: 'test/browser/web-page-close.test.ts',
  soak: 'test/reliability/soak.test.ts',
}
const OPTIONS = ['--suite', '--cycles', '--schedules', '--starts', '--closes', '--seed', '--minutes']
/** A count that only time bounds. */
const UNBOUNDED = 1_000_000_000

/** Reads `--name value` / `--name=value` flags; exits with a message on anything else. */
const parseArgs = (argv) => {
  const values = {}
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2)
    const value = inline ?? argv[++i]
    if (!OPTIONS.includes(flag) || value === undefined) {
      console.error(
        `chaos: unknown option or missing value: ${argv[i] ?? flag}\nUsage: npm run test:chaos -- ${OPTIONS.map((o) => `[${o} …]`).join(' ')}`,
      )
      process.exit(2)
    }
    if (flag !== '--suite' && !/^\d+$/.test(value)) {
      console.error(`chaos: ${flag} must be a whole number, got "${value}"`)
      process.exit(2)
    }
    values[flag.slice(2)] = value
  }
  return values
}

const args = parseArgs(process.argv.slice(2))
const suite = args.suite ?? 'all'
if (suite !== 'all' && !(suite in SUITES)) {
  console.error(`chaos: --suite must be one of ${Object.keys(SUITES).join(', ')} or all`)
  process.exit(2)
}
const timeBound = args.minutes !== undefined
const env = {
  ...process.env,
  CHAOS_LONG: '1',
  CHAOS_CYCLES: args.cycles ?? String(timeBound ? UNBOUNDED : 1_000),
  CHAOS_SCHEDULES: args.schedules ?? String(timeBound ? UNBOUNDED : 10_000),
  CHAOS_STARTS: args.starts ?? '200',
  PAGE_CLOSES: args.closes ?? '50',
  CHAOS_MINUTES: args.minutes ?? '0',
  ...(args.seed !== undefined && { CHAOS_SEED: args.seed }),
}
const files = suite === 'all' ? Object.values(SUITES) : [SUITES[suite]]
console.log(
  `chaos: ${files.join(', ')} with ${['CHAOS_CYCLES', 'CHAOS_SCHEDULES', 'CHAOS_STARTS', 'PAGE_CLOSES', 'CHAOS_MINUTES', 'CHAOS_SEED'].map((k) => `${k}=${env[k] ?? '(fresh)'}`).join(' ')}`,
)

const figures = []
const child = spawn(process.execPath, [path.join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', '--fileParallelism=false', ...files], {
  cwd: repoRoot,
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
})
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  for (const line of chunk.toString().split('\n'))
    if (line.includes('[reliability]')) figures.push(line.slice(line.indexOf('[reliability]')))
})
child.on('exit', (code) => {
  console.log(`\nchaos: figures\n${figures.join('\n')}`)
  process.exit(code ?? 1)
})
