"""Snapshots: to_bytes/from_bytes and pickle, the committed cross-face
fixtures (written by the Rust core, read by the C tests too), and corrupt,
truncated or random input raising the exact exception."""

from __future__ import annotations

import copy
import pickle
import random
import struct
import zlib
from pathlib import Path

import pytest

import quorumkit as qk
from conftest import BASE_SEED, random_keys

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "snapshot-v1"


def restored_fixtures() -> tuple[qk.HashRing, qk.KetamaRing]:
    ring = qk.HashRing.from_bytes((VECTORS / "hash_ring.qksn").read_bytes())
    ketama = qk.KetamaRing.from_bytes((VECTORS / "ketama.qksn").read_bytes())
    return ring, ketama


def test_fixtures_restore_to_recorded_placements() -> None:
    ring, ketama = restored_fixtures()
    assert ring.nodes == ["cache-a", "cache-b", "cache-ü", "10.0.0.7:6379"]
    assert ring.vnodes == 40 and ring.weight("10.0.0.7:6379") == 3
    assert ketama.compat == "libmemcached"
    checked = 0
    for line in (VECTORS / "placements.tsv").read_text("utf-8").splitlines():
        if line.startswith("#"):
            continue
        kind, key, node = line.split("\t")
        placement = ring if kind == "ring" else ketama
        assert placement.get_node(key) == node, line
        checked += 1
    assert checked == 128


def test_python_writes_the_same_bytes_as_rust_and_c() -> None:
    ring = qk.HashRing({"cache-a": 1, "cache-b": 2, "cache-ü": 1, "10.0.0.7:6379": 3}, vnodes=40)
    assert ring.to_bytes() == (VECTORS / "hash_ring.qksn").read_bytes()
    ketama = qk.KetamaRing({"10.0.0.1:11211": 1, "10.0.0.2:11212": 2, "[::1]:11300": 1})
    assert ketama.to_bytes() == (VECTORS / "ketama.qksn").read_bytes()


def test_documented_layout() -> None:
    data = qk.HashRing({"ab": 3}, vnodes=7).to_bytes()
    magic, version, kind, body_len = struct.unpack_from("<4sHHI", data)
    assert (magic, version, kind, body_len) == (b"QKSN", 1, 1, len(data) - 16)
    body = data[12:-4]
    assert body == struct.pack("<II", 7, 1) + struct.pack("<I", 2) + b"ab" + struct.pack("<I", 3)
    (crc,) = struct.unpack("<I", data[-4:])
    assert crc == zlib.crc32(data[:-4])


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_and_copy(proto: int) -> None:
    r = random.Random(BASE_SEED + proto)
    ring = qk.HashRing({f"n{i}": 1 + i % 3 for i in range(7)}, vnodes=33)
    ketama = qk.KetamaRing(["a:1", "b:2", ("c", 3, 2)], compat="uhashring")
    keys = random_keys(r, 300)
    for obj in (ring, ketama, copy.deepcopy(ring), copy.copy(ketama)):
        back = pickle.loads(pickle.dumps(obj, protocol=proto))
        assert type(back) is type(obj)
        assert back.nodes == obj.nodes
        assert back.get_node_batch(keys) == obj.get_node_batch(keys), f"seed {BASE_SEED + proto}"


def test_bytes_like_inputs() -> None:
    data = qk.HashRing(["a", "b"]).to_bytes()
    for form in (bytearray(data), memoryview(data)):
        assert qk.HashRing.from_bytes(form).nodes == ["a", "b"]
    assert len(qk.HashRing.from_bytes(qk.HashRing().to_bytes())) == 0


def raises(exc: type[BaseException], builtin: type[BaseException], data: object, cls: type = qk.HashRing) -> str:
    with pytest.raises(exc) as info:
        cls.from_bytes(data)  # type: ignore[attr-defined]
    assert type(info.value) is exc and isinstance(info.value, builtin)
    return str(info.value)


def test_bad_inputs() -> None:
    good = qk.HashRing({"a": 1, "b": 2}).to_bytes()
    C, V, I = qk.CorruptSnapshotError, qk.UnsupportedVersionError, qk.InvalidArgumentError
    assert issubclass(C, qk.QuorumkitError) and issubclass(V, qk.QuorumkitError)
    assert "truncated" in raises(C, ValueError, b"")
    assert "magic" in raises(C, ValueError, b"GIF89a" + good[6:])
    assert "trailing" in raises(C, ValueError, good + b"\0")
    flipped = bytearray(good)
    flipped[20] ^= 1
    assert "checksum" in raises(C, ValueError, bytes(flipped))
    v2 = bytearray(good)
    v2[4] = 2
    assert "version 2" in raises(V, ValueError, bytes(v2))
    # A valid snapshot of the other kind.
    assert "KetamaRing" in raises(I, ValueError, qk.KetamaRing(["h"]).to_bytes())
    assert "HashRing" in raises(I, ValueError, good, qk.KetamaRing)
    # Fields no encoder writes, behind a valid checksum.
    def framed(body: bytes) -> bytes:
        head = b"QKSN" + struct.pack("<HHI", 1, 1, len(body)) + body
        return head + struct.pack("<I", zlib.crc32(head))

    def node(name: bytes, weight: int) -> bytes:
        return struct.pack("<I", len(name)) + name + struct.pack("<I", weight)

    assert "UTF-8" in raises(C, ValueError, framed(struct.pack("<II", 4, 1) + node(b"\xff", 1)))
    assert "duplicate" in raises(C, ValueError, framed(struct.pack("<II", 4, 2) + node(b"a", 1) + node(b"a", 1)))
    assert "weight" in raises(C, ValueError, framed(struct.pack("<II", 4, 1) + node(b"a", 0)))
    for wrong in ("QKSN", 12, None, ["a"]):
        with pytest.raises(TypeError):
            qk.HashRing.from_bytes(wrong)  # type: ignore[arg-type]


def test_every_truncation_and_random_mutation() -> None:
    r = random.Random(BASE_SEED)
    good = qk.KetamaRing({"10.0.0.1": 1, "10.0.0.2:11300": 3}).to_bytes()
    for cut in range(len(good)):
        with pytest.raises(qk.CorruptSnapshotError):
            qk.KetamaRing.from_bytes(good[:cut])
    for i in range(2000):
        data = bytearray(good)
        for _ in range(r.randrange(1, 4)):
            data[r.randrange(len(data))] = r.randrange(256)
        if bytes(data) == good:
            continue
        with pytest.raises((qk.CorruptSnapshotError, qk.UnsupportedVersionError)):
            qk.KetamaRing.from_bytes(bytes(data))
    for i in range(500):
        noise = bytes(r.randrange(256) for _ in range(r.randrange(64)))
        with pytest.raises(qk.QuorumkitError):
            qk.HashRing.from_bytes(b"QKSN\x01\x00" + noise)


# ---------------------------------------------------------------- kinds 3 and 4


def test_rendezvous_and_maglev_fixtures() -> None:
    hrw = qk.RendezvousHash.from_bytes((VECTORS / "rendezvous.qksn").read_bytes())
    maglev = qk.Maglev.from_bytes((VECTORS / "maglev.qksn").read_bytes())
    assert hrw.nodes == ["cache-a", "cache-b", "cache-ü", "10.0.0.7:6379"]
    assert hrw.weight("cache-b") == 2.5 and hrw.weight("cache-ü") == 0.75
    assert maglev.table_size == 257 and maglev.weight("be-2") == 3
    checked = 0
    for line in (VECTORS / "placements-hrw-maglev.tsv").read_text("utf-8").splitlines():
        if line.startswith("#"):
            continue
        kind, key, node = line.split("\t")
        placement = hrw if kind == "rendezvous" else maglev
        assert placement.get_node(key) == node, line
        checked += 1
    assert checked == 128
    # Python writes the committed bytes too.
    again = qk.RendezvousHash({"cache-a": 1.0, "cache-b": 2.5, "cache-ü": 0.75, "10.0.0.7:6379": 1})
    assert again.to_bytes() == (VECTORS / "rendezvous.qksn").read_bytes()
    m = qk.Maglev({"be-1": 1, "be-2": 3, "be-ü": 1, "10.0.0.9:80": 2}, table_size=257)
    assert m.to_bytes() == (VECTORS / "maglev.qksn").read_bytes()


def test_rendezvous_and_maglev_layout() -> None:
    data = qk.RendezvousHash({"b": 0.1}).to_bytes()
    assert struct.unpack_from("<4sHHI", data) == (b"QKSN", 1, 3, len(data) - 16)
    assert data[12:-4] == struct.pack("<II", 1, 1) + b"b" + struct.pack("<d", 0.1)
    data = qk.Maglev({"x": 2}, table_size=7).to_bytes()
    assert struct.unpack_from("<4sHHI", data) == (b"QKSN", 1, 4, len(data) - 16)
    assert data[12:-4] == struct.pack("<III", 7, 1, 1) + b"x" + struct.pack("<I", 2)
    assert zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0]


@pytest.mark.parametrize("proto", [0, pickle.HIGHEST_PROTOCOL])
def test_rendezvous_and_maglev_pickle(proto: int) -> None:
    r = random.Random(BASE_SEED + 40 + proto)
    keys = random_keys(r, 300)
    hrw = qk.RendezvousHash({f"n{i}": 0.25 + i % 4 for i in range(9)})
    maglev = qk.Maglev({f"b{i}": 1 + i % 2 for i in range(6)}, table_size=1009)
    for obj in (hrw, maglev, copy.deepcopy(hrw), copy.copy(maglev)):
        back = pickle.loads(pickle.dumps(obj, protocol=proto))
        assert type(back) is type(obj) and back.nodes == obj.nodes
        assert back.get_node_batch(keys) == obj.get_node_batch(keys), f"seed {BASE_SEED + 40 + proto}"
        assert back.get_nodes(keys[0], 3) == obj.get_nodes(keys[0], 3)
    assert qk.Maglev.from_bytes(bytearray(maglev.to_bytes())).table_size == 1009
    assert len(qk.RendezvousHash.from_bytes(memoryview(qk.RendezvousHash().to_bytes()))) == 0


def test_rendezvous_and_maglev_bad_inputs() -> None:
    C, I = qk.CorruptSnapshotError, qk.InvalidArgumentError
    H, M = qk.RendezvousHash, qk.Maglev
    hrw, maglev = H(["a"]).to_bytes(), M(["a"], table_size=13).to_bytes()
    # Wrong kinds, every way round.
    assert "Maglev" in raises(I, ValueError, maglev, H)
    assert "Rendezvous" in raises(I, ValueError, hrw, M)
    assert "Rendezvous" in raises(I, ValueError, hrw, qk.HashRing)
    assert "HashRing" in raises(I, ValueError, qk.HashRing(["a"]).to_bytes(), M)

    def framed(kind: int, body: bytes) -> bytes:
        head = b"QKSN" + struct.pack("<HHI", 1, kind, len(body)) + body
        return head + struct.pack("<I", zlib.crc32(head))

    def hrw_body(weight: float) -> bytes:
        return struct.pack("<II", 1, 1) + b"a" + struct.pack("<d", weight)

    assert len(H.from_bytes(framed(3, hrw_body(0.5)))) == 1
    for w in (float("nan"), -1.0, 0.0, -0.0, float("inf")):
        assert "weight" in raises(C, ValueError, framed(3, hrw_body(w)), H), w

    def maglev_body(size: int, weight: int = 1) -> bytes:
        return struct.pack("<III", size, 1, 1) + b"a" + struct.pack("<I", weight)

    assert M.from_bytes(framed(4, maglev_body(13))).table_size == 13
    assert "prime" in raises(C, ValueError, framed(4, maglev_body(15)), M)
    assert "prime" in raises(C, ValueError, framed(4, maglev_body(1)), M)
    assert "limit" in raises(C, ValueError, framed(4, maglev_body(2**26 + 15)), M)
    assert "weight" in raises(C, ValueError, framed(4, maglev_body(13, 0)), M)
    assert "weights sum" in raises(C, ValueError, framed(4, maglev_body(13, 14)), M)
    for cls, good in ((H, hrw), (M, maglev)):
        for cut in range(len(good)):
            raises(C, ValueError, good[:cut], cls)
        with pytest.raises(TypeError):
            cls.from_bytes("QKSN")  # type: ignore[arg-type]


def _amplifying_snapshot() -> bytes:
    """60 bytes or fewer that declare a HashRing of 2**26 points (160 vnodes
    x weight 419,430): once 7.6 s and 1.8 GB to load."""
    import struct
    import zlib

    body = struct.pack("<III", 160, 1, 1) + b"a" + struct.pack("<I", 419_430)
    head = b"QKSN" + struct.pack("<HHI", 1, 1, len(body))
    data = head + body
    return data + struct.pack("<I", zlib.crc32(data))


def test_a_snapshot_asking_for_too_much_work_is_refused_quickly() -> None:
    import time

    data = _amplifying_snapshot()
    assert len(data) <= 60
    start = time.monotonic()
    with pytest.raises(qk.LimitExceededError, match="max_points") as info:
        qk.HashRing.from_bytes(data)
    assert isinstance(info.value, ValueError) and isinstance(info.value, qk.QuorumkitError)
    assert time.monotonic() - start < 0.5
    with pytest.raises(qk.LimitExceededError):
        qk.HashRing.from_bytes(data, max_points=1000)
    ring = qk.HashRing({"a": 2})
    blob = ring.to_bytes()
    with pytest.raises(qk.LimitExceededError):
        qk.HashRing.from_bytes(blob, max_points=319)
    assert len(qk.HashRing.from_bytes(blob, max_points=320)) == 1
    with pytest.raises(qk.InvalidArgumentError):
        qk.HashRing.from_bytes(blob, max_points=-1)
    with pytest.raises(TypeError):
        qk.HashRing.from_bytes(blob, max_points="many")  # type: ignore[arg-type]
    m = qk.Maglev({"a": 1}, table_size=13)
    with pytest.raises(qk.LimitExceededError):
        qk.Maglev.from_bytes(m.to_bytes(), max_points=12)
    assert qk.Maglev.from_bytes(m.to_bytes(), max_points=13).table_size == 13
