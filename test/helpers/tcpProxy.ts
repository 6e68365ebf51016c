/**
 * A loopback TCP proxy that a test can cut and restore, to take one client
 * offline without touching the relay or other clients — with a clean TCP
 * close ({@link TcpProxy.cut}) or silently ({@link TcpProxy.stall}).
 */
import net from 'node:net'

export interface TcpProxy {
  /** `ws://127.0.0.1:PORT` pointing at the proxy. */
  wsUrl: string
  /** Destroys every open connection and refuses new ones until {@link restore}. */
  cut(): void
  /**
   * A network that silently drops everything: open connections stay open
   * but nothing is forwarded any more (no FIN, no RST — neither end learns
   * about it until its own timeout), and new connections hang. A close on
   * one side is not passed on either. Until {@link restore}, which drops the
   * stalled connections.
   */
  stall(): void
  /** Accepts connections again. */
  restore(): void
  close(): Promise<void>
}

/** Starts a proxy to `127.0.0.1:targetPort`. */
export const startTcpProxy = (targetPort: number): Promise<TcpProxy> => {
  const sockets = new Set<net.Socket>()
  let open = true
  let stalled = false
  /** Stops forwarding on open connections: see `stall`. */
  const stallers = new Set<() => void>()
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy()
      return
    }
    sockets.add(client)
    client.on('error', () => {})
    if (stalled) {
      client.pause() // hangs: accepted, never answered
      return
    }
    const upstream = net.connect(targetPort, '127.0.0.1')
    sockets.add(upstream)
    let frozen = false
    const freeze = (): void => {
      frozen = true
      client.unpipe(upstream)
      upstream.unpipe(client)
      client.pause()
      upstream.pause()
    }
    stallers.add(freeze)
    const drop = (): void => {
      stallers.delete(freeze)
      if (frozen) return // a stalled network passes nothing on, not even a close
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
          stalled = false
          stallers.clear()
          for (const socket of sockets) socket.destroy()
          sockets.clear()
        },
        stall: () => {
          stalled = true
          for (const freeze of stallers) freeze()
          stallers.clear()
        },
        restore: () => {
          if (stalled) {
            for (const socket of sockets) socket.destroy()
            sockets.clear()
          }
          stalled = false
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
