/**
 * The container image (`deploy/Dockerfile`): it builds, runs as a non-root
 * user, answers `/readyz` and turns healthy. Needs a reachable Docker daemon
 * and its base image (`node:20-bookworm-slim`, pulled or present); without
 * them the test is skipped and says why.
 */
import { spawnSync } from 'node:child_process'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot, waitFor } from './helpers/relayProcess.js'

const IMAGE = 'concord-relay:test'
const BASE_IMAGE = 'node:20-bookworm-slim'

const docker = (args: string[], timeout = 60_000) => spawnSync('docker', args, { encoding: 'utf8', cwd: repoRoot, timeout })

/** Why the image cannot be built here, or null when it can. */
const unavailable = (): string | null => {
  const info = docker(['info', '--format', '{{.ServerVersion}}'], 20_000)
  if (info.error) return `docker is not installed (${info.error.message})`
  if (info.status !== 0) return `the Docker daemon is not reachable (${(info.stderr || info.stdout).trim().split('\n')[0]})`
  const present = docker(['image', 'inspect', BASE_IMAGE], 20_000).status === 0
  if (!present && docker(['pull', BASE_IMAGE], 300_000).status !== 0)
    return `the base image ${BASE_IMAGE} is not present and cannot be pulled`
  return null
}
const reason = unavailable()
if (reason) console.warn(`deploy-docker: skipped: ${reason}`)

let container: string | null = null
afterAll(() => {
  if (container) docker(['rm', '-f', container])
})

describe.skipIf(reason !== null)(`the container image (deploy/Dockerfile)${reason ? `: skipped, ${reason}` : ''}`, () => {
  it('builds, runs as a non-root user, answers /readyz and turns healthy', { timeout: 900_000 }, async () => {
    const build = docker(['build', '-f', 'deploy/Dockerfile', '-t', IMAGE, '.'], 840_000)
    expect(build.status, build.stderr).toBe(0)
    const run = docker(['run', '-d', '-e', 'JWT_SECRET=a-test-secret-that-is-at-least-32-characters', '-p', '127.0.0.1::8787', IMAGE])
    expect(run.status, run.stderr).toBe(0)
    container = run.stdout.trim()
    const port = docker(['port', container, '8787/tcp']).stdout.trim().split(':').pop()
    expect(docker(['exec', container, 'id', '-u']).stdout.trim()).not.toBe('0')
    let health = ''
    await waitFor(
      () => {
        health = docker(['inspect', '--format', '{{.State.Health.Status}}', container!]).stdout.trim()
        return health === 'healthy' || health === 'unhealthy'
      },
      'the container health check',
      120_000,
      1000,
    )
    expect(health).toBe('healthy')
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
    expect(ready.status).toBe(200)
    expect((await fetch(`http://127.0.0.1:${port}/`)).headers.get('content-type')).toMatch(/text\/html/)
  })
})
