"""Jump hash, RendezvousHash and Maglev: reference transcriptions of the
published algorithms, the jump-consistent-hash package, properties, and bad
inputs (exact exception class and its built-in base)."""

from __future__ import annotations

import math
import random
import struct

import jump
import pytest
import xxhash
from conftest import BASE_SEED, random_keys

import quorumkit as qk
from quorumkit import EmptyRingError, InvalidArgumentError, NodeExistsError, NodeNotFoundError

MASK64 = (1 << 64) - 1
MAGLEV_SKIP_SEED = 0x716B72696E670002


def raises(exc: type[BaseException], builtin: type[BaseException], fn, *args, **kwargs) -> BaseException:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert type(info.value) is exc, f"{type(info.value)} is not exactly {exc}"
    assert isinstance(info.value, builtin)
    return info.value


# ------------------------------------------------------------------ jump hash


def paper_jump(key: int, num_buckets: int) -> int:
    """Lamping & Veach 2014, Figure 1, transcribed: int64 b, j; uint64 key."""
    b, j = -1, 0
    key &= MASK64
    while j < num_buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def test_jump_matches_the_paper_and_the_jump_package() -> None:
    seed = BASE_SEED + 301
    r = random.Random(seed)
    for _ in range(3000):
        key = r.choice([r.getrandbits(64), r.getrandbits(20), -r.getrandbits(63)])
        n = r.choice([1, 2, 10, 1000, r.randrange(1, 1 << 31)])
        want = paper_jump(key, n)
        assert jump.hash(key, n) == want, f"seed={seed} {key} {n}"
        assert qk.jump_hash(key, n) == want, f"seed={seed} {key} {n}"
    # Fixed vectors, also in src/ring/jump.rs and tests/c/test_algos.c.
    assert qk.jump_hash(2**64 - 1, 1000) == 313
    assert qk.jump_hash(42, 1000) == 571
    assert qk.jump_hash(1, 2**31 - 1) == 262355607
    assert qk.jump_hash(True, 10) == paper_jump(1, 10)


def test_jump_byte_keys_are_hashed_first() -> None:
    for key in ["", "user:42", "ключ", b"\x00\xff"]:
        raw = key.encode() if isinstance(key, str) else key
        h = xxhash.xxh3_64_intdigest(raw, seed=qk.RING_SEED)
        assert qk.key_hash(key) == h
        assert qk.jump_hash(key, 977) == paper_jump(h, 977)
        assert qk.jump_hash(bytearray(raw), 977) == qk.jump_hash(memoryview(raw), 977) == paper_jump(h, 977)


def test_jump_batch_and_monotonicity(rng: random.Random) -> None:
    keys: list[int | str | bytes] = [rng.getrandbits(64) for _ in range(500)]
    keys += random_keys(rng, 500) + [b"raw", -5]
    assert qk.jump_hash_batch(keys, 1000) == [qk.jump_hash(k, 1000) for k in keys]
    assert qk.jump_hash_batch(iter(keys), 7) == [qk.jump_hash(k, 7) for k in keys]
    assert qk.jump_hash_batch([], 3) == []
    ints = [rng.getrandbits(64) for _ in range(5000)]
    for n in (1, 5, 50):
        before, after = qk.jump_hash_batch(ints, n), qk.jump_hash_batch(ints, n + 1)
        assert all(a == b or b == n for a, b in zip(before, after)), f"seed={BASE_SEED}"


@pytest.mark.parametrize("n", [0, -1, 2**32, 2**80])
def test_jump_bad_bucket_counts(n: int) -> None:
    raises(InvalidArgumentError, ValueError, qk.jump_hash, 1, n)
    raises(InvalidArgumentError, ValueError, qk.jump_hash, "k", n)
    raises(InvalidArgumentError, ValueError, qk.jump_hash_batch, [1, 2], n)


def test_jump_bad_keys_and_types() -> None:
    for key in (2**64, -(2**63) - 1, 2**100):
        raises(InvalidArgumentError, ValueError, qk.jump_hash, key, 10)
        raises(InvalidArgumentError, ValueError, qk.jump_hash_batch, [1, key], 10)
    assert qk.jump_hash(-(2**63), 10) == paper_jump(2**63, 10)
    for key in (1.5, None, object(), [1]):
        with pytest.raises(TypeError, match="key must be int, str"):
            qk.jump_hash(key, 10)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            qk.jump_hash_batch([key], 10)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        qk.jump_hash(1, 10.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.jump_hash_batch("abc", 10)
    with pytest.raises(TypeError):
        qk.jump_hash_batch(5, 10)  # type: ignore[arg-type]


# ---------------------------------------------------------------- rendezvous


def hrw_reference(nodes: dict[str, float], key: str | bytes) -> list[str]:
    """README's HRW spec, transcribed: names by descending score."""
    raw = key.encode() if isinstance(key, str) else key
    kh = xxhash.xxh3_64_intdigest(raw, seed=qk.RING_SEED)
    scored = []
    for name, w in nodes.items():
        nh = xxhash.xxh3_64_intdigest(name.encode(), seed=qk.RING_SEED)
        h = xxhash.xxh3_64_intdigest(struct.pack("<QQ", kh, nh), seed=qk.RING_SEED)
        u = (min(h >> 11, 2**53 - 2) + 0.5) / 2.0**53  # 2**53 - 1 would round to u = 1
        scored.append((-w / math.log(u), name))
    # Highest score first; equal scores: bytewise smaller name first.
    scored.sort(key=lambda t: (-t[0], t[1].encode()))
    return [name for _, name in scored]


def test_rendezvous_matches_the_spec() -> None:
    for case in range(6):
        seed = BASE_SEED + 310 + case
        r = random.Random(seed)
        nodes = {f"node-{r.getrandbits(24)}": r.choice([1.0, 2, 0.25, r.uniform(0.01, 50)]) for _ in range(r.randrange(1, 30))}
        h = qk.RendezvousHash(nodes)
        keys = random_keys(r, 300)
        for k in keys:
            ref = hrw_reference(nodes, k)
            assert h.get_node(k) == ref[0], f"seed={seed} key={k!r}"
            n = r.randrange(0, len(nodes) + 1)
            assert h.get_nodes(k, n) == ref[:n], f"seed={seed} key={k!r}"
        assert h.get_node_batch(keys) == [hrw_reference(nodes, k)[0] for k in keys], f"seed={seed}"
        total = sum(nodes.values())
        assert h.shares() == pytest.approx({n: w / total for n, w in nodes.items()})


def test_rendezvous_api_and_minimal_movement(rng: random.Random) -> None:
    h = qk.RendezvousHash(["a", "b", "c"])
    assert len(h) == 3 and "a" in h and "z" not in h and 5 not in h
    assert list(h) == h.nodes == ["a", "b", "c"]
    assert h.weight("a") == 1.0 and isinstance(h.weight("a"), float)
    assert repr(h) == "RendezvousHash(nodes=3)"
    assert repr(qk.RendezvousHash()) == "RendezvousHash(nodes=0)"
    h.add_node("d", 2.5)
    h.add_node("e")
    assert h.weight("d") == 2.5 and h.weight("e") == 1.0
    keys = random_keys(rng, 3000)
    before = h.get_node_batch(keys)
    h.remove_node("b")
    after = h.get_node_batch(keys)
    assert all(was == now for was, now in zip(before, after) if was != "b")
    assert "b" not in after
    h.add_node("b", 1)
    assert h.get_node_batch(keys) == before
    h.set_weight("d", 10)
    moved = [(b, a) for b, a in zip(before, h.get_node_batch(keys)) if a != b]
    assert moved and all(a == "d" for _, a in moved)
    # Shares are proportional to the weights (expected), and counts follow.
    big = qk.RendezvousHash({"x": 1.0, "y": 3.0})
    counts = big.get_node_batch(random_keys(rng, 20000)).count("y") / 20000
    assert abs(counts - 0.75) < 0.02, f"seed={BASE_SEED}"
    assert big.shares() == {"x": 0.25, "y": 0.75}


def test_rendezvous_bad_inputs() -> None:
    h = qk.RendezvousHash({"a": 1.0})
    for w in (0, 0.0, -1.0, math.nan, math.inf, -math.inf, 10**400):
        raises(InvalidArgumentError, ValueError, qk.RendezvousHash, {"x": w})
        raises(InvalidArgumentError, ValueError, h.add_node, "x", w)
        raises(InvalidArgumentError, ValueError, h.set_weight, "a", w)
    assert h.nodes == ["a"] and h.weight("a") == 1.0
    raises(NodeExistsError, ValueError, h.add_node, "a")
    raises(NodeExistsError, ValueError, qk.RendezvousHash, ["x", "x"])
    raises(NodeNotFoundError, KeyError, h.remove_node, "zz")
    raises(NodeNotFoundError, KeyError, h.set_weight, "zz", 1.0)
    raises(NodeNotFoundError, KeyError, h.weight, "zz")
    raises(InvalidArgumentError, ValueError, h.add_node, "")
    raises(InvalidArgumentError, ValueError, h.add_node, "a\0b")
    raises(InvalidArgumentError, ValueError, h.get_nodes, "k", 2)
    raises(InvalidArgumentError, ValueError, h.get_nodes, "k", -1)
    empty = qk.RendezvousHash()
    raises(EmptyRingError, LookupError, empty.get_node, "k")
    raises(EmptyRingError, LookupError, empty.get_node_batch, ["k"])
    with pytest.raises(TypeError):
        h.add_node("x", "1.0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        h.add_node(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        h.get_node(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.RendezvousHash("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.RendezvousHash({"a": None})  # type: ignore[dict-item]


# -------------------------------------------------------------------- Maglev


def maglev_reference(names: list[str], m: int) -> list[str]:
    """The paper's population pseudocode (NSDI 2016, section 3.4), weight 1,
    with the README's offset/skip hashes and backends in bytewise name order."""
    order = sorted(names, key=lambda n: n.encode())
    perm = []
    for n in order:
        offset = xxhash.xxh3_64_intdigest(n.encode(), seed=qk.RING_SEED) % m
        skip = xxhash.xxh3_64_intdigest(n.encode(), seed=MAGLEV_SKIP_SEED) % (m - 1) + 1
        perm.append([(offset + j * skip) % m for j in range(m)])
    nxt = [0] * len(order)
    entry: list[str | None] = [None] * m
    filled = 0
    while True:
        for i in range(len(order)):
            c = perm[i][nxt[i]]
            while entry[c] is not None:
                nxt[i] += 1
                c = perm[i][nxt[i]]
            entry[c] = order[i]
            nxt[i] += 1
            filled += 1
            if filled == m:
                return [e for e in entry if e is not None]


def test_maglev_matches_the_papers_pseudocode() -> None:
    for case, (m, count) in enumerate([(7, 3), (13, 12), (101, 10), (251, 40), (1009, 5)]):
        seed = BASE_SEED + 320 + case
        r = random.Random(seed)
        names = [f"be-{r.getrandbits(32)}" for _ in range(count)]
        table = maglev_reference(names, m)
        mg = qk.Maglev(names, table_size=m)
        keys = random_keys(r, 400)
        for k in keys:
            want = table[qk.key_hash(k) % m]
            assert mg.get_node(k) == want, f"seed={seed} M={m} key={k!r}"
        counts = {n: table.count(n) / m for n in names}
        assert mg.shares() == pytest.approx(counts), f"seed={seed}"


def test_maglev_balance_and_disruption(rng: random.Random) -> None:
    names = [f"backend-{i}" for i in range(100)]
    mg = qk.Maglev(names)
    assert mg.table_size == 65537 and len(mg) == 100
    shares = mg.shares()
    assert max(shares.values()) * 100 <= 1.01 and min(shares.values()) * 100 >= 0.99
    keys = random_keys(rng, 20000)
    before = mg.get_node_batch(keys)
    snapshot = qk.Maglev(names)
    assert mg.diff(snapshot) == 0.0
    moved = mg.remove_node("backend-42")
    assert moved == mg.diff(snapshot) == snapshot.diff(mg)
    assert 0.01 <= moved < 0.03
    after = mg.get_node_batch(keys)
    frac = sum(a != b for a, b in zip(before, after)) / len(keys)
    assert abs(frac - moved) < 0.01, f"seed={BASE_SEED}"
    assert "backend-42" not in after
    added = mg.add_node("backend-42")
    assert 0.01 <= added < 0.03 and mg.diff(snapshot) == 0.0
    assert mg.get_node_batch(keys) == before
    grown = mg.set_weight("backend-1", 5)
    assert grown > 0.03 and mg.weight("backend-1") == 5
    assert mg.shares()["backend-1"] == pytest.approx(5 / 104, abs=0.002)
    assert mg.set_weight("backend-1", 5) == 0.0


def test_maglev_api() -> None:
    mg = qk.Maglev({"a": 1, "b": 2}, table_size=101)
    assert repr(mg) == "Maglev(nodes=2, table_size=101)"
    assert list(mg) == mg.nodes == ["a", "b"] and "a" in mg and "c" not in mg and None not in mg
    assert mg.weight("b") == 2
    assert sorted(mg.get_nodes("k", 2)) == ["a", "b"] and mg.get_nodes("k", 1) == [mg.get_node("k")]
    assert mg.get_nodes("k", 0) == []
    keys = [f"k{i}" for i in range(100)]
    assert mg.get_node_batch(keys) == [mg.get_node(k) for k in keys]
    packed = b"".join(i.to_bytes(8, "little") for i in range(100))
    assert mg.get_node_batch(packed, key_size=8) == [mg.get_node(i.to_bytes(8, "little")) for i in range(100)]
    assert repr(qk.Maglev()) == "Maglev(nodes=0, table_size=65537)"
    assert qk.Maglev().add_node("x") == 1.0


def test_maglev_bad_inputs() -> None:
    for size in (0, 1, 4, 65536, 100, 2**31 - 1, -7, 2**40):
        raises(InvalidArgumentError, ValueError, qk.Maglev, table_size=size)
    mg = qk.Maglev(["a", "b"], table_size=7)
    for w in (0, -1, 2**32):
        raises(InvalidArgumentError, ValueError, mg.add_node, "x", w)
        raises(InvalidArgumentError, ValueError, mg.set_weight, "a", w)
        raises(InvalidArgumentError, ValueError, qk.Maglev, {"x": w})
    raises(InvalidArgumentError, ValueError, mg.add_node, "x", 6)  # weights sum > 7
    raises(InvalidArgumentError, ValueError, qk.Maglev, [str(i) for i in range(7)], table_size=7)
    raises(InvalidArgumentError, ValueError, mg.add_node, "")
    raises(NodeExistsError, ValueError, mg.add_node, "a")
    raises(NodeNotFoundError, KeyError, mg.remove_node, "zz")
    raises(NodeNotFoundError, KeyError, mg.set_weight, "zz", 1)
    raises(NodeNotFoundError, KeyError, mg.weight, "zz")
    raises(InvalidArgumentError, ValueError, mg.get_nodes, "k", 3)
    raises(InvalidArgumentError, ValueError, mg.diff, qk.Maglev())
    assert mg.nodes == ["a", "b"] and mg.weight("a") == 1
    raises(EmptyRingError, LookupError, qk.Maglev().get_node, "k")
    with pytest.raises(TypeError, match="other must be a Maglev"):
        mg.diff(qk.HashRing())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.Maglev(table_size=7.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mg.add_node("x", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mg.get_node(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        qk.Maglev(nodes=3)  # type: ignore[arg-type]


def test_jump_domain_against_the_package() -> None:
    # Where the package takes the input, both agree (boundaries included).
    for key in (0, 1, 2**63, 2**64 - 1, -1, -(2**63)):
        for n in (1, 2, 1000, 2**31 - 1):
            assert qk.jump_hash(key, n) == jump.hash(key, n), (key, n)
    # Wider keys: the package truncates to 64 bits (2**64 collides with 0); refused here.
    assert jump.hash(2**64, 10) == jump.hash(0, 10)
    with pytest.raises(qk.InvalidArgumentError):
        qk.jump_hash(2**64, 10)
    # 2**31 <= buckets < 2**32: the package overflows; taken here, and the
    # bucket of a key that stays below 2**31 is unchanged.
    with pytest.raises(OverflowError):
        jump.hash(5, 2**31)
    assert qk.jump_hash(5, 2**31) == qk.jump_hash(5, 2**31 - 1) == jump.hash(5, 2**31 - 1)
    assert 0 <= qk.jump_hash(7, 2**32 - 1) < 2**32 - 1
