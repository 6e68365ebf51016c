/**
 * What the relay asks of the app before it connects: `GET /.concord/config`
 * says whether sign-in takes a token (`{ auth: "jwt" }`) or a name is enough
 * (`{ auth: "none" }`, the default single-machine setup). The answer is kept
 * so the app starts offline the way it last started online. And a token is
 * checked the way the app uses it: on a socket, until the relay answers
 * `authenticated` (with the user id and name it proves) or refuses it.
 *
 * @module lib/relayAuth
 */
import { ErrorCode, SyncClient, type SyncError } from '@concord/engine'
import type { KeyValueStore } from './identity'

/** How the relay authenticates: `jwt` (sign-in takes a token) or `none`. */
export type AuthMode = 'jwt' | 'none'

export const RELAY_CONFIG_KEY = 'concord:relay-config'

/** The relay's auth mode; offline, the last one seen (a name sign-in when there never was one). */
export async function loadAuthMode(storage: KeyValueStore | null, fetcher: typeof fetch = fetch): Promise<AuthMode> {
  try {
    const response = await fetcher('/.concord/config', { cache: 'no-store' })
    if (response.ok) {
      const body = (await response.json()) as { auth?: unknown }
      const mode: AuthMode = body.auth === 'none' || body.auth === undefined ? 'none' : 'jwt'
      try {
        storage?.setItem(RELAY_CONFIG_KEY, JSON.stringify({ auth: mode }))
      } catch {
        // the next offline start asks for a name; the relay still checks tokens
      }
      return mode
    }
  } catch {
    // offline: fall through to what was seen last
  }
  try {
    const cached = JSON.parse(storage?.getItem(RELAY_CONFIG_KEY) ?? 'null') as { auth?: unknown } | null
    return cached?.auth === 'jwt' ? 'jwt' : 'none'
  } catch {
    return 'none'
  }
}

/** Outcome of {@link checkToken}. */
export type TokenCheck =
  { ok: true; userId: string; name: string; expiresAt: number | null } | { ok: false; reason: string; unreachable: boolean }

/**
 * Connects with `token` and resolves with the identity the relay proves, or
 * why it refused (`unauthorized`: expired, badly signed, …) or that it could
 * not be reached within `timeout` ms.
 */
export function checkToken(url: string, token: string, timeout = 10_000): Promise<TokenCheck> {
  const client = new SyncClient({ url, token, reconnect: { minDelay: 1_000, maxDelay: 2_000 } })
  return new Promise<TokenCheck>((resolve) => {
    const finish = (result: TokenCheck): void => {
      clearTimeout(timer)
      client.off('status', onStatus)
      client.off('error', onError)
      client.close()
      resolve(result)
    }
    const onStatus = (): void => {
      const identity = client.identity
      if (client.status === 'online' && identity !== null) finish({ ok: true, ...identity })
    }
    const onError = (error: SyncError): void => {
      if (error.code === ErrorCode.unauthorized) finish({ ok: false, reason: tokenProblem(error.reason), unreachable: false })
    }
    const timer = setTimeout(
      () =>
        finish({ ok: false, reason: 'The relay cannot be reached to check the token. Try again when you are online.', unreachable: true }),
      timeout,
    )
    client.on('status', onStatus)
    client.on('error', onError)
  })
}

/** The relay's reason for refusing a token, as a sentence for the sign-in page. */
export function tokenProblem(reason: string): string {
  if (/expired/i.test(reason)) return 'Your access token has expired. Get a new one from the app that gave it to you and sign in again.'
  return `The relay refused this access token (${reason}). Check that you pasted all of it, or get a new one.`
}
