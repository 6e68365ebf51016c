// `npm run relay -- [flags]`: the relay, serving the web app (built here when
// it is missing or stale) unless --no-web or --web-root says otherwise; see
// `npm run relay -- --help`. `npm run relay -- <command> …` runs an admin
// command (backup, restore, export, import, inspect, compact, token).
import { spawn } from 'node:child_process'
import path from 'node:path'
import { buildIfNeeded, root } from './build-if-needed.mjs'

const args = process.argv.slice(2)
const command = args.length > 0 && !args[0].startsWith('-')
const servesBuiltApp = !command && !args.some((a) => a === '--no-web' || a === '--help' || a === '-h' || a.startsWith('--web-root'))
await buildIfNeeded({ web: servesBuiltApp })
const child = spawn(process.execPath, [path.join(root, 'apps/relay/bundle/main.js'), ...args], {
  stdio: 'inherit',
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
