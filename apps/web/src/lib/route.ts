/**
 * Hash routes of the app: `#/` tickets, `#/t/<id>` one ticket, `#/sync` the
 * sync status page. Hash routing keeps every URL served by the relay's one
 * `index.html` (and by the service worker offline).
 *
 * @module lib/route
 */

export type Route = { page: 'list' } | { page: 'ticket'; id: string } | { page: 'sync' }

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '')
  if (path === '/sync') return { page: 'sync' }
  const ticket = /^\/t\/([A-Za-z0-9_-]{1,64})$/.exec(path)
  if (ticket) return { page: 'ticket', id: ticket[1]! }
  return { page: 'list' }
}

export function routeHref(route: Route): string {
  switch (route.page) {
    case 'ticket':
      return `#/t/${route.id}`
    case 'sync':
      return '#/sync'
    default:
      return '#/'
  }
}
