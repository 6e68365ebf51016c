/**
 * A relay in a process of its own, started with `--expose-gc`, whose heap a
 * test can measure: the parent forks this module (`child_process.fork`),
 * reads `{ url }` from the first IPC message, and sends `'heap'` to get
 * `{ heapUsed, roomsOpen }` after full garbage collections. The relay is
 * the compiled one (`apps/relay/dist`) on SQLite in the data dir given as
 * the first argument, with rooms unloaded after the idle time given as the
 * second (ms). `'close'` closes it and exits.
 *
 * @module test/reliability/lib/relayHeapHost
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const relayDist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../apps/relay/dist')
const { createRelay } = await import(path.join(relayDist, 'Relay.js'))
const { SqliteStorage } = await import(path.join(relayDist, 'storage/SqliteStorage.js'))

const [dataDir, idleUnloadMs] = process.argv.slice(2)
const relay = await createRelay({
  storage: SqliteStorage.open(path.join(dataDir, 'concord.sqlite')),
  port: 0,
  idleUnloadMs: Number(idleUnloadMs),
  processMetrics: false,
})

/** Rooms loaded now, from the relay's own gauge. */
const roomsOpen = async () => Number(/^concord_rooms_open (\d+)/m.exec(await relay.metrics.render())?.[1] ?? NaN)

process.on('message', async (message) => {
  if (message === 'heap') {
    // Several passes: weak references and finalizers free more on the next one.
    for (let i = 0; i < 4; i++) {
      globalThis.gc()
      await new Promise((resolve) => setImmediate(resolve))
    }
    process.send({ heapUsed: process.memoryUsage().heapUsed, roomsOpen: await roomsOpen() })
  } else if (message === 'rooms') {
    process.send({ roomsOpen: await roomsOpen() })
  } else if (message === 'close') {
    await relay.close()
    process.exit(0)
  }
})
process.send({ url: relay.url })
