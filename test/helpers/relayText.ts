/**
 * Reads a text of a doc straight from a relay with a Node SyncClient: what
 * the relay stored, whatever a browser shows.
 */
import WebSocket from 'ws'
import { SyncClient } from '@concord/engine'

/** The text `text` (e.g. `text:title`) of `doc` as the relay at `wsUrl` has it. */
export const relayText = async (wsUrl: string, doc: string, text: string): Promise<string> => {
  const client = new SyncClient({ url: wsUrl, WebSocket: WebSocket as never })
  try {
    const handle = client.open(doc)
    await handle.synced
    return handle.doc.getText(text).toString()
  } finally {
    client.close()
  }
}
