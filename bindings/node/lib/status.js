'use strict';
// The qk_status codes of C ABI version 2, from include/quorumkit-constants.json
// (test/errors.test.js checks this copy against that file and the library).
// [code, name without the QK_ / QK_ERR_ prefix, qk_status_str() text]
module.exports = [
  [0, 'OK', "ok"],
  [1, 'NULL_ARG', "null argument"],
  [2, 'INVALID_ARG', "invalid argument"],
  [3, 'INVALID_UTF8', "invalid UTF-8"],
  [4, 'EMPTY', "empty ring"],
  [5, 'NOT_FOUND', "not found"],
  [6, 'ALREADY_EXISTS', "already exists"],
  [7, 'BUFFER_TOO_SMALL', "buffer too small"],
  [8, 'PANIC', "internal panic"],
  [9, 'CORRUPT', "corrupt data"],
  [10, 'UNSUPPORTED_VERSION', "unsupported version"],
  [12, 'TIMEOUT', "timed out"],
  [13, 'LEASE_EXPIRED', "lease expired"],
  [14, 'NOT_HOLDER', "not the holder"],
  [15, 'STALE_TOKEN', "stale token"],
  [16, 'BUSY', "busy"],
  [17, 'STORAGE', "storage failure"],
  [18, 'NOT_LEADER', "not the leader"],
  [24, 'NOT_MONOTONIC', "time went backwards"],
  [25, 'STORAGE_CORRUPT', "storage corrupt"],
  [26, 'STORAGE_IN_USE', "storage in use"],
  [27, 'STORAGE_MISMATCH', "storage belongs to another replica"],
  [28, 'LIMIT_EXCEEDED', "decode limit exceeded"],
  [29, 'CANCELLED', "cancelled"],
  [30, 'BACKEND_UNAVAILABLE', "backend unavailable"],
];
