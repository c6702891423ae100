'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const qk = require('..');

const MS = 1000000n;
const members = [1, 2, 3];

// Three replicas in one process: a queue of copied messages, a fake clock.
class Cluster {
  constructor(dir) {
    this.dir = dir;
    this.now = 1000n * MS;
    this.nodes = {};
    this.mail = [];
    this.decided = {};
  }
  open(id) {
    // Regression: the config kept a pointer to this array; a plain JS array
    // is koffi's scratch memory, reused by the next call, and peers then
    // received ids like 0 and 2164273152 while every call returned OK.
    const ids = [1, 2, 3];
    this.nodes[id] = new qk.PaxosNode({ id, members: ids, clusterId: 0x5eedn, seed: id * 7 },
      path.join(this.dir, `replica-${id}.log`), this.now);
    ids.fill(0xdeadbeef); // scribble over it: the library must hold its own copy
    for (let i = 0; i < 50; i++) new qk.HashRing().close(); // more scratch use
    this.decided[id] = []; // a restart re-delivers from slot 0
  }
  drain(id) {
    for (const o of this.nodes[id].poll()) {
      if (o.kind === 'send') {
        assert.ok(members.includes(o.to) && o.to !== id, `replica ${id} sends to ${o.to}`);
        this.mail.push([id, o.to, o.data]);
      } else if (o.kind === 'decided' && o.count > 0n) {
        this.decided[id].push(o.data.toString());
      }
    }
  }
  leader() {
    return members.find((id) => this.nodes[id] && this.nodes[id].isLeader()) || 0;
  }
  run(done) {
    for (let step = 0; step < 30000; step++) {
      if (done()) return;
      this.now += MS;
      for (const id of members) {
        if (this.nodes[id]) {
          this.nodes[id].tick(this.now);
          this.drain(id);
        }
      }
      while (this.mail.length) {
        const [from, to, data] = this.mail.shift();
        if (this.nodes[to]) {
          this.nodes[to].step(from, data, this.now);
          this.drain(to);
        }
      }
    }
    throw new Error('the cluster did not get there in 30 s of fake time');
  }
}

test('three replicas on files agree, and a restarted one catches up', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-node-paxos-'));
  const c = new Cluster(dir);
  try {
    for (const id of members) c.open(id);
    c.run(() => c.leader() !== 0);
    const want = Array.from({ length: 10 }, (_, i) => `set x ${i}`);
    for (const cmd of want) c.nodes[c.leader()].propose(cmd, c.now);
    const all = () => members.every((id) => c.decided[id].length >= want.length);
    c.run(all);
    for (const id of members) assert.deepStrictEqual(c.decided[id].slice(0, want.length), want);

    // A second open of a live replica's file is refused.
    assert.throws(() => new qk.PaxosNode({ id: 2, members, clusterId: 0x5eedn }, path.join(dir, 'replica-2.log'), c.now),
      (e) => e.code === 'STORAGE_IN_USE');
    // Restart replica 2 from its file.
    c.nodes[2].close();
    c.nodes[2] = null;
    c.run(() => c.leader() !== 0 && c.leader() !== 2);
    want.push('after restart');
    c.nodes[c.leader()].propose('after restart', c.now);
    c.open(2);
    c.run(all);
    assert.deepStrictEqual(c.decided[2], want);
    // Garbage is refused; a bad config too.
    assert.throws(() => c.nodes[1].step(2, Buffer.from([1, 0xee, 0x13]), c.now), (e) => e.code === 'CORRUPT');
    assert.throws(() => new qk.PaxosNode({ id: 9, members }, null, 0n), (e) => e.code === 'INVALID_ARG');
    assert.throws(() => new qk.PaxosNode({ id: 1, members: Array(65).fill(0).map((_, i) => i + 1) }, null, 0n),
      (e) => e.code === 'INVALID_ARG');
  } finally {
    for (const id of members) if (c.nodes[id]) c.nodes[id].close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
