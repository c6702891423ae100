'use strict';
// LeaseClient against three `quorumkit serve --state lease` processes that
// this test starts on free loopback ports in a temp dir (the binary from
// QK_BIN, else target/release/quorumkit), and stops by their PIDs.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const qk = require('..');

const SECRET = 'node-test-cluster-secret';
const BIN = process.env.QK_BIN || path.join(__dirname, '..', '..', '..', 'target', 'release', 'quorumkit');
const { sleep, freePort } = require('../testing/net');

async function startCluster() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-node-lease-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  const procs = ports.map((_, i) => spawn(BIN, ['serve', '--state', 'lease', '--id', String(i + 1), '--peers', peers,
    '--cluster-id', '9', '--heartbeat-ms', '20', '--data', path.join(dir, `r${i + 1}`), '--init'],
  { env: { ...process.env, QK_CLUSTER_SECRET: SECRET }, stdio: 'ignore' }));
  const addrs = ports.map((p) => `127.0.0.1:${p}`);
  return {
    addrs,
    stop() {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('LeaseClient: grants, FIFO hand-off through acquireAsync, bad input, close with waiters', async (t) => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing (make bin)`);
  const cluster = await startCluster();
  t.after(() => cluster.stop());

  // Bad arguments fail at once with typed errors.
  assert.throws(() => new qk.LeaseClient([], { secret: SECRET }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.LeaseClient(['not an address'], { secret: SECRET }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.LeaseClient(cluster.addrs, { secret: 'short' }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.LeaseClient(42, { secret: SECRET }), (e) => e.code === 'INVALID_ARG');

  const c = new qk.LeaseClient(cluster.addrs, { secret: SECRET, clusterId: 9, timeoutMs: 10000 });
  // The first call waits for the cluster to elect a leader.
  let a;
  for (let i = 0; i < 200 && !a; i++) {
    try {
      a = c.tryAcquire('db', 'alice', 5000);
    } catch (e) {
      if (e.code !== 'BACKEND_UNAVAILABLE') throw e;
      await sleep(50);
    }
  }
  assert.ok(a, 'no leader within the bound');
  assert.strictEqual(typeof a.token, 'bigint');
  assert.ok(a.expiresAtNs > c.now());
  assert.throws(() => c.tryAcquire('db', 'bob', 1000), (e) => e instanceof qk.BusyError);
  assert.throws(() => c.tryAcquire('', 'bob', 1000), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => c.tryAcquire('db', 'bob', 0), (e) => e.code === 'INVALID_ARG');
  const h = c.holders('db');
  assert.strictEqual(h.length, 1);
  assert.strictEqual(h[0].token, a.token);
  assert.strictEqual(h[0].shared, false);
  const renewed = c.renew(a, 8000);
  assert.strictEqual(renewed.token, a.token);
  assert.throws(() => c.release({ ...a, owner: 'mallory' }), (e) => e.code === 'NOT_HOLDER');

  // acquireAsync waits in the service's queue without blocking the loop,
  // and is granted when the holder releases.
  let settled = false;
  const waiting = c.acquireAsync('db', 'bob', 5000, { timeoutMs: 10000 }).then((l) => { settled = true; return l; });
  await sleep(200);
  assert.strictEqual(settled, false);
  // A blocking acquire while an async one waits is refused (it would hold the loop).
  assert.throws(() => c.acquire('other', 'x', 1000, { timeoutMs: 1000 }), (e) => e.code === 'INVALID_ARG');
  c.release(a);
  const b = await waiting;
  assert.ok(b.token > a.token);
  assert.deepStrictEqual(c.holders('db').map((x) => x.token), [b.token]);

  // timeoutMs 0 on a held resource: BusyError through the promise; a short
  // timeout: TimeoutError; bad input: rejected up front.
  await assert.rejects(c.acquireAsync('db', 'carol', 1000, { timeoutMs: 0 }), (e) => e.code === 'BUSY');
  await assert.rejects(c.acquireAsync('db', 'carol', 1000, { timeoutMs: 150 }), (e) => e.code === 'TIMEOUT');
  await assert.rejects(c.acquireAsync('', 'carol', 1000), (e) => e.code === 'INVALID_ARG');

  // Shared holders together.
  const s1 = c.tryAcquire('cfg', 'r1', 5000, { shared: true });
  const s2 = c.tryAcquire('cfg', 'r2', 5000, { shared: true });
  assert.ok(s1.shared && s2.shared && s2.token > s1.token);
  assert.strictEqual(c.holders('cfg').length, 2);

  // close() with an acquire waiting: the free waits for it to settle (here,
  // its timeout), the promise still settles, and later calls are refused.
  const last = c.acquireAsync('db', 'dave', 1000, { timeoutMs: 300 });
  c.close();
  assert.throws(() => c.now(), (e) => e.code === 'NULL_ARG');
  await assert.rejects(last, (e) => e.code === 'TIMEOUT');
  await sleep(20);
  assert.ok(c.closed);
  c.close(); // idempotent

  // A client with the wrong secret takes nothing.
  const intruder = new qk.LeaseClient(cluster.addrs, { secret: 'not-the-cluster-secret', clusterId: 9, timeoutMs: 500 });
  assert.throws(() => intruder.tryAcquire('free', 'intruder', 1000), (e) => e.code === 'BACKEND_UNAVAILABLE');
  intruder.close();
});
