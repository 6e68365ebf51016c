/**
 * Auth configuration of the relay process: secure by default, tokens never
 * logged, RS256/ES256 via a JWKS URL and a PEM public key file.
 */
import { afterAll, describe, expect, it } from 'vitest'
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose'
import { MUX_PATH } from '@concord/engine/protocol'
import { makeTempDir, removeDir, runRelay, startRelay, type RelayProcess } from './helpers/relayProcess.js'
import { TEST_SECRET, signToken } from './helpers/tokens.js'
import { upgradeStatus } from './helpers/rawClient.js'

const started: RelayProcess[] = []
afterAll(async () => {
  for (const r of started) {
    await r.stop()
    removeDir(r.dataDir)
  }
})

describe('secure by default', () => {
  it('refuses to bind a non-loopback address without auth, with a clear message and exit code 2', async () => {
    const result = await runRelay(['--host', '0.0.0.0', '--port', '0', '--storage', 'memory'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication/)
  })

  it('--insecure allows it and says so', async () => {
    const relay = await startRelay({ args: ['--host', '0.0.0.0', '--storage', 'memory', '--insecure'] })
    started.push(relay)
    expect(relay.output()).toMatch(/authentication is off: anyone who can reach 0\.0\.0\.0/)
  })

  it('without auth on loopback it says only this machine can connect', async () => {
    const relay = await startRelay({ args: ['--storage', 'memory'] })
    started.push(relay)
    expect(relay.output()).toMatch(/authentication is off: only this machine can connect/)
  })

  it('a short JWT secret and two key sources are configuration errors', async () => {
    const short = await runRelay(['--port', '0', '--storage', 'memory'], { JWT_SECRET: 'short' })
    expect(short.code).toBe(2)
    expect(short.stderr).toMatch(/JWT_SECRET must be at least 32 characters/)
    const two = await runRelay(['--port', '0', '--storage', 'memory', '--jwks-url', 'http://127.0.0.1:1/jwks'], { JWT_SECRET: TEST_SECRET })
    expect(two.code).toBe(2)
    expect(two.stderr).toMatch(/choose one way to verify tokens/)
  })
})

describe('web app config', () => {
  it('/.concord/config tells the web app whether sign-in takes a token', async () => {
    const open = await startRelay({ args: ['--storage', 'memory'] })
    started.push(open)
    expect(await (await fetch(`${open.url}/.concord/config`)).json()).toEqual({ auth: 'none' })
    const secured = await startRelay({ args: ['--storage', 'memory'], env: { JWT_SECRET: TEST_SECRET } })
    started.push(secured)
    expect(await (await fetch(`${secured.url}/.concord/config`)).json()).toEqual({ auth: 'jwt' })
  })
})

describe('tokens in logs', () => {
  it('never logs a token, even at trace level and when it is refused', async () => {
    const relay = await startRelay({
      args: ['--storage', 'memory', '--host', '0.0.0.0', '--log-level', 'trace'],
      env: { JWT_SECRET: TEST_SECRET },
    })
    started.push(relay)
    const good = await signToken('walt', { acme: 'write' })
    const bad = await signToken('walt', { acme: 'write' }, { secret: 'x'.repeat(40) })
    const url = relay.wsUrl.replace('0.0.0.0', '127.0.0.1')
    expect(await upgradeStatus(`${url}${MUX_PATH}?token=${good}`)).toBe(101)
    expect(await upgradeStatus(`${url}${MUX_PATH}?token=${bad}`)).toBe(401)
    expect(await upgradeStatus(`${url}/acme/T-1?token=${good}`)).toBe(101)
    // everything the relay logged about these connections is out once it has stopped
    await relay.stop()
    const out = relay.output()
    expect(out).toMatch(/refused: bad token/)
    for (const token of [good, bad]) {
      expect(out).not.toContain(token)
      expect(out).not.toContain(token.split('.')[2])
    }
  })
})

describe('asymmetric keys', () => {
  it('verifies RS256 tokens from a JWKS URL and ES256 tokens with a PEM public key', async () => {
    const rsa = await generateKeyPair('RS256')
    const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
    const jwks = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [jwk] }))
    })
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()))
    const port = (jwks.address() as import('node:net').AddressInfo).port
    try {
      const relay = await startRelay({ args: ['--storage', 'memory', '--jwks-url', `http://127.0.0.1:${port}/jwks.json`] })
      started.push(relay)
      const sign = (key: CryptoKey, alg: string, kid?: string) =>
        new SignJWT({ access: { acme: 'write' } })
          .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
          .setSubject('walt')
          .setExpirationTime('1h')
          .sign(key)
      expect(await upgradeStatus(`${relay.wsUrl}${MUX_PATH}?token=${await sign(rsa.privateKey, 'RS256', 'k1')}`)).toBe(101)
      const other = await generateKeyPair('RS256')
      expect(await upgradeStatus(`${relay.wsUrl}${MUX_PATH}?token=${await sign(other.privateKey, 'RS256', 'k1')}`)).toBe(401)

      const ec = await generateKeyPair('ES256', { extractable: true })
      const dir = makeTempDir()
      writeFileSync(`${dir}/key.pem`, await exportSPKI(ec.publicKey))
      const pemRelay = await startRelay({
        args: ['--storage', 'memory', '--jwt-public-key-file', `${dir}/key.pem`, '--jwt-algorithm', 'ES256'],
      })
      started.push(pemRelay)
      expect(await upgradeStatus(`${pemRelay.wsUrl}${MUX_PATH}?token=${await sign(ec.privateKey, 'ES256')}`)).toBe(101)
      expect(await upgradeStatus(`${pemRelay.wsUrl}${MUX_PATH}?token=${await sign(rsa.privateKey, 'RS256')}`)).toBe(401)
      removeDir(dir)
    } finally {
      jwks.close()
    }
  })
})
