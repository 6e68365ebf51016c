// A relay in its own process for benchmarks, started with --expose-gc so the
// parent can ask for heap figures over IPC. argv: storage kind, data dir.
import path from 'node:path'
import { createRelay, MemoryStorage, SqliteStorage } from '../../apps/relay/dist/index.js'

const [kind = 'sqlite', dataDir = '.', ...rest] = process.argv.slice(2)
const options = Object.fromEntries(rest.map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
const storage = kind === 'memory' ? new MemoryStorage() : SqliteStorage.open(path.join(dataDir, 'concord.sqlite'))
const relay = await createRelay({
  storage,
  port: 0,
  processMetrics: false,
  idleUnloadMs: 3_600_000,
  commit: { checkpointUpdates: options.checkpointUpdates ?? 500 },
})
process.on('message', async (message) => {
  if (message === 'heap') {
    for (let i = 0; i < 3; i++) globalThis.gc?.()
    await new Promise((r) => setTimeout(r, 50))
    globalThis.gc?.()
    process.send({ heapUsed: process.memoryUsage().heapUsed, rooms: relay.rooms.size })
  } else if (message === 'stop') {
    await relay.close()
    process.exit(0)
  }
})
process.send({ url: relay.url })
