// `npm run relay -- [flags]`: the relay, serving the web app (built here when
// it is missing or stale) unless --no-web or --web-root says otherwise; see
// `npm run relay -- --help`. `npm run relay -- <command> …` runs an admin
// command (backup, restore, export, import, inspect, compact, token).
import { buildIfNeeded } from './build-if-needed.mjs'
import { runRelayBundle } from './run-relay.mjs'

const args = process.argv.slice(2)
const command = args.length > 0 && !args[0].startsWith('-')
const servesBuiltApp = !command && !args.some((a) => a === '--no-web' || a === '--help' || a === '-h' || a.startsWith('--web-root'))
await buildIfNeeded({ web: servesBuiltApp })
runRelayBundle(args)
