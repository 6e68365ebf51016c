/**
 * The records routes of the HTTP API (see `docs/api.md`):
 *
 *     GET    /api/v1/workspaces/{workspace}/records               list (paged, filtered)
 *     POST   /api/v1/workspaces/{workspace}/records               create
 *     GET    /api/v1/workspaces/{workspace}/records/{id}          read (JSON, or the Yjs state)
 *     PATCH  /api/v1/workspaces/{workspace}/records/{id}          change fields, archive or unarchive
 *     POST   /api/v1/workspaces/{workspace}/records/{id}/archive  archive
 *
 * Permissions are the WebSocket's: reading needs read access to the record's
 * doc (`<workspace>/<id>`), writing needs write access; listing needs read
 * access to the workspace.
 *
 * @module http/api/records
 */
import type http from 'node:http'
import * as Y from 'yjs'
import { z } from 'zod'
import { RecordValidationError, newRecordId, recordIdSchema, type RecordSchema } from '@concord/engine'
import {
  DEFAULT_MAX_HISTORY,
  RECORD_MAP,
  RecordKey,
  TEXT_PREFIX,
  appendFieldChanges,
  initRecord,
  rebaseText,
  validatePatch,
  writeWithHistory,
} from '@concord/engine/internal'
import { Access, accessFor, listAccessFor, type Identity } from '../../auth/Authenticator.js'
import type { RoomRegistry } from '../../rooms/RoomRegistry.js'
import { ApiError, ErrorCode, fromStorage, parseBody, readJson, sendJson } from './respond.js'
import type { ApiRecord, RecordAccess } from './RecordAccess.js'

/** The history's name of the archived flag (as the engine's record handle writes it). */
const ARCHIVED_FIELD = '$archived'

/** Most records one list page holds. */
export const MAX_PAGE_SIZE = 200
/** Records one list page has when `limit` is not given. */
export const DEFAULT_PAGE_SIZE = 50
/** Docs one list request looks at at most (a page with filters may end early, with a cursor to go on). */
const MAX_SCANNED_PER_PAGE = 1000

const fieldValues = z.record(z.string(), z.unknown())

const createBody = z.strictObject({
  type: z.string().min(1),
  id: recordIdSchema.optional(),
  fields: fieldValues.optional(),
})

const patchBody = z
  .strictObject({
    fields: fieldValues.optional(),
    archived: z.boolean().optional(),
    /** Text fields as the client read them: the write applies only its change from there (see {@link rebased}). */
    base: z.record(z.string(), z.string()).optional(),
  })
  .refine((body) => body.fields !== undefined || body.archived !== undefined, 'give "fields", "archived" or both')
  .refine(
    (body) => Object.keys(body.base ?? {}).every((field) => body.fields !== undefined && Object.hasOwn(body.fields, field)),
    'every field in "base" must be written in "fields" too',
  )

const archiveBody = z.strictObject({ archived: z.boolean().optional() }).optional()

const listQuery = z.strictObject({
  type: z.string().min(1).optional(),
  archived: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().min(1).optional(),
})

/** What a records route is given. */
export interface RecordsContext {
  readonly records: RecordAccess
  readonly rooms: RoomRegistry
  readonly maxBodyBytes: number
}

/** One request to a records route. */
export interface RecordsRequest {
  req: http.IncomingMessage
  res: http.ServerResponse
  identity: Identity
  workspace: string
  /** The record id, for routes under `/records/{id}`. */
  id: string | null
  /** `archive` for `/records/{id}/archive`. */
  action: string | null
  query: URLSearchParams
}

/** Answers a records route; throws {@link ApiError}. */
export const handleRecords = async (ctx: RecordsContext, request: RecordsRequest): Promise<void> => {
  const { req, id, action } = request
  const method = req.method ?? 'GET'
  if (id === null) {
    if (method === 'GET' || method === 'HEAD') return listRecords(ctx, request)
    if (method === 'POST') return createRecord(ctx, request)
    throw notAllowed('GET, POST')
  }
  if (action === 'archive') {
    if (method === 'POST') return archiveRecord(ctx, request, id)
    throw notAllowed('POST')
  }
  if (action !== null) throw new ApiError(404, ErrorCode.notFound, `no route /records/{id}/${action}`)
  if (method === 'GET' || method === 'HEAD') return readRecordRoute(ctx, request, id)
  if (method === 'PATCH') return patchRecord(ctx, request, id)
  throw notAllowed('GET, PATCH')
}

const notAllowed = (allow: string): ApiError => new ApiError(405, ErrorCode.methodNotAllowed, `use ${allow} on this route`, {}, { allow })

const requireAccess = (identity: Identity, workspace: string, id: string, needed: Access): void => {
  const access = accessFor(identity, `${workspace}/${id}`)
  if (access === Access.none) throw new ApiError(403, ErrorCode.forbidden, `no access to "${workspace}/${id}"`)
  if (needed === Access.write && access !== Access.write) {
    throw new ApiError(403, ErrorCode.forbidden, `read-only access to "${workspace}/${id}": changes are not accepted`)
  }
}

const notFound = (workspace: string, id: string): ApiError =>
  new ApiError(404, ErrorCode.notFound, `record "${id}" does not exist in workspace "${workspace}"`)

const readRecordRoute = async (ctx: RecordsContext, { req, res, identity, workspace }: RecordsRequest, id: string): Promise<void> => {
  requireAccess(identity, workspace, id, Access.read)
  const read = await ctx.records.read(workspace, id)
  if (read.record === null) throw notFound(workspace, id)
  if (wantsBinary(req)) {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': read.update.byteLength,
      'concord-seq': String(read.seq),
    })
    res.end(req.method === 'HEAD' ? undefined : read.update)
    return
  }
  sendJson(res, 200, read.record)
}

/** Whether the request asks for the Yjs state rather than JSON. */
const wantsBinary = (req: http.IncomingMessage): boolean => {
  const accept = req.headers.accept ?? ''
  return /application\/octet-stream/i.test(accept) && !/application\/json/i.test(accept)
}

const schemaOf = (ctx: RecordsContext, type: string): RecordSchema => {
  const schema = ctx.records.schemas.get(type)
  if (schema === undefined) {
    throw new ApiError(422, ErrorCode.unknownType, `unknown record type "${type}"; known types: ${ctx.records.schemas.types.join(', ')}`)
  }
  return schema
}

/** Validates field values against `schema`; 400 naming the first wrong field. */
const validated = (schema: RecordSchema, id: string, fields: Record<string, unknown>): ReturnType<typeof validatePatch> => {
  try {
    return validatePatch(schema, id, fields)
  } catch (error) {
    if (!(error instanceof RecordValidationError)) throw error
    const problems = error.problems.map(({ field, message }) => ({ field, message }))
    const first = problems[0]
    throw new ApiError(400, ErrorCode.invalidField, `field "${first.field}": ${first.message}`, { field: first.field, problems })
  }
}

/**
 * The fields to write, with each text field named in `base` (the text as
 * the client read it) replaced by the client's change from that text applied
 * to the text now — what people typed since stays. 409 when someone changed
 * the same part since (the same lines of a description, the same words of a
 * title): the client reads the record again and decides.
 */
const rebased = (
  doc: Y.Doc,
  schema: RecordSchema,
  fields: Record<string, unknown>,
  base: Record<string, string>,
): Record<string, unknown> => {
  const out = { ...fields }
  for (const [field, read] of Object.entries(base)) {
    const spec = schema.fields[field]
    if (spec?.kind !== 'text') {
      throw new ApiError(400, ErrorCode.invalidField, `field "${field}": "base" is for text fields only`, { field })
    }
    const value = fields[field]
    if (typeof value !== 'string') continue // validation names the wrong value
    const now = doc.share.has(TEXT_PREFIX + field) ? doc.getText(TEXT_PREFIX + field).toString() : ''
    const merged = rebaseText(read, value, now, { lines: spec.multiline === true })
    if (merged === null) {
      throw new ApiError(
        409,
        ErrorCode.conflict,
        `field "${field}" was changed since it was read, in the part this write changes; read the record again`,
        { field },
      )
    }
    out[field] = merged
  }
  return out
}

/** Writes `updatedAt` / `updatedBy`, as a client does after its edits. */
const touch = (doc: Y.Doc, userId: string, now: number): void => {
  const map = doc.getMap<unknown>(RECORD_MAP)
  map.set(RecordKey.updatedAt, now)
  map.set(RecordKey.updatedBy, userId)
}

/** Sets the archived flag with its history entry (as the engine's record handle does); false when it already had that value. */
const writeArchived = (doc: Y.Doc, archived: boolean, now: number): boolean => {
  const map = doc.getMap<unknown>(RECORD_MAP)
  const prev = map.get(RecordKey.archived) === true
  if (prev === archived) return false
  map.set(RecordKey.archived, archived)
  appendFieldChanges(doc, [{ field: ARCHIVED_FIELD, kind: 'scalar', prev, next: archived }], { now, maxEntries: DEFAULT_MAX_HISTORY })
  return true
}

/** The record type a doc holds, or a 404. */
const existingType = (doc: Y.Doc, workspace: string, id: string): string => {
  const map = doc.getMap<unknown>(RECORD_MAP)
  const type = map.get(RecordKey.type)
  if (typeof type !== 'string' || map.get(RecordKey.deleted) === true) throw notFound(workspace, id)
  return type
}

const written = (record: ApiRecord | null, workspace: string, id: string): ApiRecord => {
  if (record === null) throw notFound(workspace, id)
  return record
}

const createRecord = async (ctx: RecordsContext, { req, res, identity, workspace }: RecordsRequest): Promise<void> => {
  const body = parseBody(createBody, await readJson(req, ctx.maxBodyBytes))
  const id = body.id ?? newRecordId()
  requireAccess(identity, workspace, id, Access.write)
  const schema = schemaOf(ctx, body.type)
  const patch = validated(schema, id, body.fields ?? {})
  const record = await ctx.records.write(identity, workspace, id, (doc) => {
    if (doc.getMap<unknown>(RECORD_MAP).get(RecordKey.type) !== undefined) {
      throw new ApiError(409, ErrorCode.conflict, `record "${id}" already exists in workspace "${workspace}"`)
    }
    const now = Date.now()
    doc.transact(() => {
      // the values first: initRecord writes `type` last, so its item ends the creation (see the engine's isBlank)
      writeWithHistory(doc, patch, { now, maxEntries: DEFAULT_MAX_HISTORY })
      initRecord(doc, schema, identity.userId, now)
    })
  })
  sendJson(res, 201, written(record, workspace, id), { location: `/api/v1/workspaces/${workspace}/records/${id}` })
}

const patchRecord = async (ctx: RecordsContext, { req, res, identity, workspace }: RecordsRequest, id: string): Promise<void> => {
  requireAccess(identity, workspace, id, Access.write)
  const body = parseBody(patchBody, await readJson(req, ctx.maxBodyBytes))
  const record = await ctx.records.write(identity, workspace, id, (doc) => {
    const schema = schemaOf(ctx, existingType(doc, workspace, id))
    const fields = body.base === undefined ? (body.fields ?? {}) : rebased(doc, schema, body.fields ?? {}, body.base)
    const patch = validated(schema, id, fields)
    const now = Date.now()
    doc.transact(() => {
      let changed = false
      if (patch.length > 0) {
        writeWithHistory(doc, patch, { now, maxEntries: DEFAULT_MAX_HISTORY })
        changed = true
      }
      if (body.archived !== undefined) changed = writeArchived(doc, body.archived, now) || changed
      if (changed) touch(doc, identity.userId, now)
    })
  })
  sendJson(res, 200, written(record, workspace, id))
}

const archiveRecord = async (ctx: RecordsContext, { req, res, identity, workspace }: RecordsRequest, id: string): Promise<void> => {
  requireAccess(identity, workspace, id, Access.write)
  const archived = parseBody(archiveBody, await readJson(req, ctx.maxBodyBytes))?.archived ?? true
  const record = await ctx.records.write(identity, workspace, id, (doc) => {
    existingType(doc, workspace, id)
    const now = Date.now()
    doc.transact(() => {
      if (writeArchived(doc, archived, now)) touch(doc, identity.userId, now)
    })
  })
  sendJson(res, 200, written(record, workspace, id))
}

/**
 * Lists the workspace's records in id order: `type`, `archived` and
 * `field.<name>=<value>` filters (a list field matches when it holds the
 * value; `null` matches an unset field), `limit`, and `cursor` from the
 * previous page. A page looks at a bounded number of docs; `nextCursor` is
 * null once there is nothing more.
 */
const listRecords = async (ctx: RecordsContext, { res, identity, workspace, query }: RecordsRequest): Promise<void> => {
  if (listAccessFor(identity, `${workspace}/`) === Access.none) throw new ApiError(403, ErrorCode.forbidden, `no access to "${workspace}"`)
  const plain: Record<string, string> = {}
  const fieldFilters: Array<[string, string]> = []
  for (const [key, value] of query) {
    if (key.startsWith('field.') && key.length > 'field.'.length) fieldFilters.push([key.slice('field.'.length), value])
    else plain[key] = value
  }
  const options = parseBody(listQuery, plain, 'the query')
  // A filter on a field no record type has (of the type asked for, if any) would match nothing, silently.
  const types = options.type === undefined ? ctx.records.schemas.types : [schemaOf(ctx, options.type).type]
  for (const [name] of fieldFilters) {
    if (!types.some((type) => Object.hasOwn(ctx.records.schemas.get(type)?.fields ?? {}, name))) {
      const of = options.type === undefined ? 'no record type has' : `a ${options.type} has no`
      throw new ApiError(400, ErrorCode.invalidField, `"field.${name}": ${of} field "${name}"`, { field: name })
    }
  }
  const limit = options.limit ?? DEFAULT_PAGE_SIZE
  const after = options.cursor === undefined ? null : decodeCursor(options.cursor)
  const prefix = `${workspace}/`
  const ids = (await fromStorage(ctx.rooms.list(prefix)))
    .map((name) => name.slice(prefix.length))
    .filter((id) => recordIdSchema.safeParse(id).success && (after === null || id > after))
  const records: ApiRecord[] = []
  let next = 0 // index in `ids` of the first id not looked at
  while (next < ids.length && records.length < limit && next < MAX_SCANNED_PER_PAGE) {
    const id = ids[next++]
    if (accessFor(identity, `${workspace}/${id}`) === Access.none) continue
    const { record } = await ctx.records.read(workspace, id)
    if (record === null) continue
    if (options.type !== undefined && record.type !== options.type) continue
    if (options.archived !== undefined && record.archived !== (options.archived === 'true')) continue
    if (!fieldFilters.every(([name, value]) => fieldMatches(record.fields[name], value))) continue
    records.push(record)
  }
  sendJson(res, 200, { records, nextCursor: next < ids.length ? encodeCursor(ids[next - 1]) : null })
}

/** Whether a field value matches a `field.<name>=<value>` filter. */
const fieldMatches = (value: unknown, wanted: string): boolean => {
  if (Array.isArray(value)) return value.some((item) => fieldMatches(item, wanted))
  if (value === null || value === undefined) return wanted === 'null'
  return String(value) === wanted
}

const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url')

const decodeCursor = (cursor: string): string => {
  const id = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!recordIdSchema.safeParse(id).success) throw new ApiError(400, ErrorCode.badRequest, '"cursor": not a cursor of this list')
  return id
}
