/**
 * Reads the relay's SQLite file directly, read-only and without the relay's
 * code, the way an operator's recovery tool would: `PRAGMA integrity_check`
 * and every stored doc rebuilt from its checkpoint and log into a `Y.Doc`.
 * Used after a SIGKILL, before the relay is started again, so what is read
 * is exactly what the kill left on disk (WAL included).
 *
 * The queries follow the schema documented in
 * `apps/relay/src/storage/SqliteDatabase.ts` (tables `docs`, `checkpoints`,
 * `updates`); they are written out here on purpose, so a bug in the relay's
 * own loading code cannot hide a bug in what it stored.
 *
 * @module test/reliability/lib/storedDocs
 */
import path from 'node:path'
import Database from 'better-sqlite3'
import * as Y from 'yjs'

/** What a data dir holds after a crash. */
export interface StoredState {
  /** Result of `PRAGMA integrity_check` (`'ok'` when the file is sound). */
  integrity: string
  /** Every stored doc, rebuilt. */
  docs: Map<string, Y.Doc>
  /** Checkpoints in the file. */
  checkpoints: number
  /** When each doc's checkpoint was written (`updated_at`, ms): a changed stamp means a compaction committed since. */
  checkpointStamps: Map<string, number>
  /** Updates in the log (not yet compacted). */
  logUpdates: number
}

/** The relay's SQLite file in `dataDir`. */
export const sqliteFile = (dataDir: string): string => path.join(dataDir, 'concord.sqlite')

/** Opens the file read-only, checks it and rebuilds every doc. */
export const readStoredState = (dataDir: string): StoredState => {
  const db = new Database(sqliteFile(dataDir), { readonly: true, fileMustExist: true })
  try {
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ')
    const docs = new Map<string, Y.Doc>()
    const checkpoint = db.prepare<[string], { state: Buffer }>('SELECT state FROM checkpoints WHERE doc = ?')
    const log = db.prepare<[string], { data: Buffer }>('SELECT data FROM updates WHERE doc = ? ORDER BY seq')
    // One read transaction: the checkpoint and the log of a doc come from the same snapshot.
    db.transaction(() => {
      for (const { doc: name } of db.prepare<[], { doc: string }>('SELECT doc FROM docs').all()) {
        const doc = new Y.Doc()
        const state = checkpoint.get(name)
        Y.transact(doc, () => {
          if (state) Y.applyUpdate(doc, state.state)
          for (const { data } of log.all(name)) Y.applyUpdate(doc, data)
        })
        docs.set(name, doc)
      }
    })()
    const count = (table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    const checkpointStamps = new Map(
      db
        .prepare<[], { doc: string; updated_at: number }>('SELECT doc, updated_at FROM checkpoints')
        .all()
        .map(({ doc, updated_at }) => [doc, updated_at]),
    )
    return { integrity, docs, checkpoints: count('checkpoints'), checkpointStamps, logUpdates: count('updates') }
  } finally {
    db.close()
  }
}
