/**
 * Admission control on its own, with a hand-driven clock: the client address
 * behind trusted proxies, the upgrade rate per address, the caps of sockets
 * without an identity and the eviction of the oldest silent one, and the
 * per-user counts.
 */
import type http from 'node:http'
import { describe, expect, it } from 'vitest'
import { Admission, EVICT_UNAUTHENTICATED_AFTER_MS, parseAddressRange, type UnauthenticatedSlot } from '../src/security/admission.js'
import { DEFAULT_LIMITS, type RelayLimits } from '../src/security/limits.js'
import { RelayMetrics } from '../src/observability/metrics.js'

const request = (remoteAddress: string, forwardedFor?: string): http.IncomingMessage =>
  ({
    socket: { remoteAddress },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  }) as unknown as http.IncomingMessage

const setup = (limits: Partial<RelayLimits> = {}, trustedProxies?: string[]) => {
  const clock = { now: 0 }
  const metrics = new RelayMetrics({ collectDefault: false })
  const admission = new Admission({ ...DEFAULT_LIMITS, ...limits }, metrics, { trustedProxies, now: () => clock.now })
  return { admission, clock, metrics }
}

const slot = (result: ReturnType<Admission['admitUnauthenticated']>): UnauthenticatedSlot => {
  if ('status' in result) throw new Error(`refused: ${result.message}`)
  return result
}

describe('client address', () => {
  it('is the socket peer unless that is a trusted proxy', () => {
    const { admission } = setup({}, ['10.0.0.0/8', '::1'])
    expect(admission.clientAddress(request('203.0.113.5', '198.51.100.1'))).toBe('203.0.113.5')
    expect(admission.clientAddress(request('::ffff:10.1.2.3', '198.51.100.1'))).toBe('198.51.100.1')
    expect(admission.clientAddress(request('::1', '198.51.100.1'))).toBe('198.51.100.1')
  })

  it('is the rightmost X-Forwarded-For entry that is not a trusted proxy (what the client wrote further left is ignored)', () => {
    const { admission } = setup({}, ['10.0.0.0/8'])
    expect(admission.clientAddress(request('10.0.0.1', '1.1.1.1, 198.51.100.7, 10.0.0.2'))).toBe('198.51.100.7')
    expect(admission.clientAddress(request('10.0.0.1', '10.0.0.3, 10.0.0.2'))).toBe('10.0.0.3')
    expect(admission.clientAddress(request('10.0.0.1'))).toBe('10.0.0.1')
  })

  it('ignores X-Forwarded-For without trusted proxies', () => {
    const { admission } = setup()
    expect(admission.clientAddress(request('127.0.0.1', '198.51.100.1'))).toBe('127.0.0.1')
  })

  it('takes addresses and CIDR ranges, nothing else', () => {
    expect(parseAddressRange('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' })
    expect(parseAddressRange('fd00::/8')).toEqual({ address: 'fd00::', prefix: 8, family: 'ipv6' })
    expect(parseAddressRange('127.0.0.1')?.prefix).toBe(32)
    for (const bad of ['proxy.local', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8x', '']) expect(parseAddressRange(bad)).toBeNull()
  })
})

describe('sockets without an identity', () => {
  it('rates upgrades per address with a token bucket', () => {
    const { admission, clock } = setup({ connectionsPerAddressPerSecond: 2, connectionBurstPerAddress: 3 })
    for (let i = 0; i < 3; i++) expect(admission.admitUpgrade('a')).toBeNull()
    expect(admission.admitUpgrade('a')?.status).toBe(429)
    expect(admission.admitUpgrade('b')).toBeNull()
    clock.now += 500
    expect(admission.admitUpgrade('a')).toBeNull()
    expect(admission.admitUpgrade('a')?.status).toBe(429)
  })

  it('caps them per address and gives the place back on release', () => {
    const { admission } = setup({ maxUnauthenticatedPerAddress: 2 })
    const first = slot(admission.admitUnauthenticated('a'))
    slot(admission.admitUnauthenticated('a'))
    const refused = admission.admitUnauthenticated('a')
    expect('status' in refused && refused.status).toBe(503)
    slot(admission.admitUnauthenticated('b'))
    first.release()
    first.release()
    slot(admission.admitUnauthenticated('a'))
    expect(admission.unauthenticatedCount).toBe(3)
  })

  it('at the relay-wide cap, closes the oldest silent socket older than the grace period, never one being verified', () => {
    const { admission, clock } = setup({ maxUnauthenticatedConnections: 2 })
    const evicted: string[] = []
    const verifying = slot(admission.admitUnauthenticated('a'))
    verifying.evict = () => evicted.push('verifying')
    verifying.verifying = true
    clock.now += 10
    const silent = slot(admission.admitUnauthenticated('b'))
    silent.evict = () => evicted.push('silent')
    // both are younger than the grace period: refused
    const early = admission.admitUnauthenticated('c')
    expect('status' in early && early.status).toBe(503)
    clock.now += EVICT_UNAUTHENTICATED_AFTER_MS
    const admitted = slot(admission.admitUnauthenticated('c'))
    expect(evicted).toEqual(['silent'])
    expect(admission.unauthenticatedCount).toBe(2)
    // a socket whose upgrade is still in flight (no evict yet) is not closed either
    clock.now += EVICT_UNAUTHENTICATED_AFTER_MS
    expect('status' in admission.admitUnauthenticated('d')).toBe(true)
    admitted.release()
    verifying.release()
    expect(admission.unauthenticatedCount).toBe(0)
  })
})

describe('per user', () => {
  it('counts connections and open docs per user', () => {
    const { admission } = setup({ maxConnectionsPerUser: 2, maxDocsPerUser: 1 })
    admission.enterUser('ada')
    expect(admission.admitUser('ada')).toBeNull()
    admission.enterUser('ada')
    expect(admission.admitUser('ada')?.status).toBe(503)
    expect(admission.admitUser('bob')).toBeNull()
    admission.leaveUser('ada')
    expect(admission.admitUser('ada')).toBeNull()
    expect(admission.mayOpenDoc('ada')).toBe(true)
    admission.openDoc('ada')
    expect(admission.mayOpenDoc('ada')).toBe(false)
    admission.closeDoc('ada')
    expect(admission.mayOpenDoc('ada')).toBe(true)
  })
})
