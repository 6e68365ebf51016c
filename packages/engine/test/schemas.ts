/**
 * The record types the engine's tests use: a ticket and a project shaped like
 * the web app's (the engine registers no types of its own). Stores in tests
 * get `testSchemas`.
 *
 * @module test/schemas
 */
import { z } from 'zod'
import { defineSchema, field, type RecordSchema } from '../src/index.js'

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

/** The schemas every test store registers. */
export const testSchemas: readonly RecordSchema[] = [projectSchema, ticketSchema]
