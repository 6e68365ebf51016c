/**
 * A flood of token-less sockets against a real relay with JWT auth: the
 * relay's RSS and a bystander's ping round trip, without and with the flood.
 * Each flood socket opens the multiplexed endpoint, never authenticates and
 * sends 15 messages of 60 KiB (within the message count allowed before
 * authentication). Bounded: N sockets, then everything is closed.
 *
 *   node test/bench/preauthFlood.mjs [N] [extra relay flags…]
 *   node test/bench/preauthFlood.mjs 200
 *   # a flood from many addresses (per-address limits out of the way):
 *   node test/bench/preauthFlood.mjs 200 --max-unauthenticated-per-address 100000 --connection-burst-per-address 100000
 *
 * Prints one JSON line: rssMiB and the bystander's median/p95 ping round
 * trip (ms) before and during the flood, and how the flood sockets fared.
 *
 * @module bench/preauthFlood
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { SignJWT } from 'jose'
import * as encoding from 'lib0/encoding'
import { MUX_PATH, MessageType, decodeMessage, encodeAuth, encodePing, startMessage } from '@concord/engine/protocol'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const secret = 'bench-secret-that-is-at-least-32-bytes-long!'
const count = Number(process.argv[2] ?? 200)
const extraArgs = process.argv.slice(3)

const startRelay = () =>
  new Promise((resolve, reject) => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'concord-flood-'))
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'apps/relay/bundle/main.js'),
        '--port',
        '0',
        '--data',
        data,
        '--log-level',
        'error',
        '--auth-timeout-ms',
        '60000',
        ...extraArgs,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, JWT_SECRET: secret },
      },
    )
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      const match = /listening on (http:\/\/\S+)/.exec(out)
      if (match) resolve({ child, data, wsUrl: match[1].replace(/^http/, 'ws') })
    })
    child.stderr.on('data', (chunk) => (out += chunk))
    child.once('exit', (code) => reject(new Error(`relay exited ${code}: ${out}`)))
  })

const rssMiB = (pid) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))
  return Math.round(Number(line.split(/\s+/)[1]) / 1024)
}

const token = () =>
  new SignJWT({ name: 'bystander', access: { acme: 'write' } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('bystander')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret))

const open = (url) =>
  new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.binaryType = 'nodebuffer'
    ws.once('open', () => resolve({ ws, status: 101 }))
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      resolve({ ws: null, status: res.statusCode })
    })
    ws.once('error', () => resolve({ ws: null, status: 0 }))
  })

/** Median and p95 of 50 ping round trips on an authenticated connection, ms. */
const pingRoundTrips = async (ws) => {
  const times = []
  for (let i = 0; i < 50; i++) {
    const started = performance.now()
    await new Promise((resolve) => {
      const onMessage = (data) => {
        if (decodeMessage(new Uint8Array(data)).type !== MessageType.pong) return
        ws.off('message', onMessage)
        resolve()
      }
      ws.on('message', onMessage)
      ws.send(encodePing())
    })
    times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)
  return { median: +times[25].toFixed(2), p95: +times[47].toFixed(2) }
}

const relay = await startRelay()
const bystander = (await open(relay.wsUrl + MUX_PATH)).ws
await new Promise((resolve) => {
  bystander.on('message', (data) => {
    if (decodeMessage(new Uint8Array(data)).type === MessageType.authenticated) resolve()
  })
  token().then((t) => bystander.send(encodeAuth(t)))
})
const quiet = { rssMiB: rssMiB(relay.child.pid), ping: await pingRoundTrips(bystander) }

const chunk = new Uint8Array(60 * 1024).fill(1)
const message = (() => {
  const encoder = startMessage(MessageType.sync, 'acme/flood')
  encoding.writeUint8Array(encoder, chunk)
  return encoding.toUint8Array(encoder)
})()
const flood = []
const statuses = {}
let closedByRelay = 0
for (let i = 0; i < count; i++) {
  const { ws, status } = await open(relay.wsUrl + MUX_PATH)
  statuses[status] = (statuses[status] ?? 0) + 1
  if (!ws) continue
  flood.push(ws)
  ws.on('close', () => closedByRelay++)
  ws.on('error', () => undefined)
  for (let m = 0; m < 15; m++) ws.send(message)
}
// let the relay read what was sent
await new Promise((resolve) => setTimeout(resolve, 2000))
const flooded = { rssMiB: rssMiB(relay.child.pid), ping: await pingRoundTrips(bystander) }
const stillOpen = flood.filter((ws) => ws.readyState === WebSocket.OPEN).length

console.log(JSON.stringify({ sockets: count, relayArgs: extraArgs, upgrades: statuses, stillOpen, closedByRelay, quiet, flooded }))
for (const ws of flood) ws.terminate()
bystander.terminate()
relay.child.kill('SIGTERM')
await new Promise((resolve) => relay.child.once('exit', resolve))
rmSync(relay.data, { recursive: true, force: true })
