/**
 * Storage adapters: the contract suite for every adapter, then what only
 * SQLite has (WAL, crash durability, failing commits, bad paths, and its
 * worker thread: call order, an event loop that keeps running, group commit,
 * a worker that dies).
 *
 * The SQLite worker thread and the crash test's child process
 * (`fixtures/sqliteAppendWorker.mjs`) run the compiled adapter in
 * `apps/relay/dist`: build first (`npx tsc -b apps/relay`).
 */

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createRelay } from '../src/Relay.js'
import { MemoryStorage, SQLITE_SCHEMA_VERSION, SqliteStorage, openStorage } from '../src/storage/index.js'
import { unframeLog } from '../src/storage/framedLog.js'
import { SqliteDatabase } from '../src/storage/SqliteDatabase.js'
import { LOADS_PER_REQUEST } from '../src/storage/SqliteStorage.js'
import { runStorageContractTests } from './storageContract.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const tempDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'concord-'))
const bytes = (...values: number[]): Uint8Array => new Uint8Array(values)

/** Writes `file` as a relay of schema `version` (1 or 2) created it, with `rows` (SQL) in it. */
const writeOldSchema = (file: string, version: 1 | 2, rows: string): void => {
  const db = new Database(file)
  db.exec(`CREATE TABLE docs (doc TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE checkpoints (doc TEXT PRIMARY KEY, state BLOB NOT NULL, upto_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE updates (doc TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq)) WITHOUT ROWID;`)
  if (version === 2) {
    db.exec(`CREATE TABLE authors (doc TEXT NOT NULL, client_id INTEGER NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (doc, client_id)) WITHOUT ROWID;
      CREATE TABLE presence (workspace TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (workspace, user_id)) WITHOUT ROWID;`)
  }
  db.exec(rows)
  db.pragma(`user_version = ${version}`)
  db.close()
}

runStorageContractTests('MemoryStorage', async () => ({
  storage: new MemoryStorage(),
  cleanup: async () => {},
}))

runStorageContractTests('SqliteStorage', async () => {
  const dir = tempDir()
  // A parent directory that does not exist yet: the adapter creates it.
  const file = path.join(dir, 'nested', 'concord.sqlite')
  return {
    storage: SqliteStorage.open(file),
    reopen: async () => SqliteStorage.open(file),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  }
})

describe('SqliteStorage', () => {
  let dir: string
  let file: string
  const toClose: Array<{ close(): unknown }> = []

  beforeEach(() => {
    dir = tempDir()
    file = path.join(dir, 'concord.sqlite')
  })

  afterEach(async () => {
    for (const handle of toClose.splice(0)) await handle.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  /** Opens the adapter and registers it for closing. */
  function open(options?: ConstructorParameters<typeof SqliteStorage>[1]): SqliteStorage {
    const storage = SqliteStorage.open(file, options)
    toClose.push(storage)
    return storage
  }

  /** A second, raw connection to the same file (as another process would have). */
  function rawConnection(): Database.Database {
    const db = new Database(file)
    toClose.push(db)
    return db
  }

  it('[wal] journal mode is WAL and the schema version is recorded', async () => {
    const storage = open()
    expect(storage.upgradedFrom).toBe(null) // a new file is created at this version, not upgraded
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    const db = rawConnection()
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
    expect(fs.existsSync(`${file}-wal`)).toBe(true)
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all()
    expect(tables.map((t) => t.name)).toEqual(['authors', 'checkpoints', 'docs', 'presence', 'updates'])
  })

  it('[options] synchronous normal and a page cache size work, bad options throw', async () => {
    const storage = open({ synchronous: 'normal', busyTimeoutMs: 100, cacheMb: 2 })
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    expect((await storage.loadDoc('a')).lastSeq).toBe(1)
    expect(() => SqliteStorage.open(file, { synchronous: 'off' as 'full' })).toThrow(/synchronous/)
    expect(() => SqliteStorage.open(file, { busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs/)
    expect(() => SqliteStorage.open(file, { cacheMb: 0 })).toThrow(/cacheMb must be a positive integer/)
  })

  it('[open] a data dir that is a file gives a clear error', () => {
    const notADir = path.join(dir, 'data')
    fs.writeFileSync(notADir, 'I am a file')
    const target = path.join(notADir, 'concord.sqlite')
    expect(() => SqliteStorage.open(target)).toThrow(`cannot open SQLite storage at ${target}`)
    expect(() => openStorage('sqlite', notADir)).toThrow(/cannot open SQLite storage at .*data[/\\]concord\.sqlite/)
  })

  it('[open] a file that is not a database gives a clear error', () => {
    fs.writeFileSync(file, Buffer.alloc(8192, 'garbage!'))
    expect(() => SqliteStorage.open(file)).toThrow(/cannot open SQLite storage at .*concord\.sqlite: file is not a database/)
  })

  it('[open] a schema newer than this code is refused', () => {
    const db = new Database(file)
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`)
    db.close()
    expect(() => SqliteStorage.open(file)).toThrow(`schema version ${SQLITE_SCHEMA_VERSION + 1} is newer`)
  })

  it('upgrades a schema version 2 file in place: numbers continue, listings keep their last numbers', async () => {
    const file = path.join(dir, 'v2.sqlite')
    writeOldSchema(
      file,
      2,
      `INSERT INTO docs VALUES ('a', 5), ('b', 2);
      INSERT INTO checkpoints VALUES ('a', x'2a', 3, 0), ('b', x'2b', 2, 0);
      INSERT INTO updates VALUES ('a', 4, x'04'), ('a', 5, x'05');`,
    )
    const storage = SqliteStorage.open(file)
    toClose.push(storage)
    expect(await storage.listDocSeqs('')).toEqual([
      { doc: 'a', lastSeq: 5 },
      { doc: 'b', lastSeq: 2 },
    ])
    expect(
      await storage.appendUpdates([
        { doc: 'a', updates: [bytes(6)] },
        { doc: 'b', updates: [bytes(3)] },
      ]),
    ).toEqual(
      new Map([
        ['a', 6],
        ['b', 3],
      ]),
    )
    expect(await storage.loadDoc('a')).toEqual({
      checkpoint: bytes(42),
      updates: [bytes(4), bytes(5), bytes(6)],
      lastSeq: 6,
      logBytes: 3,
      authors: [],
    })
    expect(await storage.loadDoc('b')).toEqual({ checkpoint: bytes(43), updates: [bytes(3)], lastSeq: 3, logBytes: 1, authors: [] })
    expect(storage.upgradedFrom).toBe(2)
    const upgraded = new Database(file)
    toClose.push(upgraded)
    expect(upgraded.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
    const reopened = SqliteStorage.open(file)
    toClose.push(reopened)
    expect(reopened.upgradedFrom).toBe(null)
  })

  it('[seq] an append writes the log, not the docs row; a checkpoint keeps the last number before deleting the log', async () => {
    const storage = open()
    const raw = rawConnection()
    const docRow = (): unknown => raw.prepare("SELECT last_seq FROM docs WHERE doc = 'a'").get()
    for (let i = 1; i <= 3; i++) await storage.appendUpdates([{ doc: 'a', updates: [bytes(i)] }])
    expect(docRow()).toEqual({ last_seq: 0 })
    expect(await storage.listDocSeqs('a')).toEqual([{ doc: 'a', lastSeq: 3 }])
    await storage.writeCheckpoint('a', bytes(42), 2) // keeps seq 3 in the log
    expect(docRow()).toEqual({ last_seq: 3 })
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(4), bytes(5)] }])
    await storage.writeCheckpoint('a', bytes(43), 5) // empties the log
    expect(docRow()).toEqual({ last_seq: 5 })
    expect(await storage.listDocSeqs('')).toEqual([{ doc: 'a', lastSeq: 5 }])
    expect(await storage.appendUpdates([{ doc: 'a', updates: [bytes(6)] }])).toEqual(new Map([['a', 6]]))
    expect(await storage.loadDoc('a')).toEqual({ checkpoint: bytes(43), updates: [bytes(6)], lastSeq: 6, logBytes: 1, authors: [] })
  })

  it('upgrades a schema version 1 file in place, keeping its data', async () => {
    const file = path.join(dir, 'v1.sqlite')
    writeOldSchema(file, 1, "INSERT INTO docs VALUES ('a', 1); INSERT INTO updates VALUES ('a', 1, x'05');")
    const storage = SqliteStorage.open(file)
    expect(storage.upgradedFrom).toBe(1)
    expect(await storage.loadDoc('a')).toEqual({ checkpoint: null, updates: [bytes(5)], lastSeq: 1, logBytes: 1, authors: [] })
    await storage.appendUpdates([{ doc: 'a', updates: [], authors: [{ clientId: 1, userId: 'u', name: 'U' }] }])
    expect((await storage.loadDoc('a')).authors).toHaveLength(1)
    await storage.close()
  })

  it('[failing-commit] a commit blocked by another writer rejects and stores nothing', async () => {
    const storage = open({ busyTimeoutMs: 50 })
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    const other = rawConnection()
    other.exec('BEGIN IMMEDIATE')
    await expect(
      storage.appendUpdates([
        { doc: 'a', updates: [bytes(2)] },
        { doc: 'b', updates: [bytes(3)] },
      ]),
    ).rejects.toThrow(/locked|busy/i)
    await expect(storage.writeCheckpoint('a', bytes(9), 1)).rejects.toThrow(/locked|busy/i)
    other.exec('ROLLBACK')
    expect(await storage.loadDoc('a')).toEqual({ checkpoint: null, updates: [bytes(1)], lastSeq: 1, logBytes: 1, authors: [] })
    expect(await storage.listDocs('')).toEqual(['a'])
    expect((await storage.appendUpdates([{ doc: 'a', updates: [bytes(2)] }])).get('a')).toBe(2)
  })

  it('[failing-commit] a statement failing mid-batch rolls back the whole batch', async () => {
    const storage = open()
    await storage.appendUpdates([{ doc: 'good', updates: [bytes(1)] }])
    // Another connection adds a trigger that makes inserts for doc "bad" fail.
    rawConnection().exec(`
      CREATE TRIGGER fail_bad BEFORE INSERT ON updates WHEN NEW.doc = 'bad'
      BEGIN SELECT RAISE(ABORT, 'boom'); END
    `)
    await expect(
      storage.appendUpdates([
        { doc: 'good', updates: [bytes(2), bytes(3)] },
        { doc: 'fresh', updates: [bytes(4)] },
        { doc: 'bad', updates: [bytes(5)] },
      ]),
    ).rejects.toThrow('boom')
    expect(await storage.loadDoc('good')).toEqual({ checkpoint: null, updates: [bytes(1)], lastSeq: 1, logBytes: 1, authors: [] })
    expect(await storage.loadDoc('fresh')).toEqual({ checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] })
    expect(await storage.listDocs('')).toEqual(['good'])
    expect((await storage.appendUpdates([{ doc: 'good', updates: [bytes(2)] }])).get('good')).toBe(2)
  })

  it('[order] calls keep their order across the worker thread: a load sees exactly the calls made before it', async () => {
    const storage = open()
    const loads: Array<{ after: number; loaded: Promise<unknown> }> = []
    const calls: Array<Promise<unknown>> = []
    // Nothing is awaited: every call is in flight at once.
    for (let i = 1; i <= 20; i++) {
      calls.push(storage.appendUpdates([{ doc: 'a', updates: [bytes(i)] }]))
      if (i === 10) calls.push(storage.writeCheckpoint('a', bytes(0), 10))
      loads.push({ after: i, loaded: storage.loadDoc('a') })
    }
    const listed = storage.listDocs('')
    await Promise.all(calls)
    for (const { after, loaded } of loads) {
      const logged = Array.from({ length: after }, (_, k) => k + 1).filter((seq) => after < 10 || seq > 10)
      expect(await loaded).toEqual({
        checkpoint: after < 10 ? null : bytes(0),
        updates: logged.map((seq) => bytes(seq)),
        lastSeq: after,
        logBytes: logged.length,
        authors: [],
      })
    }
    expect(await listed).toEqual(['a'])
  })

  it('[reads] loads read on the calling thread and see every write that resolved; a doc with a write in flight loads behind it', async () => {
    const storage = open()
    await storage.appendUpdates([
      { doc: 'a', updates: [bytes(1)] },
      { doc: 'b', updates: [bytes(2), bytes(3)] },
    ])
    await storage.writeCheckpoint('b', bytes(9), 1)
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    try {
      expect(await storage.loadDoc('a')).toEqual({ checkpoint: null, updates: [bytes(1)], lastSeq: 1, logBytes: 1, authors: [] })
      expect(await storage.loadDoc('b')).toEqual({ checkpoint: bytes(9), updates: [bytes(3)], lastSeq: 2, logBytes: 1, authors: [] })
      expect(await storage.loadDoc('never')).toEqual({ checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] })
      expect(posted).not.toHaveBeenCalled()

      // nothing awaited: 'a' has an append in flight, 'b' a checkpoint; 'c' has none
      const writes = [storage.appendUpdates([{ doc: 'a', updates: [bytes(4)] }]), storage.writeCheckpoint('b', bytes(8), 2)]
      const [a, b, c] = [storage.loadDoc('a'), storage.loadDoc('b'), storage.loadDoc('c')]
      await Promise.all(writes)
      expect(await a).toMatchObject({ updates: [bytes(1), bytes(4)], lastSeq: 2 })
      expect(await b).toMatchObject({ checkpoint: bytes(8), updates: [], lastSeq: 2 })
      expect(await c).toMatchObject({ updates: [], lastSeq: 0 })
      const ops = posted.mock.calls.map(([message]) => message as { op: string; docs?: string[] })
      expect(ops.map(({ op }) => op)).toEqual(['append', 'checkpoint', 'load-many'])
      expect(ops[2]!.docs).toEqual(['a', 'b'])

      // once the writes resolved, loads are read here again
      posted.mockClear()
      expect(await storage.loadDoc('a')).toMatchObject({ lastSeq: 2 })
      expect(posted).not.toHaveBeenCalled()
    } finally {
      posted.mockRestore()
    }
  })

  it('[log-bytes] a long log read by the storage thread (a load behind a write in flight) is the same, byte for byte', async () => {
    const storage = open()
    const rows = [bytes(0), bytes(0xff, 0xfe, 0x80), new Uint8Array(70_000).fill(0xc3)]
    for (let i = 0; i < 2_000; i++) rows.push(bytes(i & 0xff, 0, i >> 8))
    await storage.appendUpdates([{ doc: 'bytes', updates: rows }])
    const write = storage.appendUpdates([{ doc: 'bytes', updates: [bytes(7)] }])
    const behind = storage.loadDoc('bytes')
    await write
    expect((await behind).updates).toEqual([...rows, bytes(7)])
    expect((await storage.loadDoc('bytes')).updates).toEqual([...rows, bytes(7)])
  })

  it('[log-bytes] frames that come out of sequence order are put back in it', () => {
    const frame = (seq: number, ...data: number[]): Buffer => {
      const head = Buffer.alloc(12)
      head.writeUInt32BE(Math.floor(seq / 2 ** 32), 0)
      head.writeUInt32BE(seq % 2 ** 32, 4)
      head.writeUInt32BE(data.length, 8)
      return Buffer.concat([head, Buffer.from(data)])
    }
    expect(unframeLog(Buffer.concat([frame(1, 10), frame(2), frame(2 ** 40, 30, 31)]))).toEqual([bytes(10), bytes(), bytes(30, 31)])
    expect(unframeLog(Buffer.concat([frame(2 ** 40, 30), frame(7, 0, 1), frame(3), frame(5, 50)]))).toEqual([
      bytes(),
      bytes(50),
      bytes(0, 1),
      bytes(30),
    ])
    expect(unframeLog(Buffer.alloc(0))).toEqual([])
  })

  it('[log-bytes] with an SQLite library too old for the framing query the log is read row by row, byte for byte', async () => {
    const prepare = Database.prototype.prepare
    const old = vi.spyOn(Database.prototype, 'prepare').mockImplementation(function (this: Database.Database, source: string) {
      if (source.includes('unhex')) throw new Database.SqliteError('no such function: unhex', 'SQLITE_ERROR')
      return prepare.call(this, source)
    } as typeof prepare)
    let storage: SqliteStorage
    try {
      storage = open() // its reader on this thread has no framing query; the worker thread is not affected
      expect(old.mock.calls.some(([source]) => source.includes('unhex'))).toBe(true)
    } finally {
      old.mockRestore()
    }
    const rows = [bytes(0), bytes(0xff, 0xfe, 0, 0xd8), bytes(0x41, 0, 0x42)]
    await storage.appendUpdates([{ doc: 'd', updates: rows }])
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    try {
      expect((await storage.loadDoc('d')).updates).toEqual(rows)
      expect(posted).not.toHaveBeenCalled()
    } finally {
      posted.mockRestore()
    }
  })

  it('[log-bytes] a database in UTF-16 and a log over SQLite’s value limit are read row by row, byte for byte', async () => {
    const raw = new Database(file)
    raw.pragma("encoding = 'UTF-16le'")
    raw.exec('CREATE TABLE probe (x)')
    raw.close()
    const rows = [bytes(0), bytes(0xff, 0xfe, 0, 0xd8), bytes(0x41, 0, 0x42)]
    const utf16 = open()
    await utf16.appendUpdates([{ doc: 'd', updates: rows }])
    expect((await utf16.loadDoc('d')).updates).toEqual(rows)
    await utf16.close()

    // a log longer than SQLITE_MAX_LENGTH (1 GB) cannot be read as one value: SQLite says SQLITE_TOOBIG
    const other = path.join(dir, 'other.sqlite')
    const storage = SqliteStorage.open(other)
    toClose.push(storage)
    await storage.appendUpdates([{ doc: 'd', updates: rows }])
    const statement = Object.getPrototypeOf(rawConnection().prepare('SELECT 1')) as { get: (...args: unknown[]) => unknown }
    const get = statement.get
    const tooBig = vi.spyOn(statement, 'get').mockImplementation(function (this: { source: string }, ...args: unknown[]) {
      if (this.source.includes('group_concat')) throw new Database.SqliteError('string or blob too big', 'SQLITE_TOOBIG')
      return get.apply(this, args)
    })
    try {
      expect((await storage.loadDoc('d')).updates).toEqual(rows)
      expect(tooBig.mock.contexts.some((statement) => (statement as { source: string }).source.includes('group_concat'))).toBe(true)
    } finally {
      tooBig.mockRestore()
    }
  })

  it('[reads-busy] a load that finds the file locked goes to the worker, which waits for the lock', async () => {
    const storage = open({ busyTimeoutMs: 10_000 })
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    // A WAL reader meets a lock only while another connection recovers the WAL after a crash: this
    // process's own connections hold the file open, so that cannot be staged here. The read on this
    // thread fails as SQLite fails it then; the worker runs the real thing.
    const busy = Object.assign(new Error('database is locked'), { name: 'SqliteError', code: 'SQLITE_BUSY_RECOVERY' })
    const read = vi.spyOn(SqliteDatabase.prototype, 'loadDoc').mockImplementationOnce(() => {
      throw busy
    })
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    try {
      expect(await storage.loadDoc('a')).toEqual({ checkpoint: null, updates: [bytes(1)], lastSeq: 1, logBytes: 1, authors: [] })
      expect(read).toHaveBeenCalledTimes(1)
      expect(posted.mock.calls.map(([message]) => (message as { op: string }).op)).toEqual(['load'])
      // any other error of the read is the load's error
      read.mockImplementationOnce(() => {
        throw Object.assign(new Error('disk I/O error'), { name: 'SqliteError', code: 'SQLITE_IOERR_READ' })
      })
      await expect(storage.loadDoc('a')).rejects.toMatchObject({ code: 'SQLITE_IOERR_READ' })
    } finally {
      read.mockRestore()
      posted.mockRestore()
    }
  })

  it('[load-many] loads asked for in one turn cross to the worker together, each answered with its own doc', async () => {
    // in memory, the worker's connection is the only one: every load goes there
    const storage = SqliteStorage.open(':memory:')
    toClose.push(storage)
    const docs = Array.from({ length: 2 * LOADS_PER_REQUEST + 3 }, (_, i) => `w/doc-${i}`)
    // every third doc has a checkpoint and a log after it, every third only a log, the rest were never stored
    for (const [i, doc] of docs.entries()) {
      if (i % 3 === 2) continue
      await storage.appendUpdates([{ doc, updates: [bytes(i % 256, 1), bytes(i % 256, 2)] }])
      if (i % 3 === 0) {
        await storage.writeCheckpoint(doc, bytes(i % 256, 0, 0), 2)
        await storage.appendUpdates([{ doc, updates: [bytes(i % 256, 3)] }])
      }
    }
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    try {
      const loaded = await Promise.all(docs.map((doc) => storage.loadDoc(doc)))
      const ops = posted.mock.calls.map(([message]) => (message as { op: string; docs?: string[] }).op)
      expect(ops).toEqual(['load-many', 'load-many', 'load-many'])
      expect(posted.mock.calls.map(([message]) => (message as { docs: string[] }).docs.length)).toEqual([
        LOADS_PER_REQUEST,
        LOADS_PER_REQUEST,
        3,
      ])
      for (const [i, stored] of loaded.entries()) {
        const b = i % 256
        const expected =
          i % 3 === 0
            ? { checkpoint: bytes(b, 0, 0), updates: [bytes(b, 3)], lastSeq: 3, logBytes: 2, authors: [] }
            : i % 3 === 1
              ? { checkpoint: null, updates: [bytes(b, 1), bytes(b, 2)], lastSeq: 2, logBytes: 4, authors: [] }
              : { checkpoint: null, updates: [], lastSeq: 0, logBytes: 0, authors: [] }
        expect(stored, docs[i]).toEqual(expected)
      }
      // a lone load is a plain load; a bad name is refused at once without holding up the others
      posted.mockClear()
      const [alone, refused] = await Promise.allSettled([storage.loadDoc(docs[1]), storage.loadDoc(42 as unknown as string)])
      expect(alone).toMatchObject({ status: 'fulfilled', value: { lastSeq: 2 } })
      expect(refused).toMatchObject({ status: 'rejected', reason: { name: 'TypeError' } })
      expect(posted.mock.calls.map(([message]) => (message as { op: string }).op)).toEqual(['load'])
    } finally {
      posted.mockRestore()
    }
  })

  it('[event-loop] the calling thread keeps running while a commit waits in the worker', async () => {
    const storage = open({ busyTimeoutMs: 10_000 })
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    // Another writer holds the lock: the commit waits inside SQLite (as it would for an fsync).
    const other = rawConnection()
    other.exec('BEGIN IMMEDIATE')
    const events: string[] = []
    const committed = storage.appendUpdates([{ doc: 'a', updates: [bytes(2)] }]).then((result) => {
      events.push('committed')
      return result
    })
    // With SQLite on this thread, the timer could run only after the commit gave up.
    await new Promise((resolve) => setTimeout(resolve, 0))
    events.push('timer ran')
    other.exec('ROLLBACK')
    expect((await committed).get('a')).toBe(2)
    expect(events).toEqual(['timer ran', 'committed'])
  })

  it('[group-commit] appends queued while a commit runs share the next transaction', async () => {
    const storage = open({ busyTimeoutMs: 10_000 })
    const other = rawConnection()
    /** Frames written to the WAL since the last call (each transaction writes its own frames); empties the WAL. */
    const walFrames = (): number => {
      const [{ log }] = other.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>
      other.pragma('wal_checkpoint(TRUNCATE)')
      return log
    }
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    walFrames()
    await storage.appendUpdates([{ doc: 'a', updates: [bytes(2)] }])
    const framesPerCommit = walFrames()
    expect(framesPerCommit).toBeGreaterThan(0)

    other.exec('BEGIN IMMEDIATE')
    const appends = [3, 4, 5, 6].map((value) => storage.appendUpdates([{ doc: 'a', updates: [bytes(value)] }]))
    await new Promise((resolve) => setTimeout(resolve, 0))
    other.exec('ROLLBACK')
    const results = await Promise.all(appends)
    expect(results.map((result) => result.get('a'))).toEqual([3, 4, 5, 6])
    // The first append may have been alone when it started waiting; the three behind it went into one transaction.
    expect(walFrames()).toBeLessThanOrEqual(2 * framesPerCommit)
    expect((await storage.loadDoc('a')).updates).toEqual([1, 2, 3, 4, 5, 6].map((value) => bytes(value)))
  })

  it("[failing-commit] a failed commit keeps SQLite's message and code across the thread", async () => {
    const storage = open({ busyTimeoutMs: 50 })
    const other = rawConnection()
    other.exec('BEGIN IMMEDIATE')
    await expect(storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])).rejects.toMatchObject({
      name: 'SqliteError',
      code: 'SQLITE_BUSY',
      message: 'database is locked',
    })
    other.exec('ROLLBACK')
  })

  it('[close] calls made before close finish first; close waits for them', async () => {
    const storage = open()
    const appended = storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
    const loaded = storage.loadDoc('a')
    const closed = storage.close()
    await expect(storage.loadDoc('a')).rejects.toThrow(/closed/)
    expect((await appended).get('a')).toBe(1)
    expect((await loaded).lastSeq).toBe(1)
    await closed
    const reopened = open()
    expect((await reopened.loadDoc('a')).updates).toEqual([bytes(1)])
  })

  it('[worker-crash] a worker that dies fails the calls in flight and every later call, and ping', async () => {
    const storage = open({ workerUrl: new URL('./fixtures/crashingSqliteWorker.mjs', import.meta.url) })
    const stopped = /SQLite storage worker stopped \(simulated worker crash\); .*concord\.sqlite is unavailable until the relay restarts/
    const inFlight = [storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }]), storage.loadDoc('a'), storage.listDocs('')]
    for (const call of inFlight) await expect(call).rejects.toThrow(stopped)
    await expect(storage.appendUpdates([{ doc: 'a', updates: [bytes(2)] }])).rejects.toThrow(stopped)
    await expect(storage.writeCheckpoint('a', bytes(0), 0)).rejects.toThrow(stopped)
    await expect(storage.ping()).rejects.toThrow(stopped)
    await storage.close()
  })

  it('[worker-crash] /readyz reports the storage unavailable once the worker died', async () => {
    const storage = open({ workerUrl: new URL('./fixtures/crashingSqliteWorker.mjs', import.meta.url) })
    const relay = await createRelay({ storage, port: 0, processMetrics: false })
    try {
      const response = await fetch(`${relay.url}/readyz`)
      expect(response.status).toBe(503)
      expect(await response.json()).toMatchObject({
        status: 'storage unavailable',
        reason: expect.stringMatching(/SQLite storage worker stopped/),
      })
    } finally {
      await relay.close()
    }
  })

  it('[crash] every commit reported before kill -9 is on disk', async () => {
    const compiled = path.resolve(here, '../dist/storage/SqliteStorage.js')
    const source = path.resolve(here, '../src/storage/SqliteStorage.ts')
    if (!fs.existsSync(compiled) || fs.statSync(compiled).mtimeMs < fs.statSync(source).mtimeMs) {
      throw new Error(`${compiled} is missing or older than its source: run \`npx tsc -b apps/relay\` first`)
    }
    const worker = path.join(here, 'fixtures', 'sqliteAppendWorker.mjs')
    const child = spawn(process.execPath, [worker, file], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))

    // Kill the worker once it has reported 200 commits (it keeps appending meanwhile).
    let committed = 0
    await new Promise<void>((resolve, reject) => {
      let pending = ''
      child.stdout.on('data', (chunk: Buffer) => {
        pending += chunk.toString()
        const lines = pending.split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) {
          const match = /^committed (\d+)$/.exec(line)
          if (match === null) return reject(new Error(`unexpected worker output: ${line}`))
          committed = Number(match[1])
        }
        if (committed >= 200 && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.on('exit', (code) => reject(new Error(`worker exited early (code ${code}): ${stderr}`)))
    })
    expect(await exited).toBe('SIGKILL')

    const storage = open()
    const a = await storage.loadDoc('crash/a')
    const b = await storage.loadDoc('crash/b')
    expect(a.lastSeq).toBeGreaterThanOrEqual(committed)
    // Group commits are atomic: doc b got exactly two updates per batch doc a got one.
    expect(b.lastSeq).toBe(2 * a.lastSeq)
    expect(a.updates).toHaveLength(a.lastSeq)
    a.updates.forEach((update, k) => {
      expect(update.byteLength).toBe(32)
      expect(new DataView(update.buffer, update.byteOffset).getUint32(0)).toBe(k + 1)
    })
    b.updates.forEach((update, k) => {
      expect(new DataView(update.buffer, update.byteOffset).getUint32(0)).toBe(Math.floor(k / 2) + 1)
    })
  })
})

describe('openStorage', () => {
  it('opens a memory storage', async () => {
    const storage = openStorage('memory', '/nonexistent')
    expect(storage.kind).toBe('memory')
    await storage.close()
  })

  it('opens <dataDir>/concord.sqlite, creating the data dir', async () => {
    const dir = tempDir()
    try {
      const dataDir = path.join(dir, 'data')
      const storage = openStorage('sqlite', dataDir)
      expect(storage.kind).toBe('sqlite')
      await storage.appendUpdates([{ doc: 'a', updates: [bytes(1)] }])
      await storage.close()
      expect(fs.existsSync(path.join(dataDir, 'concord.sqlite'))).toBe(true)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('rejects an unknown kind', () => {
    expect(() => openStorage('mysql' as 'memory', '/tmp')).toThrow(/unknown storage kind: mysql/)
  })
})
