/**
 * Raw multiplexed-protocol clients in teams, for the capacity and
 * reconnect-storm cases: teams of `teamSize` clients share `docsPerTeam`
 * docs; every client keeps one socket to the relay with all of its team's
 * docs subscribed, like the engine's `SyncClient` with those docs open.
 *
 * What each client sends (no Y.Doc on the hot path; see lib/wire.mjs):
 *
 * - on every (re)connect, once the relay's `hello` arrived, as the engine
 *   does by default: to a relay that announces `resume`, one `resume` with every doc
 *   and the state vector of everything it has seen of it; to one that does
 *   not, per doc a `subscribe` and a `sync step 1` with that state vector;
 *   then its awareness state (`{ user: { id, name, color } }` under the
 *   doc's client id, announced again on every subscribe, see the engine's
 *   `DocAwareness`) in every doc that shows presence — all of it in one
 *   `batch` to a relay that announces them, as the engine sends it. Which
 *   docs show presence is the `presence` option: `'every-doc'` (default),
 *   as a `SyncClient` created with `user` shows it in every doc it opens;
 *   `'viewed'`, as the web app's record store shows it — only in the record
 *   on screen (doc `i mod docsPerTeam` for the team's `i`-th member), the
 *   others held open without presence;
 * - the answer to the relay's `sync step 1` (or to a `resumed` entry that
 *   carries the relay's state vector): a `sync step 2` with what the relay
 *   lacks of its own edits (empty when it has them all); those answering one
 *   `resumed` message in one `batch`, as the engine sends them;
 * - while the load runs: an edit (one character appended to its own Y.Text,
 *   a `sync update`) to a random doc of its team every `editMeanMs` on
 *   average (each delay uniform in [0.5, 1.5] × the mean); every 15 s the
 *   awareness keep-alive of each of its docs that shows presence (y-protocols renews the local
 *   state when it is half of its 30 s timeout old, and `DocAwareness`
 *   sends every renewal); every 15 s a `ping` (the engine's heartbeat).
 *   Keep-alives and pings of different clients are spread by a random phase;
 *   the 20 keep-alives of one client go out together, as the engine's
 *   awareness timers of docs opened together do.
 *
 * What they receive is counted by message type; deliveries of edits are
 * recognised by (client id, clock) and timed send → receipt (sender and
 * receivers of a team live in the same process, so one clock serves).
 *
 * Every loop is bounded: by timers the caller stops and by `maxEditsPerDoc`.
 *
 * @module bench/lib/teamClients
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { RelayFeatures, encodeBatches, encodeResume, readBatch, readHello, readResumed } from '@concord/engine/protocol'
import { prng } from './stats.mjs'
import { EMPTY_UPDATE, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, protocols, readUpdateId, textAppendUpdate } from './wire.mjs'

/** y-protocols renews a local awareness state after half of its 30 s timeout; `DocAwareness` sends each renewal. */
export const KEEPALIVE_MS = 15_000
/** The engine's `ping` interval. */
export const PING_MS = 15_000
/** Multiplexed message types (docs/PROTOCOL.md). */
const T = { sync: 0, awareness: 1, subscribe: 16, ack: 18, error: 19, hello: 20, ping: 21, pong: 22, authors: 28, resumed: 36, batch: 39 }
/** `error` code of an update whose dependencies the relay lacks. */
const MISSING_DEPENDENCIES = 12
const PING = new Uint8Array([T.ping, 0]) // ping • varString("")
const mux = protocols.mux

/** Name of doc `d` of team `team`. */
export const teamDocName = (team, d) => `team-${team}/doc-${d}`

/** The awareness update by which `clientID` sets `state` (JSON) at `clock`. */
const awarenessUpdate = (clientID, clock, json) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, clientID)
  encoding.writeVarUint(e, clock)
  encoding.writeVarString(e, json)
  return encoding.toUint8Array(e)
}

/** A Yjs state vector from a Map of client id → clock. */
const encodeStateVector = (map) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, map.size)
  for (const [client, clock] of map) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
  }
  return encoding.toUint8Array(e)
}

/** Reads a state vector (varUint8Array at the decoder's position) into a Map. */
const readStateVector = (decoder) => decodeStateVector(decoding.readVarUint8Array(decoder))

/** An encoded state vector as a Map of client id → clock. */
const decodeStateVector = (bytes) => {
  const d = decoding.createDecoder(bytes)
  const n = decoding.readVarUint(d)
  const map = new Map()
  for (let i = 0; i < n; i++) map.set(decoding.readVarUint(d), decoding.readVarUint(d))
  return map
}

/**
 * The clients of teams `firstTeam … firstTeam + teams - 1`, in one load process.
 *
 * @example
 *   const group = new TeamClients({ url, firstTeam: 0, teams: 25 })
 *   await group.connect()
 *   group.startLoad()
 *   group.mark('start'); await sleep(10_000); group.mark('end')
 *   group.stopLoad(); group.close()
 */
export class TeamClients {
  constructor({
    url,
    firstTeam,
    teams,
    teamSize = 10,
    docsPerTeam = 20,
    editMeanMs = 5000,
    maxEditsPerDoc = 10_000,
    seed = 1,
    presence = 'every-doc',
    onClosed = null,
  }) {
    if (presence !== 'every-doc' && presence !== 'viewed') throw new Error(`presence: 'every-doc' or 'viewed', not ${presence}`)
    this.url = url + mux.path()
    this.teamSize = teamSize
    this.editMeanMs = editMeanMs
    this.maxEditsPerDoc = maxEditsPerDoc
    this.random = prng(seed + firstTeam)
    /** Called with a client whose socket closed (the storm case reconnects it when told). */
    this.onClosed = onClosed
    /** Yjs client id → its doc state, to recognise deliveries. */
    this.byId = new Map()
    this.clients = []
    for (let t = firstTeam; t < firstTeam + teams; t++) {
      for (let i = 0; i < teamSize; i++) {
        const index = t * teamSize + i
        const client = {
          index,
          team: t,
          ws: null,
          docs: [],
          byName: new Map(),
          timers: [],
          waiting: null,
          batches: false,
          maxPayload: 0,
          held: null,
        }
        const json = JSON.stringify({ user: { id: `user-${index}`, name: `User ${index}`, color: '#3b82f6' } })
        for (let d = 0; d < docsPerTeam; d++) {
          const doc = {
            client,
            name: teamDocName(t, d),
            id: 1_000_000 + index * docsPerTeam + d, // the doc's Yjs (and awareness) client id
            key: `t${i}`,
            clock: 0, // own edits sent
            acked: 0, // own edits the relay acked as stored
            sv: new Map(), // what this client has of the doc: client id → clock
            sent: [], // send time by clock
            remaining: [], // receivers still to get it, by clock
            awarenessJson: presence === 'every-doc' || d === i % docsPerTeam ? json : null, // null: no presence in this doc
            awarenessClock: 1, // set at open (0) and again with `user` (1), as DocHandle does
            sub: null, // the current subscription's progress
          }
          client.docs.push(doc)
          client.byName.set(doc.name, doc)
          this.byId.set(doc.id, doc)
        }
        this.clients.push(client)
      }
    }
    this.counts = {
      deliveries: 0,
      awarenessIn: 0,
      syncIn: 0,
      acksIn: 0,
      resumedIn: 0,
      pongsIn: 0,
      batchesIn: 0,
      otherIn: 0,
      editsSent: 0,
      awarenessSent: 0,
      pingsSent: 0,
      resyncs: 0,
      missingDependencies: 0,
    }
    this.errors = []
    /**
     * Measurement windows: `{ start, end, latencies }`. A delivery's latency
     * goes to the window in which its edit was sent, also when it arrives
     * after the window ended.
     */
    this.windows = []
    this.loadRunning = false
  }

  /** Opens every client's socket (at most `concurrency` handshakes at once); resolves when every doc is synced. */
  async connect({ concurrency = 50 } = {}) {
    let next = 0
    const worker = async () => {
      while (next < this.clients.length) await this.connectClient(this.clients[next++])
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  }

  /**
   * Opens one client's socket, subscribes all of its docs and resolves when
   * each has the relay's step 1 (answered), step 2, and an ack covering the
   * client's own edits.
   */
  connectClient(client) {
    return new Promise((resolve, reject) => {
      let left = client.docs.length
      client.waiting = () => {
        if (--left === 0) {
          client.waiting = null
          resolve()
        }
      }
      const ws = new WebSocket(this.url, { perMessageDeflate: false })
      client.ws = ws
      ws.binaryType = 'nodebuffer'
      ws.on('message', (data) => this.receive(client, data))
      ws.once('error', reject)
      ws.on('close', () => {
        if (client.ws === ws) this.onClosed?.(client)
      })
      ws.on('open', () => {
        ws.off('error', reject)
        ws.on('error', () => {})
      })
    })
  }

  /** The relay's `hello`: subscribes every doc of the client (in one `resume` when the relay can), then announces presence. */
  subscribeAll(client, hello) {
    for (const doc of client.docs) doc.sub = { step1: false, step2: false, acked: false, done: false, sentClock: doc.sv.get(doc.id) ?? 0 }
    client.batches = (hello.features & RelayFeatures.batch) !== 0
    client.maxPayload = hello.maxPayload ?? 1024 * 1024
    this.together(client, () => {
      if (hello.features & RelayFeatures.resume) {
        this.send(client, encodeResume(client.docs.map((doc) => ({ doc: doc.name, stateVector: encodeStateVector(doc.sv) }))))
      } else {
        for (const doc of client.docs) {
          this.send(client, mux.subscribe(doc.name))
          this.send(client, mux.sync(doc.name, SYNC_STEP1, encodeStateVector(doc.sv)))
        }
      }
      for (const doc of client.docs) {
        if (doc.awarenessJson === null) continue
        this.send(client, mux.awareness(doc.name, awarenessUpdate(doc.id, ++doc.awarenessClock, doc.awarenessJson)))
        this.counts.awarenessSent++
      }
    })
  }

  /** Sends a message on the client's socket, or holds it for the batch {@link together} sends. */
  send(client, data) {
    if (client.held) client.held.push(data)
    else client.ws.send(data)
  }

  /** Runs `fn`; to a relay that takes batches, what it sends goes out in batches when it returns (as the engine's `together`). */
  together(client, fn) {
    if (!client.batches || client.held) return fn()
    client.held = []
    try {
      fn()
    } finally {
      const held = client.held
      client.held = null
      for (const frame of encodeBatches(held, client.maxPayload, (bytes) => deflateRawSync(bytes))) client.ws.send(frame)
    }
  }

  /** Marks the doc's subscription done once step 1, step 2 and a covering ack arrived. */
  progress(doc) {
    const s = doc.sub
    if (s.done || !s.step1 || !s.step2 || !s.acked) return
    s.done = true
    doc.client.waiting?.()
  }

  receive(client, data) {
    const now = performance.now()
    const type = data[0] // every type used is < 128: one varUint byte
    if (type === T.awareness) {
      this.counts.awarenessIn++
      return
    }
    if (type === T.pong) {
      this.counts.pongsIn++
      return
    }
    if (type === T.batch) {
      const decoder = decoding.createDecoder(data)
      decoding.readVarUint(decoder)
      decoding.readVarString(decoder) // doc ""
      this.counts.batchesIn++
      for (const message of readBatch(decoder, (bytes) => inflateRawSync(bytes))) this.receive(client, message)
      return
    }
    if (type === T.hello || type === T.resumed) {
      const decoder = decoding.createDecoder(data)
      decoding.readVarUint(decoder)
      decoding.readVarString(decoder) // doc ""
      if (type === T.hello) this.subscribeAll(client, readHello(decoder))
      else {
        const entries = readResumed(decoder)
        this.together(client, () => {
          for (const entry of entries) this.receiveResumed(client, entry)
        })
      }
      return
    }
    if (type !== T.sync && type !== T.ack && type !== T.error) {
      this.counts.otherIn++
      return
    }
    const decoder = decoding.createDecoder(data)
    decoding.readVarUint(decoder)
    const doc = client.byName.get(decoding.readVarString(decoder))
    if (doc === undefined) return
    if (type === T.ack) {
      this.counts.acksIn++
      this.takeAck(doc, readStateVector(decoder).get(doc.id) ?? 0)
      return
    }
    if (type === T.error) {
      const code = decoding.readVarUint(decoder)
      if (code === MISSING_DEPENDENCIES) this.counts.missingDependencies++
      if (this.errors.length < 10) this.errors.push(`${doc.name}: ${code} ${decoding.readVarString(decoder)}`)
      return
    }
    this.counts.syncIn++
    const sub = decoding.readVarUint(decoder)
    if (sub === SYNC_UPDATE) {
      const { client: from, clock } = readUpdateId(decoder)
      if ((doc.sv.get(from) ?? 0) <= clock) doc.sv.set(from, clock + 1)
      const sender = this.byId.get(from)
      if (sender === undefined || sender.client === client) return
      this.counts.deliveries++
      const sentAt = sender.sent[clock]
      for (let w = this.windows.length - 1; w >= 0; w--) {
        const window = this.windows[w]
        if (sentAt > window.end) break
        if (sentAt >= window.start) {
          window.latencies.push(now - sentAt)
          break
        }
      }
      if (--sender.remaining[clock] === 0) sender.sent[clock] = undefined
      return
    }
    if (sub === SYNC_STEP1) this.answerStep1(doc, readStateVector(decoder))
    else if (sub === SYNC_STEP2) this.takeStep2(doc, decoding.readVarUint8Array(decoder))
  }

  /** One doc's entry of a `resumed` answer: the relay's step 1 (if it lacks something), the first ack (if there), the step 2 (unless in parts). */
  receiveResumed(client, { doc: name, relayStateVector, ack, update }) {
    const doc = client.byName.get(name)
    if (doc === undefined) return
    this.counts.resumedIn++
    if (relayStateVector !== null) this.answerStep1(doc, decodeStateVector(relayStateVector))
    else {
      // the relay lacks nothing of this client: there is no step 1 to answer
      doc.sub.step1 = true
    }
    if (ack === 'client-state') this.takeAck(doc, doc.sub.sentClock)
    else if (ack !== null) this.takeAck(doc, decodeStateVector(ack).get(doc.id) ?? 0)
    if (update !== null) this.takeStep2(doc, update)
  }

  /** The relay's sync step 1 (its state vector as a Map): answered with a step 2 of what it lacks of this client's edits. */
  answerStep1(doc, relayState) {
    // A second step 1 on one subscription: the relay asks again for what it lacks.
    if (doc.sub.step1) this.counts.resyncs++
    doc.sub.step1 = true
    const relayHas = relayState.get(doc.id) ?? 0
    const missing = doc.clock - relayHas
    const answer = missing > 0 ? textAppendUpdate(doc.id, relayHas, doc.key, 'x'.repeat(missing)) : EMPTY_UPDATE
    this.send(doc.client, mux.sync(doc.name, SYNC_STEP2, answer))
    this.progress(doc)
  }

  /** The relay's sync step 2: what this client lacked. */
  takeStep2(doc, update) {
    if (update.byteLength > 2) {
      for (const [from, clock] of Y.parseUpdateMeta(update).to) if ((doc.sv.get(from) ?? 0) < clock) doc.sv.set(from, clock)
    }
    doc.sub.step2 = true
    this.progress(doc)
  }

  /** An ack: the relay stored this client's edits of the doc up to `acked`. */
  takeAck(doc, acked) {
    if (acked > doc.acked) doc.acked = acked
    if (acked >= doc.clock && !doc.sub.acked) {
      doc.sub.acked = true
      this.progress(doc)
    }
  }

  /** One edit of a random doc of the client's team. */
  edit(client) {
    if (client.ws?.readyState !== WebSocket.OPEN) return
    const doc = client.docs[Math.floor(this.random() * client.docs.length)]
    if (doc.clock >= this.maxEditsPerDoc) return
    const clock = doc.clock++
    doc.sent[clock] = performance.now()
    doc.remaining[clock] = this.teamSize - 1
    doc.sv.set(doc.id, doc.clock)
    client.ws.send(mux.sync(doc.name, SYNC_UPDATE, textAppendUpdate(doc.id, clock, doc.key, 'x')))
    this.counts.editsSent++
  }

  /** One edit of every doc of every client (the storm case's content). */
  editEveryDoc() {
    for (const client of this.clients) {
      for (const doc of client.docs) {
        const clock = doc.clock++
        doc.sent[clock] = performance.now()
        doc.remaining[clock] = this.teamSize - 1
        doc.sv.set(doc.id, doc.clock)
        client.ws.send(mux.sync(doc.name, SYNC_UPDATE, textAppendUpdate(doc.id, clock, doc.key, 'x')))
        this.counts.editsSent++
      }
    }
  }

  /** Docs with own edits the relay has not acked. */
  get unacked() {
    let n = 0
    for (const doc of this.byId.values()) if (doc.acked < doc.clock) n++
    return n
  }

  /** Every doc's awareness keep-alive of one client. */
  keepAlive(client) {
    if (client.ws?.readyState !== WebSocket.OPEN) return
    for (const doc of client.docs) {
      if (doc.awarenessJson === null) continue
      client.ws.send(mux.awareness(doc.name, awarenessUpdate(doc.id, ++doc.awarenessClock, doc.awarenessJson)))
      this.counts.awarenessSent++
    }
  }

  /** Starts edits, keep-alives and pings (see the module documentation). */
  startLoad() {
    this.loadRunning = true
    for (const client of this.clients) {
      const scheduleEdit = () => {
        const timer = setTimeout(
          () => {
            this.edit(client)
            if (this.loadRunning) scheduleEdit()
          },
          this.editMeanMs * (0.5 + this.random()),
        )
        client.timers[0] = timer
      }
      scheduleEdit()
      const every = (slot, ms, fn) => {
        client.timers[slot] = setTimeout(() => {
          fn()
          if (this.loadRunning) client.timers[slot] = setInterval(fn, ms)
        }, ms * this.random())
      }
      every(1, KEEPALIVE_MS, () => this.keepAlive(client))
      every(2, PING_MS, () => {
        if (client.ws?.readyState !== WebSocket.OPEN) return
        client.ws.send(PING)
        this.counts.pingsSent++
      })
    }
  }

  /** Stops every timer of the load. */
  stopLoad() {
    this.loadRunning = false
    for (const client of this.clients) {
      for (const timer of client.timers) {
        clearTimeout(timer)
        clearInterval(timer)
      }
      client.timers = []
    }
  }

  /** Starts or ends a measurement window; returns the counters and this process's CPU time then. */
  mark(which) {
    if (which === 'start') this.windows.push({ start: performance.now(), end: Infinity, latencies: [] })
    else this.windows.at(-1).end = performance.now()
    const cpu = process.cpuUsage()
    return { at: performance.now(), counts: { ...this.counts }, cpuMicros: cpu.user + cpu.system }
  }

  /** Sockets whose docs are not all synced (the storm case waits for none). */
  get unsynced() {
    return this.clients.filter((c) => c.docs.some((d) => !d.sub?.done)).length
  }

  /** Edits sent whose deliveries have not all arrived. */
  get inFlight() {
    let n = 0
    for (const doc of this.byId.values()) for (const left of doc.remaining) if (left > 0) n++
    return n
  }

  /** Closes every socket at once (no close handshake). */
  close() {
    this.stopLoad()
    for (const client of this.clients) {
      const ws = client.ws
      client.ws = null
      ws?.terminate()
    }
  }
}
