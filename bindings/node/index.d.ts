// Types of the quorumkit Node.js binding (index.js). Hand-written; checked by
// `npm run typecheck` against types/check.ts.

/// <reference types="node" />

/** A name or key: a string (sent as UTF-8) or raw bytes. */
export type Bytes = string | Buffer | Uint8Array;
/** A uint64 (tokens, nanosecond times): a BigInt or a non-negative safe integer. */
export type U64 = bigint | number;

export const ABI_VERSION: 2;
/** The loaded library's version ("0.1.0"). */
export const version: string;
/** The path the C library was loaded from (QUORUMKIT_LIB, or ../../target/release/libquorumkit.so). */
export const libraryPath: string;
/** qk_status numbers by name: { OK: 0, NULL_ARG: 1, ..., CANCELLED: 29, ... }. */
export const codes: Readonly<Record<StatusCode | 'OK', number>>;
/** qk_status_str(): the short text of a status ("not found"). */
export function statusString(status: number): string;

export type StatusCode =
  | 'NULL_ARG' | 'INVALID_ARG' | 'INVALID_UTF8' | 'EMPTY' | 'NOT_FOUND' | 'ALREADY_EXISTS'
  | 'BUFFER_TOO_SMALL' | 'PANIC' | 'CORRUPT' | 'UNSUPPORTED_VERSION' | 'TIMEOUT' | 'LEASE_EXPIRED'
  | 'NOT_HOLDER' | 'STALE_TOKEN' | 'BUSY' | 'STORAGE' | 'NOT_LEADER' | 'NOT_MONOTONIC'
  | 'STORAGE_CORRUPT' | 'STORAGE_IN_USE' | 'STORAGE_MISMATCH' | 'LIMIT_EXCEEDED' | 'CANCELLED'
  | 'BACKEND_UNAVAILABLE';

/** A failed library call: `status` is the qk_status number, `code` its name, `message` the call's own detail. */
export class QuorumkitError extends Error {
  constructor(status: number, message?: string);
  readonly status: number;
  readonly code: StatusCode | string;
}
export class NullArgError extends QuorumkitError {}
export class InvalidArgError extends QuorumkitError {}
export class InvalidUtf8Error extends QuorumkitError {}
export class EmptyError extends QuorumkitError {}
export class NotFoundError extends QuorumkitError {}
export class AlreadyExistsError extends QuorumkitError {}
export class BufferTooSmallError extends QuorumkitError {}
export class PanicError extends QuorumkitError {}
export class CorruptError extends QuorumkitError {}
export class UnsupportedVersionError extends QuorumkitError {}
export class TimeoutError extends QuorumkitError {}
export class LeaseExpiredError extends QuorumkitError {}
export class NotHolderError extends QuorumkitError {}
export class StaleTokenError extends QuorumkitError {}
export class BusyError extends QuorumkitError {}
export class StorageError extends QuorumkitError {}
export class NotLeaderError extends QuorumkitError {}
export class NotMonotonicError extends QuorumkitError {}
export class StorageCorruptError extends QuorumkitError {}
export class StorageInUseError extends QuorumkitError {}
export class StorageMismatchError extends QuorumkitError {}
export class LimitExceededError extends QuorumkitError {}
export class CancelledError extends QuorumkitError {}
export class BackendUnavailableError extends QuorumkitError {}

/** Owns one library handle; close() frees it (idempotent). Unclosed handles are freed when collected. */
declare class Handle {
  readonly closed: boolean;
  close(): void;
  [Symbol.dispose](): void;
}

/** The API HashRing, KetamaRing, Maglev and Rendezvous share. Node indices are dense, in insertion order. */
declare class Placement extends Handle {
  addNode(name: Bytes, weight?: number): void;
  removeNode(name: Bytes): void;
  setWeight(name: Bytes, weight: number): void;
  weight(name: Bytes): number;
  readonly size: number;
  readonly nodeNames: string[];
  nodeName(index: number): string;
  indexOf(name: Bytes): number;
  getNode(key: Bytes): string;
  getNodeIndex(key: Bytes): number;
  getNodes(key: Bytes, n: number): string[];
  /** One library call for all keys (a flat buffer plus offsets). */
  getNodeBatch(keys: readonly Bytes[]): string[];
  getNodeIndexBatch(keys: readonly Bytes[]): Uint32Array;
  /** Each node's share of the keys, by index. */
  shares(): number[];
  snapshot(): Buffer;
}

export class HashRing extends Placement {
  constructor(options?: { vnodes?: number });
  static restore(snapshot: Uint8Array): HashRing;
}
export class KetamaRing extends Placement {
  constructor(options?: {
    compat?: 'libmemcached' | 'uhashring' | number;
    servers?: ReadonlyArray<Bytes | { name: Bytes; weight?: number }>;
  });
  static restore(snapshot: Uint8Array): KetamaRing;
}
export class Maglev extends Placement {
  constructor(options?: { tableSize?: number });
  readonly tableSize: number;
  clone(): Maglev;
  diff(other: Maglev): number;
  static restore(snapshot: Uint8Array): Maglev;
}
export class Rendezvous extends Placement {
  constructor();
  static restore(snapshot: Uint8Array): Rendezvous;
}

export interface Lease<R extends Bytes = Bytes, O extends Bytes = Bytes> {
  resource: R;
  owner: O;
  /** The fencing token: greater than every token the table granted before. */
  token: bigint;
  /** When the lease ends unless renewed, in ns of the table's clock (LeaseTable.now()). */
  expiresAtNs: bigint;
  shared: boolean;
}
export interface LeaseRef {
  resource: Bytes;
  owner: Bytes;
  token: U64;
}

export class LeaseTable extends Handle {
  constructor(options?: { lockDelayMs?: number });
  now(): bigint;
  tryAcquire<R extends Bytes, O extends Bytes>(resource: R, owner: O, ttlMs: number, options?: { shared?: boolean }): Lease<R, O>;
  /** Blocks the event loop; refused (InvalidArgError) while acquireAsync() calls on this table wait, unless timeoutMs is 0. */
  acquire<R extends Bytes, O extends Bytes>(resource: R, owner: O, ttlMs: number,
    options?: { timeoutMs?: number; shared?: boolean }): Lease<R, O>;
  /** FIFO wait without blocking any thread; TimeoutError, CancelledError (signal aborted or table closed). */
  acquireAsync<R extends Bytes, O extends Bytes>(resource: R, owner: O, ttlMs: number,
    options?: { timeoutMs?: number; shared?: boolean; signal?: AbortSignal }): Promise<Lease<R, O>>;
  renew<L extends LeaseRef>(lease: L, ttlMs: number): Lease<L['resource'], L['owner']>;
  release(lease: LeaseRef): void;
  isHeld(resource: Bytes, token: U64): boolean;
  queueLength(resource: Bytes): number;
  readonly resourceCount: number;
}

/** A client of a replicated lease service (`quorumkit serve --state lease`). Every call but
 * acquireAsync() is a network round trip on this thread (it blocks the event loop). */
export class LeaseClient extends Handle {
  /** `addrs`: "HOST:PORT" entries (an array or one comma-separated string); `secret` >= 16 bytes. */
  constructor(addrs: string | string[], options: { secret: Bytes; clusterId?: U64; timeoutMs?: number });
  /** The clock of `expiresAtNs` (this process's monotonic clock), in ns. */
  now(): bigint;
  tryAcquire<R extends Bytes, O extends Bytes>(resource: R, owner: O, ttlMs: number, options?: { shared?: boolean }): Lease<R, O>;
  /** Blocks the event loop; refused (InvalidArgError) while acquireAsync() calls of this client wait, unless timeoutMs is 0. */
  acquire<R extends Bytes, O extends Bytes>(resource: R, owner: O, ttlMs: number,
    options?: { timeoutMs?: number; shared?: boolean }): Lease<R, O>;
  /** FIFO wait on a library thread; TimeoutError, BusyError (timeoutMs 0), BackendUnavailableError. */
  acquireAsync<R extends Bytes, O extends Bytes>(resource: R, owner: O, ttlMs: number,
    options?: { timeoutMs?: number; shared?: boolean }): Promise<Lease<R, O>>;
  renew<L extends LeaseRef>(lease: L, ttlMs: number): Lease<L['resource'], L['owner']>;
  release(lease: LeaseRef): void;
  /** Current holders; `expiresAtNs` in the service's cluster time. */
  holders(resource: Bytes): { token: bigint; expiresAtNs: bigint; shared: boolean }[];
}

export class Fence extends Handle {
  constructor();
  check(resource: Bytes, token: U64): void;
  highest(resource: Bytes): bigint;
}

export class FailureDetector extends Handle {
  constructor(options?: {
    threshold?: number;
    maxSamples?: number;
    minStdDevMs?: number;
    acceptablePauseMs?: number;
    firstHeartbeatEstimateMs?: number;
  });
  heartbeat(name: Bytes, nowNs: U64): void;
  phi(name: Bytes, nowNs: U64): number;
  isAvailable(name: Bytes, nowNs: U64): boolean;
  remove(name: Bytes): void;
  readonly size: number;
}

export interface PaxosOptions {
  id: number;
  members: readonly number[] | Uint32Array;
  heartbeatIntervalMs?: number;
  electionTimeoutMs?: number;
  leaseDurationMs?: number;
  maxClockDriftMs?: number;
  maxBatch?: number;
  maxInflight?: number;
  seed?: U64;
  clusterId?: U64;
}
export interface PaxosConfig {
  id: number;
  members: number[];
  heartbeatIntervalNs: bigint;
  electionTimeoutNs: bigint;
  leaseDurationNs: bigint;
  maxClockDriftNs: bigint;
  maxBatch: number;
  maxInflight: number;
  seed: bigint;
  clusterId: bigint;
}
export function paxosConfig(options: PaxosOptions): PaxosConfig;

export type PaxosOutput =
  | { kind: 'send'; to: number; data: Buffer }
  | { kind: 'decided'; slot: bigint; index: number; count: number; data: Buffer }
  | { kind: 'persisted'; count: number }
  | { kind: 'leaderChanged'; leader: number | null; ballotRound: bigint }
  | { kind: 'snapshot'; slot: bigint; data: Buffer }
  | { kind: 'read'; id: bigint; ready: boolean }
  | ({ kind: 'membership' } & PaxosMembership)
  /** A kind from a newer library that this binding does not know: its raw fields. */
  | { kind: 'unknown'; code: number; to: number; slot: bigint; index: bigint; count: bigint; data: Buffer };

/** Epoch `epoch` (0n until the first change) decides every slot from `start` on. */
export interface PaxosMembership {
  epoch: bigint;
  start: bigint;
  voters: number[];
  learners: number[];
}

export class PaxosNode extends Handle {
  static readonly MAX_MEMBERS: 64;
  /** On the file at `path` (reopen it to restart the replica), or on memory without one. */
  constructor(options: PaxosOptions & { path?: string | null; nowNs?: U64; join?: boolean });
  /** A replica joining a running cluster whose voters are `members` (`id` need not be one). */
  static join(options: PaxosOptions & { path?: string | null; nowNs?: U64 }): PaxosNode;
  readonly id: number;
  step(from: number, message: Bytes, nowNs: U64): void;
  tick(nowNs: U64): void;
  propose(command: Bytes, nowNs: U64): void;
  /** Drains every pending output; each `data` is a copy the caller owns. */
  poll(): PaxosOutput[];
  nextDeadline(): bigint;
  readonly leader: number | null;
  readonly isLeader: boolean;
  hasReadLease(nowNs: U64): boolean;
  readonly commitIndex: bigint;
  compact(slot: U64, state: Buffer | Uint8Array | string, nowNs: U64): void;
  readonly logStart: bigint;
  /** The last `compact`'s checkpoint is still being written in the background. */
  readonly compacting: boolean;
  readIndex(id: U64, nowNs: U64): void;
  /** Membership changes, at the leader. */
  addLearner(id: number, nowNs: U64): void;
  promote(id: number, nowNs: U64): void;
  remove(id: number, nowNs: U64): void;
  replace(oldId: number, newId: number, nowNs: U64): void;
  readonly membership: PaxosMembership;
}

/** Replica.status: the replica's state as of its core's last turn. */
export interface ReplicaStatus {
  id: number;
  /** The leader it knows, or null. */
  leader: number | null;
  ballotRound: bigint;
  ballotNode: number;
  /** Log entries known decided. */
  commitIndex: bigint;
  /** Commands applied to the state machine. */
  applied: bigint;
  /** It leads under a read lease (it answers reads). */
  readLease: boolean;
}

export type ReadPolicy = 'lease' | 'read_index';
/** What a state-machine callback may answer: bytes, a string (sent as UTF-8), or nothing (empty). */
export type ReplyBytes = Buffer | Uint8Array | string | null | undefined;

export interface ReplicaOptions {
  id: number;
  /** "ID=HOST:PORT,...", an array of "ID=HOST:PORT", or { id: "HOST:PORT" }; this replica included (a loopback address). */
  peers: string | readonly string[] | Readonly<Record<number, string>> | ReadonlyMap<number, string>;
  dataDir: string;
  /** Default 1; the same on every replica and client. */
  clusterId?: U64;
  /** At least 16 bytes; the same on every replica and client. */
  secret: Bytes;
  /** Create a new replica (its directory must hold no log); default false: restart from the directory. */
  init?: boolean;
  /** Join a running cluster (with init the first time). */
  join?: boolean;
  /** The leader's heartbeat (default 50 ms); elections take 10 to 20 of them. */
  heartbeatMs?: number;
  /**
   * Applies a decided command; runs on the JS thread, must be synchronous and deterministic.
   * Throwing refuses the command (the proposer gets InvalidArgError with the message).
   */
  apply(timeNs: bigint, command: Buffer): ReplyBytes;
  /** Answers a read from the state; without it reads are refused. */
  query?(query: Buffer): ReplyBytes;
  /** The whole state, for log compaction (with restore). Throwing skips this compaction. */
  snapshot?(): ReplyBytes;
  /** Replaces the state with what snapshot() wrote. Throwing stops the replica. */
  restore?(data: Buffer): void;
  /** With snapshot/restore: compact every this many slots (default 0: never). */
  compactEvery?: U64;
}

/**
 * A replica of a cluster running on the library's threads, with a state machine of JS callbacks
 * (relayed to the JS thread). Calls that wait for the replica's core thread return Promises.
 * An open replica keeps Node running: `await replica.close()`.
 */
export class Replica {
  constructor(options: ReplicaOptions);
  static readonly READ_POLICIES: readonly ReadPolicy[];
  readonly id: number;
  readonly closed: boolean;
  readonly status: ReplicaStatus;
  /** InvalidArgError for another value. */
  readPolicy: ReadPolicy;
  readonly membership: PaxosMembership;
  addPeer(id: number, addr: string): Promise<void>;
  /** Membership changes, at the leader (NotLeaderError elsewhere). */
  addLearner(id: number): Promise<void>;
  promote(id: number): Promise<void>;
  remove(id: number): Promise<void>;
  replace(oldId: number, newId: number): Promise<void>;
  /** At the leader; InvalidArgError if `to` is not another voter. */
  transferLeadership(to: number): Promise<void>;
  /** Stops the replica; resolves once its threads ended. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A client of a Replica cluster: finds the leader, follows redirects, retries with the same request id. */
export class NetClient extends Handle {
  /** `addrs`: "HOST:PORT" or "ID=HOST:PORT" entries (an array or one comma-separated string). */
  constructor(addrs: string | readonly string[], options: { secret: Bytes; clusterId?: U64; timeoutMs?: number });
  /** The state machine's result once the command is decided and applied. */
  propose(command: Bytes): Promise<Buffer>;
  /** The query callback's answer, on the leader. */
  read(query: Bytes): Promise<Buffer>;
}
