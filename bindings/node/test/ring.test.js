'use strict';
const test = require('node:test');
const assert = require('node:assert');
const qk = require('..');

test('single and batch lookups agree over 10,000 keys and spread the load', () => {
  const r = new qk.HashRing();
  for (const n of ['a', 'b', 'c', 'd']) r.addNode(n);
  const keys = Array.from({ length: 10000 }, (_, i) => `key-${i}`);
  const batch = r.getNodeBatch(keys);
  const counts = {};
  keys.forEach((k, i) => {
    const single = r.getNode(k);
    assert.strictEqual(batch[i], single, k);
    counts[single] = (counts[single] || 0) + 1;
  });
  for (const n of ['a', 'b', 'c', 'd']) assert.ok(counts[n] > 1500 && counts[n] < 3500, JSON.stringify(counts));
  const prefs = r.getNodes('user:42', 3);
  assert.strictEqual(prefs[0], r.getNode('user:42'));
  assert.strictEqual(new Set(prefs).size, 3);
  assert.deepStrictEqual(r.getNodeBatch([]), []);
  r.close();
});

// Regression: a JS string's .length counts UTF-16 units; "kaché-e".length is
// 7 but its UTF-8 is 8 bytes, and passing 7 silently added "kaché-".
test('names cross as UTF-8 byte lengths', () => {
  const r = new qk.HashRing();
  r.addNode('kaché-e');
  r.addNode('kaché-');
  r.addNode('节点-😀');
  assert.deepStrictEqual(r.nodes(), ['kaché-e', 'kaché-', '节点-😀']);
  r.removeNode('kaché-');
  assert.deepStrictEqual(r.nodes(), ['kaché-e', '节点-😀']);
  r.close();
});

test('errors carry the status, its name and the call\'s own message', () => {
  const r = new qk.HashRing();
  assert.throws(() => r.getNode('k'), (e) => e instanceof qk.QuorumkitError && e.code === 'EMPTY');
  assert.throws(() => r.removeNode('ghost'),
    (e) => e.status === 5 && e.code === 'NOT_FOUND' && e.message.includes('"ghost"'));
  assert.throws(() => r.addNode('', 1), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => r.addNode('a', 0), (e) => e.code === 'INVALID_ARG');
  r.addNode('a');
  assert.throws(() => r.addNode('a'), (e) => e.code === 'ALREADY_EXISTS');
  assert.throws(() => r.addNode(Buffer.from([0x61, 0xff])), (e) => e.code === 'INVALID_UTF8');
  assert.throws(() => r.addNode(42), TypeError);
  r.close();
  r.close();
  assert.throws(() => r.getNode('k'), /closed/);
});
