// Runs the relay bundle as a child of `npm start` / `npm run relay` and makes
// the two stop together:
// - the child runs in a process group of its own, so a Ctrl-C in the
//   terminal reaches it once — forwarded from here — not twice (the terminal
//   signals its whole foreground group, and a second signal makes the relay
//   skip its graceful shutdown);
// - SIGINT / SIGTERM sent here go to the child;
// - when whatever started this script dies (npm killed with SIGTERM leaves
//   its script running, reparented), the child gets SIGTERM;
// - this script exits with the child's exit code.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { root } from './build-if-needed.mjs'

/** Starts the relay bundle with `args` and ties its life to this process's. */
export const runRelayBundle = (args) => {
  const child = spawn(process.execPath, [path.join(root, 'apps/relay/bundle/main.js'), ...args], { stdio: 'inherit', detached: true })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  const parent = process.ppid
  const orphaned = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(orphaned)
    child.kill('SIGTERM')
  }, 500)
  orphaned.unref()
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
