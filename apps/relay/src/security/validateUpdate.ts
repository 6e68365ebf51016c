/**
 * A bounded, linear-time structural check of Yjs **V1** updates and state
 * vectors, run on untrusted client bytes before the relay hands them to Yjs.
 *
 * Why: Yjs decodes updates trusting the counts and lengths in them. A few
 * dozen crafted bytes make `Y.mergeUpdates`, `Y.mergeUpdatesV2` or
 * `Y.applyUpdateV2` loop for ever or allocate until the process dies (yjs
 * issue #687 and the payloads of PR #688: a struct or client count of 2^18
 * to 2^42 followed by almost nothing). `Y.applyUpdate` reads some of those
 * payloads as valid, throws on other malformed input (invalid UTF-8, bad
 * JSON, unknown content or type refs, a `null` subdoc options object), and
 * runs in quadratic time on some well-formed shapes (overlapping delete
 * ranges that each rescan a client's structs, many origin-less entries for
 * one map key) or overflows the stack on others (deeply nested types).
 *
 * What it guarantees:
 * - Time and memory are linear in `update.byteLength`. It makes a constant
 *   number of passes over each byte; every count read from the input is
 *   checked against the bytes left (each element needs at least one byte)
 *   before anything loops on it; nothing is allocated from a count; `Any` and
 *   JSON nesting is bounded by {@link UpdateLimits.maxDepth}, so recursion is
 *   too. It never calls Yjs. (It uses its own reader rather than lib0's
 *   `decoding`: lib0's `readUint8` returns `undefined` past the end instead
 *   of throwing, and `readVarUint` lets a last byte carry a value past 2^53.)
 * - What it accepts is a well-formed V1 update as Yjs' own encoder writes
 *   them: varUints end inside the buffer within 8 bytes and stay ≤ 2^53 − 1;
 *   clocks plus lengths never pass 2^53 − 1; every struct has a length ≥ 1;
 *   strings are valid UTF-8; JSON content parses; content refs, type refs,
 *   parent infos and `Any` tags are known; subdoc options are an object of
 *   the keys Yjs writes; each client appears once per section; a client's
 *   references to its own structs point backwards; a client's delete ranges
 *   are sorted and do not overlap; there are no trailing bytes.
 *
 * Every valid update produced by Yjs (any mix of types, formatting, embeds,
 * subdocs, deletes, GC'd content and the skips of `Y.mergeUpdates`) passes.
 * Passing does not make an update harmless: it may still depend on structs
 * the doc lacks (Yjs keeps those pending), Yjs may still throw on it when it
 * overlaps structs the doc has garbage-collected, and the cost of integrating
 * it depends on the doc it is applied to — a nest of types or the history of
 * a map key built up over many updates is invisible here; the relay checks
 * those against the doc (`security/docGuard`), from what this module
 * reads (the counts of its result and {@link readUpdateItems}).
 *
 * ```ts
 * const result = validateUpdateV1(bytes, { maxStructs: 100_000 })
 * if (!result.ok) closeWith(1002, `invalid update: ${result.reason}`)
 * else Y.applyUpdate(doc, bytes)
 * ```
 *
 * Longer than 400 lines because it is one decoder following Yjs's update
 * format field by field, in the order the bytes come; splitting it would
 * scatter that order over several files.
 *
 * @module security/validateUpdate
 */

/** Limits of {@link validateUpdateV1}; every one is optional. */
export interface UpdateLimits {
  /** Deepest nesting of `Any` and JSON values (arrays, objects). Default 100. */
  maxDepth?: number
  /** Most structs (items, GC, skips) in one update. Default: no limit beyond the input size. */
  maxStructs?: number
  /** Most delete ranges in one update. Default: no limit beyond the input size. */
  maxDeletes?: number
  /** Most distinct client ids in the structs section, and in the delete set. Default: no limit beyond the input size. */
  maxClients?: number
  /** Most subdocs (`ContentDoc`) in one update. Default 1000. */
  maxSubdocs?: number
  /**
   * Deepest chain of shared types of this update nested in one another
   * through explicit parent references (a type item whose parent is a type
   * item of the same update). Yjs deletes and garbage-collects nested types
   * recursively, so a deep nest overflows the stack. This sees one update
   * and explicit parents only: a nest built over several updates, or
   * through origins, is checked against the doc (`security/docGuard`).
   * Default 100.
   */
  maxTypeDepth?: number
  /**
   * Most map entries of one key of one parent that carry neither origin nor
   * right origin. Yjs walks the whole history chain of the key for each of
   * them, so many in one update cost quadratic time. A client writes at most
   * one such entry per key. This sees one update only; the count over the
   * doc is checked by `security/docGuard`. Default 1000.
   */
  maxKeyConflicts?: number
}

/**
 * The work of one validation, counted for tests of its linearity: bytes
 * read (string and byte contents count their length: they are decoded or
 * parsed once), characters of JSON scanned for nesting, and links between
 * the update's type items followed. Pass one to {@link validateUpdateV1};
 * it adds to `steps`.
 */
export interface ValidationWork {
  steps: number
}

/** Limits of {@link validateStateVector}. */
export interface StateVectorLimits {
  /** Most entries. Default: no limit beyond the input size. */
  maxClients?: number
}

/** Outcome of a validation: counts when the bytes are valid, a reason otherwise. */
export type UpdateValidation =
  | {
      ok: true
      structs: number
      deletes: number
      /** Per client id with structs in the update: the clock after its last struct (what `Y.parseUpdateMeta(update).to` gives). */
      ends: Map<number, number>
      /** Items whose content is a shared type. */
      typeItems: number
      /** Items without an origin that carry a parent key or a right origin (they may be map entries without an origin). */
      originless: number
      /** The origin of every item that has one, as flat `client, clock` pairs: where the items attach. */
      origins: number[]
      /** The update's items, in the order written: only from {@link validateUpdateWithItems}. */
      items?: UpdateItem[]
    }
  | { ok: false; reason: string }

/** An `ID` of a struct: client id and clock. */
export interface StructId {
  client: number
  clock: number
}

/**
 * One item (not GC, not skip) of a valid update, as far as checks against a
 * doc need it: where it is, whether it is a shared type, and how Yjs finds
 * its parent.
 */
export interface UpdateItem {
  client: number
  clock: number
  length: number
  /** The content is a shared type (`ContentType`). */
  isType: boolean
  /** Left origin; Yjs takes parent and key from it when present. */
  origin: StructId | null
  /** Right origin; Yjs takes parent and key from it when there is no origin. */
  rightOrigin: StructId | null
  /** Explicit parent (written only when there are no origins): a root type by name or a type item by id. */
  parent: { root: string } | StructId | null
  /** Explicit parent key (written only when there are no origins). */
  parentSub: string | null
}

/** Outcome of {@link validateStateVector}. */
export type StateVectorValidation = { ok: true; clients: number } | { ok: false; reason: string }

/** Default of {@link UpdateLimits.maxDepth}. */
export const DEFAULT_MAX_DEPTH = 100
/** Default of {@link UpdateLimits.maxSubdocs}. */
export const DEFAULT_MAX_SUBDOCS = 1000
/** Default of {@link UpdateLimits.maxTypeDepth}. */
export const DEFAULT_MAX_TYPE_DEPTH = 100
/** Default of {@link UpdateLimits.maxKeyConflicts}. */
export const DEFAULT_MAX_KEY_CONFLICTS = 1000

const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** Thrown inside the validator only; turned into `{ ok: false }`. */
class Invalid extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** A cursor over untrusted bytes whose every read is bounds-checked. */
class Reader {
  pos = 0
  /** Work done on this input (see {@link ValidationWork}). */
  steps = 0
  constructor(readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.pos
  }

  fail(what: string): never {
    throw new Invalid(`${what} at byte ${this.pos}`)
  }

  uint8(what: string): number {
    if (this.pos >= this.bytes.length) this.fail(`unexpected end of input reading ${what}`)
    this.steps++
    return this.bytes[this.pos++]
  }

  /** lib0 varUint: at most 8 bytes, value ≤ 2^53 − 1. */
  varUint(what: string): number {
    let num = 0
    let mult = 1
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.bytes.length) this.fail(`unexpected end of input in ${what}`)
      this.steps++
      const byte = this.bytes[this.pos++]
      num += (byte & 0x7f) * mult
      if (byte < 0x80) {
        if (num > MAX_SAFE) this.fail(`${what} exceeds 2^53 - 1`)
        return num
      }
      mult *= 128
    }
    return this.fail(`${what} is a varUint longer than 8 bytes`)
  }

  /** lib0 varInt (sign in bit 7 of the first byte): at most 8 bytes, |value| ≤ 2^53 − 1. */
  skipVarInt(what: string): void {
    let byte = this.uint8(what)
    let num = byte & 0x3f
    let mult = 64
    for (let i = 1; byte >= 0x80; i++) {
      if (i >= 8) this.fail(`${what} is a varInt longer than 8 bytes`)
      byte = this.uint8(what)
      num += (byte & 0x7f) * mult
      mult *= 128
    }
    if (num > MAX_SAFE) this.fail(`${what} exceeds 2^53 - 1`)
  }

  /** A count of elements that each take at least `minBytes` bytes. */
  count(what: string, minBytes = 1): number {
    const start = this.pos
    const n = this.varUint(what)
    if (n * minBytes > this.remaining) {
      this.pos = start
      this.fail(`${what} ${n} exceeds the ${this.remaining} bytes left`)
    }
    return n
  }

  /** A varUint length followed by that many bytes; returns the bytes (a view, not a copy). */
  varBytes(what: string): Uint8Array {
    const len = this.varUint(`length of ${what}`)
    if (len > this.remaining) this.fail(`${what} of ${len} bytes exceeds the ${this.remaining} bytes left`)
    const view = this.bytes.subarray(this.pos, this.pos + len)
    this.pos += len
    this.steps += len
    return view
  }

  /** A lib0 varString; must be valid UTF-8. */
  varString(what: string): string {
    const start = this.pos
    const bytes = this.varBytes(what)
    try {
      return utf8.decode(bytes)
    } catch {
      this.pos = start
      return this.fail(`${what} is not valid UTF-8`)
    }
  }

  skip(len: number, what: string): void {
    if (len > this.remaining) this.fail(`unexpected end of input in ${what}`)
    this.pos += len
    this.steps += len
  }
}

interface ResolvedLimits {
  maxDepth: number
  maxStructs: number
  maxDeletes: number
  maxClients: number
  maxSubdocs: number
  maxTypeDepth: number
  maxKeyConflicts: number
}

const resolve = (limits: UpdateLimits = {}): ResolvedLimits => ({
  maxDepth: limits.maxDepth ?? DEFAULT_MAX_DEPTH,
  maxStructs: limits.maxStructs ?? Infinity,
  maxDeletes: limits.maxDeletes ?? Infinity,
  maxClients: limits.maxClients ?? Infinity,
  maxSubdocs: limits.maxSubdocs ?? DEFAULT_MAX_SUBDOCS,
  maxTypeDepth: limits.maxTypeDepth ?? DEFAULT_MAX_TYPE_DEPTH,
  maxKeyConflicts: limits.maxKeyConflicts ?? DEFAULT_MAX_KEY_CONFLICTS,
})

// Item info byte (lib0 binary.BITn): content ref in the low 5 bits.
const BITS5 = 0x1f
const HAS_PARENT_SUB = 0x20
const HAS_RIGHT_ORIGIN = 0x40
const HAS_ORIGIN = 0x80
const GC_REF = 0
const SKIP_REF = 10

// Content refs (yjs contentRefs)
const CONTENT_DELETED = 1
const CONTENT_JSON = 2
const CONTENT_BINARY = 3
const CONTENT_STRING = 4
const CONTENT_EMBED = 5
const CONTENT_FORMAT = 6
const CONTENT_TYPE = 7
const CONTENT_ANY = 8
const CONTENT_DOC = 9

// Type refs (yjs typeRefs): Array, Map, Text, XmlElement, XmlFragment, XmlHook, XmlText
const TYPE_XML_ELEMENT = 3
const TYPE_XML_HOOK = 5
const TYPE_REF_MAX = 6

// lib0 readAny tags
const ANY_UNDEFINED = 127
const ANY_NULL = 126
const ANY_INTEGER = 125
const ANY_FLOAT32 = 124
const ANY_FLOAT64 = 123
const ANY_BIGINT = 122
const ANY_FALSE = 121
const ANY_TRUE = 120
const ANY_STRING = 119
const ANY_OBJECT = 118
const ANY_ARRAY = 117
const ANY_BYTES = 116

/** Keys Yjs writes into the options of a subdoc (`ContentDoc`), with the type each must have. */
const SUBDOC_OPTION_TYPES: Record<string, number[] | null> = {
  gc: [ANY_FALSE, ANY_TRUE],
  autoLoad: [ANY_FALSE, ANY_TRUE],
  shouldLoad: [ANY_FALSE, ANY_TRUE],
  meta: null,
  collectionid: [ANY_STRING, ANY_NULL],
}

/** Skips one lib0 `Any` value. */
const skipAny = (r: Reader, depth: number, limits: ResolvedLimits): void => {
  const tag = r.uint8('Any tag')
  switch (tag) {
    case ANY_UNDEFINED:
    case ANY_NULL:
    case ANY_FALSE:
    case ANY_TRUE:
      return
    case ANY_INTEGER:
      r.skipVarInt('Any integer')
      return
    case ANY_FLOAT32:
      r.skip(4, 'Any float32')
      return
    case ANY_FLOAT64:
    case ANY_BIGINT:
      r.skip(8, 'Any float64/bigint')
      return
    case ANY_STRING:
      r.varString('Any string')
      return
    case ANY_BYTES:
      r.varBytes('Any Uint8Array')
      return
    case ANY_OBJECT: {
      if (depth >= limits.maxDepth) r.fail(`Any value nested deeper than ${limits.maxDepth}`)
      const n = r.count('Any object size', 2)
      for (let i = 0; i < n; i++) {
        r.varString('Any object key')
        skipAny(r, depth + 1, limits)
      }
      return
    }
    case ANY_ARRAY: {
      if (depth >= limits.maxDepth) r.fail(`Any value nested deeper than ${limits.maxDepth}`)
      const n = r.count('Any array length')
      for (let i = 0; i < n; i++) skipAny(r, depth + 1, limits)
      return
    }
    default:
      r.pos--
      r.fail(`unknown Any tag ${tag}`)
  }
}

/** Reads the options object of a subdoc: an `Any` object with only the keys Yjs writes. */
const skipSubdocOptions = (r: Reader, limits: ResolvedLimits): void => {
  if (r.uint8('subdoc options') !== ANY_OBJECT) {
    r.pos--
    r.fail('subdoc options are not an object')
  }
  const n = r.count('subdoc options size', 2)
  for (let i = 0; i < n; i++) {
    const key = r.varString('subdoc option key')
    if (!Object.hasOwn(SUBDOC_OPTION_TYPES, key)) r.fail(`unknown subdoc option "${key.slice(0, 32)}"`)
    const allowed = SUBDOC_OPTION_TYPES[key]
    if (allowed && !allowed.includes(r.bytes[r.pos])) r.fail(`subdoc option "${key}" has the wrong type`)
    skipAny(r, 1, limits)
  }
}

/**
 * Checks a JSON text the way Yjs reads it (`JSON.parse`), after bounding its
 * nesting depth so that neither parsing nor Yjs' later `JSON.stringify` can
 * exhaust the stack.
 */
const checkJson = (r: Reader, text: string, what: string, limits: ResolvedLimits): void => {
  let depth = 0
  let inString = false
  r.steps += text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped char
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limits.maxDepth) r.fail(`${what} nested deeper than ${limits.maxDepth}`)
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  try {
    JSON.parse(text)
  } catch {
    r.fail(`${what} is not valid JSON`)
  }
}

/** Where a parent of an item is: a root type by name or a type item by id. */
type ParentRef = { root: string } | { client: number; clock: number }

/** Per-update state of {@link readStructs}. */
interface StructState {
  structs: number
  subdocs: number
  /** Type items of this update by `client:clock`, with the `client:clock` of their parent type (null: a root or unknown). */
  typeParents: Map<string, string | null>
  /** Origin-less map entries per parent and key. */
  keyConflicts: Map<string, number>
  typeItems: number
  originless: number
  origins: number[]
  /** Items of the update, collected only by {@link readUpdateItems} and {@link validateUpdateWithItems}. */
  items: UpdateItem[] | null
}

/** Reads an item's content; returns its length (the clocks it takes). */
const readContent = (r: Reader, ref: number, limits: ResolvedLimits, state: StructState): number => {
  switch (ref) {
    case CONTENT_DELETED: {
      const len = r.varUint('deleted length')
      if (len === 0) r.fail('deleted content of length 0')
      return len
    }
    case CONTENT_JSON: {
      const n = r.count('JSON content length')
      if (n === 0) r.fail('JSON content of length 0')
      for (let i = 0; i < n; i++) {
        const text = r.varString('JSON content')
        if (text !== 'undefined') checkJson(r, text, 'JSON content', limits)
      }
      return n
    }
    case CONTENT_BINARY:
      r.varBytes('binary content')
      return 1
    case CONTENT_STRING: {
      const text = r.varString('string content')
      if (text.length === 0) r.fail('string content of length 0')
      return text.length
    }
    case CONTENT_EMBED:
      checkJson(r, r.varString('embed content'), 'embed content', limits)
      return 1
    case CONTENT_FORMAT:
      r.varString('format key')
      checkJson(r, r.varString('format value'), 'format value', limits)
      return 1
    case CONTENT_TYPE: {
      const typeRef = r.varUint('type ref')
      if (typeRef > TYPE_REF_MAX) r.fail(`unknown type ref ${typeRef}`)
      if (typeRef === TYPE_XML_ELEMENT) r.varString('XmlElement node name')
      else if (typeRef === TYPE_XML_HOOK) r.varString('XmlHook name')
      return 1
    }
    case CONTENT_ANY: {
      const n = r.count('Any content length')
      if (n === 0) r.fail('Any content of length 0')
      for (let i = 0; i < n; i++) skipAny(r, 0, limits)
      return n
    }
    case CONTENT_DOC:
      if (++state.subdocs > limits.maxSubdocs) r.fail(`more than ${limits.maxSubdocs} subdocs`)
      r.varString('subdoc guid')
      skipSubdocOptions(r, limits)
      return 1
    default:
      return r.fail(`unknown content ref ${ref}`)
  }
}

/** Reads an `ID` (client, clock) that an item of `client` at `clock` refers to. */
const readId = (r: Reader, what: string, client: number, clock: number): StructId => {
  const refClient = r.varUint(`${what} client`)
  const refClock = r.varUint(`${what} clock`)
  // an item of a client only refers to its own earlier structs
  if (refClient === client && refClock >= clock) r.fail(`${what} ${refClient}:${refClock} does not precede its item ${client}:${clock}`)
  return { client: refClient, clock: refClock }
}

/** Reads one struct of `client` at `clock`; returns its length. */
const readStruct = (r: Reader, client: number, clock: number, limits: ResolvedLimits, state: StructState): number => {
  const info = r.uint8('struct info')
  const ref = info & BITS5
  if (ref === GC_REF || ref === SKIP_REF) {
    if (info !== ref) r.fail(`${ref === GC_REF ? 'GC' : 'skip'} struct with flags ${info}`)
    const len = r.varUint('struct length')
    if (len === 0) r.fail('struct of length 0')
    return len
  }
  const hasOrigin = (info & HAS_ORIGIN) !== 0
  const hasRightOrigin = (info & HAS_RIGHT_ORIGIN) !== 0
  const origin = hasOrigin ? readId(r, 'origin', client, clock) : null
  const rightOrigin = hasRightOrigin ? readId(r, 'right origin', client, clock) : null
  if (origin !== null) state.origins.push(origin.client, origin.clock)
  let parent: ParentRef | null = null
  let parentSub: string | null = null
  if (!hasOrigin && !hasRightOrigin) {
    const parentInfo = r.varUint('parent info')
    if (parentInfo === 1) parent = { root: r.varString('root type name') }
    else if (parentInfo === 0) parent = readId(r, 'parent', client, clock)
    else r.fail(`unknown parent info ${parentInfo}`)
    if (info & HAS_PARENT_SUB) parentSub = r.varString('parent key')
  }
  if (parent && parentSub !== null) {
    const where = 'root' in parent ? `r${parent.root}` : `i${parent.client}:${parent.clock}`
    const key = `${where}\u0000${parentSub}`
    const n = (state.keyConflicts.get(key) ?? 0) + 1
    if (n > limits.maxKeyConflicts) r.fail(`more than ${limits.maxKeyConflicts} origin-less entries for one map key`)
    state.keyConflicts.set(key, n)
  }
  if (!hasOrigin && (hasRightOrigin || parentSub !== null)) state.originless++
  if (ref === CONTENT_TYPE) {
    state.typeItems++
    state.typeParents.set(`${client}:${clock}`, parent && !('root' in parent) ? `${parent.client}:${parent.clock}` : null)
  }
  const length = readContent(r, ref, limits, state)
  state.items?.push({ client, clock, length, isType: ref === CONTENT_TYPE, origin, rightOrigin, parent, parentSub })
  return length
}

/**
 * Deepest nesting of the type items of one update through their explicit
 * parent references, whatever order the clients come in. Linear: each type
 * item's depth is computed once (iteratively, so a long chain cannot exhaust
 * the stack); a reference cycle counts as ending there.
 */
const deepestTypeNesting = (r: Reader, typeParents: Map<string, string | null>, max: number): number => {
  const depth = new Map<string, number>()
  let deepest = 0
  for (const start of typeParents.keys()) {
    const chain: string[] = []
    let key: string | null = start
    let base = 0
    while (key !== null && typeParents.has(key)) {
      const known = depth.get(key)
      if (known !== undefined) {
        base = known
        break
      }
      depth.set(key, -1) // in progress: a cycle ends here
      r.steps++
      chain.push(key)
      key = typeParents.get(key) ?? null
    }
    if (base < 0) base = 0
    for (let i = chain.length - 1; i >= 0; i--) depth.set(chain[i], ++base)
    deepest = Math.max(deepest, base)
    if (deepest > max) return deepest
  }
  return deepest
}

const newStructState = (items: UpdateItem[] | null): StructState => ({
  structs: 0,
  subdocs: 0,
  typeParents: new Map(),
  keyConflicts: new Map(),
  typeItems: 0,
  originless: 0,
  origins: [],
  items,
})

/** Reads the structs section of an update into `state`. */
const readStructs = (r: Reader, limits: ResolvedLimits, ends: Map<number, number>, state: StructState): void => {
  const clients = r.count('number of clients', 3)
  if (clients > limits.maxClients) r.fail(`more than ${limits.maxClients} clients`)
  const seen = new Set<number>()
  for (let i = 0; i < clients; i++) {
    const structs = r.count('number of structs', 2)
    const client = r.varUint('client id')
    if (seen.has(client)) r.fail(`client ${client} appears twice in the structs section`)
    seen.add(client)
    let clock = r.varUint('start clock')
    state.structs += structs
    if (state.structs > limits.maxStructs) r.fail(`more than ${limits.maxStructs} structs`)
    for (let j = 0; j < structs; j++) {
      const len = readStruct(r, client, clock, limits, state)
      if (len > MAX_SAFE - clock) r.fail(`clock of client ${client} exceeds 2^53 - 1`)
      clock += len
    }
    if (structs > 0) ends.set(client, clock)
  }
  if (deepestTypeNesting(r, state.typeParents, limits.maxTypeDepth) > limits.maxTypeDepth) {
    r.fail(`shared types nested deeper than ${limits.maxTypeDepth}`)
  }
}

/** Reads the delete set of an update; returns the number of delete ranges. */
const readDeleteSet = (r: Reader, limits: ResolvedLimits): number => {
  const clients = r.count('number of clients in the delete set', 2)
  if (clients > limits.maxClients) r.fail(`more than ${limits.maxClients} clients in the delete set`)
  const seen = new Set<number>()
  let deletes = 0
  for (let i = 0; i < clients; i++) {
    const client = r.varUint('delete set client id')
    if (seen.has(client)) r.fail(`client ${client} appears twice in the delete set`)
    seen.add(client)
    const ranges = r.count('number of delete ranges', 2)
    deletes += ranges
    if (deletes > limits.maxDeletes) r.fail(`more than ${limits.maxDeletes} delete ranges`)
    let end = 0
    for (let j = 0; j < ranges; j++) {
      const clock = r.varUint('delete clock')
      const len = r.varUint('delete length')
      if (len === 0) r.fail('delete range of length 0')
      if (clock < end) r.fail(`delete ranges of client ${client} overlap or are not sorted`)
      if (len > MAX_SAFE - clock) r.fail(`delete range of client ${client} exceeds 2^53 - 1`)
      end = clock + len
    }
  }
  return deletes
}

/**
 * Checks that `update` is a well-formed Yjs V1 update within `limits`, in
 * time and memory linear in its size, without calling Yjs. `work`, if
 * given, counts the steps taken (tests assert linearity on it).
 */
export const validateUpdateV1 = (update: Uint8Array, limits?: UpdateLimits, work?: ValidationWork): UpdateValidation => {
  if (!(update instanceof Uint8Array)) return { ok: false, reason: 'update is not a Uint8Array' }
  const r = new Reader(update)
  try {
    return validate(r, limits, null)
  } finally {
    if (work) work.steps += r.steps
  }
}

/**
 * {@link validateUpdateV1}, and on success also the update's items (what
 * {@link readUpdateItems} reads), from the same pass: for callers that check
 * the update against a doc next (`security/docGuard`), which then need not
 * read it a second time. Costs one small object per item.
 */
export const validateUpdateWithItems = (update: Uint8Array, limits?: UpdateLimits): UpdateValidation => {
  if (!(update instanceof Uint8Array)) return { ok: false, reason: 'update is not a Uint8Array' }
  return validate(new Reader(update), limits, [])
}

/** {@link validateUpdateV1} on a reader of the bytes; collects the items into `items` unless it is null. */
const validate = (r: Reader, limits: UpdateLimits | undefined, items: UpdateItem[] | null): UpdateValidation => {
  try {
    const resolved = resolve(limits)
    const ends = new Map<number, number>()
    const state = newStructState(items)
    readStructs(r, resolved, ends, state)
    const deletes = readDeleteSet(r, resolved)
    if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes`)
    const { structs, typeItems, originless, origins } = state
    // two literals, not a spread of one into the other: a spread copies property by property (~2 % of the relay's main thread in a fan-out profile)
    return items === null
      ? { ok: true, structs, deletes, ends, typeItems, originless, origins }
      : { ok: true, structs, deletes, ends, typeItems, originless, origins, items }
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: error.message }
    // only with a caller's maxDepth too large for the stack
    if (error instanceof RangeError) return { ok: false, reason: `rejected: ${error.message}` }
    throw error
  }
}

/**
 * The items of an update that {@link validateUpdateV1} accepted, in the
 * order they are written (by client, each client's by clock). A second,
 * linear pass, run only when a check against the doc needs it; null if the
 * bytes are not a valid update after all.
 */
export const readUpdateItems = (update: Uint8Array): UpdateItem[] | null => {
  const r = new Reader(update)
  const state = newStructState([])
  try {
    readStructs(r, resolve({ maxTypeDepth: Infinity, maxKeyConflicts: Infinity }), new Map(), state)
    return state.items
  } catch (error) {
    if (error instanceof Invalid || error instanceof RangeError) return null
    throw error
  }
}

/**
 * Checks that `stateVector` is a well-formed encoded state vector
 * (`Y.encodeStateVector`): a count, then that many distinct `(client, clock)`
 * varUint pairs, nothing after. Linear time, never calls Yjs.
 */
export const validateStateVector = (stateVector: Uint8Array, limits: StateVectorLimits = {}): StateVectorValidation => {
  if (!(stateVector instanceof Uint8Array)) return { ok: false, reason: 'state vector is not a Uint8Array' }
  const r = new Reader(stateVector)
  try {
    const n = r.count('number of state vector entries', 2)
    if (n > (limits.maxClients ?? Infinity)) r.fail(`more than ${limits.maxClients} state vector entries`)
    const seen = new Set<number>()
    for (let i = 0; i < n; i++) {
      const client = r.varUint('state vector client id')
      if (seen.has(client)) r.fail(`client ${client} appears twice in the state vector`)
      seen.add(client)
      r.varUint('state vector clock')
    }
    if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes`)
    return { ok: true, clients: n }
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: error.message }
    throw error
  }
}
