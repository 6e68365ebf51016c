/**
 * Runs Debian's nginx on loopback for the deploy kit's tests: a site config
 * (one of `deploy/`'s, with ports, names and paths replaced) in a temp dir,
 * in the foreground, stopped by the returned function.
 *
 * @example
 *   const nginx = which('nginx')
 *   const port = await freePort()
 *   const stop = await startNginx(nginx!, dir, site.replace('listen 8787;', `listen 127.0.0.1:${port};`))
 *   await stop()
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs'
import net from 'node:net'
import path from 'node:path'

/** The path of `command` when it is installed (also in sbin, which may not be on PATH), else null. */
export const which = (command: string): string | null => {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const file = path.join(dir, command)
    if (dir && existsSync(file)) return file
  }
  return null
}

/** A TCP port free at the time of asking. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/**
 * Starts `nginx` with `site` (the contents of an `http`-level config) in
 * `dir`, once `nginx -t` accepts it; resolves when it listens, with a
 * function that stops it. Rejects with nginx's output when it does not start.
 */
export const startNginx = async (nginx: string, dir: string, site: string): Promise<() => Promise<unknown>> => {
  writeFileSync(path.join(dir, 'concord.conf'), site)
  mkdirSync(path.join(dir, 'tmp'), { recursive: true })
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${path.join(dir, 'tmp', k)};`).join(' ')
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 64; }
http { access_log off; ${temp} include ${path.join(dir, 'concord.conf')}; }
`,
  )
  const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf')]
  const check = spawnSync(nginx, [...args, '-t'], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`nginx -t refused the config:\n${check.stderr}`)
  // nginx writes its pid file after it bound its listening sockets: wait for that file, then connect
  const pidFile = path.join(dir, 'nginx.pid')
  rmSync(pidFile, { force: true }) // `nginx -t` leaves one behind
  let watcher: FSWatcher | undefined
  const listening = new Promise<void>((resolve) => {
    watcher = watch(dir, () => existsSync(pidFile) && resolve())
    if (existsSync(pidFile)) resolve()
  })
  const server: ChildProcess = spawn(nginx, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  server.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()))
  const exited = new Promise((resolve) => server.once('exit', resolve))
  const stop = (): Promise<unknown> => {
    if (server.exitCode === null) server.kill('SIGTERM')
    return exited
  }
  try {
    await Promise.race([listening, exited.then(() => Promise.reject(new Error(`nginx exited: ${log}`)))])
  } catch (error) {
    await stop()
    throw error
  } finally {
    watcher?.close()
  }
  return stop
}
