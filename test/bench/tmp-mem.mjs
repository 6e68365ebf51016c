import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { ticketState, editedTicketState } from './lib/docs.mjs'
const heap = () => { for (let i = 0; i < 4; i++) globalThis.gc(); return process.memoryUsage().heapUsed }
const N = 1000
const keep = []
let h0 = heap()
for (let i = 0; i < N; i++) { const d = new Y.Doc({ guid: 'g' + i }); Y.applyUpdate(d, ticketState(i)); keep.push(d) }
let h1 = heap(); console.log('Y.Doc with ticket', ((h1 - h0) / N / 1024).toFixed(2), 'KiB')
for (const d of keep) { const a = new Awareness(d); a.setLocalState(null); keep.push(a) ; if (keep.length > 3 * N) break }
let h2 = heap(); console.log('+ Awareness', ((h2 - h1) / N / 1024).toFixed(2), 'KiB')
const big = editedTicketState(1000); const bigs = []
h0 = heap(); for (let i = 0; i < 100; i++) { const d = new Y.Doc({ guid: 'b' + i }); Y.applyUpdate(d, big); bigs.push(d) }
h1 = heap(); console.log('Y.Doc with 1000-edit ticket', ((h1 - h0) / 100 / 1024).toFixed(1), 'KiB; encoded', (big.length / 1024).toFixed(1), 'KiB')
