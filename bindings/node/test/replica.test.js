'use strict';
// Replica and NetClient: three replicas of a counter in this process, on
// free loopback ports, in a temp dir removed afterwards. Their callbacks
// run on this thread (koffi relays them from the core threads) while the
// client's calls wait on libuv workers.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const qk = require('..');

const SECRET = 'node-replica-test-secret';
const CLUSTER = 7;
const { sleep, freePort } = require('../testing/net');

/** Polls `check()` until it returns a truthy value: at most `tries` times and `ms` milliseconds. */
async function until(what, check, { tries = 300, ms = 15000, every = 20 } = {}) {
  const end = Date.now() + ms;
  for (let i = 0; i < tries && Date.now() < end; i++) {
    const v = check();
    if (v) return v;
    await sleep(every);
  }
  assert.fail(`${what}: not within ${tries} tries / ${ms} ms`);
}

/**
 * A counter: "add N" adds N and answers the new value; "fail" throws (a
 * deterministic refusal); the query "get" answers the value. `log` keeps
 * every command applied, in order.
 */
function counter() {
  const sm = { value: 0, log: [], times: [] };
  sm.apply = (timeNs, cmd) => {
    const text = cmd.toString('utf8');
    sm.times.push(timeNs);
    if (text === 'fail') throw new Error('counter: refusing "fail"');
    if (text === 'async') return Promise.resolve('a callback must not be async');
    if (text === 'number') return 42;
    const m = /^add (-?\d+)$/.exec(text);
    if (!m) throw new Error(`counter: unknown command ${JSON.stringify(text)}`);
    sm.value += Number(m[1]);
    sm.log.push(text);
    return String(sm.value);
  };
  sm.query = (q) => {
    if (q.toString() !== 'get') throw new Error('counter: unknown query');
    return Buffer.from(String(sm.value));
  };
  return sm;
}

test('Replica + NetClient: three replicas, proposals, reads, restart, typed errors', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-node-replica-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  const addrs = ports.map((p) => `127.0.0.1:${p}`);
  const dataDir = (id) => path.join(dir, `r${id}`);
  const machines = new Map();
  const replicas = new Map();
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const r of replicas.values()) await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const start = (id, init) => {
    const sm = counter();
    const r = new qk.Replica({ id, peers, dataDir: dataDir(id), clusterId: CLUSTER, secret: SECRET, init,
      heartbeatMs: 20, apply: sm.apply, query: sm.query });
    machines.set(id, sm);
    replicas.set(id, r);
    return r;
  };

  // Refused before anything runs, with typed errors.
  const apply = () => '';
  assert.throws(() => new qk.Replica({ id: 1, peers: 'not a peer list', dataDir: dataDir(9), secret: SECRET, init: true, apply }),
    (e) => e instanceof qk.InvalidArgError && e.code === 'INVALID_ARG' && /peers/.test(e.message));
  assert.throws(() => new qk.Replica({ id: 4, peers, dataDir: dataDir(9), secret: SECRET, init: true, apply }),
    (e) => e instanceof qk.InvalidArgError && e.code === 'INVALID_ARG' && /not among the peers/.test(e.message));
  assert.throws(() => new qk.Replica({ id: 1, peers, dataDir: dataDir(9), secret: SECRET, init: false, apply }),
    (e) => e instanceof qk.StorageError && e.code === 'STORAGE' && /holds no replica/.test(e.message));
  assert.throws(() => new qk.Replica({ id: 1, peers, dataDir: dataDir(9), secret: SECRET, init: true }),
    (e) => e instanceof TypeError);
  assert.throws(() => new qk.Replica({ id: 1, peers, dataDir: dataDir(9), secret: SECRET, init: true, apply,
    snapshot: () => '' }), (e) => e instanceof TypeError);
  assert.throws(() => new qk.NetClient(['not an address'], { secret: SECRET }), (e) => e.code === 'INVALID_ARG');

  for (const id of [1, 2, 3]) start(id, true);
  const m = replicas.get(1).membership;
  assert.deepStrictEqual(m, { epoch: 0n, start: 0n, voters: [1, 2, 3], learners: [] });
  assert.strictEqual(replicas.get(2).status.id, 2);
  assert.strictEqual(replicas.get(1).readPolicy, 'lease');

  // Wait (bounded) for every replica to know the same leader.
  const leaderOf = () => {
    const seen = [...replicas.values()].map((r) => r.status.leader);
    return seen[0] !== null && seen.every((l) => l === seen[0]) ? seen[0] : null;
  };
  let leader = await until('a leader all three know', leaderOf);
  assert.ok([1, 2, 3].includes(leader));

  const client = new qk.NetClient(addrs, { secret: SECRET, clusterId: CLUSTER, timeoutMs: 5000 });
  clients.push(client);
  assert.strictEqual((await client.propose('add 5')).toString(), '5');
  assert.strictEqual((await client.propose(Buffer.from('add 3'))).toString(), '8');
  // Calls issued together take turns, in order.
  const together = await Promise.all([client.propose('add 1'), client.propose('add 1'), client.read('get')]);
  assert.deepStrictEqual(together.map(String), ['9', '10', '10']);
  assert.strictEqual((await client.read('get')).toString(), '10');
  const s = replicas.get(leader).status;
  assert.strictEqual(s.leader, leader);
  assert.strictEqual(s.ballotNode, leader);
  assert.strictEqual(typeof s.ballotRound, 'bigint');
  assert.ok(s.applied >= 4n && s.commitIndex >= s.applied, `status ${JSON.stringify(s, (_, v) => String(v))}`);
  assert.strictEqual(typeof machines.get(leader).times[0], 'bigint');
  await assert.rejects(client.read('bogus'), (e) => e.code === 'INVALID_ARG' && /unknown query/.test(e.message));

  // An apply callback that throws: the proposer gets INVALID_ARG with its
  // message, every replica refuses it alike, and everything goes on.
  await assert.rejects(client.propose('fail'),
    (e) => e instanceof qk.InvalidArgError && e.code === 'INVALID_ARG' && /refusing "fail"/.test(e.message));
  assert.strictEqual((await client.propose('add 2')).toString(), '12');
  // So does a result that is not bytes (a Promise, a number).
  await assert.rejects(client.propose('async'), (e) => e.code === 'INVALID_ARG' && /must be synchronous/.test(e.message));
  await assert.rejects(client.propose('number'), (e) => e.code === 'INVALID_ARG' && /returned number/.test(e.message));

  // Read policy: ReadIndex on every replica, the same answer.
  for (const r of replicas.values()) r.readPolicy = 'read_index';
  assert.strictEqual(replicas.get(leader).readPolicy, 'read_index');
  assert.strictEqual((await client.read('get')).toString(), '12');
  assert.throws(() => { replicas.get(1).readPolicy = 'clock'; }, (e) => e instanceof qk.InvalidArgError && e.code === 'INVALID_ARG');
  assert.strictEqual(replicas.get(1).readPolicy, 'read_index');
  for (const r of replicas.values()) r.readPolicy = 'lease';
  assert.strictEqual((await client.read('get')).toString(), '12');

  // Admin calls: transfer to a non-voter, a change on a follower.
  const follower = [1, 2, 3].find((id) => id !== leader);
  await assert.rejects(replicas.get(leader).transferLeadership(42), (e) => e.code === 'INVALID_ARG');
  await assert.rejects(replicas.get(follower).remove(leader), (e) => e instanceof qk.NotLeaderError && e.code === 'NOT_LEADER');
  await assert.rejects(replicas.get(follower).transferLeadership(leader), (e) => e.code === 'NOT_LEADER');
  await replicas.get(follower).addPeer(follower === 1 ? 2 : 1, follower === 1 ? addrs[1] : addrs[0]); // known: a no-op
  await assert.rejects(replicas.get(follower).addPeer(0, '127.0.0.1:1'), (e) => e.code === 'INVALID_ARG');

  // Every replica applied the same commands, in the same order.
  await until('the followers catch up', () => [...machines.values()].every((sm) => sm.value === 12));
  for (const sm of machines.values()) assert.deepStrictEqual(sm.log, ['add 5', 'add 3', 'add 1', 'add 1', 'add 2']);

  // A follower closed: the cluster goes on; the closed replica refuses use.
  const down = follower;
  const closed = replicas.get(down);
  await closed.close();
  await closed.close(); // idempotent
  assert.ok(closed.closed);
  assert.throws(() => closed.status, (e) => e instanceof qk.NullArgError && e.code === 'NULL_ARG');
  assert.throws(() => closed.membership, (e) => e.code === 'NULL_ARG');
  assert.throws(() => { closed.readPolicy = 'lease'; }, (e) => e.code === 'NULL_ARG');
  await assert.rejects(closed.transferLeadership(leader), (e) => e.code === 'NULL_ARG');
  assert.strictEqual((await client.propose('add 30')).toString(), '42');

  // init on a directory that holds a log is refused.
  assert.throws(() => start(down, true), (e) => e instanceof qk.StorageError && e.code === 'STORAGE' && /already holds/.test(e.message));
  replicas.set(down, closed); // start() threw before replacing it

  // Restarted from its directory: it applies the log again from the first
  // command, catches up and agrees.
  const back = start(down, false);
  await until('the restarted replica catches up', () => machines.get(down).value === 42);
  assert.deepStrictEqual(machines.get(down).log, ['add 5', 'add 3', 'add 1', 'add 1', 'add 2', 'add 30']);
  assert.deepStrictEqual(back.membership.voters, [1, 2, 3]);

  // Hand it the leadership; reads and writes go on through it.
  leader = await until('a leader all three know', leaderOf);
  t.diagnostic(`leader ${leader}, restarted ${down}`);
  if (leader !== down) {
    await replicas.get(leader).transferLeadership(down);
    leader = await until('the transfer', () => leaderOf() === down && down);
  }
  assert.strictEqual(replicas.get(down).status.leader, down);
  assert.strictEqual((await client.propose('add 8')).toString(), '50');
  assert.strictEqual((await client.read('get')).toString(), '50');
  await until('all three at 50', () => [...machines.values()].every((sm) => sm.value === 50));

  // Membership: replica 4 joins as a learner, catches up, is promoted,
  // then removed. Each change is in force once every replica shows its epoch.
  const p4 = await freePort();
  const addr4 = `127.0.0.1:${p4}`;
  const sm4 = counter();
  const r4 = new qk.Replica({ id: 4, peers: `${peers},4=${addr4}`, dataDir: dataDir(4), clusterId: CLUSTER, secret: SECRET,
    init: true, join: true, heartbeatMs: 20, apply: sm4.apply, query: sm4.query });
  replicas.set(4, r4);
  machines.set(4, sm4);
  for (const id of [1, 2, 3]) await replicas.get(id).addPeer(4, addr4);
  const lead = replicas.get(leader);
  const everywhere = (what, pred) => until(what, () => [...replicas.values()].every((r) => pred(r.membership)));
  // The leader takes a change naming 4 once it has heard from 4 lately:
  // retry that refusal (bounded); any other error fails the test.
  const retried = async (what, change) => {
    for (let i = 1; i <= 100; i++) {
      try {
        await change();
        return i;
      } catch (e) {
        if (!(e.code === 'INVALID_ARG' && /has not answered/.test(e.message))) throw e;
        await sleep(50);
      }
    }
    return assert.fail(`${what}: still refused after 100 tries`);
  };
  const tries = [await retried('addLearner(4)', () => lead.addLearner(4))];
  await everywhere('learner 4', (ms) => ms.epoch === 1n && ms.learners.includes(4));
  assert.deepStrictEqual(lead.membership.voters, [1, 2, 3]);
  await until('the learner catches up', () => sm4.value === 50);
  assert.deepStrictEqual(sm4.log, ['add 5', 'add 3', 'add 1', 'add 1', 'add 2', 'add 30', 'add 8']);
  tries.push(await retried('promote(4)', () => lead.promote(4)));
  t.diagnostic(`addLearner and promote taken at tries ${tries}`);
  await everywhere('voter 4', (ms) => ms.epoch === 2n && ms.voters.length === 4 && ms.learners.length === 0);
  assert.deepStrictEqual([...lead.membership.voters].sort(), [1, 2, 3, 4]);
  assert.strictEqual((await client.propose('add 1')).toString(), '51');
  await lead.remove(4);
  await until('4 removed', () => [1, 2, 3].every((id) => replicas.get(id).membership.epoch === 3n));
  assert.deepStrictEqual([...lead.membership.voters].sort(), [1, 2, 3]);
  await assert.rejects(lead.promote(4), (e) => e.code === 'INVALID_ARG');
  await r4.close();
  replicas.delete(4);
  assert.strictEqual((await client.propose('add -1')).toString(), '50');

  // A closed client refuses further calls (NULL_ARG), through its promise.
  client.close();
  client.close();
  await assert.rejects(client.propose('add 1'), (e) => e instanceof qk.NullArgError && e.code === 'NULL_ARG');
  await assert.rejects(client.read('get'), (e) => e.code === 'NULL_ARG');
});

test('Replica with log compaction: snapshot, then restore on restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-node-replica-c-'));
  const port = await freePort();
  const peers = { 1: `127.0.0.1:${port}` };
  let replica = null;
  let client = null;
  t.after(async () => {
    if (client) client.close();
    if (replica) await replica.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const calls = { snapshot: 0, restore: [], applied: 0 };
  const open = (init) => {
    let value = 0;
    const r = new qk.Replica({ id: 1, peers, dataDir: path.join(dir, 'r1'), secret: SECRET, init, heartbeatMs: 20,
      compactEvery: 4,
      apply: (_t, cmd) => { calls.applied++; value += Number(cmd.toString()); return String(value); },
      query: () => String(value),
      snapshot: () => { calls.snapshot++; return JSON.stringify({ value }); },
      restore: (data) => { calls.restore.push(data.toString()); value = JSON.parse(data.toString()).value; } });
    return r;
  };
  replica = open(true);
  client = new qk.NetClient(`1=127.0.0.1:${port}`, { secret: SECRET, timeoutMs: 5000 });
  let total = 0;
  for (let i = 1; i <= 10; i++) {
    total += i;
    assert.strictEqual((await client.propose(String(i))).toString(), String(total));
  }
  await until('a snapshot', () => calls.snapshot > 0);
  await replica.close();
  calls.applied = 0;
  replica = open(false);
  // The restart restores the latest snapshot, then applies only what came after it.
  await until('the restart restores', () => calls.restore.length > 0);
  assert.ok(JSON.parse(calls.restore[0]).value > 0);
  assert.strictEqual((await client.read('get')).toString(), String(total));
  t.diagnostic(`${calls.snapshot} snapshots; restored ${calls.restore[0]}, then applied ${calls.applied}`);
  assert.ok(calls.applied < 10, `applied ${calls.applied} commands again after the restore`);
});
