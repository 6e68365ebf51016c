// `npm start`: builds if needed, then runs the relay on http://127.0.0.1:8787
// with SQLite in ./data, serving the web app (the relay serves apps/web/dist
// by default). Extra flags go to the relay.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { buildIfNeeded, root } from './build-if-needed.mjs'

await buildIfNeeded({ web: true })
const child = spawn(process.execPath, [path.join(root, 'apps/relay/bundle/main.js'), ...process.argv.slice(2)], { stdio: 'inherit' })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
