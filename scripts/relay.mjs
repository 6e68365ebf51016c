// `npm run relay -- [flags]`: the relay alone (see `npm run relay -- --help`).
import { spawn } from 'node:child_process'
import path from 'node:path'
import { buildIfNeeded, root } from './build-if-needed.mjs'

buildIfNeeded({ web: false })
const child = spawn(process.execPath, [path.join(root, 'apps/relay/dist/main.js'), ...process.argv.slice(2)], {
  stdio: 'inherit',
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
