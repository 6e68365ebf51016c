/**
 * `concord-relay import <dir>`: merges an export (see `workspaceExport`)
 * into the data dir, while no relay runs. A doc's exported state is
 * appended to its update log, with its author bindings, in one transaction
 * through the relay's own storage code, when it adds something to what is
 * stored: Yjs applies it to the stored state, and an import that adds no
 * item and deletes nothing not deleted already (the same export imported
 * again, or an export older than the doc) stores nothing for that doc.
 * Loading the doc merges the appended state with what was there.
 *
 * The relay must be stopped (see `relayLock`): a running relay that has the
 * doc loaded would not see the appended update, and its next checkpoint
 * would drop it.
 *
 * @module cli/import
 */
import fs from 'node:fs'
import path from 'node:path'
import * as Y from 'yjs'
import { validateDocName } from '@concord/engine/protocol'
import { SqliteDatabase } from '../storage/SqliteDatabase.js'
import type { DocUpdates, StoredDoc } from '../storage/Storage.js'
import { CommandError, DATA_HELP, DATA_OPTION, databaseFileOf, dataDirOf, parseCommandArgs, type Command } from './command.js'
import { assertNoRelay } from './relayLock.js'
import { MANIFEST_FILE, manifestSchema } from './workspaceExport.js'

export const importCommand: Command = {
  name: 'import',
  summary: 'merge an exported workspace into the database (the relay must be stopped)',
  usage: `Usage: concord-relay import <dir> [--data <dir>]

Merges the workspace exported to the folder <dir> (by concord-relay export)
into the relay's database: docs that exist get the exported changes merged in,
the others are created. A doc that already holds everything exported is left
as it is, so importing the same export twice stores nothing the second time.
Stop the relay first: import refuses (exit code 3) while a relay holds
<dir>/relay.lock.

${DATA_HELP}`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs('import', argv, DATA_OPTION, { min: 1, max: 1, names: 'one <dir>' })
    if (args === 'help') return out(this.usage)
    const dataDir = dataDirOf(args.values.data, env)
    const folder = path.resolve(args.positionals[0])
    const batch = readExport(folder)
    assertNoRelay(dataDir, 'import')
    const db = SqliteDatabase.open(databaseFileOf(dataDir))
    let changes: DocUpdates[]
    try {
      changes = batch.map((doc) => newInImport(doc, db.loadDoc(doc.doc))).filter((doc) => doc !== null)
      if (changes.length > 0) db.appendBatches([changes])
    } finally {
      db.close()
    }
    const changed = changes.filter((doc) => doc.updates.length > 0).length
    out(
      `imported ${batch.length} docs from ${folder} into ${dataDir}: ${changed} changed, ${batch.length - changed} unchanged (already held everything exported)`,
    )
  },
}

/**
 * What of an exported doc the stored one lacks: its update (when applying it
 * to the stored state changes that state) and the author bindings not stored
 * as they are; null when there is nothing to store.
 */
const newInImport = (imported: DocUpdates, stored: StoredDoc): DocUpdates | null => {
  const authors = (imported.authors ?? []).filter(
    (a) => !stored.authors.some((s) => s.clientId === a.clientId && s.userId === a.userId && s.name === a.name),
  )
  const updates = imported.updates.filter((update) => changesStored(stored, update))
  if (updates.length === 0 && authors.length === 0) return null
  return { doc: imported.doc, updates, authors }
}

/**
 * True when applying `update` to the stored doc changes it: new items, or
 * deletions of items not deleted yet (Yjs emits `update` only then), or parts
 * it cannot place yet (pending: kept, as the relay would).
 */
const changesStored = (stored: StoredDoc, update: Uint8Array): boolean => {
  const doc = new Y.Doc()
  if (stored.checkpoint !== null) Y.applyUpdate(doc, stored.checkpoint)
  for (const logged of stored.updates) Y.applyUpdate(doc, logged)
  let changed = false
  doc.on('update', () => {
    changed = true
  })
  Y.applyUpdate(doc, update)
  return changed || doc.store.pendingStructs !== null || doc.store.pendingDs !== null
}

/** The docs of an export folder as one batch of updates, each checked to be a Yjs update. */
const readExport = (folder: string): DocUpdates[] => {
  const manifestFile = path.join(folder, MANIFEST_FILE)
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(manifestFile, 'utf8'))
  } catch (error) {
    throw new CommandError(`cannot read ${manifestFile}: ${(error as Error).message}`)
  }
  const manifest = manifestSchema.safeParse(raw)
  if (!manifest.success) {
    throw new CommandError(`${manifestFile}: ${manifest.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  }
  return manifest.data.docs.map(({ doc, file, authors }) => {
    const invalid = validateDocName(doc)
    if (invalid) throw new CommandError(`${manifestFile}: doc "${doc}": ${invalid}`)
    let update: Uint8Array
    try {
      update = new Uint8Array(fs.readFileSync(path.join(folder, file)))
      Y.applyUpdate(new Y.Doc(), update)
    } catch (error) {
      throw new CommandError(`${path.join(folder, file)} (${doc}) is not a Yjs update: ${(error as Error).message}`)
    }
    return { doc, updates: [update], authors }
  })
}
