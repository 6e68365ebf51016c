/**
 * Signing out reaches every tab of the person on this device: the tab that
 * signs out says so on a BroadcastChannel, and each other tab of the same
 * user signs out too (keeping what is not on the relay yet on this device,
 * as the sign-out dialog promises). Tabs of other users ignore it.
 *
 * @module lib/signOutChannel
 * @example
 *   const stop = onSignOutElsewhere('ada', ({ wiped }) => leave(wiped))
 *   announceSignOut('ada', false)
 *   stop()
 */

/** The channel's name (one for the whole origin: the message says whose sign-out it is). */
const CHANNEL = 'concord:sign-out'

/** This tab (a channel object also hears other objects of the same tab: its own messages are not news). */
const thisTab = Math.random().toString(36).slice(2)

/** What a tab says when its person signed out. */
export interface SignOutMessage {
  /** The tab that signed out. */
  tab: string
  userId: string
  /** This device's data of the workspace was removed too. */
  wiped: boolean
}

const isMessage = (value: unknown): value is SignOutMessage =>
  typeof (value as SignOutMessage)?.userId === 'string' &&
  typeof (value as SignOutMessage).tab === 'string' &&
  typeof (value as SignOutMessage).wiped === 'boolean'

/** Tells the person's other tabs on this device that they signed out. */
export function announceSignOut(userId: string, wiped: boolean): void {
  if (typeof BroadcastChannel === 'undefined') return
  const channel = new BroadcastChannel(CHANNEL)
  channel.postMessage({ tab: thisTab, userId, wiped } satisfies SignOutMessage)
  channel.close()
}

/** Calls `handler` when another tab of `userId` signs out; returns the function that stops listening. */
export function onSignOutElsewhere(userId: string, handler: (message: SignOutMessage) => void): () => void {
  if (typeof BroadcastChannel === 'undefined') return () => undefined
  const channel = new BroadcastChannel(CHANNEL)
  channel.onmessage = (event: MessageEvent<unknown>) => {
    if (isMessage(event.data) && event.data.tab !== thisTab && event.data.userId === userId) handler(event.data)
  }
  return () => channel.close()
}
