// Floor for cold loads: read length-prefixed updates from a file and apply
// them to an empty Y.Doc in one transaction, in memory. Prints the
// milliseconds spent applying.
//
//   node applyFloor.mjs FILE          fresh process, cold JIT (like a freshly started relay)
//   node applyFloor.mjs FILE --warm   warm JIT: after applying the same updates to 3 other docs
//                                     (as warm as the relay in syncCore.mjs; no forced GC, which
//                                     would throw away V8's type feedback)
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'

const data = readFileSync(process.argv[2])
const warm = process.argv.includes('--warm')
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
if (!warm) {
  process.stdout.write(JSON.stringify(apply()) + '\n')
} else {
  for (let i = 0; i < 3; i++) apply()
  process.stdout.write(JSON.stringify(apply()) + '\n')
}
