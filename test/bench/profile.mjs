/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time by
 * component (Yjs, ws, SQLite, the relay's own code, metrics, GC, …), the
 * functions with the most self time, and inclusive time of chosen functions.
 *
 * CLI: `node test/bench/profile.mjs FILE.cpuprofile [--top 25]`
 *
 * @module bench/profile
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Component of a call frame, from its script URL and name. */
export const componentOf = ({ url, functionName }) => {
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(program)') return 'V8/native (program)'
  if (!url) return 'native (no script)'
  if (url.includes('/node_modules/yjs/')) return 'Yjs'
  if (url.includes('/node_modules/lib0/')) return 'lib0 (encoding)'
  if (url.includes('/node_modules/y-protocols/')) return 'y-protocols'
  if (url.includes('/node_modules/ws/')) return 'ws'
  if (url.includes('/node_modules/better-sqlite3/')) return 'SQLite (better-sqlite3)'
  if (url.includes('/node_modules/prom-client/')) return 'metrics (prom-client)'
  if (url.includes('/node_modules/pino')) return 'logging (pino)'
  if (url.includes('/packages/engine/dist/')) return 'engine protocol code'
  if (url.includes('/apps/relay/dist/')) return 'relay code'
  if (url.includes('/node_modules/@hocuspocus/')) return 'Hocuspocus'
  if (url.includes('/node_modules/@y/websocket-server/')) return '@y/websocket-server'
  if (url.includes('/node_modules/')) return url.replace(/.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\/.*/, '$1')
  if (url.startsWith('node:')) return 'Node core (net, streams, timers)'
  return url.replace(/^file:\/\//, '').replace(/.*\/test\/bench\//, 'bench: ')
}

/**
 * Reads a profile and returns `{ totalMs, byComponent: [{ name, ms, share }],
 * topFunctions: [{ name, where, component, ms, share }], inclusive(names) }`.
 * Shares are of non-idle time.
 */
export const summarizeProfile = (file, { top = 25 } = {}) => {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfMicros = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  let busy = 0
  const components = new Map()
  const functions = new Map()
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id).callFrame
    const component = componentOf(frame)
    if (component === 'idle') continue
    busy += micros
    components.set(component, (components.get(component) ?? 0) + micros)
    const where = frame.url ? `${frame.url.replace(/.*\/(node_modules|apps|packages)\//, '$1/')}:${frame.lineNumber + 1}` : ''
    const key = `${frame.functionName || '(anonymous)'} ${where}`
    const f = functions.get(key) ?? { name: frame.functionName || '(anonymous)', where, component, micros: 0 }
    f.micros += micros
    functions.set(key, f)
  }
  const share = (m) => m / busy
  /** Inclusive time (µs) of frames whose function name matches, counted once per sample. */
  const inclusive = (predicate) => {
    let micros = 0
    for (const [id, m] of selfMicros) {
      for (let at = id; at !== undefined; at = parent.get(at)) {
        if (predicate(byId.get(at).callFrame)) {
          micros += m
          break
        }
      }
    }
    return { ms: micros / 1000, share: share(micros) }
  }
  return {
    busyMs: busy / 1000,
    byComponent: [...components].map(([name, m]) => ({ name, ms: m / 1000, share: share(m) })).sort((a, b) => b.ms - a.ms),
    topFunctions: [...functions.values()]
      .sort((a, b) => b.micros - a.micros)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, component: f.component, ms: f.micros / 1000, share: share(f.micros) })),
    inclusive,
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  const top = Number(process.argv[process.argv.indexOf('--top') + 1]) || 25
  const s = summarizeProfile(file, { top })
  console.log(`busy ${s.busyMs.toFixed(0)} ms`)
  for (const c of s.byComponent) console.log(`${(c.share * 100).toFixed(1).padStart(5)}%  ${c.name}`)
  console.log('')
  for (const f of s.topFunctions) console.log(`${(f.share * 100).toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`)
}
