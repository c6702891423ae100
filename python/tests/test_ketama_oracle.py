"""KetamaRing(compat="libmemcached") against libmemcached 1.1.4 itself.

A small C program (tests/oracle/lmc_oracle.c) links the real libmemcached,
adds the servers with memcached_server_add_with_weight() under
MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED and reports memcached_generate_hash() for
each key. Every configuration below is generated from one seed; each is
compared key by key with quorumkit.

Replay a failure with the seed and configuration named in its message:

    QK_ORACLE_SEED=<seed> pytest -q tests/test_ketama_oracle.py -k '<config>'

QK_ORACLE_KEYS scales the random keys per configuration (default 3000).
Without gcc or libmemcached's headers the tests skip locally and fail under
CI (``CI`` set); `make sysdeps` installs libmemcached-dev.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import pytest

import quorumkit as qk

REPO = Path(__file__).resolve().parents[2]
ORACLE_SRC = REPO / "tests" / "oracle" / "lmc_oracle.c"

SEED = int(os.environ.get("QK_ORACLE_SEED", "20261101"), 0)
KEYS_PER_CONFIG = int(os.environ.get("QK_ORACLE_KEYS", "3000"))
DEFAULT_PORT = 11211

Key = Union[str, bytes]
Server = tuple[str, int, int]  # (host, port, weight)

# Vectors compared, by test, for the closing summary.
COMPARED: dict[str, int] = {}


# ------------------------------------------------------------------ the oracle


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[Server], list[Key]], list[int]]:
    """Compiles the oracle once; returns run(servers, keys) -> server indices."""

    def unavailable(why: str) -> None:
        msg = f"libmemcached oracle unavailable: {why} (run `make sysdeps` for libmemcached-dev)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)

    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        unavailable(f"no C compiler {cc!r} on PATH")
    exe = tmp_path_factory.mktemp("oracle") / "lmc_oracle"
    build = subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-o", str(exe), str(ORACLE_SRC), "-lmemcached"],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        if "memcached" in build.stderr:
            unavailable(f"{cc} could not find libmemcached:\n{build.stderr.strip()}")
        pytest.fail(f"the oracle does not compile:\n{build.stderr}")

    def run(servers: list[Server], keys: list[Key]) -> list[int]:
        assert len(servers) <= ORACLE_MAX_SERVERS, "libmemcached aborts beyond 100 servers"
        lines = [f"server {h.encode().hex() or '-'} {p} {w}" for h, p, w in servers]
        lines += [f"key {as_bytes(k).hex() or '-'}" for k in keys]
        proc = subprocess.run(
            [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True
        )
        assert proc.returncode == 0, f"oracle failed: {proc.stderr}"
        out = proc.stdout.splitlines()
        listing, answers = out[: len(servers)], out[len(servers) :]
        # libmemcached kept the servers in our order, with our hosts and ports.
        for i, (line, (h, p, _)) in enumerate(zip(listing, servers)):
            assert line == f"server {i} {p} {h.encode().hex()}", (line, h, p)
        assert len(answers) == len(keys)
        return [int(a) for a in answers]

    return run


def as_bytes(k: Key) -> bytes:
    return k.encode() if isinstance(k, str) else bytes(k)


# ------------------------------------------------------- libmemcached's rules


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def lmc_digests(weight: int, total: int, count: int) -> int:
    """MD5 digests (4 points each) per server, as hosts.cc computes them in float32."""
    pct = f32(f32(weight) / f32(total))
    x = f32(f32(f32(pct * 160.0) / 4.0) * f32(count))
    return int(f32(x + 0.0000000001) // 1)


def server_string(host: str, port: int) -> str:
    """libmemcached's prefix of a server's point strings."""
    return host if port == DEFAULT_PORT else f"{host}:{port}"


def md5_points(s: str) -> list[int]:
    d = hashlib.md5(s.encode()).digest()
    return list(struct.unpack("<4I", d))


# ------------------------------------------------------------ configurations


@dataclass
class Config:
    name: str
    servers: list[Server]
    form: str = "tuple"  # how KetamaRing receives them: tuple | spec | mapping
    extra_keys: list[Key] = field(default_factory=list)

    def ring_input_and_names(self) -> tuple[object, list[str]]:
        if self.form == "tuple":
            return list(self.servers), [f"{h}:{p}" for h, p, _ in self.servers]
        specs = []
        for h, p, _ in self.servers:
            host = f"[{h}]" if ":" in h else h
            # Port 11211 is sometimes left out, sometimes spelled out.
            if p == DEFAULT_PORT and (len(specs) % 2 == 0):
                specs.append(host)
            else:
                specs.append(f"{host}:{p}")
        if self.form == "spec":
            assert all(w == 1 for _, _, w in self.servers)
            return specs, specs
        return {s: w for s, (_, _, w) in zip(specs, self.servers)}, specs


# libmemcached 1.1.4 aborts on an assertion in update_continuum (hosts.cc:
# "memcached_server_count(ptr) * MEMCACHED_POINTS_PER_SERVER <=
# MEMCACHED_CONTINUUM_SIZE") with more than 100 ketama servers, so 100 is
# the largest ring the oracle can check.
ORACLE_MAX_SERVERS = 100
COUNTS = [1, 2, 3, 5, 8, 13, 25, 47, 50, 61, 100]
# skew: weights far apart, so small servers get few or no points at all.
WEIGHTS = ["equal1", "equalK", "w10", "w1000", "skew"]
PORTS = ["default", "other", "mixed"]
HOSTS = ["ipv4", "dns", "ipv6", "samehost"]
FORMS = ["tuple", "tuple", "spec", "mapping"]


def make_servers(rng: random.Random, n: int, weights: str, ports: str, hosts: str) -> list[Server]:
    zone = rng.choice(["example.com", "cache.internal", "svc.cluster.local", "a.b.example"])
    stem = rng.choice(["cache", "mc", "memcache", "node", "Cache_A", "kæsh"])
    k = rng.randint(2, 1000)
    used: set[tuple[str, int]] = set()
    out: list[Server] = []
    while len(out) < n:
        i = len(out)
        if hosts == "ipv4":
            host = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        elif hosts == "dns":
            host = f"{stem}-{i}.{rng.choice(['eu', 'us-east-1', 'ap'])}.{zone}"
        elif hosts == "ipv6":
            host = f"2001:db8::{rng.randrange(1, 0xFFFF):x}"
        else:
            host = "127.0.0.1"
        if ports == "default" and hosts != "samehost":
            port = DEFAULT_PORT
        elif ports == "mixed" and rng.random() < 0.5:
            port = DEFAULT_PORT
        else:
            port = rng.choice([11212, 11213, 11311, 21211, 1, 80, 65535, rng.randrange(1, 65536)])
        if (host, port) in used:
            continue
        used.add((host, port))
        w = {
            "equal1": 1,
            "equalK": k,
            "w10": rng.randint(1, 10),
            "w1000": rng.randint(1, 1000),
            "skew": rng.choice([1, 2, 1000, 100_000, 1_000_000, 2**32 - 1]),
        }[weights]
        out.append((host, port, w))
    return out


def config_rng(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def generated_configs() -> list[str]:
    names = []
    for n in COUNTS:
        for wi, weights in enumerate(WEIGHTS):
            for pi, ports in enumerate(PORTS):
                hosts = HOSTS[(wi + pi + n) % len(HOSTS)]
                form = FORMS[(wi * 3 + pi + n) % len(FORMS)]
                if form == "spec" and weights != "equal1":
                    form = "mapping"
                names.append(f"n{n}-{weights}-{ports}-{hosts}-{form}")
    return names


def build_config(name: str) -> Config:
    n, weights, ports, hosts, form = name.split("-")
    rng = config_rng(name)
    return Config(name, make_servers(rng, int(n[1:]), weights, ports, hosts), form)


# ---------------------------------------------------------------------- keys

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_/. "
UNICODE = "üéßñ中文日本語ключкэшπλ😀🔑\u00a0\u200d"


def random_keys(rng: random.Random, count: int) -> list[Key]:
    keys: list[Key] = ["", b"", "a", b"\x00", b"\xff" * 4]
    while len(keys) < count:
        kind = rng.randrange(5)
        if kind == 0:
            keys.append(f"user:{rng.randrange(10**9)}")
        elif kind == 1:
            keys.append("".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 40))))
        elif kind == 2:
            keys.append("".join(rng.choice(ALPHABET + UNICODE) for _ in range(rng.randrange(1, 20))))
        elif kind == 3:
            keys.append(rng.randbytes(rng.randrange(0, 64)))
        else:
            keys.append(rng.randbytes(rng.randrange(200, 600)))
    return keys


def point_keys(rng: random.Random, servers: list[Server], per_server_limit: int = 40) -> list[Key]:
    """Keys that hash exactly onto points: MD5(key)[0:4] of the key "host-i"
    (or "host:port-i") is the first point of that server's i-th digest. Takes
    i at the edge of the float32 point count (last digest, first missing one)."""
    total = sum(w for _, _, w in servers)
    chosen = servers if len(servers) <= per_server_limit else rng.sample(servers, per_server_limit)
    keys: list[Key] = []
    for h, p, w in chosen:
        c = lmc_digests(w, total, len(servers))
        idx = {0, 1, c - 1, c, c + 1, rng.randrange(max(c, 1))}
        keys += [f"{server_string(h, p)}-{i}" for i in sorted(idx) if i >= 0]
    return keys


# --------------------------------------------------------------- comparisons


def compare(oracle, cfg: Config, keys: list[Key]) -> int:
    arg, names = cfg.ring_input_and_names()
    ring = qk.KetamaRing(arg, compat="libmemcached")
    replay = f"seed={SEED} config={cfg.name} (QK_ORACLE_SEED={SEED} pytest -k '{cfg.name}')"
    assert ring.nodes == names, replay
    want = [names[i] for i in oracle(cfg.servers, keys)]
    got = [ring.get_node(k) for k in keys]
    batch = ring.get_node_batch(keys)
    bad = [(k, g, w) for k, g, w in zip(keys, got, want) if g != w]
    if bad:
        k, g, w = bad[0]
        pytest.fail(
            f"{len(bad)}/{len(keys)} keys differ from libmemcached; {replay}\n"
            f"servers={cfg.servers!r}\nfirst: key={k!r} ketama_hash={qk.ketama_hash(k)} "
            f"quorumkit={g!r} libmemcached={w!r}"
        )
    assert batch == got, f"get_node_batch disagrees with get_node; {replay}"
    COMPARED[cfg.name] = len(keys)
    return len(keys)


@pytest.mark.parametrize("name", generated_configs())
def test_matches_libmemcached(oracle, name: str) -> None:
    cfg = build_config(name)
    rng = config_rng(name + ":keys")
    keys = random_keys(rng, KEYS_PER_CONFIG) + point_keys(rng, cfg.servers)
    compare(oracle, cfg, keys)


def test_sample_vectors_file(oracle) -> None:
    """The committed sample (tests/vectors/ketama-sample.json) through both."""
    import json

    data = json.loads((REPO / "tests" / "vectors" / "ketama-sample.json").read_text())
    for cname, c in data["configs"].items():
        servers = [(s["host"], s["port"], s["weight"]) for s in c["servers"]]
        keys = [v["key"] for v in c["vectors"]]
        cfg = Config(f"sample-{cname}", servers)
        idx = oracle(servers, keys)
        for v, i in zip(c["vectors"], idx):
            assert server_string(*servers[i][:2]) == v["libmemcached"], (cname, v)
        compare(oracle, cfg, keys)


@pytest.mark.parametrize("n", [25, 47, 50, 61, 100])
def test_float32_point_counts(oracle, n: int) -> None:
    """libmemcached computes points per server in float32: 25 equal servers
    get 156 points each, not 160. The last digest's key must land on its own
    server and the first missing digest's key must not be a point of it."""
    rng = config_rng(f"float32-{n}")
    cfg = Config(f"float32-n{n}", make_servers(rng, n, "equal1", "default", "dns"))
    c = lmc_digests(1, n, n)
    if n == 25:
        assert c * 4 == 156
    ring = qk.KetamaRing(cfg.servers, compat="libmemcached")
    assert ring.point_count == n * c * 4, f"expected {c} digests per server; {ring!r}"
    last = [f"{h}-{c - 1}" for h, _, _ in cfg.servers]
    idx = oracle(cfg.servers, last)
    # Each "host-(c-1)" is a point of that host (a tie could only favour a lower index).
    assert all(i <= s for s, i in enumerate(idx)), idx
    own = sum(i == s for s, i in enumerate(idx))
    assert own >= n - 1, (own, n)
    compare(oracle, cfg, last + [f"{h}-{c}" for h, _, _ in cfg.servers])


# -------------------------------------------------------------------- ties


def find_tie(seed: int, max_hosts: int = 40_000) -> tuple[str, str, str]:
    """Two host names (port 11211, 40 digests each, as in a 2- or 3-server
    equal ring) that share an equal 32-bit point, where that point is the
    first u32 of some "host-i" digest: that string is then a key hashing
    exactly onto the tie. Returns (host, host, key). Seeded and bounded;
    about 1,000 candidates are expected."""
    rng = random.Random(seed)
    first: dict[int, tuple[str, str]] = {}  # alignment-0 point -> (host, "host-i")
    every: dict[int, str] = {}  # any point -> host
    for _ in range(max_hosts):
        host = f"tie{rng.randrange(10**12)}.example"
        pts = [(md5_points(f"{host}-{i}"), f"{host}-{i}") for i in range(40)]
        for p, key in pts:
            if every.get(p[0], host) != host:
                return every[p[0]], host, key
            for v in p:
                if v in first and first[v][0] != host:
                    return first[v][0], host, first[v][1]
        for p, key in pts:
            first.setdefault(p[0], (host, key))
            for v in p:
                every.setdefault(v, host)
    raise AssertionError(f"no tie within {max_hosts} hosts (seed {seed})")


def test_equal_points_prefer_lower_index(oracle) -> None:
    a, b, key = find_tie(SEED)
    tie = qk.ketama_hash(key)
    assert tie in {v for i in range(40) for v in md5_points(f"{a}-{i}")}
    assert tie in {v for i in range(40) for v in md5_points(f"{b}-{i}")}
    rng = config_rng("ties")
    other = "tie-other.example"
    total = 0
    for order in ([a, b], [b, a], [a, other, b], [b, other, a]):
        servers = [(h, DEFAULT_PORT, 1) for h in order]
        assert all(lmc_digests(1, len(servers), len(servers)) == 40 for _ in servers)
        cfg = Config(f"tie-{'-'.join(order)}", servers)
        idx = oracle(servers, [key])
        assert idx == [0], f"libmemcached breaks the tie at {tie} by lower index: {order}"
        total += compare(oracle, cfg, [key] + random_keys(rng, 200))
        ring = qk.KetamaRing(servers, compat="libmemcached")
        assert ring.get_node(key) == f"{order[0]}:{DEFAULT_PORT}"
    assert total > 0


# -------------------------------------------------------- unusual servers


def test_unusual_hosts(oracle) -> None:
    """Host names libmemcached accepts as they are: the longest (1024 bytes),
    upper case, underscores, UTF-8, spaces, a socket-like path, IPv6."""
    rng = config_rng("unusual")
    servers: list[Server] = [
        ("h" * 1024, DEFAULT_PORT, 3),
        ("H" * 1018 + ".local", 11212, 2),
        ("MixedCase.Example.COM", DEFAULT_PORT, 1),
        ("under_score.example", 11213, 5),
        ("kæsh-ключ.example", DEFAULT_PORT, 2),
        ("with space", 11214, 1),
        ("/var/run/memcached.sock", 11215, 1),
        ("::1", 11216, 1),
        ("fe80::1%eth0", DEFAULT_PORT, 1),
        ("localhost", DEFAULT_PORT, 7),
    ]
    cfg = Config("unusual-hosts", servers)
    keys = random_keys(rng, KEYS_PER_CONFIG) + point_keys(rng, servers)
    compare(oracle, cfg, keys)


def test_port_zero(oracle) -> None:
    servers: list[Server] = [("alpha", 0, 1), ("beta", 11212, 1), ("gamma", DEFAULT_PORT, 1)]
    # libmemcached stores port 0 as 11211: its points are "alpha-i".
    ring = qk.KetamaRing(servers, compat="libmemcached")
    keys = [f"alpha-{i}" for i in range(40)] + random_keys(config_rng("port0"), 500)
    # The oracle checks its listing against what it was given: give it the
    # port libmemcached stores for 0.
    idx = oracle([(h, p or DEFAULT_PORT, w) for h, p, w in servers], keys)
    want = [ring.nodes[i] for i in idx]
    got = [ring.get_node(k) for k in keys]
    assert got == want


# ------------------------------------------------------------------ summary


def test_zz_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last (file order): how many vectors were compared."""
    total = sum(COMPARED.values())
    with capsys.disabled():
        print(
            f"\n[ketama oracle] seed={SEED}: {total} keys compared with libmemcached "
            f"1.1.4 over {len(COMPARED)} configurations"
        )
    if COMPARED:
        assert total > 0
