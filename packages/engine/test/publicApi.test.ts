/**
 * The engine's entries: the public one exports what an app needs, the
 * internal one what tests and tools need, and docs/engine.md lists every
 * name of both; the engine registers no record types of its own — a store
 * knows exactly the schemas it was given.
 */
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, test } from 'vitest'
import * as engine from '../src/index.js'
import * as internal from '../src/internal.js'
import { Harness } from './helpers.js'
import { testSchemas } from './schemas.js'

const h = new Harness()
afterEach(async () => {
  await h.close()
})

const docs = readFileSync(new URL('../../../docs/engine.md', import.meta.url), 'utf8')

describe('entries', () => {
  test('no name is exported from both the public and the internal entry', () => {
    const publicNames = new Set(Object.keys(engine))
    expect(Object.keys(internal).filter((name) => publicNames.has(name))).toEqual([])
  })

  test('docs/engine.md lists every value either entry exports', () => {
    const unlisted = [...Object.keys(engine), ...Object.keys(internal)].filter((name) => !docs.includes(`\`${name}\``))
    expect(unlisted).toEqual([])
  })
})

describe('record types come from the app', () => {
  test('a schema registry knows only the schemas it is given', () => {
    expect(new engine.SchemaRegistry().types).toEqual([])
    expect(new engine.SchemaRegistry(testSchemas).types).toEqual(['project', 'ticket'])
  })

  test('a store given no schemas creates no tickets; given the app schemas it does', async () => {
    const relay = h.relay({ autoAck: true })
    const client = h.client(relay)
    const bare = h.keep(
      new engine.RecordStore({ client, userId: 'u1', workspaceId: 'bare', tabs: false, storage: new engine.MemoryStorage() }),
    )
    await expect(bare.create('ticket', { title: 'Nowhere' })).rejects.toThrow(/unknown record type; registered: \. Nothing was written/)
    const store = h.keep(
      new engine.RecordStore({
        client,
        userId: 'u1',
        workspaceId: 'acme',
        schemas: testSchemas,
        tabs: false,
        storage: new engine.MemoryStorage(),
      }),
    )
    const ticket = await store.create('ticket', { title: 'Somewhere' }, { id: 'T-1' })
    expect(ticket.read().fields.title).toBe('Somewhere')
    ticket.close()
  })
})
