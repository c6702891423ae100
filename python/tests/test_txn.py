"""Two-phase commit and Paxos Commit from Python: machines driven by hand
through encoded messages, the in-process simulation (blocking of 2PC next
to Paxos Commit), and bad input."""

from __future__ import annotations

import pytest

import quorumkit as qk


def deliver(
    coord: qk.TwoPhaseCommitCoordinator,
    parts: dict[int, qk.TwoPhaseCommitParticipant],
    now: float,
    votes: dict[int, bool],
    drop_to: frozenset[int] = frozenset(),
) -> list[qk.TxnOutput]:
    """Carries messages until quiet; returns every outcome output."""
    outcomes: list[qk.TxnOutput] = []
    queue: list[tuple[int, int, bytes]] = []

    def drain(sender: int, outs: list[qk.TxnOutput]) -> None:
        for o in outs:
            if o.kind == "send":
                assert o.to is not None and o.message is not None
                queue.append((sender, o.to, o.message))
            elif o.kind == "vote_requested":
                assert o.txn is not None
                parts[sender].vote(o.txn, votes[sender], now)
                drain(sender, parts[sender].poll())
            elif o.kind == "outcome":
                outcomes.append(o)

    drain(0, coord.poll())
    for pid, p in parts.items():
        drain(pid, p.poll())
    while queue:
        sender, to, msg = queue.pop(0)
        if to in drop_to:
            continue
        if to == 0:
            coord.step(sender, msg, now)
            drain(0, coord.poll())
        else:
            parts[to].step(sender, msg, now)
            drain(to, parts[to].poll())
    return outcomes


def make(n: int = 3) -> tuple[qk.TwoPhaseCommitCoordinator, dict[int, qk.TwoPhaseCommitParticipant]]:
    coord = qk.TwoPhaseCommitCoordinator(0, vote_timeout=0.2, retry_interval=0.05)
    parts = {i: qk.TwoPhaseCommitParticipant(i, vote_timeout=0.2, retry_interval=0.05) for i in range(1, n + 1)}
    return coord, parts


def test_commit_when_everyone_votes_yes() -> None:
    coord, parts = make()
    coord.begin(7, [1, 2, 3], 0.0)
    assert coord.decision(7) is None
    out = deliver(coord, parts, 0.001, {1: True, 2: True, 3: True})
    assert coord.decision(7) is True
    assert sorted(o.commit for o in out) == [True] * 4  # coordinator + 3
    assert all(p.state(7) == "committed" for p in parts.values())
    assert coord.next_deadline() is None
    assert "TwoPhaseCommitCoordinator(id=0)" == repr(coord)


def test_one_no_vote_aborts_everywhere() -> None:
    coord, parts = make()
    coord.begin(1, [1, 2, 3], 0.0)
    deliver(coord, parts, 0.001, {1: True, 2: False, 3: True})
    assert coord.decision(1) is False
    assert {p.state(1) for p in parts.values()} == {"aborted"}


def test_first_output_is_the_record_then_the_prepares() -> None:
    coord, _ = make()
    coord.begin(5, [1, 2], 0.0)
    out = coord.poll()
    assert [o.kind for o in out] == ["persisted", "send", "send"]
    assert out[0].records == 1
    assert [o.to for o in out[1:]] == [1, 2]
    assert "send" in repr(out[1])


def test_timeout_aborts_and_in_doubt_participant_survives_restart() -> None:
    coord, parts = make(2)
    coord.begin(3, [1, 2], 0.0)
    # Participant 2 never hears the Prepare: the coordinator times out.
    deliver(coord, parts, 0.001, {1: True, 2: True}, drop_to=frozenset({2}))
    assert parts[1].state(3) == "prepared"
    assert parts[1].in_doubt() == [3]
    parts[1].restart(0.01)
    assert parts[1].state(3) == "prepared"
    assert coord.next_deadline() == pytest.approx(0.05)
    coord.tick(0.2)
    assert coord.decision(3) is False
    # The abort reaches participant 1 (its restart lost nothing durable).
    deliver(coord, parts, 0.2, {1: True, 2: True})
    assert parts[1].state(3) == "aborted"


def test_cooperative_termination_asks_peers() -> None:
    coord, parts = make(2)
    coord.begin(9, [1, 2], 0.0)
    deliver(coord, parts, 0.0, {1: True, 2: True})
    assert coord.decision(9) is True
    # A peer that knows the outcome answers a DecisionRequest with it.
    req9 = bytes([1, 4]) + (9).to_bytes(8, "little")  # DecisionRequest{txn 9}
    parts[1].step(2, req9, 0.0)
    [answer] = parts[1].poll()
    assert answer.kind == "send" and answer.to == 2
    assert answer.message == bytes([1, 3]) + (9).to_bytes(8, "little") + b"\x01"
    # A participant that has not voted aborts when a peer asks.
    p3 = qk.TwoPhaseCommitParticipant(3)
    req = bytes([1, 4]) + (11).to_bytes(8, "little")  # DecisionRequest{txn 11}
    p3.step(1, req, 0.0)
    outs = p3.poll()
    assert p3.state(11) == "aborted"
    assert any(o.kind == "send" and o.to == 1 for o in outs)


def test_coordinator_restart_aborts_undecided() -> None:
    coord, _ = make()
    coord.begin(1, [1, 2], 0.0)
    coord.restart(0.5)
    assert coord.decision(1) is False


def test_bad_input() -> None:
    with pytest.raises(qk.InvalidArgumentError):
        qk.TwoPhaseCommitCoordinator(0, vote_timeout=0)
    with pytest.raises(TypeError):
        qk.TwoPhaseCommitCoordinator("zero")  # type: ignore[arg-type]
    with pytest.raises(qk.InvalidArgumentError):
        qk.TwoPhaseCommitCoordinator(-1)
    with pytest.raises(TypeError):
        qk.TwoPhaseCommitParticipant(1, cooperative="yes")  # type: ignore[arg-type]
    coord, parts = make()
    for bad in ([], [1, 1], [0, 1]):
        with pytest.raises(qk.InvalidArgumentError):
            coord.begin(1, bad, 0.0)
    with pytest.raises(TypeError):
        coord.begin(1, "12", 0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        coord.begin(1.5, [1], 0.0)  # type: ignore[arg-type]
    with pytest.raises(qk.InvalidArgumentError):
        coord.begin(-1, [1], 0.0)
    with pytest.raises(qk.InvalidArgumentError):
        coord.begin(1, [1], -1.0)
    coord.begin(1, [1], 0.0)
    with pytest.raises(qk.InvalidArgumentError, match="already exists"):
        coord.begin(1, [2], 0.0)
    with pytest.raises(qk.InvalidArgumentError):
        coord.decision(42)
    # Damaged messages.
    vote = bytes([1, 2]) + (1).to_bytes(8, "little") + b"\x01"
    for junk in (b"", vote[:5], vote + b"\x00", vote[:10] + b"\x02", bytes([1, 99]) + vote[2:]):
        with pytest.raises(qk.CorruptSnapshotError):
            coord.step(1, junk, 0.0)
    with pytest.raises(qk.UnsupportedVersionError):
        coord.step(1, bytes([9]) + vote[1:], 0.0)
    with pytest.raises(TypeError):
        coord.step(1, "vote", 0.0)  # type: ignore[arg-type]
    coord.step(1, bytearray(vote), 0.0)
    assert coord.decision(1) is True
    with pytest.raises(qk.InvalidArgumentError, match="not awaiting a vote"):
        parts[1].vote(99, True, 0.0)
    with pytest.raises(TypeError):
        parts[1].vote(99, 1, 0.0)  # type: ignore[arg-type]
    assert parts[1].state(99) == "unknown"


@pytest.mark.parametrize("seed", range(5))
def test_simulation_2pc_blocks_where_paxos_commit_finishes(seed: int) -> None:
    two = qk.CommitSimulation("2pc", participants=3, seed=seed)
    two.crash_coordinator_after_votes()
    two.begin(1)
    two.run(10.0)
    assert two.in_doubt(1) == [1, 2, 3]
    assert {two.state(p, 1) for p in two.participants} == {"prepared"}
    assert not two.is_up(0)
    assert two.violation is None

    pc = qk.CommitSimulation("paxos-commit", participants=3, f=1, seed=seed)
    assert pc.acceptors == [4, 5, 6]
    pc.crash(pc.acceptors[0])
    pc.crash_coordinator_after_votes()
    pc.begin(1)
    pc.run(10.0)
    assert pc.in_doubt(1) == []
    assert [pc.outcome(p, 1) for p in pc.participants] == [True, True, True]
    assert pc.stats["crashes"] == 2 and pc.stats["committed"] == 1
    assert pc.violation is None
    assert pc.now == pytest.approx(10.0)


def test_simulation_votes_and_restarts() -> None:
    sim = qk.CommitSimulation("paxos-commit", participants=2, seed=3)
    sim.begin(1, [True, False])
    sim.run(1.0)
    assert [sim.outcome(p, 1) for p in sim.participants] == [False, False]
    sim.crash(1)
    assert sim.state(1, 1) == "unknown"  # down
    sim.restart(1)
    assert sim.state(1, 1) == "aborted"
    assert "paxos-commit" in repr(sim)


def test_simulation_bad_input() -> None:
    with pytest.raises(qk.InvalidArgumentError):
        qk.CommitSimulation("3pc")
    with pytest.raises(TypeError):
        qk.CommitSimulation(2)  # type: ignore[arg-type]
    with pytest.raises(qk.InvalidArgumentError):
        qk.CommitSimulation(participants=0)
    with pytest.raises(qk.InvalidArgumentError):
        qk.CommitSimulation("paxos-commit", f=7)
    with pytest.raises(TypeError):
        qk.CommitSimulation(seed="x")  # type: ignore[arg-type]
    sim = qk.CommitSimulation()
    with pytest.raises(qk.InvalidArgumentError):
        sim.begin(1, [True])
    with pytest.raises(qk.InvalidArgumentError):
        sim.crash(99)
    with pytest.raises(qk.InvalidArgumentError):
        sim.restart(1)
    sim.crash(0)
    with pytest.raises(qk.InvalidArgumentError, match="down"):
        sim.begin(1)
    with pytest.raises(qk.InvalidArgumentError):
        sim.run(-1.0)


def test_random_runs_hold_every_property() -> None:
    for proto in ("2pc", "paxos-commit"):
        for seed in range(20):
            r = qk.CommitSimulation.random_run(proto, seed)
            assert r["violation"] is None, r
            assert r["protocol"] == proto
    with pytest.raises(qk.InvalidArgumentError):
        qk.CommitSimulation.random_run("x", 1)
