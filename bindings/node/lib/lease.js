'use strict';
// LeaseTable (qk_lease_table) and Fence (qk_fence).
//
// acquireAsync() parks no thread: it uses qk_lease_table_acquire_async,
// whose callback the library runs in whichever thread decides the request
// (this one for a grant at once, a release, a cancel or close(); the
// table's timer thread for a timeout or an expiry). koffi relays a call
// from another thread to this event loop, and that thread waits until the
// loop has run it. A waiter parked on a libuv worker instead (koffi's
// `.async` of a blocking acquire) would hold one of the pool's four threads
// until granted: four waiters would stall fs, dns, zlib and crypto.

const { koffi, fn, call, bytes, u64, msToNs, Handle, makeError, readError, CODES, UINT64_MAX, types } = require('./native');

const F = {
  new: fn('uint32 qk_lease_table_new(uint64, _Out_ qk_lease_table **, qk_error *)'),
  free: fn('void qk_lease_table_free(qk_lease_table *)'),
  now: fn('uint32 qk_lease_table_now(qk_lease_table *, _Out_ uint64 *, qk_error *)'),
  acquire: fn('uint32 qk_lease_table_acquire(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, uint64, _Out_ qk_lease *, qk_error *)'),
  acquireAsync: fn('uint32 qk_lease_table_acquire_async(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, uint64, qk_cancel *, qk_lease_callback *, uintptr_t, qk_error *)'),
  tryAcquire: fn('uint32 qk_lease_table_try_acquire(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint32, _Out_ qk_lease *, qk_error *)'),
  renew: fn('uint32 qk_lease_table_renew(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, uint64, _Out_ qk_lease *, qk_error *)'),
  release: fn('uint32 qk_lease_table_release(qk_lease_table *, const uint8_t *, size_t, const uint8_t *, size_t, uint64, qk_error *)'),
  queueLen: fn('uint32 qk_lease_table_queue_len(qk_lease_table *, const uint8_t *, size_t, _Out_ size_t *, qk_error *)'),
  resourceCount: fn('uint32 qk_lease_table_resource_count(qk_lease_table *, _Out_ size_t *, qk_error *)'),
  status: fn('uint32 qk_lease_table_lease_status(qk_lease_table *, const uint8_t *, size_t, uint64, _Out_ qk_lease *, _Out_ uint8_t *, qk_error *)'),
  cancelNew: fn('uint32 qk_cancel_new(_Out_ qk_cancel **, qk_error *)'),
  cancelFire: fn('uint32 qk_cancel_fire(qk_cancel *, qk_error *)'),
  cancelFree: fn('void qk_cancel_free(qk_cancel *)'),
  fenceNew: fn('uint32 qk_fence_new(_Out_ qk_fence **, qk_error *)'),
  fenceFree: fn('void qk_fence_free(qk_fence *)'),
  fenceCheck: fn('uint32 qk_fence_check(qk_fence *, const uint8_t *, size_t, uint64, qk_error *)'),
  fenceHighest: fn('uint32 qk_fence_highest(qk_fence *, const uint8_t *, size_t, _Out_ uint64 *, qk_error *)'),
};

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

function timeoutNs(timeoutMs) {
  return timeoutMs === undefined || timeoutMs === Infinity ? UINT64_MAX : msToNs(timeoutMs, 'timeoutMs');
}

// ---------------------------------------------------------------- async acquires
// Pending acquires by id; the id travels as the callback's user_data. One
// callback is registered for good (koffi allows a few thousand at most).
const pending = new Map();
let nextId = 1;
// koffi's cross-thread relay does not keep Node alive: a ref'd timer does
// while any acquire waits.
let keepAlive = null;

const onOutcome = koffi.register((userData, status, leasePtr, message) => {
  const p = pending.get(Number(userData));
  if (!p) return;
  pending.delete(Number(userData));
  if (pending.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
  p.table._waiting--;
  if (p.done) p.done(); // detach the AbortSignal, free the qk_cancel
  if (status === 0) p.resolve(toLease(p.resource, p.owner, koffi.decode(leasePtr, types.qk_lease)));
  else p.reject(makeError(status, message));
}, koffi.pointer(types.qk_lease_callback));

class LeaseTable extends Handle {
  /** `lockDelayMs`: after a lease expires unreleased, its resource grants nothing for this long. */
  constructor({ lockDelayMs = 0 } = {}) {
    const out = [null];
    call(F.new, msToNs(lockDelayMs, 'lockDelayMs'), out);
    super(out[0], F.free);
    this._waiting = 0; // async acquires not decided yet
  }

  /** The table's clock, in nanoseconds (the clock of `expiresAtNs`). */
  now() {
    const out = [0];
    call(F.now, this.ptr, out);
    return BigInt(out[0]);
  }

  /** Grants the lease if it is free now, else throws BusyError. Never waits. */
  tryAcquire(resource, owner, ttlMs, { shared = false } = {}) {
    const r = bytes(resource, 'resource');
    const o = bytes(owner, 'owner');
    const l = {};
    call(F.tryAcquire, this.ptr, r, r.length, o, o.length, msToNs(ttlMs, 'ttlMs'), shared ? SHARED : EXCLUSIVE, l);
    return toLease(resource, owner, l);
  }

  /**
   * Blocks this thread (and so the event loop) until the lease is granted or
   * `timeoutMs` passes (TimeoutError; default: forever). Refused while async
   * acquires on this table wait: the table's timer thread may be delivering
   * one of them to this blocked loop, and it also ends this wait.
   */
  acquire(resource, owner, ttlMs, { timeoutMs, shared = false } = {}) {
    const timeout = timeoutNs(timeoutMs);
    if (timeout !== 0n && this._waiting > 0) {
      throw makeError(CODES.INVALID_ARG, `a blocking acquire of ${JSON.stringify(String(resource))} `
        + `while ${this._waiting} acquireAsync() on this table wait would deadlock; use acquireAsync()`);
    }
    const r = bytes(resource, 'resource');
    const o = bytes(owner, 'owner');
    const l = {};
    call(F.acquire, this.ptr, r, r.length, o, o.length, msToNs(ttlMs, 'ttlMs'), shared ? SHARED : EXCLUSIVE, timeout, l);
    return toLease(resource, owner, l);
  }

  /**
   * Waits in FIFO order for the lease without blocking any thread. Rejects
   * with TimeoutError after `timeoutMs` (default: never), with
   * CancelledError when `signal` aborts or the table is closed.
   */
  acquireAsync(resource, owner, ttlMs, { timeoutMs, shared = false, signal } = {}) {
    return new Promise((resolve, reject) => {
      const r = bytes(resource, 'resource');
      const o = bytes(owner, 'owner');
      const ttl = msToNs(ttlMs, 'ttlMs');
      const timeout = timeoutNs(timeoutMs);
      const table = this.ptr;
      const p = { table: this, resource, owner, resolve, reject, done: null };
      let cancel = null;
      if (signal) {
        const out = [null];
        call(F.cancelNew, out);
        cancel = out[0];
        const fire = () => F.cancelFire(cancel, null);
        if (signal.aborted) fire();
        else signal.addEventListener('abort', fire, { once: true });
        p.done = () => {
          signal.removeEventListener('abort', fire);
          // Not now: this may run inside qk_cancel_fire(cancel) itself.
          setImmediate(() => F.cancelFree(cancel));
        };
      }
      const id = nextId++;
      pending.set(id, p);
      this._waiting++;
      if (!keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
      // Its own qk_error: the callback may run (granting at once) before this returns.
      const err = Buffer.alloc(koffi.sizeof(types.qk_error));
      const status = F.acquireAsync(table, r, r.length, o, o.length, ttl, shared ? SHARED : EXCLUSIVE,
        timeout, cancel, onOutcome, id, err);
      if (status !== 0) {
        // Refused up front: the callback will never run.
        pending.delete(id);
        this._waiting--;
        if (pending.size === 0) {
          clearInterval(keepAlive);
          keepAlive = null;
        }
        if (p.done) p.done();
        reject(readError(err, status));
      }
    });
  }

  /** Extends `lease` to now + `ttlMs`; returns the renewed lease (same token). */
  renew(lease, ttlMs) {
    const r = bytes(lease.resource, 'resource');
    const o = bytes(lease.owner, 'owner');
    const l = {};
    call(F.renew, this.ptr, r, r.length, o, o.length, u64(lease.token, 'token'), msToNs(ttlMs, 'ttlMs'), l);
    return toLease(lease.resource, lease.owner, l);
  }

  /** Ends `lease` and grants the next waiters. Not idempotent (NotHolderError). */
  release(lease) {
    const r = bytes(lease.resource, 'resource');
    const o = bytes(lease.owner, 'owner');
    call(F.release, this.ptr, r, r.length, o, o.length, u64(lease.token, 'token'));
  }

  /** Whether the lease `token` on `resource` is still held (false: released, expired, superseded). */
  isHeld(resource, token) {
    const r = bytes(resource, 'resource');
    const held = [0];
    call(F.status, this.ptr, r, r.length, u64(token, 'token'), {}, held);
    return held[0] === 1;
  }

  /** How many acquires wait for `resource`. */
  queueLength(resource) {
    const r = bytes(resource, 'resource');
    const out = [0];
    call(F.queueLen, this.ptr, r, r.length, out);
    return Number(out[0]);
  }

  /** How many resources the table keeps state for. */
  get resourceCount() {
    const out = [0];
    call(F.resourceCount, this.ptr, out);
    return Number(out[0]);
  }

  /** Frees the table; its waiting acquires reject with CancelledError (before this returns). */
  close() {
    super.close();
  }
}

/** The highest fencing token seen per resource. */
class Fence extends Handle {
  constructor() {
    const out = [null];
    call(F.fenceNew, out);
    super(out[0], F.fenceFree);
  }

  /** Accepts and records `token` if it is at least the highest seen for `resource`, else StaleTokenError. */
  check(resource, token) {
    const r = bytes(resource, 'resource');
    call(F.fenceCheck, this.ptr, r, r.length, u64(token, 'token'));
  }

  /** The highest token seen for `resource` (NotFoundError if none). */
  highest(resource) {
    const r = bytes(resource, 'resource');
    const out = [0];
    call(F.fenceHighest, this.ptr, r, r.length, out);
    return BigInt(out[0]);
  }
}

// toLease, timeoutNs and the modes serve lease_client.js too.
module.exports = { LeaseTable, Fence, toLease, timeoutNs, EXCLUSIVE, SHARED };
