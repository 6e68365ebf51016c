/**
 * Record schemas: which fields a record type has and how each maps to Yjs.
 *
 * | kind     | Yjs type                         | merges                                   |
 * |----------|----------------------------------|------------------------------------------|
 * | `text`   | a top-level `Y.Text`             | character by character; colliding edits of a single-line field settle on the later one |
 * | `scalar` | one key of the top-level `Y.Map` | whole value; concurrent sets: one wins, the merge history shows both |
 * | `list`   | a top-level `Y.Array`            | item by item (e.g. labels)               |
 *
 * Scalar values and list items are validated with zod before anything is
 * written. The engine has no record types of its own: an app defines its
 * schemas and gives them to its store, `new RecordStore({ schemas: [...] })`
 * (the tickets and projects of the web app and the relay's HTTP API are in `schemas/`, imported as `@concord/engine/schemas`).
 *
 * @example
 *   import { z } from 'zod'
 *   const sprintSchema = defineSchema({
 *     type: 'sprint',
 *     version: 1,
 *     title: 'name',
 *     fields: {
 *       name: field.text({ maxLength: 200 }),
 *       goal: field.text({ multiline: true }),
 *       state: field.enum(['planned', 'running', 'closed'], 'planned'),
 *       capacity: field.scalar(z.number().int().min(0), { default: 0 }),
 *       tickets: field.list(z.string()),
 *     },
 *     catalog: ['state'],
 *   })
 *
 * @module model/schema
 */
import { z } from 'zod'

/** Field kinds. */
export const FieldKind = {
  /** A `Y.Text`: collaborative plain text. */
  text: 'text',
  /** A JSON value in the record's `fields` map: enum, number, date, user id, record reference… */
  scalar: 'scalar',
  /** A `Y.Array` of JSON values. */
  list: 'list',
} as const
export type FieldKind = (typeof FieldKind)[keyof typeof FieldKind]

/** Names of the single-line text fields of a schema (see {@link TextFieldSpec.multiline}). */
export const singleLineFields = (schema: RecordSchema | undefined): Set<string> =>
  new Set(
    Object.entries(schema?.fields ?? {})
      .filter(([, spec]) => spec.kind === 'text' && spec.multiline !== true)
      .map(([name]) => name),
  )

/** Names of the scalar fields of a schema: concurrent sets settle on the later change (`history/scalarMerge`). */
export const scalarFields = (schema: RecordSchema | undefined): Set<string> =>
  new Set(
    Object.entries(schema?.fields ?? {})
      .filter(([, spec]) => spec.kind === 'scalar')
      .map(([name]) => name),
  )

/** Names of the multi-line text fields of a schema (see {@link TextFieldSpec.multiline}). */
export const multiLineFields = (schema: RecordSchema | undefined): Set<string> =>
  new Set(
    Object.entries(schema?.fields ?? {})
      .filter(([, spec]) => spec.kind === 'text' && spec.multiline === true)
      .map(([name]) => name),
  )

/** A `text` field. */
export interface TextFieldSpec {
  readonly kind: 'text'
  /** Longest accepted value for whole-value writes (`set`). Default: unlimited. */
  readonly maxLength?: number
  /**
   * Multi-line text (a description): when concurrent edits touch the same
   * part, the field keeps both versions of the lines they touched, one after
   * the other, and the merge offers each writer's version. Default
   * false — single-line text (a title, a name): when concurrent edits collide,
   * the field settles on the later change and the merge offers the other
   * (see `history/textMerge`).
   */
  readonly multiline?: boolean
}

/** A `scalar` field. */
export interface ScalarFieldSpec<T = unknown> {
  readonly kind: 'scalar'
  /** Validates every written value. Make it `.nullable()` to allow clearing with `null`. */
  readonly schema: z.ZodType<T>
  /** Value read when the record has none (or an invalid one). Default: `null`. */
  readonly default: T | null
}

/** A `list` field. */
export interface ListFieldSpec<T = unknown> {
  readonly kind: 'list'
  /** Validates every item of a written list. */
  readonly item: z.ZodType<T>
  /** Longest accepted list for whole-value writes. Default: unlimited. */
  readonly maxItems?: number
}

/** Any field spec. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any field spec, whatever its value type
export type FieldSpec = TextFieldSpec | ScalarFieldSpec<any> | ListFieldSpec<any>

/** The value type of a field spec, as read and written through the typed API. */
export type FieldValue<F extends FieldSpec> = F extends TextFieldSpec
  ? string
  : F extends ScalarFieldSpec<infer T>
    ? T | (F['default'] extends null ? null : never)
    : F extends ListFieldSpec<infer T>
      ? T[]
      : never

/** The values of all fields of a schema. */
export type FieldValues<S extends RecordSchema> = { [K in keyof S['fields']]: FieldValue<S['fields'][K]> }

/** A record type. */
export interface RecordSchema<Fields extends Record<string, FieldSpec> = Record<string, FieldSpec>> {
  /** Record type name, e.g. `'ticket'`: letters, digits, `_` and `-`. */
  readonly type: string
  /** Schema version, written into records created with it. Bump it when adding fields. */
  readonly version: number
  /** The fields. Names: letters, digits and `_`, starting with a letter. */
  readonly fields: Fields
  /** The text (or scalar string) field shown as the record's title in the catalog. */
  readonly title?: string
  /**
   * Scalar or list fields copied into the local catalog, so lists can be
   * filtered and sorted by them without opening the records.
   */
  readonly catalog?: readonly string[]
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/
const TYPE_NAME = /^[A-Za-z0-9_-]+$/

/** Field spec builders. */
export const field = {
  /** Collaborative text (`Y.Text`). */
  text: (options: { maxLength?: number; multiline?: boolean } = {}): TextFieldSpec => ({ kind: 'text', ...options }),
  /** A scalar validated by `schema`; `default` is read when the record has no value. */
  scalar: <T>(schema: z.ZodType<T>, options: { default?: T | null } = {}): ScalarFieldSpec<T> => ({
    kind: 'scalar',
    schema,
    default: options.default ?? null,
  }),
  /** One of `values`. */
  enum: <const V extends readonly [string, ...string[]]>(values: V, defaultValue: V[number]): ScalarFieldSpec<V[number]> => ({
    kind: 'scalar',
    schema: z.enum(values) as unknown as z.ZodType<V[number]>,
    default: defaultValue,
  }),
  /** A user id, or null. */
  user: (): ScalarFieldSpec<string | null> => field.scalar(z.string().min(1).max(200).nullable()),
  /** The id of another record (of type `type`, not checked), or null. References are plain ids. */
  ref: (_type: string): ScalarFieldSpec<string | null> => field.scalar(recordIdSchema.nullable()),
  /** A calendar date `YYYY-MM-DD`, or null. */
  date: (): ScalarFieldSpec<string | null> => field.scalar(z.iso.date().nullable()),
  /** A finite number, or null. */
  number: (): ScalarFieldSpec<number | null> => field.scalar(z.number().finite().nullable()),
  /** A list whose items are validated by `item`. */
  list: <T>(item: z.ZodType<T>, options: { maxItems?: number } = {}): ListFieldSpec<T> => ({ kind: 'list', item, ...options }),
}

const RECORD_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/
const RECORD_ID_MAX_LENGTH = 200

/**
 * Record ids: one doc name segment (`A-Z a-z 0-9 _ - .`, not starting with
 * `.`), at most 200 characters. Generate them on the client
 * ({@link newRecordId}); they never need remapping.
 */
export const recordIdSchema = z
  .string()
  .min(1)
  .max(RECORD_ID_MAX_LENGTH)
  .regex(RECORD_ID, 'record ids use A-Z a-z 0-9 _ - . and do not start with "."')

/**
 * Whether `id` is a valid record id: the same as
 * `recordIdSchema.safeParse(id).success`, without building a result (a
 * listing checks thousands of names at once).
 */
export const isRecordId = (id: string): boolean => id.length <= RECORD_ID_MAX_LENGTH && RECORD_ID.test(id)

/**
 * Checks a schema and returns it, typed. Throws a clear error for invalid
 * type or field names, a `title` that is not a field, or `catalog` fields
 * that are not scalar or list fields.
 */
export const defineSchema = <const Fields extends Record<string, FieldSpec>>(
  schema: RecordSchema<Fields> & { title?: keyof Fields & string; catalog?: ReadonlyArray<keyof Fields & string> },
): RecordSchema<Fields> => {
  if (!TYPE_NAME.test(schema.type)) throw new Error(`schema type "${schema.type}" must use letters, digits, _ and -`)
  if (!Number.isInteger(schema.version) || schema.version < 1) {
    throw new Error(`schema "${schema.type}": version must be a positive integer`)
  }
  for (const [name, spec] of Object.entries(schema.fields)) {
    if (!NAME.test(name)) throw new Error(`schema "${schema.type}": field name "${name}" must match ${NAME}`)
    if (spec.kind !== 'text' && spec.kind !== 'scalar' && spec.kind !== 'list') {
      throw new Error(`schema "${schema.type}": field "${name}" has unknown kind "${String((spec as FieldSpec).kind)}"`)
    }
  }
  if (schema.title !== undefined && !(schema.title in schema.fields)) {
    throw new Error(`schema "${schema.type}": title field "${schema.title}" is not a field`)
  }
  for (const name of schema.catalog ?? []) {
    const spec = schema.fields[name]
    if (spec === undefined || spec.kind === 'text') {
      throw new Error(`schema "${schema.type}": catalog field "${name}" must be a scalar or list field`)
    }
  }
  return schema
}

/**
 * A fresh client-generated record id: 16 random characters from
 * `A-Z a-z 0-9 _ -` (96 bits). Records never need temporary ids or remapping.
 */
export const newRecordId = (): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  let id = ''
  for (const byte of bytes) id += alphabet[byte & 63]
  return id
}

/** The schemas a store knows, by type: exactly the ones it was given (and later registered). */
export class SchemaRegistry {
  private readonly byType = new Map<string, RecordSchema>()

  constructor(schemas: readonly RecordSchema[] = []) {
    for (const schema of schemas) this.register(schema)
  }

  /** Adds (or replaces, e.g. with a newer version) the schema of a type. */
  register(schema: RecordSchema): void {
    defineSchema(schema as RecordSchema & { title?: string; catalog?: readonly string[] })
    this.byType.set(schema.type, schema)
  }

  /** The schema of `type`, if registered. */
  get(type: string): RecordSchema | undefined {
    return this.byType.get(type)
  }

  /** Every registered type. */
  get types(): string[] {
    return [...this.byType.keys()]
  }
}
