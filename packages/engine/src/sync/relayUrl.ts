/**
 * Builds the URL of the relay's multiplexed endpoint.
 *
 * @example
 *   relayUrl('https://sync.example.com/')          // 'wss://sync.example.com/.concord/v1'
 *   relayUrl('ws://localhost:8787', 'secret token') // 'ws://localhost:8787/.concord/v1?token=secret+token'
 *
 * @module sync/relayUrl
 */
import { MUX_PATH } from '../protocol/messages.js'

const SCHEMES: Record<string, string> = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }

/**
 * Turns the relay's base URL (`ws://`, `wss://`, `http://` or `https://`,
 * optionally with a path prefix) into the URL of its multiplexed endpoint,
 * with the token (if any) as query parameter `token`.
 *
 * @throws Error when `base` is not an absolute URL of one of those schemes.
 */
export const relayUrl = (base: string, token?: string): string => {
  let url: URL
  try {
    url = new URL(base)
  } catch {
    throw new Error(`invalid relay url "${base}": expected ws://HOST:PORT, wss://…, http://… or https://…`)
  }
  const scheme = SCHEMES[url.protocol]
  if (scheme === undefined) {
    throw new Error(`invalid relay url "${base}": scheme must be ws:, wss:, http: or https:, not ${url.protocol}`)
  }
  url.protocol = scheme
  url.pathname = url.pathname.replace(/\/+$/, '') + MUX_PATH
  url.hash = ''
  if (token !== undefined) url.searchParams.set('token', token)
  return url.toString()
}
