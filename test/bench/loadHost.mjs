/**
 * A load generator in its own process. The orchestrator asks it to run a
 * named export of a benchmark module: `call('run', modulePath, exportName, params)`.
 * The function gets `(params, parent)` where `parent.call(name, ...args)`
 * reaches handlers the orchestrator registered (e.g. `serverCpu`).
 *
 * @module bench/loadHost
 */
import { pathToFileURL } from 'node:url'
import { serveParent } from './lib/processes.mjs'

const rpc = serveParent(
  { pid: process.pid },
  {
    run: async (modulePath, exportName, params) => {
      const mod = await import(pathToFileURL(modulePath).href)
      return mod[exportName](params, { call: (...args) => rpc.call(...args) })
    },
  },
)
