"""quorumkit.Md5Ring: uhashring's default placement as a native ring, with
good and bad arguments."""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right

import pytest
import uhashring

import quorumkit as qk
from conftest import BASE_SEED, random_keys


def test_placements_points_and_positions_match_uhashring() -> None:
    r = random.Random(BASE_SEED)
    nodes = {f"n{i}-{r.getrandbits(20)}": r.randrange(1, 4) for i in range(20)}
    ring = qk.Md5Ring(nodes)
    u = uhashring.HashRing(nodes)
    keys = random_keys(r, 3000)
    assert [ring.get_node(k) for k in keys] == [u.get_node(k) for k in keys], f"seed={BASE_SEED}"
    assert ring.get_node_batch(keys) == [u.get_node(k) for k in keys]
    assert ring.points() == u.get_points()
    assert ring.point_count == len(u.get_points())
    pts = [p for p, _ in ring.points()]
    for k in keys[:200]:
        h = qk.Md5Ring.key_hash(k)
        assert h == int(hashlib.md5(k.encode()).hexdigest(), 16)
        assert ring.point_index(h) == bisect_right(pts, h) % len(pts) == u.get_node_pos(k)
    # A key exactly on a point goes to the next point (bisect_right).
    assert ring.point_index(pts[5]) == 6
    assert abs(sum(ring.shares().values()) - 1) < 1e-12


def test_membership_and_zero_points() -> None:
    ring = qk.Md5Ring(vnodes=10)
    assert ring.locate_str("k") is None
    ring.add_node("z", 0)
    assert ring.locate_str("k") is None and ring.point_count == 0
    with pytest.raises(qk.EmptyRingError) as e:
        ring.get_node("k")
    assert isinstance(e.value, LookupError)
    ring.add_node("a", 2)
    ring.add_node("b", 1, vnodes=7)
    assert ring.point_count == 27 and ring.node_vnodes("b") == 7 and ring.weight("a") == 2
    ring.set_node("b", 3)
    assert ring.point_count == 41
    ring.set_node("b", 1, vnodes=1)
    ring.set_weight("a", 1)
    assert ring.point_count == 11
    assert ring.get_nodes("k", 2) in (["a", "b"], ["b", "a"])
    # The pointless node never appears in a preference list.
    with pytest.raises(qk.InvalidArgumentError):
        ring.get_nodes("k", 3)
    assert ring.locate_str(12) == ring.get_node("12")  # str(key), as uhashring
    assert ring.locate_str(b"x") == ring.get_node("b'x'")
    ring.remove_node("z")
    assert ring.nodes == ["a", "b"] and len(ring) == 2 and "a" in ring and 3 not in ring
    assert repr(ring) == "Md5Ring(nodes=2, points=11, vnodes=10)"


def test_bad_arguments() -> None:
    ring = qk.Md5Ring(["a"])
    cases = [
        (lambda: ring.add_node("a"), qk.NodeExistsError, ValueError),
        (lambda: ring.remove_node("nope"), qk.NodeNotFoundError, KeyError),
        (lambda: ring.set_node("nope", 1), qk.NodeNotFoundError, KeyError),
        (lambda: ring.node_vnodes("nope"), qk.NodeNotFoundError, KeyError),
        (lambda: ring.add_node("b", -1), qk.InvalidArgumentError, ValueError),
        (lambda: ring.add_node("b", 1, vnodes=2**32), qk.InvalidArgumentError, ValueError),
        (lambda: ring.add_node("b", 2**20, vnodes=2**20), qk.InvalidArgumentError, ValueError),
        (lambda: ring.add_node("", 1), qk.InvalidArgumentError, ValueError),
        (lambda: ring.add_node("a\0b", 1), qk.InvalidArgumentError, ValueError),
        (lambda: ring.point_index(-1), qk.InvalidArgumentError, ValueError),
        (lambda: ring.point_index(2**128), qk.InvalidArgumentError, ValueError),
        (lambda: qk.Md5Ring(vnodes=-1), qk.InvalidArgumentError, ValueError),
        (lambda: qk.Md5Ring(["a", "a"]), qk.NodeExistsError, ValueError),
    ]
    for call, cls, base in cases:
        with pytest.raises(cls) as e:
            call()
        assert isinstance(e.value, base) and isinstance(e.value, qk.QuorumkitError)
    for call in (
        lambda: ring.add_node(1),
        lambda: ring.add_node("b", 1.5),
        lambda: ring.get_node(1),
        lambda: ring.point_index("x"),
        lambda: qk.Md5Ring("ab"),
        lambda: ring.get_node_batch("abc"),
    ):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(UnicodeEncodeError):
        ring.locate_str("\ud800")
    assert ring.nodes == ["a"] and ring.point_count == 160  # failures changed nothing


@pytest.mark.parametrize("make", [qk.Md5Ring, qk.HashRing, lambda: qk.KetamaRing([]), qk.RendezvousHash, qk.Maglev],
                         ids=["Md5Ring", "HashRing", "KetamaRing", "RendezvousHash", "Maglev"])
def test_bind_lookup_follows_the_ring_and_the_mapping(make) -> None:
    ring = make()
    values: dict[str, object] = {}
    lookup = ring.bind_lookup(values).lookup
    assert lookup("k") is None  # empty ring
    ring.add_node("a")
    with pytest.raises(KeyError, match="a"):
        lookup("k")  # the mapping lacks the node
    values["a"] = conf = {"host": "a"}
    assert lookup("k") is conf and lookup(12) is conf  # str(key), as uhashring
    ring.add_node("b")
    values["b"] = "B"
    keys = [f"key-{i}" for i in range(200)]
    assert [lookup(k) for k in keys] == [values[ring.locate_str(k)] for k in keys]
    assert {ring.locate_str(k) for k in keys} == {"a", "b"}  # both nodes were looked up
    assert ring.bind_lookup(values).mapping is values
    with pytest.raises(TypeError):
        ring.bind_lookup(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lookup()  # type: ignore[call-arg]
