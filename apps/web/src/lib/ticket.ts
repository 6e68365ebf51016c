/**
 * The scratch ticket's document layout.
 *
 * @module lib/ticket
 */

/** Doc name of the shared scratch ticket. */
export const SCRATCH_TICKET = 'demo/scratch-ticket'

export const STATUSES = ['Open', 'In progress', 'Done'] as const
export type TicketStatus = (typeof STATUSES)[number]

/** Reads a stored status value; anything unknown (or unset) is `Open`. */
export function parseStatus(value: unknown): TicketStatus {
  return (STATUSES as readonly unknown[]).includes(value) ? (value as TicketStatus) : 'Open'
}

/** CSS-friendly slug of a status: `In progress` → `in-progress`. */
export function statusSlug(status: TicketStatus): string {
  return status.toLowerCase().replace(/\s+/g, '-')
}
