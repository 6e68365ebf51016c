/**
 * The minimal, structural WebSocket type the sync client talks to.
 *
 * Both the browser's `WebSocket` and the `ws` package's `WebSocket` satisfy it,
 * so the engine never imports `ws` (or its types) and runs unchanged in
 * browsers and in Node. Tests pass an in-memory fake that implements the same
 * handful of members.
 *
 * @example
 *   import { WebSocket } from 'ws'
 *   new SyncClient({ url: 'ws://localhost:8787', WebSocket })
 *
 * @module sync/socket
 */

/** `readyState` values, as in the WHATWG WebSocket standard. */
export const SocketState = {
  connecting: 0,
  open: 1,
  closing: 2,
  closed: 3,
} as const
export type SocketState = (typeof SocketState)[keyof typeof SocketState]

/**
 * The members of a WebSocket that the sync client uses. Handlers receive
 * events whose shape differs between implementations, so they are typed
 * loosely; the client only reads `event.data` of message events.
 */
export interface WebSocketLike {
  /** The client sets this to `'arraybuffer'`. */
  binaryType: string
  /** One of {@link SocketState}. */
  readonly readyState: number
  /* eslint-disable @typescript-eslint/no-explicit-any -- the DOM's WebSocket and ws's take different event types */
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  /* eslint-enable @typescript-eslint/no-explicit-any */
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
}

/** A WebSocket class: `globalThis.WebSocket`, `ws`'s `WebSocket`, or a test fake. */
export type WebSocketConstructor = new (url: string) => WebSocketLike
