// Floor for cold loads: in a fresh process (cold JIT, like a freshly started
// relay), read length-prefixed updates from a file and apply them to an empty
// Y.Doc in one transaction. Prints the milliseconds spent applying.
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'

const data = readFileSync(process.argv[2])
const updates = []
for (let at = 0; at < data.length; ) {
  const length = data.readUInt32LE(at)
  updates.push(new Uint8Array(data.buffer, data.byteOffset + at + 4, length))
  at += 4 + length
}
const started = performance.now()
const doc = new Y.Doc()
Y.transact(doc, () => {
  for (const u of updates) Y.applyUpdate(doc, u)
})
const ms = performance.now() - started
process.stdout.write(JSON.stringify({ ms, length: doc.getText('body').length }) + '\n')
