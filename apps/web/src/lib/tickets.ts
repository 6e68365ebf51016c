/**
 * Ticket vocabulary for the UI (labels of statuses and priorities), the list
 * filters as a catalog query, and small formatting helpers.
 *
 * @module lib/tickets
 */
import type { CatalogQuery } from '@concord/engine'

export const STATUS_OPTIONS = [
  { value: 'open', label: 'Open' },
  { value: 'in_progress', label: 'In progress' },
  { value: 'done', label: 'Done' },
  { value: 'cancelled', label: 'Cancelled' },
] as const

export const PRIORITY_OPTIONS = [
  { value: 'none', label: 'No priority' },
  { value: 'low', label: 'Low' },
  { value: 'medium', label: 'Medium' },
  { value: 'high', label: 'High' },
  { value: 'urgent', label: 'Urgent' },
] as const

export const SORT_OPTIONS = [
  { value: 'updatedAt', label: 'Recently updated' },
  { value: 'createdAt', label: 'Newest' },
  { value: 'title', label: 'Title' },
  { value: 'priority', label: 'Priority' },
  { value: 'dueDate', label: 'Due date' },
] as const

export type SortKey = (typeof SORT_OPTIONS)[number]['value']

export const PROJECT_STATUS_OPTIONS = [
  { value: 'planned', label: 'Planned' },
  { value: 'active', label: 'Active' },
  { value: 'paused', label: 'Paused' },
  { value: 'done', label: 'Done' },
  { value: 'cancelled', label: 'Cancelled' },
] as const

export function projectStatusLabel(value: unknown): string {
  return PROJECT_STATUS_OPTIONS.find((o) => o.value === value)?.label ?? 'Planned'
}

/** A record's title for lists of mixed records (sync page, dialogs). */
export const recordTitle = (type: string | null, title: string): string =>
  title.trim() !== '' ? title : type === 'project' ? 'Untitled project' : 'Untitled ticket'

/**
 * Records counted by type, in words: "3 tickets", "1 project", "2 tickets and
 * 1 project" (types in the order first met; other types are "records").
 */
export function countRecords(types: ReadonlyArray<string | null | undefined>): string {
  const byNoun = new Map<string, number>()
  for (const type of types) {
    const noun = type === 'ticket' || type === 'project' ? type : 'record'
    byNoun.set(noun, (byNoun.get(noun) ?? 0) + 1)
  }
  const parts = [...byNoun].map(([noun, n]) => `${n} ${noun}${n === 1 ? '' : 's'}`)
  return parts.length <= 2 ? parts.join(' and ') : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`
}

/** A project's name for lists and selects. */
export const projectName = (title: string): string => (title.trim() === '' ? 'Untitled project' : title)

export const FIELD_LABELS: Record<string, string> = {
  title: 'Title',
  description: 'Description',
  status: 'Status',
  priority: 'Priority',
  assignee: 'Assignee',
  labels: 'Labels',
  dueDate: 'Due date',
  project: 'Project',
  name: 'Name',
  lead: 'Lead',
  $created: 'Created',
  $archived: 'Archived',
  $deleted: 'Deleted',
  $comments: 'Comments',
}

export const fieldLabel = (field: string): string => FIELD_LABELS[field] ?? field

/** Whether a record's pending fields say the relay has never stored the record itself (it was created here). */
export const isNewHere = (pendingFields: readonly string[]): boolean => pendingFields.includes('$created')

/**
 * A record's changes not on the relay, in words: its changed fields ("Status,
 * Priority"), or for a record the relay has never stored, "New ticket" and the
 * fields it was created with ("New ticket: Assignee, Title"). The count of
 * changes is the count of fields named, so every place that counts agrees.
 */
export function pendingFieldsText(type: string | null | undefined, pendingFields: readonly string[]): string {
  const fields = pendingFields.filter((f) => f !== '$created').map(fieldLabel)
  if (!isNewHere(pendingFields)) return fields.join(', ')
  const noun = `New ${type === 'project' ? 'project' : type === 'ticket' || type == null ? 'ticket' : 'record'}`
  return fields.length === 0 ? noun : `${noun}: ${fields.join(', ')}`
}

export function statusLabel(value: unknown): string {
  return STATUS_OPTIONS.find((o) => o.value === value)?.label ?? 'Open'
}

export function priorityLabel(value: unknown): string {
  return PRIORITY_OPTIONS.find((o) => o.value === value)?.label ?? 'No priority'
}

/** What the list's filter bar holds. `''` means "any". */
export interface ListFilters {
  status: string
  assignee: string
  label: string
  project: string
  text: string
  /** List archived tickets too (a search always finds them). */
  archived: boolean
  sort: SortKey
}

export const EMPTY_FILTERS: ListFilters = { status: '', assignee: '', label: '', project: '', text: '', archived: false, sort: 'updatedAt' }

/** Sentinel assignee filter value for "nobody". */
export const UNASSIGNED = '__unassigned__'

/** Sentinel project filter value for "in no project". */
export const NO_PROJECT = '__none__'

const isEmpty = (value: unknown): boolean => value === null || value === undefined || value === ''

const PRIORITY_RANK: Record<string, number> = { urgent: 0, high: 1, medium: 2, low: 3, none: 4 }

/** The filter bar as a catalog query. Priority and due date sort as people expect (urgent first, soonest first). */
export function toCatalogQuery(filters: ListFilters): CatalogQuery {
  const where: Record<string, unknown> = {}
  if (filters.status !== '') where.status = filters.status
  if (filters.assignee === UNASSIGNED) where.assignee = isEmpty
  else if (filters.assignee !== '') where.assignee = filters.assignee
  if (filters.label !== '') where.labels = filters.label
  if (filters.project === NO_PROJECT) where.project = isEmpty
  else if (filters.project !== '') where.project = filters.project
  const query: CatalogQuery = { type: 'ticket', where, limit: 1000 }
  const text = filters.text.trim()
  if (text !== '') query.search = text
  // Archived tickets leave the list but stay findable: a search finds them, and "Show archived" lists them.
  if (text !== '' || filters.archived) query.includeArchived = true
  switch (filters.sort) {
    case 'title':
      query.sort = { by: 'title', direction: 'asc' }
      break
    case 'createdAt':
      query.sort = { by: 'createdAt', direction: 'desc' }
      break
    case 'dueDate':
    case 'priority':
      query.sort = { by: 'updatedAt', direction: 'desc' } // re-sorted by sortEntries
      break
    default:
      query.sort = { by: 'updatedAt', direction: 'desc' }
  }
  return query
}

interface Sortable {
  title: string
  fields: Record<string, unknown>
}

/** Sorts that the catalog cannot express directly: priority rank, due date with empty ones last. Stable. */
export function sortEntries<T extends Sortable>(entries: readonly T[], sort: SortKey): T[] {
  if (sort === 'priority') {
    return [...entries].sort((a, b) => (PRIORITY_RANK[String(a.fields.priority)] ?? 4) - (PRIORITY_RANK[String(b.fields.priority)] ?? 4))
  }
  if (sort === 'dueDate') {
    const key = (e: T): string => (typeof e.fields.dueDate === 'string' && e.fields.dueDate !== '' ? e.fields.dueDate : '9999-99-99')
    return [...entries].sort((a, b) => key(a).localeCompare(key(b)))
  }
  return [...entries]
}

/** Distinct values of a list/scalar catalog field across entries, sorted. */
export function distinctValues(entries: readonly Sortable[], field: string): string[] {
  const out = new Set<string>()
  for (const e of entries) {
    const v = e.fields[field]
    if (Array.isArray(v)) for (const item of v) if (typeof item === 'string' && item !== '') out.add(item)
    if (typeof v === 'string' && v !== '') out.add(v)
  }
  return [...out].sort((a, b) => a.localeCompare(b))
}

/** The longest label, in characters. */
export const MAX_LABEL_LENGTH = 40

/** Parses a comma-separated label input: trimmed, lower-case, unique, non-empty, at most {@link MAX_LABEL_LENGTH} characters each. */
export function parseLabels(input: string): string[] {
  const out: string[] = []
  for (const part of input.split(',')) {
    const label = part.trim().toLowerCase().slice(0, MAX_LABEL_LENGTH)
    if (label !== '' && !out.includes(label)) out.push(label)
  }
  return out
}

/**
 * A comma-separated label input split into the labels to add and the parts
 * too long to be one (left for the person to shorten, never cut silently).
 */
export function readLabels(input: string): { labels: string[]; tooLong: string[] } {
  const parts = input.split(',').map((part) => part.trim())
  const tooLong = parts.filter((part) => part.length > MAX_LABEL_LENGTH)
  return { labels: parseLabels(parts.filter((part) => part.length <= MAX_LABEL_LENGTH).join(',')), tooLong }
}

/** `just now`, `5 min ago`, `3 h ago`, `2 days ago`, then a date. */
export function relativeTime(at: number | null | undefined, now: number): string {
  if (at === null || at === undefined || !Number.isFinite(at)) return ''
  const seconds = Math.round((now - at) / 1000)
  if (seconds < 45) return 'just now'
  const minutes = Math.round(seconds / 60)
  if (minutes < 60) return `${minutes} min ago`
  const hours = Math.round(minutes / 60)
  if (hours < 24) return `${hours} h ago`
  const days = Math.round(hours / 24)
  if (days < 7) return `${days} ${days === 1 ? 'day' : 'days'} ago`
  return new Date(at).toISOString().slice(0, 10)
}

/**
 * A short, readable rendering of a field value for history and summaries
 * (`projects`: project id → name; `people`: a user id's name, for assignees and leads).
 */
export function showValue(
  field: string,
  value: unknown,
  projects?: ReadonlyMap<string, string>,
  people?: { personName(userId: string): string },
): string {
  if (field === '$archived') return value === true ? 'Archived' : 'Not archived'
  if (value === null || value === undefined || value === '') return 'nothing'
  if (field === 'project' && typeof value === 'string') return projects?.get(value) ?? 'a project not on this device'
  if (field === 'status') return STATUS_OPTIONS.find((o) => o.value === value)?.label ?? projectStatusLabel(value)
  if (field === 'priority') return priorityLabel(value)
  if ((field === 'assignee' || field === 'lead') && typeof value === 'string') return people?.personName(value) ?? personName(value)
  if (Array.isArray(value)) return value.length === 0 ? 'no labels' : [...new Set(value)].join(', ')
  if (field === 'dueDate' && typeof value === 'string') return showDate(value)
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 59)}…` : text
}

/**
 * A `YYYY-MM-DD` date as the browser's date field shows dates (its locale): "Jan 15, 2027" in English. Other text
 * is shown as it is.
 */
export function showDate(date: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date)
  if (match === null) return date
  const [, y, m, d] = match
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(Number(y), Number(m) - 1, Number(d)))
}

/** A person's display name from a user id made by `slugify`: `ada-lovelace` → `Ada Lovelace`. */
export function personName(userId: string): string {
  return userId
    .split('-')
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join(' ')
}
