/**
 * Child process of the update validator tests: proves that what
 * `validateUpdateV1` accepts is safe to hand to `Y.applyUpdate`.
 *
 * Reads a JSON file `{ base: hex, inputs: hex[] }` (argv[2]). For every input
 * the compiled validator (`apps/relay/dist`) accepts, it applies the input
 * to a fresh doc (which must not throw), to a doc holding `base`, and to a
 * running doc that gets every accepted input in turn (renewed every 20
 * inputs). On the last two Yjs may throw on state-dependent quirks; those
 * throws are recorded. Every apply is timed. Prints one JSON line of results. Before each apply it writes the
 * index of the input to stderr, so that when the parent kills it on a
 * timeout it can name the input that hung.
 */
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import { validateUpdateV1 } from '../../apps/relay/dist/security/validateUpdate.js'

const { base, inputs } = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const baseBytes = Buffer.from(base, 'hex')
const result = { inputs: inputs.length, accepted: 0, freshThrows: [], stateThrows: {}, slowestMs: 0, slowestInput: '' }
let running = new Y.Doc()

for (const [index, hex] of inputs.entries()) {
  const bytes = new Uint8Array(Buffer.from(hex, 'hex'))
  if (!validateUpdateV1(bytes).ok) continue
  result.accepted++
  if (result.accepted % 20 === 0) {
    running.destroy()
    running = new Y.Doc()
  }
  for (const target of ['fresh', 'base', 'running']) {
    const doc = target === 'running' ? running : new Y.Doc()
    if (target === 'base') Y.applyUpdate(doc, baseBytes)
    process.stderr.write(`${index} ${target}\n`)
    const start = performance.now()
    try {
      Y.applyUpdate(doc, bytes)
      // the relay re-encodes every applied update and serves full states
      Y.encodeStateAsUpdate(doc)
    } catch (error) {
      const message = `${error?.constructor?.name}: ${error?.message}`
      if (target === 'fresh') {
        if (result.freshThrows.length < 10) result.freshThrows.push({ message, hex })
      } else {
        result.stateThrows[message] ??= { count: 0, hex }
        result.stateThrows[message].count++
      }
    }
    const ms = performance.now() - start
    if (ms > result.slowestMs) {
      result.slowestMs = ms
      result.slowestInput = hex
    }
    if (target !== 'running') doc.destroy()
  }
}
process.stdout.write(JSON.stringify(result) + '\n')
