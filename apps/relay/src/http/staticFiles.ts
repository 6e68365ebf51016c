/**
 * Serves the built web app (a folder of static files) with a single-page-app
 * fallback to `index.html`. Paths never leave the folder.
 *
 * @module http/staticFiles
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
}

/**
 * Returns a request handler serving `root`, or answering 404 when `root` is
 * null or holds no such file and no `index.html`.
 */
export const createStaticHandler = (root: string | null) => {
  const base = root ? path.resolve(root) : null
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> => {
    if (!base) return notFound(res)
    let relative: string
    try {
      relative = decodeURIComponent(pathname)
    } catch {
      return notFound(res)
    }
    if (relative.includes('\0')) return notFound(res)
    let file = path.resolve(base, '.' + path.posix.normalize('/' + relative))
    if (file !== base && !file.startsWith(base + path.sep)) return notFound(res)
    let info = await stat(file).catch(() => null)
    if (info?.isDirectory()) {
      file = path.join(file, 'index.html')
      info = await stat(file).catch(() => null)
    }
    if (!info?.isFile()) {
      // single-page app: unknown paths without an extension get index.html
      if (path.extname(relative) !== '') return notFound(res)
      file = path.join(base, 'index.html')
      info = await stat(file).catch(() => null)
      if (!info?.isFile()) return notFound(res)
    }
    const ext = path.extname(file)
    const immutable = file.includes(`${path.sep}assets${path.sep}`)
    res.writeHead(200, {
      'content-type': TYPES[ext] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
    })
    if (req.method === 'HEAD') return void res.end()
    createReadStream(file).pipe(res)
  }
}

const notFound = (res: ServerResponse): void => {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
  res.end('not found\n')
}
