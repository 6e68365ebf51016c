/**
 * Who may open a socket, and how many: the client address of a request
 * (from `X-Forwarded-For` only when the socket comes from a trusted proxy),
 * the upgrade rate per address, the sockets without an identity yet (relay
 * wide and per address), and the connections and open docs of each user.
 *
 * ```ts
 * const admission = new Admission(limits, metrics, { trustedProxies: ['10.0.0.0/8'] })
 * const address = admission.clientAddress(req)
 * const refused = admission.admitUpgrade(address) // null, or { status: 429, … }
 * const slot = admission.admitUnauthenticated(address) // a slot to release once authenticated or closed
 * ```
 *
 * @module security/admission
 */
import net from 'node:net'
import type http from 'node:http'
import type { RefusalReason, RelayMetrics } from '../observability/metrics.js'
import { TokenBucket, type RelayLimits } from './limits.js'

/**
 * A socket without an identity older than this may be closed to make room
 * for a new one when the relay's unauthenticated sockets are at their cap, ms.
 * Clients send their token as soon as the socket opens: a socket that waits
 * longer is the first to go, so a flood of silent sockets cannot lock
 * everyone out for the whole `authTimeoutMs`.
 */
export const EVICT_UNAUTHENTICATED_AFTER_MS = 1000

/** A refused upgrade: HTTP status, metric reason and the text the client reads. */
export interface Refusal {
  readonly status: number
  readonly reason: RefusalReason
  readonly message: string
}

/** A place among the sockets without an identity; release it once authenticated, refused or closed. */
export interface UnauthenticatedSlot {
  readonly address: string
  /** When the socket took the slot (the admission's clock, ms). */
  readonly since: number
  /** True while a token is being verified: the socket is not evicted then. */
  verifying: boolean
  /** Closes the socket to make room for another; null while it cannot be evicted (upgrade in flight). */
  evict: (() => void) | null
  /** Gives the slot back (idempotent). */
  release(): void
}

/** An IP address or CIDR range of `--trusted-proxies`, or null when it is neither. */
export const parseAddressRange = (entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null => {
  const slash = entry.indexOf('/')
  const address = slash === -1 ? entry : entry.slice(0, slash)
  const version = net.isIP(address)
  if (version === 0) return null
  const max = version === 4 ? 32 : 128
  const prefix = slash === -1 ? max : Number(entry.slice(slash + 1))
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (slash !== -1 && !/^\d+$/.test(entry.slice(slash + 1)))) return null
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
const normalizeAddress = (address: string): string =>
  address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address

interface AddressState {
  unauthenticated: number
  readonly upgrades: TokenBucket
  lastUse: number
}

/** How often idle per-address entries are forgotten, ms. */
const SWEEP_INTERVAL_MS = 10_000

/** Admission control of the relay (one per relay). */
export class Admission {
  private readonly trusted: net.BlockList | null
  private readonly addresses = new Map<string, AddressState>()
  /** Oldest first (insertion order). */
  private readonly unauthenticated = new Set<UnauthenticatedSlot>()
  private readonly userConnections = new Map<string, number>()
  private readonly userDocs = new Map<string, number>()
  private lastSweep: number

  constructor(
    private readonly limits: RelayLimits,
    private readonly metrics: RelayMetrics,
    options: { trustedProxies?: readonly string[]; now?: () => number } = {},
  ) {
    this.now = options.now ?? performance.now.bind(performance)
    this.lastSweep = this.now()
    const ranges = (options.trustedProxies ?? []).map((entry) => {
      const range = parseAddressRange(entry)
      if (!range) throw new Error(`trusted proxy "${entry}" is not an IP address or CIDR range`)
      return range
    })
    if (ranges.length === 0) {
      this.trusted = null
    } else {
      this.trusted = new net.BlockList()
      for (const { address, prefix, family } of ranges) this.trusted.addSubnet(address, prefix, family)
    }
  }

  private readonly now: () => number

  /**
   * The address a request comes from: the socket's peer, or — when the peer
   * is a trusted proxy — the rightmost `X-Forwarded-For` entry that is not a
   * trusted proxy itself (entries further left are what the client claimed).
   */
  clientAddress(req: http.IncomingMessage): string {
    const peer = normalizeAddress(req.socket.remoteAddress ?? 'unknown')
    if (!this.trusted || !this.isTrusted(peer)) return peer
    const header = req.headers['x-forwarded-for']
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((hop) => normalizeAddress(hop.trim()))
      .filter((hop) => hop.length > 0)
    for (let i = hops.length - 1; i >= 0; i--) {
      if (net.isIP(hops[i]) === 0) return hops[i] // not an address: the chain is broken here; count it as its own client
      if (!this.isTrusted(hops[i])) return hops[i]
    }
    return hops[0] ?? peer
  }

  /** Counts one upgrade from `address`; a refusal (429) once the address is over its rate. */
  admitUpgrade(address: string): Refusal | null {
    this.sweep()
    const state = this.address(address)
    state.lastUse = this.now()
    if (state.upgrades.take()) return null
    return {
      status: 429,
      reason: 'address-rate-limit',
      message: `too many connections from your address (over ${this.limits.connectionsPerAddressPerSecond}/s); retry later`,
    }
  }

  /** Number of sockets without an identity (waiting for their token or being verified). */
  get unauthenticatedCount(): number {
    return this.unauthenticated.size
  }

  /**
   * A slot for a socket without an identity from `address`, or a refusal
   * (503) when the address or the relay has too many. At the relay's cap
   * the oldest silent socket (older than {@link EVICT_UNAUTHENTICATED_AFTER_MS},
   * not being verified) is closed to make room.
   */
  admitUnauthenticated(address: string): UnauthenticatedSlot | Refusal {
    const state = this.address(address)
    if (state.unauthenticated >= this.limits.maxUnauthenticatedPerAddress) {
      return {
        status: 503,
        reason: 'too-many-unauthenticated',
        message: `${this.limits.maxUnauthenticatedPerAddress} connections from your address are not authenticated yet; authenticate them first`,
      }
    }
    if (this.unauthenticated.size >= this.limits.maxUnauthenticatedConnections && !this.evictOne()) {
      return {
        status: 503,
        reason: 'too-many-unauthenticated',
        message: `the relay has ${this.limits.maxUnauthenticatedConnections} connections waiting to authenticate; retry later`,
      }
    }
    state.unauthenticated++
    let released = false
    const slot: UnauthenticatedSlot = {
      address,
      since: this.now(),
      verifying: false,
      evict: null,
      release: () => {
        if (released) return
        released = true
        this.unauthenticated.delete(slot)
        this.metrics.unauthenticatedSockets.labels('auth').dec()
        state.unauthenticated--
        state.lastUse = this.now()
      },
    }
    this.unauthenticated.add(slot)
    this.metrics.unauthenticatedSockets.labels('auth').inc()
    return slot
  }

  private evictOne(): boolean {
    const cutoff = this.now() - EVICT_UNAUTHENTICATED_AFTER_MS
    for (const slot of this.unauthenticated) {
      if (slot.since > cutoff) return false // the rest are younger still
      if (slot.verifying || slot.evict === null) continue
      const evict = slot.evict
      slot.release()
      this.metrics.refused('evicted-unauthenticated')
      evict()
      return true
    }
    return false
  }

  /** A refusal (503) when `userId` already has `maxConnectionsPerUser` connections open. */
  admitUser(userId: string): Refusal | null {
    const open = this.userConnections.get(userId) ?? 0
    if (open < this.limits.maxConnectionsPerUser) return null
    return {
      status: 503,
      reason: 'too-many-user-connections',
      message: `you have ${this.limits.maxConnectionsPerUser} connections open; close some (other tabs or devices) first`,
    }
  }

  /** Counts a connection of `userId` (until {@link leaveUser}). */
  enterUser(userId: string): void {
    this.userConnections.set(userId, (this.userConnections.get(userId) ?? 0) + 1)
  }

  /** Undoes {@link enterUser}. */
  leaveUser(userId: string): void {
    const left = (this.userConnections.get(userId) ?? 1) - 1
    if (left > 0) this.userConnections.set(userId, left)
    else this.userConnections.delete(userId)
  }

  /** True when `userId` may subscribe to one more doc. */
  mayOpenDoc(userId: string): boolean {
    return (this.userDocs.get(userId) ?? 0) < this.limits.maxDocsPerUser
  }

  /** Counts a subscription of `userId` (until {@link closeDoc}). */
  openDoc(userId: string): void {
    this.userDocs.set(userId, (this.userDocs.get(userId) ?? 0) + 1)
  }

  /** Undoes {@link openDoc}. */
  closeDoc(userId: string): void {
    const left = (this.userDocs.get(userId) ?? 1) - 1
    if (left > 0) this.userDocs.set(userId, left)
    else this.userDocs.delete(userId)
  }

  private isTrusted(address: string): boolean {
    const version = net.isIP(address)
    if (version === 0 || !this.trusted) return false
    return this.trusted.check(address, version === 4 ? 'ipv4' : 'ipv6')
  }

  private address(address: string): AddressState {
    let state = this.addresses.get(address)
    if (!state) {
      state = {
        unauthenticated: 0,
        upgrades: new TokenBucket(this.limits.connectionsPerAddressPerSecond, this.limits.connectionBurstPerAddress, this.now),
        lastUse: this.now(),
      }
      this.addresses.set(address, state)
    }
    return state
  }

  /** Forgets addresses with no socket waiting whose upgrade bucket has refilled. */
  private sweep(): void {
    const now = this.now()
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return
    this.lastSweep = now
    const refillMs = (this.limits.connectionBurstPerAddress / this.limits.connectionsPerAddressPerSecond) * 1000
    for (const [address, state] of this.addresses) {
      if (state.unauthenticated === 0 && now - state.lastUse > refillMs) this.addresses.delete(address)
    }
  }
}
