// Types of the quorumkit Node.js binding (index.js).

/** The C ABI this binding speaks (qk_abi_version() must equal it). */
export const ABI_VERSION: number;
/** The loaded library's version, "MAJOR.MINOR.PATCH". */
export function version(): string;

/** A failed call: the qk_status number, its name and the call's own message. */
export class QuorumkitError extends Error {
  readonly status: number;
  /** 'NOT_FOUND', 'TIMEOUT', 'CANCELLED', ... (QK_ERR_ without the prefix). */
  readonly code: string;
}

/** Strings are sent as UTF-8; a Buffer is sent as is. */
export type Bytes = string | Buffer;

export class HashRing {
  constructor(vnodes?: number);
  addNode(name: Bytes, weight?: number): void;
  removeNode(name: Bytes): void;
  readonly size: number;
  nodes(): string[];
  getNode(key: Bytes): string;
  getNodes(key: Bytes, n: number): string[];
  /** One native call for all keys (a flat buffer plus offsets). */
  getNodeBatch(keys: Bytes[]): string[];
  close(): void;
}

export interface Lease {
  resource: string;
  owner: string;
  /** The fencing token (uint64). */
  token: bigint;
  /** Nanoseconds of the table's clock. */
  expiresAtNs: bigint;
  shared: boolean;
}

export interface AcquireOptions {
  /** Give up after this long (TIMEOUT); default: wait as long as it takes. */
  timeoutMs?: number;
  shared?: boolean;
  /** Aborting rejects the acquire with CANCELLED, holding nothing. */
  signal?: AbortSignal;
}

export class LeaseTable {
  constructor(options?: { lockDelayMs?: number });
  tryAcquire(resource: Bytes, owner: Bytes, ttlMs: number, options?: { shared?: boolean }): Lease;
  /** FIFO; no thread is blocked while it waits. */
  acquire(resource: Bytes, owner: Bytes, ttlMs: number, options?: AcquireOptions): Promise<Lease>;
  renew(lease: Lease, ttlMs: number): Lease;
  release(lease: Lease): void;
  queueLength(resource: Bytes): number;
  /** Pending acquires reject with CANCELLED. */
  close(): void;
}

export class Fence {
  constructor();
  /** Throws STALE_TOKEN when token is older than the newest seen for resource. */
  check(resource: Bytes, token: bigint | number): void;
  close(): void;
}

export interface DetectorOptions {
  threshold?: number;
  maxSamples?: number;
  minStdDevMs?: number;
  acceptablePauseMs?: number;
  firstHeartbeatEstimateMs?: number;
}

export class FailureDetector {
  constructor(options?: DetectorOptions);
  heartbeat(name: Bytes, nowNs: bigint | number): void;
  phi(name: Bytes, nowNs: bigint | number): number;
  isAvailable(name: Bytes, nowNs: bigint | number): boolean;
  close(): void;
}

export interface PaxosConfig {
  id: number;
  members: number[];
  clusterId?: bigint | number;
  seed?: bigint | number;
  heartbeatIntervalMs?: number;
  electionTimeoutMs?: number;
}

export interface PaxosOutput {
  kind: 'send' | 'decided' | 'persisted' | 'leaderChanged';
  to: number;
  slot: bigint;
  index: bigint;
  count: bigint;
  leader: number | null;
  /** A copy the caller owns. */
  data: Buffer;
}

export class PaxosNode {
  /** path: a file (reopen it to restart the replica) or null for memory. */
  constructor(config: PaxosConfig, path: string | null, nowNs: bigint | number);
  step(from: number, message: Buffer | Uint8Array, nowNs: bigint | number): void;
  tick(nowNs: bigint | number): void;
  propose(command: Bytes, nowNs: bigint | number): void;
  poll(): PaxosOutput[];
  isLeader(): boolean;
  nextDeadline(): bigint;
  close(): void;
}
