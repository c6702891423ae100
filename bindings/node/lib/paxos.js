'use strict';
// PaxosNode: a Multi-Paxos replica (qk_paxos_node) the caller drives:
// hand it messages (step), time (tick) and commands (propose), then drain
// poll() and act on each output in order. Times are nanoseconds of the
// caller's clock (BigInt, or a safe integer).

const { koffi, fn, call, bytes, u64, msToNs, copyOut, Handle, PAXOS_MAX_MEMBERS } = require('./native');

const F = {
  configInit: fn('uint32 qk_paxos_config_init(uint32, const uint32_t *, size_t, _Out_ qk_paxos_config *, qk_error *)'),
  newMemory: fn('uint32 qk_paxos_node_new_memory(const qk_paxos_config *, uint64, _Out_ qk_paxos_node **, qk_error *)'),
  newFile: fn('uint32 qk_paxos_node_new_file(const qk_paxos_config *, const char *, uint64, _Out_ qk_paxos_node **, qk_error *)'),
  join: fn('uint32 qk_paxos_node_join(const qk_paxos_config *, const char *, uint64, _Out_ qk_paxos_node **, qk_error *)'),
  free: fn('void qk_paxos_node_free(qk_paxos_node *)'),
  step: fn('uint32 qk_paxos_node_step(qk_paxos_node *, uint32, const uint8_t *, size_t, uint64, qk_error *)'),
  tick: fn('uint32 qk_paxos_node_tick(qk_paxos_node *, uint64, qk_error *)'),
  propose: fn('uint32 qk_paxos_node_propose(qk_paxos_node *, const uint8_t *, size_t, uint64, qk_error *)'),
  poll: fn('uint32 qk_paxos_node_poll(qk_paxos_node *, _Out_ qk_paxos_output *, _Out_ uint8_t *, qk_error *)'),
  nextDeadline: fn('uint32 qk_paxos_node_next_deadline(qk_paxos_node *, _Out_ uint64 *, qk_error *)'),
  leader: fn('uint32 qk_paxos_node_leader(qk_paxos_node *, _Out_ uint32_t *, _Out_ uint8_t *, qk_error *)'),
  isLeader: fn('uint32 qk_paxos_node_is_leader(qk_paxos_node *, _Out_ uint8_t *, qk_error *)'),
  hasReadLease: fn('uint32 qk_paxos_node_has_read_lease(qk_paxos_node *, uint64, _Out_ uint8_t *, qk_error *)'),
  commitIndex: fn('uint32 qk_paxos_node_commit_index(qk_paxos_node *, _Out_ uint64 *, qk_error *)'),
  compact: fn('uint32 qk_paxos_node_compact(qk_paxos_node *, uint64, const uint8_t *, size_t, uint64, qk_error *)'),
  logExtent: fn('uint32 qk_paxos_node_log_extent(qk_paxos_node *, _Out_ uint64 *, _Out_ uint64 *, qk_error *)'),
  compacting: fn('uint32 qk_paxos_node_compacting(qk_paxos_node *, _Out_ uint8_t *, qk_error *)'),
  readIndex: fn('uint32 qk_paxos_node_read_index(qk_paxos_node *, uint64, uint64, qk_error *)'),
  changeMembership: fn('uint32 qk_paxos_node_change_membership(qk_paxos_node *, uint32, uint32, uint32, uint64, qk_error *)'),
  membership: fn('uint32 qk_paxos_node_membership(qk_paxos_node *, _Out_ uint64 *, _Out_ uint64 *, uint32_t *, '
    + 'size_t, _Out_ size_t *, _Out_ size_t *, qk_error *)'),
};

const SEND = 0;
const DECIDED = 1;
const PERSISTED = 2;
const LEADER_CHANGED = 3;
const SNAPSHOT = 4;
const READ_INDEX = 5;
const MEMBERSHIP = 6;

// qk_paxos_node_change_membership kinds.
const ADD_LEARNER = 0;
const PROMOTE = 1;
const REMOVE = 2;
const REPLACE = 3;

function u32(v, what) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`${what} must be a uint32, got ${v}`);
  return v;
}

/** Copies `n` uint32 ids lent by the library at `ptr` into a plain array. */
function copyIds(ptr, n) {
  if (n === 0) return [];
  return Array.from(koffi.decode(ptr, koffi.array('uint32_t', n, 'Typed')));
}

/**
 * A qk_paxos_config struct (a koffi object) from qk_paxos_config_init's
 * defaults and the given overrides. The ids are copied into the struct's
 * inline members[64]: nothing points back into JS memory.
 */
function rawConfig(options) {
  const { id, members } = options;
  if (!Array.isArray(members) && !(members instanceof Uint32Array)) {
    throw new TypeError('members must be an array of replica ids');
  }
  const ids = Uint32Array.from(members, (m) => u32(m, 'a member id'));
  const cfg = {};
  call(F.configInit, u32(id, 'id'), ids, ids.length, cfg);
  const ns = { heartbeatIntervalMs: 'heartbeat_interval_ns', electionTimeoutMs: 'election_timeout_ns',
    leaseDurationMs: 'lease_duration_ns', maxClockDriftMs: 'max_clock_drift_ns' };
  for (const [k, field] of Object.entries(ns)) {
    if (options[k] !== undefined) cfg[field] = msToNs(options[k], k);
  }
  if (options.maxBatch !== undefined) cfg.max_batch = options.maxBatch;
  if (options.maxInflight !== undefined) cfg.max_inflight = options.maxInflight;
  if (options.seed !== undefined) cfg.seed = u64(options.seed, 'seed');
  if (options.clusterId !== undefined) cfg.cluster_id = u64(options.clusterId, 'clusterId');
  return cfg;
}

/** The config a node would get, as plain JS (ids as numbers, times in ns as BigInt). */
function paxosConfig(options) {
  const c = rawConfig(options);
  const n = Number(c.members_len);
  return {
    id: c.id,
    members: Array.from(c.members).slice(0, n),
    heartbeatIntervalNs: BigInt(c.heartbeat_interval_ns),
    electionTimeoutNs: BigInt(c.election_timeout_ns),
    leaseDurationNs: BigInt(c.lease_duration_ns),
    maxClockDriftNs: BigInt(c.max_clock_drift_ns),
    maxBatch: Number(c.max_batch),
    maxInflight: Number(c.max_inflight),
    seed: BigInt(c.seed),
    clusterId: BigInt(c.cluster_id),
  };
}

/**
 * One qk_paxos_output as a plain object, its bytes copied. A kind this
 * binding does not know (from a newer library) becomes { kind: 'unknown' }
 * with the raw fields: throwing here would lose the outputs already
 * drained in the same poll().
 */
function toOutput(o) {
  switch (o.kind) {
    case SEND:
      return { kind: 'send', to: o.to, data: copyOut(o.data, Number(o.data_len)) };
    case DECIDED:
      return { kind: 'decided', slot: BigInt(o.slot), index: Number(o.index), count: Number(o.count),
        data: copyOut(o.data, Number(o.data_len)) };
    case PERSISTED:
      return { kind: 'persisted', count: Number(o.count) };
    case LEADER_CHANGED:
      return { kind: 'leaderChanged', leader: o.has_leader ? o.leader : null, ballotRound: BigInt(o.ballot_round) };
    case SNAPSHOT:
      // Replace the application's state with `data`: the state after every slot below `slot`.
      return { kind: 'snapshot', slot: BigInt(o.slot), data: copyOut(o.data, Number(o.data_len)) };
    case READ_INDEX:
      return { kind: 'read', id: BigInt(o.index), ready: Number(o.count) === 1 };
    case MEMBERSHIP: {
      // Epoch `index` decides every slot from `slot` on; `data` holds
      // data_len / 4 uint32 ids, the first `count` of them voters.
      const ids = copyIds(o.data, Number(o.data_len) / 4);
      const voters = Number(o.count);
      return { kind: 'membership', epoch: BigInt(o.index), start: BigInt(o.slot),
        voters: ids.slice(0, voters), learners: ids.slice(voters) };
    }
    default:
      return { kind: 'unknown', code: o.kind, to: o.to, slot: BigInt(o.slot), index: BigInt(o.index),
        count: BigInt(o.count), data: copyOut(o.data, Number(o.data_len)) };
  }
}

class PaxosNode extends Handle {
  /**
   * Replica `id` of `members`, on the file at `path` (created if missing;
   * reopening it restarts the replica) or, without `path`, on memory.
   * With `join: true` it is a replica joining a running cluster whose
   * voters are `members` (`id` need not be one): it takes no part until a
   * leader adds it with addLearner(), then catches up as a learner until
   * promoted; restart it from its file with `join: true` too.
   * Other options override qk_paxos_config_init's defaults.
   */
  constructor({ path, nowNs = 0n, join = false, ...options }) {
    const cfg = rawConfig(options);
    const out = [null];
    const file = path !== undefined && path !== null ? String(path) : null;
    if (join) call(F.join, cfg, file, u64(nowNs, 'nowNs'), out);
    else if (file !== null) call(F.newFile, cfg, file, u64(nowNs, 'nowNs'), out);
    else call(F.newMemory, cfg, u64(nowNs, 'nowNs'), out);
    super(out[0], F.free);
    this.id = options.id;
  }

  /** A replica that joins a running cluster: `new PaxosNode({ ...options, join: true })`. */
  static join(options) {
    return new PaxosNode({ ...options, join: true });
  }

  /** Hands over a message from replica `from` (bytes a SEND output of it carried). */
  step(from, message, nowNs) {
    const b = bytes(message, 'message');
    call(F.step, this.ptr, u32(from, 'from'), b, b.length, u64(nowNs, 'nowNs'));
  }

  /** Lets time pass to `nowNs` (heartbeats, elections, retries). */
  tick(nowNs) {
    call(F.tick, this.ptr, u64(nowNs, 'nowNs'));
  }

  /** Proposes a command (copied); it is chosen when a 'decided' output carries it. */
  propose(command, nowNs) {
    const b = bytes(command, 'command');
    call(F.propose, this.ptr, b, b.length, u64(nowNs, 'nowNs'));
  }

  /**
   * Drains the node's outputs, in the order they must be acted on. Each
   * `data` is a Buffer the caller owns: the node lends its bytes only until
   * its next call, so they are copied before the next poll.
   */
  poll() {
    const outs = [];
    for (;;) {
      const o = {};
      const has = [0];
      call(F.poll, this.ptr, o, has);
      if (has[0] === 0) return outs;
      outs.push(toOutput(o));
    }
  }

  /**
   * Compacts the log: `state` (copied) is the application's state after
   * every slot below `slot`. Those slots are dropped and the storage is
   * rewritten; a restart polls a 'snapshot' output first. INVALID_ARG (and
   * nothing changes) when `slot` is above commitIndex or not above logStart.
   */
  compact(slot, state, nowNs) {
    const b = bytes(state, 'state');
    call(F.compact, this.ptr, u64(slot, 'slot'), b, b.length, u64(nowNs, 'nowNs'));
  }

  /** The first slot the log holds (every slot below it is in the snapshot). */
  get logStart() {
    const start = [0];
    const len = [0];
    call(F.logExtent, this.ptr, start, len);
    return BigInt(start[0]);
  }

  /**
   * Whether the checkpoint of the last `compact` is still being written in
   * the background (a node on a file writes it on a thread of its own; a
   * later call puts it in place once written). `close` waits for it.
   */
  get compacting() {
    const out = [0];
    call(F.compacting, this.ptr, out);
    return out[0] === 1;
  }

  /**
   * A linearizable read with no clock bound (ReadIndex), on the leader
   * (NOT_LEADER elsewhere): poll() later gives { kind: 'read', id, ready }.
   */
  readIndex(id, nowNs) {
    call(F.readIndex, this.ptr, u64(id, 'id'), u64(nowNs, 'nowNs'));
  }

  // Membership changes, at the leader (NOT_LEADER elsewhere). Each takes a
  // slot of its own; when it is delivered every replica polls a
  // 'membership' output. INVALID_ARG (and nothing changes) while another
  // change is under way, and for a change that does not apply: adding a
  // member, promoting (or replacing with) a replica that is not a learner
  // the leader has heard from within the election timeout, removing or
  // replacing an unknown replica, a removal that would leave one voter.

  /** Adds replica `id` as a learner: it receives the log, without a vote. */
  addLearner(id, nowNs) {
    this._change(ADD_LEARNER, u32(id, 'id'), 0, nowNs);
  }

  /** Makes the learner `id` a voter. */
  promote(id, nowNs) {
    this._change(PROMOTE, u32(id, 'id'), 0, nowNs);
  }

  /** Removes the voter or learner `id`. */
  remove(id, nowNs) {
    this._change(REMOVE, u32(id, 'id'), 0, nowNs);
  }

  /** Gives the voter `oldId`'s vote to the learner `newId`, in one change. */
  replace(oldId, newId, nowNs) {
    this._change(REPLACE, u32(oldId, 'oldId'), u32(newId, 'newId'), nowNs);
  }

  _change(kind, id, other, nowNs) {
    call(F.changeMembership, this.ptr, kind, id, other, u64(nowNs, 'nowNs'));
  }

  /**
   * The membership this node holds: { epoch, start, voters, learners }
   * (epoch 0n until the first change; `start` is its first slot).
   */
  get membership() {
    const epoch = [0];
    const start = [0];
    const voters = [0];
    const len = [0];
    const ids = new Uint32Array(PAXOS_MAX_MEMBERS);
    call(F.membership, this.ptr, epoch, start, ids, ids.length, voters, len);
    const all = Array.from(ids.subarray(0, Number(len[0])));
    const v = Number(voters[0]);
    return { epoch: BigInt(epoch[0]), start: BigInt(start[0]), voters: all.slice(0, v), learners: all.slice(v) };
  }

  /** When tick() must next be called (ns on the caller's clock). */
  nextDeadline() {
    const out = [0];
    call(F.nextDeadline, this.ptr, out);
    return BigInt(out[0]);
  }

  /** The leader this node follows (itself when it leads), or null. */
  get leader() {
    const id = [0];
    const has = [0];
    call(F.leader, this.ptr, id, has);
    return has[0] === 1 ? id[0] : null;
  }

  get isLeader() {
    const out = [0];
    call(F.isLeader, this.ptr, out);
    return out[0] === 1;
  }

  /** Whether this node leads with a majority's read lease at `nowNs`. */
  hasReadLease(nowNs) {
    const out = [0];
    call(F.hasReadLease, this.ptr, u64(nowNs, 'nowNs'), out);
    return out[0] === 1;
  }

  /** Every slot below it is chosen and was delivered. */
  get commitIndex() {
    const out = [0];
    call(F.commitIndex, this.ptr, out);
    return BigInt(out[0]);
  }
}

PaxosNode.MAX_MEMBERS = PAXOS_MAX_MEMBERS;

module.exports = { PaxosNode, paxosConfig, toOutput };
