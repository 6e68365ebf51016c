/** Types of harness.mjs (the benchmark harness). */

/** Cores to pin servers and load generators to, or null for no pinning. */
export type Cores = { server: number; load: number } | null

export type FanOutContender =
  'floor' | 'y-websocket-server' | 'hocuspocus' | 'concord' | 'concord-memory' | 'concord-yws' | 'concord-yws-memory'

export interface FanOutRun {
  delivered: number
  updatesSent: number
  lost: number
  errors: string[]
  deliveredPerSec: number
  cpuPerDelivered: number
  cpuPerUpdate: number
  serverUtil: number
  p50: number
  p99: number
  samples: number
  ackP50: number
  ackP99: number
  saturation: { updatesPerSec: number; deliveredPerSec: number; serverUtil: number; loadUtil: number }
  /** Deliveries within one relay instance, and across two (scale-out; all within one with a single instance). */
  sameInstance: { p50: number; p99: number; samples: number }
  crossInstance: { p50: number; p99: number; samples: number }
  relay?: { updatesCommitted: number; commits: number; commitSeconds: number; acks: number }
}

export interface FanOutOptions {
  rooms: number
  clients: number
  contenders?: FanOutContender[]
  repeats?: number
  offeredDeliveries?: number
  warmupMs?: number
  measureMs?: number
  saturationMs?: number
  window?: number
  cores?: Cores
  serverExecArgv?: string[]
  log?: (line: string) => void
}

export declare const FANOUT_CONTENDERS: Record<FanOutContender, { label: string }>
export declare function fanOut(options: FanOutOptions): Promise<{
  config: Record<string, number>
  contenders: Record<string, { runs: FanOutRun[]; median: Record<string, number> }>
}>
export declare function applyCost(options: { rooms: number; clients: number; repeats?: number; totalUpdates?: number; cores?: Cores }): {
  updates: number
  microsPerUpdate: number
}

export interface ColdLoadResult {
  count: number
  coldProcessMs: number
  coldProcessFloorMs: number
  coldDocMs: number
  coldDocFloorMs: number
}
export declare function coldLoad(options: {
  counts?: number[]
  repeats?: number
  checkpointUpdates?: number
  cores?: Cores
  log?: (line: string) => void
}): Promise<{ checkpointUpdates: number; repeats: number; results: ColdLoadResult[] }>

export interface ReconnectRun {
  ms: number
  bytes: number
  bytesUp: number
  bytesDown: number
  diffBytes: number
  sockets: number
  docs: number
  serverCpuMs: number
  clientCpuMs: number
}
export declare function offlineReconnect(options: {
  records: number
  edits: number
  repeats?: number
  contenders?: Array<'concord' | 'y-websocket' | 'hocuspocus'>
  cores?: Cores
  timeoutMs?: number
  log?: (line: string) => void
}): Promise<{ config: Record<string, number>; contenders: Record<string, { runs: ReconnectRun[]; median: Record<string, number> }> }>

export declare function relayMemory(options: {
  small?: number
  big?: number
  edits?: number
  repeats?: number
  contenders?: Array<'concord' | 'concord-yws' | 'concord-awake' | 'y-websocket-server' | 'hocuspocus'>
  /** The Concord relays' `--dormant-after-ms` (not of `concord-awake`); default: theirs. */
  dormantAfterMs?: number
  cores?: Cores
  log?: (line: string) => void
}): Promise<{
  config: Record<string, number>
  contenders: Record<string, { runs: Array<Record<string, number>>; median: { smallRoomBytes: number; bigDocBytes: number } }>
}>

export interface CapacityWindow {
  p50: number
  p99: number
  samples: number
  relayCpu: number
  interference: number
  eventLoopP99: number
  eventLoopMax: number
  awarenessPerSec: number
  deliveriesPerSec: number
  editsPerSec: number
  awarenessSentPerSec: number
  loadCpu: number
  loadEventLoopP99: number
}
export interface CapacityStep {
  clients: number
  connectMs: number
  windows: CapacityWindow[]
  lost: number
  resyncs: number
  awarenessReceived: number
  errors: string[]
  median: Record<string, number>
  skipped?: string
}
export declare function capacity(options: {
  steps?: number[]
  windows?: number
  warmupMs?: number
  measureMs?: number
  editMeanMs?: number
  docsPerTeam?: number
  loadProcesses?: number
  cores?: Cores
  log?: (line: string) => void
}): Promise<{
  config: Record<string, number | number[]>
  steps: CapacityStep[]
  capacity: number
  loadBoundAt: number | null
}>

export interface StormRun {
  clients: number
  ms: number
  listenMs: number
  relayCpuMs: number
  loadCpuMs: number
  resyncs: number
  missingDependencies: number
  errors: string[]
}
export declare function reconnectStorm(options: {
  clients?: number
  docsPerTeam?: number
  repeats?: number
  loadProcesses?: number
  cores?: Cores
  log?: (line: string) => void
}): Promise<{ config: Record<string, number>; runs: StormRun[]; median: Record<string, number> }>

/** Frames and bytes of one phase of the idle-tab case. */
export interface IdlePhase {
  byType: Record<string, number>
  frames: number
  otherFrames: number
  bytes: number
  perRecordRequests: number
}
export declare function idleTab(options: {
  records?: number
  idleMs?: number
  repeats?: number
  cores?: Cores
  log?: (line: string) => void
}): Promise<{
  config: Record<string, number>
  runs: Array<{
    fillMs: number
    sockets: number
    idle: IdlePhase & { relayCpuMs: number; relayCpuShare: number }
    reconnect: IdlePhase & { ms: number }
  }>
  median: Record<string, number>
}>

export declare function newDevice(options: { records?: number; repeats?: number; cores?: Cores; log?: (line: string) => void }): Promise<
  | {
      config: Record<string, number>
      runs: Array<{ firstScreenMs: number; allMs: number; total: number; stored: number }>
      median: { firstScreenMs: number; allMs: number }
    }
  | { skipped: string }
>

/** How `scaleOut` places clients on the instances: a room's clients on one instance, or spread over them. */
export type ScaleOutLayout = 'rooms' | 'clients'
export declare function scaleOut(options: {
  instanceCounts?: number[]
  layouts?: ScaleOutLayout[]
  rooms?: number
  clients?: number
  offeredDeliveries?: number
  warmupMs?: number
  measureMs?: number
  saturationMs?: number
  window?: number
  repeats?: number
  cores?: Cores
  log?: (line: string) => void
}): Promise<
  | {
      config: Record<string, number | number[] | ScaleOutLayout[]>
      cores: number
      /** Per layout, per instance count (the 1-instance runs are shared), and the largest count's throughput ÷ 1 instance's. */
      layouts: Partial<
        Record<ScaleOutLayout, { counts: Record<string, { runs: FanOutRun[]; median: Record<string, number> }>; throughputRatio: number }>
      >
      largest: number
      /** The target's ratio: rooms spread when measured. */
      throughputRatio: number
    }
  | { skipped: string }
>

export interface ProfileSummary {
  busyMs: number
  byComponent: Array<{ name: string; ms: number; share: number }>
  topFunctions: Array<{ name: string; where: string; component: string; ms: number; share: number }>
  inclusive: Record<string, number>
}
export declare function profileFanOut(options: {
  configs: Array<{ rooms: number; clients: number }>
  cores?: Cores
  measureMs?: number
  names?: FanOutContender[]
}): Promise<Array<ProfileSummary & { rooms: number; clients: number; name: string; result: FanOutRun }>>
export declare function profileReconnect(options: { records: number; edits: number; cores?: Cores }): Promise<ProfileSummary>
export declare function summarizeProfile(
  file: string,
  options?: { top?: number },
): ProfileSummary & {
  inclusive: (predicate: (frame: { functionName: string; url: string }) => boolean) => { ms: number; share: number }
}

export declare function textAppendUpdate(client: number, clock: number, key: string, text: string): Uint8Array
export declare function ticketState(i: number, clientID?: number): Uint8Array
export declare function editedTicketState(edits?: number, options?: { authors?: number; seed?: number }): Uint8Array
