// Builds the engine, relay (compiled, then bundled) and web app when their
// output is missing or older than their sources. Used by `npm start` and `npm run relay`.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleIsStale, bundleRelay } from './bundle-relay.mjs'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const newest = (dir) => {
  let latest = 0
  if (!existsSync(dir)) return latest
  if (!statSync(dir).isDirectory()) return statSync(dir).mtimeMs
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) latest = Math.max(latest, newest(full))
    else latest = Math.max(latest, statSync(full).mtimeMs)
  }
  return latest
}

const stale = (sources, output) =>
  !existsSync(output) || Math.max(...sources.map((s) => newest(path.join(root, s)))) > statSync(output).mtimeMs

const run = (args, env = process.env) => {
  const result = spawnSync('npm', args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

export const buildIfNeeded = async ({ web }) => {
  // incremental: a no-op when nothing changed
  run(['exec', '--silent', '--', 'tsc', '-b', 'packages/engine', 'apps/relay'])
  if (bundleIsStale()) await bundleRelay()
  if (web && stale(['packages/engine/src', 'apps/web/src', 'apps/web/index.html'], path.join(root, 'apps/web/dist/index.html'))) {
    process.stderr.write('building web app…\n')
    // A production build whatever NODE_ENV says (under NODE_ENV=test Vite would leave out the service worker).
    run(['run', 'build', '-w', '@concord/web', '--silent'], { ...process.env, NODE_ENV: 'production' })
  }
}
