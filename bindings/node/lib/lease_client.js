'use strict';
// LeaseClient (qk_lease_client): leases from a replicated lease service
// (`quorumkit serve --state lease`), shared by every process that reaches
// the cluster.
//
// The calls other than acquireAsync() are network round trips made on this
// thread: each blocks the event loop for one round trip, and for up to the
// client's timeout while no leader answers (an election). acquireAsync()
// waits on a thread of the library's own (qk_lease_client_acquire_async) and
// settles its promise on this loop.

const { koffi, fn, call, bytes, u64, msToNs, Handle, makeError, readError, CODES, types } = require('./native');
const { toLease, timeoutNs, EXCLUSIVE, SHARED } = require('./lease');

koffi.opaque('qk_lease_client');

const F = {
  new: fn('uint32 qk_lease_client_new(const char *, uint64, const uint8_t *, size_t, uint64, _Out_ qk_lease_client **, qk_error *)'),
  free: fn('void qk_lease_client_free(qk_lease_client *)'),
  now: fn('uint32 qk_lease_client_now(qk_lease_client *, _Out_ uint64 *, qk_error *)'),
  acquire: fn('uint32 qk_lease_client_acquire(qk_lease_client *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, uint64, _Out_ qk_lease *, qk_error *)'),
  acquireAsync: fn('uint32 qk_lease_client_acquire_async(qk_lease_client *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, uint64, qk_lease_callback *, uintptr_t, qk_error *)'),
  tryAcquire: fn('uint32 qk_lease_client_try_acquire(qk_lease_client *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, _Out_ qk_lease *, qk_error *)'),
  renew: fn('uint32 qk_lease_client_renew(qk_lease_client *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint64, _Out_ qk_lease *, qk_error *)'),
  release: fn('uint32 qk_lease_client_release(qk_lease_client *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, qk_error *)'),
  holders: fn('uint32 qk_lease_client_holders(qk_lease_client *, const uint8_t *, size_t, void *, size_t, _Out_ size_t *, qk_error *)'),
};

const LEASE_SIZE = koffi.sizeof(types.qk_lease);
const LEASE_MODE_OFFSET = koffi.offsetof(types.qk_lease, 'mode');

// Pending async acquires by id (the callback's user_data); one callback
// registered for good. A ref'd timer keeps Node alive while any waits:
// koffi's relay from the library's thread does not.
const pending = new Map();
let nextId = 1;
let keepAlive = null;

function settle(id) {
  const p = pending.get(id);
  if (!p) return null;
  pending.delete(id);
  if (pending.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
  p.client._waiting--;
  if (p.client._waiting === 0 && p.client._closeWhenIdle) {
    // Not inside the callback: the free waits for that very thread.
    setImmediate(() => p.client._free_now());
  }
  return p;
}

const onOutcome = koffi.register((userData, status, leasePtr, message) => {
  const p = settle(Number(userData));
  if (!p) return;
  if (status === 0) p.resolve(toLease(p.resource, p.owner, koffi.decode(leasePtr, types.qk_lease)));
  else p.reject(makeError(status, message));
}, koffi.pointer(types.qk_lease_callback));

class LeaseClient extends Handle {
  /**
   * A client of the cluster whose replicas listen at `addrs` ("HOST:PORT"
   * strings, or one comma-separated string), with its `secret` (string or
   * bytes, at least 16 bytes) and `clusterId`. `timeoutMs` bounds each
   * call's search for a leader (default 10 s). Connects on first use.
   */
  constructor(addrs, { secret, clusterId = 1, timeoutMs } = {}) {
    const list = Array.isArray(addrs) ? addrs.join(',') : addrs;
    if (typeof list !== 'string') throw makeError(CODES.INVALID_ARG, 'addrs must be a string or an array of strings');
    const key = bytes(secret === undefined ? '' : secret, 'secret');
    const out = [null];
    call(F.new, list, u64(clusterId, 'clusterId'), key, key.length,
      timeoutMs === undefined ? 0n : msToNs(timeoutMs, 'timeoutMs'), out);
    super(out[0], F.free);
    this._waiting = 0; // async acquires not settled yet
    this._closeWhenIdle = false;
  }

  get ptr() {
    if (this._closeWhenIdle) throw makeError(CODES.NULL_ARG, 'this LeaseClient is closed');
    return super.ptr;
  }

  /** The clock of `expiresAtNs`, in nanoseconds (this process's monotonic clock). */
  now() {
    const out = [0];
    call(F.now, this.ptr, out);
    return BigInt(out[0]);
  }

  /** Grants the lease if it is free now, else throws BusyError. */
  tryAcquire(resource, owner, ttlMs, { shared = false } = {}) {
    const r = bytes(resource, 'resource');
    const o = bytes(owner, 'owner');
    const l = {};
    call(F.tryAcquire, this.ptr, r, r.length, o, o.length, msToNs(ttlMs, 'ttlMs'), shared ? SHARED : EXCLUSIVE, l);
    return toLease(resource, owner, l);
  }

  /**
   * Blocks this thread (and the event loop) until the service grants the
   * lease (FIFO) or `timeoutMs` passes (TimeoutError). Prefer acquireAsync().
   * Refused while async acquires of this client wait (their grants reach
   * JavaScript through this loop).
   */
  acquire(resource, owner, ttlMs, { timeoutMs, shared = false } = {}) {
    const timeout = timeoutNs(timeoutMs);
    if (timeout !== 0n && this._waiting > 0) {
      throw makeError(CODES.INVALID_ARG, `a blocking acquire of ${JSON.stringify(String(resource))} `
        + `while ${this._waiting} acquireAsync() on this client wait; use acquireAsync()`);
    }
    const r = bytes(resource, 'resource');
    const o = bytes(owner, 'owner');
    const l = {};
    call(F.acquire, this.ptr, r, r.length, o, o.length, msToNs(ttlMs, 'ttlMs'), shared ? SHARED : EXCLUSIVE, timeout, l);
    return toLease(resource, owner, l);
  }

  /**
   * Waits in FIFO order for the lease on a library thread; the promise
   * settles on this loop. Rejects with TimeoutError after `timeoutMs`
   * (default: never), BusyError for `timeoutMs: 0` on a held resource,
   * BackendUnavailableError when no leader answers in time.
   */
  acquireAsync(resource, owner, ttlMs, { timeoutMs, shared = false } = {}) {
    return new Promise((resolve, reject) => {
      const r = bytes(resource, 'resource');
      const o = bytes(owner, 'owner');
      const ttl = msToNs(ttlMs, 'ttlMs');
      const timeout = timeoutNs(timeoutMs);
      const client = this.ptr;
      const id = nextId++;
      pending.set(id, { client: this, resource, owner, resolve, reject });
      this._waiting++;
      if (!keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
      const err = Buffer.alloc(koffi.sizeof(types.qk_error));
      const status = F.acquireAsync(client, r, r.length, o, o.length, ttl, shared ? SHARED : EXCLUSIVE, timeout,
        onOutcome, id, err);
      if (status !== 0) {
        settle(id); // refused up front: the callback never runs
        reject(readError(err, status));
      }
    });
  }

  /** Extends `lease` to now + `ttlMs` (the service's now); same token. */
  renew(lease, ttlMs) {
    const r = bytes(lease.resource, 'resource');
    const o = bytes(lease.owner, 'owner');
    const l = {};
    call(F.renew, this.ptr, r, r.length, o, o.length, u64(lease.token, 'token'), msToNs(ttlMs, 'ttlMs'), l);
    return toLease(lease.resource, lease.owner, l);
  }

  /** Ends `lease`; the next waiter is granted. NotHolderError if it is not held. */
  release(lease) {
    const r = bytes(lease.resource, 'resource');
    const o = bytes(lease.owner, 'owner');
    call(F.release, this.ptr, r, r.length, o, o.length, u64(lease.token, 'token'));
  }

  /** The current holders of `resource`: `{ token, expiresAtNs, shared }` (cluster time). */
  holders(resource) {
    const r = bytes(resource, 'resource');
    let cap = 4;
    for (;;) {
      const buf = Buffer.alloc(cap * LEASE_SIZE);
      const count = [0];
      const err = Buffer.alloc(koffi.sizeof(types.qk_error));
      const status = F.holders(this.ptr, r, r.length, buf, cap, count, err);
      const n = Number(count[0]);
      if (status === CODES.BUFFER_TOO_SMALL && n > cap) {
        cap = n;
        continue;
      }
      if (status !== 0) throw readError(err, status);
      const out = [];
      for (let i = 0; i < n; i++) {
        const at = i * LEASE_SIZE;
        out.push({
          token: buf.readBigUInt64LE(at),
          expiresAtNs: buf.readBigUInt64LE(at + 8),
          shared: buf.readUInt32LE(at + LEASE_MODE_OFFSET) === SHARED,
        });
      }
      return out;
    }
  }

  /** Frees the client; with async acquires waiting, once they settle (their promises still do). */
  close() {
    if (this._closed_requested) return;
    this._closed_requested = true;
    if (this._waiting > 0) {
      this._closeWhenIdle = true;
      return;
    }
    this._free_now();
  }

  _free_now() {
    this._closeWhenIdle = true;
    Handle.prototype.close.call(this);
  }
}

module.exports = { LeaseClient };
