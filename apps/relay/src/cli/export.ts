/**
 * `concord-relay export <workspace> <dir>`: every doc of a workspace (doc
 * names `<workspace>/…`) to a folder, in the format of `workspaceExport`.
 * Reads one doc at a time from its own connection; safe while the relay runs.
 *
 * @module cli/export
 */
import fs from 'node:fs'
import path from 'node:path'
import { validateDocName } from '@concord/engine/protocol'
import { AdminDatabase } from './adminDatabase.js'
import { CommandError, DATA_HELP, DATA_OPTION, dataDirOf, existingDatabaseOf, parseCommandArgs, type Command } from './command.js'
import { EXPORT_FORMAT, EXPORT_VERSION, MANIFEST_FILE, readableContent, type ExportManifest } from './workspaceExport.js'

export const exportCommand: Command = {
  name: 'export',
  summary: 'write a workspace to a folder as JSON and binary Yjs updates',
  usage: `Usage: concord-relay export <workspace> <dir> [--data <dir>]

Writes every doc of <workspace> to the folder <dir> (new or empty):
workspace.json (doc names, authors, a readable JSON view of each record) and
docs/<n>.update (each doc's state as a binary Yjs update). Safe while the
relay runs. concord-relay import reads it back.

${DATA_HELP}`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs('export', argv, DATA_OPTION, { min: 2, max: 2, names: '<workspace> <dir>' })
    if (args === 'help') return out(this.usage)
    const [workspace, target] = args.positionals
    const invalid = workspace.includes('/') ? 'a workspace id has no "/"' : validateDocName(workspace)
    if (invalid) throw new CommandError(`"${workspace}" is not a workspace id: ${invalid}`)
    const dataDir = dataDirOf(args.values.data, env)
    const db = new AdminDatabase(existingDatabaseOf(dataDir))
    const folder = path.resolve(target)
    try {
      const names = db.listDocs(`${workspace}/`)
      if (names.length === 0) throw new CommandError(`workspace "${workspace}" has no docs in ${dataDir}`)
      if (fs.existsSync(folder) && fs.readdirSync(folder).length > 0) throw new CommandError(`${folder} is not empty`)
      fs.mkdirSync(path.join(folder, 'docs'), { recursive: true })
      const manifest: ExportManifest = {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        workspace,
        exportedAt: new Date().toISOString(),
        docs: [],
      }
      let bytes = 0
      for (const [index, doc] of names.entries()) {
        const rows = db.readDoc(doc)
        if (!rows) continue // removed since it was listed
        const file = `docs/${index + 1}.update`
        fs.writeFileSync(path.join(folder, file), rows.state)
        bytes += rows.state.byteLength
        manifest.docs.push({ doc, file, authors: rows.authors, content: readableContent(rows.state) })
      }
      fs.writeFileSync(path.join(folder, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
      out(`exported ${manifest.docs.length} docs of workspace ${workspace} to ${folder} (${bytes} bytes of updates)`)
    } finally {
      db.close()
    }
  },
}
