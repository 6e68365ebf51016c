/**
 * Ticket records as the record store writes them, seeded straight into a
 * relay's SQLite file for the idle-tab and new-device cases: the web app's
 * ticket type, `records` tickets of workspace {@link WORKSPACE}.
 *
 * @module bench/lib/records
 */
import * as Y from 'yjs'

/** The workspace the seeded records belong to. */
export const WORKSPACE = 'bench'

/** Record `i`'s id. */
export const recordId = (i) => `T-${String(i).padStart(5, '0')}`

/** The app's ticket type (`@concord/engine/schemas`, from the engine's build). */
export const ticketSchema = async () => (await import('../../../packages/engine/dist/schemas/index.js')).ticketSchema

/** Stores `count` ticket records (as the record store writes them) in a relay SQLite file. */
export const seedRecords = async (file, count) => {
  const { initRecord } = await import('../../../packages/engine/dist/internal.js')
  const { SqliteStorage } = await import('../../../apps/relay/dist/index.js')
  const schema = await ticketSchema()
  const statuses = ['open', 'in_progress', 'done', 'cancelled']
  const storage = SqliteStorage.open(file)
  try {
    for (let from = 0; from < count; from += 1000) {
      const batch = []
      for (let i = from; i < Math.min(count, from + 1000); i++) {
        const doc = new Y.Doc()
        doc.clientID = 7_000_000 + i
        doc.transact(() => {
          initRecord(doc, schema, 'seed', 1_700_000_000_000 + i * 1000)
          doc.getText('text:title').insert(0, `Ticket ${i}: printer on floor 3 is jammed`)
          doc.getText('text:description').insert(0, `Steps to reproduce ${i}. `.repeat(5))
          doc.getMap('fields').set('status', statuses[i % 4])
          doc.getMap('fields').set('assignee', `user-${i % 17}`)
        })
        batch.push({ doc: `${WORKSPACE}/${recordId(i)}`, updates: [Y.encodeStateAsUpdate(doc)] })
        doc.destroy()
      }
      await storage.appendUpdates(batch)
    }
  } finally {
    await storage.close()
  }
}
