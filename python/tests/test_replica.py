"""qk.Replica with a Python state machine, and qk.ReplicaClient: three
replicas in this process on free loopback ports, data in a temp dir."""

import shutil
import tempfile
import threading
import time

import pytest

import quorumkit as qk
from conftest import free_port

SECRET = "python-replica-test-secret"


class Counter:
    """A replicated counter: b"add N" adds, b"get" reads."""

    def __init__(self):
        self.total = 0
        self.applied = 0
        self.times = []
        self.thread = None

    def apply(self, command, time_ns):
        assert isinstance(command, bytes)
        self.thread = threading.get_ident()
        self.times.append(time_ns)
        self.applied += 1
        op, _, arg = command.partition(b" ")
        if op != b"add":
            raise ValueError(f"unknown command {op!r}")
        self.total += int(arg)
        return str(self.total)

    def query(self, q):
        if q != b"get":
            raise KeyError(q)
        return str(self.total).encode()


class Cluster:
    def __init__(self, n=3, heartbeat=0.02):
        self.dir = tempfile.mkdtemp(prefix="qk-replica-py-")
        self.heartbeat = heartbeat
        self.peers = {i: f"127.0.0.1:{free_port()}" for i in range(1, n + 1)}
        self.states = {}
        self.replicas = {}
        for i in self.peers:
            self.start(i, init=True)

    def start(self, i, init=False):
        self.states[i] = Counter()
        self.replicas[i] = qk.Replica(
            i, self.peers, f"{self.dir}/r{i}", secret=SECRET, apply=self.states[i].apply,
            query=self.states[i].query, cluster_id=3, init=init, heartbeat=self.heartbeat)

    def client(self, timeout=10.0):
        return qk.ReplicaClient(list(self.peers.values()), secret=SECRET, cluster_id=3, timeout=timeout)

    def stop(self):
        for r in self.replicas.values():
            r.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.stop()


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_commands_apply_in_order_on_every_replica(cluster):
    c = cluster.client()
    total = 0
    for i in range(1, 31):
        total += i
        assert c.propose(f"add {i}".encode()) == str(total).encode()
    assert c.read(b"get") == str(total).encode()
    assert wait_for(lambda: all(s.total == total for s in cluster.states.values()))
    for s in cluster.states.values():
        assert s.applied == 30
        assert s.times == sorted(s.times)
        assert s.thread != threading.get_ident()  # the replica's own thread
    # A replica publishes its status at the end of the turn that applied,
    # so the count can trail the state machine by a moment.
    assert wait_for(
        lambda: all(r.status()["applied"] == 30 for r in cluster.replicas.values())
    )
    statuses = [r.status() for r in cluster.replicas.values()]
    assert all(s["applied"] == 30 for s in statuses)
    assert sum(s["read_lease"] for s in statuses) == 1
    leaders = {s["leader"] for s in statuses}
    assert len(leaders) == 1 and leaders.pop() in cluster.peers


def test_refusals_and_bad_results_reach_the_proposer(cluster):
    c = cluster.client()
    with pytest.raises(qk.InvalidArgumentError, match="unknown command"):
        c.propose(b"multiply 2")
    with pytest.raises(qk.InvalidArgumentError, match="KeyError"):
        c.read(b"size")
    # A refused command changes nothing, and later ones still apply.
    assert c.propose(b"add 5") == b"5"
    with pytest.raises(TypeError):
        c.propose(12)


def test_read_policy_switches_while_running(cluster):
    c = cluster.client()
    assert all(r.read_policy == "lease" for r in cluster.replicas.values())
    for r in cluster.replicas.values():
        r.read_policy = "read_index"
    assert all(r.read_policy == "read_index" for r in cluster.replicas.values())
    total = 0
    for i in range(1, 11):
        total += i
        assert c.propose(f"add {i}".encode()) == str(total).encode()
        # Each ReadIndex read sees every write before it.
        assert c.read(b"get") == str(total).encode()
    r = cluster.replicas[1]
    with pytest.raises(qk.InvalidArgumentError, match="read_index"):
        r.read_policy = "quorum"
    with pytest.raises(TypeError):
        r.read_policy = 1
    assert r.read_policy == "read_index"  # a refused value changes nothing
    r.read_policy = "lease"
    assert r.read_policy == "lease"
    r.stop()
    with pytest.raises(qk.InvalidArgumentError, match="stopped"):
        r.read_policy = "lease"
    with pytest.raises(qk.InvalidArgumentError, match="stopped"):
        r.read_policy


def test_read_policy_changes_what_a_lone_leader_answers():
    # 200 ms heartbeats: 2 s leases, room for the steps below.
    cluster = Cluster(heartbeat=0.2)
    try:
        c = cluster.client(timeout=20.0)
        assert c.propose(b"add 7") == b"7"
        assert wait_for(lambda: any(r.status()["read_lease"] for r in cluster.replicas.values()), 10.0)
        assert c.propose(b"add 1") == b"8"  # the followers just answered: a fresh lease
        leader = next(i for i, r in cluster.replicas.items() if r.status()["read_lease"])
        for i, r in cluster.replicas.items():
            if i != leader:
                r.stop()
        lr = cluster.replicas[leader]
        alone = qk.ReplicaClient([cluster.peers[leader]], secret=SECRET, cluster_id=3, timeout=0.4)
        if not lr.status()["read_lease"]:
            pytest.skip("the lease ran out before the check (a slow machine)")
        # Lease: the leader answers by itself. ReadIndex: it needs a majority.
        assert alone.read(b"get") == b"8"
        lr.read_policy = "read_index"
        with pytest.raises(qk.BackendUnavailableError, match="no leader answered"):
            alone.read(b"get")
    finally:
        cluster.stop()


def test_membership_change_and_leadership_transfer_while_serving(cluster):
    c = cluster.client()
    assert c.propose(b"add 1") == b"1"
    # Replica 4 joins: it knows the voters, and they learn its address.
    addr4 = f"127.0.0.1:{free_port()}"
    peers4 = dict(cluster.peers)
    peers4[4] = addr4
    s4 = Counter()
    r4 = qk.Replica(4, peers4, f"{cluster.dir}/r4", secret=SECRET, apply=s4.apply, query=s4.query,
                    cluster_id=3, init=True, join=True, heartbeat=0.02)
    cluster.replicas[4], cluster.states[4] = r4, s4
    assert r4.membership() == (0, 0, [1, 2, 3], [])
    assert wait_for(lambda: any(r.status()["read_lease"] for r in cluster.replicas.values()))
    leader = next(i for i, r in cluster.replicas.items() if r.status()["leader"] == i)
    lr = cluster.replicas[leader]
    with pytest.raises(qk.InvalidArgumentError, match="add_peer"):
        lr.add_learner(4)  # no address for it yet
    for i in (1, 2, 3):
        cluster.replicas[i].add_peer(4, addr4)
        cluster.replicas[i].add_peer(4, addr4)  # again: nothing changes
    with pytest.raises(qk.InvalidArgumentError, match="already known"):
        lr.add_peer(4, cluster.peers[1])
    with pytest.raises(qk.InvalidArgumentError):
        lr.add_peer(5, "nowhere")
    follower = next(i for i in (1, 2, 3) if i != leader)
    with pytest.raises(qk.NotLeaderError):
        cluster.replicas[follower].add_learner(4)
    lr.add_learner(4)
    assert wait_for(lambda: r4.membership()[3] == [4])
    assert c.propose(b"add 2") == b"3"
    assert wait_for(lambda: s4.total == 3)  # the learner applies every command

    def promoted():
        try:
            lr.promote(4)
            return True
        except qk.InvalidArgumentError:
            return False  # not heard from lately: retry

    assert wait_for(promoted)
    assert wait_for(lambda: all(r.membership()[2] == [1, 2, 3, 4] for r in cluster.replicas.values()))
    epoch = r4.membership()[0]
    assert epoch == 2
    # Hand the leadership to the new voter.
    if leader != 4:
        with pytest.raises(qk.NotLeaderError):
            r4.transfer_leadership(leader)
        lr.transfer_leadership(4)
        assert wait_for(lambda: r4.status()["leader"] == 4)
    with pytest.raises(qk.InvalidArgumentError):
        r4.transfer_leadership(4)
    # The new leader removes replica 1; the cluster goes on without it.
    assert wait_for(lambda: _try(lambda: r4.remove(1)))
    assert wait_for(lambda: r4.membership()[2] == [2, 3, 4])
    assert c.propose(b"add 3") == b"6"
    assert c.read(b"get") == b"6"
    r4.stop()
    with pytest.raises(qk.InvalidArgumentError, match="stopped"):
        r4.add_learner(5)
    with pytest.raises(qk.InvalidArgumentError, match="stopped"):
        r4.membership()


def _try(f):
    try:
        f()
        return True
    except (qk.InvalidArgumentError, qk.NotLeaderError):
        return False


def test_concurrent_clients_each_apply_once(cluster):
    adds = 40
    results = []
    lock = threading.Lock()

    def worker():
        c = cluster.client()
        for _ in range(adds):
            r = int(c.propose(b"add 1"))
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == list(range(1, 4 * adds + 1))


def test_leader_stopped_and_restarted_from_its_log(cluster):
    c = cluster.client()
    assert c.propose(b"add 10") == b"10"
    leader = next(i for i, r in cluster.replicas.items() if r.status()["read_lease"])
    cluster.replicas[leader].stop()
    assert not cluster.replicas[leader].running
    with pytest.raises(qk.InvalidArgumentError):
        cluster.replicas[leader].status()
    assert c.propose(b"add 1") == b"11"
    cluster.start(leader)  # from its directory: replays the log into a new Counter
    assert c.propose(b"add 1") == b"12"
    assert wait_for(lambda: cluster.states[leader].total == 12)


def test_data_directory_rules(cluster):
    # A second replica on a directory in use is refused.
    with pytest.raises(qk.StorageError):
        qk.Replica(1, cluster.peers, f"{cluster.dir}/r1", secret=SECRET, apply=Counter().apply, cluster_id=3)
    # A replica that lost its data does not rejoin without init.
    with pytest.raises(qk.StorageError):
        qk.Replica(1, cluster.peers, f"{cluster.dir}/elsewhere", secret=SECRET, apply=Counter().apply,
                   cluster_id=3)


def test_bad_arguments():
    d = tempfile.mkdtemp(prefix="qk-replica-bad-")
    peers = {1: f"127.0.0.1:{free_port()}"}
    try:
        with pytest.raises(qk.InvalidArgumentError, match="not among"):
            qk.Replica(2, peers, d, secret=SECRET, apply=print)
        with pytest.raises(TypeError, match="callable"):
            qk.Replica(1, peers, d, secret=SECRET, apply=5)
        with pytest.raises(TypeError, match="callable"):
            qk.Replica(1, peers, d, secret=SECRET, apply=print, query="x")
        with pytest.raises(qk.InvalidArgumentError):
            qk.Replica(1, {1: "nowhere"}, d, secret=SECRET, apply=print)
        with pytest.raises(qk.InvalidArgumentError):
            qk.Replica(1, "1=127.0.0.1:1,1=127.0.0.1:2", d, secret=SECRET, apply=print)
        with pytest.raises(TypeError):
            qk.Replica(1, [1, 2], d, secret=SECRET, apply=print)
        with pytest.raises(qk.InvalidArgumentError):
            qk.Replica(1, peers, d, secret="short", apply=print, init=True)
        with pytest.raises(qk.InvalidArgumentError):
            qk.Replica(1, peers, d, secret=SECRET, apply=print, heartbeat=0)
        with pytest.raises(TypeError):
            qk.ReplicaClient("127.0.0.1:1", secret=SECRET)
        with pytest.raises(qk.InvalidArgumentError):
            qk.ReplicaClient([], secret=SECRET)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_one_replica_cluster_context_manager_and_dead_cluster():
    d = tempfile.mkdtemp(prefix="qk-replica-one-")
    try:
        state = Counter()
        peers = f"1=127.0.0.1:{free_port()}"
        with qk.Replica(1, peers, d, secret=SECRET, apply=state.apply, init=True, heartbeat=0.02) as r:
            assert r.running and r.address.startswith("127.0.0.1:")
            c = qk.ReplicaClient([r.address], secret=SECRET)
            assert c.propose(b"add 2") == b"2"
            # Without a query callable, reads are refused.
            with pytest.raises(qk.InvalidArgumentError, match="query"):
                c.read(b"get")
        assert not r.running
        dead = qk.ReplicaClient([r.address], secret=SECRET, timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(qk.BackendUnavailableError):
            dead.propose(b"add 1")
        assert time.monotonic() - t0 < 3
    finally:
        shutil.rmtree(d, ignore_errors=True)


class SnapshottingCounter(Counter):
    """The counter, able to snapshot and restore its total."""

    def __init__(self):
        super().__init__()
        self.snapshots = 0
        self.restores = 0

    def snapshot(self):
        self.snapshots += 1
        return str(self.total).encode()

    def restore(self, data):
        assert isinstance(data, bytes)
        self.restores += 1
        self.total = int(data)


def test_replicas_compact_and_a_lagging_one_restores_a_snapshot():
    dir_ = tempfile.mkdtemp(prefix="qk-replica-compact-")
    peers = {i: f"127.0.0.1:{free_port()}" for i in (1, 2, 3)}
    states, replicas = {}, {}

    def start(i, init):
        states[i] = SnapshottingCounter()
        replicas[i] = qk.Replica(
            i, peers, f"{dir_}/r{i}", secret=SECRET, apply=states[i].apply, query=states[i].query,
            cluster_id=5, init=init, heartbeat=0.02, snapshot=states[i].snapshot,
            restore=states[i].restore, compact_every=5)

    try:
        for i in peers:
            start(i, True)
        c = qk.ReplicaClient(list(peers.values()), secret=SECRET, cluster_id=5, timeout=10.0)
        total = 0
        for k in range(1, 21):
            total += k
            assert c.propose(f"add {k}".encode()) == str(total).encode()
        leader = next(i for i, r in replicas.items() if r.status()["leader"] == i)
        lagging = next(i for i in peers if i != leader)
        replicas.pop(lagging).stop()
        for k in range(21, 61):
            total += k
            assert c.propose(f"add {k}".encode()) == str(total).encode()
        assert all(states[i].snapshots > 0 for i in replicas)
        # Back behind its peers' compactions: it restores a snapshot.
        start(lagging, False)
        assert wait_for(lambda: states[lagging].total == total, timeout=10.0)
        assert states[lagging].restores >= 1
        assert wait_for(lambda: replicas[lagging].status()["applied"] == 60)
        # Bad arguments: one without the other, not callable, a bad count.
        with pytest.raises(qk.InvalidArgumentError, match="together"):
            qk.Replica(9, {9: "127.0.0.1:1"}, f"{dir_}/x", secret=SECRET, apply=states[1].apply,
                       snapshot=states[1].snapshot)
        with pytest.raises(TypeError, match="restore must be callable"):
            qk.Replica(9, {9: "127.0.0.1:1"}, f"{dir_}/x", secret=SECRET, apply=states[1].apply,
                       snapshot=states[1].snapshot, restore=5)
        with pytest.raises(qk.InvalidArgumentError, match="compact_every"):
            qk.Replica(9, {9: "127.0.0.1:1"}, f"{dir_}/x", secret=SECRET, apply=states[1].apply,
                       compact_every=-1)
    finally:
        for r in replicas.values():
            r.stop()
        shutil.rmtree(dir_, ignore_errors=True)
