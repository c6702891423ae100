"""quorumkit.ring: the placement quality report, its CLI and its plot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from quorumkit import ring as qring


def run_cli(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "quorumkit.ring", *args], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cli_report_numbers_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "shares.png"
    algos = ["hash", "ketama-libmemcached", "ketama-uhashring", "md5-uhashring"]
    text = run_cli("report", "--nodes", "20", "--keys", "40000", "--algorithm", ",".join(algos), "--plot", str(png))
    blocks = text.split("algorithm ")[1:]
    assert [b.split(":")[0] for b in blocks] == algos
    for block in blocks:
        rows = re.findall(r"^node-\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", block, re.M)
        assert len(rows) == 20, block
        shares = [float(r[0]) for r in rows]
        assert abs(sum(shares) - 1) < 1e-4, block  # printed with 6 decimals
        assert abs(sum(float(r[2]) for r in rows) - 1) < 1e-4
        mm = float(re.search(r"max/mean ([\d.]+)", block).group(1))  # type: ignore[union-attr]
        assert abs(mm - max(shares) * 20) < 1e-3 and 1.0 < mm < 1.6
        add = float(re.search(r"moved on add\s+([\d.]+)%", block).group(1)) / 100  # type: ignore[union-attr]
        rem = float(re.search(r"moved on remove\s+([\d.]+)%", block).group(1)) / 100  # type: ignore[union-attr]
        # Consistent hashing moves about 1/n; ketama-libmemcached moves more
        # (its float32 point counts change with the server count) but far
        # less than a rehash, which would move ~(n-1)/n.
        assert 0.5 / 21 < add < (0.2 if "libmemcached" in block else 2 / 21), block
        assert 0.5 / 20 < rem < (0.2 if "libmemcached" in block else 2 / 20), block
        if "libmemcached" not in block:
            assert "only to the new node: yes" in block and "only from the removed node: yes" in block
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert f"plot: {png}" in text


def test_report_function_matches_the_rings() -> None:
    r = qring.report(8, "hash", keys=20_000, seed=7)
    ring = qring.ALGORITHMS["hash"](r.nodes)
    assert r.exact and r.shares == ring.shares()
    assert r.max_over_mean == pytest.approx(max(r.shares.values()) * 8)
    assert r.min_over_mean == pytest.approx(min(r.shares.values()) * 8)
    assert sum(r.measured.values()) == pytest.approx(1)
    assert r.ideal_add == 1 / 9 and r.ideal_remove == 1 / 8
    # Every key the removed node owned moves, and nothing else does.
    assert r.moved_on_remove == pytest.approx(r.measured["node-7"])
    assert "algorithm hash: 8 nodes, 20000 keys" in r.format()


def test_registry_is_extensible_and_measures_without_shares() -> None:
    class Modulo:
        """A rehash-everything placement with no exact shares."""

        def __init__(self, nodes: list[str]) -> None:
            self.nodes = nodes

        def get_node_batch(self, keys: list[str]) -> list[str]:
            return [self.nodes[int(k[4:], 16) % len(self.nodes)] for k in keys]

    qring.register("modulo", Modulo)
    try:
        r = qring.report(10, "modulo", keys=20_000)
        assert not r.exact and r.shares == r.measured
        assert r.moved_on_add > 0.8 and not r.only_to_new  # modulo moves nearly everything
    finally:
        del qring.ALGORITHMS["modulo"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        qring.report(10, "nope")
    with pytest.raises(ValueError, match="at least 2 nodes"):
        qring.report(1, "hash")
    with pytest.raises(ValueError, match="keys"):
        qring.report(3, "hash", keys=0)
    out = subprocess.run(
        [sys.executable, "-m", "quorumkit.ring", "report", "--algorithm", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown algorithm" in out.stderr


@pytest.mark.parametrize("algorithm", sorted(qring.ALGORITHMS))
def test_every_registered_algorithm(algorithm: str) -> None:
    r = qring.report(30, algorithm, keys=30_000, seed=11)
    assert sum(r.shares.values()) == pytest.approx(1) and sum(r.measured.values()) == pytest.approx(1)
    assert 1.0 <= r.max_over_mean < 1.6 and 0.4 < r.min_over_mean <= 1.0
    # Every algorithm here is consistent: far from a rehash's ~(n-1)/n.
    assert 0.3 / 31 < r.moved_on_add < 5 / 31 and 0.3 / 30 < r.moved_on_remove < 5 / 30
