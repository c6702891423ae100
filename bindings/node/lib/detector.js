'use strict';
// FailureDetector: a phi-accrual failure detector (qk_detector). Times are
// nanoseconds of the caller's monotonic clock (BigInt, or a safe integer),
// e.g. process.hrtime.bigint().

const { fn, call, bytes, u64, msToNs, Handle } = require('./native');

const F = {
  new: fn('uint32 qk_detector_new(double, size_t, uint64, uint64, uint64, _Out_ qk_detector **, qk_error *)'),
  free: fn('void qk_detector_free(qk_detector *)'),
  heartbeat: fn('uint32 qk_detector_heartbeat(qk_detector *, const uint8_t *, size_t, uint64, qk_error *)'),
  phi: fn('uint32 qk_detector_phi(qk_detector *, const uint8_t *, size_t, uint64, _Out_ double *, qk_error *)'),
  isAvailable: fn('uint32 qk_detector_is_available(qk_detector *, const uint8_t *, size_t, uint64, _Out_ uint8_t *, qk_error *)'),
  remove: fn('uint32 qk_detector_remove(qk_detector *, const uint8_t *, size_t, qk_error *)'),
  len: fn('uint32 qk_detector_len(qk_detector *, _Out_ size_t *, qk_error *)'),
};

class FailureDetector extends Handle {
  /** Akka's defaults: threshold 8, 1000 samples, min std dev 100 ms, pause 3 s, first estimate 1 s. */
  constructor({ threshold = 8, maxSamples = 1000, minStdDevMs = 100, acceptablePauseMs = 3000,
    firstHeartbeatEstimateMs = 1000 } = {}) {
    const out = [null];
    call(F.new, threshold, maxSamples, msToNs(minStdDevMs, 'minStdDevMs'),
      msToNs(acceptablePauseMs, 'acceptablePauseMs'), msToNs(firstHeartbeatEstimateMs, 'firstHeartbeatEstimateMs'), out);
    super(out[0], F.free);
  }

  /** Records a heartbeat from `name` at `nowNs`; the first one registers it. */
  heartbeat(name, nowNs) {
    const b = bytes(name, 'name');
    call(F.heartbeat, this.ptr, b, b.length, u64(nowNs, 'nowNs'));
  }

  /** The suspicion level of `name` at `nowNs` (NotFoundError for a node never heard from). */
  phi(name, nowNs) {
    const b = bytes(name, 'name');
    const out = [0];
    call(F.phi, this.ptr, b, b.length, u64(nowNs, 'nowNs'), out);
    return out[0];
  }

  /** Whether phi of `name` at `nowNs` is below the threshold. */
  isAvailable(name, nowNs) {
    const b = bytes(name, 'name');
    const out = [0];
    call(F.isAvailable, this.ptr, b, b.length, u64(nowNs, 'nowNs'), out);
    return out[0] === 1;
  }

  /** Stops monitoring `name` (NotFoundError if it was not). */
  remove(name) {
    const b = bytes(name, 'name');
    call(F.remove, this.ptr, b, b.length);
  }

  get size() {
    const out = [0];
    call(F.len, this.ptr, out);
    return Number(out[0]);
  }
}

module.exports = { FailureDetector };
