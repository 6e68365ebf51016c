/**
 * The names of people in a workspace, for everything the app shows about
 * them: history authors (by Yjs client id), assignees and leads (by user id),
 * and the people the pickers offer.
 *
 * - By user id: everyone the workspace's presence knows (the relay's
 *   `list-presence`, who is online, who was seen before) and every writer
 *   the relay bound in a record opened here.
 * - By client id: a relay without auth binds every writer to "anonymous"
 *   with the name the writer's presence showed; records stored before the
 *   relay kept that name are named from what this device saw in presence.
 *   With auth, the relay's binding wins.
 *
 * Remembered per user + workspace in localStorage (bounded), so names show
 * offline after a reload. Reading is reactive in Svelte components: a name
 * learned later updates what shows it.
 *
 * @module lib/authorNames
 */
import { getContext, setContext } from 'svelte'
import { createSubscriber } from 'svelte/reactivity'
import type { KeyValueStore } from './identity'
import { slugify } from './session'
import { personName } from './tickets'

export interface AuthorLike {
  clientId?: number
  userId: string | null
  name: string | null
}

/** A person of the workspace, as the pickers offer them. */
export interface KnownPerson {
  userId: string
  name: string
}

const MAX_NAMES = 500
const MAX_PEOPLE = 2000

/** The user a relay without auth binds every writer to, and the name of a binding made without a name. */
const ANONYMOUS = { userId: 'anonymous', name: 'Anonymous' } as const

/** Whether the relay bound a writer to a real (authenticated) user. */
export const isBound = (author: { userId: string | null }): boolean => author.userId !== null && author.userId !== ANONYMOUS.userId

/** The name a relay without auth kept for an anonymous writer (what their presence showed), or null. */
const claimedName = (author: { userId: string | null; name: string | null }): string | null =>
  author.userId === ANONYMOUS.userId && typeof author.name === 'string' && author.name !== '' && author.name !== ANONYMOUS.name
    ? author.name
    : null

const usable = (name: unknown): name is string => typeof name === 'string' && name.trim() !== ''

export class AuthorNames {
  private readonly names = new Map<number, string>()
  private readonly byUser = new Map<string, string>()
  private dirty = false
  private changed: (() => void) | null = null
  private readonly subscribe = createSubscriber((update) => {
    this.changed = update
    return () => {
      this.changed = null
    }
  })

  constructor(
    private readonly storage: KeyValueStore | null,
    private readonly key: string,
  ) {
    try {
      const raw = storage?.getItem(key)
      const parsed: unknown = raw ? JSON.parse(raw) : []
      // Earlier versions kept only the client-id pairs (an array).
      const stored = (Array.isArray(parsed) ? { clients: parsed } : parsed) as { clients?: unknown; people?: unknown } | null
      if (Array.isArray(stored?.clients)) {
        for (const item of stored.clients) {
          if (Array.isArray(item) && typeof item[0] === 'number' && usable(item[1])) this.names.set(item[0], item[1])
        }
      }
      if (Array.isArray(stored?.people)) {
        for (const item of stored.people) {
          if (Array.isArray(item) && typeof item[0] === 'string' && item[0] !== '' && usable(item[1])) this.byUser.set(item[0], item[1])
        }
      }
    } catch {
      // unreadable: start afresh
    }
  }

  /** Notes that `clientId` belongs to `name`. Returns whether anything changed. */
  learn(clientId: number, name: string | null | undefined): boolean {
    if (!usable(name) || this.names.get(clientId) === name) return false
    this.names.delete(clientId)
    this.names.set(clientId, name)
    while (this.names.size > MAX_NAMES) this.names.delete(this.names.keys().next().value as number)
    this.touch()
    return true
  }

  /** Notes that user `userId` is called `name`. Returns whether anything changed. */
  learnPerson(userId: string, name: string | null | undefined): boolean {
    if (userId === '' || userId === ANONYMOUS.userId || !usable(name) || this.byUser.get(userId) === name) return false
    this.byUser.delete(userId)
    this.byUser.set(userId, name)
    while (this.byUser.size > MAX_PEOPLE) this.byUser.delete(this.byUser.keys().next().value as string)
    this.touch()
    return true
  }

  /**
   * Notes the people behind a record's author bindings: a bound user by id;
   * without auth, the name an anonymous writer showed (the app's user id
   * without auth is derived from the name). Returns whether anything changed.
   */
  learnAuthors(authors: Iterable<AuthorLike>): boolean {
    let changed = false
    for (const author of authors) {
      const claimed = claimedName(author)
      // A binding holds the name the writer had then: it fills a gap, presence (now) decides otherwise.
      if (isBound(author) && author.userId !== null) {
        if (!this.byUser.has(author.userId)) changed = this.learnPerson(author.userId, author.name) || changed
      } else if (claimed !== null) {
        if (author.clientId !== undefined) changed = this.learn(author.clientId, claimed) || changed
        const id = slugify(claimed)
        if (id !== '' && !this.byUser.has(id)) changed = this.learnPerson(id, claimed) || changed
      }
    }
    return changed
  }

  /** Writes what was learned (if anything). */
  save(): void {
    if (!this.dirty) return
    this.dirty = false
    try {
      this.storage?.setItem(this.key, JSON.stringify({ clients: [...this.names], people: [...this.byUser] }))
    } catch {
      // storage full or disabled: names are a nicety
    }
  }

  /** The name to show for an author. */
  nameOf(author: AuthorLike): string {
    this.subscribe()
    if (isBound(author) && author.userId !== null) return author.name || this.byUser.get(author.userId) || personName(author.userId)
    const claimed = claimedName(author)
    if (claimed !== null) return claimed
    const learned = author.clientId === undefined ? undefined : this.names.get(author.clientId)
    return learned ?? (author.userId === null ? 'Someone (not synced yet)' : 'Someone')
  }

  /** The name to show for a user id (an assignee, a lead); the id's words when nobody told it yet. */
  personName(userId: string): string {
    this.subscribe()
    return this.byUser.get(userId) ?? personName(userId)
  }

  /** Whether the name of `userId` is known (not made from the id). */
  knows(userId: string): boolean {
    this.subscribe()
    return this.byUser.has(userId)
  }

  /** Everyone known by name, by name. */
  get people(): KnownPerson[] {
    this.subscribe()
    return [...this.byUser]
      .map(([userId, name]) => ({ userId, name }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.userId.localeCompare(b.userId))
  }

  private touch(): void {
    this.dirty = true
    this.changed?.()
  }
}

const NAMES_KEY = Symbol('concord:author-names')

/** Gives the workspace's names to the components below (call during component initialisation). */
export const setAuthorNames = (names: AuthorNames): void => {
  setContext(NAMES_KEY, names)
}

/** The workspace's names (see {@link setAuthorNames}); a fresh, unremembered directory outside a workspace. */
export const authorNames = (): AuthorNames => getContext<AuthorNames | undefined>(NAMES_KEY) ?? new AuthorNames(null, '')
