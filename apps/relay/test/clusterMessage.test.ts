/**
 * The messages relay instances exchange through Redis: what is encoded is
 * decoded the same, and a malformed message throws (the receiver ignores it).
 */
import { describe, expect, it } from 'vitest'
import { decodeClusterMessage, encodeClusterMessage, type ClusterMessage } from '../src/cluster/Cluster.js'

describe('cluster messages', () => {
  it('an update message round-trips with its sequence numbers and bindings', () => {
    const message: ClusterMessage = {
      kind: 'update',
      instance: 'a1b2',
      doc: 'team/ticket-\u{1F600}',
      fromSeq: 7,
      toSeq: 2 ** 40,
      updates: [new Uint8Array([1, 2, 3]), new Uint8Array([]), new Uint8Array([4])],
      authors: [
        { clientId: 2 ** 32 - 1, userId: 'u1', name: 'Ada' },
        { clientId: 0, userId: '', name: '' },
      ],
    }
    expect(decodeClusterMessage(encodeClusterMessage(message))).toEqual(message)
  })

  it('a merged update of a relay of the earlier version (kind 0) decodes as a list of one', () => {
    const merged = new Uint8Array([0, 1, 0x78, 1, 0x64, 3, 4, 2, 9, 8, 1, 5, 2, 0x75, 0x31, 0])
    expect(decodeClusterMessage(merged)).toEqual({
      kind: 'update',
      instance: 'x',
      doc: 'd',
      fromSeq: 3,
      toSeq: 4,
      updates: [new Uint8Array([9, 8])],
      authors: [{ clientId: 5, userId: 'u1', name: '' }],
    })
  })

  it('an awareness message round-trips', () => {
    const message: ClusterMessage = { kind: 'awareness', instance: 'x', doc: '', update: new Uint8Array([9]) }
    expect(decodeClusterMessage(encodeClusterMessage(message))).toEqual(message)
  })

  it('a catalog message round-trips with its serial and sequence numbers', () => {
    const message: ClusterMessage = { kind: 'catalog', instance: 'x', docs: ['acme/T-1', 'acme/P-2'], serial: 9, seqs: [3, 2 ** 40] }
    expect(decodeClusterMessage(encodeClusterMessage(message))).toEqual(message)
  })

  it('a catalog message of a relay that does not count them (names only) decodes with serial 0', () => {
    const namesOnly = new Uint8Array([2, 1, 0x78, 1, 8, ...new TextEncoder().encode('acme/T-1')])
    expect(decodeClusterMessage(namesOnly)).toEqual({ kind: 'catalog', instance: 'x', docs: ['acme/T-1'], serial: 0, seqs: [] })
  })

  it('a holding message round-trips; a relay of the earlier version reads it as an empty range without bindings', () => {
    for (const unpublished of [false, true]) {
      const message: ClusterMessage = { kind: 'holding', instance: 'x', doc: 'acme/T-1', unpublished }
      const bytes = encodeClusterMessage(message)
      expect(decodeClusterMessage(bytes)).toEqual(message)
      // what the earlier decoder reads, and stops at: an update of kind 4, range 1…0, no updates, no bindings
      expect(decodeClusterMessage(bytes.slice(0, -1))).toEqual({
        kind: 'update',
        instance: 'x',
        doc: 'acme/T-1',
        fromSeq: 1,
        toSeq: 0,
        updates: [],
        authors: [],
      })
    }
    const unknownNote = encodeClusterMessage({ kind: 'holding', instance: 'x', doc: 'd', unpublished: true })
    unknownNote[unknownNote.length - 1] = 9
    expect(() => decodeClusterMessage(unknownNote)).toThrow(/unknown holding note 9/)
  })

  it('a heartbeat message round-trips; one of a relay of the earlier version (no listener flag) says it listens to catalog messages', () => {
    for (const catalogListener of [false, true]) {
      for (const leaving of [false, true]) {
        const message: ClusterMessage = { kind: 'heartbeat', instance: 'b7', catalogSerial: 41, catalogListener, leaving }
        expect(decodeClusterMessage(encodeClusterMessage(message))).toEqual(message)
      }
    }
    const heartbeat: ClusterMessage = { kind: 'heartbeat', instance: 'b7', catalogSerial: 41, catalogListener: false, leaving: false }
    const earlier = encodeClusterMessage(heartbeat).slice(0, -1)
    expect(decodeClusterMessage(earlier)).toEqual({ ...heartbeat, catalogListener: true })
  })

  it('a last heartbeat (leaving) reads to a relay of the earlier version as a heartbeat: the flag comes after all it reads', () => {
    const goodbye = encodeClusterMessage({ kind: 'heartbeat', instance: 'b7', catalogSerial: 41, catalogListener: false, leaving: true })
    const plain = encodeClusterMessage({ kind: 'heartbeat', instance: 'b7', catalogSerial: 41, catalogListener: false, leaving: false })
    expect(goodbye.slice(0, plain.length)).toEqual(plain)
  })

  it('a malformed message throws', () => {
    expect(() => decodeClusterMessage(new Uint8Array([7, 0, 0]))).toThrow(/unknown cluster message kind 7/)
    expect(() => decodeClusterMessage(new Uint8Array([0, 1]))).toThrow()
  })
})
