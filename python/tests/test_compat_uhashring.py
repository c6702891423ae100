"""quorumkit.compat.uhashring.HashRing against uhashring 2.5 itself: every
public method and view, on seeded random node sets and membership changes,
in both modes, must give exactly what uhashring gives."""

from __future__ import annotations

import io
import random
from contextlib import redirect_stdout
from typing import Any

import pytest
import uhashring

from conftest import BASE_SEED, random_keys
from quorumkit.compat import uhashring as compat

CASES = 120  # per mode
TOTALS = {"cases": 0, "keys": 0}


def node_name(r: random.Random, i: int, ketama: bool) -> Any:
    kind = r.randrange(10)
    if kind == 0 and not ketama:
        return 1000 + i  # an int node name: hashed as f"{node}"
    if kind == 1:
        return f"10.0.{i}.{r.randrange(256)}:{r.randrange(1, 65536)}"
    if kind == 2:
        return f"ü-узел-{i}"
    if kind == 3:
        return f"odd:name:{i}"  # not a host:port spec
    return f"node-{i}-{r.getrandbits(16):x}"


def node_conf(r: random.Random, ketama: bool) -> Any:
    kind = r.randrange(4)
    if kind == 0:
        return r.choice([0, 1, 1, 2, 3, 5]) if r.random() < 0.3 else r.randrange(1, 4)
    conf: dict[str, Any] = {"weight": r.randrange(0 if r.random() < 0.2 else 1, 5)}
    if r.random() < 0.3:
        conf["vnodes"] = r.choice([1, 7, 40, 40, 160, 200]) if ketama else r.choice([1, 10, 160, 300])
    if r.random() < 0.3:
        conf.update(hostname=f"h{r.randrange(99)}", port=r.randrange(1, 65536), instance=object())
    if r.random() < 0.1:
        conf["nodename"] = "renamed"
    return conf


def make_keys(r: random.Random, n: int) -> list[Any]:
    keys: list[Any] = random_keys(r, n)
    for i in range(0, n, 7):
        keys[i] = r.getrandbits(40)  # int keys: str(key)
    for i in range(3, n, 11):
        keys[i] = keys[i].encode() if isinstance(keys[i], str) else b"\x00\xff"  # bytes: str(b"...")
    return keys


def compare(q: compat.HashRing, u: uhashring.HashRing, keys: list[Any], where: str) -> None:
    for k in keys:
        assert q.get_node(k) == u.get_node(k), f"{where}: get_node({k!r})"
        assert q.get_key(k) == u.get_key(k), f"{where}: get_key({k!r})"
    for k in keys[:40]:
        assert q.get_node_pos(k) == u.get_node_pos(k), f"{where}: get_node_pos({k!r})"
        assert q.get_server(k) == u.get_server(k), f"{where}: get_server({k!r})"
        assert q.get(k) is u.get(k) or q.get(k) == u.get(k), f"{where}: get({k!r})"
        assert q.get_node_weight(k) == u.get_node_weight(k), where
        assert q.get_node_hostname(k) == u.get_node_hostname(k), where
        assert q.get_node_port(k) == u.get_node_port(k), where
        assert q[k] is u[k] or q[k] == u[k], where
    for k in keys[:5]:
        assert list(q.range(k)) == list(u.range(k)), f"{where}: range({k!r})"
        assert list(q.range(k, size=2)) == list(u.range(k, size=2)), where
        assert list(q.range(k, unique=False))[:50] == list(u.range(k, unique=False))[:50], where
        assert list(q.iterate_nodes(k)) == list(u.iterate_nodes(k)), where
        assert list(q.iterate_nodes(k, distinct=False))[:50] == list(u.iterate_nodes(k, distinct=False))[:50]
    assert q.size == u.size, where
    assert q.get_points() == u.get_points(), where
    assert list(q.ring.items()) == list(u.ring.items()), f"{where}: ring order"
    assert list(q.distribution.items()) == list(u.distribution.items()), where
    assert list(q.get_nodes()) == list(u.get_nodes()), where
    assert q.conf == u.conf and q.nodes == u.nodes, where
    assert q.get_instances() == u.get_instances(), where
    assert q._keys == u._keys, where
    TOTALS["keys"] += len(keys)


def both(fn: Any) -> tuple[Any, Any]:
    """Runs fn on each ring class; both must return or raise alike."""
    out = []
    for cls in (compat.HashRing, uhashring.HashRing):
        try:
            out.append(("ok", fn(cls)))
        except Exception as e:  # noqa: BLE001 - compared below
            out.append(("err", (type(e), str(e))))
    assert out[0][0] == out[1][0] and (out[0][0] == "ok" or out[0][1] == out[1][1]), out
    return out[0][1], out[1][1]


@pytest.mark.parametrize("mode", ["default", "ketama"])
def test_matches_uhashring_on_random_rings(mode: str) -> None:
    ketama = mode == "ketama"
    for case in range(CASES):
        seed = BASE_SEED * 1000 + case + (500 if ketama else 0)
        r = random.Random(seed)
        where = f"seed={seed} mode={mode}"
        n = r.choice([1, 2, 3, 5, 8, 13, 30])
        names = [node_name(r, i, ketama) for i in range(n)]
        kind = r.randrange(3)
        nodes: Any
        if kind == 0:
            nodes = list(names) if n > 1 or r.random() < 0.5 else names[0]
        else:
            nodes = {name: node_conf(r, ketama) for name in names}
        kwargs: dict[str, Any] = {"hash_fn": "ketama"} if ketama else {}
        if r.random() < 0.3:
            kwargs["vnodes"] = r.choice([10, 40, 100, 160])
        if ketama and r.random() < 0.2:
            kwargs["replicas"] = r.randrange(1, 5)
        q, u = both(lambda cls: cls(nodes, **kwargs))
        if isinstance(q, tuple):
            continue  # both refused the configuration alike
        keys = make_keys(r, 150)
        compare(q, u, keys, where)
        for step in range(6):
            op = r.randrange(5)
            name = r.choice(names + [f"new-{case}-{step}"])
            if op == 0:
                conf = node_conf(r, ketama)
                eq = []
                for ring in (q, u):
                    try:
                        ring.add_node(name, conf if isinstance(conf, dict) else {"weight": conf})
                        eq.append("ok")
                    except Exception as e:  # noqa: BLE001
                        eq.append((type(e), str(e)))
                assert eq[0] == eq[1], f"{where} step={step} add {name!r}: {eq}"
            elif op == 1:
                eq = []
                for ring in (q, u):
                    try:
                        ring.remove_node(name)
                        eq.append("ok")
                    except Exception as e:  # noqa: BLE001
                        eq.append((type(e), str(e)))
                assert eq[0] == eq[1], f"{where} step={step} remove {name!r}: {eq}"
            elif op == 2:
                w = r.randrange(1, 4)
                q[name] = {"weight": w}
                u[name] = {"weight": w}
                eq = ["ok"]
            elif op == 3:
                eq = []
                for ring in (q, u):
                    try:
                        del ring[name]
                        eq.append("ok")
                    except Exception as e:  # noqa: BLE001
                        eq.append((type(e), str(e)))
                assert eq[0] == eq[1], f"{where} step={step} del {name!r}: {eq}"
            else:
                q.regenerate()
                u.regenerate()
                eq = ["ok"]
            if eq[0] != "ok" and eq[0][0] is not KeyError:
                # uhashring raised mid-rebuild (e.g. every weight now 0) and
                # keeps a half-updated state: nothing defined to compare.
                break
            compare(q, u, keys[:60], f"{where} step={step}")
        TOTALS["cases"] += 1
    print(f"uhashring {mode}: {TOTALS['cases']} cases, {TOTALS['keys']} key lookups matched")
    assert TOTALS["cases"] >= CASES * 0.8


def test_many_keys_exact_at_100_nodes() -> None:
    r = random.Random(BASE_SEED)
    keys = make_keys(r, 20000)
    nodes = {f"cache-{i}": {"weight": r.randrange(1, 4)} for i in range(100)}
    for kwargs in ({}, {"hash_fn": "ketama"}):
        q, u = compat.HashRing(nodes, **kwargs), uhashring.HashRing(nodes, **kwargs)
        assert [q.get_node(k) for k in keys] == [u.get_node(k) for k in keys], f"seed={BASE_SEED} {kwargs}"


def test_weight_fn_and_custom_hash_fn() -> None:
    state = {"w": 2}

    def weight_fn(**conf: Any) -> int:
        return state["w"] if conf["nodename"] == "a" else 1

    def hash_fn(key: Any) -> int:
        return hash(str(key)) % 100_003

    keys = make_keys(random.Random(BASE_SEED), 300)
    for kwargs in ({"weight_fn": weight_fn}, {"weight_fn": weight_fn, "hash_fn": "ketama"}, {"hash_fn": hash_fn}):
        q, u = compat.HashRing(["a", "b", "c"], **kwargs), uhashring.HashRing(["a", "b", "c"], **kwargs)
        compare(q, u, keys, str(kwargs))
        state["w"] = 5
        q.regenerate()
        u.regenerate()
        compare(q, u, keys, f"{kwargs} after regenerate")
        state["w"] = 2


def test_errors_match() -> None:
    for args, kwargs in [
        ((("a", "b"),), {}),  # a tuple is neither list nor dict
        (({"a": "x"},), {}),  # a bad node conf
        ((["a"],), {"hash_fn": 3}),
        ((["a"],), {"weight_fn": 3}),
        (({"a": {"weight": 1.5}},), {}),
        (({"a": 0, "b": 0},), {"hash_fn": "ketama"}),  # all weights 0: ZeroDivisionError
        ((["a"],), {"hash_fn": "ketama", "replicas": 5}),  # IndexError in uhashring's hash
    ]:
        both(lambda cls: cls(*args, **kwargs))
    # Removing a missing node; removing a node without points (uhashring
    # raises KeyError after removing it).
    for kwargs in ({}, {"hash_fn": "ketama"}):
        q, u = compat.HashRing({"a": 1, "z": 0}, **kwargs), uhashring.HashRing({"a": 1, "z": 0}, **kwargs)
        for name in ("nope", "z"):
            got = []
            for ring in (q, u):
                try:
                    ring.remove_node(name)
                    got.append("ok")
                except KeyError as e:
                    got.append(str(e))
            assert got[0] == got[1], (kwargs, name, got)
        assert list(q.get_nodes()) == list(u.get_nodes())


def test_empty_rings_answer_none() -> None:
    for kwargs in ({}, {"hash_fn": "ketama"}):
        q, u = compat.HashRing(**kwargs), uhashring.HashRing(**kwargs)
        for m in ("get", "get_node", "get_node_pos", "get_server", "get_node_weight", "__getitem__"):
            assert getattr(q, m)("k") is None and getattr(u, m)("k") is None, m
        assert list(q.iterate_nodes("k")) == [None] == list(u.iterate_nodes("k"))
        assert list(q.range("k")) == [] == list(u.range("k"))
        assert q.size == 0 and q.get_points() == [] and len(q.distribution) == 0
        outs = []
        for ring in (q, u):
            buf = io.StringIO()
            with redirect_stdout(buf):
                ring.print_continuum()
            outs.append(buf.getvalue())
        assert outs[0] == outs[1] == "Continuum empty\n"
        q["x"] = {"weight": 1}
        u["x"] = {"weight": 1}
        compare(q, u, ["k", 1, b"k"], f"{kwargs} one node")


def test_print_continuum_and_native_paths() -> None:
    q, u = compat.HashRing(["a", "b"], vnodes=3), uhashring.HashRing(["a", "b"], vnodes=3)
    outs = []
    for ring in (q, u):
        buf = io.StringIO()
        with redirect_stdout(buf):
            ring.print_continuum()
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] and outs[0].startswith("Numpoints in continuum: 6\n")
    # The hot path is the core's method (no Python frame), and goes back to
    # Python glue when node names stop being plain str.
    assert type(q.get_node).__name__ == "builtin_function_or_method"
    q.add_node(7)
    assert type(q.get_node).__name__ == "method"
    q.remove_node(7)
    assert type(q.get_node).__name__ == "builtin_function_or_method"
    # Names whose strings collide are refused in the native modes.
    with pytest.raises(ValueError, match="same name"):
        compat.HashRing([1, "1"])


# ------------------------------------------------------------------ the gaps closed

from hashlib import md5  # noqa: E402

HashRing = compat.HashRing


def test_version_names_the_uhashring_it_matches():
    import uhashring as real

    from quorumkit.compat import uhashring as mine

    assert mine.__version__ == real.__version__ == "2.5"


@pytest.mark.parametrize("mode", [{}, {"hash_fn": "ketama"}, {"vnodes": 40}])
def test_pickle_and_deepcopy_keep_the_placement(mode):
    import copy
    import pickle

    ring = HashRing({"a": 1, "b": {"weight": 2, "port": 11211, "instance": "inst-b"}, "c": 3}, **mode)
    keys = [f"k{i}" for i in range(2000)]
    for clone in (pickle.loads(pickle.dumps(ring)), copy.deepcopy(ring), copy.copy(ring)):
        assert [clone.get_node(k) for k in keys] == [ring.get_node(k) for k in keys]
        assert [clone[k] for k in keys] == [ring[k] for k in keys]
        assert clone.get_points() == ring.get_points()
        assert clone.conf == ring.conf
        clone.add_node("d")  # independent of the original
        assert "d" not in ring.get_nodes()


def test_deepcopy_keeps_a_custom_hash_fn():
    import copy

    ring = HashRing(["a", "b"], hash_fn=lambda k: int(md5(str(k).encode()).hexdigest(), 16))
    clone = copy.deepcopy(ring)
    assert [clone.get_node(f"k{i}") for i in range(500)] == [ring.get_node(f"k{i}") for i in range(500)]


@pytest.mark.parametrize(
    "mode, bad",
    [
        ({"hash_fn": "ketama"}, {"weight": 1.5}),
        ({"hash_fn": "ketama"}, {"weight": 0}),
        ({}, {"weight": 1.5}),
        ({}, {"vnodes": "many"}),
    ],
)
def test_a_failed_add_leaves_the_ring_unchanged(mode, bad):
    ring = HashRing(["a", "b"], **mode)
    keys = [f"k{i}" for i in range(1000)]
    before = ([ring.get_node(k) for k in keys], [ring.get(k) for k in keys], ring.get_points(), dict(ring.conf))
    with pytest.raises(Exception):
        if bad.get("weight") == 0:
            # ketama: a total weight of 0 (every node at 0)
            ring.add_node("a", {"weight": 0})
            ring.add_node("b", {"weight": 0})
        else:
            ring.add_node("c", bad)
    after = ([ring.get_node(k) for k in keys], [ring.get(k) for k in keys], ring.get_points(), dict(ring.conf))
    if bad.get("weight") == 0 and mode:
        # The first zero weight succeeded (uhashring takes it); the failing
        # second left the ring as the first one made it, still answering.
        assert all(n == "b" for n in after[0])
    else:
        assert after == before
    ring.add_node("c")  # and it keeps working
    assert "c" in ring.get_nodes()


def test_a_failed_ketama_replicas_add_leaves_an_empty_ring_usable():
    ring = HashRing([], hash_fn="ketama", replicas=5)
    with pytest.raises(IndexError):
        ring.add_node("a")
    assert ring.get_node("k") is None and list(ring.get_nodes()) == []


def test_monkey_patches_python_memcached_onto_the_ring(monkeypatch):
    import memcache

    from quorumkit.compat.uhashring import monkey

    saved = {k: memcache.Client.__dict__[k] for k in ("__init__", "_get_server")}
    try:
        monkey.patch_memcache()
        monkey.patch_memcache()  # twice is harmless
        servers = ["127.0.0.1:11211", "127.0.0.2:11212", "127.0.0.3:11213"]
        client = memcache.Client(servers)
        assert isinstance(client.uhashring, HashRing)
        assert sorted(client.uhashring.get_nodes()) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        # Every server "accepts": the key's server is the ring's choice.
        for s in client.servers:
            monkeypatch.setattr(s, "connect", lambda: 1)
        for i in range(200):
            key = f"user:{i}"
            server, k = client._get_server(key)
            assert k == key and server is client.uhashring[key]
            assert server.ip == client.uhashring.get_node(key)
        # The chosen server refuses: the next one along the ring takes the key.
        key = "user:7"
        first = client.uhashring[key]
        monkeypatch.setattr(first, "connect", lambda: 0)
        server, _ = client._get_server(key)
        assert server is not first and server is not None
        # Nobody accepts: (None, None), after the retries.
        for s in client.servers:
            monkeypatch.setattr(s, "connect", lambda: 0)
        assert client._get_server(key) == (None, None)
        # A (hash, key) tuple keeps python-memcached's own choice.
        for s in client.servers:
            monkeypatch.setattr(s, "connect", lambda: 1)
        server, k = client._get_server((0, "x"))
        assert k == "x" and server is client.buckets[0]
    finally:
        for k, v in saved.items():
            setattr(memcache.Client, k, v)
        for k in ("_qk_patched", "_old_init", "_old_get_server"):
            if k in memcache.Client.__dict__:
                delattr(memcache.Client, k)
