// Cost of `Y.applyUpdate` per update for the fan-out update stream (case 6):
// `rooms` docs, `clients` clients per doc each appending one character per
// update to its own Y.Text, interleaved round-robin as a relay receives them.
// Warm JIT (a relay under load is warm); medians of `repeats`. Prints JSON.
import * as Y from 'yjs'
import { textAppendUpdate } from './lib/wire.mjs'
import { median } from './lib/stats.mjs'

const { rooms, clients, perClient, repeats = 5 } = JSON.parse(process.argv[2])
const streams = []
for (let r = 0; r < rooms; r++) {
  const list = []
  for (let k = 0; k < perClient; k++) {
    for (let i = 0; i < clients; i++) list.push(textAppendUpdate(1000 + r * clients + i, k, `t${i}`, 'x'))
  }
  streams.push(list)
}
const applyAll = () => {
  const docs = streams.map(() => new Y.Doc())
  const started = performance.now()
  for (let k = 0; k < perClient * clients; k++) {
    for (let r = 0; r < rooms; r++) Y.applyUpdate(docs[r], streams[r][k])
  }
  const ms = performance.now() - started
  for (const doc of docs) doc.destroy()
  return ms
}
applyAll() // warm-up
applyAll()
const times = []
for (let i = 0; i < repeats; i++) times.push(applyAll())
const updates = rooms * clients * perClient
process.stdout.write(JSON.stringify({ updates, microsPerUpdate: (median(times) * 1000) / updates }) + '\n')
