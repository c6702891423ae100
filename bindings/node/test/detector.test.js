'use strict';
const test = require('node:test');
const assert = require('node:assert');
const qk = require('..');

const MS = 1_000_000n;

test('phi stays low with regular heartbeats and grows with silence', () => {
  const d = new qk.FailureDetector({ threshold: 8, minStdDevMs: 10 });
  let now = 0n;
  for (let i = 0; i < 50; i++) {
    d.heartbeat('node-a', now);
    now += 100n * MS;
  }
  const last = now - 100n * MS;
  assert.strictEqual(d.size, 1);
  const early = d.phi('node-a', last + 50n * MS);
  assert.ok(early < 1, `phi ${early}`);
  assert.ok(d.isAvailable('node-a', last + 100n * MS));
  // Suspicion rises as the silence lasts.
  let previous = early;
  for (const ms of [150n, 300n, 1000n]) {
    const phi = d.phi('node-a', last + ms * MS);
    assert.ok(phi >= previous, `phi went down: ${previous} -> ${phi}`);
    previous = phi;
  }
  assert.ok(!d.isAvailable('node-a', last + 5000n * MS));
  assert.ok(d.phi('node-a', last + 5000n * MS) > 8);
  // A heartbeat clears it.
  d.heartbeat('node-a', last + 5000n * MS);
  assert.ok(d.isAvailable('node-a', last + 5010n * MS));
  d.close();
});

test('nodes are told apart by their UTF-8 names; unknown nodes are NOT_FOUND', () => {
  const d = new qk.FailureDetector();
  d.heartbeat('kaché-e', 0);
  d.heartbeat('kaché-', 0);
  assert.strictEqual(d.size, 2);
  assert.throws(() => d.phi('ghost', 10), (e) => e instanceof qk.NotFoundError && e.message.includes('ghost'));
  d.remove('kaché-');
  assert.strictEqual(d.size, 1);
  assert.throws(() => d.remove('kaché-'), (e) => e.code === 'NOT_FOUND');
  assert.throws(() => d.isAvailable('kaché-', 10), (e) => e.code === 'NOT_FOUND');
  assert.ok(d.isAvailable('kaché-e', 10));
  assert.throws(() => d.heartbeat('x', -1), TypeError);
  d.close();
});

test('bad settings are INVALID_ARG', () => {
  assert.throws(() => new qk.FailureDetector({ threshold: 0 }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.FailureDetector({ threshold: NaN }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.FailureDetector({ maxSamples: 0 }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.FailureDetector({ minStdDevMs: 0 }), (e) => e.code === 'INVALID_ARG');
});
