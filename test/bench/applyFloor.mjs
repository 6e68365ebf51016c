// Floor for cold loads: read length-prefixed updates from a file and apply
// them to an empty Y.Doc in one transaction, in memory. Prints the
// milliseconds spent applying.
//
//   node applyFloor.mjs FILE                  fresh process, cold JIT (like a freshly started relay)
//   node applyFloor.mjs FILE --warm=W --timed=K
//                                             warm JIT: after applying the same updates to W other
//                                             docs, K more applications, each timed (as warm as the
//                                             relay in syncCore.mjs; no forced GC, which would throw
//                                             away V8's type feedback)
// Prints `{ ms: number[], length }`: one time per timed application.
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'

const data = readFileSync(process.argv[2])
const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3))
}
const warmUps = option('warm', 0)
const timed = option('timed', 1)
const updates = []
for (let at = 0; at < data.length;) {
  const length = data.readUInt32LE(at)
  updates.push(new Uint8Array(data.buffer, data.byteOffset + at + 4, length))
  at += 4 + length
}
const apply = () => {
  const started = performance.now()
  const doc = new Y.Doc()
  Y.transact(doc, () => {
    for (const u of updates) Y.applyUpdate(doc, u)
  })
  return { ms: performance.now() - started, length: doc.getText('body').length }
}
for (let i = 0; i < warmUps; i++) apply()
const runs = Array.from({ length: timed }, apply)
process.stdout.write(JSON.stringify({ ms: runs.map((r) => r.ms), length: Math.min(...runs.map((r) => r.length)) }) + '\n')
