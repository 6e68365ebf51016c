/**
 * The record types the engine's tests use: the product's ticket and project
 * (`@concord/engine/schemas`; the engine's entry point registers no types of
 * its own). Stores in tests get `testSchemas`.
 *
 * @module test/schemas
 */
import type { RecordSchema } from '../src/index.js'
import { projectSchema, ticketSchema } from '../src/schemas/index.js'

export { projectSchema, ticketSchema }

export const testSchemas: readonly RecordSchema[] = [projectSchema, ticketSchema]
