'use strict';
// Loading the C library, the ABI's types, errors and the helpers every
// wrapper uses. Conventions (include/quorumkit.h):
// - every status-returning function takes a trailing qk_error *; `call()`
//   passes one and throws a QuorumkitError built from *its* message (never
//   qk_last_error_message(), which belongs to whichever thread ran last);
// - names and keys cross as UTF-8 bytes with their byte length;
// - uint64 tokens and times are BigInt.

const path = require('path');
const koffi = require('koffi');
const STATUS = require('./status');

const ABI_VERSION = 2;
const ERROR_MESSAGE_CAPACITY = 512;
const PAXOS_MAX_MEMBERS = 64;
const UINT64_MAX = 0xffffffffffffffffn;

const libraryPath = process.env.QUORUMKIT_LIB
  || path.join(__dirname, '..', '..', '..', 'target', 'release', 'libquorumkit.so');

let lib;
try {
  lib = koffi.load(libraryPath);
} catch (e) {
  throw new Error(`quorumkit: cannot load the C library ${libraryPath} (build it with `
    + `\`cargo build --release --lib\` or set QUORUMKIT_LIB): ${e.message}`);
}

// ---------------------------------------------------------------- types
const qk_error = koffi.struct('qk_error', {
  status: 'uint32',
  message: koffi.array('char', ERROR_MESSAGE_CAPACITY),
});
const qk_lease = koffi.struct('qk_lease', { token: 'uint64', expires_at_ns: 'uint64', mode: 'uint32' });
const qk_paxos_config = koffi.struct('qk_paxos_config', {
  id: 'uint32',
  members: koffi.array('uint32', PAXOS_MAX_MEMBERS), // inline: no pointer is kept
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
  data: 'const uint8_t *', // borrowed from the node until its next call
  data_len: 'size_t',
});
// user_data is declared uintptr_t (same ABI slot as void *): it carries the
// id of a pending acquire, so one registered callback serves them all.
const qk_lease_callback = koffi.proto(
  'void qk_lease_callback(uintptr_t user_data, uint32 status, const qk_lease *lease, const char *message)');
for (const t of ['qk_ring', 'qk_ketama', 'qk_maglev', 'qk_rendezvous', 'qk_lease_table', 'qk_cancel',
  'qk_fence', 'qk_detector', 'qk_paxos_node']) {
  koffi.opaque(t);
}

function fn(signature) {
  try {
    return lib.func(signature);
  } catch (e) {
    throw new Error(`quorumkit: ${libraryPath} lacks \`${signature}\`: ${e.message}`);
  }
}

// ---------------------------------------------------------------- load checks
const abi = fn('uint32 qk_abi_version()')();
if (abi !== ABI_VERSION) {
  throw new Error(`quorumkit: this binding needs C ABI version ${ABI_VERSION}, `
    + `but ${libraryPath} has version ${abi}`);
}
for (const [name, type] of [['error', qk_error], ['lease', qk_lease],
  ['paxos_config', qk_paxos_config], ['paxos_output', qk_paxos_output]]) {
  const theirs = Number(fn(`size_t qk_sizeof_${name}()`)());
  if (theirs !== koffi.sizeof(type)) {
    throw new Error(`quorumkit: qk_${name} is ${theirs} bytes in ${libraryPath} `
      + `but ${koffi.sizeof(type)} bytes in this binding`);
  }
}
const version = fn('const char *qk_version()')();
const statusStr = fn('const char *qk_status_str(uint32)');

// ---------------------------------------------------------------- errors
/** A failed call: `status` is the qk_status number, `code` its name ('NOT_FOUND'). */
class QuorumkitError extends Error {
  constructor(status, message) {
    super(message || statusStr(status));
    this.name = new.target.name;
    this.status = status;
    this.code = CODE_NAMES.get(status) || `STATUS_${status}`;
  }
}

const CODES = {}; // 'NOT_FOUND' -> 5
const CODE_NAMES = new Map(); // 5 -> 'NOT_FOUND'
const ERROR_CLASSES = new Map(); // 5 -> NotFoundError
const errors = { QuorumkitError };
for (const [code, name] of STATUS) {
  CODES[name] = code;
  CODE_NAMES.set(code, name);
  if (code === 0) continue;
  // NOT_FOUND -> NotFoundError
  const cls = name.toLowerCase().replace(/(^|_)([a-z0-9])/g, (_, __, c) => c.toUpperCase()) + 'Error';
  const C = { [cls]: class extends QuorumkitError {} }[cls];
  ERROR_CLASSES.set(code, C);
  errors[cls] = C;
}

function makeError(status, message) {
  const C = ERROR_CLASSES.get(status) || QuorumkitError;
  return new C(status, message);
}

function readError(buf, status) {
  const end = buf.indexOf(0, 4);
  return makeError(status, buf.toString('utf8', 4, end < 0 ? buf.length : end));
}

// Synchronous calls all run on this (the JS) thread, one at a time, so they
// share one qk_error; the library writes it during the call that gets it.
const ERR = Buffer.alloc(koffi.sizeof(qk_error));

/** Calls `f(...args, err)` and throws the call's own error on a non-zero status. */
function call(f, ...args) {
  const status = f(...args, ERR);
  if (status !== 0) throw readError(ERR, status);
}

/** As `call`, but returns the status instead of throwing when it is one of `allowed`. */
function callAllowing(allowed, f, ...args) {
  const status = f(...args, ERR);
  if (status !== 0 && !allowed.includes(status)) throw readError(ERR, status);
  return status;
}

// ---------------------------------------------------------------- conversions
/** A name or key as UTF-8 bytes: `.length` is the byte length (never the string's). */
function bytes(v, what) {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`${what} must be a string, a Buffer or a Uint8Array`);
}

/** A uint64: BigInt, or a non-negative safe integer. */
function u64(v, what) {
  if (typeof v === 'bigint') {
    if (v < 0n || v > UINT64_MAX) throw new RangeError(`${what} is outside the uint64 range`);
    return v;
  }
  if (Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw new TypeError(`${what} must be a BigInt or a non-negative safe integer`);
}

/** Milliseconds (a non-negative finite number) to nanoseconds. */
function msToNs(ms, what) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${what} must be a finite, non-negative number of milliseconds`);
  }
  return BigInt(Math.round(ms * 1e6));
}

/** Copies `len` bytes lent by the library at `ptr` into a Buffer the caller owns. */
function copyOut(ptr, len) {
  if (len === 0) return Buffer.alloc(0);
  const u8 = koffi.decode(ptr, koffi.array('uint8_t', len, 'Typed'));
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

// ---------------------------------------------------------------- handles
// A handle nobody closed is freed when it is collected (a safety net:
// close() frees at once, and a Paxos file stays locked until then).
const finalizer = new FinalizationRegistry(({ free, ptr }) => free(ptr));

/** Owns one qk_x pointer; `close()` frees it with qk_x_free (idempotent). */
class Handle {
  constructor(ptr, free) {
    this._ptr = ptr;
    this._free = free;
    finalizer.register(this, { free, ptr }, this);
  }
  get ptr() {
    if (this._ptr === null) throw makeError(CODES.NULL_ARG, `this ${this.constructor.name} is closed`);
    return this._ptr;
  }
  get closed() { return this._ptr === null; }
  close() {
    if (this._ptr === null) return;
    const p = this._ptr;
    this._ptr = null;
    finalizer.unregister(this);
    this._free(p);
  }
}
if (Symbol.dispose) Handle.prototype[Symbol.dispose] = Handle.prototype.close;

module.exports = {
  koffi,
  lib,
  fn,
  libraryPath,
  ABI_VERSION,
  PAXOS_MAX_MEMBERS,
  UINT64_MAX,
  version,
  statusStr,
  types: { qk_error, qk_lease, qk_paxos_config, qk_paxos_output, qk_lease_callback },
  QuorumkitError,
  errors,
  CODES,
  makeError,
  readError,
  call,
  callAllowing,
  bytes,
  u64,
  msToNs,
  copyOut,
  Handle,
};
