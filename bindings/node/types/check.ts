// Compiled by `npm run typecheck` (tsc --noEmit) only: exercises index.d.ts.
import * as qk from '..';

const ring: qk.HashRing = new qk.HashRing({ vnodes: 160 });
ring.addNode('kaché-e', 2);
const owner: string = ring.getNode(Buffer.from('key'));
const owners: string[] = ring.getNodeBatch(['a', new Uint8Array([1, 2])]);
const idx: Uint32Array = ring.getNodeIndexBatch(['a']);
const restored: qk.HashRing = qk.HashRing.restore(ring.snapshot());
const ketama = new qk.KetamaRing({ compat: 'uhashring', servers: ['10.0.0.1:11211', { name: 'b', weight: 2 }] });
const moved: number = new qk.Maglev({ tableSize: 251 }).diff(new qk.Maglev());
new qk.Rendezvous().addNode('a', 0.5);

async function leases(): Promise<bigint> {
  const table = new qk.LeaseTable({ lockDelayMs: 0 });
  const lease = await table.acquireAsync('db', 'worker', 1000, { timeoutMs: 50, signal: AbortSignal.timeout(100) });
  const resource: string = lease.resource;
  const renewed = table.renew(lease, 2000);
  table.release(renewed);
  new qk.Fence().check(resource, lease.token);
  try {
    table.tryAcquire('db', 'x', 10);
  } catch (e) {
    if (e instanceof qk.BusyError && e.code === 'BUSY') return 0n;
    if (e instanceof qk.QuorumkitError) return BigInt(e.status);
  }
  return lease.expiresAtNs;
}

const fd = new qk.FailureDetector({ threshold: 8 });
fd.heartbeat('n', process.hrtime.bigint());
const phi: number = fd.phi('n', 0n);

const node = new qk.PaxosNode({ id: 1, members: [1, 2, 3], path: '/tmp/x.qk', nowNs: 0n, seed: 1 });
for (const o of node.poll()) {
  if (o.kind === 'send') node.step(o.to, o.data, 1n);
  else if (o.kind === 'decided') console.log(o.slot + 1n, o.data.length);
  else if (o.kind === 'leaderChanged') console.log(o.leader ?? 'none');
  else if (o.kind === 'membership') console.log(o.epoch + 1n, o.start, o.voters.concat(o.learners));
}
const joiner: qk.PaxosNode = qk.PaxosNode.join({ id: 4, members: [1, 2, 3], nowNs: 0n });
node.addLearner(4, 0n);
node.promote(4, 0n);
node.replace(3, 4, 0n);
node.remove(4, 0n);
const m: qk.PaxosMembership = joiner.membership;
const voters: number[] = m.voters;
const cfg: qk.PaxosConfig = qk.paxosConfig({ id: 1, members: [1] });
const n: number = qk.codes.NOT_FOUND;

export { owner, owners, idx, restored, ketama, moved, leases, phi, cfg, n, voters };

async function replicas(): Promise<number> {
  let n = 0;
  const r = new qk.Replica({
    id: 1, peers: { 1: '127.0.0.1:7001' }, dataDir: '/tmp/r1', secret: 'sixteen-byte-secret', init: true, heartbeatMs: 20,
    apply: (timeNs: bigint, cmd: Buffer) => { n += cmd.length + Number(timeNs % 2n); return String(n); },
    query: () => Buffer.from(String(n)),
    snapshot: () => String(n),
    restore: (data: Buffer) => { n = Number(data.toString()); },
    compactEvery: 100,
  });
  r.readPolicy = 'read_index';
  const policy: qk.ReadPolicy = r.readPolicy;
  const s: qk.ReplicaStatus = r.status;
  const leader: number | null = s.leader;
  await r.addPeer(4, '127.0.0.1:7004');
  await r.addLearner(4);
  await r.promote(4);
  await r.replace(3, 4);
  await r.remove(4);
  await r.transferLeadership(2);
  const voters: number[] = r.membership.voters;
  const c = new qk.NetClient(['127.0.0.1:7001'], { secret: 'sixteen-byte-secret', clusterId: 1n, timeoutMs: 1000 });
  const out: Buffer = await c.propose('add 1');
  const got: Buffer = await c.read(new Uint8Array([1]));
  c.close();
  await r.close();
  return out.length + got.length + voters.length + (leader ?? 0) + policy.length + Number(s.applied);
}

export { replicas };
