'use strict';
// quorumkit for Node.js: a thin koffi binding of the C ABI (include/quorumkit.h).
//
// Rules kept here for the caller:
// - every call gets its own qk_error, so an error's message is the message
//   of that call, also for acquire(), which runs on a worker thread;
// - names cross as UTF-8 bytes with their byte length (never s.length);
// - tokens and times are BigInt (uint64 on the C side);
// - the library copies every input; pointers it lends (node names, Paxos
//   output data) are copied before the next call.

const fs = require('fs');
const path = require('path');
const koffi = require('koffi');

const ABI_VERSION = 2;
const ERROR_MESSAGE_CAPACITY = 512;
const TIMEOUT_FOREVER = 0xffffffffffffffffn;

function libraryPath() {
  if (process.env.QUORUMKIT_LIB) return process.env.QUORUMKIT_LIB;
  return path.join(__dirname, '..', '..', 'target', 'release', 'libquorumkit.so');
}

const lib = koffi.load(libraryPath());

// ---------------------------------------------------------------- types
const qk_error = koffi.struct('qk_error', {
  status: 'uint32',
  message: koffi.array('char', ERROR_MESSAGE_CAPACITY),
});
const qk_lease = koffi.struct('qk_lease', { token: 'uint64', expires_at_ns: 'uint64', mode: 'uint32' });
const qk_paxos_config = koffi.struct('qk_paxos_config', {
  id: 'uint32',
  members: koffi.array('uint32', 64),
  members_len: 'size_t',
  heartbeat_interval_ns: 'uint64',
  election_timeout_ns: 'uint64',
  lease_duration_ns: 'uint64',
  max_clock_drift_ns: 'uint64',
  max_batch: 'size_t',
  max_inflight: 'size_t',
  seed: 'uint64',
  cluster_id: 'uint64',
});
const qk_paxos_output = koffi.struct('qk_paxos_output', {
  kind: 'uint32',
  to: 'uint32',
  slot: 'uint64',
  index: 'uint64',
  count: 'uint64',
  leader: 'uint32',
  has_leader: 'uint8',
  ballot_round: 'uint64',
  data: 'void *',
  data_len: 'size_t',
});
const qk_lease_callback = koffi.proto('void qk_lease_callback(void *user_data, uint32 status, const qk_lease *lease, const char *message)');
for (const t of ['qk_ring', 'qk_lease_table', 'qk_fence', 'qk_cancel', 'qk_detector', 'qk_paxos_node']) {
  koffi.opaque(t);
}

const f = (sig) => lib.func(sig);
const C = {
  abi_version: f('uint32 qk_abi_version()'),
  sizeof_error: f('size_t qk_sizeof_error()'),
  sizeof_lease: f('size_t qk_sizeof_lease()'),
  sizeof_paxos_config: f('size_t qk_sizeof_paxos_config()'),
  sizeof_paxos_output: f('size_t qk_sizeof_paxos_output()'),
  version: f('const char *qk_version()'),
  status_str: f('const char *qk_status_str(uint32)'),

  ring_new: f('uint32 qk_ring_new(uint32, _Out_ qk_ring **, _Out_ qk_error *)'),
  ring_free: f('void qk_ring_free(qk_ring *)'),
  ring_add_node: f('uint32 qk_ring_add_node(qk_ring *, const uint8_t *, size_t, uint32, _Out_ qk_error *)'),
  ring_remove_node: f('uint32 qk_ring_remove_node(qk_ring *, const uint8_t *, size_t, _Out_ qk_error *)'),
  ring_node_count: f('uint32 qk_ring_node_count(qk_ring *, _Out_ size_t *, _Out_ qk_error *)'),
  ring_node_name: f('uint32 qk_ring_node_name(qk_ring *, size_t, _Out_ void **, _Out_ size_t *, _Out_ qk_error *)'),
  ring_get_node: f('uint32 qk_ring_get_node(qk_ring *, const uint8_t *, size_t, _Out_ size_t *, _Out_ qk_error *)'),
  ring_get_nodes: f('uint32 qk_ring_get_nodes(qk_ring *, const uint8_t *, size_t, size_t, uint8_t *, _Out_ qk_error *)'),
  ring_get_node_batch_flat: f('uint32 qk_ring_get_node_batch_flat(qk_ring *, const uint8_t *, size_t, const uint8_t *, size_t, uint8_t *, _Out_ qk_error *)'),

  lease_table_new: f('uint32 qk_lease_table_new(uint64, _Out_ qk_lease_table **, _Out_ qk_error *)'),
  lease_table_free: f('void qk_lease_table_free(qk_lease_table *)'),
  lease_table_acquire_async: f('uint32 qk_lease_table_acquire_async(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, uint64, qk_cancel *, qk_lease_callback *, void *, _Out_ qk_error *)'),
  lease_table_acquire_cancellable: f('uint32 qk_lease_table_acquire_cancellable(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, uint64, qk_cancel *, _Out_ qk_lease *, _Out_ qk_error *)'),
  lease_table_try_acquire: f('uint32 qk_lease_table_try_acquire(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, _Out_ qk_lease *, _Out_ qk_error *)'),
  lease_table_renew: f('uint32 qk_lease_table_renew(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint64, _Out_ qk_lease *, _Out_ qk_error *)'),
  lease_table_release: f('uint32 qk_lease_table_release(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, _Out_ qk_error *)'),
  lease_table_queue_len: f('uint32 qk_lease_table_queue_len(qk_lease_table *, const uint8_t *, size_t, _Out_ size_t *, _Out_ qk_error *)'),
  cancel_new: f('uint32 qk_cancel_new(_Out_ qk_cancel **, _Out_ qk_error *)'),
  cancel_fire: f('uint32 qk_cancel_fire(qk_cancel *, _Out_ qk_error *)'),
  cancel_free: f('void qk_cancel_free(qk_cancel *)'),
  fence_new: f('uint32 qk_fence_new(_Out_ qk_fence **, _Out_ qk_error *)'),
  fence_free: f('void qk_fence_free(qk_fence *)'),
  fence_check: f('uint32 qk_fence_check(qk_fence *, const uint8_t *, size_t, uint64, _Out_ qk_error *)'),

  detector_new: f('uint32 qk_detector_new(double, size_t, uint64, uint64, uint64, _Out_ qk_detector **, _Out_ qk_error *)'),
  detector_free: f('void qk_detector_free(qk_detector *)'),
  detector_heartbeat: f('uint32 qk_detector_heartbeat(qk_detector *, const uint8_t *, size_t, uint64, _Out_ qk_error *)'),
  detector_phi: f('uint32 qk_detector_phi(qk_detector *, const uint8_t *, size_t, uint64, _Out_ double *, _Out_ qk_error *)'),
  detector_is_available: f('uint32 qk_detector_is_available(qk_detector *, const uint8_t *, size_t, uint64, _Out_ uint8 *, _Out_ qk_error *)'),

  paxos_config_init: f('uint32 qk_paxos_config_init(uint32, const uint32 *, size_t, _Out_ qk_paxos_config *, _Out_ qk_error *)'),
  paxos_node_new_memory: f('uint32 qk_paxos_node_new_memory(const qk_paxos_config *, uint64, _Out_ qk_paxos_node **, _Out_ qk_error *)'),
  paxos_node_new_file: f('uint32 qk_paxos_node_new_file(const qk_paxos_config *, const char *, uint64, _Out_ qk_paxos_node **, _Out_ qk_error *)'),
  paxos_node_free: f('void qk_paxos_node_free(qk_paxos_node *)'),
  paxos_node_step: f('uint32 qk_paxos_node_step(qk_paxos_node *, uint32, const uint8_t *, size_t, uint64, _Out_ qk_error *)'),
  paxos_node_tick: f('uint32 qk_paxos_node_tick(qk_paxos_node *, uint64, _Out_ qk_error *)'),
  paxos_node_propose: f('uint32 qk_paxos_node_propose(qk_paxos_node *, const uint8_t *, size_t, uint64, _Out_ qk_error *)'),
  paxos_node_poll: f('uint32 qk_paxos_node_poll(qk_paxos_node *, _Out_ qk_paxos_output *, _Out_ uint8 *, _Out_ qk_error *)'),
  paxos_node_is_leader: f('uint32 qk_paxos_node_is_leader(qk_paxos_node *, _Out_ uint8 *, _Out_ qk_error *)'),
  paxos_node_next_deadline: f('uint32 qk_paxos_node_next_deadline(qk_paxos_node *, _Out_ uint64 *, _Out_ qk_error *)'),
};

// The header and this file must describe the same ABI.
if (C.abi_version() !== ABI_VERSION) {
  throw new Error(`quorumkit: this binding needs C ABI ${ABI_VERSION}, the library at ${libraryPath()} has ${C.abi_version()}`);
}
for (const [name, type] of [['error', qk_error], ['lease', qk_lease], ['paxos_config', qk_paxos_config], ['paxos_output', qk_paxos_output]]) {
  const lib_size = Number(C['sizeof_' + name]());
  if (lib_size !== koffi.sizeof(type)) {
    throw new Error(`quorumkit: qk_${name} is ${lib_size} bytes in the library, ${koffi.sizeof(type)} here`);
  }
}

// ---------------------------------------------------------------- errors
// Code names from the generated constants file (the source tree's, or an
// installed share/quorumkit copy named by QUORUMKIT_CONSTANTS); without it,
// from the library's own status strings.
const CODE_NAMES = {};
(function loadCodeNames() {
  const file = process.env.QUORUMKIT_CONSTANTS
    || path.join(__dirname, '..', '..', 'include', 'quorumkit-constants.json');
  if (!fs.existsSync(file)) return;
  for (const s of JSON.parse(fs.readFileSync(file, 'utf8')).status) {
    CODE_NAMES[s.code] = s.name.replace(/^QK_(ERR_)?/, '');
  }
})();
const codeName = (status) => CODE_NAMES[status]
  || C.status_str(status).toUpperCase().replace(/[^A-Z0-9]+/g, '_');

/** A failed call: `status` (the qk_status number), `code` ('NOT_FOUND', ...). */
class QuorumkitError extends Error {
  constructor(status, message) {
    super(message || C.status_str(status));
    this.name = 'QuorumkitError';
    this.status = status;
    this.code = codeName(status);
  }
}

function check(status, err) {
  if (status !== 0) throw new QuorumkitError(status, err.message);
}

/** Calls `fn(...args, err)` with a fresh qk_error and throws on failure. */
function call(fn, ...args) {
  const err = {};
  check(fn(...args, err), err);
}

function utf8(s, what) {
  if (Buffer.isBuffer(s)) return s;
  if (typeof s !== 'string') throw new TypeError(`${what} must be a string or a Buffer`);
  return Buffer.from(s, 'utf8'); // .length is the byte length the C side needs
}

function nanos(ms, what) {
  if (typeof ms === 'bigint') return ms;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${what} must be a finite, non-negative number of milliseconds`);
  }
  return BigInt(Math.round(ms * 1e6));
}

function u64(v, what) {
  if (typeof v === 'bigint') {
    if (v < 0n || v > TIMEOUT_FOREVER) throw new RangeError(`${what} is out of the uint64 range`);
    return v;
  }
  if (Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw new TypeError(`${what} must be a non-negative integer or BigInt`);
}

class Handle {
  constructor(ptr, free) {
    this._ptr = ptr;
    this._free = free;
  }
  get ptr() {
    if (this._ptr === null) throw new QuorumkitError(1, `this ${this.constructor.name} is closed`);
    return this._ptr;
  }
  close() {
    if (this._ptr !== null) {
      const p = this._ptr;
      this._ptr = null;
      this._free(p);
    }
  }
}

// ---------------------------------------------------------------- ring
class HashRing extends Handle {
  constructor(vnodes = 0) {
    const out = [null];
    call(C.ring_new, vnodes, out);
    super(out[0], C.ring_free);
  }
  addNode(name, weight = 1) {
    const b = utf8(name, 'name');
    call(C.ring_add_node, this.ptr, b, b.length, weight);
  }
  removeNode(name) {
    const b = utf8(name, 'name');
    call(C.ring_remove_node, this.ptr, b, b.length);
  }
  _name(i) {
    const p = [null];
    const n = [0];
    call(C.ring_node_name, this.ptr, i, p, n);
    // Lent until the next change of the ring: copy now.
    return Buffer.from(koffi.decode(p[0], koffi.array('uint8_t', Number(n[0])))).toString('utf8');
  }
  get size() {
    const n = [0];
    call(C.ring_node_count, this.ptr, n);
    return Number(n[0]);
  }
  nodes() {
    const out = [];
    for (let i = 0; i < this.size; i++) out.push(this._name(i));
    return out;
  }
  getNode(key) {
    const k = utf8(key, 'key');
    const idx = [0];
    call(C.ring_get_node, this.ptr, k, k.length, idx);
    return this._name(Number(idx[0]));
  }
  getNodes(key, n) {
    const k = utf8(key, 'key');
    const out = Buffer.alloc(8 * n);
    call(C.ring_get_nodes, this.ptr, k, k.length, n, out);
    return Array.from({ length: n }, (_, i) => this._name(Number(out.readBigUInt64LE(8 * i))));
  }
  /** Many keys in one call: one flat buffer plus offsets, no copy per key. */
  getNodeBatch(keys) {
    const bufs = keys.map((k) => utf8(k, 'key'));
    const flat = Buffer.concat(bufs);
    const offsets = Buffer.alloc(8 * (bufs.length + 1));
    let at = 0;
    bufs.forEach((b, i) => {
      offsets.writeBigUInt64LE(BigInt(at), 8 * i);
      at += b.length;
    });
    offsets.writeBigUInt64LE(BigInt(at), 8 * bufs.length);
    const out = Buffer.alloc(8 * bufs.length);
    call(C.ring_get_node_batch_flat, this.ptr, flat, flat.length, offsets, bufs.length, out);
    const names = new Map();
    return bufs.map((_, i) => {
      const idx = Number(out.readBigUInt64LE(8 * i));
      if (!names.has(idx)) names.set(idx, this._name(idx));
      return names.get(idx);
    });
  }
}

// ---------------------------------------------------------------- leases

// koffi delivers a callback from another thread through a handle that does
// not keep the event loop alive; a pending acquire must, or Node would exit
// while it waits for a release or a timeout.
let pendingAcquires = 0;
let keepAlive = null;
function holdLoop() {
  if (pendingAcquires++ === 0) keepAlive = setInterval(() => {}, 1 << 30);
}
function releaseLoop() {
  if (--pendingAcquires === 0) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
}
const EXCLUSIVE = 0;
const SHARED = 1;

function toLease(resource, owner, l) {
  return {
    resource,
    owner,
    token: BigInt(l.token),
    expiresAtNs: BigInt(l.expires_at_ns),
    shared: l.mode === SHARED,
  };
}

class LeaseTable extends Handle {
  constructor({ lockDelayMs = 0 } = {}) {
    const out = [null];
    call(C.lease_table_new, nanos(lockDelayMs, 'lockDelayMs'), out);
    super(out[0], C.lease_table_free);
  }

  tryAcquire(resource, owner, ttlMs, { shared = false } = {}) {
    const r = utf8(resource, 'resource');
    const o = utf8(owner, 'owner');
    const l = {};
    call(C.lease_table_try_acquire, this.ptr, r, r.length, o, o.length, nanos(ttlMs, 'ttlMs'),
      shared ? SHARED : EXCLUSIVE, l);
    return toLease(String(resource), String(owner), l);
  }

  /**
   * Waits (FIFO) for the lease without blocking any thread: the library
   * calls back when it is granted, times out (TIMEOUT), or `signal` aborts
   * or the table closes (CANCELLED). The callback may come from another
   * thread; koffi queues it to this event loop.
   */
  acquire(resource, owner, ttlMs, { timeoutMs, shared = false, signal } = {}) {
    return new Promise((resolve, reject) => {
      const r = utf8(resource, 'resource');
      const o = utf8(owner, 'owner');
      const ttl = nanos(ttlMs, 'ttlMs');
      const timeout = timeoutMs === undefined ? TIMEOUT_FOREVER : nanos(timeoutMs, 'timeoutMs');
      const table = this.ptr;
      let cancel = null;
      let fire = null;
      if (signal) {
        const c = [null];
        call(C.cancel_new, c);
        cancel = c[0];
        fire = () => C.cancel_fire(cancel, {});
        if (signal.aborted) fire();
        else signal.addEventListener('abort', fire, { once: true });
      }
      let cb = null;
      const settle = (status, lease, message) => {
        koffi.unregister(cb);
        if (signal) {
          signal.removeEventListener('abort', fire);
          // Freed on the next turn: the library may still be returning
          // from qk_cancel_fire, which runs this callback.
          setImmediate(() => C.cancel_free(cancel));
        }
        releaseLoop();
        if (status !== 0) reject(new QuorumkitError(status, message));
        else resolve(toLease(String(resource), String(owner), koffi.decode(lease, qk_lease)));
      };
      cb = koffi.register((user, status, lease, message) => settle(status, lease, message),
        koffi.pointer(qk_lease_callback));
      holdLoop();
      const err = {};
      const status = C.lease_table_acquire_async(table, r, r.length, o, o.length, ttl,
        shared ? SHARED : EXCLUSIVE, timeout, cancel, cb, null, err);
      if (status !== 0) settle(status, null, err.message);
    });
  }

  renew(lease, ttlMs) {
    const r = utf8(lease.resource, 'resource');
    const o = utf8(lease.owner, 'owner');
    const l = {};
    call(C.lease_table_renew, this.ptr, r, r.length, o, o.length, u64(lease.token, 'token'),
      nanos(ttlMs, 'ttlMs'), l);
    return toLease(lease.resource, lease.owner, l);
  }

  release(lease) {
    const r = utf8(lease.resource, 'resource');
    const o = utf8(lease.owner, 'owner');
    call(C.lease_table_release, this.ptr, r, r.length, o, o.length, u64(lease.token, 'token'));
  }

  queueLength(resource) {
    const r = utf8(resource, 'resource');
    const n = [0];
    call(C.lease_table_queue_len, this.ptr, r, r.length, n);
    return Number(n[0]);
  }

  /** Frees the table; acquires still waiting reject with CANCELLED. */
  close() {
    if (this._ptr === null) return;
    const p = this._ptr;
    this._ptr = null;
    C.lease_table_free(p); // runs the waiters' callbacks before it returns
  }
}

class Fence extends Handle {
  constructor() {
    const out = [null];
    call(C.fence_new, out);
    super(out[0], C.fence_free);
  }
  /** Throws STALE_TOKEN if `token` is older than the newest seen for `resource`. */
  check(resource, token) {
    const r = utf8(resource, 'resource');
    call(C.fence_check, this.ptr, r, r.length, u64(token, 'token'));
  }
}

// ---------------------------------------------------------------- detector
class FailureDetector extends Handle {
  constructor({ threshold = 8, maxSamples = 1000, minStdDevMs = 100, acceptablePauseMs = 0,
    firstHeartbeatEstimateMs = 1000 } = {}) {
    const out = [null];
    call(C.detector_new, threshold, maxSamples, nanos(minStdDevMs, 'minStdDevMs'),
      nanos(acceptablePauseMs, 'acceptablePauseMs'), nanos(firstHeartbeatEstimateMs, 'firstHeartbeatEstimateMs'), out);
    super(out[0], C.detector_free);
  }
  heartbeat(name, nowNs) {
    const b = utf8(name, 'name');
    call(C.detector_heartbeat, this.ptr, b, b.length, u64(nowNs, 'nowNs'));
  }
  phi(name, nowNs) {
    const b = utf8(name, 'name');
    const out = [0];
    call(C.detector_phi, this.ptr, b, b.length, u64(nowNs, 'nowNs'), out);
    return out[0];
  }
  isAvailable(name, nowNs) {
    const b = utf8(name, 'name');
    const out = [0];
    call(C.detector_is_available, this.ptr, b, b.length, u64(nowNs, 'nowNs'), out);
    return out[0] === 1;
  }
}

// ---------------------------------------------------------------- paxos
const OUTPUT_KINDS = ['send', 'decided', 'persisted', 'leaderChanged'];

class PaxosNode extends Handle {
  /**
   * A replica: `config` = { id, members, clusterId, seed, heartbeatIntervalMs,
   * electionTimeoutMs }, `path` a file (restart = reopen it) or null for
   * memory, `nowNs` the caller's clock (BigInt or integer).
   */
  constructor(config, path, nowNs) {
    const cfg = {};
    // The library copies the ids into cfg.members: the JS array is not kept.
    call(C.paxos_config_init, config.id, config.members, config.members.length, cfg);
    if (config.clusterId !== undefined) cfg.cluster_id = u64(config.clusterId, 'clusterId');
    if (config.seed !== undefined) cfg.seed = u64(config.seed, 'seed');
    if (config.heartbeatIntervalMs) cfg.heartbeat_interval_ns = nanos(config.heartbeatIntervalMs, 'heartbeatIntervalMs');
    if (config.electionTimeoutMs) cfg.election_timeout_ns = nanos(config.electionTimeoutMs, 'electionTimeoutMs');
    const out = [null];
    if (path) call(C.paxos_node_new_file, cfg, String(path), u64(nowNs, 'nowNs'), out);
    else call(C.paxos_node_new_memory, cfg, u64(nowNs, 'nowNs'), out);
    super(out[0], C.paxos_node_free);
  }
  step(from, message, nowNs) {
    const b = Buffer.isBuffer(message) ? message : Buffer.from(message);
    call(C.paxos_node_step, this.ptr, from, b, b.length, u64(nowNs, 'nowNs'));
  }
  tick(nowNs) {
    call(C.paxos_node_tick, this.ptr, u64(nowNs, 'nowNs'));
  }
  propose(command, nowNs) {
    const b = utf8(command, 'command');
    call(C.paxos_node_propose, this.ptr, b, b.length, u64(nowNs, 'nowNs'));
  }
  /** Every pending output; `data` is a Buffer the caller owns. */
  poll() {
    const outs = [];
    for (;;) {
      const o = {};
      const has = [0];
      call(C.paxos_node_poll, this.ptr, o, has);
      if (has[0] === 0) return outs;
      const len = Number(o.data_len);
      outs.push({
        kind: OUTPUT_KINDS[o.kind],
        to: o.to,
        slot: BigInt(o.slot),
        index: BigInt(o.index),
        count: BigInt(o.count),
        leader: o.has_leader ? o.leader : null,
        // Lent until the next call on this node: copy now.
        data: len > 0 ? Buffer.from(koffi.decode(o.data, koffi.array('uint8_t', len))) : Buffer.alloc(0),
      });
    }
  }
  isLeader() {
    const out = [0];
    call(C.paxos_node_is_leader, this.ptr, out);
    return out[0] === 1;
  }
  nextDeadline() {
    const out = [0];
    call(C.paxos_node_next_deadline, this.ptr, out);
    return BigInt(out[0]);
  }
}

module.exports = {
  ABI_VERSION,
  version: () => C.version(),
  QuorumkitError,
  HashRing,
  LeaseTable,
  Fence,
  FailureDetector,
  PaxosNode,
};
