// Whether a build output is missing or older than its sources: shared by
// build-if-needed.mjs and bundle-relay.mjs.
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root directory. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Latest modification time of a file, or of any file under a directory (0 when missing). */
const newest = (file) => {
  if (!existsSync(file)) return 0
  if (!statSync(file).isDirectory()) return statSync(file).mtimeMs
  let latest = 0
  for (const entry of readdirSync(file)) latest = Math.max(latest, newest(path.join(file, entry)))
  return latest
}

/** True when `output` is missing or older than anything in `sources` (paths from the root). */
export const stale = (sources, output) =>
  !existsSync(output) || Math.max(...sources.map((s) => newest(path.join(root, s)))) > statSync(output).mtimeMs
