/**
 * The OpenAPI 3.1 description of the HTTP API, served at
 * `GET /api/v1/openapi.json`. Written by hand next to the routes it
 * describes (`http/api/records`, `http/api/webhooks`); `docs/api.md` has the
 * same routes with curl examples. A test checks that every route the router
 * knows is described.
 *
 * @module http/api/openapi
 */
import { RELAY_VERSION } from '../../version.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './records.js'

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` })

const json = (schema: unknown): { content: { 'application/json': { schema: unknown } } } => ({
  content: { 'application/json': { schema } },
})

const errorAnswer = (description: string): Record<string, unknown> => ({ description, ...json(ref('Error')) })

/** Error answers every authenticated route can give. */
const commonErrors = {
  '400': errorAnswer('Invalid request (`bad-request`) or field value (`invalid-field`, naming the field)'),
  '401': errorAnswer('No token, or a bad one (`unauthorized`)'),
  '403': errorAnswer('No access, or read-only access to a write route (`forbidden`)'),
}

const workspaceParam = { name: 'workspace', in: 'path', required: true, schema: { type: 'string' }, description: 'Workspace id' }
const recordParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'Record id' }

/** The OpenAPI document. */
export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Concord relay HTTP API',
    version: RELAY_VERSION,
    description:
      'Read, create, change and archive records, and subscribe webhooks to a workspace. Tokens and permissions are those of the WebSocket. ' +
      'A write is answered once it is durably stored; live clients receive it at once. Errors are `{ "error": { "code", "message" } }`.',
  },
  servers: [{ url: '/' }],
  security: [{ bearer: [] }],
  paths: {
    '/api/v1/openapi.json': {
      get: { summary: 'This description', security: [], responses: { '200': { description: 'OpenAPI 3.1 document' } } },
    },
    '/api/v1/workspaces/{workspace}/records': {
      parameters: [workspaceParam],
      get: {
        summary: "List a workspace's records (id order, paged)",
        parameters: [
          { name: 'type', in: 'query', schema: { type: 'string' }, description: 'Only records of this type' },
          { name: 'archived', in: 'query', schema: { type: 'string', enum: ['true', 'false'] } },
          {
            name: 'field.{name}',
            in: 'query',
            schema: { type: 'string' },
            description: 'Only records whose field equals the value (a list field: holds it; `null`: unset)',
          },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE } },
          { name: 'cursor', in: 'query', schema: { type: 'string' }, description: '`nextCursor` of the previous page' },
        ],
        responses: {
          '200': {
            description: 'A page of records',
            ...json({
              type: 'object',
              required: ['records', 'nextCursor'],
              properties: { records: { type: 'array', items: ref('Record') }, nextCursor: { type: ['string', 'null'] } },
            }),
          },
          ...commonErrors,
        },
      },
      post: {
        summary: 'Create a record',
        requestBody: {
          required: true,
          ...json({
            type: 'object',
            required: ['type'],
            additionalProperties: false,
            properties: {
              type: { type: 'string', examples: ['ticket'] },
              id: { type: 'string', description: 'Record id; generated when missing' },
              fields: ref('FieldValues'),
            },
          }),
        },
        responses: {
          '201': { description: 'Created and stored', ...json(ref('Record')) },
          ...commonErrors,
          '409': errorAnswer('A record with this id exists (`conflict`)'),
          '413': errorAnswer('Body too large (`payload-too-large`)'),
          '422': errorAnswer('Unknown record type (`unknown-type`)'),
        },
      },
    },
    '/api/v1/workspaces/{workspace}/records/{id}': {
      parameters: [workspaceParam, recordParam],
      get: {
        summary: 'Read a record as JSON, or its Yjs state (`Accept: application/octet-stream`)',
        responses: {
          '200': {
            description: 'The record',
            headers: {
              'Concord-Seq': { schema: { type: 'integer' }, description: 'Binary answers: sequence number of the last stored update' },
            },
            content: {
              'application/json': { schema: ref('Record') },
              'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
            },
          },
          ...commonErrors,
          '404': errorAnswer('No such record (`not-found`)'),
        },
      },
      patch: {
        summary: 'Change fields, archive or unarchive',
        requestBody: {
          required: true,
          ...json({
            type: 'object',
            additionalProperties: false,
            properties: {
              fields: ref('FieldValues'),
              archived: { type: 'boolean' },
              base: {
                type: 'object',
                description:
                  'Text fields as the client read them (each also in `fields`): only the change from there is written, what others typed since stays',
                additionalProperties: { type: 'string' },
              },
            },
          }),
        },
        responses: {
          '200': { description: 'Changed and stored', ...json(ref('Record')) },
          ...commonErrors,
          '404': errorAnswer('No such record (`not-found`)'),
          '409': errorAnswer('A text field in `base` was changed since it was read, in the part this write changes (`conflict`)'),
          '413': errorAnswer('Body too large (`payload-too-large`)'),
          '503': errorAnswer('Applied but not confirmed stored in time (`not-stored`), or shutting down (`unavailable`)'),
        },
      },
    },
    '/api/v1/workspaces/{workspace}/records/{id}/archive': {
      parameters: [workspaceParam, recordParam],
      post: {
        summary: 'Archive a record (`{ "archived": false }` unarchives it)',
        requestBody: { required: false, ...json({ type: 'object', properties: { archived: { type: 'boolean', default: true } } }) },
        responses: {
          '200': { description: 'Stored', ...json(ref('Record')) },
          ...commonErrors,
          '404': errorAnswer('No such record (`not-found`)'),
        },
      },
    },
    '/api/v1/workspaces/{workspace}/webhooks': {
      parameters: [workspaceParam],
      get: {
        summary: "List the workspace's webhooks with their delivery status (needs write access)",
        responses: {
          '200': {
            description: 'Subscriptions',
            ...json({ type: 'object', properties: { webhooks: { type: 'array', items: ref('Webhook') } } }),
          },
          ...commonErrors,
        },
      },
      post: {
        summary: "Subscribe a URL to the workspace's record changes (needs write access)",
        requestBody: {
          required: true,
          ...json({ type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } }),
        },
        responses: {
          '201': {
            description: 'Subscribed; `secret` signs the deliveries and is shown only here',
            ...json({ allOf: [ref('Webhook'), { type: 'object', properties: { secret: { type: 'string' } } }] }),
          },
          ...commonErrors,
          '409': errorAnswer('Too many webhooks in the workspace (`conflict`)'),
        },
      },
    },
    '/api/v1/workspaces/{workspace}/webhooks/{id}': {
      parameters: [workspaceParam, { name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      delete: {
        summary: 'Unsubscribe (needs write access)',
        responses: { '204': { description: 'Deleted' }, ...commonErrors, '404': errorAnswer('No such webhook (`not-found`)') },
      },
    },
  },
  webhooks: {
    recordChange: {
      post: {
        summary: 'A record changed (sent once it is stored and has been quiet for a second)',
        description:
          'Headers: `Concord-Webhook-Id` (the same on retries), `Concord-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. ' +
          'Answer 2xx; anything else is retried with exponential backoff.',
        requestBody: { ...json(ref('RecordChangeEvent')) },
        responses: { '200': { description: 'Received' } },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              field: { type: 'string', description: '`invalid-field`: the first invalid field' },
              problems: {
                type: 'array',
                items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
              },
            },
          },
        },
      },
      FieldValues: {
        type: 'object',
        description: "Field values by name, validated against the record type's schema (text fields: strings; list fields: arrays)",
        additionalProperties: true,
      },
      Record: {
        type: 'object',
        required: ['id', 'workspace', 'type', 'archived', 'seq', 'fields'],
        properties: {
          id: { type: 'string' },
          workspace: { type: 'string' },
          type: { type: 'string' },
          archived: { type: 'boolean' },
          seq: { type: 'integer', description: 'Sequence number of the last stored update of the record' },
          schemaVersion: { type: ['integer', 'null'] },
          createdAt: { type: ['integer', 'null'] },
          createdBy: { type: ['string', 'null'] },
          updatedAt: { type: ['integer', 'null'] },
          updatedBy: { type: ['string', 'null'] },
          fields: ref('FieldValues'),
        },
      },
      Webhook: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          workspace: { type: 'string' },
          url: { type: 'string' },
          createdAt: { type: 'integer' },
          createdBy: { type: 'string' },
          status: {
            type: 'object',
            properties: {
              lastDeliveryAt: { type: ['integer', 'null'] },
              lastError: { type: ['object', 'null'], properties: { message: { type: 'string' }, at: { type: 'integer' } } },
              failures: { type: 'integer', description: 'Failed attempts in a row' },
              nextRetryAt: { type: ['integer', 'null'] },
              pending: { type: 'integer' },
            },
          },
        },
      },
      RecordChangeEvent: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          type: { type: 'string', enum: ['record.created', 'record.changed'] },
          at: { type: 'integer' },
          workspace: { type: 'string' },
          record: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              type: { type: 'string' },
              archived: { type: 'boolean' },
              deleted: { type: 'boolean' },
              seq: { type: 'integer' },
            },
          },
          changes: {
            type: 'array',
            items: { type: 'object', properties: { field: { type: 'string' }, before: {}, after: {} } },
          },
          authors: {
            type: 'array',
            items: { type: 'object', properties: { userId: { type: 'string' }, name: { type: 'string' } } },
          },
        },
      },
    },
  },
} as const
