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
  // The checkpoint is written in the background; ticks put it in place.
  for (let i = 0; node.compacting; i++) {
    assert.ok(i < 2000, 'the checkpoint never landed');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    node.tick(c.now);
  }
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

/** Replicas on memory that may join later, a fake clock and an in-memory network. */
class Group {
  constructor() {
    this.now = 0n;
    this.nodes = new Map();
    this.decided = new Map();
    this.memberships = new Map();
    this.network = [];
  }
  add(id, node) {
    this.nodes.set(id, node);
    this.decided.set(id, []);
    this.memberships.set(id, []);
    return node;
  }
  options(id, members) {
    return { id, members, nowNs: this.now, seed: id, heartbeatIntervalMs: 10, electionTimeoutMs: 100,
      leaseDurationMs: 0, maxClockDriftMs: 0 };
  }
  drain(id) {
    for (const o of this.nodes.get(id).poll()) {
      if (o.kind === 'send') this.network.push([id, o.to, o.data]);
      else if (o.kind === 'decided' && o.count > 0) this.decided.get(id).push(o.data.toString('utf8'));
      else if (o.kind === 'membership') this.memberships.get(id).push(o);
    }
  }
  step() {
    this.now += MS;
    for (const [id, node] of this.nodes) {
      if (node.nextDeadline() <= this.now) node.tick(this.now);
      this.drain(id);
    }
    while (this.network.length > 0) {
      const [from, to, data] = this.network.shift();
      const node = this.nodes.get(to);
      if (!node) continue;
      node.step(from, data, this.now);
      this.drain(to);
    }
  }
  runUntil(done, what, limit = 5000) {
    for (let i = 0; i < limit && !done(); i++) this.step();
    assert.ok(done(), `${what} within ${limit} ms of fake time`);
  }
  leader() {
    return [...this.nodes.values()].find((n) => n.isLeader);
  }
  lastMembership(id) {
    const ms = this.memberships.get(id);
    return ms[ms.length - 1];
  }
  close() {
    for (const n of this.nodes.values()) n.close();
  }
}

test('membership: a lone voter adds a joiner as a learner, it catches up and is promoted', () => {
  const g = new Group();
  const one = g.add(1, new qk.PaxosNode(g.options(1, [1])));
  g.runUntil(() => one.isLeader, 'the lone voter leads');
  for (const cmd of ['a', 'b', 'c']) {
    one.propose(cmd, g.now);
    g.drain(1);
  }
  assert.deepStrictEqual(g.decided.get(1), ['a', 'b', 'c']);
  assert.deepStrictEqual(one.membership, { epoch: 0n, start: 0n, voters: [1], learners: [] });

  // The joiner's config names the cluster's voters, not itself: refused without join.
  assert.throws(() => new qk.PaxosNode(g.options(2, [1])), (e) => e instanceof qk.InvalidArgError);
  const two = g.add(2, qk.PaxosNode.join(g.options(2, [1])));
  assert.strictEqual(two.id, 2);

  // Refusals change nothing.
  assert.throws(() => one.promote(2, g.now), (e) => e instanceof qk.InvalidArgError && /not a learner/.test(e.message));
  assert.throws(() => one.remove(1, g.now), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => one.remove(9, g.now), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => one.addLearner(1, g.now), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => two.addLearner(3, g.now), (e) => e instanceof qk.NotLeaderError && e.code === 'NOT_LEADER');
  assert.throws(() => one.propose(Buffer.from('\xffqk-cfg\x01x', 'latin1'), g.now), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => one.addLearner(-1, g.now), TypeError);
  assert.deepStrictEqual(one.membership, { epoch: 0n, start: 0n, voters: [1], learners: [] });

  // Add the learner: the lone voter decides the change at once.
  one.addLearner(2, g.now);
  g.drain(1);
  const added = g.lastMembership(1);
  assert.ok(added, 'the leader polled a membership output');
  assert.strictEqual(added.epoch, 1n);
  assert.deepStrictEqual(added.voters, [1]);
  assert.deepStrictEqual(added.learners, [2]);
  assert.ok(added.start >= 4n, `epoch 1 starts after the commands and the change (${added.start})`);
  assert.deepStrictEqual(one.membership, { epoch: 1n, start: added.start, voters: [1], learners: [2] });
  // A lone voter's epoch ended with the change: it leads again only once it stands in the new one.
  assert.throws(() => one.addLearner(3, g.now), (e) => e.code === 'NOT_LEADER');

  // The learner catches up: the same commands, the same membership.
  g.runUntil(() => g.lastMembership(2)?.epoch === 1n && two.commitIndex === one.commitIndex, 'the learner catches up');
  assert.deepStrictEqual(g.decided.get(2), ['a', 'b', 'c']);
  assert.deepStrictEqual(g.lastMembership(2), added);
  assert.deepStrictEqual(two.membership, one.membership);
  assert.strictEqual(two.isLeader, false);

  // Let the leader hear the learner, then promote it: two voters.
  g.runUntil(() => one.isLeader, 'the voter leads in epoch 1');
  for (let i = 0; i < 30; i++) g.step();
  assert.throws(() => two.promote(2, g.now), (e) => e.code === 'NOT_LEADER');
  one.promote(2, g.now);
  g.drain(1);
  g.runUntil(() => g.lastMembership(1).epoch === 2n && g.lastMembership(2)?.epoch === 2n, 'both reach epoch 2');
  for (const id of [1, 2]) {
    const m = g.lastMembership(id);
    assert.deepStrictEqual([m.voters, m.learners], [[1, 2], []], `replica ${id}`);
    assert.deepStrictEqual(g.nodes.get(id).membership, { epoch: 2n, start: m.start, voters: [1, 2], learners: [] });
  }
  assert.deepStrictEqual(g.memberships.get(1).map((m) => m.epoch), [1n, 2n]);

  // Both vote now: a command proposed at the new voter is decided by both.
  g.runUntil(() => g.leader() !== undefined, 'a leader in epoch 2');
  two.propose('two', g.now);
  g.drain(2);
  g.runUntil(() => g.decided.get(1).length === 4 && g.decided.get(2).length === 4, 'both decide it');
  assert.deepStrictEqual(g.decided.get(1), ['a', 'b', 'c', 'two']);
  assert.deepStrictEqual(g.decided.get(2), ['a', 'b', 'c', 'two']);

  // Two voters: removing either is refused at the leader; a follower is not the leader.
  const leader = g.leader();
  const follower = leader === one ? two : one;
  assert.throws(() => leader.remove(follower.id, g.now), (e) => e instanceof qk.InvalidArgError);
  assert.throws(() => leader.remove(leader.id, g.now), (e) => e.code === 'INVALID_ARG');
  assert.throws(() => follower.remove(leader.id, g.now), (e) => e instanceof qk.NotLeaderError);
  assert.strictEqual(one.membership.epoch, 2n);
  g.close();
});

test('membership: replace gives a voter\'s vote to a learner', () => {
  const g = new Group();
  const one = g.add(1, new qk.PaxosNode(g.options(1, [1, 2])));
  const two = g.add(2, new qk.PaxosNode(g.options(2, [1, 2])));
  g.runUntil(() => g.leader() !== undefined, 'a leader');
  let leader = g.leader();
  leader.propose('x', g.now);
  g.drain(leader.id);
  g.runUntil(() => g.decided.get(1).length === 1 && g.decided.get(2).length === 1, 'x decided');

  const three = g.add(3, qk.PaxosNode.join(g.options(3, [1, 2])));
  // A replica that is not a learner yet cannot take a vote.
  const follower = leader === one ? two : one;
  assert.throws(() => leader.replace(follower.id, 3, g.now), (e) => e.code === 'INVALID_ARG');
  leader.addLearner(3, g.now);
  g.drain(leader.id);
  g.runUntil(() => g.lastMembership(3)?.epoch === 1n && three.commitIndex === leader.commitIndex,
    'the learner catches up');
  assert.deepStrictEqual(three.membership.learners, [3]);
  for (let i = 0; i < 30; i++) g.step();
  g.runUntil(() => g.leader() !== undefined, 'a leader in epoch 1');
  leader = g.leader();
  const old = leader === one ? two : one;
  assert.throws(() => leader.replace(3, old.id, g.now), (e) => e.code === 'INVALID_ARG'); // 3 is no voter
  leader.replace(old.id, 3, g.now);
  g.drain(leader.id);
  g.runUntil(() => g.lastMembership(leader.id).epoch === 2n && g.lastMembership(3).epoch === 2n, 'epoch 2');
  const m = g.lastMembership(3);
  assert.deepStrictEqual(m.voters.slice().sort(), [leader.id, 3].sort());
  assert.deepStrictEqual(m.learners, []);
  assert.deepStrictEqual(leader.membership.voters, m.voters);

  // The replaced replica is out: the two voters decide without it.
  g.nodes.delete(old.id);
  old.close();
  g.runUntil(() => g.leader() !== undefined, 'a leader in epoch 2');
  g.leader().propose('y', g.now);
  g.drain(g.leader().id);
  g.runUntil(() => g.decided.get(3).length === 2 && g.decided.get(leader.id).length === 2, 'y decided');
  assert.deepStrictEqual(g.decided.get(3), ['x', 'y']);
  g.close();
});

test('membership: a joiner on a file restarts with join and holds its membership', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'joiner.qk');
  const g = new Group();
  const one = g.add(1, new qk.PaxosNode(g.options(1, [1])));
  g.runUntil(() => one.isLeader, 'the lone voter leads');
  one.propose('a', g.now);
  g.drain(1);
  g.add(2, new qk.PaxosNode({ ...g.options(2, [1]), path: file, join: true }));
  one.addLearner(2, g.now);
  g.drain(1);
  g.runUntil(() => g.lastMembership(2)?.epoch === 1n && g.nodes.get(2).commitIndex === one.commitIndex,
    'the learner catches up');
  g.nodes.get(2).close();
  // Not a voter of its config: only join may reopen it.
  assert.throws(() => new qk.PaxosNode({ ...g.options(2, [1]), path: file }), (e) => e.code === 'INVALID_ARG');
  const again = g.add(2, qk.PaxosNode.join({ ...g.options(2, [1]), path: file }));
  g.drain(2);
  assert.deepStrictEqual(g.decided.get(2), ['a']);
  const m = g.lastMembership(2);
  assert.deepStrictEqual([m.epoch, m.voters, m.learners], [1n, [1], [2]]);
  assert.deepStrictEqual(again.membership, one.membership);
  g.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an output kind this binding does not know is handed on as unknown, not thrown', () => {
  const { toOutput } = require('../lib/paxos');
  const out = toOutput({ kind: 99, to: 7, slot: 5n, index: 2n, count: 1n, data: null, data_len: 0 });
  assert.deepStrictEqual(out, { kind: 'unknown', code: 99, to: 7, slot: 5n, index: 2n, count: 1n, data: Buffer.alloc(0) });
  // The known kinds still convert.
  assert.deepStrictEqual(toOutput({ kind: 2, to: 0, slot: 0n, index: 0n, count: 3n, data: null, data_len: 0 }),
    { kind: 'persisted', count: 3 });
});
