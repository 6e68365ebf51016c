// `npm start`: builds if needed, then runs the relay on http://127.0.0.1:8787
// with SQLite in ./data, serving the web app (the relay serves apps/web/dist
// by default). Extra flags go to the relay.
import { buildIfNeeded } from './build-if-needed.mjs'
import { runRelayBundle } from './run-relay.mjs'

await buildIfNeeded({ web: true })
runRelayBundle(process.argv.slice(2))
