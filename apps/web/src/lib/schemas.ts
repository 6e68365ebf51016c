/**
 * The app's record types: tickets and projects, defined in `@concord/engine/schemas`
 * (the relay's HTTP API validates writes against the same schemas). The
 * labels of statuses and priorities shown in the UI are in `lib/tickets`.
 *
 * @module lib/schemas
 * @example
 * new RecordStore({ client, userId, workspaceId, schemas: appSchemas })
 * await store.create('ticket', { title: 'Login fails', priority: 'high' })
 */
export { appSchemas, projectSchema, ticketSchema } from '@concord/engine/schemas'
