/**
 * A loopback TCP proxy that a test can cut and restore, to take one client
 * offline without touching the relay or other clients.
 */
import net from 'node:net'

export interface TcpProxy {
  /** `ws://127.0.0.1:PORT` pointing at the proxy. */
  wsUrl: string
  /** Destroys every open connection and refuses new ones until {@link restore}. */
  cut(): void
  /** Accepts connections again. */
  restore(): void
  close(): Promise<void>
}

/** Starts a proxy to `127.0.0.1:targetPort`. */
export const startTcpProxy = (targetPort: number): Promise<TcpProxy> => {
  const sockets = new Set<net.Socket>()
  let open = true
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy()
      return
    }
    const upstream = net.connect(targetPort, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('close', drop)
    upstream.on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      resolve({
        wsUrl: `ws://127.0.0.1:${port}`,
        cut: () => {
          open = false
          for (const socket of sockets) socket.destroy()
          sockets.clear()
        },
        restore: () => {
          open = true
        },
        close: () =>
          new Promise<void>((r) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => r())
          }),
      })
    })
  })
}
