'use strict';
// quorumkit for Node.js: a koffi binding of the quorumkit C ABI
// (include/quorumkit.h, ABI version 2). See README.md for the rules.

const native = require('./lib/native');
const { HashRing, KetamaRing, Maglev, Rendezvous } = require('./lib/rings');
const { LeaseTable, Fence } = require('./lib/lease');
const { LeaseClient } = require('./lib/lease_client');
const { FailureDetector } = require('./lib/detector');
const { PaxosNode, paxosConfig } = require('./lib/paxos');
const { Replica, NetClient } = require('./lib/replica');

module.exports = {
  ABI_VERSION: native.ABI_VERSION,
  version: native.version,
  libraryPath: native.libraryPath,
  codes: Object.freeze({ ...native.CODES }),
  statusString: (status) => native.statusStr(status),
  ...native.errors,
  HashRing,
  KetamaRing,
  Maglev,
  Rendezvous,
  LeaseTable,
  LeaseClient,
  Fence,
  FailureDetector,
  PaxosNode,
  paxosConfig,
  Replica,
  NetClient,
};
