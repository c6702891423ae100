'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const fs = require('fs');
const qk = require('..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition never held');
    await sleep(2);
  }
}

test('tryAcquire, renew, release: BigInt tokens, owner checks, shared leases', () => {
  const t = new qk.LeaseTable();
  const a = t.tryAcquire('db', 'a', 60000);
  assert.strictEqual(typeof a.token, 'bigint');
  assert.ok(a.expiresAtNs > t.now());
  assert.deepStrictEqual([a.resource, a.owner, a.shared], ['db', 'a', false]);
  assert.throws(() => t.tryAcquire('db', 'b', 1000), (e) => e instanceof qk.BusyError && e.message.includes('"db"'));
  const renewed = t.renew(a, 120000);
  assert.strictEqual(renewed.token, a.token);
  assert.ok(renewed.expiresAtNs > a.expiresAtNs);
  assert.throws(() => t.release({ ...a, owner: 'mallory' }), (e) => e.code === 'NOT_HOLDER' && e.message.includes('"mallory"'));
  assert.ok(t.isHeld('db', a.token));
  t.release(a);
  assert.ok(!t.isHeld('db', a.token));
  assert.throws(() => t.release(a), (e) => e.code === 'NOT_HOLDER');
  const b = t.tryAcquire('db', 'b', 1000);
  assert.ok(b.token > a.token);
  t.release(b);

  const s1 = t.tryAcquire('cfg', 'r1', 1000, { shared: true });
  const s2 = t.tryAcquire('cfg', 'r2', 1000, { shared: true });
  assert.ok(s1.shared && s2.shared && s2.token > s1.token);
  assert.throws(() => t.tryAcquire('cfg', 'w', 1000), (e) => e.code === 'BUSY');
  // UTF-8 names: "kaché-e" and "kaché-" are two resources.
  t.tryAcquire('kaché-e', 'o', 1000);
  t.tryAcquire('kaché-', 'o', 1000);
  assert.strictEqual(t.resourceCount, 3);
  // Argument errors.
  assert.throws(() => t.tryAcquire('x', '', 1000), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => t.tryAcquire('', 'o', 1000), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => t.tryAcquire('x', 'o', 0), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => t.tryAcquire('x', 'o', -5), RangeError);
  t.close();
});

test('an expired lease cannot be renewed or released', async () => {
  const t = new qk.LeaseTable();
  const l = t.tryAcquire('short', 'a', 20);
  await sleep(50);
  assert.throws(() => t.renew(l, 1000), (e) => e instanceof qk.LeaseExpiredError && e.message.includes('"short"'));
  assert.throws(() => t.release(l), (e) => e.code === 'LEASE_EXPIRED');
  assert.ok(t.tryAcquire('short', 'b', 1000).token > l.token);
  t.close();
});

test('FIFO hand-off between two async waiters, tokens increasing', async () => {
  const t = new qk.LeaseTable();
  const first = t.tryAcquire('db', 'a', 60000);
  const order = [];
  const b = t.acquireAsync('db', 'b', 60000).then((l) => { order.push('b'); return l; });
  await until(() => t.queueLength('db') === 1);
  const c = t.acquireAsync('db', 'c', 60000).then((l) => { order.push('c'); return l; });
  await until(() => t.queueLength('db') === 2);
  await sleep(20);
  assert.deepStrictEqual(order, []);
  t.release(first);
  const lb = await b;
  assert.deepStrictEqual(order, ['b']);
  assert.strictEqual(lb.owner, 'b');
  assert.strictEqual(t.queueLength('db'), 1);
  t.release(lb);
  const lc = await c;
  assert.deepStrictEqual(order, ['b', 'c']);
  assert.ok(first.token < lb.token && lb.token < lc.token);
  // A free resource is granted at once.
  t.release(lc);
  const d = await t.acquireAsync('db', 'd', 1000, { timeoutMs: 0 });
  assert.ok(d.token > lc.token);
  t.close();
});

test('an AbortSignal cancels a waiter blocked with no timeout, promptly', async () => {
  const t = new qk.LeaseTable();
  const held = t.tryAcquire('r', 'holder', 60000);
  const ac = new AbortController();
  const p = t.acquireAsync('r', 'waiter', 60000, { signal: ac.signal });
  await until(() => t.queueLength('r') === 1);
  const start = performance.now();
  ac.abort();
  await assert.rejects(p, (e) => e instanceof qk.CancelledError && e.code === 'CANCELLED' && e.message.includes('"r"'));
  assert.ok(performance.now() - start < 500, 'cancelled late');
  assert.strictEqual(t.queueLength('r'), 0);
  // An already aborted signal fails at once, even on a free resource.
  t.release(held);
  await assert.rejects(t.acquireAsync('r', 'w', 1000, { signal: ac.signal }), (e) => e.code === 'CANCELLED');
  assert.ok(t.tryAcquire('r', 'next', 1000).token > held.token);
  // A signal that never fires changes nothing.
  const l = await t.acquireAsync('free', 'w', 1000, { signal: new AbortController().signal });
  assert.strictEqual(l.owner, 'w');
  t.close();
});

test('a timeout rejects with TIMEOUT naming the resource', async () => {
  const t = new qk.LeaseTable();
  t.tryAcquire('busy', 'holder', 60000);
  const start = performance.now();
  await assert.rejects(t.acquireAsync('busy', 'w', 1000, { timeoutMs: 30 }),
    (e) => e instanceof qk.TimeoutError && e.message.includes('"busy"'));
  assert.ok(performance.now() - start >= 25);
  await assert.rejects(t.acquireAsync('busy', 'w', 1000, { timeoutMs: 0 }), (e) => e.code === 'TIMEOUT');
  await assert.rejects(t.acquireAsync('busy', '', 1000), (e) => e.code === 'INVALID_ARG');
  assert.strictEqual(t.queueLength('busy'), 0);
  t.close();
});

test('async errors carry their own message, even while sync calls fail on the main thread', async () => {
  // Regression: the message was read from qk_last_error_message(), which
  // belongs to whichever thread failed last.
  const t = new qk.LeaseTable();
  const N = 200;
  for (let i = 0; i < N; i++) t.tryAcquire(`async-${i}`, 'holder', 60000);
  for (let i = 0; i < 50; i++) t.tryAcquire(`sync-${i}`, 'holder', 60000);
  const results = Array.from({ length: N }, (_, i) => t.acquireAsync(`async-${i}`, `w${i}`, 1000,
    { timeoutMs: 5 + (i % 40) }).then(() => null, (e) => e));
  let syncFailures = 0;
  let done = false;
  Promise.allSettled(results).then(() => { done = true; });
  while (!done) {
    for (let j = 0; j < 50; j++) {
      try {
        t.tryAcquire(`sync-${j}`, 'other', 1000);
      } catch (e) {
        assert.strictEqual(e.code, 'BUSY');
        assert.ok(e.message.includes(`"sync-${j}"`), e.message);
        syncFailures++;
      }
    }
    await new Promise(setImmediate);
  }
  const errors = await Promise.all(results);
  errors.forEach((e, i) => {
    assert.ok(e instanceof qk.TimeoutError, `async-${i}: ${e}`);
    assert.ok(e.message.includes(`"async-${i}"`), `async-${i} got "${e.message}"`);
  });
  assert.ok(syncFailures >= 50);
  t.close();
});

test('waiting acquires hold no libuv worker: fs and crypto still run', async () => {
  const t = new qk.LeaseTable();
  t.tryAcquire('r', 'holder', 60000);
  const waiters = Array.from({ length: 8 }, (_, i) => t.acquireAsync('r', `w${i}`, 1000).catch((e) => e));
  await until(() => t.queueLength('r') === 8);
  const start = performance.now();
  await fs.promises.readFile(__filename);
  await new Promise((resolve, reject) => crypto.pbkdf2('pw', 'salt', 1, 32, 'sha256', (e) => (e ? reject(e) : resolve())));
  assert.ok(performance.now() - start < 1000);
  t.close();
  for (const e of await Promise.all(waiters)) assert.strictEqual(e.code, 'CANCELLED');
});

test('close() rejects a blocked async acquire with CANCELLED', async () => {
  const t = new qk.LeaseTable();
  t.tryAcquire('r', 'holder', 60000);
  const p = t.acquireAsync('r', 'waiter', 60000);
  await until(() => t.queueLength('r') === 1);
  t.close();
  await assert.rejects(p, (e) => e instanceof qk.CancelledError && e.message.includes('"r"'));
  assert.throws(() => t.tryAcquire('r', 'x', 1000), (e) => e.code === 'NULL_ARG');
  await assert.rejects(t.acquireAsync('r', 'x', 1000), (e) => e.code === 'NULL_ARG');
});

test('sync acquire: granted at once, after an expiry, or TIMEOUT; refused while async waiters wait', async () => {
  const t = new qk.LeaseTable();
  const a = t.acquire('r', 'a', 40);
  const start = performance.now();
  const b = t.acquire('r', 'b', 1000, { timeoutMs: 5000 }); // blocks until a's lease expires
  assert.ok(performance.now() - start >= 20);
  assert.ok(b.token > a.token);
  assert.throws(() => t.acquire('r', 'c', 1000, { timeoutMs: 30 }), (e) => e instanceof qk.TimeoutError && e.message.includes('"r"'));
  const waiting = t.acquireAsync('r', 'async', 1000).catch((e) => e);
  assert.throws(() => t.acquire('other', 'c', 1000), (e) => e.code === 'INVALID_ARG' && /deadlock/.test(e.message));
  t.acquire('other', 'c', 1000, { timeoutMs: 0 }); // never blocks: allowed
  t.close();
  assert.strictEqual((await waiting).code, 'CANCELLED');
});

test('Fence accepts newer tokens and rejects a stale one', async () => {
  const t = new qk.LeaseTable();
  const fence = new qk.Fence();
  const old = t.tryAcquire('db', 'a', 20);
  fence.check('db', old.token);
  await sleep(40); // a pauses past its lease; b takes over
  const next = t.tryAcquire('db', 'b', 1000);
  fence.check('db', next.token);
  assert.strictEqual(fence.highest('db'), next.token);
  assert.throws(() => fence.check('db', old.token), (e) => e instanceof qk.StaleTokenError
    && e.code === 'STALE_TOKEN' && e.message.includes('"db"'));
  fence.check('db', next.token); // equal is fine
  assert.throws(() => fence.highest('never'), (e) => e.code === 'NOT_FOUND');
  assert.throws(() => fence.check('db', -1n), RangeError);
  fence.close();
  t.close();
});
