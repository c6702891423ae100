'use strict';
// Helpers of the tests that start replicas on loopback ports (outside
// test/, so that `node --test test/` does not run this file as a test).

const net = require('net');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A loopback port that was free a moment ago (the replica listens on it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

module.exports = { sleep, freePort };
