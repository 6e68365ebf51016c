/*
 * Concord's service worker: keeps the built app shell (index.html and the
 * hashed assets it references) so the app opens with no network at all.
 *
 * - install: fetch "/" and cache it with every /assets/… URL it references;
 * - navigations: network first (fresh deploys win), the cached shell offline;
 * - other same-origin GETs: cache first, then network (assets are hashed);
 * - the sync socket and the relay's endpoints (/.concord, /healthz, /metrics) are never touched.
 */
const CACHE = 'concord-shell-v1'
const BYPASS = /^\/(\.concord|healthz|readyz|metrics)/

async function cacheShell() {
  const cache = await caches.open(CACHE)
  const response = await fetch('/', { cache: 'no-store' })
  if (!response.ok) return
  const html = await response.clone().text()
  await cache.put('/', response)
  const assets = new Set(['/favicon.svg'])
  for (const match of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) assets.add(match[1])
  await Promise.all(
    [...assets].map(async (url) => {
      try {
        const asset = await fetch(url, { cache: 'no-store' })
        if (asset.ok) await cache.put(url, asset)
      } catch {
        // a missing asset is fetched (and cached) on first use
      }
    }),
  )
}

self.addEventListener('install', (event) => {
  event.waitUntil(cacheShell().then(() => self.skipWaiting()))
})

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener('fetch', (event) => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin || BYPASS.test(url.pathname)) return

  if (request.mode === 'navigate') {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone()
            void caches.open(CACHE).then((cache) => cache.put('/', copy))
          }
          return response
        })
        .catch(async () => (await caches.match('/')) ?? Response.error()),
    )
    return
  }

  event.respondWith(
    caches.match(request).then(
      (cached) =>
        cached ??
        fetch(request).then((response) => {
          if (response.ok && url.pathname.startsWith('/assets/')) {
            const copy = response.clone()
            void caches.open(CACHE).then((cache) => cache.put(request, copy))
          }
          return response
        }),
    ),
  )
})
