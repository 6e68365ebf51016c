/**
 * Concord's record types: tickets and projects. The engine knows no record
 * types of its own; the web app's store is given {@link appSchemas}, and the
 * relay's HTTP API validates writes against the same schemas. The labels of
 * statuses and priorities shown in the UI are in the web app's `lib/tickets`.
 *
 * Changing a type: add fields (old records read their defaults) and bump its
 * `version`; a device with an older app reads fields it does not know as
 * `unknownFields` and keeps them intact.
 *
 * Imported as `@concord/engine/schemas`; the engine's own entry point does
 * not load it.
 *
 * @module schemas
 * @example
 * new RecordStore({ client, userId, workspaceId, schemas: appSchemas })
 * await store.create('ticket', { title: 'Login fails', priority: 'high' })
 */
import { defineSchema, field, type RecordSchema } from '../model/schema.js'
import { z } from 'zod'

/** A project: name, description, status, lead. */
export const projectSchema = defineSchema({
  type: 'project',
  version: 1,
  title: 'name',
  fields: {
    name: field.text({ maxLength: 500 }),
    description: field.text({ multiline: true }),
    status: field.enum(['planned', 'active', 'paused', 'done', 'cancelled'], 'planned'),
    lead: field.user(),
  },
  catalog: ['status', 'lead'],
})

/** A ticket: title, description, status, priority, assignee, labels, project, due date. */
export const ticketSchema = defineSchema({
  type: 'ticket',
  version: 1,
  title: 'title',
  fields: {
    title: field.text({ maxLength: 500 }),
    description: field.text({ multiline: true }),
    status: field.enum(['open', 'in_progress', 'done', 'cancelled'], 'open'),
    priority: field.enum(['none', 'low', 'medium', 'high', 'urgent'], 'none'),
    assignee: field.user(),
    labels: field.list(z.string().min(1).max(100), { maxItems: 100 }),
    project: field.ref('project'),
    dueDate: field.date(),
  },
  catalog: ['status', 'priority', 'assignee', 'project', 'dueDate', 'labels'],
})

/** Every record type of the app, for `new RecordStore({ schemas })`. */
export const appSchemas: readonly RecordSchema[] = [projectSchema, ticketSchema]
