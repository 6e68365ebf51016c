/**
 * Serialized pending-field notes of a record: `[field, [[client, clock], …]]`,
 * structured-clone and JSON friendly. Kept by `records/FieldPending`, stored
 * next to the doc by the storage port and shared between tabs.
 *
 * @module model/fieldClocks
 */
export type FieldClocks = Array<[string, Array<[number, number]>]>
