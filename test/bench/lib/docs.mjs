/**
 * Deterministic Yjs documents for the benchmarks: small ticket records, a
 * ticket worked on by several people for 1,000 edits, and offline edits on
 * top of a record. Same seed, same bytes, in every process.
 *
 * @module bench/lib/docs
 */
import { readFileSync, writeFileSync } from 'node:fs'
import * as Y from 'yjs'
import { prng } from './stats.mjs'

const WORDS = [
  'printer',
  'floor',
  'jammed',
  'tray',
  'restart',
  'paper',
  'driver',
  'queue',
  'toner',
  'network',
  'again',
  'fixed',
  'the',
  'on',
  'is',
  'not',
]
const STATUSES = ['open', 'triage', 'in-progress', 'blocked', 'review', 'done']
const PRIORITIES = ['p0', 'p1', 'p2', 'p3']

/** The state of a small ticket record (title, description, four fields), as one update. */
export const ticketState = (i, clientID = 1_000_000 + i) => {
  const doc = new Y.Doc()
  doc.clientID = clientID
  doc.getText('title').insert(0, `Ticket ${i}: printer on floor 3 is jammed`)
  doc.getText('description').insert(0, 'Steps: open tray 2, remove paper, restart. Still jams.')
  const fields = doc.getMap('fields')
  fields.set('status', 'open')
  fields.set('priority', 'p2')
  fields.set('assignee', `user-${i % 17}`)
  fields.set('estimate', 3)
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return state
}

/**
 * One random edit of a ticket doc, as a person would make it: typing a word
 * into the description or title, deleting a few characters, setting a field,
 * or adding a comment.
 */
export const randomEdit = (doc, random, k) => doc.transact(() => edit(doc, random, k))

const edit = (doc, random, k) => {
  const r = random()
  const description = doc.getText('description')
  if (r < 0.55) {
    const word = WORDS[Math.floor(random() * WORDS.length)]
    description.insert(Math.floor(random() * (description.length + 1)), ` ${word}`)
  } else if (r < 0.7 && description.length > 10) {
    const at = Math.floor(random() * (description.length - 5))
    description.delete(at, 1 + Math.floor(random() * 4))
  } else if (r < 0.8) {
    const title = doc.getText('title')
    title.insert(Math.floor(random() * (title.length + 1)), WORDS[Math.floor(random() * WORDS.length)][0])
  } else if (r < 0.93) {
    const fields = doc.getMap('fields')
    if (random() < 0.5) fields.set('status', STATUSES[Math.floor(random() * STATUSES.length)])
    else fields.set('priority', PRIORITIES[Math.floor(random() * PRIORITIES.length)])
  } else {
    const comment = new Y.Map()
    doc.getArray('comments').push([comment])
    comment.set('author', `user-${doc.clientID % 7}`)
    comment.set('text', `comment ${k}: ${WORDS[Math.floor(random() * WORDS.length)]}`)
  }
}

/**
 * A ticket worked on by `authors` people for `edits` edits in total (each
 * edit its own transaction, authors interleaved and in sync), as one update.
 */
export const editedTicketState = (edits = 1000, { authors = 5, seed = 7 } = {}) => {
  const random = prng(seed)
  const docs = Array.from({ length: authors }, (_, a) => {
    const doc = new Y.Doc()
    doc.clientID = 2_000_000 + a
    return doc
  })
  Y.applyUpdate(docs[0], ticketState(0))
  for (const doc of docs.slice(1)) Y.applyUpdate(doc, Y.encodeStateAsUpdate(docs[0]))
  for (let k = 0; k < edits; k++) {
    const author = docs[Math.floor(random() * authors)]
    const updates = []
    const capture = (u) => updates.push(u)
    author.on('update', capture)
    randomEdit(author, random, k)
    author.off('update', capture)
    for (const update of updates) for (const other of docs) if (other !== author) Y.applyUpdate(other, update)
  }
  const state = Y.encodeStateAsUpdate(docs[0])
  if (docs[0].store.pendingStructs || docs[0].store.pendingDs) throw new Error('edited ticket: authors out of sync')
  for (const doc of docs) doc.destroy()
  return state
}

/** Applies `count` offline edits by `clientID` to `doc` (each its own transaction). */
export const offlineEdits = (doc, count, seed) => {
  const random = prng(seed)
  for (let k = 0; k < count; k++) randomEdit(doc, random, k)
}

/** Writes named binary blobs to one file: `u32 nameLength • name • u32 length • bytes`, repeated. */
export const writeBlobs = (file, entries) => {
  const parts = []
  for (const [name, data] of entries) {
    const n = Buffer.from(name)
    const h = Buffer.alloc(4)
    h.writeUInt32LE(n.length)
    const l = Buffer.alloc(4)
    l.writeUInt32LE(data.byteLength)
    parts.push(h, n, l, Buffer.from(data.buffer, data.byteOffset, data.byteLength))
  }
  writeFileSync(file, Buffer.concat(parts))
}

/** Reads a file written by {@link writeBlobs} into `[name, Uint8Array][]`. */
export const readBlobs = (file) => {
  const data = readFileSync(file)
  const out = []
  for (let at = 0; at < data.length;) {
    const nl = data.readUInt32LE(at)
    const name = data.toString('utf8', at + 4, at + 4 + nl)
    at += 4 + nl
    const len = data.readUInt32LE(at)
    out.push([name, new Uint8Array(data.buffer, data.byteOffset + at + 4, len)])
    at += 4 + len
  }
  return out
}
