/**
 * Seeded sources of Yjs updates for the update validator's tests and the
 * relay fuzzer: the public yjs#687 / PR #688 payloads, valid updates from
 * random edits across every Yjs type, structurally valid but semantically
 * random updates, and mutations of any of them.
 *
 * Everything takes a lib0 `prng` generator, so a failure replays from its seed.
 *
 * @module test/fuzz/updateCorpus
 */
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import * as encoding from 'lib0/encoding'

/** A Yjs API that a payload makes hang or exhaust memory. */
export type AttackedApi = 'mergeUpdates' | 'mergeUpdatesV2' | 'applyUpdate' | 'applyUpdateV2'

/** A public reproduction payload of yjs issue #687. */
export interface Payload {
  /** Name of its test in yjs PR #688 (`tests/limits.tests.js`). */
  name: string
  /** What the bytes claim. */
  what: string
  /** The API that does not return on it with yjs 13.6.33 (checked in a child process). */
  attacks: AttackedApi
  hex: string
}

/**
 * The payloads of yjs PR #688 (`tests/limits.tests.js`); the first is also
 * quoted in hex in issue #687. With yjs 13.6.33 `Y.mergeUpdates` never returns
 * on `testShouldntMergeUpdatesWithTooManyUpdatesV1`, `Y.mergeUpdatesV2` never
 * returns on the other V2 ones except `testShouldntAcceptTooLargeGCItems`
 * (which 13.6.33 already rejects with an exception), and `Y.applyUpdateV2`
 * never returns on `testShouldntApplyUpdatesOverLimit`.
 */
export const ISSUE_687_PAYLOADS: readonly Payload[] = [
  {
    name: 'testShouldntMergeUpdatesWithTooManyStructs',
    what: 'V2 update claiming 4398046511101 structs',
    attacks: 'mergeUpdatesV2',
    hex: '00010000000001000100010200001602000001fdffffffff7f0000',
  },
  {
    name: 'testShouldntMergeUpdatesWithTooManyUpdatesV1',
    what: 'V1 update claiming 265828 clients',
    attacks: 'mergeUpdates',
    hex: 'e49c100005ffff0500010000000101000000ed000000010100feb8c2e9ad87d91200000101ffedf6',
  },
  {
    name: 'testShouldntMergeUpdatesWithTooManyUpdatesV2',
    what: 'V2 update claiming 7658324286 structs',
    attacks: 'mergeUpdatesV2',
    hex: 'e4950000011800000100010000010000ed01be82e3c31c0102e49500000118000001180000010001ed00',
  },
  {
    name: 'testShouldntAcceptTooLargeGCItems',
    what: 'V2 update with a GC struct of length 553253',
    attacks: 'mergeUpdatesV2',
    hex: '8f018000000001aa010001020000160200e5c44314e7a68b93aeb5fd5de8269a8a590031d50f120130000000',
  },
  {
    name: 'testShouldntApplyUpdatesOverLimit',
    what: 'V2 update with 267854847 structs',
    attacks: 'applyUpdateV2',
    hex: '00012300000001028100001000c7dc00c47a800041abead60001000001000084000010ffc7dcff000000',
  },
]

/** Bytes of a hex string. */
export const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

/** Hex of bytes. */
export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')

const anyValue = (gen: prng.PRNG, depth = 0): unknown => {
  switch (prng.uint32(gen, 0, depth > 2 ? 7 : 9)) {
    case 0:
      return prng.int32(gen, -1_000_000, 1_000_000)
    case 1:
      return prng.real53(gen)
    case 2:
      return prng.utf16String(gen, 6)
    case 3:
      return prng.bool(gen)
    case 4:
      return null
    case 5:
      return prng.uint8Array(gen, prng.uint32(gen, 0, 4))
    case 6:
      // Yjs accepts bigints only inside objects and arrays
      return depth > 0 ? BigInt(prng.int32(gen, -1000, 1000)) : prng.int32(gen, 0, 9)
    case 7:
      return prng.word(gen, 0, 5)
    case 8:
      return Array.from({ length: prng.uint32(gen, 0, 3) }, () => anyValue(gen, depth + 1))
    default:
      return Object.fromEntries(Array.from({ length: prng.uint32(gen, 0, 3) }, () => [prng.word(gen, 1, 4), anyValue(gen, depth + 1)]))
  }
}

/** Valid updates and the docs they came from. */
export interface EditCorpus {
  /** Every update observed: per-transaction updates, full states, diffs, merges (with skips), V2→V1 conversions. */
  updates: Uint8Array[]
  /** The peers that made the edits (gc on, gc on, gc off). */
  docs: Y.Doc[]
}

/**
 * Random edits by three peers (one without GC) over every Yjs type — Y.Text
 * with formatting and embeds, Y.Map, Y.Array, Y.XmlFragment / XmlElement /
 * XmlText / XmlHook, nested types, subdocs, deletes that garbage-collect
 * whole subtrees, undo/redo — synced in random order. Collects every update
 * event plus full states, diffs, `Y.mergeUpdates` of random subsets (which
 * contain `Skip` structs) and V2 updates converted to V1.
 */
export const randomEditCorpus = (gen: prng.PRNG, steps: number): EditCorpus => {
  const docs = [new Y.Doc(), new Y.Doc(), new Y.Doc({ gc: false })]
  const updates: Uint8Array[] = []
  const events: Uint8Array[] = []
  for (const doc of docs) {
    doc.on('update', (update: Uint8Array) => {
      updates.push(update)
      events.push(update)
    })
  }
  const undo = docs.map((doc) => new Y.UndoManager([doc.getText('text'), doc.getArray('list')], { captureTimeout: 0 }))
  for (let step = 0; step < steps; step++) {
    const i = prng.uint32(gen, 0, docs.length - 1)
    const doc = docs[i]
    const text = doc.getText('text')
    const map = doc.getMap('map')
    const list = doc.getArray<unknown>('list')
    const xml = doc.getXmlFragment('xml')
    switch (prng.uint32(gen, 0, 19)) {
      case 0:
      case 1:
        text.insert(prng.uint32(gen, 0, text.length), prng.utf16String(gen, 8), prng.bool(gen) ? { bold: true } : undefined)
        break
      case 2:
        if (text.length > 0) {
          const at = prng.uint32(gen, 0, text.length - 1)
          text.delete(at, prng.uint32(gen, 1, Math.min(5, text.length - at)))
        }
        break
      case 3:
        if (text.length > 0) {
          const at = prng.uint32(gen, 0, text.length - 1)
          text.format(at, prng.uint32(gen, 1, text.length - at), { italic: prng.bool(gen) ? true : null, color: prng.word(gen, 1, 3) })
        }
        break
      case 4:
        text.insertEmbed(prng.uint32(gen, 0, text.length), { image: prng.word(gen, 1, 6), size: [1, 2] }, { link: 'x' })
        break
      case 5:
        map.set(prng.word(gen, 1, 2), anyValue(gen))
        break
      case 6:
        map.delete(prng.word(gen, 1, 2))
        break
      case 7: {
        const nested = new Y.Map<unknown>()
        map.set(`nested-${prng.uint32(gen, 0, 3)}`, nested)
        nested.set('title', new Y.Text(prng.word(gen, 0, 6)))
        nested.set('tags', Y.Array.from([prng.word(gen, 1, 3), anyValue(gen) as string])) // any Any value; the typing is narrower
        break
      }
      case 8:
        map.set(
          `subdoc-${prng.uint32(gen, 0, 2)}`,
          new Y.Doc({ autoLoad: prng.bool(gen), meta: prng.bool(gen) ? { kind: 'attachment' } : null }),
        )
        break
      case 9:
        list.insert(
          prng.uint32(gen, 0, list.length),
          Array.from({ length: prng.uint32(gen, 1, 4) }, () => anyValue(gen)),
        )
        break
      case 10:
        if (list.length > 0) {
          const at = prng.uint32(gen, 0, list.length - 1)
          list.delete(at, prng.uint32(gen, 1, Math.min(3, list.length - at)))
        }
        break
      case 11:
        list.insert(prng.uint32(gen, 0, list.length), [new Y.Array(), new Y.Text('t'), new Y.Map()])
        break
      case 12: {
        const element = new Y.XmlElement(prng.oneOf(gen, ['p', 'h1', 'li', 'blockquote']))
        xml.insert(prng.uint32(gen, 0, xml.length), [element])
        element.setAttribute('class', prng.word(gen, 1, 5))
        const inner = new Y.XmlText()
        // Yjs' typings leave out XmlHook, which XmlElement accepts
        element.insert(0, [inner, new Y.XmlHook('mention') as unknown as Y.XmlText])
        inner.insert(0, prng.word(gen, 1, 8), { bold: true })
        inner.insertEmbed(0, { emoji: ':)' })
        break
      }
      case 13:
        if (xml.length > 0) xml.delete(prng.uint32(gen, 0, xml.length - 1), 1)
        break
      case 14: {
        // a subtree that is deleted right away: garbage-collected into GC structs
        const tree = new Y.Map<unknown>()
        list.insert(0, [tree])
        tree.set('x', new Y.Array())
        list.delete(0, 1)
        break
      }
      case 15:
        if (prng.bool(gen)) undo[i].undo()
        else undo[i].redo()
        break
      case 16:
      case 17: {
        // sync to another peer
        const other = docs[(i + prng.uint32(gen, 1, docs.length - 1)) % docs.length]
        Y.applyUpdate(other, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(other)))
        break
      }
      case 18:
        updates.push(Y.encodeStateAsUpdate(doc))
        updates.push(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(docs[(i + 1) % docs.length])))
        updates.push(Y.convertUpdateFormatV2ToV1(Y.encodeStateAsUpdateV2(doc)))
        break
      default: {
        // merged subsets of the per-transaction updates: skips where updates are missing
        if (events.length > 1) {
          const picked = events.filter(() => prng.uint32(gen, 0, 3) === 0)
          if (picked.length > 0) {
            const merged = Y.mergeUpdates(picked)
            updates.push(merged)
            updates.push(Y.diffUpdate(merged, Y.encodeStateVector(docs[i])))
          }
        }
      }
    }
  }
  for (const doc of docs) updates.push(Y.encodeStateAsUpdate(doc))
  return { updates, docs }
}

const writeRandomAny = (gen: prng.PRNG, e: encoding.Encoder, depth: number): void => {
  switch (prng.uint32(gen, 0, depth > 3 ? 7 : 9)) {
    case 0:
      encoding.writeUint8(e, 127)
      break
    case 1:
      encoding.writeUint8(e, 126)
      break
    case 2:
      encoding.writeUint8(e, 125)
      encoding.writeVarInt(e, prng.int32(gen, -1e6, 1e6))
      break
    case 3:
      encoding.writeUint8(e, 123)
      encoding.writeFloat64(e, prng.real53(gen))
      break
    case 4:
      encoding.writeUint8(e, prng.bool(gen) ? 120 : 121)
      break
    case 5:
      encoding.writeUint8(e, 119)
      encoding.writeVarString(e, prng.word(gen, 0, 4))
      break
    case 6:
      encoding.writeUint8(e, 116)
      encoding.writeVarUint8Array(e, prng.uint8Array(gen, prng.uint32(gen, 0, 3)))
      break
    case 7:
      encoding.writeUint8(e, 122)
      encoding.writeBigInt64(e, BigInt(prng.int32(gen, -5, 5)))
      break
    case 8: {
      encoding.writeUint8(e, 118)
      const n = prng.uint32(gen, 0, 3)
      encoding.writeVarUint(e, n)
      for (let i = 0; i < n; i++) {
        encoding.writeVarString(e, prng.word(gen, 0, 3))
        writeRandomAny(gen, e, depth + 1)
      }
      break
    }
    default: {
      encoding.writeUint8(e, 117)
      const n = prng.uint32(gen, 0, 3)
      encoding.writeVarUint(e, n)
      for (let i = 0; i < n; i++) writeRandomAny(gen, e, depth + 1)
    }
  }
}

interface Id {
  client: number
  clock: number
}

/**
 * A structurally valid V1 update with random semantics: random clients and
 * start clocks, every struct kind and content type, origins, right origins
 * and parents pointing anywhere (earlier structs, other clients, nowhere),
 * types nested in non-types, overlapping clocks across calls, and a sorted
 * delete set. Yjs must integrate whatever it makes of it without hanging.
 */
export const craftRandomUpdate = (gen: prng.PRNG): Uint8Array => {
  const e = encoding.createEncoder()
  const clientCount = prng.uint32(gen, 0, 3)
  const clients = prng.bool(gen) ? [1, 2, 3].slice(0, clientCount) : [3, 2, 1].slice(0, clientCount)
  const ids: Id[] = []
  encoding.writeVarUint(e, clientCount)
  for (const client of clients) {
    const structCount = prng.uint32(gen, 1, 8)
    let clock = prng.uint32(gen, 0, 4)
    encoding.writeVarUint(e, structCount)
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
    const refId = (): Id | null => {
      const id =
        ids.length > 0 && prng.bool(gen) ? prng.oneOf(gen, ids) : { client: prng.uint32(gen, 1, 3), clock: prng.uint32(gen, 0, 12) }
      return id.client === client && id.clock >= clock ? null : id
    }
    for (let i = 0; i < structCount; i++) {
      const kind = prng.uint32(gen, 0, 11)
      if (kind === 0 || kind === 10) {
        // GC or Skip
        const len = prng.uint32(gen, 1, 3)
        encoding.writeUint8(e, kind)
        encoding.writeVarUint(e, len)
        clock += len
        continue
      }
      const ref = kind === 11 ? 8 : kind
      const origin = prng.bool(gen) ? refId() : null
      const rightOrigin = prng.uint32(gen, 0, 3) === 0 ? refId() : null
      const hasKey = prng.uint32(gen, 0, 2) === 0
      encoding.writeUint8(e, ref | (origin ? 0x80 : 0) | (rightOrigin ? 0x40 : 0) | (hasKey ? 0x20 : 0))
      for (const id of [origin, rightOrigin]) {
        if (id) {
          encoding.writeVarUint(e, id.client)
          encoding.writeVarUint(e, id.clock)
        }
      }
      if (!origin && !rightOrigin) {
        const parent = prng.bool(gen) ? refId() : null
        if (parent) {
          encoding.writeVarUint(e, 0)
          encoding.writeVarUint(e, parent.client)
          encoding.writeVarUint(e, parent.clock)
        } else {
          encoding.writeVarUint(e, 1)
          encoding.writeVarString(e, prng.oneOf(gen, ['text', 'map', 'list', 'xml']))
        }
        if (hasKey) encoding.writeVarString(e, prng.oneOf(gen, ['k', 'l', 'bold']))
      }
      let len = 1
      switch (ref) {
        case 1:
          len = prng.uint32(gen, 1, 4)
          encoding.writeVarUint(e, len)
          break
        case 2:
          len = prng.uint32(gen, 1, 3)
          encoding.writeVarUint(e, len)
          for (let j = 0; j < len; j++) encoding.writeVarString(e, prng.oneOf(gen, ['1', '"s"', 'undefined', '{"a":[1]}', 'null']))
          break
        case 3:
          encoding.writeVarUint8Array(e, prng.uint8Array(gen, prng.uint32(gen, 0, 3)))
          break
        case 4: {
          const s = prng.oneOf(gen, ['a', 'bc', '\u{1F600}x', 'hello', prng.utf16String(gen, 4) || 'z'])
          len = s.length
          encoding.writeVarString(e, s)
          break
        }
        case 5:
          encoding.writeVarString(e, '{"image":1}')
          break
        case 6:
          encoding.writeVarString(e, prng.oneOf(gen, ['bold', 'italic']))
          encoding.writeVarString(e, prng.oneOf(gen, ['true', 'null', '{"x":1}']))
          break
        case 7: {
          const typeRef = prng.uint32(gen, 0, 6)
          encoding.writeVarUint(e, typeRef)
          if (typeRef === 3 || typeRef === 5) encoding.writeVarString(e, 'p')
          break
        }
        case 8:
          len = prng.uint32(gen, 1, 3)
          encoding.writeVarUint(e, len)
          for (let j = 0; j < len; j++) writeRandomAny(gen, e, 0)
          break
        default:
          encoding.writeVarString(e, `guid-${prng.uint32(gen, 0, 3)}`)
          encoding.writeUint8(e, 118)
          if (prng.bool(gen)) {
            encoding.writeVarUint(e, 1)
            encoding.writeVarString(e, 'gc')
            encoding.writeUint8(e, 121)
          } else {
            encoding.writeVarUint(e, 0)
          }
      }
      for (let j = 0; j < len; j++) ids.push({ client, clock: clock + j })
      clock += len
    }
  }
  const dsClients = prng.uint32(gen, 0, 2)
  encoding.writeVarUint(e, dsClients)
  for (let i = 0; i < dsClients; i++) {
    encoding.writeVarUint(e, i + 1)
    const ranges = prng.uint32(gen, 1, 3)
    encoding.writeVarUint(e, ranges)
    let clock = 0
    for (let j = 0; j < ranges; j++) {
      clock += prng.uint32(gen, 0, 3)
      const len = prng.uint32(gen, 1, 4)
      encoding.writeVarUint(e, clock)
      encoding.writeVarUint(e, len)
      clock += len
    }
  }
  return encoding.toUint8Array(e)
}

/** Encodes a varUint (any size up to 2^64, for inflation). */
const varUintBytes = (value: bigint): number[] => {
  const out: number[] = []
  let v = value
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}

/** Values a count or length is inflated to. */
const INFLATED = [1n, 2n, 127n, 128n, 1000n, 65_535n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]

/** How a mutation changed the input, for failure messages. */
export type Mutation = 'flip' | 'set' | 'insert' | 'remove' | 'truncate' | 'inflate' | 'grow' | 'splice' | 'repeat'

/**
 * Mutates bytes: bit flips, byte sets, inserts and removals, truncation,
 * a varUint somewhere replaced by an inflated one (counts and lengths),
 * a varUint grown by a small amount, a splice with another input, or a
 * repeated segment. Returns new bytes.
 */
export const mutate = (gen: prng.PRNG, input: Uint8Array, other?: Uint8Array): { bytes: Uint8Array; mutation: Mutation } => {
  const b = Array.from(input)
  const at = prng.uint32(gen, 0, Math.max(0, b.length - 1))
  const mutation = prng.oneOf<Mutation>(gen, [
    'flip',
    'set',
    'insert',
    'remove',
    'truncate',
    'inflate',
    'inflate',
    'grow',
    'grow',
    'splice',
    'repeat',
  ])
  switch (mutation) {
    case 'flip':
      b[at] = (b[at] ?? 0) ^ (1 << prng.uint32(gen, 0, 7))
      break
    case 'set':
      b[at] = prng.uint32(gen, 0, 255)
      break
    case 'insert':
      b.splice(at, 0, ...prng.uint8Array(gen, prng.uint32(gen, 1, 4)))
      break
    case 'remove':
      b.splice(at, prng.uint32(gen, 1, 4))
      break
    case 'truncate':
      b.length = at
      break
    case 'inflate':
    case 'grow': {
      // replace the varUint starting at `at` (however long) with another value
      let end = at
      let value = 0n
      let mult = 1n
      while (end < b.length) {
        const byte = b[end++]
        value += BigInt(byte & 0x7f) * mult
        mult *= 128n
        if (byte < 0x80) break
      }
      const next = mutation === 'inflate' ? prng.oneOf(gen, INFLATED) : value + BigInt(prng.uint32(gen, 1, 8))
      b.splice(at, end - at, ...varUintBytes(next))
      break
    }
    case 'splice': {
      const source = other ?? input
      const from = prng.uint32(gen, 0, Math.max(0, source.length - 1))
      b.splice(at, prng.uint32(gen, 0, 8), ...source.subarray(from, from + prng.uint32(gen, 1, 16)))
      break
    }
    case 'repeat': {
      const len = prng.uint32(gen, 1, 12)
      b.splice(at, 0, ...b.slice(at, at + len))
      break
    }
  }
  return { bytes: new Uint8Array(b), mutation }
}
