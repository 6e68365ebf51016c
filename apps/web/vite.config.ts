import { defineConfig } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'

// `vite dev` runs against a relay on the default port (`npm run relay`):
// the sync socket and the health check are proxied to it, so the app can
// keep connecting to its own origin exactly as it does when the relay
// serves the built files.
const RELAY = 'http://127.0.0.1:8787'

export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/.concord': { target: RELAY, ws: true, changeOrigin: true },
      '/healthz': { target: RELAY, changeOrigin: true },
    },
  },
})
