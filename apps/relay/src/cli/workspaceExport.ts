/**
 * The on-disk format of `concord-relay export` / `import`: a folder with
 *
 * - `workspace.json`: `{ format, version, workspace, exportedAt, docs }`,
 *   one entry per doc: its name, the update file, the author bindings
 *   (which user wrote with which Yjs client id, for attribution) and a
 *   readable JSON view of the record (`record` and `fields` maps, text
 *   fields as strings, lists as arrays). The view is for people and other
 *   tools; import reads only the updates.
 * - `docs/<n>.update`: the doc's whole state as one binary Yjs update.
 *
 * @module cli/workspaceExport
 */
import * as Y from 'yjs'
import { z } from 'zod'

/** Value of `format` in `workspace.json`. */
export const EXPORT_FORMAT = 'concord-workspace-export'
/** Version of the format this relay writes and reads. */
export const EXPORT_VERSION = 1
/** Name of the manifest in an export folder. */
export const MANIFEST_FILE = 'workspace.json'

/** `workspace.json`, as import checks it. */
export const manifestSchema = z.object({
  format: z.literal(EXPORT_FORMAT, { error: `not a workspace export (format is not "${EXPORT_FORMAT}")` }),
  version: z.literal(EXPORT_VERSION, { error: `export format version must be ${EXPORT_VERSION}` }),
  workspace: z.string().min(1),
  exportedAt: z.string(),
  docs: z.array(
    z.object({
      doc: z.string().min(1),
      file: z.string().regex(/^docs\/\d+\.update$/, 'update files are docs/<n>.update'),
      authors: z.array(z.object({ clientId: z.number().int().nonnegative(), userId: z.string().min(1), name: z.string() })),
      content: z.record(z.string(), z.unknown()),
    }),
  ),
})

/** `workspace.json`. */
export type ExportManifest = z.infer<typeof manifestSchema>

/** A readable view of a record doc's state: maps as objects, text as strings, lists as arrays; history left out. */
export const readableContent = (state: Uint8Array): Record<string, unknown> => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, state)
  const content: Record<string, unknown> = {}
  for (const name of [...doc.share.keys()].sort()) {
    if (name === 'record' || name === 'fields') content[name] = doc.getMap(name).toJSON()
    else if (name.startsWith('text:')) content[name] = doc.getText(name).toString()
    else if (name.startsWith('list:') || name === 'concord:comments') content[name] = doc.getArray(name).toJSON()
  }
  doc.destroy()
  return content
}
