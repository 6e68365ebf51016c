/**
 * ViewedRecord against a fake store and handle: what a ticket or project page
 * shows follows the handle's events, presence is joined again after a
 * reload, and closing (also before the record opened) leaves nothing behind.
 */
import type { RecordHandle, RecordStore, Viewer } from '@concord/engine'
import { describe, expect, it, vi } from 'vitest'
import { AuthorNames } from '../src/lib/authorNames'
import { caretsIn, ViewedRecord } from '../src/lib/viewedRecord.svelte'

type Listener = (...args: never[]) => void

class Emitter {
  readonly listeners = new Map<string, Set<Listener>>()
  on(event: string, f: Listener): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set())
    this.listeners.get(event)!.add(f)
  }
  off(event: string, f: Listener): void {
    this.listeners.get(event)?.delete(f)
  }
  emit(event: string, ...args: unknown[]): void {
    for (const f of [...(this.listeners.get(event) ?? [])]) (f as (...a: unknown[]) => void)(...args)
  }
  count(): number {
    let n = 0
    for (const set of this.listeners.values()) n += set.size
    return n
  }
}

class FakePresence extends Emitter {
  destroyed = false
  editing: unknown[] = []
  constructor(public viewers: Viewer[]) {
    super()
  }
  setEditing(...args: unknown[]): void {
    this.editing.push(args)
  }
  destroy(): void {
    this.destroyed = true
  }
}

class FakeHandle extends Emitter {
  pending = 0
  pendingFields: string[] = []
  isSaved = true
  storageError: { kind: string } | null = null
  closed = false
  type: string | null = 'ticket'
  values: Record<string, unknown> = { title: 'First' }
  localState: unknown = undefined
  readonly presences: FakePresence[] = []
  viewers: Viewer[] = []
  readonly awareness = { setLocalState: (state: unknown) => (this.localState = state) }
  readonly sync = { authors: new Map<number, { clientId: number; userId: string; name: string }>() }
  presence(): FakePresence {
    const presence = new FakePresence(this.viewers)
    this.presences.push(presence)
    return presence
  }
  read(): { fields: Record<string, unknown> } {
    return { fields: { ...this.values } }
  }
  text(field: string): string {
    return `${field}@${this.presences.length}`
  }
  set(field: string, value: unknown): void {
    if (value === 'bad') throw new Error(`${field}: not a valid value`)
    this.values[field] = value
  }
  close(): void {
    this.closed = true
  }
}

const viewer = (clientId: number, name: string, more: Partial<Viewer> = {}): Viewer =>
  ({ clientId, self: false, user: { id: name.toLowerCase(), name, color: '#123456' }, field: null, selection: null, ...more }) as Viewer

/** The name learned for an unbound writer with this client id. */
const nameOf = (names: AuthorNames, clientId: number): string => names.nameOf({ clientId, userId: 'anonymous', name: null })

const me = { id: 'ada', name: 'Ada', color: '#ff0000' }

/** A ViewedRecord on a store whose `open` resolves (or rejects) when told to. */
const setup = () => {
  const handle = new FakeHandle()
  let resolve!: (h: RecordHandle) => void
  let reject!: (e: unknown) => void
  const opening = new Promise<RecordHandle>((res, rej) => {
    resolve = res
    reject = rej
  })
  const store = { open: vi.fn(() => opening), persistent: true } as unknown as RecordStore & { persistent: boolean }
  const saved = new Map<string, string>()
  const names = new AuthorNames({ getItem: (k) => saved.get(k) ?? null, setItem: (k, v) => void saved.set(k, v) }, 'names')
  const onopened = vi.fn()
  const record = new ViewedRecord({ user: () => me, names: () => names, onopened })
  const settle = async (): Promise<void> => {
    await opening.catch(() => undefined)
    await Promise.resolve()
  }
  return { handle, store, names, saved, onopened, record, settle, open: () => resolve(handle as unknown as RecordHandle), fail: reject }
}

describe('ViewedRecord', () => {
  it('shows the record once open: state, presence, names', async () => {
    const t = setup()
    t.handle.pending = 3
    t.handle.pendingFields = ['title']
    t.handle.isSaved = false
    t.handle.viewers = [viewer(1, 'Ada', { self: true }), viewer(2, 'Bob', { field: 'title', selection: { anchor: 1, head: 2 } })]
    t.record.open(t.store, 'T1')
    expect(t.record.handle).toBeNull()
    expect(t.record.fields).toEqual({})
    expect(t.record.typed).toBe(false)
    t.open()
    await t.settle()

    expect(t.store.open).toHaveBeenCalledWith('T1')
    expect(t.onopened).toHaveBeenCalledWith('T1')
    expect(t.record.handle).toBe(t.handle)
    expect([t.record.pending, t.record.pendingFields, t.record.saved]).toEqual([3, ['title'], false])
    expect(t.record.fields).toEqual({ title: 'First' })
    expect(t.record.typed).toBe(true)
    expect(t.handle.localState).toEqual({ user: me, editing: null })
    expect(t.record.viewers.map((v) => v.user?.name)).toEqual(['Ada', 'Bob'])
    expect(t.record.others.map((v) => v.user?.name)).toEqual(['Bob'])
    expect(t.record.editorsOf('title').map((v) => v.clientId)).toEqual([2])
    expect(t.record.editorsOf('description')).toEqual([])
    expect(t.record.caretsIn('title')).toEqual([{ clientId: 2, name: 'Bob', color: '#123456', index: 2, anchor: 1 }])
    expect(t.record.isPending('title')).toBe(true)
    expect(t.record.isPending('status')).toBe(false)
    expect(nameOf(t.names, 2)).toBe('Bob')
    expect(JSON.parse(t.saved.get('names')!)).toEqual({
      clients: [
        [1, 'Ada'],
        [2, 'Bob'],
      ],
      people: [
        ['ada', 'Ada'],
        ['bob', 'Bob'],
      ],
    })
  })

  it('learns the people the relay bound as writers, and shows the history again when it tells more', async () => {
    const t = setup()
    t.handle.sync.authors.set(5, { clientId: 5, userId: 'u-cy', name: 'Cy Young' })
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    expect(t.names.personName('u-cy')).toBe('Cy Young')
    t.handle.sync.authors.set(6, { clientId: 6, userId: 'anonymous', name: 'Dee Lane' })
    t.handle.emit('authors', [{ clientId: 6, userId: 'anonymous', name: 'Dee Lane' }])
    expect(t.names.nameOf({ clientId: 6, userId: 'anonymous', name: 'Dee Lane' })).toBe('Dee Lane')
    expect(t.names.personName('dee-lane')).toBe('Dee Lane')
    expect(JSON.parse(t.saved.get('names')!).people).toEqual(
      expect.arrayContaining([
        ['u-cy', 'Cy Young'],
        ['dee-lane', 'Dee Lane'],
      ]),
    )
    t.record.close()
    expect(t.handle.count()).toBe(0)
  })

  it('follows the handle: changes, pending fields, saved, viewers', async () => {
    const t = setup()
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()

    t.handle.values.title = 'Second'
    t.handle.emit('change', 'remote')
    expect(t.record.fields).toEqual({ title: 'Second' })

    t.handle.pending = 1
    t.handle.pendingFields = ['status']
    t.handle.emit('pending')
    expect([t.record.pending, t.record.pendingFields]).toEqual([1, ['status']])

    t.handle.isSaved = false
    t.handle.emit('saved', false)
    expect(t.record.saved).toBe(false)

    t.handle.viewers = [viewer(7, 'Cy', { field: 'status' })]
    t.handle.presences[0]!.viewers = t.handle.viewers
    t.handle.presences[0]!.emit('change', t.handle.viewers)
    expect(t.record.editorsOf('status').map((v) => v.user?.name)).toEqual(['Cy'])
    expect(nameOf(t.names, 7)).toBe('Cy')

    t.record.editing('status')()
    t.record.selecting('title')({ anchor: 0, head: 4 })
    t.record.editing(null)()
    expect(t.handle.presences[0]!.editing).toEqual([['status'], ['title', { anchor: 0, head: 4 }], [null]])
  })

  it('says why changes are not saved on this device: a storage failure until it recovers, or a store in memory', async () => {
    const t = setup()
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    expect([t.record.saved, t.record.unsaved]).toEqual([true, null])

    t.handle.isSaved = false
    t.handle.storageError = { kind: 'quota' }
    t.handle.emit('error', t.handle.storageError)
    t.handle.emit('saved', false)
    expect(t.record.saved).toBe(false)
    expect(t.record.unsaved).toMatch(/storage for the app is full/)

    t.handle.isSaved = true
    t.handle.storageError = null
    t.handle.emit('saved', true)
    expect([t.record.saved, t.record.unsaved]).toEqual([true, null])

    const memory = setup()
    memory.store.persistent = false
    memory.handle.isSaved = false
    memory.record.open(memory.store, 'T2')
    memory.open()
    await memory.settle()
    expect(memory.record.saved).toBe(false)
    expect(memory.record.unsaved).toMatch(/not letting the app store data/)
  })

  it('joins the presence again after a reload, and gives new texts', async () => {
    const t = setup()
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    expect(t.record.textOf(t.handle as unknown as RecordHandle, 'title')).toBe('title@1')

    t.handle.localState = null // the reloaded doc has a new awareness
    t.handle.viewers = [viewer(9, 'Dee')]
    t.handle.emit('reloaded')

    const [first, second] = t.handle.presences
    expect(first!.destroyed).toBe(true)
    expect(first!.count()).toBe(0)
    expect(second!.destroyed).toBe(false)
    expect(t.handle.localState).toEqual({ user: me, editing: null })
    expect(t.record.viewers.map((v) => v.user?.name)).toEqual(['Dee'])
    expect(t.record.textOf(t.handle as unknown as RecordHandle, 'title')).toBe('title@2')
    t.record.editing('title')()
    expect(second!.editing).toEqual([['title']])
  })

  it('closing leaves the presence, drops every listener and closes the handle', async () => {
    const t = setup()
    const close = t.record.open(t.store, 'T1')
    t.open()
    await t.settle()

    close()
    expect(t.record.handle).toBeNull()
    expect(t.handle.closed).toBe(true)
    expect(t.handle.count()).toBe(0)
    expect(t.handle.presences[0]!.destroyed).toBe(true)
    expect(t.handle.presences[0]!.count()).toBe(0)
    expect(t.handle.localState).toBeNull()
    t.record.editing('title')() // no presence any more: nothing to tell
    expect(t.handle.presences[0]!.editing).toEqual([])
  })

  it('a record closed before it opened is closed at once and never shown', async () => {
    const t = setup()
    const close = t.record.open(t.store, 'T1')
    close()
    t.open()
    await t.settle()
    expect(t.handle.closed).toBe(true)
    expect(t.record.handle).toBeNull()
    expect(t.onopened).not.toHaveBeenCalled()
    expect(t.handle.presences).toEqual([])
  })

  it('opening again closes the record open before', async () => {
    const t = setup()
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    t.record.open(t.store, 'T2')
    expect(t.handle.closed).toBe(true)
    expect(t.record.handle).toBeNull()
    t.record.close()
  })

  it('a record that cannot be opened says why', async () => {
    const t = setup()
    t.record.open(t.store, 'T1')
    t.fail(new Error('storage is full'))
    await t.settle()
    expect(t.record.problem).toBe('storage is full')
    expect(t.record.handle).toBeNull()
  })

  it('a refused write shows as the problem until a write succeeds', async () => {
    const t = setup()
    t.record.set('status', 'done') // not open yet: nothing to write to
    expect(t.handle.values.status).toBeUndefined()
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    t.record.set('status', 'bad')
    expect(t.record.problem).toBe('status: not a valid value')
    t.record.set('status', 'done')
    expect(t.record.problem).toBeNull()
    expect(t.handle.values.status).toBe('done')
    t.record.fail('offline')
    expect(t.record.problem).toBe('offline')
  })

  it('hides this user from the others and shows them again (back-forward cache)', async () => {
    const t = setup()
    t.record.show(false) // not open yet: no effect
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    t.record.show(false)
    expect(t.handle.localState).toBeNull()
    t.record.show(true)
    expect(t.handle.localState).toEqual({ user: me, editing: null })
  })

  it('reads nothing from a store that is closing', async () => {
    const t = setup()
    t.record.open(t.store, 'T1')
    t.open()
    await t.settle()
    t.handle.read = () => {
      throw new Error('closed')
    }
    Object.defineProperty(t.handle, 'type', {
      get: () => {
        throw new Error('closed')
      },
    })
    t.handle.emit('change', 'local')
    expect(t.record.fields).toEqual({})
    expect(t.record.typed).toBe(false)
  })
})

describe('caretsIn', () => {
  it('lists the carets (and selection anchors) of the others in one field, with defaults for who sent no name or colour', () => {
    const others = [
      viewer(1, 'Bob', { field: 'title', selection: { anchor: 3, head: 5 } }),
      viewer(2, 'Cy', { field: 'title', selection: null }),
      viewer(3, 'Dee', { field: 'description', selection: { anchor: 0, head: 0 } }),
      { ...viewer(4, 'x', { field: 'title', selection: { anchor: 1, head: 1 } }), user: null } as Viewer,
    ]
    expect(caretsIn(others, 'title')).toEqual([
      { clientId: 1, name: 'Bob', color: '#123456', index: 5, anchor: 3 },
      { clientId: 4, name: 'Someone', color: '#8b8d98', index: 1, anchor: 1 },
    ])
  })
})
