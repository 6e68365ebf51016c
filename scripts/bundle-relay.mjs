// Bundles the compiled relay (apps/relay/dist, from `tsc -b`) into
// apps/relay/bundle: what `npm start`, `npm run relay`, the container image
// and the integration tests run. Node 20 reads every ES module as its own
// file (resolve, stat, read, compile): the relay and its dependencies are
// some 300 of them, which was most of its start-up time (~590 ms until
// listening on one core; bundled ~330 ms). Restarts after a crash or a
// deploy and every admin command start that much sooner.
//
// Entries (each `<name>.js` in the bundle, sharing chunks beside them):
// - main: the `concord-relay` command (apps/relay/src/main.ts)
// - index: the library, for programs that embed the relay
// - sqliteWorker: the SQLite storage worker, which SqliteStorage starts from
//   `./sqliteWorker.js` next to itself
// - PostgresStorage, Cluster: the scale-out modules (loaded by main only when
//   configured), for programs that build a cluster themselves
// better-sqlite3 stays outside: it loads a native addon from its package.
//
// `node scripts/bundle-relay.mjs` builds; with `--if-stale` it builds only
// when the bundle is missing or older than the compiled relay or engine.
import { existsSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { root, stale } from './stale.mjs'

const dist = path.join(root, 'apps/relay/dist')
export const bundleDir = path.join(root, 'apps/relay/bundle')

/** True when the bundle is missing or older than the compiled relay or engine it is built from. */
export const bundleIsStale = () => stale(['apps/relay/dist', 'packages/engine/dist'], path.join(bundleDir, 'main.js'))

/** Builds apps/relay/bundle from apps/relay/dist. */
export const bundleRelay = async () => {
  if (!existsSync(path.join(dist, 'main.js')))
    throw new Error('apps/relay/dist/main.js is missing: run `npx tsc -b packages/engine apps/relay` first')
  const { build } = await import('rolldown')
  rmSync(bundleDir, { recursive: true, force: true })
  await build({
    input: {
      main: path.join(dist, 'main.js'),
      index: path.join(dist, 'index.js'),
      sqliteWorker: path.join(dist, 'storage/sqliteWorker.js'),
      PostgresStorage: path.join(dist, 'storage/PostgresStorage.js'),
      Cluster: path.join(dist, 'cluster/Cluster.js'),
    },
    platform: 'node',
    external: ['better-sqlite3'],
    logLevel: 'warn',
    output: {
      dir: bundleDir,
      format: 'esm',
      entryFileNames: '[name].js',
      // beside the entries: code that resolves files from import.meta.url (the worker, the web app) finds them
      chunkFileNames: '[name]-[hash].js',
      sourcemap: true,
    },
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--if-stale') || bundleIsStale()) await bundleRelay()
}
