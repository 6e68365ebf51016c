/**
 * Bytes that field-level history adds to a record doc per 1,000 field
 * changes, measured on the encoded doc (`Y.encodeStateAsUpdate`, what
 * IndexedDB and the relay store after compaction/checkpoint).
 *
 * The same 1,000 changes (seeded: 70 % scalar sets of status/priority/assignee,
 * 30 % small text edits of the title) are written three times: without
 * history, with unbounded history, and with the default bound (500 entries,
 * older ones compacted into a summary).
 *
 *     import { historyBytesBench } from './history.mjs'
 *     console.table((await historyBytesBench()).rows)
 *
 * Needs the engine built (`npx tsc -b packages/engine`).
 */
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { defineSchema, field } from '@concord/engine'
import { writeWithHistory, DEFAULT_MAX_HISTORY, HISTORY_ARRAY } from '@concord/engine/internal'

const STATUS = ['open', 'in_progress', 'done', 'cancelled']
const PRIORITY = ['none', 'low', 'medium', 'high', 'urgent']

/** The fields of the web app's ticket that the changes write (`apps/web/src/lib/schemas.ts`). */
const ticketSchema = defineSchema({
  type: 'ticket',
  version: 1,
  title: 'title',
  fields: {
    title: field.text({ maxLength: 500 }),
    status: field.enum(STATUS, 'open'),
    priority: field.enum(PRIORITY, 'none'),
    assignee: field.user(),
  },
})

/** @param {number} changes @param {number} seed */
const changesOf = (changes, seed) => {
  const gen = prng.create(seed)
  const out = []
  let title = 'Login fails on Safari'
  for (let i = 0; i < changes; i++) {
    const roll = prng.real53(gen)
    if (roll < 0.3) {
      const at = prng.uint32(gen, 0, title.length)
      title = title.slice(0, at) + prng.word(gen, 1, 4) + title.slice(Math.min(title.length, at + prng.uint32(gen, 0, 3)))
      if (title.length > 120) title = title.slice(-60)
      out.push(['title', title])
    } else if (roll < 0.55) out.push(['status', prng.oneOf(gen, STATUS)])
    else if (roll < 0.8) out.push(['priority', prng.oneOf(gen, PRIORITY)])
    else out.push(['assignee', `user-${prng.uint32(gen, 1, 20)}`])
  }
  return out
}

/**
 * @param {{ changes?: number, seed?: number, writers?: number }} [options]
 * @returns {Promise<{ rows: Array<Record<string, string | number>>, bytesPer1000: number, bytesPer1000Bounded: number }>}
 */
export async function historyBytesBench(options = {}) {
  const changes = options.changes ?? 1000
  const seed = options.seed ?? 42
  const writers = options.writers ?? 3
  const list = changesOf(changes, seed)
  const run = (mode) => {
    const docs = Array.from({ length: writers }, () => new Y.Doc())
    const base = docs[0]
    const started = performance.now()
    list.forEach(([name, value], i) => {
      // writers take turns (each its own client id), synced after every change
      const doc = docs[i % writers]
      const before = Y.encodeStateVector(doc)
      const patch = [{ name, spec: ticketSchema.fields[name], value }]
      doc.transact(() => {
        writeWithHistory(doc, patch, { now: 1_700_000_000_000 + i, maxEntries: mode === 'bounded' ? DEFAULT_MAX_HISTORY : Infinity })
      })
      const update = Y.encodeStateAsUpdate(doc, before)
      for (const other of docs) if (other !== doc) Y.applyUpdate(other, update)
    })
    const ms = performance.now() - started
    const bytes = Y.encodeStateAsUpdate(base).byteLength
    const entries = base.getArray(HISTORY_ARRAY).length
    for (const d of docs) d.destroy()
    return { bytes, entries, ms }
  }
  // The baseline: the same changes written without history (same minimal text replacement as the record API).
  const clean = (() => {
    const docs = Array.from({ length: writers }, () => new Y.Doc())
    list.forEach(([name, value], i) => {
      const doc = docs[i % writers]
      const before = Y.encodeStateVector(doc)
      doc.transact(() => {
        if (name === 'title') {
          const text = doc.getText('text:title')
          const prev = text.toString()
          let s = 0
          while (s < prev.length && s < value.length && prev[s] === value[s]) s++
          let ep = prev.length
          let en = value.length
          while (ep > s && en > s && prev[ep - 1] === value[en - 1]) {
            ep--
            en--
          }
          if (ep > s) text.delete(s, ep - s)
          if (en > s) text.insert(s, value.slice(s, en))
        } else doc.getMap('fields').set(name, value)
      })
      const update = Y.encodeStateAsUpdate(doc, before)
      for (const other of docs) if (other !== doc) Y.applyUpdate(other, update)
    })
    const bytes = Y.encodeStateAsUpdate(docs[0]).byteLength
    for (const d of docs) d.destroy()
    return { bytes, entries: 0, ms: 0 }
  })()
  const unbounded = run('unbounded')
  const bounded = run('bounded')
  const per1000 = (b) => Math.round(((b - clean.bytes) / changes) * 1000)
  const rows = [
    { variant: 'no history', bytes: clean.bytes, entries: 0, 'added per 1,000 changes': 0 },
    {
      variant: 'history, unbounded',
      bytes: unbounded.bytes,
      entries: unbounded.entries,
      'added per 1,000 changes': per1000(unbounded.bytes),
      ms: Math.round(unbounded.ms),
    },
    {
      variant: `history, bound ${DEFAULT_MAX_HISTORY}`,
      bytes: bounded.bytes,
      entries: bounded.entries,
      'added per 1,000 changes': per1000(bounded.bytes),
      ms: Math.round(bounded.ms),
    },
  ]
  return { rows, bytesPer1000: per1000(unbounded.bytes), bytesPer1000Bounded: per1000(bounded.bytes) }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await historyBytesBench()
  console.table(result.rows)
}
