'use strict';
const test = require('node:test');
const assert = require('node:assert');
const qk = require('..');

const until = async (cond, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 2));
  }
};

test('async acquires hand off FIFO with increasing BigInt tokens; Fence refuses the old one', async () => {
  const t = new qk.LeaseTable();
  const first = t.tryAcquire('db', 'a', 60000);
  assert.strictEqual(typeof first.token, 'bigint');
  const order = [];
  const b = t.acquire('db', 'b', 60000).then((l) => { order.push('b'); return l; });
  await until(() => t.queueLength('db') === 1);
  const c = t.acquire('db', 'c', 60000).then((l) => { order.push('c'); return l; });
  await until(() => t.queueLength('db') === 2);
  t.release(first);
  const lb = await b;
  t.release(lb);
  const lc = await c;
  assert.deepStrictEqual(order, ['b', 'c']);
  assert.ok(first.token < lb.token && lb.token < lc.token);
  const renewed = t.renew(lc, 1000);
  assert.strictEqual(renewed.token, lc.token);
  assert.throws(() => t.release(first), (e) => e.code === 'NOT_HOLDER');
  const fence = new qk.Fence();
  fence.check('db', lc.token);
  assert.throws(() => fence.check('db', first.token), (e) => e.code === 'STALE_TOKEN');
  fence.close();
  assert.throws(() => t.tryAcquire('db', 'x', 1000), (e) => e.code === 'BUSY');
  assert.throws(() => t.tryAcquire('db', 'x', NaN), RangeError);
  assert.throws(() => t.tryAcquire('other', '', 1000), (e) => e.code === 'INVALID_ARG');
  await assert.rejects(t.acquire('db', 'late', 1000, { timeoutMs: 20 }), (e) => e.code === 'TIMEOUT');
  t.close();
});

test('an AbortSignal cancels an acquire blocked with no timeout, at once', async () => {
  const t = new qk.LeaseTable();
  const held = t.tryAcquire('r', 'holder', 60000);
  const ac = new AbortController();
  const p = t.acquire('r', 'waiter', 60000, { signal: ac.signal });
  await until(() => t.queueLength('r') === 1);
  const start = Date.now();
  ac.abort();
  await assert.rejects(p, (e) => e.code === 'CANCELLED');
  assert.ok(Date.now() - start < 1000);
  assert.strictEqual(t.queueLength('r'), 0);
  t.release(held);
  // An already aborted signal fails even on a free resource.
  await assert.rejects(t.acquire('r', 'w', 1000, { signal: ac.signal }), (e) => e.code === 'CANCELLED');
  assert.ok(t.tryAcquire('r', 'next', 1000).token > held.token);
  t.close();
});

// Regression: messages were per OS thread, and koffi's .async runs on a
// worker, so the main thread read another call's message. 200 failing
// async acquires race 200 failing sync calls: each error names its own.
test('errors of async calls belong to their call', async () => {
  const t = new qk.LeaseTable();
  const holders = [];
  for (let i = 0; i < 200; i++) holders.push(t.tryAcquire(`res-${i}`, 'holder', 60000));
  const asyncCalls = holders.map((_, i) =>
    t.acquire(`res-${i}`, 'w', 1000, { timeoutMs: 0 }).then(
      () => 'granted?',
      (e) => (e.code === 'TIMEOUT' && e.message.includes(`"res-${i}"`) ? 'ok' : e.message)));
  let syncWrong = 0;
  for (let i = 0; i < 200; i++) {
    try {
      t.release({ resource: `sync-${i}`, owner: 'nobody', token: 1n });
    } catch (e) {
      if (!e.message.includes(`"sync-${i}"`)) syncWrong++;
    }
  }
  const results = await Promise.all(asyncCalls);
  assert.deepStrictEqual(results.filter((r) => r !== 'ok'), []);
  assert.strictEqual(syncWrong, 0);
  t.close();
});

test('closing a table rejects its blocked acquires with CANCELLED', async () => {
  const t = new qk.LeaseTable();
  t.tryAcquire('r', 'holder', 60000);
  const waiting = [1, 2, 3].map((i) => t.acquire('r', `w${i}`, 1000, { shared: true }));
  await until(() => t.queueLength('r') === 3);
  t.close();
  for (const p of waiting) await assert.rejects(p, (e) => e.code === 'CANCELLED');
  assert.throws(() => t.tryAcquire('r', 'x', 1000), /closed/);
});

test('failure detector', () => {
  const d = new qk.FailureDetector({ threshold: 8, maxSamples: 100, minStdDevMs: 100, firstHeartbeatEstimateMs: 1000 });
  const s = 1000000000n;
  for (let i = 1n; i <= 10n; i++) d.heartbeat('peer', i * s);
  assert.strictEqual(d.isAvailable('peer', 10n * s + s / 2n), true);
  assert.ok(d.phi('peer', 30n * s) > 8);
  assert.strictEqual(d.isAvailable('peer', 30n * s), false);
  assert.throws(() => d.phi('nobody', s), (e) => e.code === 'NOT_FOUND');
  assert.throws(() => d.heartbeat('peer', -1), TypeError);
  assert.throws(() => new qk.FailureDetector({ threshold: -1 }), (e) => e.code === 'INVALID_ARG');
  d.close();
});
