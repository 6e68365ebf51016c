/**
 * The V1 update validator (`src/security/validateUpdate.ts`): every update
 * Yjs makes passes; the yjs#687 payloads, truncations, inflated counts and
 * lengths, V2 bytes and random bytes are rejected quickly — and whatever is
 * accepted is shown, in a child process with a timeout, to apply without
 * hanging.
 *
 * Seeded: a fresh seed every run; it is printed and replays with
 * `SEED=<n> npx vitest run apps/relay/test/validateUpdate.test.ts`.
 *
 * The child-process checks run the compiled validator in `apps/relay/dist`:
 * build first (`npx tsc -b apps/relay`).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import { afterAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_KEY_CONFLICTS,
  DEFAULT_MAX_TYPE_DEPTH,
  readUpdateItems,
  validateStateVector,
  validateUpdateV1,
  validateUpdateWithItems,
  type UpdateLimits,
  type ValidationWork,
} from '../src/security/validateUpdate.js'
import {
  ISSUE_687_PAYLOADS,
  craftRandomUpdate,
  fromHex,
  mutate,
  randomEditCorpus,
  toHex,
  type AttackedApi,
} from '../../../test/fuzz/updateCorpus.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '../../..')
const SEED = process.env.SEED !== undefined ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`validateUpdate tests: seed ${SEED} (replay with SEED=${SEED})`)

const tempDir = mkdtempSync(path.join(os.tmpdir(), 'concord-validate-'))
afterAll(() => rmSync(tempDir, { recursive: true, force: true }))

/** The corpus of valid updates, built once. */
const corpus = randomEditCorpus(prng.create(SEED), 1500)

/** A small doc state the accepted inputs are also applied to (its clients are the corpus' clients). */
const smallBase = (() => {
  const doc = new Y.Doc()
  for (const update of corpus.updates.slice(0, 60)) Y.applyUpdate(doc, update)
  return Y.encodeStateAsUpdate(doc)
})()

/** Runs a node script in a child process; resolves with its output, or `timedOut` after `timeoutMs` (then it is killed). */
const runChild = (
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; code: number | null; timedOut: boolean; ms: number }> =>
  new Promise((resolve) => {
    const start = Date.now()
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ stdout, stderr, code, timedOut, ms: Date.now() - start })
    })
  })

interface ApplyReport {
  inputs: number
  accepted: number
  freshThrows: Array<{ message: string; hex: string }>
  stateThrows: Record<string, { count: number; hex: string }>
  slowestMs: number
  slowestInput: string
}

/**
 * Proves in a child process that every input the validator accepts applies
 * with `Y.applyUpdate`: without throwing on a fresh doc, and within 1 s on a
 * fresh doc and on a doc holding real state. The child is killed after
 * `timeoutMs`, so a hang fails instead of blocking the suite.
 */
const expectAcceptedApplySafely = async (inputs: Uint8Array[], timeoutMs = 60_000): Promise<ApplyReport & { childMs: number }> => {
  const file = path.join(tempDir, `inputs-${Math.random().toString(36).slice(2)}.json`)
  const hexes = [...new Set(inputs.map(toHex))]
  writeFileSync(file, JSON.stringify({ base: toHex(smallBase), inputs: hexes }))
  const run = await runChild([path.join(repoRoot, 'test/fuzz/applyAccepted.mjs'), file], timeoutMs)
  if (run.timedOut) {
    const [index, target] = run.stderr.trim().split('\n').at(-1)?.split(' ') ?? []
    expect.fail(
      `applying accepted inputs did not finish in ${timeoutMs} ms: hung on input ${index} (${target} doc): ${hexes[Number(index)]}`,
    )
  }
  expect(run.code, run.stderr.slice(-2000)).toBe(0)
  const report = { ...(JSON.parse(run.stdout) as ApplyReport), childMs: run.ms }
  expect(report.freshThrows, 'accepted inputs that Yjs throws on, applied to a fresh doc').toEqual([])
  // a hang guard on Yjs' own work (not the validator's), in a child process: a second is far beyond any real apply
  expect(report.slowestMs, `slowest apply: ${report.slowestInput}`).toBeLessThan(1000)
  return report
}

/** Number of delete ranges in an update, as Yjs reads them. */
const countDeletes = (update: Uint8Array): number => {
  let n = 0
  for (const ranges of Y.decodeUpdate(update).ds.clients.values()) n += ranges.length
  return n
}

/** Builds bytes with a lib0 encoder. */
const bytes = (write: (e: encoding.Encoder) => void): Uint8Array => {
  const e = encoding.createEncoder()
  write(e)
  return encoding.toUint8Array(e)
}

/** An update of one client's structs (written by `write`) and an empty delete set. */
const oneClient = (
  structs: number,
  client: number,
  clock: number,
  write: (e: encoding.Encoder) => void,
  ds?: (e: encoding.Encoder) => void,
): Uint8Array =>
  bytes((e) => {
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, structs)
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
    write(e)
    if (ds) ds(e)
    else encoding.writeVarUint(e, 0)
  })

/** Writes an item in root type `root` (optionally under `key`) with the given content ref; `content` writes the content. */
const rootItem = (e: encoding.Encoder, ref: number, root: string, content: (e: encoding.Encoder) => void, key?: string): void => {
  encoding.writeUint8(e, ref | (key === undefined ? 0 : 0x20))
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, root)
  if (key !== undefined) encoding.writeVarString(e, key)
  content(e)
}

/** Writes `Any` content of one value written by `value`. */
const anyContent =
  (value: (e: encoding.Encoder) => void) =>
  (e: encoding.Encoder): void => {
    encoding.writeVarUint(e, 1)
    value(e)
  }

const expectRejected = (update: Uint8Array, reason: RegExp): void => {
  const result = validateUpdateV1(update)
  expect(result.ok, `accepted: ${toHex(update)}`).toBe(false)
  if (!result.ok) expect(result.reason).toMatch(reason)
}

describe('valid updates made by Yjs pass', () => {
  it('every update of seeded random edits across every Yjs type passes, with the struct and delete counts and client end clocks Yjs reads', () => {
    const seen = new Set<string>()
    const failures: string[] = []
    let bytesTotal = 0
    for (const update of corpus.updates) {
      bytesTotal += update.length
      const copy = update.slice()
      const result = validateUpdateV1(update)
      const decoded = Y.decodeUpdate(update)
      if (!result.ok) failures.push(`${result.reason}: ${toHex(update)}`)
      else if (result.structs !== decoded.structs.length || result.deletes !== countDeletes(update))
        failures.push(`wrong counts: ${toHex(update)}`)
      else if (JSON.stringify([...result.ends]) !== JSON.stringify([...Y.parseUpdateMeta(update).to]))
        failures.push(`wrong ends: ${toHex(update)}`)
      // the validator never writes to its input
      if (Buffer.compare(update, copy) !== 0) failures.push(`input changed: ${toHex(copy)}`)
      for (const struct of decoded.structs) {
        seen.add(struct instanceof Y.Item ? struct.content.constructor.name : struct.constructor.name)
        if (struct instanceof Y.Item && struct.content instanceof Y.ContentType) seen.add(struct.content.type.constructor.name)
      }
    }
    console.log(`  ${corpus.updates.length} valid updates, ${(bytesTotal / 1024).toFixed(0)} KiB`)
    expect(failures.slice(0, 5)).toEqual([])
    expect(corpus.updates.length).toBeGreaterThan(2000)
    // every struct kind and content type Yjs still writes (ContentJSON is legacy: see the crafted updates below)
    for (const kind of [
      'GC',
      'Skip',
      'ContentDeleted',
      'ContentBinary',
      'ContentString',
      'ContentEmbed',
      'ContentFormat',
      'ContentType',
      'ContentAny',
      'ContentDoc',
    ]) {
      expect(seen, kind).toContain(kind)
    }
    for (const type of ['YArray', 'YMap', 'YText', 'YXmlElement', 'YXmlText', 'YXmlHook']) expect(seen, type).toContain(type)
  })

  it('applying the validated updates gives the same docs as the peers that made them', () => {
    const replay = new Y.Doc()
    for (const update of corpus.updates) {
      expect(validateUpdateV1(update).ok).toBe(true)
      Y.applyUpdate(replay, update)
    }
    const merged = new Y.Doc()
    for (const doc of corpus.docs) Y.applyUpdate(merged, Y.encodeStateAsUpdate(doc))
    expect(Y.encodeStateVector(replay)).toEqual(Y.encodeStateVector(merged))
    expect(replay.getText('text').toDelta()).toEqual(merged.getText('text').toDelta())
    expect(replay.getArray('list').length).toBe(merged.getArray('list').length)
    expect(replay.getXmlFragment('xml').toString()).toBe(merged.getXmlFragment('xml').toString())
    expect([...replay.getMap('map').keys()].sort()).toEqual([...merged.getMap('map').keys()].sort())
  })

  it('empty docs, empty diffs, legacy ContentJSON and every type ref pass', () => {
    expect(validateUpdateV1(Y.encodeStateAsUpdate(new Y.Doc()))).toEqual({
      ok: true,
      structs: 0,
      deletes: 0,
      ends: new Map(),
      typeItems: 0,
      originless: 0,
      origins: [],
    })
    const doc = corpus.docs[0]
    expect(validateUpdateV1(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc)))).toMatchObject({ ok: true, structs: 0 })
    const json = oneClient(1, 7, 0, (e) =>
      rootItem(e, 2, 'list', (c) => {
        encoding.writeVarUint(c, 3)
        for (const s of ['{"a":[1,{"b":null}]}', 'undefined', '"x"']) encoding.writeVarString(c, s)
      }),
    )
    expect(validateUpdateV1(json)).toMatchObject({ ok: true, structs: 1, deletes: 0 })
    const applied = new Y.Doc()
    Y.applyUpdate(applied, json)
    expect(applied.getArray('list').toArray()).toEqual([{ a: [1, { b: null }] }, undefined, 'x'])
    const types = oneClient(7, 8, 0, (e) => {
      for (let ref = 0; ref <= 6; ref++) {
        rootItem(e, 7, 'list', (c) => {
          encoding.writeVarUint(c, ref)
          if (ref === 3 || ref === 5) encoding.writeVarString(c, 'node')
        })
      }
    })
    expect(validateUpdateV1(types)).toMatchObject({ ok: true, structs: 7, deletes: 0 })
  })

  it('structurally valid updates with random semantics pass', () => {
    const gen = prng.create(SEED + 1)
    for (let i = 0; i < 3000; i++) {
      const update = craftRandomUpdate(gen)
      expect(validateUpdateV1(update), toHex(update)).toMatchObject({ ok: true })
    }
  })
})

describe('yjs#687 / PR #688 payloads', () => {
  for (const payload of ISSUE_687_PAYLOADS) {
    it(`${payload.name} (${payload.what}; hangs Y.${payload.attacks}) is rejected (a hang would hit the test timeout)`, () => {
      const update = fromHex(payload.hex)
      const result = validateUpdateV1(update)
      expect(result.ok).toBe(false)
      // also as a state vector, and wrapped after a valid prefix
      expect(validateStateVector(update).ok).toBe(false)
      const wrapped = new Uint8Array([...Y.encodeStateAsUpdate(new Y.Doc()), ...update])
      expect(validateUpdateV1(wrapped).ok).toBe(false)
    })
  }

  it('the payloads are real: the attacked Yjs APIs do not return within 2 s (child processes)', async () => {
    const script = (hex: string, api: AttackedApi): string => `
      import * as Y from 'yjs'
      const buf = new Uint8Array(Buffer.from('${hex}', 'hex'))
      try {
        ${
          api === 'mergeUpdates'
            ? 'Y.mergeUpdates([Y.encodeStateAsUpdate(new Y.Doc()), buf])'
            : api === 'mergeUpdatesV2'
              ? 'Y.mergeUpdatesV2([Y.encodeStateAsUpdateV2(new Y.Doc()), buf])'
              : api === 'applyUpdateV2'
                ? 'Y.applyUpdateV2(new Y.Doc(), buf)'
                : 'Y.applyUpdate(new Y.Doc(), buf)'
        }
        console.log('returned')
      } catch (e) { console.log('threw ' + e.message) }`
    // yjs 13.6.33 already throws on the GC-length payload; the others hang (or die of memory)
    const hanging = ISSUE_687_PAYLOADS.filter((p) => p.name !== 'testShouldntAcceptTooLargeGCItems')
    const runs = await Promise.all(
      hanging.map((p) => runChild(['--max-old-space-size=256', '--input-type=module', '-e', script(p.hex, p.attacks)], 2000)),
    )
    runs.forEach((run, i) => {
      const { name, attacks } = hanging[i]
      const outcome = run.timedOut ? 'did not return in 2 s' : run.stdout.trim() || `died (exit ${run.code})`
      console.log(`  ${name}: Y.${attacks} ${outcome}`)
      expect(run.stdout, `${name}: Y.${attacks} returned`).not.toMatch(/returned|threw/)
    })
  }, 20_000)
})

describe('malformed and hostile input', () => {
  it('every strict prefix of a valid update is rejected', () => {
    const gen = prng.create(SEED + 7)
    const accepted: string[] = []
    let prefixes = 0
    for (const update of corpus.updates.filter((_, i) => i % 10 === 0)) {
      // every prefix of small updates, 200 random prefixes of large ones
      const lengths =
        update.length <= 2000
          ? Array.from({ length: update.length }, (_, i) => i)
          : Array.from({ length: 200 }, () => prng.uint32(gen, 0, update.length - 1))
      for (const len of lengths) {
        if (validateUpdateV1(update.subarray(0, len)).ok) accepted.push(`prefix ${len} of ${toHex(update)}`)
        prefixes++
      }
    }
    expect(accepted.slice(0, 3)).toEqual([])
    expect(prefixes).toBeGreaterThan(10_000)
  })

  it('a valid update followed by anything is rejected (no trailing bytes)', () => {
    const gen = prng.create(SEED + 2)
    for (const update of corpus.updates.slice(0, 500)) {
      const tail = prng.uint8Array(gen, prng.uint32(gen, 1, 8))
      expectRejected(new Uint8Array([...update, ...tail]), /trailing bytes/)
    }
  })

  it('counts and lengths inflated at every varUint position: rejected, or accepted and safe to apply', async () => {
    const values = [2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n, 65_535n, 128n, 1n]
    const accepted: Uint8Array[] = []
    let tried = 0
    for (const update of corpus.updates
      .filter((u) => u.length <= 600)
      .filter((_, i) => i % 10 === 0)
      .slice(0, 60)) {
      for (let at = 0; at < update.length; at++) {
        for (const value of values) {
          const b = [...update]
          let end = at
          while (end < b.length && b[end++] >= 0x80);
          const encoded: number[] = []
          for (let v = value; ; v >>= 7n) {
            if (v < 0x80n) {
              encoded.push(Number(v))
              break
            }
            encoded.push(Number(v & 0x7fn) | 0x80)
          }
          b.splice(at, end - at, ...encoded)
          const inflated = new Uint8Array(b)
          tried++
          if (validateUpdateV1(inflated).ok) accepted.push(inflated)
        }
      }
    }
    const report = await expectAcceptedApplySafely(accepted)
    console.log(`  inflation: ${tried} inputs, ${report.accepted} accepted, all applied safely (slowest ${report.slowestMs.toFixed(1)} ms)`)
    expect(tried).toBeGreaterThan(10_000)
  }, 60_000)

  it('V2 updates given to the V1 validator: rejected, or accepted and safe to apply', async () => {
    const v2 = [
      ...corpus.docs.map((doc) => Y.encodeStateAsUpdateV2(doc)),
      ...corpus.updates.filter((_, i) => i % 3 === 0).map((u) => Y.convertUpdateFormatV1ToV2(u)),
    ]
    const accepted = v2.filter((u) => validateUpdateV1(u).ok)
    console.log(`  V2 as V1: ${v2.length} inputs, ${accepted.length} accepted`)
    // a V2 update is almost never a well-formed V1 update
    expect(accepted.length).toBeLessThan(v2.length / 20)
    await expectAcceptedApplySafely(accepted)
  }, 60_000)

  it('random bytes: rejected, or accepted and safe to apply', async () => {
    const gen = prng.create(SEED + 3)
    const accepted: Uint8Array[] = []
    const n = 50_000
    // half uniform bytes, half small ones (counts, clocks and info bytes of real updates are small)
    const byte = (skewed: boolean): number =>
      skewed ? prng.oneOf(gen, [0, 0, 1, 1, 2, 3, 4, 7, 8, 10, 0x21, 0x28, 0x61, 0x77, 0x7d, 0x7e, 0x84]) : prng.uint32(gen, 0, 255)
    for (let i = 0; i < n; i++) {
      const skewed = prng.bool(gen)
      const update = Uint8Array.from({ length: prng.uint32(gen, 0, 48) }, () => byte(skewed))
      if (validateUpdateV1(update).ok) accepted.push(update)
    }
    console.log(`  random bytes: ${n} inputs, ${accepted.length} accepted`)
    await expectAcceptedApplySafely(accepted)
  }, 60_000)

  it('seeded mutations of valid and crafted updates: rejected, or accepted and safe to apply', async () => {
    const gen = prng.create(SEED + 4)
    const small = corpus.updates.filter((u) => u.length <= 4096)
    const accepted: Uint8Array[] = []
    const n = 30_000
    const start = performance.now()
    for (let i = 0; i < n; i++) {
      const source = prng.bool(gen) ? prng.oneOf(gen, small) : craftRandomUpdate(gen)
      let { bytes: input } = mutate(gen, source, prng.oneOf(gen, small))
      if (prng.bool(gen)) input = mutate(gen, input).bytes
      if (validateUpdateV1(input).ok) accepted.push(input)
    }
    const validateMs = performance.now() - start
    const report = await expectAcceptedApplySafely(accepted)
    const stateThrows = Object.entries(report.stateThrows).map(([m, { count }]) => `${m} ×${count}`)
    console.log(
      `  mutations: ${n} inputs (mutated and validated in ${validateMs.toFixed(0)} ms), ${report.accepted} accepted and applied in ${report.childMs} ms, slowest apply ${report.slowestMs.toFixed(1)} ms;` +
        ` Yjs threw on a doc with state: ${stateThrows.join('; ') || 'never'}`,
    )
  }, 90_000)

  it('validating with items gives the same verdict and counts as validateUpdateV1, and the items readUpdateItems reads, for valid, mutated and crafted input', () => {
    const gen = prng.create(SEED + 6)
    const small = corpus.updates.filter((u) => u.length <= 4096)
    const inputs = [...corpus.updates.slice(0, 500)]
    for (let i = 0; i < 3000; i++) inputs.push(mutate(gen, prng.oneOf(gen, small), prng.oneOf(gen, small)).bytes, craftRandomUpdate(gen))
    let withItems = 0
    for (const input of inputs) {
      const plain = validateUpdateV1(input, { maxTypeDepth: 5, maxKeyConflicts: 3 })
      const both = validateUpdateWithItems(input, { maxTypeDepth: 5, maxKeyConflicts: 3 })
      if (!plain.ok || !both.ok) {
        expect(both, toHex(input)).toEqual(plain)
        continue
      }
      const { items, ...counts } = both
      expect(counts, toHex(input)).toEqual(plain)
      expect(items, toHex(input)).toEqual(readUpdateItems(input))
      if (items!.length > 0) withItems++
    }
    expect(withItems).toBeGreaterThan(500)
  })

  it('structurally valid random updates apply without hanging, alone and in sequence', async () => {
    const gen = prng.create(SEED + 5)
    const inputs = Array.from({ length: 3000 }, () => craftRandomUpdate(gen))
    await expectAcceptedApplySafely(inputs)
  }, 60_000)

  const U = (n: number) => (e: encoding.Encoder) => encoding.writeVarUint(e, n)
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty input', new Uint8Array(), /end of input/],
    ['client count larger than the input', bytes((e) => encoding.writeVarUint(e, 1000)), /exceeds/],
    ['struct count larger than the input', oneClient(1_000_000, 1, 0, () => {}), /exceeds/],
    ['varUint longer than 8 bytes', new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0]), /longer than 8 bytes/],
    ['varUint above 2^53 - 1', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]), /exceeds 2\^53/],
    ['varUint running off the end', new Uint8Array([0x80]), /end of input/],
    ['struct clock overflowing 2^53 - 1', oneClient(1, 1, 2 ** 53 - 2, (e) => rootItem(e, 1, 'a', U(5))), /exceeds 2\^53/],
    ['GC of length 0', oneClient(1, 1, 0, (e) => (encoding.writeUint8(e, 0), encoding.writeVarUint(e, 0))), /length 0/],
    ['skip of length 0', oneClient(1, 1, 0, (e) => (encoding.writeUint8(e, 10), encoding.writeVarUint(e, 0))), /length 0/],
    ['GC with flag bits', oneClient(1, 1, 0, (e) => (encoding.writeUint8(e, 0x80), encoding.writeVarUint(e, 1))), /flags/],
    ['unknown content ref 11', oneClient(1, 1, 0, (e) => rootItem(e, 11, 'a', U(1))), /content ref 11/],
    ['unknown content ref 31', oneClient(1, 1, 0, (e) => rootItem(e, 31, 'a', U(1))), /content ref 31/],
    ['unknown parent info 2', oneClient(1, 1, 0, (e) => (encoding.writeUint8(e, 1), encoding.writeVarUint(e, 2))), /parent info/],
    ['deleted content of length 0', oneClient(1, 1, 0, (e) => rootItem(e, 1, 'a', U(0))), /length 0/],
    ['empty string content', oneClient(1, 1, 0, (e) => rootItem(e, 4, 'a', (c) => encoding.writeVarString(c, ''))), /length 0/],
    [
      'invalid UTF-8 in a string',
      oneClient(1, 1, 0, (e) => rootItem(e, 4, 'a', (c) => encoding.writeVarUint8Array(c, new Uint8Array([0xc3, 0x28])))),
      /UTF-8/,
    ],
    [
      'invalid UTF-8 in a root name',
      oneClient(
        1,
        1,
        0,
        (e) => (
          encoding.writeUint8(e, 1),
          encoding.writeVarUint(e, 1),
          encoding.writeVarUint8Array(e, new Uint8Array([0xff])),
          encoding.writeVarUint(e, 1)
        ),
      ),
      /UTF-8/,
    ],
    [
      'lone surrogate encoded as UTF-8',
      oneClient(1, 1, 0, (e) => rootItem(e, 4, 'a', (c) => encoding.writeVarUint8Array(c, new Uint8Array([0xed, 0xa0, 0x80])))),
      /UTF-8/,
    ],
    [
      'string length beyond the input',
      oneClient(1, 1, 0, (e) => rootItem(e, 4, 'a', (c) => (encoding.writeVarUint(c, 50), encoding.writeUint8(c, 0x61)))),
      /exceeds/,
    ],
    ['binary length beyond the input', oneClient(1, 1, 0, (e) => rootItem(e, 3, 'a', U(2 ** 40))), /exceeds/],
    [
      'JSON that does not parse',
      oneClient(1, 1, 0, (e) => rootItem(e, 2, 'a', (c) => (encoding.writeVarUint(c, 1), encoding.writeVarString(c, '{"a":')))),
      /not valid JSON/,
    ],
    [
      'embed that does not parse',
      oneClient(1, 1, 0, (e) => rootItem(e, 5, 'a', (c) => encoding.writeVarString(c, 'nope'))),
      /not valid JSON/,
    ],
    [
      'format value that does not parse',
      oneClient(1, 1, 0, (e) => rootItem(e, 6, 'a', (c) => (encoding.writeVarString(c, 'bold'), encoding.writeVarString(c, '{')))),
      /not valid JSON/,
    ],
    [
      'JSON nested too deep',
      oneClient(1, 1, 0, (e) => rootItem(e, 5, 'a', (c) => encoding.writeVarString(c, '['.repeat(5000) + ']'.repeat(5000)))),
      /nested deeper/,
    ],
    ['JSON content count of 0', oneClient(1, 1, 0, (e) => rootItem(e, 2, 'a', U(0))), /length 0/],
    ['unknown type ref 7', oneClient(1, 1, 0, (e) => rootItem(e, 7, 'a', U(7))), /type ref 7/],
    [
      'Any with an unknown tag',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          8,
          'a',
          anyContent((c) => encoding.writeUint8(c, 42)),
        ),
      ),
      /Any tag 42/,
    ],
    ['Any content count of 0', oneClient(1, 1, 0, (e) => rootItem(e, 8, 'a', U(0))), /length 0/],
    [
      'Any array longer than the input',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          8,
          'a',
          anyContent((c) => (encoding.writeUint8(c, 117), encoding.writeVarUint(c, 2 ** 32))),
        ),
      ),
      /exceeds/,
    ],
    [
      'Any object larger than the input',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          8,
          'a',
          anyContent((c) => (encoding.writeUint8(c, 118), encoding.writeVarUint(c, 100))),
        ),
      ),
      /exceeds/,
    ],
    [
      'Any integer above 2^53',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          8,
          'a',
          anyContent((c) => {
            encoding.writeUint8(c, 125)
            for (let i = 0; i < 7; i++) encoding.writeUint8(c, 0xff)
            encoding.writeUint8(c, 0x7f)
          }),
        ),
      ),
      /exceeds 2\^53|longer than 8/,
    ],
    [
      'Any float64 cut short',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          8,
          'a',
          anyContent((c) => (encoding.writeUint8(c, 123), encoding.writeUint8(c, 1))),
        ),
      ),
      /end of input/,
    ],
    [
      'Any nested too deep',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          8,
          'a',
          anyContent((c) => {
            for (let i = 0; i < 5000; i++) {
              encoding.writeUint8(c, 117)
              encoding.writeVarUint(c, 1)
            }
            encoding.writeUint8(c, 126)
          }),
        ),
      ),
      /nested deeper/,
    ],
    [
      'subdoc options that are not an object',
      oneClient(1, 1, 0, (e) => rootItem(e, 9, 'a', (c) => (encoding.writeVarString(c, 'guid'), encoding.writeUint8(c, 126)))),
      /not an object/,
    ],
    [
      'subdoc option that Yjs never writes',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          9,
          'a',
          (c) => (
            encoding.writeVarString(c, 'guid'),
            encoding.writeUint8(c, 118),
            encoding.writeVarUint(c, 1),
            encoding.writeVarString(c, 'gcFilter'),
            encoding.writeUint8(c, 120)
          ),
        ),
      ),
      /unknown subdoc option/,
    ],
    [
      'subdoc option of the wrong type',
      oneClient(1, 1, 0, (e) =>
        rootItem(
          e,
          9,
          'a',
          (c) => (
            encoding.writeVarString(c, 'guid'),
            encoding.writeUint8(c, 118),
            encoding.writeVarUint(c, 1),
            encoding.writeVarString(c, 'gc'),
            encoding.writeUint8(c, 126)
          ),
        ),
      ),
      /wrong type/,
    ],
    [
      'origin pointing at its own item',
      oneClient(1, 1, 5, (e) => (encoding.writeUint8(e, 0x84), U(1)(e), U(5)(e), encoding.writeVarString(e, 'x'))),
      /does not precede/,
    ],
    [
      'parent pointing forward in its own client',
      oneClient(1, 1, 5, (e) => (encoding.writeUint8(e, 4), U(0)(e), U(1)(e), U(9)(e), encoding.writeVarString(e, 'x'))),
      /does not precede/,
    ],
    [
      'client twice in the structs section',
      bytes((e) => {
        U(2)(e)
        for (const clock of [0, 1]) {
          U(1)(e)
          U(1)(e)
          U(clock)(e)
          rootItem(e, 1, 'a', U(1))
        }
        U(0)(e)
      }),
      /twice/,
    ],
    [
      'client twice in the delete set',
      bytes((e) => {
        U(0)(e)
        U(2)(e)
        for (let i = 0; i < 2; i++) {
          U(1)(e)
          U(1)(e)
          U(0)(e)
          U(1)(e)
        }
      }),
      /twice/,
    ],
    [
      'overlapping delete ranges',
      bytes((e) => {
        U(0)(e)
        U(1)(e)
        U(1)(e)
        U(2)(e)
        U(0)(e)
        U(10)(e)
        U(5)(e)
        U(10)(e)
      }),
      /overlap/,
    ],
    [
      'unsorted delete ranges',
      bytes((e) => {
        U(0)(e)
        U(1)(e)
        U(1)(e)
        U(2)(e)
        U(10)(e)
        U(1)(e)
        U(0)(e)
        U(1)(e)
      }),
      /overlap or are not sorted/,
    ],
    [
      'delete range of length 0',
      bytes((e) => {
        U(0)(e)
        U(1)(e)
        U(1)(e)
        U(1)(e)
        U(0)(e)
        U(0)(e)
      }),
      /length 0/,
    ],
    [
      'delete range overflowing 2^53 - 1',
      bytes((e) => {
        U(0)(e)
        U(1)(e)
        U(1)(e)
        U(1)(e)
        U(2 ** 53 - 2)(e)
        U(5)(e)
      }),
      /exceeds 2\^53/,
    ],
    [
      'delete range count larger than the input',
      bytes((e) => {
        U(0)(e)
        U(1)(e)
        U(1)(e)
        U(2 ** 40)(e)
      }),
      /exceeds/,
    ],
  ]
  for (const [name, input, reason] of cases) {
    it(`rejects ${name}`, () => expectRejected(input, reason))
  }

  it('a non-Uint8Array is rejected, not thrown on', () => {
    expect(validateUpdateV1('0000' as unknown as Uint8Array)).toMatchObject({ ok: false })
    expect(validateStateVector([0] as unknown as Uint8Array)).toMatchObject({ ok: false })
  })

  it('bytes that are a view into a larger buffer are read only within the view', () => {
    const valid = Y.encodeStateAsUpdate(corpus.docs[0])
    const big = new Uint8Array(valid.length + 100)
    big.set(valid, 50)
    expect(validateUpdateV1(big.subarray(50, 50 + valid.length)).ok).toBe(true)
    expect(validateUpdateV1(big.subarray(50, 50 + valid.length - 1)).ok).toBe(false)
  })
})

describe('shapes that make Yjs integration quadratic or recursive', () => {
  it('overlapping delete ranges (each rescans the client: quadratic in Y.applyUpdate) are rejected', () => {
    const n = 20_000
    const update = bytes((e) => {
      encoding.writeVarUint(e, 0)
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, n)
      for (let i = 0; i < n; i++) {
        encoding.writeVarUint(e, 0)
        encoding.writeVarUint(e, n)
      }
    })
    expectRejected(update, /overlap/)
  })

  /** `n` map entries of one key of root map `m`, without origins, from one client. */
  const keyConflicts = (n: number): Uint8Array =>
    oneClient(n, 1, 0, (e) => {
      for (let i = 0; i < n; i++)
        rootItem(
          e,
          8,
          'm',
          anyContent((c) => encoding.writeUint8(c, 126)),
          'k',
        )
    })

  it(`more than ${DEFAULT_MAX_KEY_CONFLICTS} origin-less entries for one map key (each walks the key's history: quadratic) are rejected`, () => {
    expect(validateUpdateV1(keyConflicts(DEFAULT_MAX_KEY_CONFLICTS)).ok).toBe(true)
    expectRejected(keyConflicts(DEFAULT_MAX_KEY_CONFLICTS + 1), /origin-less entries/)
    expect(validateUpdateV1(keyConflicts(5000), { maxKeyConflicts: Infinity }).ok).toBe(true)
  })

  /** A chain of `n` nested Y.Arrays of client `client` starting at `clock`, the first in `parent` (a root name or an item id). */
  const nest = (n: number, client: number, clock: number, parent: string | [number, number]): Uint8Array =>
    oneClient(n, client, clock, (e) => {
      for (let i = 0; i < n; i++) {
        encoding.writeUint8(e, 7)
        if (i === 0 && typeof parent === 'string') {
          encoding.writeVarUint(e, 1)
          encoding.writeVarString(e, parent)
        } else {
          const [pc, pk] = i === 0 ? (parent as [number, number]) : [client, clock + i - 1]
          encoding.writeVarUint(e, 0)
          encoding.writeVarUint(e, pc)
          encoding.writeVarUint(e, pk)
        }
        encoding.writeVarUint(e, 0)
      }
    })

  it(`shared types nested more than ${DEFAULT_MAX_TYPE_DEPTH} deep in one update are rejected, whatever the client order`, () => {
    expect(validateUpdateV1(nest(DEFAULT_MAX_TYPE_DEPTH, 1, 0, 'a')).ok).toBe(true)
    expectRejected(nest(DEFAULT_MAX_TYPE_DEPTH + 1, 1, 0, 'a'), /nested deeper than 100/)
    // two clients alternating, the deeper links first in the bytes
    const alternating = bytes((e) => {
      const depth = 150
      encoding.writeVarUint(e, 2)
      for (const client of [1, 2]) {
        const mine = Array.from({ length: depth }, (_, i) => i).filter((i) => i % 2 === client - 1)
        encoding.writeVarUint(e, mine.length)
        encoding.writeVarUint(e, client)
        encoding.writeVarUint(e, 0)
        for (const i of mine) {
          encoding.writeUint8(e, 7)
          if (i === 0) {
            encoding.writeVarUint(e, 1)
            encoding.writeVarString(e, 'a')
          } else {
            encoding.writeVarUint(e, 0)
            encoding.writeVarUint(e, client === 1 ? 2 : 1)
            encoding.writeVarUint(e, Math.floor((i - 1) / 2))
          }
          encoding.writeVarUint(e, 0)
        }
      }
      encoding.writeVarUint(e, 0)
    })
    expectRejected(alternating, /nested deeper/)
  })

  it('a nest built over several updates passes one update at a time (the check against the doc, security/docGuard, refuses it)', () => {
    // 40 updates of 100 levels each: 4000 deep, enough to overflow Yjs' recursive GC when the root is deleted
    let parent: string | [number, number] = 'a'
    for (let part = 0; part < 40; part++) {
      const update = nest(100, 1, part * 100, parent)
      expect(validateUpdateV1(update).ok).toBe(true)
      parent = [1, part * 100 + 99]
    }
  })
})

describe('linear time and memory', () => {
  /** No limit but the input's size. */
  const UNLIMITED: UpdateLimits = { maxKeyConflicts: Infinity, maxTypeDepth: Infinity }
  /** Steps the validator takes (bytes read, JSON characters, type links followed): what linearity is asserted on. */
  const steps = (update: Uint8Array): number => {
    const work: ValidationWork = { steps: 0 }
    validateUpdateV1(update, UNLIMITED, work)
    return work.steps
  }
  /** Milliseconds to validate, best of 3; printed for information only (machine speed varies). */
  const time = (update: Uint8Array): number => {
    let best = Infinity
    for (let i = 0; i < 3; i++) {
      const start = performance.now()
      validateUpdateV1(update, UNLIMITED)
      best = Math.min(best, performance.now() - start)
    }
    return best
  }
  const manyStructs = (n: number): Uint8Array =>
    oneClient(n, 1, 0, (e) => {
      for (let i = 0; i < n; i++)
        rootItem(
          e,
          8,
          'm',
          anyContent((c) => encoding.writeUint8(c, 126)),
          `k${i % 50}`,
        )
    })
  const deepAny = (n: number): Uint8Array =>
    oneClient(n, 1, 0, (e) => {
      for (let i = 0; i < n; i++) {
        rootItem(e, 8, 'a', (c) => {
          encoding.writeVarUint(c, 1)
          for (let d = 0; d < DEFAULT_MAX_DEPTH; d++) {
            encoding.writeUint8(c, 117)
            encoding.writeVarUint(c, 1)
          }
          encoding.writeUint8(c, 126)
        })
      }
    })

  /** `n` shared types, each in the one before (explicit parents): the type-nesting check follows their links. */
  const nestedTypes = (n: number): Uint8Array =>
    oneClient(n, 1, 0, (e) => {
      for (let i = 0; i < n; i++) {
        encoding.writeUint8(e, 7)
        if (i === 0) {
          encoding.writeVarUint(e, 1)
          encoding.writeVarString(e, 'a')
        } else {
          encoding.writeVarUint(e, 0)
          encoding.writeVarUint(e, 1)
          encoding.writeVarUint(e, i - 1)
        }
        encoding.writeVarUint(e, 0) // a Y.Array
      }
    })

  it('1 MiB of tiny structs, of Any nested to the limit, and of long strings each validate in a few steps per byte', () => {
    const inputs = {
      'tiny structs': manyStructs(100_000),
      'deep Any': deepAny(5_000),
      'long strings': oneClient(16, 1, 0, (e) => {
        for (let i = 0; i < 16; i++) rootItem(e, 4, 't', (c) => encoding.writeVarString(c, 'x'.repeat(64 * 1024)))
      }),
    }
    for (const [name, update] of Object.entries(inputs)) {
      expect(update.length).toBeGreaterThan(700_000)
      const counted = steps(update)
      console.log(`  ${name}: ${(update.length / 1024).toFixed(0)} KiB in ${counted} steps, ${time(update).toFixed(1)} ms`)
      expect(validateUpdateV1(update, { maxKeyConflicts: Infinity }).ok).toBe(true)
      expect(counted).toBeLessThanOrEqual(2 * update.length)
    }
  })

  it('work grows linearly with the input: 16× the bytes take 16× the steps', () => {
    const shapes = { 'tiny structs': manyStructs, 'deep Any': deepAny, 'nested types': nestedTypes }
    for (const [name, make] of Object.entries(shapes)) {
      const small = make(name === 'deep Any' ? 200 : 4_000)
      const large = make(name === 'deep Any' ? 3_200 : 64_000)
      const [smallSteps, largeSteps] = [steps(small), steps(large)]
      console.log(
        `  ${name}, 16× input: ${(largeSteps / smallSteps).toFixed(2)}× steps (${largeSteps}), ${(time(large) / Math.max(time(small), 0.05)).toFixed(1)}× time`,
      )
      expect(validateUpdateV1(large, UNLIMITED).ok).toBe(true)
      // per byte, the large input takes no more steps than the small one (varUints of larger clocks are longer: a little fewer)
      expect(largeSteps / large.length).toBeLessThanOrEqual((smallSteps / small.length) * 1.05)
      expect(largeSteps).toBeLessThanOrEqual(2 * large.length)
    }
  })
})

describe('limits', () => {
  const update = Y.encodeStateAsUpdate(corpus.docs[0])
  const counts = validateUpdateV1(update)
  if (!counts.ok) throw new Error('corpus state must be valid')

  it('maxStructs, maxDeletes and maxClients refuse beyond the limit and accept at it', () => {
    expect(validateUpdateV1(update, { maxStructs: counts.structs }).ok).toBe(true)
    expect(validateUpdateV1(update, { maxStructs: counts.structs - 1 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/more than .* structs/),
    })
    expect(validateUpdateV1(update, { maxDeletes: counts.deletes }).ok).toBe(true)
    expect(validateUpdateV1(update, { maxDeletes: counts.deletes - 1 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/delete ranges/),
    })
    expect(validateUpdateV1(update, { maxClients: 0 })).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 0 clients/) })
  })

  it('maxSubdocs and maxDepth', () => {
    const subdocs = oneClient(3, 1, 0, (e) => {
      for (let i = 0; i < 3; i++)
        rootItem(e, 9, 'm', (c) => (encoding.writeVarString(c, `g${i}`), encoding.writeUint8(c, 118), encoding.writeVarUint(c, 0)), `d${i}`)
    })
    expect(validateUpdateV1(subdocs).ok).toBe(true)
    expect(validateUpdateV1(subdocs, { maxSubdocs: 2 })).toMatchObject({ ok: false, reason: expect.stringMatching(/subdocs/) })
    const deep = oneClient(1, 1, 0, (e) =>
      rootItem(
        e,
        8,
        'a',
        anyContent((c) => {
          for (let d = 0; d < 10; d++) {
            encoding.writeUint8(c, 118)
            encoding.writeVarUint(c, 1)
            encoding.writeVarString(c, 'k')
          }
          encoding.writeUint8(c, 126)
        }),
      ),
    )
    expect(validateUpdateV1(deep, { maxDepth: 10 }).ok).toBe(true)
    expect(validateUpdateV1(deep, { maxDepth: 9 })).toMatchObject({ ok: false, reason: expect.stringMatching(/nested deeper than 9/) })
  })
})

describe('validateStateVector', () => {
  it('state vectors made by Yjs pass', () => {
    for (const doc of corpus.docs) {
      const sv = Y.encodeStateVector(doc)
      expect(validateStateVector(sv)).toEqual({ ok: true, clients: Y.decodeStateVector(sv).size })
    }
    expect(validateStateVector(Y.encodeStateVector(new Y.Doc()))).toEqual({ ok: true, clients: 0 })
  })

  it('truncated, inflated, duplicated, overflowing and trailing state vectors are rejected', () => {
    const sv = Y.encodeStateVector(corpus.docs[0])
    for (let len = 0; len < sv.length; len++) expect(validateStateVector(sv.subarray(0, len)).ok).toBe(false)
    expect(validateStateVector(new Uint8Array([...sv, 0])).ok).toBe(false)
    expect(validateStateVector(bytes((e) => encoding.writeVarUint(e, 2 ** 40))).ok).toBe(false)
    expect(validateStateVector(new Uint8Array([2, 1, 1, 1, 2]))).toMatchObject({ ok: false, reason: expect.stringMatching(/twice/) })
    expect(validateStateVector(new Uint8Array([1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/2\^53/),
    })
    expect(validateStateVector(new Uint8Array([1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0]))).toMatchObject({ ok: false })
    expect(validateStateVector(new Uint8Array([3, 1, 1]), { maxClients: 2 }).ok).toBe(false)
  })

  it('random and mutated state vectors: rejected, or decodable by Yjs', () => {
    const gen = prng.create(SEED + 6)
    const sv = Y.encodeStateVector(corpus.docs[0])
    const doc = new Y.Doc()
    Y.applyUpdate(doc, smallBase)
    const throwing: string[] = []
    for (let i = 0; i < 20_000; i++) {
      const input = prng.bool(gen) ? prng.uint8Array(gen, prng.uint32(gen, 0, 24)) : mutate(gen, sv).bytes
      if (validateStateVector(input).ok) {
        try {
          Y.encodeStateAsUpdate(doc, input)
        } catch (error) {
          throwing.push(`${(error as Error).message}: ${toHex(input)}`)
        }
      }
    }
    expect(throwing.slice(0, 3)).toEqual([])
  })
})
