"""KetamaRing against uhashring 2.5 (installed in the venv), against a
pure-Python model of libmemcached 1.1.4's weighted ketama, and against the
sample vectors in tests/vectors/ketama-sample.json (both compat modes).
The C oracle comparison with libmemcached itself is test_ketama_oracle.py."""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import struct
from pathlib import Path

import pytest
import uhashring

import quorumkit as qk
from conftest import BASE_SEED, random_keys

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "ketama-sample.json"


def md5_points(s: str) -> list[int]:
    d = hashlib.md5(s.encode()).digest()
    return [int.from_bytes(d[4 * a : 4 * a + 4], "little") for a in range(4)]


def random_servers(r: random.Random, count: int, weighted: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    while len(out) < count:
        kind = r.randrange(3)
        if kind == 0:
            name = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}:{r.choice([11211, 11212, r.randrange(1024, 65536)])}"
        elif kind == 1:
            name = f"cache-{r.getrandbits(20):05x}.example.net"
        else:
            name = f"mc{len(out)}:{r.randrange(1, 65536)}"
        out[name] = r.randint(1, 600) if weighted else 1
    return out


# ---------------------------------------------------------------- uhashring

UH_COUNTS = [1, 2, 3, 25, 47, 50, 61, 100]


@pytest.mark.parametrize("count", UH_COUNTS)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_uhashring(count: int, weighted: bool) -> None:
    seed = BASE_SEED * 1000 + count * 2 + weighted
    r = random.Random(seed)
    servers = random_servers(r, count, weighted)
    ours = qk.KetamaRing(servers, compat="uhashring")
    theirs = uhashring.HashRing(dict(servers), hash_fn="ketama")
    msg = f"seed={seed} count={count} weighted={weighted}"
    # Points: uhashring keeps a duplicate point twice in its key list (the
    # later server wins the point's owner); compare the distinct points.
    want_points = list(dict.fromkeys(theirs.get_points()))
    assert ours.points() == want_points, msg
    assert ours.point_count == len(want_points), msg
    keys = random_keys(r, 3000)
    # Keys that hash exactly onto points ("name-i" is point 0 of digest i):
    # uhashring goes to the next point (bisect_right).
    names = list(servers)
    for _ in range(300):
        n = r.choice(names)
        keys.append(f"{n}-{r.randrange(max(1, 40 * count * servers[n] // sum(servers.values())))}")
    keys += [str(r.getrandbits(32)) for _ in range(500)]
    for k in keys:
        assert ours.get_node(k) == theirs.get_node(k), f"{msg} key={k!r}"
    assert ours.get_node_batch(keys) == [theirs.get_node(k) for k in keys], msg


@pytest.mark.parametrize("case", range(8))
def test_matches_uhashring_random_sets(case: int) -> None:
    seed = BASE_SEED + 7919 * case
    r = random.Random(seed)
    servers = random_servers(r, r.randint(1, 120), weighted=r.random() < 0.7)
    ours = qk.KetamaRing(servers, compat="uhashring")
    theirs = uhashring.HashRing(dict(servers), hash_fn="ketama")
    msg = f"seed={seed} servers={len(servers)}"
    assert ours.points() == list(dict.fromkeys(theirs.get_points())), msg
    keys = random_keys(r, 2000)
    assert ours.get_node_batch(keys) == [theirs.get_node(k) for k in keys], msg


def test_membership_changes_match_uhashring(rng: random.Random) -> None:
    servers = random_servers(rng, 30, weighted=True)
    ours = qk.KetamaRing(servers, compat="uhashring")
    theirs = uhashring.HashRing(dict(servers), hash_fn="ketama")
    keys = random_keys(rng, 2000)
    names = list(servers)
    ours.remove_node(names[4])
    theirs.remove_node(names[4])
    ours.add_node("new-node:11300", 250)
    theirs.add_node("new-node:11300", {"weight": 250})
    assert ours.points() == list(dict.fromkeys(theirs.get_points()))
    assert ours.get_node_batch(keys) == [theirs.get_node(k) for k in keys]
    assert ours.weight("new-node:11300") == 250


# ---------------------------------------------------------------- libmemcached model


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


class LibmemcachedModel:
    """libmemcached 1.1.4 update_continuum with KETAMA_WEIGHTED, in Python
    (float32 arithmetic emulated; binary32 results of + - * / on float32
    inputs are exact after one rounding from double)."""

    def __init__(self, servers: list[tuple[str, int, int]]) -> None:
        total = sum(w for _, _, w in servers)
        n = len(servers)
        pts: list[tuple[int, int]] = []
        for idx, (host, port, w) in enumerate(servers):
            pct = f32(f32(w) / f32(total))
            x = f32(f32(f32(pct * 160.0) / 4.0) * f32(n))
            digests = math.floor(f32(x + 0.0000000001))
            for i in range(digests):
                s = f"{host}-{i}" if port == 11211 else f"{host}:{port}-{i}"
                for p in md5_points(s):
                    pts.append((p, idx))
        pts.sort()
        self.points = [p for p, _ in pts]
        self.owners = [o for _, o in pts]
        self.names = [f"{h}:{p}" for h, p, _ in servers]

    def get_node(self, key: str) -> str:
        h = md5_points(key)[0]
        i = bisect.bisect_left(self.points, h)
        return self.names[self.owners[0 if i == len(self.points) else i]]


@pytest.mark.parametrize("count", [1, 2, 25, 47, 50, 61, 100])
@pytest.mark.parametrize("weighted", [False, True])
def test_libmemcached_mode_matches_model(count: int, weighted: bool) -> None:
    seed = BASE_SEED * 7 + count * 2 + weighted
    r = random.Random(seed)
    servers = []
    for i in range(count):
        host = f"10.0.{i // 250}.{i % 250 + 1}" if r.random() < 0.5 else f"mc-{r.getrandbits(16):04x}-{i}"
        port = r.choice([11211, 11211, 11212, r.randrange(1, 65536)])
        servers.append((host, port, r.randint(1, 1000) if weighted else 1))
    ours = qk.KetamaRing(servers)
    model = LibmemcachedModel(servers)
    msg = f"seed={seed} count={count} weighted={weighted}"
    got_pts = ours.points()
    assert [p for p, _ in got_pts] == model.points, msg
    assert [n for _, n in got_pts] == [model.names[o] for o in model.owners], msg
    keys = random_keys(r, 2000)
    # Exact hits: "host-i" / "host:port-i" is point 0 of digest i.
    for host, port, _ in servers[:10]:
        keys += [f"{host}-{i}" if port == 11211 else f"{host}:{port}-{i}" for i in range(20)]
    assert ours.get_node_batch(keys) == [model.get_node(k) for k in keys], msg


def test_float32_point_counts_of_25_equal_servers() -> None:
    # libmemcached's float32 arithmetic gives 25 equal servers 156 points
    # each (39 digests), not 160.
    ring = qk.KetamaRing([f"s{i}" for i in range(25)])
    assert ring.point_count == 25 * 156
    assert qk.KetamaRing([f"s{i}" for i in range(25)], compat="uhashring").point_count == 25 * 160


# ---------------------------------------------------------------- sample vectors


def lmc_name(host: str, port: int) -> str:
    return host if port == 11211 else f"{host}:{port}"


def test_sample_vectors_both_modes() -> None:
    v = json.loads(VECTORS.read_text())
    checked = 0
    for cfg_name, cfg in v["configs"].items():
        srv = [(s["host"], s["port"], s["weight"]) for s in cfg["servers"]]
        lmc = qk.KetamaRing({lmc_name(h, p): w for h, p, w in srv})
        uh_lmc = qk.KetamaRing({lmc_name(h, p): w for h, p, w in srv}, compat="uhashring")
        uh_kt = qk.KetamaRing(srv, compat="uhashring")  # tuples: names are host:port
        for vec in cfg["vectors"]:
            key = vec["key"]
            ctx = f"{cfg_name} key {key!r}"
            assert qk.ketama_hash(key) == vec["md5_u32"], ctx
            assert lmc.get_node(key) == vec["libmemcached"], ctx
            assert uh_lmc.get_node(key) == vec["uhashring_lmc_names"], ctx
            assert uh_kt.get_node(key) == vec["uhashring_kt_names"], ctx
            checked += 1
    assert checked >= 600


# ---------------------------------------------------------------- misc


def test_key_hash_is_md5_prefix(rng: random.Random) -> None:
    assert qk.ketama_hash(b"a") == 0xB975C10C
    for k in random_keys(rng, 500):
        want = md5_points(k)[0]
        assert qk.ketama_hash(k) == want == qk.KetamaRing.key_hash(k) == qk.KetamaRing.key_hash(k.encode())


def test_ketama_shares_and_nodes() -> None:
    ring = qk.KetamaRing(["a:1", ("b", 2, 3), "c"], compat="uhashring")
    assert ring.nodes == ["a:1", "b:2", "c"] == list(ring)
    assert ring.compat == "uhashring"
    assert ring.weight("b:2") == 3
    shares = ring.shares()
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert shares["b:2"] > shares["a:1"]
    assert repr(ring) == f"KetamaRing(nodes=3, points={ring.point_count}, compat='uhashring')"
    assert len(ring) == 3 and "c" in ring and "d" not in ring
    for k in random_keys(random.Random(BASE_SEED), 500):
        got = ring.get_nodes(k, 3)
        assert got[0] == ring.get_node(k) and sorted(got) == sorted(ring.nodes)
    ring.set_weight("b:2", 1)
    assert ring.point_count == 3 * 160
