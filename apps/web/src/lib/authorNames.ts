/**
 * Names for history authors when the relay runs without auth: it binds every
 * writer to "anonymous", so the app remembers the names people showed in
 * presence, by Yjs client id (a doc's awareness id is its client id). With
 * auth, the relay's binding wins. Remembered per user + workspace in
 * localStorage; bounded.
 *
 * @module lib/authorNames
 */
import type { KeyValueStore } from './identity'

export interface AuthorLike {
  clientId?: number
  userId: string | null
  name: string | null
}

const MAX_NAMES = 500

/** Whether the relay bound a writer to a real (authenticated) user. */
export const isBound = (author: { userId: string | null }): boolean => author.userId !== null && author.userId !== 'anonymous'

export class AuthorNames {
  private readonly names = new Map<number, string>()
  private dirty = false

  constructor(
    private readonly storage: KeyValueStore | null,
    private readonly key: string,
  ) {
    try {
      const raw = storage?.getItem(key)
      const parsed: unknown = raw ? JSON.parse(raw) : []
      if (Array.isArray(parsed)) {
        for (const item of parsed) {
          if (Array.isArray(item) && typeof item[0] === 'number' && typeof item[1] === 'string') this.names.set(item[0], item[1])
        }
      }
    } catch {
      // unreadable: start afresh
    }
  }

  /** Notes that `clientId` belongs to `name`. Returns whether anything changed. */
  learn(clientId: number, name: string | null | undefined): boolean {
    if (typeof name !== 'string' || name.trim() === '' || this.names.get(clientId) === name) return false
    this.names.delete(clientId)
    this.names.set(clientId, name)
    while (this.names.size > MAX_NAMES) this.names.delete(this.names.keys().next().value as number)
    this.dirty = true
    return true
  }

  /** Writes what was learned (if anything). */
  save(): void {
    if (!this.dirty) return
    this.dirty = false
    try {
      this.storage?.setItem(this.key, JSON.stringify([...this.names]))
    } catch {
      // storage full or disabled: names are a nicety
    }
  }

  /** The name to show for an author. */
  nameOf(author: AuthorLike): string {
    const bound = isBound(author) && author.name ? author.name : null
    if (bound !== null) return bound
    const learned = author.clientId === undefined ? undefined : this.names.get(author.clientId)
    return learned ?? (author.userId === null ? 'Someone (not synced yet)' : 'Someone')
  }
}
