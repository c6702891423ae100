"""The package surface promised by python/API.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import quorumkit as qk

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_core_crate_version() -> None:
    cargo = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', cargo, re.M | re.S)
    assert m, "no version in Cargo.toml"
    assert qk.__version__ == m.group(1)


def test_ring_seed_and_pinned_key_hashes() -> None:
    assert qk.RING_SEED == 0x716B72696E670001
    # Pinned with Python's xxhash package (xxh3_64, this seed): the same
    # values the core pins, so every binding places keys identically.
    assert qk.key_hash(b"") == 0x43D0DE6F932A83D2
    assert qk.key_hash("a") == 0x22D796541C623883
    assert qk.key_hash("hello") == 0x32E1567F14DE0F7D
    assert qk.key_hash(b"user:42") == 0xFDE09D7DFF53FA37
    assert qk.ketama_hash("a") == 0xB975C10C


def test_exports() -> None:
    for name in [
        "HashRing",
        "KetamaRing",
        "key_hash",
        "ketama_hash",
        "RING_SEED",
        "__version__",
        "QuorumkitError",
        "InvalidArgumentError",
        "EmptyRingError",
        "NodeNotFoundError",
        "NodeExistsError",
    ]:
        assert name in qk.__all__
        assert hasattr(qk, name)
    assert qk.HashRing.__module__ == "quorumkit"
    assert qk.KetamaRing.__module__ == "quorumkit"


def test_hash_ring_dunders_and_properties() -> None:
    r = qk.HashRing({"a": 1, "b": 2}, vnodes=10)
    assert repr(r) == "HashRing(nodes=2, points=30, vnodes=10)"
    assert len(r) == 2 and r.vnodes == 10 and r.point_count == 30
    assert "a" in r and "z" not in r
    assert list(r) == ["a", "b"] == r.nodes
    assert r.weight("b") == 2
    r.add_node("c")
    assert r.weight("c") == 1 and r.nodes == ["a", "b", "c"]
    assert repr(qk.HashRing()) == "HashRing(nodes=0, points=0, vnodes=160)"
    # nodes and iteration are snapshots: changing the ring later does not touch them.
    names = r.nodes
    it = iter(r)
    r.remove_node("a")
    assert names == ["a", "b", "c"] and list(it) == ["a", "b", "c"]
    assert r.nodes == ["b", "c"]
    names.append("x")
    assert r.nodes == ["b", "c"]


def test_constructor_forms() -> None:
    assert qk.HashRing(None).nodes == []
    assert qk.HashRing(("x", "y")).nodes == ["x", "y"]
    assert qk.HashRing(n for n in ["x", "y"]).nodes == ["x", "y"]
    assert qk.HashRing({"x": 3}).weight("x") == 3
    assert qk.HashRing(nodes=["x"], vnodes=1).point_count == 1
    assert qk.KetamaRing(servers=["x"], compat="libmemcached").compat == "libmemcached"
    assert qk.KetamaRing({"x:1": 2}).weight("x:1") == 2
    assert qk.KetamaRing(iter([("h", 1, 1)])).nodes == ["h:1"]


def test_bool_is_an_int_weight() -> None:
    # bool subclasses int; True is weight 1, False is weight 0 (rejected).
    assert qk.HashRing({"x": True}).weight("x") == 1
    with pytest.raises(qk.InvalidArgumentError):
        qk.HashRing({"x": False})


def test_str_subclass_keys_and_names() -> None:
    class S(str):
        pass

    r = qk.HashRing([S("n1"), "n2"])
    assert r.nodes == ["n1", "n2"]
    assert r.get_node(S("key")) == r.get_node("key")
    assert r.get_node_batch([S("key")]) == [r.get_node("key")]
    assert S("n1") in r


def test_classes_are_final() -> None:
    with pytest.raises(TypeError):

        class Sub(qk.HashRing):  # type: ignore[misc]
            pass
