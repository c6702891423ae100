"""Bad inputs raise the specific quorumkit exception, which is also the
matching built-in; wrong Python types raise TypeError naming the type."""

from __future__ import annotations

import pytest

import quorumkit as qk
from quorumkit import (
    EmptyRingError,
    InvalidArgumentError,
    NodeExistsError,
    NodeNotFoundError,
    QuorumkitError,
)


def test_hierarchy() -> None:
    assert issubclass(QuorumkitError, Exception)
    assert issubclass(InvalidArgumentError, QuorumkitError) and issubclass(InvalidArgumentError, ValueError)
    assert issubclass(EmptyRingError, QuorumkitError) and issubclass(EmptyRingError, LookupError)
    assert issubclass(NodeNotFoundError, QuorumkitError) and issubclass(NodeNotFoundError, KeyError)
    assert issubclass(NodeExistsError, QuorumkitError) and issubclass(NodeExistsError, ValueError)
    for snap_err in (qk.CorruptSnapshotError, qk.UnsupportedVersionError):
        assert issubclass(snap_err, QuorumkitError) and issubclass(snap_err, ValueError)


def raises(exc: type[BaseException], builtin: type[BaseException], fn, *args, **kwargs) -> BaseException:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert type(info.value) is exc, f"{type(info.value)} is not exactly {exc}"
    assert isinstance(info.value, builtin)
    return info.value


@pytest.fixture
def ring() -> qk.HashRing:
    return qk.HashRing({"a": 1, "b": 2, "c": 1})


@pytest.fixture
def ketama() -> qk.KetamaRing:
    return qk.KetamaRing(["h1:11211", "h2:11212", "h3"])


# ---------------------------------------------------------------- weights, vnodes, n


@pytest.mark.parametrize("weight", [0, -1, -(2**70), 2**32, 2**40, 2**100])
def test_bad_weight_values(ring: qk.HashRing, ketama: qk.KetamaRing, weight: int) -> None:
    raises(InvalidArgumentError, ValueError, qk.HashRing, {"x": weight})
    raises(InvalidArgumentError, ValueError, ring.add_node, "x", weight)
    raises(InvalidArgumentError, ValueError, ring.set_weight, "a", weight)
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, {"x": weight})
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, [("x", 11211, weight)])
    raises(InvalidArgumentError, ValueError, ketama.add_node, "x", weight)
    raises(InvalidArgumentError, ValueError, ketama.set_weight, "h3", weight)
    # Failed changes leave the rings as they were.
    assert ring.nodes == ["a", "b", "c"] and ring.weight("a") == 1
    assert ring.point_count == 4 * 160
    assert ketama.nodes == ["h1:11211", "h2:11212", "h3"] and ketama.weight("h3") == 1


def test_weight_times_vnodes_too_large(ring: qk.HashRing) -> None:
    # 160 * (2**32 - 1) points exceed the per-node limit of 2**24.
    raises(InvalidArgumentError, ValueError, ring.add_node, "x", 2**32 - 1)
    raises(InvalidArgumentError, ValueError, qk.HashRing, ["a"], vnodes=2**25)


@pytest.mark.parametrize("weight", [1.0, "1", None, b"1", [1]])
def test_weight_wrong_type(ring: qk.HashRing, ketama: qk.KetamaRing, weight: object) -> None:
    for fn, args in [
        (qk.HashRing, ({"x": weight},)),
        (ring.add_node, ("x", weight)),
        (ring.set_weight, ("a", weight)),
        (qk.KetamaRing, ({"x": weight},)),
        (ketama.add_node, ("x", weight)),
    ]:
        if weight is None and fn in (ring.add_node, ketama.add_node):
            continue  # None means the default weight there
        with pytest.raises(TypeError, match=type(weight).__name__):
            fn(*args)


@pytest.mark.parametrize("vnodes", [0, -1, 2**32, 2**80])
def test_bad_vnodes(vnodes: int) -> None:
    raises(InvalidArgumentError, ValueError, qk.HashRing, vnodes=vnodes)


@pytest.mark.parametrize("vnodes", [1.5, "160", [160]])
def test_vnodes_wrong_type(vnodes: object) -> None:
    with pytest.raises(TypeError, match="vnodes"):
        qk.HashRing(vnodes=vnodes)  # type: ignore[arg-type]


def test_bad_n(ring: qk.HashRing, ketama: qk.KetamaRing) -> None:
    for r in (ring, ketama):
        raises(InvalidArgumentError, ValueError, r.get_nodes, "k", 4)
        raises(InvalidArgumentError, ValueError, r.get_nodes, "k", -1)
        raises(InvalidArgumentError, ValueError, r.get_nodes, "k", 2**70)
        with pytest.raises(TypeError, match="float"):
            r.get_nodes("k", 2.0)
        with pytest.raises(TypeError):
            r.get_nodes("k")  # type: ignore[call-arg]


# ---------------------------------------------------------------- names and membership


@pytest.mark.parametrize("name", ["", "a\0b", "\0"])
def test_bad_names(ring: qk.HashRing, ketama: qk.KetamaRing, name: str) -> None:
    raises(InvalidArgumentError, ValueError, qk.HashRing, [name])
    raises(InvalidArgumentError, ValueError, ring.add_node, name)
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, [name])
    raises(InvalidArgumentError, ValueError, ketama.add_node, name)


@pytest.mark.parametrize("name", [1, None, b"a", ("a",), 1.5])
def test_name_wrong_type(ring: qk.HashRing, ketama: qk.KetamaRing, name: object) -> None:
    for fn in (ring.add_node, ring.remove_node, ring.weight, ketama.add_node, ketama.remove_node, ketama.weight):
        with pytest.raises(TypeError, match=type(name).__name__):
            fn(name)
    with pytest.raises(TypeError):
        qk.HashRing([name])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        qk.HashRing({name: 1})  # type: ignore[dict-item]


def test_nodes_argument_must_be_a_collection() -> None:
    for bad in ("abc", b"abc"):
        with pytest.raises(TypeError, match="collection"):
            qk.HashRing(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="collection"):
            qk.KetamaRing(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        qk.HashRing(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        qk.KetamaRing(5)  # type: ignore[arg-type]


def test_unknown_nodes(ring: qk.HashRing, ketama: qk.KetamaRing) -> None:
    for r in (ring, ketama):
        e = raises(NodeNotFoundError, KeyError, r.remove_node, "zz")
        assert "zz" in str(e)
        raises(NodeNotFoundError, KeyError, r.set_weight, "zz", 2)
        raises(NodeNotFoundError, KeyError, r.weight, "zz")


def test_duplicates(ring: qk.HashRing, ketama: qk.KetamaRing) -> None:
    raises(NodeExistsError, ValueError, ring.add_node, "a")
    raises(NodeExistsError, ValueError, ring.add_node, "b", 5)
    assert ring.weight("b") == 2
    raises(NodeExistsError, ValueError, qk.HashRing, ["a", "b", "a"])
    raises(NodeExistsError, ValueError, ketama.add_node, "h3")
    raises(NodeExistsError, ValueError, qk.KetamaRing, ["h1", "h1"])
    raises(NodeExistsError, ValueError, qk.KetamaRing, ["h1:11211", ("h1", 11211, 2)])


# ---------------------------------------------------------------- empty rings


def test_empty_ring_lookups() -> None:
    for r in (qk.HashRing(), qk.HashRing([]), qk.KetamaRing([]), qk.KetamaRing({}, compat="uhashring")):
        raises(EmptyRingError, LookupError, r.get_node, "k")
        raises(EmptyRingError, LookupError, r.get_nodes, "k", 1)
        raises(EmptyRingError, LookupError, r.get_node_batch, ["k"])
        raises(EmptyRingError, LookupError, r.get_node_batch, [])
        raises(EmptyRingError, LookupError, r.get_node_batch, b"abcd", key_size=4)
        assert len(r) == 0 and r.shares() == {} and r.nodes == [] and list(r) == []


def test_ring_emptied_by_removal() -> None:
    r = qk.HashRing(["only"])
    r.remove_node("only")
    raises(EmptyRingError, LookupError, r.get_node, "k")
    r.add_node("back")
    assert r.get_node("k") == "back"


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("key", [1, None, 1.5, ["a"], ("a",), object()])
def test_key_wrong_type(ring: qk.HashRing, ketama: qk.KetamaRing, key: object) -> None:
    name = type(key).__name__
    for fn in (ring.get_node, ketama.get_node, qk.key_hash, qk.ketama_hash, qk.KetamaRing.key_hash):
        with pytest.raises(TypeError, match=f"key must be str, bytes, bytearray or memoryview, not {name}"):
            fn(key)
    with pytest.raises(TypeError, match=name):
        ring.get_nodes(key, 1)
    with pytest.raises(TypeError, match=name):
        ring.get_node_batch(["ok", key])
    with pytest.raises(TypeError, match=name):
        ketama.get_node_batch(("ok", key))
    with pytest.raises(TypeError, match=name):
        ring.get_node_batch(iter(["ok", key]))


def test_unencodable_str_key(ring: qk.HashRing) -> None:
    # A lone surrogate has no UTF-8 form.
    with pytest.raises(UnicodeEncodeError):
        ring.get_node("\ud800")
    with pytest.raises(UnicodeEncodeError):
        ring.get_node_batch(["a", "\ud800"])


def test_batch_wrong_container(ring: qk.HashRing) -> None:
    with pytest.raises(TypeError, match="int"):
        ring.get_node_batch(5)  # type: ignore[arg-type]
    for one in ("abc", b"abc", bytearray(b"abc")):
        with pytest.raises(TypeError, match="key_size"):
            ring.get_node_batch(one)  # type: ignore[arg-type]


def test_fixed_width_batch_errors(ring: qk.HashRing) -> None:
    raises(InvalidArgumentError, ValueError, ring.get_node_batch, b"abcd", key_size=0)
    raises(InvalidArgumentError, ValueError, ring.get_node_batch, b"abcd", key_size=3)
    raises(InvalidArgumentError, ValueError, ring.get_node_batch, b"abcd", key_size=-4)
    with pytest.raises(TypeError, match="list"):
        ring.get_node_batch(["abcd"], key_size=4)
    with pytest.raises(TypeError, match="float"):
        ring.get_node_batch(b"abcd", key_size=4.0)  # type: ignore[arg-type]


def test_contains_non_str_is_false(ring: qk.HashRing) -> None:
    assert "a" in ring
    assert 1 not in ring
    assert b"a" not in ring
    assert None not in ring


# ---------------------------------------------------------------- ketama specs


@pytest.mark.parametrize(
    "spec",
    ["", "host:port:x", "host:99999", "host:", "host:x", ":11211", "[::1", "[::1]x", "host:-1", "a\0:1"],
)
def test_bad_server_specs(ketama: qk.KetamaRing, spec: str) -> None:
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, [spec])
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, {spec: 1})
    raises(InvalidArgumentError, ValueError, ketama.add_node, spec)
    assert len(ketama) == 3


def test_good_server_specs() -> None:
    r = qk.KetamaRing(["host", "host:1", "::1", "[::1]:11300", "fe80::1%eth0", ("h", 0, 1), ("h", 65535, 1)])
    assert r.nodes == ["host", "host:1", "::1", "[::1]:11300", "fe80::1%eth0", "h:0", "h:65535"]


@pytest.mark.parametrize(
    "server",
    [("h", 11211), ("h", 11211, 1, 1), ("h", 70000, 1), ("h", -1, 1), ("", 11211, 1), ("h", 11211, 0)],
)
def test_bad_server_tuples(server: tuple) -> None:
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, [server])


@pytest.mark.parametrize("server", [("h", "11211", 1), (1, 11211, 1), ("h", 11211, 1.0), 1, None, ["h", 1, 1]])
def test_server_wrong_types(server: object) -> None:
    with pytest.raises(TypeError):
        qk.KetamaRing([server])  # type: ignore[list-item]


def test_bad_compat() -> None:
    e = raises(InvalidArgumentError, ValueError, qk.KetamaRing, ["h"], compat="memcached")
    assert "libmemcached" in str(e) and "uhashring" in str(e)
    raises(InvalidArgumentError, ValueError, qk.KetamaRing, ["h"], compat="")
    with pytest.raises(TypeError, match="compat"):
        qk.KetamaRing(["h"], compat=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.KetamaRing(["h"], "uhashring")  # type: ignore[misc]  # compat is keyword-only
