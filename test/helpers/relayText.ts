/**
 * Reads a text (or the author bindings) of a doc straight from a relay with a Node SyncClient: what
 * the relay stored, whatever a browser shows.
 */
import WebSocket from 'ws'
import { SyncClient, type AuthorInfo } from '@concord/engine'

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

/** The relay's author bindings of `doc` (Yjs client id → user), as `fetchDoc` gets them (`token`: for a relay with auth). */
export const relayAuthors = async (wsUrl: string, doc: string, token?: string): Promise<AuthorInfo[]> => {
  const client = new SyncClient({ url: wsUrl, WebSocket: WebSocket as never, ...(token === undefined ? {} : { token }) })
  try {
    return (await client.fetchDoc(doc, new Uint8Array([0]))).authors
  } finally {
    client.close()
  }
}

/**
 * The Yjs client ids the relay shows in presence for `doc` right now, with the user each state names
 * (stamped by the relay from the token on a relay with auth). Presence binds nothing: a client id is
 * bound to its user by the first edit made with it.
 */
export const relayPresence = async (wsUrl: string, doc: string, token?: string): Promise<Array<{ clientId: number; userId: string }>> => {
  const client = new SyncClient({ url: wsUrl, WebSocket: WebSocket as never, ...(token === undefined ? {} : { token }) })
  try {
    const handle = client.open(doc)
    await handle.synced
    // the relay sends every state right after the subscription: a round trip later they are all here
    await client.fetchDoc(doc, new Uint8Array([0]))
    const present: Array<{ clientId: number; userId: string }> = []
    for (const [clientId, state] of handle.awareness.getStates()) {
      const userId = (state.user as { id?: unknown } | undefined)?.id
      if (clientId !== handle.doc.clientID && typeof userId === 'string') present.push({ clientId, userId })
    }
    return present
  } finally {
    client.close()
  }
}
