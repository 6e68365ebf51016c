// Builds the engine, relay (compiled, then bundled) and web app when their
// output is missing or older than their sources. Used by `npm start` and `npm run relay`.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { bundleIsStale, bundleRelay } from './bundle-relay.mjs'
import { root, stale } from './stale.mjs'

export { root }

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
