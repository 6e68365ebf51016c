/**
 * The relay as a real process: y-websocket compatibility, hostile frames,
 * HTTP endpoints, configuration errors and graceful shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { ErrorCode, MessageType, MUX_PATH } from '@concord/engine/protocol'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { makeTempDir, removeDir, repoRoot, runRelay, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { RawMuxClient, covers } from './helpers/rawClient.js'
import { createRelay } from '../apps/relay/src/Relay.js'
import { MemoryStorage } from '../apps/relay/src/storage/MemoryStorage.js'
import { SqliteStorage } from '../apps/relay/src/storage/SqliteStorage.js'
import Database from 'better-sqlite3'

/** The last sequence number stored for `upgrade/doc-1`, read from the file as another process would. */
const readLastSeq = (file: string): number => {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare("SELECT max(seq) AS n FROM updates WHERE doc = 'upgrade/doc-1'").get() as { n: number | null }).n ?? 0
  } finally {
    db.close()
  }
}

let relay: RelayProcess
beforeAll(async () => {
  relay = await startRelay()
})
afterAll(async () => {
  await relay.stop()
  removeDir(relay.dataDir)
})

const provider = (doc: Y.Doc, room: string) =>
  new WebsocketProvider(relay.wsUrl, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })

const synced = (p: WebsocketProvider) =>
  new Promise<void>((resolve) => {
    if (p.synced) resolve()
    else p.once('sync', (s: boolean) => s && resolve())
  })

describe('y-websocket compatibility', () => {
  it('two stock y-websocket 3.1 providers sync text and awareness through the relay', async () => {
    const a = new Y.Doc()
    const b = new Y.Doc()
    const pa = provider(a, 'compat/doc-1')
    const pb = provider(b, 'compat/doc-1')
    try {
      await Promise.all([synced(pa), synced(pb)])
      a.getText('t').insert(0, 'from a ')
      b.getText('t').insert(0, 'from b ')
      await waitFor(() => a.getText('t').toString() === b.getText('t').toString() && a.getText('t').length === 14, 'convergence')
      pa.awareness.setLocalStateField('user', { name: 'Ada' })
      await waitFor(() => [...pb.awareness.getStates().values()].some((s) => s.user?.name === 'Ada'), 'awareness of a at b')
    } finally {
      pa.destroy()
      pb.destroy()
    }
  })

  it('a y-websocket provider gets state stored earlier by another client after it left', async () => {
    const a = new Y.Doc()
    const pa = provider(a, 'compat/doc-2')
    await synced(pa)
    a.getMap('fields').set('status', 'done')
    // wait until the relay has it: a fresh provider sees it
    const b = new Y.Doc()
    const pb = provider(b, 'compat/doc-2')
    await synced(pb)
    await waitFor(() => b.getMap('fields').get('status') === 'done', 'state at b')
    pa.destroy()
    pb.destroy()
  })
})

describe('hostile input', () => {
  it('a garbage frame closes only its own connection; others keep syncing', async () => {
    const good = new Y.Doc()
    const watcher = new Y.Doc()
    const pGood = provider(good, 'hostile/doc')
    const pWatch = provider(watcher, 'hostile/doc')
    await Promise.all([synced(pGood), synced(pWatch)])

    const frames: Uint8Array[] = [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      new Uint8Array([0, 1, 200, 1, 2, 3]),
      new Uint8Array([0, 2, 5, 9, 9, 9, 9, 9]),
      new Uint8Array([42]),
      new Uint8Array([]),
    ]
    for (const frame of frames) {
      const bad = new WebSocket(`${relay.wsUrl}/hostile/doc`)
      await new Promise((r) => bad.once('open', r))
      const closed = new Promise<number>((resolve) => bad.once('close', (code) => resolve(code)))
      bad.send(frame)
      expect(await closed).toBe(1002)
    }
    const badMux = new RawMuxClient(relay.wsUrl)
    await badMux.open()
    badMux.send(new Uint8Array([0x80, 0x80, 0x80]))
    expect((await badMux.waitClosed()).code).toBe(1002)

    const text = new WebSocket(`${relay.wsUrl}${MUX_PATH}`)
    await new Promise((r) => text.once('open', r))
    const textClosed = new Promise<number>((resolve) => text.once('close', (code) => resolve(code)))
    text.send('hello')
    expect(await textClosed).toBe(1002)

    good.getText('t').insert(0, 'still flowing')
    await waitFor(() => watcher.getText('t').toString() === 'still flowing', 'update after garbage')
    pGood.destroy()
    pWatch.destroy()
  })

  it('a message for a doc that is not subscribed gets an error, not a crash', async () => {
    const client = new RawMuxClient(relay.wsUrl)
    await client.open()
    client.sendUpdate('ws/never-subscribed', Y.encodeStateAsUpdate(new Y.Doc()))
    const error = await client.waitFor((m) => m.type === MessageType.error, 'error')
    expect(error.doc).toBe('ws/never-subscribed')
    expect(error.error?.reason).toMatch(/not subscribed/)
    client.close()
  })

  it('invalid doc names are refused', async () => {
    const client = new RawMuxClient(relay.wsUrl)
    await client.open()
    for (const name of ['../etc/passwd', 'a//b', '.concord/v1', 'x'.repeat(600), 'bad\0name', 'ws/тикет']) {
      client.subscribe(name)
    }
    const invalid = () => client.received.filter((m) => m.error?.code === ErrorCode.invalidDocName)
    await waitFor(() => invalid().length === 6, 'six invalid-doc-name errors')
    expect(invalid().every((m) => m.error!.reason.length > 0)).toBe(true)
    client.close()
    const res = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${relay.wsUrl}/..%2Fsecret`)
      ws.once('unexpected-response', (_req, response) => resolve(response.statusCode ?? 0))
      ws.once('open', () => resolve(101))
      ws.once('error', () => undefined)
    })
    expect(res).toBe(400)
  })
})

describe('http endpoints', () => {
  it('serves /healthz, /readyz and /metrics', async () => {
    const health = await fetch(`${relay.url}/healthz`)
    expect(health.status).toBe(200)
    const ready = await fetch(`${relay.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready', storage: 'sqlite' })
    const metrics = await (await fetch(`${relay.url}/metrics`)).text()
    for (const name of [
      'concord_connections',
      'concord_rooms_open',
      'concord_messages_in_total',
      'concord_messages_out_total',
      'concord_bytes_in_total',
      'concord_bytes_out_total',
      'concord_commit_duration_seconds',
      'concord_commit_failures_total',
      'concord_acks_sent_total',
    ]) {
      expect(metrics).toContain(name)
    }
  })
})

describe('configuration', () => {
  it('every wrong value gets its own message and exit code 2', async () => {
    const result = await runRelay(['--port', 'eighty', '--storage', 'mongo', '--log-level', 'loud', '--bogus'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--port must be a whole number/)
    expect(result.stderr).toMatch(/--storage must be "sqlite", "memory" or "postgres"/)
    expect(result.stderr).toMatch(/--log-level must be one of/)
    expect(result.stderr).toMatch(/unknown option "--bogus"/)
  })

  it('env vars are read and flags override them', async () => {
    const result = await runRelay(['--port', '70000'], { PORT: '1234' })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--port must be at most 65535/)
  })

  it('limits that contradict each other stop the relay with a message naming them (exit code 2); createRelay throws for them', async () => {
    const cases: Array<[args: string[], message: RegExp]> = [
      [
        ['--max-queued-bytes', '65536'],
        /--max-queued-bytes \(65536\) is below --max-payload \(1048576\): a single message could never wait/,
      ],
      [['--max-buffered-bytes', '1048576'], /--max-buffered-bytes \(1048576\) is below twice --max-payload \(2097152\)/],
      [
        ['--max-payload', '65536', '--initial-sync-chunk-bytes', '131072'],
        /--initial-sync-chunk-bytes \(131072\) is above --max-payload \(65536\)/,
      ],
      [
        [
          '--max-payload',
          '65536',
          '--max-buffered-bytes',
          '131072',
          '--initial-sync-chunk-bytes',
          '65536',
          '--max-doc-bytes',
          '8192',
          '--max-initial-sync-bytes',
          '16384',
        ],
        /--max-initial-sync-bytes \(16384\) is below --initial-sync-chunk-bytes \(65536\)/,
      ],
      [
        ['--max-doc-bytes', String(512 * 1024 * 1024)],
        /--max-doc-bytes \(536870912\) is above --max-initial-sync-bytes \(268435456\): the relay could not send a doc that large/,
      ],
    ]
    const results = await Promise.all(cases.map(([args]) => runRelay(['--port', '0', '--storage', 'memory', ...args])))
    for (const [i, [args, message]] of cases.entries()) {
      expect(results[i].code, args.join(' ')).toBe(2)
      expect(results[i].stderr, args.join(' ')).toMatch(message)
    }
    // the same from the environment
    const fromEnv = await runRelay(['--port', '0', '--storage', 'memory'], { MAX_QUEUED_BYTES: '65536' })
    expect(fromEnv.code).toBe(2)
    expect(fromEnv.stderr).toMatch(/--max-queued-bytes \(65536\) is below --max-payload/)
    await expect(createRelay({ storage: new MemoryStorage(), port: 0, limits: { maxBufferedBytes: 1024 * 1024 } })).rejects.toThrow(
      /limits contradict each other: --max-buffered-bytes \(1048576\) is below twice --max-payload/,
    )
  })

  it('a data dir written by a relay of SQLite schema 2 is upgraded at start, says so once, and keeps serving and numbering', async () => {
    const dir = makeTempDir()
    const file = path.join(dir, 'concord.sqlite')
    // What a schema 2 relay left: two updates of one doc, `docs.last_seq` moved by every append.
    const author = new Y.Doc()
    const updates: Uint8Array[] = []
    author.on('update', (update: Uint8Array) => updates.push(update))
    author.getText('t').insert(0, 'hello')
    author.getText('t').insert(5, ' there')
    const stored = SqliteStorage.open(file)
    await stored.appendUpdates([{ doc: 'upgrade/doc-1', updates }])
    await stored.close()
    const raw = new Database(file)
    raw.exec('UPDATE docs SET last_seq = (SELECT max(seq) FROM updates WHERE updates.doc = docs.doc)')
    raw.pragma('user_version = 2')
    raw.close()

    const upgraded = await startRelay({ dataDir: dir, args: ['--log-level', 'info'] })
    try {
      // the log is written asynchronously: it may follow the `listening on` line
      await waitFor(() => upgraded.output().includes('upgraded the SQLite schema from version 2 to 3'), 'the upgrade logged')
      const doc = new Y.Doc()
      const p = new WebsocketProvider(upgraded.wsUrl, 'upgrade/doc-1', doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
      await synced(p)
      expect(doc.getText('t').toString()).toBe('hello there')
      doc.getText('t').insert(11, '!')
      await waitFor(() => readLastSeq(file) === 3, 'the third update stored as number 3')
      p.destroy()
    } finally {
      await upgraded.stop()
    }
    const again = await startRelay({ dataDir: dir, args: ['--log-level', 'info'] })
    try {
      // the log keeps its order: once the relay's own "listening" line is out, an upgrade line would be too
      await waitFor(() => again.output().includes('relay listening'), 'the relay logged listening')
      expect(again.output()).not.toContain('upgraded the SQLite schema')
      const doc = new Y.Doc()
      const p = new WebsocketProvider(again.wsUrl, 'upgrade/doc-1', doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
      await synced(p)
      expect(doc.getText('t').toString()).toBe('hello there!')
      p.destroy()
    } finally {
      await again.stop()
      removeDir(dir)
    }
  })

  it('a data dir that cannot be created is a clear error', async () => {
    const dir = makeTempDir()
    const { writeFileSync } = await import('node:fs')
    writeFileSync(`${dir}/file`, 'x')
    const result = await runRelay(['--port', '0', '--data', `${dir}/file/sub`])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`concord-relay: cannot open sqlite storage in ${dir}/file/sub: ${dir}/file is not a directory\n`)
    const file = await runRelay(['--port', '0', '--data', `${dir}/file`])
    expect(file.code).toBe(2)
    expect(file.stderr).toContain(`concord-relay: cannot open sqlite storage in ${dir}/file: ${dir}/file is not a directory\n`)
    removeDir(dir)
  })

  it('a second relay on the same data dir refuses to start; the first keeps its lock and every acked change', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs')
    const os = await import('node:os')
    const first = await startRelay()
    const client = new RawMuxClient(first.wsUrl)
    await client.open()
    const doc = client.subscribe('ws/one-relay')
    await client.waitFor((m) => m.type === MessageType.ack, 'ack')
    const before = Y.encodeStateVector(doc)
    doc.getText('t').insert(0, 'acked')
    client.sendUpdate('ws/one-relay', Y.encodeStateAsUpdate(doc, before))
    await client.waitFor((m) => m.type === MessageType.ack && covers(m.ack, doc), 'the write acked')
    const lock = readFileSync(path.join(first.dataDir, 'relay.lock'), 'utf8')

    // Before: it started, replaced the lock, checkpointed from its own memory and dropped the first relay's acked writes.
    const second = await runRelay(['--port', '0', '--data', first.dataDir, '--no-web'])
    expect(second.code).toBe(2)
    expect(second.stderr).toMatch(/a relay is using .* \(process \d+ on .*\): stop it before you start another relay on it/)
    expect(second.stdout).not.toMatch(/listening on/)
    expect(readFileSync(path.join(first.dataDir, 'relay.lock'), 'utf8')).toBe(lock)
    client.close()
    expect(await first.stop()).toBe(0)

    // A lock left by a relay on another host (a container recreated after a crash) is taken over, with a warning.
    writeFileSync(
      path.join(first.dataDir, 'relay.lock'),
      JSON.stringify({ pid: 1, host: `${os.hostname()}-gone`, startedAt: '2026-01-01T00:00:00.000Z' }) + '\n',
    )
    const again = await startRelay({ dataDir: first.dataDir })
    expect(JSON.parse(readFileSync(path.join(first.dataDir, 'relay.lock'), 'utf8'))).toMatchObject({ pid: again.child.pid })
    const reader = new RawMuxClient(again.wsUrl)
    await reader.open()
    const read = reader.subscribe('ws/one-relay')
    await waitFor(() => read.getText('t').toString() === 'acked', 'the acked write after the restart')
    reader.close()
    await again.stop()
    expect(again.output()).toMatch(/replaced relay.lock of a relay on another host/)

    // A lock cut short by a crash (a power loss) does not keep the relay from starting again.
    writeFileSync(path.join(first.dataDir, 'relay.lock'), '{"pid": 12')
    const afterCrash = await startRelay({ dataDir: first.dataDir })
    expect(JSON.parse(readFileSync(path.join(first.dataDir, 'relay.lock'), 'utf8'))).toMatchObject({ pid: afterCrash.child.pid })
    await afterCrash.stop()
    expect(afterCrash.output()).toMatch(/replaced an unreadable relay.lock/)
    removeDir(first.dataDir)
  })

  it('SIGTERM stores and acks what is in flight, closes sockets with 1001 and exits 0', async () => {
    const other = await startRelay()
    const client = new RawMuxClient(other.wsUrl)
    await client.open()
    const doc = client.subscribe('ws/shutdown')
    await client.waitFor((m) => m.type === MessageType.ack, 'ack')
    const before = Y.encodeStateVector(doc)
    for (let i = 0; i < 50; i++) doc.getText('t').insert(0, 'x')
    client.sendUpdate('ws/shutdown', Y.encodeStateAsUpdate(doc, before))
    other.child.kill('SIGTERM')
    const closed = await client.waitClosed()
    expect(closed.code).toBe(1001)
    expect(client.received.some((m) => m.type === MessageType.ack && covers(m.ack, doc))).toBe(true)
    expect(await other.exited).toBe(0)
    const again = await startRelay({ dataDir: other.dataDir })
    const reader = new RawMuxClient(again.wsUrl)
    await reader.open()
    const read = reader.subscribe('ws/shutdown')
    await waitFor(() => read.getText('t').length === 50, 'stored text after restart')
    reader.close()
    await again.stop()
    removeDir(other.dataDir)
  })

  // Found by the reliability suites (test/reliability/relay-startup.test.ts): the relay printed
  // `listening on …` before it handled SIGTERM, so a SIGTERM sent on reading that line killed it
  // without a graceful shutdown (signal, no exit code) most of the time on a loaded machine.
  it('SIGTERM sent as soon as `listening on …` is printed shuts down gracefully (exit code 0)', async () => {
    const codes: Array<number | null> = []
    for (let i = 0; i < 4; i++) {
      const quick = await startRelay()
      codes.push(await quick.stop())
      removeDir(quick.dataDir)
    }
    expect(codes).toEqual([0, 0, 0, 0])
  })

  it('a frame over --max-payload closes the connection with 1009', async () => {
    const small = await startRelay({ args: ['--max-payload', '65536'] })
    const client = new RawMuxClient(small.wsUrl)
    await client.open()
    client.send(new Uint8Array(200_000))
    expect((await client.waitClosed()).code).toBe(1009)
    const health = await fetch(`${small.url}/healthz`)
    expect(health.status).toBe(200)
    await small.stop()
    removeDir(small.dataDir)
  })

  it('npm start serves the web app and the relay on one port', { timeout: 120_000 }, async () => {
    const dir = makeTempDir()
    const child = spawn(process.execPath, [path.join(repoRoot, 'scripts/start.mjs'), '--port', '0', '--data', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        const timer = setTimeout(() => reject(new Error(`no URL printed:\n${out}`)), 110_000)
        const onData = (c: Buffer) => {
          out += c.toString()
          const m = /^listening on (http:\/\/\S+)$/m.exec(out)
          if (m) {
            clearTimeout(timer)
            resolve(m[1])
          }
        }
        child.stdout.on('data', onData)
        child.stderr.on('data', (c: Buffer) => (out += c.toString()))
        child.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)))
      })
      const page = await fetch(url + '/')
      expect(page.status).toBe(200)
      expect(page.headers.get('content-type')).toMatch(/text\/html/)
      expect(await page.text()).toMatch(/Concord/)
      expect((await fetch(url + '/readyz')).status).toBe(200)
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
      removeDir(dir)
    }
  })

  it('npm start stops gracefully on a terminal Ctrl-C, and with npm when npm is sent SIGTERM', { timeout: 120_000 }, async () => {
    const { existsSync } = await import('node:fs')
    const dir = makeTempDir()
    /** `npm start` in a process group of its own, as a terminal runs it; resolves with its URL once listening. */
    const npmStart = async () => {
      const npm = spawn('npm', ['start', '--', '--port', '0', '--data', dir, '--log-level', 'info'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
      let out = ''
      npm.stdout.on('data', (c: Buffer) => (out += c.toString()))
      npm.stderr.on('data', (c: Buffer) => (out += c.toString()))
      const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
      await waitFor(() => /^listening on (http:\/\/\S+)$/m.test(out), `npm start listening:\n${out}`, 110_000)
      return { npm, exited, url: /^listening on (http:\/\/\S+)$/m.exec(out)![1]!, output: () => out }
    }
    const lock = path.join(dir, 'relay.lock')

    // Ctrl-C: SIGINT to the whole foreground group — npm, the start script and (before) the relay itself.
    const first = await npmStart()
    expect(existsSync(lock)).toBe(true)
    process.kill(-first.npm.pid!, 'SIGINT')
    await first.exited
    // Before: the relay got it twice, took the second for an impatient user and exited at once, leaving its lock.
    await waitFor(() => /"msg":"signal received"/.test(first.output()) && !existsSync(lock), 'the graceful stop', 10_000)
    expect(first.output()).not.toMatch(/second signal/)

    // SIGTERM to npm alone: before, npm exited and the start script and the relay kept serving, reparented.
    const second = await npmStart()
    process.kill(second.npm.pid!, 'SIGTERM')
    await second.exited
    await waitFor(() => !existsSync(lock), 'the relay stopped with npm', 10_000)
    await expect(fetch(second.url + '/healthz')).rejects.toThrow()
    removeDir(dir)
  })
})
