/**
 * Auth configuration of the relay process: secure by default, tokens never
 * logged, RS256/ES256 via a JWKS URL and a PEM public key file; a JWKS URL
 * that cannot be reached is logged; token settings without a key, and a key
 * of the wrong type, stop the start with a clear message.
 */
import { afterAll, describe, expect, it } from 'vitest'
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose'
import { MUX_PATH } from '@concord/engine/protocol'
import { makeTempDir, removeDir, runRelay, startRelay, waitFor, type RelayProcess } from './helpers/relayProcess.js'
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

  it('an EC key with the default RS256 is refused with a hint; token checks without a key stop the start', async () => {
    const ec = await generateKeyPair('ES256', { extractable: true })
    const dir = makeTempDir()
    try {
      writeFileSync(`${dir}/key.pem`, await exportSPKI(ec.publicKey))
      const wrongAlgorithm = await runRelay(['--port', '0', '--storage', 'memory', '--jwt-public-key-file', `${dir}/key.pem`])
      expect(wrongAlgorithm.code).toBe(2)
      expect(wrongAlgorithm.stderr).toMatch(/the JWT public key cannot be used: .*\(an EC P-256 key needs --jwt-algorithm ES256\)/)
    } finally {
      removeDir(dir)
    }
    const noKey = await runRelay(['--port', '0', '--storage', 'memory', '--jwt-algorithm', 'ES256', '--jwt-issuer', 'foo'])
    expect(noKey.code).toBe(2)
    expect(noKey.stderr.trim()).toMatch(/^concord-relay: --jwt-algorithm, --jwt-issuer need a key to verify tokens with/)
  })

  it('a JWKS URL that cannot be reached refuses tokens and says why in the log, once per failure streak', async () => {
    const rsa = await generateKeyPair('RS256')
    const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
    const jwks = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [jwk] }))
    })
    // a port nothing listens on yet
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()))
    const port = (jwks.address() as import('node:net').AddressInfo).port
    await new Promise<void>((r) => jwks.close(() => r()))
    const url = `http://127.0.0.1:${port}/jwks.json`
    const relay = await startRelay({ args: ['--storage', 'memory', '--jwks-url', url, '--log-level', 'info'] })
    started.push(relay)
    const token = await new SignJWT({ access: { acme: 'write' } })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('walt')
      .setExpirationTime('1h')
      .sign(rsa.privateKey)
    const warnings = (): Array<Record<string, any>> =>
      relay
        .output()
        .split('\n')
        .filter((line) => line.includes('cannot fetch the JWKS'))
        .map((line) => JSON.parse(line))
    for (let attempt = 0; attempt < 3; attempt++) expect(await upgradeStatus(`${relay.wsUrl}${MUX_PATH}?token=${token}`)).toBe(401)
    await waitFor(() => warnings().length > 0, 'the warning')
    expect(warnings()).toHaveLength(1)
    expect(warnings()[0]).toMatchObject({ level: 40, jwksUrl: url })
    expect(warnings()[0].msg).toContain(`cannot fetch the JWKS at ${url} (fetch failed: ECONNREFUSED)`)

    await new Promise<void>((r) => jwks.listen(port, '127.0.0.1', () => r()))
    try {
      expect(await upgradeStatus(`${relay.wsUrl}${MUX_PATH}?token=${token}`)).toBe(101)
      await waitFor(() => relay.output().includes(`the JWKS at ${url} answers again`), 'the JWKS to be logged as back')
    } finally {
      jwks.close()
    }
  })
})
