/**
 * Checks of a valid update against the doc it is about to be applied to:
 * limits no single update can show, because they depend on what the doc
 * already holds.
 *
 * - **Nesting of shared types.** Yjs deletes and garbage-collects nested
 *   types recursively: a nest thousands deep, built over many updates that
 *   are each shallow, overflows the stack when its root is deleted and
 *   leaves a doc plain clients cannot load. Every new type item's depth
 *   (the depth of its parent type in the doc or in the update, plus one)
 *   must stay within {@link DocLimits.maxTypeDepth}.
 * - **Map entries without an origin.** A map entry without a left origin
 *   makes Yjs walk the key's whole history when it integrates. A client
 *   writes one only when it sets a key it has never seen (a second set of
 *   the key has the first as its origin), so a key holds one per client
 *   that created it concurrently. Thousands of them, sent in many updates,
 *   make every further one cost the whole history: the entries without an
 *   origin per key, already in the doc plus new in the update, must stay
 *   within {@link DocLimits.maxKeyConflicts}.
 * - **Concurrent map entries.** More generally, Yjs places a map entry by
 *   walking the key's history from the entry's origin (from the start when
 *   it has none) to the end. A client's entry names the key's current value
 *   as its origin, so the walk is empty, except for edits concurrent with
 *   others (at most the history since the client last synced). An update
 *   whose entries would make Yjs walk more than {@link DocLimits.maxKeyWalk}
 *   history entries in all is refused, so no update costs more than that,
 *   however long the histories grow.
 *
 * Parents are resolved the way Yjs resolves them (`Item.getMissing`): an
 * explicit parent (root name or type item), else the parent and key of the
 * left origin, else of the right origin; a reference may point into the doc
 * or into the update itself. The work is linear in the update, plus at most
 * `maxKeyWalk` steps along key histories, plus, once per type and per key
 * for the life of the room, a walk of the type's parent chain (at most
 * `maxTypeDepth + 1` steps) and of the key's history. {@link DocGuard.walked}
 * counts those steps, so tests assert the bounds on counts, not on time.
 *
 * ```ts
 * const guard = new DocGuard(doc, { maxTypeDepth: 100, maxKeyConflicts: 1000, maxKeyWalk: 1_000_000 })
 * const valid = validateUpdateV1(update)
 * const check = valid.ok ? guard.check(update, valid) : valid
 * if (!check.ok) refuse(check.reason)
 * else { Y.applyUpdate(doc, update); check.applied() }
 * ```
 *
 * @module security/docGuard
 */
import * as Y from 'yjs'
import { readUpdateItems, type StructId, type UpdateItem } from './validateUpdate.js'

/** Limits checked against the doc. */
export interface DocLimits {
  /** Deepest nesting of shared types in a doc (a root type is depth 0, a type in it 1, …). */
  maxTypeDepth: number
  /** Most map entries without an origin for one key of one map, in the doc. */
  maxKeyConflicts: number
  /** Most entries of map-key histories Yjs may have to walk to place the concurrent map entries of one update. */
  maxKeyWalk: number
}

/** What {@link DocGuard.check} needs of the update's validation (`validateUpdateV1`). */
export interface ValidatedCounts {
  typeItems: number
  originless: number
  /** Origins of the update's items, as `client, clock` pairs. */
  origins: readonly number[]
  /** The update's items when validation collected them (`validateUpdateWithItems`); read again from the bytes otherwise. */
  items?: readonly UpdateItem[]
}

/** Outcome of {@link DocGuard.check}. */
export type DocCheck = { ok: true; applied: () => void } | { ok: false; reason: string }

/** A shared type of the doc, whatever its events. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a shared type of any kind (Y.Map, Y.Array, Y.Text…): the event type varies
type SharedType = Y.AbstractType<any>

/** Where an item's parent is. */
type Parent = { doc: SharedType } | { root: string } | { item: UpdateItem }

/** An item's parent and key, as Yjs will find them; null parent: the item will not integrate (GC'd or missing parent). */
interface Placement {
  parent: Parent | null
  sub: string | null
}

const NOWHERE: Placement = Object.freeze({ parent: null, sub: null })

const NOOP = (): void => {}

/** The items of an update by client, each client's by clock, for lookups by id. */
class UpdateIndex {
  private readonly byClient = new Map<number, UpdateItem[]>()

  constructor(items: readonly UpdateItem[]) {
    for (const item of items) {
      let list = this.byClient.get(item.client)
      if (!list) this.byClient.set(item.client, (list = []))
      list.push(item)
    }
  }

  /** The item holding `id`, or null (not in the update, or a GC or skip struct). */
  find(id: StructId): UpdateItem | null {
    const list = this.byClient.get(id.client)
    if (!list) return null
    let lo = 0
    let hi = list.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const item = list[mid]
      if (id.clock < item.clock) hi = mid - 1
      else if (id.clock >= item.clock + item.length) lo = mid + 1
      else return item
    }
    return null
  }
}

/** Per-room checks of updates against the room's doc; see the module comment. */
export class DocGuard {
  /** Depth of types of the doc (capped at `maxTypeDepth + 1`); a type's parent never changes. Created at first use. */
  private depthCache: WeakMap<SharedType, number> | null = null
  /** Entries without an origin per key, per map of the doc; filled on first use, then kept up to date. Created at first use. */
  private keyConflictCache: WeakMap<SharedType, Map<string, number>> | null = null
  private steps = 0

  // Most rooms are loaded and read without ever checking an update that needs these: they cost nothing until then.
  private get depths(): WeakMap<SharedType, number> {
    return (this.depthCache ??= new WeakMap())
  }

  private get keyConflicts(): WeakMap<SharedType, Map<string, number>> {
    return (this.keyConflictCache ??= new WeakMap())
  }

  constructor(
    private readonly doc: Y.Doc,
    readonly limits: DocLimits,
  ) {}

  /**
   * Entries of the doc the guard has visited so far, in all checks: entries
   * of map-key histories and links of type parent chains. The work that is
   * not linear in an update is all here; tests bound it.
   */
  get walked(): number {
    return this.steps
  }

  /**
   * Checks an update that `validateUpdateV1` accepted (with `counts` from
   * its result) against the doc. On `ok`, call `applied()` once the update
   * is applied so that the guard counts what it added.
   */
  check(update: Uint8Array, counts: ValidatedCounts): DocCheck {
    // most updates add no type, no entry without an origin, and attach only where a walk is empty
    if (counts.typeItems === 0 && counts.originless === 0 && !this.attachesInsideKeyHistory(counts.origins)) {
      return { ok: true, applied: NOOP }
    }
    const items = counts.items ?? readUpdateItems(update)
    if (items === null) return { ok: false, reason: 'the update cannot be read' }
    const run = new UpdateRun(this, this.doc, items)
    const store = this.doc.store
    /** New entries without an origin per map (a doc type, a new root by name, or a type of the update) and key. */
    const conflicts = new Map<SharedType | string | UpdateItem, Map<string, number>>()
    /** Map entries of the doc that new entries name as their origin while later entries of the key follow them, with how many name each. */
    const staleOrigins = new Map<Y.Item, number>()
    for (const item of items) {
      // items the doc has are skipped by Yjs; one it has in part gets an origin (its own previous clock)
      if (item.clock < Y.getState(store, item.client)) continue
      if (item.isType) {
        const depth = run.typeDepth(item)
        if (depth > this.limits.maxTypeDepth) {
          return { ok: false, reason: `shared types would be nested deeper than ${this.limits.maxTypeDepth} in this doc` }
        }
      }
      if (item.origin !== null) {
        const origin = run.docItem(item.origin)
        if (origin && origin.parentSub !== null && origin.right !== null) staleOrigins.set(origin, (staleOrigins.get(origin) ?? 0) + 1)
      } else if (item.rightOrigin !== null || item.parentSub !== null) {
        const { parent, sub } = run.place(item)
        if (parent === null || sub === null) continue
        const owner = 'item' in parent ? parent.item : 'root' in parent ? (this.doc.share.get(parent.root) ?? parent.root) : parent.doc
        let perKey = conflicts.get(owner)
        if (!perKey) conflicts.set(owner, (perKey = new Map()))
        perKey.set(sub, (perKey.get(sub) ?? 0) + 1)
      }
    }
    for (const [owner, perKey] of conflicts) {
      for (const [key, count] of perKey) {
        const existing = owner instanceof Y.AbstractType ? this.conflictsInDoc(owner, key) : 0
        if (existing + count > this.limits.maxKeyConflicts) {
          return {
            ok: false,
            reason: `more than ${this.limits.maxKeyConflicts} entries without an origin for one map key in this doc (the key "${key.slice(0, 32)}" has ${existing}, the update adds ${count})`,
          }
        }
      }
    }
    if (this.keyWalk(conflicts, staleOrigins) > this.limits.maxKeyWalk) {
      return {
        ok: false,
        reason: `the update's concurrent map entries would make Yjs walk more than ${this.limits.maxKeyWalk} entries of map-key histories in this doc`,
      }
    }
    return {
      ok: true,
      applied: () => {
        for (const [owner, perKey] of conflicts) {
          if (!(owner instanceof Y.AbstractType)) continue // counted on first use
          const known = this.keyConflicts.get(owner)
          if (!known) continue
          for (const [key, count] of perKey) {
            const before = known.get(key)
            if (before !== undefined) known.set(key, before + count)
          }
        }
      },
    }
  }

  /** True when one of the origins is an entry of a map key that later entries follow (a walk for Yjs). */
  private attachesInsideKeyHistory(origins: readonly number[]): boolean {
    const store = this.doc.store
    for (let i = 0; i < origins.length; i += 2) {
      const client = origins[i]
      const clock = origins[i + 1]
      if (clock >= Y.getState(store, client)) continue // not in the doc: in the update itself, or missing
      const item: unknown = Y.getItem(store, Y.createID(client, clock))
      if (item instanceof Y.Item && item.parentSub !== null && item.right !== null) return true
    }
    return false
  }

  /**
   * How many entries of map-key histories Yjs walks, at most, to place the
   * update's entries: the key's whole history for each entry without an
   * origin, the entries after the origin for each entry whose origin is not
   * the key's current value. Counted up to just past `maxKeyWalk`.
   */
  private keyWalk(conflicts: Map<SharedType | string | UpdateItem, Map<string, number>>, staleOrigins: Map<Y.Item, number>): number {
    const max = this.limits.maxKeyWalk
    let walk = 0
    for (const [origin, count] of staleOrigins) {
      for (let item = origin.right; item !== null && walk <= max; item = item.right) {
        walk += count
        this.steps++
      }
      if (walk > max) return walk
    }
    for (const [owner, perKey] of conflicts) {
      if (!(owner instanceof Y.AbstractType)) continue // a map the doc does not have yet: no history
      for (const [key, count] of perKey) {
        for (let item: Y.Item | null = owner._map.get(key) ?? null; item !== null && walk <= max; item = item.left) {
          walk += count
          this.steps++
        }
        if (walk > max) return walk
      }
    }
    return walk
  }

  /** Depth of a type of the doc: 0 for a root type; capped at `maxTypeDepth + 1`. */
  docDepth(type: SharedType): number {
    const known = this.depths.get(type)
    if (known !== undefined) return known
    const cap = this.limits.maxTypeDepth + 1
    let depth = 0
    let cur: SharedType | null = type
    while (cur !== null && cur._item !== null && depth < cap) {
      const cached = this.depths.get(cur)
      if (cached !== undefined) {
        depth = Math.min(cap, depth + cached)
        break
      }
      depth++
      this.steps++
      const parent: unknown = cur._item.parent
      cur = parent instanceof Y.AbstractType ? parent : null
    }
    this.depths.set(type, depth)
    return depth
  }

  /** Entries without an origin in the history of `key` of `type` (walked once, then kept up to date). */
  private conflictsInDoc(type: SharedType, key: string): number {
    let perKey = this.keyConflicts.get(type)
    if (!perKey) this.keyConflicts.set(type, (perKey = new Map()))
    let count = perKey.get(key)
    if (count === undefined) {
      count = 0
      for (let item: Y.Item | null = type._map.get(key) ?? null; item !== null; item = item.left) {
        this.steps++
        if (item.origin === null) count++
      }
      perKey.set(key, count)
    }
    return count
  }
}

/** Resolution of the items of one update, memoized; iterative, so long chains of references cannot exhaust the stack. */
class UpdateRun {
  private readonly index: UpdateIndex
  private readonly placements = new Map<UpdateItem, Placement>()
  private readonly depths = new Map<UpdateItem, number>()

  constructor(
    private readonly guard: DocGuard,
    private readonly doc: Y.Doc,
    items: readonly UpdateItem[],
  ) {
    this.index = new UpdateIndex(items)
  }

  /** Parent and key of an item of the update. */
  place(start: UpdateItem): Placement {
    const path: UpdateItem[] = []
    const visiting = new Set<UpdateItem>()
    let item = start
    let found: Placement
    for (;;) {
      const known = this.placements.get(item)
      if (known) {
        found = known
        break
      }
      const step = this.directPlacement(item)
      if (!('via' in step)) {
        found = step
        this.placements.set(item, step)
        break
      }
      if (visiting.has(step.via)) {
        found = NOWHERE // a reference cycle: Yjs keeps such items pending
        break
      }
      visiting.add(item)
      path.push(item)
      item = step.via
    }
    for (const p of path) this.placements.set(p, found)
    return found
  }

  /** Depth of a type item of the update: its parent's depth plus one. */
  typeDepth(start: UpdateItem): number {
    const cap = this.guard.limits.maxTypeDepth + 1
    const chain: UpdateItem[] = []
    const visiting = new Set<UpdateItem>()
    let item = start
    let base: number
    for (;;) {
      const known = this.depths.get(item)
      if (known !== undefined) {
        base = known
        break
      }
      chain.push(item)
      visiting.add(item)
      const parent = this.place(item).parent
      if (parent === null || 'root' in parent) base = 0
      else if ('doc' in parent) base = this.guard.docDepth(parent.doc)
      else if (visiting.has(parent.item)) base = 0
      else {
        item = parent.item
        continue
      }
      break
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      base = Math.min(cap, base + 1)
      this.depths.set(chain[i], base)
    }
    return base
  }

  /** Where Yjs takes an item's parent from: a final answer, or another item of the update to take it from. */
  private directPlacement(item: UpdateItem): Placement | { via: UpdateItem } {
    if (item.parent !== null) {
      if ('root' in item.parent) return { parent: { root: item.parent.root }, sub: item.parentSub }
      const inDoc = this.docStruct(item.parent)
      if (inDoc !== undefined) {
        if (inDoc === null || !(inDoc.content instanceof Y.ContentType)) return NOWHERE
        return { parent: { doc: inDoc.content.type }, sub: item.parentSub }
      }
      const parentItem = this.index.find(item.parent)
      return parentItem?.isType ? { parent: { item: parentItem }, sub: item.parentSub } : NOWHERE
    }
    const ref = item.origin ?? item.rightOrigin
    if (ref === null) return NOWHERE
    const inDoc = this.docStruct(ref)
    if (inDoc !== undefined) {
      if (inDoc === null) return NOWHERE
      const parent: unknown = inDoc.parent
      return parent instanceof Y.AbstractType ? { parent: { doc: parent }, sub: inDoc.parentSub } : NOWHERE
    }
    const via = this.index.find(ref)
    return via === null ? NOWHERE : { via }
  }

  /** The doc's item holding `id`, or null (a GC struct, or not in the doc). */
  docItem(id: StructId): Y.Item | null {
    return this.docStruct(id) ?? null
  }

  /** The doc's item holding `id`; null for a GC struct; undefined when the doc does not have `id`. */
  private docStruct(id: StructId): Y.Item | null | undefined {
    const store = this.doc.store
    if (id.clock >= Y.getState(store, id.client)) return undefined
    const struct: unknown = Y.getItem(store, Y.createID(id.client, id.clock))
    return struct instanceof Y.Item ? struct : null
  }
}
