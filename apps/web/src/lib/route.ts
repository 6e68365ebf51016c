/**
 * Hash routes of the app: `#/` tickets, `#/t/<id>` one ticket, `#/projects`
 * projects, `#/p/<id>` one project, `#/sync` the sync status page. Hash
 * routing keeps every URL served by the relay's one `index.html` (and by the
 * service worker offline).
 *
 * @module lib/route
 */

export type Route =
  { page: 'list' } | { page: 'ticket'; id: string } | { page: 'projects' } | { page: 'project'; id: string } | { page: 'sync' }

const ID = '([A-Za-z0-9_-]{1,64})'

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '')
  if (path === '/sync') return { page: 'sync' }
  if (path === '/projects') return { page: 'projects' }
  const ticket = new RegExp(`^/t/${ID}$`).exec(path)
  if (ticket) return { page: 'ticket', id: ticket[1]! }
  const project = new RegExp(`^/p/${ID}$`).exec(path)
  if (project) return { page: 'project', id: project[1]! }
  return { page: 'list' }
}

export function routeHref(route: Route): string {
  switch (route.page) {
    case 'ticket':
      return `#/t/${route.id}`
    case 'project':
      return `#/p/${route.id}`
    case 'projects':
      return '#/projects'
    case 'sync':
      return '#/sync'
    default:
      return '#/'
  }
}
