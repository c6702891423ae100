'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const qk = require('..');

const MS = 1_000_000n;
const IDS = [101, 202, 303];

/** Three replicas on files in one process, a fake clock and an in-memory network. */
class Cluster {
  constructor(dir) {
    this.dir = dir;
    this.now = 0n;
    this.nodes = new Map();
    this.decided = new Map(IDS.map((id) => [id, []]));
    this.sentTo = new Map(IDS.map((id) => [id, new Set()]));
    this.network = [];
    for (const id of IDS) this.open(id);
  }
  file(id) { return path.join(this.dir, `replica-${id}.qk`); }
  open(id) {
    this.decided.set(id, []);
    // A fresh plain JS array each time: the library must copy it.
    this.nodes.set(id, new qk.PaxosNode({ id, members: [101, 202, 303], path: this.file(id), nowNs: this.now, seed: id }));
  }
  close(id) {
    this.nodes.get(id).close();
    this.nodes.delete(id);
  }
  drain(id) {
    for (const o of this.nodes.get(id).poll()) {
      if (o.kind === 'send') {
        this.sentTo.get(id).add(o.to);
        this.network.push([id, o.to, o.data]);
      } else if (o.kind === 'decided' && o.count > 0) {
        this.decided.get(id).push(o.data.toString('utf8'));
      } else if (o.kind === 'snapshot') {
        // The test's application state: its decided commands, as JSON.
        this.decided.set(id, JSON.parse(o.data.toString('utf8')));
        this.snapshots = (this.snapshots || 0) + 1;
      } else if (o.kind === 'read') {
        (this.reads = this.reads || []).push([id, o.id, o.ready]);
      }
    }
  }
  deliver() {
    while (this.network.length > 0) {
      const [from, to, data] = this.network.shift();
      const node = this.nodes.get(to);
      if (!node) continue; // down: the message is lost
      node.step(from, data, this.now);
      this.drain(to);
    }
  }
  run(ms) {
    for (let i = 0; i < ms; i++) {
      this.now += MS;
      for (const [id, node] of this.nodes) {
        if (node.nextDeadline() <= this.now) node.tick(this.now);
        this.drain(id);
      }
      this.deliver();
    }
  }
  propose(id, cmd) {
    this.nodes.get(id).propose(cmd, this.now);
    this.drain(id);
    this.deliver();
  }
  leader() {
    return [...this.nodes.values()].find((n) => n.isLeader);
  }
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'quorumkit-node-'));
}

test('three replicas on files decide the same commands; a restarted one catches up', () => {
  const dir = tmpdir();
  const c = new Cluster(dir);
  // Allocate plenty between building the configs and using them (the old
  // binding let the library keep a pointer to a freed members array).
  const junk = [];
  for (let i = 0; i < 2000; i++) junk.push(Buffer.alloc(256, i), new Uint32Array(64).fill(0x80f00000 + i));
  const ring = new qk.HashRing();
  for (let i = 0; i < 100; i++) ring.addNode(`n${i}`);
  ring.close();

  c.propose(303, 'early'); // no leader known yet: the follower holds it
  c.run(3000);
  const leader = c.leader();
  assert.ok(leader, 'a leader was elected');
  for (const n of c.nodes.values()) assert.strictEqual(n.leader, leader.id);
  // Every replica only ever sent to its configured peers.
  for (const id of IDS) {
    const peers = [...c.sentTo.get(id)].sort((a, b) => a - b);
    assert.ok(peers.length > 0);
    for (const p of peers) assert.ok(IDS.includes(p) && p !== id, `replica ${id} sent to ${p}`);
  }
  assert.deepStrictEqual([...c.sentTo.get(leader.id)].sort((a, b) => a - b), IDS.filter((i) => i !== leader.id));

  for (let i = 0; i < 5; i++) c.propose(leader.id, `cmd-${i}`);
  const follower = IDS.find((id) => id !== leader.id);
  c.propose(follower, 'via-follower'); // forwarded to the leader
  c.run(200);
  const seq = c.decided.get(leader.id).slice();
  assert.deepStrictEqual(seq.filter((s) => s.startsWith('cmd-')), ['cmd-0', 'cmd-1', 'cmd-2', 'cmd-3', 'cmd-4']);
  assert.strictEqual(seq.filter((s) => s === 'early').length, 1);
  assert.strictEqual(seq.filter((s) => s === 'via-follower').length, 1);
  for (const id of IDS) assert.deepStrictEqual(c.decided.get(id), seq, `replica ${id}`);

  // Stop a follower; the other two go on without it.
  const down = IDS.find((id) => id !== leader.id && id !== follower);
  c.close(down);
  for (let i = 5; i < 10; i++) c.propose(leader.id, `cmd-${i}`);
  c.run(200);
  const longer = c.decided.get(leader.id);
  assert.strictEqual(longer.length, seq.length + 5);
  assert.deepStrictEqual(c.decided.get(follower), longer);

  // Restart it on its file: it re-delivers what it knew, then catches up.
  c.open(down);
  c.run(2000);
  assert.deepStrictEqual(c.decided.get(down), longer);
  assert.strictEqual(c.nodes.get(down).commitIndex, c.nodes.get(leader.id).commitIndex);
  for (const id of IDS) c.close(id);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('paxos error paths: CORRUPT messages, STORAGE_IN_USE, STORAGE_MISMATCH, bad configs', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'r1.qk');
  const node = new qk.PaxosNode({ id: 1, members: [1, 2, 3], path: file });
  assert.throws(() => node.step(2, Buffer.from([1, 0xee, 0xee, 0xee, 0xee]), 1),
    (e) => e instanceof qk.CorruptError && e.code === 'CORRUPT');
  assert.throws(() => node.step(2, Buffer.from('a message from the future'), 1),
    (e) => e.code === 'UNSUPPORTED_VERSION');
  assert.throws(() => node.step(2, Buffer.alloc(0), 1), (e) => e.code === 'CORRUPT');
  node.tick(1); // the node still works
  assert.throws(() => new qk.PaxosNode({ id: 1, members: [1, 2, 3], path: file }),
    (e) => e instanceof qk.StorageInUseError && e.code === 'STORAGE_IN_USE');
  node.close();
  assert.throws(() => new qk.PaxosNode({ id: 2, members: [1, 2, 3], path: file }),
    (e) => e.code === 'STORAGE_MISMATCH');
  new qk.PaxosNode({ id: 1, members: [1, 2, 3], path: file }).close(); // free again once closed
  assert.throws(() => new qk.PaxosNode({ id: 9, members: [1, 2, 3] }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.PaxosNode({ id: 1, members: [1, 1, 2] }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => new qk.PaxosNode({ id: 1, members: [1, 2], heartbeatIntervalMs: 0 }), (e) => e.code === 'INVALID_ARG');
  const many = Array.from({ length: qk.PaxosNode.MAX_MEMBERS + 1 }, (_, i) => i + 1);
  assert.throws(() => qk.paxosConfig({ id: 1, members: many }), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => qk.paxosConfig({ id: 1, members: [1, -2] }), TypeError);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('paxosConfig copies the ids inline and fills the defaults', () => {
  const members = Array.from({ length: 64 }, (_, i) => 1000 + i);
  const cfg = qk.paxosConfig({ id: 1000, members, seed: 7, clusterId: 42n, electionTimeoutMs: 300 });
  members.fill(0); // the config does not share the array
  assert.deepStrictEqual(cfg.members, Array.from({ length: 64 }, (_, i) => 1000 + i));
  assert.strictEqual(cfg.heartbeatIntervalNs, 50n * MS);
  assert.strictEqual(cfg.electionTimeoutNs, 300n * MS);
  assert.strictEqual(cfg.seed, 7n);
  assert.strictEqual(cfg.clusterId, 42n);
  assert.strictEqual(cfg.maxBatch, 64);
});

test('a single replica on memory leads itself and decides', () => {
  const n = new qk.PaxosNode({ id: 7, members: [7] });
  let now = 0n;
  const decided = [];
  for (let i = 0; i < 2000 && !n.isLeader; i++) {
    now += MS;
    n.tick(now);
    n.poll();
  }
  assert.ok(n.isLeader);
  assert.strictEqual(n.leader, 7);
  n.propose(Buffer.from([0, 1, 2, 255]), now);
  for (const o of n.poll()) if (o.kind === 'decided' && o.count > 0) decided.push(o.data);
  assert.deepStrictEqual(decided, [Buffer.from([0, 1, 2, 255])]);
  assert.ok(n.hasReadLease(now));
  n.close();
});

test('compaction, a restart from the snapshot, and a ReadIndex read', () => {
  const dir = tmpdir();
  const c = new Cluster(dir);
  c.run(3000);
  const leader = c.leader();
  assert.ok(leader);
  for (let i = 0; i < 6; i++) c.propose(leader.id, `w-${i}`);
  c.run(100);
  const f = IDS.find((id) => id !== leader.id);
  const node = c.nodes.get(f);
  const upto = node.commitIndex;
  assert.throws(() => node.compact(upto + 5n, 'x', c.now), (e) => e.code === 'INVALID_ARG');
  node.compact(upto, JSON.stringify(c.decided.get(f)), c.now);
  assert.strictEqual(node.logStart, upto);
  assert.throws(() => node.compact(upto, 'older', c.now), (e) => e.code === 'INVALID_ARG');
  // Restart it: the snapshot comes first, then the later slots.
  const before = c.decided.get(f).slice();
  c.close(f);
  c.open(f);
  c.drain(f);
  assert.strictEqual(c.snapshots, 1);
  assert.deepStrictEqual(c.decided.get(f), before);
  // ReadIndex: refused on a follower, ready on the leader after a round.
  assert.throws(() => c.nodes.get(f).readIndex(1, c.now), (e) => e.code === 'NOT_LEADER');
  leader.readIndex(9n, c.now);
  c.drain(leader.id);
  c.deliver();
  c.run(50);
  assert.deepStrictEqual(c.reads, [[leader.id, 9n, true]]);
  for (const id of IDS) c.close(id);
  fs.rmSync(dir, { recursive: true, force: true });
});
