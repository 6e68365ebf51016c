/**
 * Projects for the UI: the workspace's projects from the catalog, sorted by
 * name, and per-project ticket counts.
 *
 * @module lib/projects
 */
import type { CatalogEntry, RecordStore } from '@concord/engine'

/** Every project of the workspace (not deleted; archived ones only with `includeArchived`), by name. */
export function listProjects(store: RecordStore, options: { includeArchived?: boolean } = {}): CatalogEntry[] {
  return sortByName(store.list({ type: 'project', limit: 1000, includeArchived: options.includeArchived ?? false }).entries)
}

/** Entries by title, case-insensitively; untitled last. */
export function sortByName<T extends { title: string }>(entries: readonly T[]): T[] {
  const key = (e: T): string => (e.title.trim() === '' ? '\uffff' : e.title.trim().toLowerCase())
  return [...entries].sort((a, b) => key(a).localeCompare(key(b)))
}

/** How many tickets a project has, and how many of them are done or cancelled. */
export interface ProjectCounts {
  total: number
  closed: number
  open: number
}

/** Ticket counts per project id, from ticket catalog entries. */
export function countsByProject(tickets: readonly { fields: Record<string, unknown> }[]): Map<string, ProjectCounts> {
  const out = new Map<string, ProjectCounts>()
  for (const ticket of tickets) {
    const project = ticket.fields.project
    if (typeof project !== 'string' || project === '') continue
    const counts = out.get(project) ?? { total: 0, closed: 0, open: 0 }
    counts.total++
    if (ticket.fields.status === 'done' || ticket.fields.status === 'cancelled') counts.closed++
    else counts.open++
    out.set(project, counts)
  }
  return out
}
