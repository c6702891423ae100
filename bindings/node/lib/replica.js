'use strict';
// Replica (qk_replica): a replica of a cluster that runs on the library's
// own threads, with a state machine made of JS callbacks; and NetClient
// (qk_net_client), the client that proposes commands to such a cluster
// and reads from it.
//
// Threads. The library calls apply/query/snapshot/restore on the replica's
// core thread. koffi relays such a call to this (the JS) thread's event
// loop and makes the core thread wait until the loop has run it. So the
// JS thread must never block in a library call that waits for a core
// thread, or both wait for each other:
// - qk_replica_free joins the core thread: close() runs it on a libuv
//   worker (koffi `.async`) and returns a Promise;
// - add_peer, change_membership and transfer_leadership wait (up to 5 s)
//   for the core thread: they run on a worker too and return Promises;
// - qk_net_client_propose/read wait for a replica's apply/query, which may
//   be a replica of this very process: they run on a worker and return
//   Promises (one worker per client at most: a client's calls take turns);
// - status, membership and the read policy only read or set shared state
//   under short locks the core never holds across a callback: they stay
//   synchronous.
// No call that waits on a core thread is exposed synchronously.

const { koffi, fn, call, bytes, u64, msToNs, copyOut, Handle, makeError, readError, CODES, PAXOS_MAX_MEMBERS, types } =
  require('./native');

for (const t of ['qk_replica', 'qk_reply', 'qk_net_client']) koffi.opaque(t);

const qk_replica_info = koffi.struct('qk_replica_info', {
  id: 'uint32',
  leader: 'uint32',
  ballot_round: 'uint64',
  ballot_node: 'uint32',
  commit_index: 'uint64',
  applied: 'uint64',
  read_lease: 'uint8',
});
const qk_bytes = koffi.struct('qk_bytes', { data: 'uint8_t *', len: 'size_t' });

const applyProto = koffi.proto('int32_t qk_replica_apply_fn(void *user_data, uint64_t time_ns, '
  + 'const uint8_t *command, size_t command_len, qk_reply *reply)');
const queryProto = koffi.proto('int32_t qk_replica_query_fn(void *user_data, const uint8_t *query, '
  + 'size_t query_len, qk_reply *reply)');
const snapshotProto = koffi.proto('int32_t qk_replica_snapshot_fn(void *user_data, qk_reply *reply)');
const restoreProto = koffi.proto('int32_t qk_replica_restore_fn(void *user_data, const uint8_t *data, '
  + 'size_t data_len, qk_reply *reply)');

const F = {
  replySet: fn('uint32 qk_reply_set(qk_reply *, const uint8_t *, size_t, qk_error *)'),
  start: fn('uint32 qk_replica_start(uint32, const char *, const char *, uint64, const uint8_t *, size_t, uint8, '
    + 'uint64, qk_replica_apply_fn *, qk_replica_query_fn *, void *, _Out_ qk_replica **, qk_error *)'),
  startCompacting: fn('uint32 qk_replica_start_compacting(uint32, const char *, const char *, uint64, '
    + 'const uint8_t *, size_t, uint8, uint64, qk_replica_apply_fn *, qk_replica_query_fn *, '
    + 'qk_replica_snapshot_fn *, qk_replica_restore_fn *, uint64, void *, _Out_ qk_replica **, qk_error *)'),
  free: fn('void qk_replica_free(qk_replica *)'),
  status: fn('uint32 qk_replica_status(qk_replica *, _Out_ qk_replica_info *, qk_error *)'),
  setReadPolicy: fn('uint32 qk_replica_set_read_policy(qk_replica *, uint32, qk_error *)'),
  addPeer: fn('uint32 qk_replica_add_peer(qk_replica *, uint32, const char *, qk_error *)'),
  changeMembership: fn('uint32 qk_replica_change_membership(qk_replica *, uint32, uint32, uint32, qk_error *)'),
  transfer: fn('uint32 qk_replica_transfer_leadership(qk_replica *, uint32, qk_error *)'),
  membership: fn('uint32 qk_replica_membership(qk_replica *, _Out_ uint64 *, _Out_ uint64 *, uint32_t *, size_t, '
    + '_Out_ size_t *, _Out_ size_t *, qk_error *)'),
  bytesFree: fn('void qk_bytes_free(qk_bytes *)'),
  clientNew: fn('uint32 qk_net_client_new(const char *, uint64, const uint8_t *, size_t, uint64, '
    + '_Out_ qk_net_client **, qk_error *)'),
  clientFree: fn('void qk_net_client_free(qk_net_client *)'),
  propose: fn('uint32 qk_net_client_propose(qk_net_client *, const uint8_t *, size_t, _Out_ qk_bytes *, qk_error *)'),
  read: fn('uint32 qk_net_client_read(qk_net_client *, const uint8_t *, size_t, _Out_ qk_bytes *, qk_error *)'),
};

// qk_replica_start's init flags, read policies and membership change kinds
// (include/quorumkit.h).
const REPLICA_INIT = 1;
const REPLICA_JOIN = 2;
const READ_POLICIES = { lease: 0, read_index: 1 };
const ADD_LEARNER = 0;
const PROMOTE = 1;
const REMOVE = 2;
const REPLACE = 3;

const ERROR_SIZE = koffi.sizeof(types.qk_error);

function u32(v, what) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`${what} must be a uint32, got ${v}`);
  return v;
}

/** Runs `f.async(...args, err)` on a libuv worker; resolves with the outputs filled, rejects with the call's error. */
function callAsync(f, ...args) {
  return new Promise((resolve, reject) => {
    const err = Buffer.alloc(ERROR_SIZE); // its own: the library writes it on the worker
    f.async(...args, err, (e, status) => {
      if (e) reject(e);
      else if (status !== 0) reject(readError(err, status));
      else resolve();
    });
  });
}

/** A callback's result as bytes for qk_reply_set, or throws a TypeError. */
function replyBytes(v, what) {
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'object' && typeof v.then === 'function') {
    throw new TypeError(`${what} returned a Promise: the callbacks must be synchronous`);
  }
  throw new TypeError(`${what} returned ${typeof v}: expected a Buffer, a Uint8Array or a string`);
}

function setReply(reply, b) {
  // NULL err: qk_reply_set only fails on a NULL reply, which the library never passes.
  F.replySet(reply, b, b.length, null);
}

/**
 * Wraps a JS callback for the library: its result goes into `reply` with
 * status 0; any exception (or a result that is not bytes) becomes status 1
 * with the error's message in `reply`. Nothing thrown reaches koffi, which
 * would hand the library a 0 (success) for it.
 */
function guarded(what, body) {
  return (...args) => {
    const reply = args[args.length - 1];
    try {
      setReply(reply, replyBytes(body(...args), what));
      return 0;
    } catch (e) {
      let msg;
      try {
        msg = e instanceof Error ? e.message : String(e);
      } catch (_) {
        msg = `${what} threw`;
      }
      try {
        setReply(reply, Buffer.from(msg || `${what} threw`, 'utf8'));
      } catch (_) { /* the status alone still refuses */ }
      return 1;
    }
  };
}

function peersString(peers) {
  if (typeof peers === 'string') return peers;
  if (Array.isArray(peers)) return peers.join(',');
  if (peers instanceof Map) return [...peers].map(([id, a]) => `${id}=${a}`).join(',');
  if (peers && typeof peers === 'object') return Object.entries(peers).map(([id, a]) => `${id}=${a}`).join(',');
  throw new TypeError('peers must be "ID=HOST:PORT,..." , an array of "ID=HOST:PORT" or an object { id: "HOST:PORT" }');
}

function optionalFn(v, what) {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'function') throw new TypeError(`${what} must be a function`);
  return v;
}

// Open replicas keep Node alive (the library's threads and koffi's relay do
// not): a ref'd timer runs while any is open.
const open = new Set();
let keepAlive = null;

function track(replica) {
  open.add(replica);
  if (!keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
}

function untrack(replica) {
  open.delete(replica);
  if (open.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
}

class Replica {
  /**
   * Starts replica `id` of the cluster `peers` ("ID=HOST:PORT,...", an
   * array of such entries, or { id: "HOST:PORT" }, this replica included;
   * it listens on its own entry, a loopback address), keeping its log in
   * `dataDir`. `init: true` creates a new replica (the directory must hold
   * no log); without it the replica restarts from its directory. `join:
   * true` joins a running cluster (with `init` the first time). `secret`
   * (at least 16 bytes) and `clusterId` (default 1) must be the cluster's.
   * `heartbeatMs` is the leader's heartbeat (default 50 ms).
   *
   * The state machine is `apply(timeNs, command) -> Buffer|string`
   * (required), `query(q) -> Buffer|string` (optional: reads are refused
   * without it) and, for log compaction every `compactEvery` slots,
   * `snapshot() -> Buffer|string` and `restore(data)` (both or neither).
   * They run on this thread, one at a time, and must be synchronous and
   * deterministic; a thrown exception refuses the command (the proposer
   * gets InvalidArgError with its message), the query or the snapshot,
   * and stops the replica when thrown by restore. Never await, inside a
   * callback, something that needs a replica.
   *
   * An open replica keeps Node running: `await replica.close()`.
   */
  constructor(options) {
    const { id, peers, dataDir, clusterId = 1, secret, init = false, join = false, heartbeatMs,
      compactEvery = 0 } = options || {};
    const apply = optionalFn(options && options.apply, 'apply');
    if (!apply) throw new TypeError('apply must be a function');
    const query = optionalFn(options.query, 'query');
    const snapshot = optionalFn(options.snapshot, 'snapshot');
    const restore = optionalFn(options.restore, 'restore');
    if ((snapshot === null) !== (restore === null)) {
      throw new TypeError('snapshot and restore go together (log compaction needs both)');
    }
    if (typeof dataDir !== 'string') throw new TypeError('dataDir must be a string');
    const list = peersString(peers);
    const key = bytes(secret === undefined ? '' : secret, 'secret');
    const flags = (init ? REPLICA_INIT : 0) | (join ? REPLICA_JOIN : 0);
    const beat = heartbeatMs === undefined ? 0n : msToNs(heartbeatMs, 'heartbeatMs');
    const every = u64(compactEvery, 'compactEvery');

    // One registration per callback per replica, unregistered once
    // qk_replica_free has returned (no core thread is left to call them).
    const registered = [];
    const reg = (f, proto) => {
      const p = koffi.register(f, koffi.pointer(proto));
      registered.push(p);
      return p;
    };
    const unregisterAll = () => {
      for (const p of registered.splice(0)) koffi.unregister(p);
    };
    try {
      const applyCb = reg(guarded('apply', (_u, timeNs, cmd, len) =>
        apply(BigInt(timeNs), copyOut(cmd, Number(len)))), applyProto);
      const queryCb = query === null ? null : reg(guarded('query', (_u, q, len) =>
        query(copyOut(q, Number(len)))), queryProto);
      const out = [null];
      if (snapshot !== null) {
        const snapCb = reg(guarded('snapshot', () => snapshot()), snapshotProto);
        const restoreCb = reg(guarded('restore', (_u, data, len) => {
          restore(copyOut(data, Number(len)));
          return null;
        }), restoreProto);
        call(F.startCompacting, u32(id, 'id'), list, dataDir, u64(clusterId, 'clusterId'), key, key.length, flags,
          beat, applyCb, queryCb, snapCb, restoreCb, every, null, out);
      } else {
        call(F.start, u32(id, 'id'), list, dataDir, u64(clusterId, 'clusterId'), key, key.length, flags, beat,
          applyCb, queryCb, null, out);
      }
      this._ptr = out[0];
    } catch (e) {
      unregisterAll(); // the library refused: no thread was left running
      throw e;
    }
    this.id = id;
    this._unregister = unregisterAll;
    this._readPolicy = 'lease';
    this._inflight = 0; // admin calls running on workers
    this._idle = null; // resolves when _inflight drops to 0
    this._closing = null; // close()'s promise
    track(this);
  }

  get ptr() {
    if (this._closing) throw makeError(CODES.NULL_ARG, 'this Replica is closed');
    return this._ptr;
  }

  /** Whether close() was called. */
  get closed() { return this._closing !== null; }

  /**
   * { id, leader (null: none known), ballotRound, ballotNode, commitIndex,
   * applied, readLease } as of the core's last turn (synchronous: it only
   * reads).
   */
  get status() {
    const s = {};
    call(F.status, this.ptr, s);
    return {
      id: s.id,
      leader: s.leader === 0 ? null : s.leader,
      ballotRound: BigInt(s.ballot_round),
      ballotNode: s.ballot_node,
      commitIndex: BigInt(s.commit_index),
      applied: BigInt(s.applied),
      readLease: s.read_lease === 1,
    };
  }

  /** 'lease' (the default) or 'read_index': how this replica answers reads while it leads. */
  get readPolicy() {
    if (this._closing) throw makeError(CODES.NULL_ARG, 'this Replica is closed');
    return this._readPolicy;
  }

  set readPolicy(policy) {
    const ptr = this.ptr;
    if (!Object.prototype.hasOwnProperty.call(READ_POLICIES, policy)) {
      throw makeError(CODES.INVALID_ARG, `read policy ${JSON.stringify(policy)} is not 'lease' or 'read_index'`);
    }
    call(F.setReadPolicy, ptr, READ_POLICIES[policy]);
    this._readPolicy = policy;
  }

  /**
   * The membership this replica applied last: { epoch, start, voters,
   * learners } (epoch 0n until the first change).
   */
  get membership() {
    let cap = PAXOS_MAX_MEMBERS;
    for (let round = 0; round < 4; round++) {
      const epoch = [0];
      const start = [0];
      const voters = [0];
      const len = [0];
      const ids = new Uint32Array(cap);
      const err = Buffer.alloc(ERROR_SIZE);
      const status = F.membership(this.ptr, epoch, start, ids, ids.length, voters, len, err);
      const n = Number(len[0]);
      if (status === CODES.BUFFER_TOO_SMALL && n > cap) {
        cap = n;
        continue;
      }
      if (status !== 0) throw readError(err, status);
      const all = Array.from(ids.subarray(0, n));
      const v = Number(voters[0]);
      return { epoch: BigInt(epoch[0]), start: BigInt(start[0]), voters: all.slice(0, v), learners: all.slice(v) };
    }
    throw makeError(CODES.BUFFER_TOO_SMALL, 'the membership kept growing while it was read');
  }

  /** Makes replica `id` at `addr` ("HOST:PORT") known to this one (do it on every replica before adding `id`). */
  async addPeer(id, addr) {
    if (typeof addr !== 'string') throw new TypeError('addr must be a "HOST:PORT" string');
    return this._admin(F.addPeer, u32(id, 'id'), addr);
  }

  // Membership changes, proposed at the leader (NotLeaderError elsewhere);
  // each is in force once `membership` shows its epoch.

  /** Adds replica `id` (started with { init: true, join: true }) as a learner. */
  async addLearner(id) { return this._admin(F.changeMembership, ADD_LEARNER, u32(id, 'id'), 0); }

  /** Makes the learner `id` a voter. */
  async promote(id) { return this._admin(F.changeMembership, PROMOTE, u32(id, 'id'), 0); }

  /** Removes the voter or learner `id`. */
  async remove(id) { return this._admin(F.changeMembership, REMOVE, u32(id, 'id'), 0); }

  /** Gives the voter `oldId`'s vote to the learner `newId` in one change. */
  async replace(oldId, newId) {
    return this._admin(F.changeMembership, REPLACE, u32(oldId, 'oldId'), u32(newId, 'newId'));
  }

  /** Hands the leadership to voter `to` (at the leader; InvalidArgError if `to` is not another voter). */
  async transferLeadership(to) { return this._admin(F.transfer, u32(to, 'to')); }

  // Runs on a worker: these wait (up to 5 s) for the core thread, which may
  // itself wait for this thread to run a callback.
  async _admin(f, ...args) {
    const ptr = this.ptr;
    this._inflight++;
    try {
      await callAsync(f, ptr, ...args);
    } finally {
      this._inflight--;
      if (this._inflight === 0 && this._idle) this._idle();
    }
  }

  /**
   * Stops the replica and frees it; resolves once its threads have ended
   * (the data directory keeps its log for a restart). Idempotent. The
   * free runs on a worker, since it waits for the core thread, which may
   * be waiting for this thread to run a callback.
   */
  close() {
    if (this._closing) return this._closing;
    this._closing = (async () => {
      if (this._inflight > 0) await new Promise((resolve) => { this._idle = resolve; });
      const p = this._ptr;
      this._ptr = null;
      try {
        await new Promise((resolve, reject) => F.free.async(p, (e) => (e ? reject(e) : resolve())));
      } finally {
        this._unregister();
        untrack(this);
      }
    })();
    return this._closing;
  }
}
if (Symbol.asyncDispose) Replica.prototype[Symbol.asyncDispose] = Replica.prototype.close;

Replica.READ_POLICIES = Object.freeze(Object.keys(READ_POLICIES));

class NetClient extends Handle {
  /**
   * A client of the replica cluster at `addrs` ("HOST:PORT" or
   * "ID=HOST:PORT" entries, an array or one comma-separated string), with
   * the cluster's `secret` and `clusterId` (default 1). `timeoutMs`
   * bounds every call, retries included (default 10 s). Connects lazily.
   */
  constructor(addrs, { secret, clusterId = 1, timeoutMs } = {}) {
    const list = Array.isArray(addrs) ? addrs.join(',') : addrs;
    if (typeof list !== 'string') throw makeError(CODES.INVALID_ARG, 'addrs must be a string or an array of strings');
    const key = bytes(secret === undefined ? '' : secret, 'secret');
    const out = [null];
    call(F.clientNew, list, u64(clusterId, 'clusterId'), key, key.length,
      timeoutMs === undefined ? 0n : msToNs(timeoutMs, 'timeoutMs'), out);
    super(out[0], F.clientFree);
    this._inflight = 0;
    this._closeRequested = false;
    this._turn = Promise.resolve(); // calls take turns (as in the library), one worker at most
  }

  get ptr() {
    if (this._closeRequested) throw makeError(CODES.NULL_ARG, 'this NetClient is closed');
    return super.ptr;
  }

  /**
   * Replicates `command` and resolves with the state machine's result once
   * it is decided and applied. InvalidArgError: the state machine refused
   * it (its message); BackendUnavailableError: no leader within the
   * timeout (it may or may not have been applied).
   */
  propose(command) { return this._call(F.propose, command, 'command'); }

  /** Answers `query` on the leader from its state (linearizable, not logged). */
  read(query) { return this._call(F.read, query, 'query'); }

  _call(f, input, what) {
    let ptr;
    let b;
    try {
      ptr = this.ptr;
      b = bytes(input, what);
    } catch (e) {
      return Promise.reject(e);
    }
    this._inflight++;
    const run = async () => {
      const out = {};
      try {
        await callAsync(f, ptr, b, b.length, out);
        try {
          return copyOut(out.data, Number(out.len));
        } finally {
          F.bytesFree(out);
        }
      } finally {
        this._inflight--;
        if (this._inflight === 0 && this._closeRequested) this._freeNow();
      }
    };
    const result = this._turn.then(run);
    this._turn = result.catch(() => {});
    return result;
  }

  /** Frees the client; with calls in flight, once they settle (their promises still do). Idempotent. */
  close() {
    if (this._closeRequested) return;
    this._closeRequested = true;
    if (this._inflight === 0) this._freeNow();
  }

  _freeNow() {
    Handle.prototype.close.call(this);
  }
}

module.exports = { Replica, NetClient, qk_replica_info, qk_bytes };
