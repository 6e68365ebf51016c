/**
 * The admin commands (`concord-relay <command>`) against real relay
 * processes and their data dirs: a backup taken under write load restores
 * to a relay that serves every change acknowledged before the backup
 * started; restore, import and compact refuse while a relay holds the data
 * dir; export/import round-trips a workspace and merges; inspect reports a
 * doc's storage and authors; token mints tokens the relay accepts (with the
 * iss and aud it requires) and refuses grants no doc could match.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { MessageType, MUX_PATH } from '@concord/engine/protocol'
import { makeTempDir, removeDir, runRelay, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
import { RawMuxClient, covers, upgradeStatus } from './helpers/rawClient.js'
import { TEST_SECRET } from './helpers/tokens.js'

const dirs: string[] = []
const relays: RelayProcess[] = []
const clients: RawMuxClient[] = []
afterAll(async () => {
  for (const client of clients) client.close()
  await Promise.all(relays.map((r) => r.stop()))
  for (const dir of dirs) removeDir(dir)
})

const tempDir = (): string => {
  const dir = makeTempDir('concord-cli-')
  dirs.push(dir)
  return dir
}
const start = async (dataDir: string, env?: Record<string, string>): Promise<RelayProcess> => {
  const relay = await startRelay({ dataDir, args: ['--no-web'], ...(env ? { env } : {}) })
  relays.push(relay)
  return relay
}
const connect = async (relay: RelayProcess, token?: string): Promise<RawMuxClient> => {
  const client = new RawMuxClient(relay.wsUrl, token === undefined ? {} : { token })
  clients.push(client)
  await client.open()
  return client
}
/** `concord-relay <args>` to completion. */
const cli = (args: string[], env: Record<string, string> = {}) => runRelay(args, env)

/** Subscribes and waits for the subscription's first ack (the doc's stored state has been sent before it). */
const open = async (client: RawMuxClient, name: string): Promise<Y.Doc> => {
  const doc = client.subscribe(name)
  await client.waitFor((m) => m.type === MessageType.ack && m.doc === name, `first ack of ${name}`)
  return doc
}

/** Sets `key` in the doc's map `m`, sends the change and resolves once the relay acknowledged it. */
const write = async (client: RawMuxClient, name: string, doc: Y.Doc, key: string, value: unknown): Promise<void> => {
  const before = Y.encodeStateVector(doc)
  doc.getMap('m').set(key, value)
  client.sendUpdate(name, Y.encodeStateAsUpdate(doc, before))
  await client.waitFor((m) => m.type === MessageType.ack && m.doc === name && covers(m.ack, doc), `ack of ${name} ${key}`)
}

/** Opens `name` on a fresh connection and waits until its map `m` has every key of `keys`. */
const expectKeys = async (relay: RelayProcess, name: string, keys: string[]): Promise<Y.Map<unknown>> => {
  const client = await connect(relay)
  const map = (await open(client, name)).getMap('m')
  await waitFor(() => keys.every((k) => map.has(k)), `${name} to hold ${keys.length} keys (has ${map.size})`)
  return map
}

describe('backup and restore', () => {
  it(
    'a backup taken under write load restores to a relay that serves every change acked before it started',
    { timeout: 60_000 },
    async () => {
      const dataDir = tempDir()
      // a webhook subscription (for a workspace nobody writes to: no deliveries), kept with the backup
      const subscriptions = {
        version: 1,
        subscriptions: [
          { id: 'sub-1', workspace: 'quiet', url: 'http://127.0.0.1:9/hook', secret: 's'.repeat(43), createdAt: 1, createdBy: 'ada' },
        ],
      }
      writeFileSync(path.join(dataDir, 'webhooks.json'), JSON.stringify(subscriptions))
      const relay = await start(dataDir)
      const names = ['load/d0', 'load/d1', 'load/d2']
      const writers = await Promise.all(
        names.map(async (name) => {
          const client = await connect(relay)
          return { name, client, doc: await open(client, name), acked: 0 }
        }),
      )
      // each writer keeps one change in flight until the backup is done
      let writing = true
      const load = writers.map(async (w) => {
        for (let n = 1; writing && n <= 5000; n++) {
          await write(w.client, w.name, w.doc, `k${n}`, n)
          w.acked = n
        }
      })
      await waitFor(() => writers.every((w) => w.acked >= 20), 'some acked changes before the backup')
      const ackedBefore = writers.map((w) => w.acked)
      const backupFile = path.join(tempDir(), 'concord-backup.sqlite')
      const backup = await cli(['backup', backupFile, '--data', dataDir])
      writing = false
      await Promise.all(load)
      expect(backup.stderr).toBe('')
      expect(backup.code).toBe(0)
      expect(backup.stdout).toMatch(/backed up 3 docs.*webhook subscriptions to concord-backup\.sqlite\.webhooks\.json/)
      expect(
        writers.some((w, i) => w.acked > ackedBefore[i]),
        'writes went on during the backup',
      ).toBe(true)

      // restore refuses while the relay runs, and says how it knows
      const refused = await cli(['restore', backupFile, '--data', dataDir])
      expect(refused.code).toBe(3)
      expect(refused.stderr).toMatch(/a relay is using .* \(process \d+ .*relay\.lock\): stop it before you restore/)

      await relay.stop()
      rmSync(path.join(dataDir, 'webhooks.json'))
      const restored = await cli(['restore', backupFile, '--data', dataDir])
      expect(restored.stderr).toBe('')
      expect(restored.code).toBe(0)
      expect(restored.stdout).toMatch(/and the webhook subscriptions/)
      expect(readdirSync(dataDir).some((f) => f.startsWith('concord.sqlite.before-restore-'))).toBe(true)
      expect(JSON.parse(readFileSync(path.join(dataDir, 'webhooks.json'), 'utf8'))).toEqual(subscriptions)

      const after = await start(dataDir)
      for (const [i, name] of names.entries()) {
        const keys = Array.from({ length: ackedBefore[i] }, (_, k) => `k${k + 1}`)
        const map = await expectKeys(after, name, keys)
        expect(map.size).toBeLessThanOrEqual(writers[i].acked)
      }
      await after.stop()
    },
  )

  it('refuses a file that is not a relay database, a data dir without one, and wrong usage', async () => {
    const dataDir = tempDir()
    const notADatabase = path.join(dataDir, 'notes.txt')
    writeFileSync(notADatabase, 'hello')
    const restore = await cli(['restore', notADatabase, '--data', dataDir])
    expect(restore.code).toBe(1)
    expect(restore.stderr).toMatch(/is not a usable relay backup/)
    const backup = await cli(['backup', notADatabase, '--data', dataDir])
    expect(backup.code).toBe(1)
    expect(backup.stderr).toMatch(/no relay database in/)
    const usage = await cli(['backup'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/backup takes one <file>/)
    for (const command of [
      ['backup', notADatabase],
      ['inspect', 'acme/t1'],
      ['import', dataDir],
    ]) {
      const onPostgres = await cli(command, { STORAGE: 'postgres', DATABASE_URL: 'postgres://concord@127.0.0.1:1/concord' })
      expect(onPostgres.code, command[0]).toBe(2)
      expect(onPostgres.stderr).toMatch(/the admin commands work on the SQLite storage only, and STORAGE=postgres is set: .*pg_dump/)
    }
    const help = await cli(['restore', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/Usage: concord-relay restore <file>/)
  })
})

describe('export, import, compact', () => {
  it(
    'exports a workspace while the relay runs, imports it into another data dir, and merges into diverged docs',
    { timeout: 60_000 },
    async () => {
      const source = tempDir()
      const relay = await start(source)
      const client = await connect(relay)
      for (const name of ['acme/t1', 'acme/t2', 'other/t1']) {
        const doc = await open(client, name)
        doc.getMap('record').set('type', 'ticket')
        doc.getText('text:description').insert(0, `text of ${name}`)
        await write(client, name, doc, 'from', 'source')
      }
      const folder = path.join(tempDir(), 'acme-export')
      const exported = await cli(['export', 'acme', folder, '--data', source])
      expect(exported.stderr).toBe('')
      expect(exported.stdout).toMatch(/exported 2 docs of workspace acme/)
      const manifest = JSON.parse(readFileSync(path.join(folder, 'workspace.json'), 'utf8'))
      expect(manifest.docs.map((d: { doc: string }) => d.doc)).toEqual(['acme/t1', 'acme/t2'])
      expect(manifest.docs[0].content).toMatchObject({ record: { type: 'ticket' }, 'text:description': 'text of acme/t1' })
      expect(existsSync(path.join(folder, manifest.docs[0].file))).toBe(true)

      // a data dir where acme/t1 has a change of its own
      const target = tempDir()
      const other = await start(target)
      const local = await connect(other)
      await write(local, 'acme/t1', await open(local, 'acme/t1'), 'local', 'target')
      const refused = await cli(['import', folder, '--data', target])
      expect(refused.code).toBe(3)
      await other.stop()

      const lastSeqOf = async (doc: string): Promise<number> =>
        JSON.parse((await cli(['inspect', doc, '--json', '--data', target])).stdout).lastSeq
      const imported = await cli(['import', folder, '--data', target])
      expect(imported.stderr).toBe('')
      expect(imported.stdout).toMatch(/imported 2 docs .*: 2 changed, 0 unchanged/)
      const stored = [await lastSeqOf('acme/t1'), await lastSeqOf('acme/t2')]
      // the same export again: every doc holds everything in it already, nothing is stored
      const again = await cli(['import', folder, '--data', target])
      expect(again.stderr).toBe('')
      expect(again.stdout).toMatch(/imported 2 docs .*: 0 changed, 2 unchanged/)
      expect([await lastSeqOf('acme/t1'), await lastSeqOf('acme/t2')]).toEqual(stored)
      const merged = await start(target)
      const t1 = await expectKeys(merged, 'acme/t1', ['from', 'local'])
      expect(t1.doc!.getText('text:description').toString()).toBe('text of acme/t1')
      await expectKeys(merged, 'acme/t2', ['from'])
      await merged.stop()

      const missing = await cli(['export', 'nobody', path.join(tempDir(), 'x'), '--data', source])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toMatch(/workspace "nobody" has no docs/)
      await relay.stop()
    },
  )

  it(
    'compacts logs into checkpoints once no relay runs (even one killed with kill -9); inspect reports it',
    { timeout: 60_000 },
    async () => {
      const dataDir = tempDir()
      const relay = await start(dataDir)
      const client = await connect(relay)
      const doc = await open(client, 'acme/log')
      for (let n = 0; n < 10; n++) await write(client, 'acme/log', doc, `k${n}`, n)
      const before = await cli(['inspect', 'acme/log', '--json', '--data', dataDir])
      expect(before.code).toBe(0)
      expect(JSON.parse(before.stdout)).toMatchObject({ doc: 'acme/log', lastSeq: 10, log: { updates: 10 }, checkpoint: null })
      const refused = await cli(['compact', '--data', dataDir])
      expect(refused.code).toBe(3)
      // kill -9 leaves relay.lock behind, naming a process that is gone: it no longer counts
      await relay.kill()
      expect(existsSync(path.join(dataDir, 'relay.lock'))).toBe(true)

      const compacted = await cli(['compact', '--data', dataDir])
      expect(compacted.stderr).toBe('')
      expect(compacted.stdout).toMatch(/compacted 1 of 1 docs/)
      const after = JSON.parse((await cli(['inspect', 'acme/log', '--json', '--data', dataDir])).stdout)
      expect(after).toMatchObject({ lastSeq: 10, log: { updates: 0, bytes: 0 }, checkpoint: { uptoSeq: 10 } })
      const restarted = await start(dataDir)
      await expectKeys(
        restarted,
        'acme/log',
        Array.from({ length: 10 }, (_, n) => `k${n}`),
      )
      await restarted.stop()
      const unknown = await cli(['inspect', 'acme/nothing', '--data', dataDir])
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toMatch(/no doc named "acme\/nothing"/)
    },
  )
})

describe('token and inspect', () => {
  it('mints a token the relay accepts; inspect shows the user bound to the client that wrote', { timeout: 30_000 }, async () => {
    const env = { JWT_SECRET: TEST_SECRET }
    const minted = await cli(['token', '--user', 'ada', '--name', 'Ada', '--workspace', 'acme=write', '--expires', '10m'], env)
    expect(minted.stderr).toBe('')
    expect(minted.code).toBe(0)
    const token = minted.stdout.trim()
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)

    const dataDir = tempDir()
    const relay = await start(dataDir, env)
    const client = await connect(relay, token)
    const doc = await open(client, 'acme/t1')
    doc.getMap('record').set('updatedAt', Date.UTC(2026, 0, 2))
    doc.getMap('record').set('updatedBy', 'ada')
    await write(client, 'acme/t1', doc, 'status', 'open')

    const report = JSON.parse((await cli(['inspect', 'acme/t1', '--json', '--data', dataDir])).stdout)
    expect(report.authors).toEqual([{ userId: 'ada', name: 'Ada' }])
    expect(report.clients).toEqual([{ clientId: doc.clientID, items: expect.any(Number), userId: 'ada', name: 'Ada' }])
    expect(report.lastChange).toEqual({ at: '2026-01-02T00:00:00.000Z', by: 'ada' })
    const text = await cli(['inspect', 'acme/t1', '--data', dataDir])
    expect(text.stdout).toMatch(/authors\s+Ada \(ada\)/)

    // a read-only token minted the same way reads the change
    const readOnly = (await cli(['token', '--user', 'bob', '--workspace', 'acme=read'], env)).stdout.trim()
    const reader = await connect(relay, readOnly)
    const seen = await open(reader, 'acme/t1')
    await waitFor(() => seen.getMap('m').get('status') === 'open', 'the reader to see the change')
    await relay.stop()

    const noSecret = await cli(['token', '--user', 'ada', '--workspace', 'acme=write'], { JWT_SECRET: '' })
    expect(noSecret.code).toBe(1)
    expect(noSecret.stderr).toMatch(/no secret: set JWT_SECRET/)
    const badGrant = await cli(['token', '--user', 'ada', '--workspace', 'acme=admin'], env)
    expect(badGrant.code).toBe(2)
    expect(badGrant.stderr).toMatch(/--workspace "acme=admin" is not <ws>=read or <ws>=write/)
    const missingValue = await cli(['token', '--user', '--workspace', 'acme=write'], env)
    expect(missingValue.code).toBe(2)
    expect(missingValue.stderr).toMatch(/--user/)
    const badWorkspace = await cli(['token', '--user', 'ada', '--workspace', 'Acme Co=write'], env)
    expect(badWorkspace.code).toBe(2)
    expect(badWorkspace.stderr).toMatch(/--workspace "Acme Co=write": "Acme Co" is not a workspace id, doc name or \*/)
    for (const grant of ['*=read', 'acme/t1=write', 'acme-2.x=read']) {
      expect((await cli(['token', '--user', 'ada', '--workspace', grant], env)).code, grant).toBe(0)
    }
  })

  it('mints tokens with the iss and aud a relay started with --jwt-issuer and --jwt-audience requires', { timeout: 30_000 }, async () => {
    const relay = await startRelay({
      args: ['--no-web', '--storage', 'memory', '--jwt-issuer', 'https://auth.example.com', '--jwt-audience', 'concord'],
      env: { JWT_SECRET: TEST_SECRET },
    })
    relays.push(relay)
    const mint = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
      const minted = await cli(['token', '--user', 'ada', '--workspace', 'acme=write', ...args], { JWT_SECRET: TEST_SECRET, ...env })
      expect(minted.stderr).toBe('')
      return minted.stdout.trim()
    }
    const status = async (token: string): Promise<number> => upgradeStatus(`${relay.wsUrl}${MUX_PATH}?token=${token}`)
    expect(await status(await mint([]))).toBe(401)
    expect(await status(await mint(['--jwt-issuer', 'https://auth.example.com', '--jwt-audience', 'concord']))).toBe(101)
    // the relay's own variables, as in its environment file
    expect(await status(await mint([], { JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'concord' }))).toBe(101)
  })
})

describe('the relay command line', () => {
  it('unknown commands and flags without their value are errors naming them', async () => {
    const unknown = await cli(['bakup', 'x'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/unknown command "bakup"; commands: backup, restore/)
    const ambiguous = await cli(['--web-root', '--port', '0'])
    expect(ambiguous.code).toBe(2)
    expect(ambiguous.stderr).toMatch(/--web-root needs a value, but is followed by --port/)
  })

  it('--help describes the flags, JWT_SECRET and the commands', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--port\s+\[PORT\] TCP port/)
    expect(help.stdout).toMatch(/JWT_SECRET/)
    expect(help.stdout).toMatch(/backup\s+write a consistent copy/)
  })

  const webBuilt = existsSync(path.join(import.meta.dirname, '..', 'apps/web/dist/index.html'))
  it.skipIf(!webBuilt)(
    'serves the built web app at / without --web-root (skipped when apps/web/dist is not built), and none with --no-web',
    async () => {
      const relay = await startRelay({ args: ['--log-level', 'info'] })
      relays.push(relay)
      dirs.push(relay.dataDir)
      const page = await fetch(`${relay.url}/`)
      expect(page.status).toBe(200)
      expect(await page.text()).toMatch(/<!doctype html>/i)
      expect(relay.output()).toMatch(/serving the web app from .*apps\/web\/dist/)
      await relay.stop()
      const bare = await startRelay({ args: ['--no-web'] })
      relays.push(bare)
      dirs.push(bare.dataDir)
      expect((await fetch(`${bare.url}/`)).status).toBe(404)
      await bare.stop()
    },
  )
})
