/**
 * Fan-out encoders (connections/encode): what a room sends to all its peers
 * — an update, an awareness change, an ack — is encoded once, and every peer
 * gets the same bytes, which decode to what was sent on both wire formats.
 */
import { describe, expect, it } from 'vitest'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType, decodeMessage, readAck } from '@concord/engine/protocol'
import { muxAckMessage, muxAwarenessMessage, muxUpdateMessage, ywsAwarenessMessage, ywsUpdateMessage } from '../src/connections/encode.js'

const update = Uint8Array.of(1, 1, 5, 0, 4, 1, 1, 116, 1, 97, 0)

describe('fan-out encoders', () => {
  it('encode a multiplexed update once for every peer of its room, and again for another doc or update', () => {
    const message = muxUpdateMessage('ws/doc', update)
    expect(muxUpdateMessage('ws/doc', update)).toBe(message)
    const { type, doc, body } = decodeMessage(message)
    expect([type, doc, decoding.readVarUint(body)]).toEqual([MessageType.sync, 'ws/doc', syncProtocol.messageYjsUpdate])
    expect(decoding.readVarUint8Array(body)).toEqual(update)
    expect(muxUpdateMessage('ws/other', update)).not.toBe(message)
    expect(decodeMessage(muxUpdateMessage('ws/other', update)).doc).toBe('ws/other')
    expect(muxUpdateMessage('ws/doc', update.slice())).not.toBe(message)
  })

  it('encode an ack once for every peer a commit acks', () => {
    const stateVector = Uint8Array.of(1, 5, 3)
    const ack = muxAckMessage('ws/doc', stateVector)
    expect(muxAckMessage('ws/doc', stateVector)).toBe(ack)
    const { type, doc, body } = decodeMessage(ack)
    expect([type, doc]).toEqual([MessageType.ack, 'ws/doc'])
    expect(readAck(body)).toEqual(stateVector)
    expect(decodeMessage(muxAckMessage('ws/other', stateVector)).doc).toBe('ws/other')
  })

  it('encode awareness and y-websocket messages once per input, each format apart', () => {
    const awareness = Uint8Array.of(1, 7, 1, 2, 123, 125)
    const mux = muxAwarenessMessage('ws/doc', awareness)
    const yws = ywsAwarenessMessage(awareness)
    expect(muxAwarenessMessage('ws/doc', awareness)).toBe(mux)
    expect(ywsAwarenessMessage(awareness)).toBe(yws)
    expect(Array.from(yws)).toEqual([MessageType.awareness, awareness.byteLength, ...awareness])
    const ywsUpdate = ywsUpdateMessage(update)
    expect(ywsUpdateMessage(update)).toBe(ywsUpdate)
    expect(Array.from(ywsUpdate)).toEqual([MessageType.sync, syncProtocol.messageYjsUpdate, update.byteLength, ...update])
  })
})
