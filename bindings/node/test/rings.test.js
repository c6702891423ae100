'use strict';
const { describe, test } = require('node:test');
const assert = require('node:assert');
const qk = require('..');

const KINDS = [
  ['HashRing', () => new qk.HashRing()],
  ['KetamaRing', () => new qk.KetamaRing()],
  ['Maglev', () => new qk.Maglev()],
  ['Rendezvous', () => new qk.Rendezvous()],
];

// 10k keys: ASCII, non-ASCII (byte length != string length), Buffers, the empty key.
const KEYS = Array.from({ length: 10000 }, (_, i) => {
  if (i === 0) return '';
  if (i % 7 === 0) return `clé-${i}-ü`;
  if (i % 11 === 0) return Buffer.from([i & 0xff, 0, (i >> 8) & 0xff]);
  return `user:${i}`;
});

function withNodes(make, names) {
  const r = make();
  for (const n of names) r.addNode(n);
  return r;
}

for (const [kind, make] of KINDS) {
  describe(kind, () => {
    test('a batch lookup equals single lookups for 10k keys', () => {
      const r = withNodes(make, ['alpha', 'beta', 'gamma', 'delta', 'epsilon']);
      const batch = r.getNodeBatch(KEYS);
      assert.strictEqual(batch.length, KEYS.length);
      const single = KEYS.map((k) => r.getNode(k));
      assert.deepStrictEqual(batch, single);
      const idx = r.getNodeIndexBatch(KEYS);
      assert.deepStrictEqual(Array.from(idx), KEYS.map((k) => r.getNodeIndex(k)));
      // A string key and its UTF-8 bytes are the same key.
      assert.strictEqual(r.getNode('clé'), r.getNode(Buffer.from('clé', 'utf8')));
      assert.deepStrictEqual(r.getNodeBatch([]), []);
      r.close();
    });

    test('keys spread over the nodes as their shares say', () => {
      const names = ['n0', 'n1', 'n2', 'n3'];
      const r = withNodes(make, names);
      const counts = new Map(names.map((n) => [n, 0]));
      for (const n of r.getNodeBatch(KEYS)) counts.set(n, counts.get(n) + 1);
      const shares = r.shares();
      assert.strictEqual(shares.length, 4);
      assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      names.forEach((n, i) => {
        const seen = counts.get(n) / KEYS.length;
        assert.ok(seen > 0.15 && seen < 0.35, `${n} got ${seen}`);
        assert.ok(Math.abs(seen - shares[i]) < 0.05, `${n}: ${seen} vs share ${shares[i]}`);
      });
      // A heavier node gets more.
      r.setWeight('n0', 3);
      assert.strictEqual(r.weight('n0'), 3);
      const heavy = r.getNodeBatch(KEYS).filter((n) => n === 'n0').length / KEYS.length;
      assert.ok(heavy > 0.4, `n0 with weight 3 got ${heavy}`);
      r.close();
    });

    test('getNodes gives distinct nodes, the first the owner', () => {
      const r = withNodes(make, ['a', 'b', 'c']);
      for (const k of ['x', 'y', 'z', '']) {
        const three = r.getNodes(k, 3);
        assert.strictEqual(new Set(three).size, 3);
        assert.strictEqual(three[0], r.getNode(k));
      }
      assert.deepStrictEqual(r.getNodes('x', 0), []);
      assert.throws(() => r.getNodes('x', 4), (e) => e instanceof qk.InvalidArgError);
      r.close();
    });

    test('removing an unknown node throws NOT_FOUND naming it', () => {
      const r = withNodes(make, ['a']);
      assert.throws(() => r.removeNode('ghost-node'), (e) => e instanceof qk.NotFoundError
        && e.code === 'NOT_FOUND' && e.status === 5 && e.message.includes('ghost-node'));
      assert.throws(() => r.indexOf('ghost-node'), (e) => e.code === 'NOT_FOUND');
      r.removeNode('a');
      assert.strictEqual(r.size, 0);
      assert.throws(() => r.getNode('k'), (e) => e instanceof qk.EmptyError);
      r.close();
    });

    test('names cross as UTF-8 with their byte length (regression: "kaché-e" became "kaché-")', () => {
      const r = make();
      r.addNode('kaché-e');
      r.addNode('kaché-'); // the old bug passed 7 (UTF-16 length) of 8 bytes: a duplicate "kaché-"
      assert.deepStrictEqual(r.nodeNames, ['kaché-e', 'kaché-']);
      assert.strictEqual(r.indexOf('kaché-e'), 0);
      assert.strictEqual(r.indexOf('kaché-'), 1);
      assert.ok(['kaché-e', 'kaché-'].includes(r.getNode('some key')));
      r.addNode('日本-ノード');
      assert.deepStrictEqual(r.nodeNames, ['kaché-e', 'kaché-', '日本-ノード']);
      r.removeNode('kaché-');
      assert.deepStrictEqual(r.nodeNames, ['kaché-e', '日本-ノード']);
      r.close();
    });

    test('bad names: empty is INVALID_ARG (not NULL_ARG), duplicates ALREADY_EXISTS, bad UTF-8 INVALID_UTF8', () => {
      const r = make();
      assert.throws(() => r.addNode(''), (e) => e.code === 'INVALID_ARG' && e instanceof qk.InvalidArgError);
      assert.throws(() => r.addNode('a\0b'), (e) => e.code === 'INVALID_ARG');
      assert.throws(() => r.addNode(Buffer.from([0x66, 0xff])), (e) => e.code === 'INVALID_UTF8');
      assert.throws(() => r.addNode('w', 0), (e) => e.code === 'INVALID_ARG');
      assert.throws(() => r.addNode(42), TypeError);
      r.addNode('a');
      assert.throws(() => r.addNode('a'), (e) => e.code === 'ALREADY_EXISTS' && e.message.includes('"a"'));
      assert.deepStrictEqual(r.nodeNames, ['a']);
      r.close();
    });

    test('a snapshot restores the same placements; damaged bytes are CORRUPT', () => {
      const r = withNodes(make, ['a', 'b', 'c', 'kaché-e']);
      const snap = r.snapshot();
      const back = r.constructor.restore(snap);
      assert.ok(back instanceof r.constructor);
      assert.deepStrictEqual(back.nodeNames, r.nodeNames);
      assert.deepStrictEqual(back.getNodeBatch(KEYS.slice(0, 2000)), r.getNodeBatch(KEYS.slice(0, 2000)));
      const bad = Buffer.from(snap);
      bad[bad.length - 1] ^= 0xff;
      assert.throws(() => r.constructor.restore(bad), (e) => e.code === 'CORRUPT');
      assert.throws(() => r.constructor.restore(Buffer.from('not a snapshot')), (e) => e.code === 'CORRUPT');
      back.close();
      r.close();
    });
  });
}

test('a snapshot of one kind does not restore as another', () => {
  const r = withNodes(() => new qk.HashRing(), ['a']);
  assert.throws(() => qk.Maglev.restore(r.snapshot()), (e) => e.code === 'INVALID_ARG');
  r.close();
});

test('HashRing: vnodes per unit of weight', () => {
  const r = new qk.HashRing({ vnodes: 10 });
  r.addNode('a', 2);
  assert.strictEqual(r.weight('a'), 2);
  r.close();
});

test('KetamaRing: servers with weights, compat modes', () => {
  const lm = new qk.KetamaRing({ servers: ['10.0.0.1:11211', { name: '10.0.0.2:11211', weight: 2 }] });
  assert.deepStrictEqual(lm.nodeNames, ['10.0.0.1:11211', '10.0.0.2:11211']);
  assert.strictEqual(lm.weight('10.0.0.2:11211'), 2);
  const uh = new qk.KetamaRing({ compat: 'uhashring', servers: ['10.0.0.1:11211', '10.0.0.2:11211'] });
  // Same servers, different algorithms: some keys land elsewhere.
  const a = lm.getNodeBatch(KEYS.slice(0, 1000));
  const b = uh.getNodeBatch(KEYS.slice(0, 1000));
  assert.ok(a.some((n, i) => n !== b[i]));
  assert.throws(() => new qk.KetamaRing({ compat: 'nope' }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.KetamaRing({ servers: ['a', 'a'] }), (e) => e.code === 'ALREADY_EXISTS');
  lm.close();
  uh.close();
});

test('Maglev: prime table sizes, clone and diff', () => {
  const m = new qk.Maglev();
  assert.strictEqual(m.tableSize, 65537);
  assert.throws(() => new qk.Maglev({ tableSize: 100 }), (e) => e.code === 'INVALID_ARG');
  for (const n of ['a', 'b', 'c', 'd']) m.addNode(n);
  const before = m.clone();
  assert.strictEqual(m.diff(before), 0);
  m.removeNode('d');
  const moved = m.diff(before);
  assert.ok(moved > 0.2 && moved < 0.3, `moved ${moved}`); // about d's quarter
  assert.deepStrictEqual(before.nodeNames, ['a', 'b', 'c', 'd']);
  before.close();
  m.close();
});

test('Rendezvous: fractional weights', () => {
  const r = new qk.Rendezvous();
  r.addNode('a', 0.5);
  r.addNode('b', 1.5);
  assert.strictEqual(r.weight('a'), 0.5);
  assert.deepStrictEqual(r.shares(), [0.25, 0.75]);
  assert.throws(() => r.addNode('c', -1), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => r.addNode('c', NaN), (e) => e.code === 'INVALID_ARG');
  r.close();
});
