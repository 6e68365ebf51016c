/**
 * In-band token auth of the sync client: the token source, sending the token
 * as the first message on every socket (after the relay's `hello`), the
 * identity the relay answers with (`authenticated`), and refreshing the
 * token a minute before it expires so long sessions keep their connection.
 *
 * A token provider (a function) is called again for every socket and every
 * refresh; when it fails, the connection halts (as after a permanent
 * refusal) until the token is replaced or `reconnect()` is called.
 *
 * @module sync/TokenAuth
 */
import { ErrorCode, encodeAuth } from '../protocol/messages.js'
import type { RelayConnection } from './RelayConnection.js'
import { SyncError, describeError } from './SyncError.js'

/** An access token (a JWT, see docs/security.md), or a function returning one. */
export type TokenSource = string | (() => string | Promise<string>)

/** The user the relay authenticated. */
export interface Identity {
  userId: string
  name: string
  /** When the token expires, ms since the epoch; null when it does not. */
  expiresAt: number | null
}

/** What token auth uses of the connection. */
export type AuthConnection = Pick<RelayConnection, 'online' | 'currentSocket' | 'send' | 'halt'>

/** Token source, refresh timer and identity of one sync client. */
export class TokenAuth {
  private source: TokenSource | null
  private identityInfo: Identity | null = null
  private refreshTimer: ReturnType<typeof setTimeout> | null = null

  /**
   * @param source the token or provider; null when the relay runs without auth
   * @param connection the socket the token goes out on
   * @param reportError tells the client's listeners that the provider failed
   * @param now the time by the relay's clock, which the token's expiry is on
   */
  constructor(
    source: TokenSource | null,
    private readonly connection: AuthConnection,
    private readonly reportError: (error: SyncError) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.source = source
  }

  /** Whether a token is sent on every socket (the handshake then completes on `authenticated`). */
  get required(): boolean {
    return this.source !== null
  }

  /** The user the relay authenticated (null without auth or before it answered). */
  get identity(): Identity | null {
    return this.identityInfo
  }

  /** Replaces the token source; the caller decides whether it goes out now. */
  replace(source: TokenSource): void {
    this.source = source
  }

  /**
   * Resolves the token (calling the provider if there is one) and sends it
   * in-band on the socket that was current when this was called. A string
   * token goes out synchronously. A failing provider halts the connection.
   */
  async send(): Promise<void> {
    const source = this.source
    if (source === null) return
    const socket = this.connection.currentSocket
    let token: string
    try {
      token = typeof source === 'function' ? await source() : source
    } catch (error) {
      this.reportError(new SyncError('', ErrorCode.unauthorized, `the token provider failed: ${describeError(error)}`))
      this.connection.halt()
      return
    }
    if (this.connection.currentSocket === socket && socket !== null) this.connection.send(encodeAuth(token))
  }

  /** The relay's `authenticated`: keeps the identity and plans the refresh. */
  authenticated(identity: Identity): void {
    this.identityInfo = identity
    this.scheduleRefresh()
  }

  /** Stops the refresh timer (client closed). */
  stop(): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer)
    this.refreshTimer = null
  }

  /** With a token provider, fetches and sends a fresh token a minute before the current one expires. */
  private scheduleRefresh(): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer)
    this.refreshTimer = null
    const expiresAt = this.identityInfo?.expiresAt ?? null
    if (typeof this.source !== 'function' || expiresAt === null) return
    const delay = Math.max(5_000, expiresAt - this.now() - 60_000)
    this.refreshTimer = setTimeout(
      () => {
        this.refreshTimer = null
        if (this.connection.online) void this.send()
      },
      Math.min(delay, 2 ** 31 - 1),
    )
  }
}
