/**
 * The top-level map in which Concord keeps its own bookkeeping in every doc
 * (delete markers, a record's `updatedAt` stamp). Record code skips it.
 *
 * @module model/metaMap
 */

/** Name of the top-level map in which Concord keeps its own bookkeeping. Record code should skip it. */
export const META_MAP_NAME = 'concord:meta'
