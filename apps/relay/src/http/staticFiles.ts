/**
 * Serves the built web app (a folder of static files) with `sirv`, with a
 * single-page-app fallback to `index.html` for paths without an extension.
 * Paths never leave the folder.
 *
 * Caching: Vite names the files under `assets/` after their content, so
 * they are `immutable` for a year; everything else (`index.html`, the
 * service worker `sw.js`, icons) is `no-cache`, revalidated with its ETag
 * on every load, so a new build reaches browsers at once.
 *
 * The folder is looked up on every request (sirv's `dev` mode) rather than
 * listed once at start: a rebuild of the web app replaces the hashed files,
 * and a listing taken at start would miss the new ones. A file can still
 * disappear between sirv's `stat` and its read (a rebuild running while a
 * browser loads the app); that request then fails alone (404 before the
 * answer started, a cut connection after), and the relay goes on.
 *
 * @module http/staticFiles
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import path from 'node:path'
import sirv from 'sirv'

/** Where Vite puts content-hashed files. */
const HASHED_ASSETS = '/assets/'

/**
 * Returns a request handler serving `root`, or answering 404 when `root` is
 * null or holds no such file and no `index.html`.
 */
export const createStaticHandler = (root: string | null) => {
  if (!root) return (_req: IncomingMessage, res: ServerResponse): void => notFound(res)
  const serve = sirv(path.resolve(root), {
    dev: true,
    etag: true,
    single: true,
    setHeaders: (res, pathname) => {
      // a path with an extension is that file, never the fallback index.html
      const hashed = pathname.startsWith(HASHED_ASSETS) && path.posix.extname(pathname) !== ''
      res.setHeader('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache')
      res.setHeader('X-Content-Type-Options', 'nosniff')
    },
  })
  return (req: IncomingMessage, res: ServerResponse): void => {
    // sirv pipes a read stream into the response without listening for its
    // errors; a file removed after sirv's stat would otherwise throw from an
    // unhandled 'error' event and stop the relay
    res.once('pipe', (source: Readable) => source.once('error', () => failed(res)))
    try {
      serve(req, res, () => notFound(res))
    } catch {
      // the file went away between sirv's existence check and its stat
      failed(res)
    }
  }
}

/** Ends a response whose file could not be read: 404 if nothing was sent yet, else cuts it (its length was promised). */
const failed = (res: ServerResponse): void => {
  if (!res.headersSent) {
    for (const name of res.getHeaderNames()) res.removeHeader(name)
    notFound(res)
  } else res.destroy()
}

const notFound = (res: ServerResponse): void => {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
  res.end('not found\n')
}
