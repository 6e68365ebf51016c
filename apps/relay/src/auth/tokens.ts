/**
 * Where a token comes from on a WebSocket upgrade: the `token` query
 * parameter (what stock y-websocket clients send) or a
 * `Sec-WebSocket-Protocol` entry `concord.token.<jwt>` next to the protocol
 * `concord.v1`. Tokens are never logged: callers log only what
 * {@link redactUrl} returns.
 *
 * @module auth/tokens
 */
import type { IncomingMessage } from 'node:http'

/** Subprotocol the relay selects when a client offers it. */
export const SUBPROTOCOL = 'concord.v1'
/** Prefix of the subprotocol entry that carries a token. */
export const TOKEN_SUBPROTOCOL_PREFIX = 'concord.token.'

/** The token of an upgrade request, or null. */
export const tokenFromRequest = (req: IncomingMessage): string | null => {
  const header = req.headers['sec-websocket-protocol']
  if (typeof header === 'string') {
    for (const entry of header.split(',')) {
      const value = entry.trim()
      if (value.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) return value.slice(TOKEN_SUBPROTOCOL_PREFIX.length)
    }
  }
  const query = (req.url ?? '').split('?')[1]
  if (query) {
    const token = new URLSearchParams(query).get('token')
    if (token) return token
  }
  return null
}

/** The request URL without its query string (which may hold a token). */
export const redactUrl = (url: string | undefined): string => (url ?? '/').split('?')[0]
