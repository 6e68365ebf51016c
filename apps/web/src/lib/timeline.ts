/**
 * The order of a record's timeline. The history log holds entries in the
 * order Yjs merged them: edits made offline an hour ago can come after a
 * change made a minute ago (concurrent additions are ordered by client id),
 * so the timeline would show times out of order. It is shown newest first
 * by the time each entry was written; entries of the same millisecond keep
 * the log's order (the later one first).
 *
 * @example
 *   newestFirst([{ at: 10 }, { at: 30 }, { at: 20 }]) // [{ at: 30 }, { at: 20 }, { at: 10 }]
 *
 * @module timeline
 */

/** `entries` (in log order) newest first by `at`; ties: later in the log first. */
export const newestFirst = <T extends { at: number }>(entries: readonly T[]): T[] =>
  entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => b.entry.at - a.entry.at || b.index - a.index)
    .map(({ entry }) => entry)
