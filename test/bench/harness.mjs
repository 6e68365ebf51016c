/**
 * The benchmark harness functions, in one place for run.mjs and the smoke
 * test (types in harness.d.mts).
 *
 * @module bench/harness
 */
export { FANOUT_CONTENDERS, applyCost, fanOut, fanOutOnce } from './fanout.mjs'
export { coldLoad } from './syncCore.mjs'
export { RECONNECT_CONTENDERS, offlineReconnect } from './reconnect.mjs'
export { MEMORY_CONTENDERS, relayMemory } from './memory.mjs'
export { profileFanOut, profileReconnect } from './profiles.mjs'
export { capacity } from './capacity.mjs'
export { reconnectStorm } from './storm.mjs'
export { idleTab } from './idle.mjs'
export { newDevice } from './newdevice.mjs'
export { scaleOut } from './scaleout.mjs'
export { summarizeProfile } from './profile.mjs'
export { textAppendUpdate } from './lib/wire.mjs'
export { editedTicketState, ticketState } from './lib/docs.mjs'
