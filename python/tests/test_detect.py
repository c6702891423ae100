"""qk.FailureDetector: φ values worked out by hand (the arithmetic is in
src/detect/tests.rs and repeated briefly here), registry behaviour, and bad
inputs raising the exact quorumkit class that is also the matching built-in."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest

import quorumkit as qk
from quorumkit import (
    FailureDetector,
    InvalidArgumentError,
    NodeNotFoundError,
    NonMonotonicTimeError,
    QuorumkitError,
)

LOG10_2 = 0.3010299956639812


def raises(exc: type[BaseException], builtin: type[BaseException], fn: Callable[..., Any], *args: Any, **kw: Any) -> BaseException:
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert type(info.value) is exc, f"{type(info.value)} is not exactly {exc}"
    assert isinstance(info.value, builtin)
    return info.value


def test_hierarchy() -> None:
    assert issubclass(NonMonotonicTimeError, QuorumkitError)
    assert issubclass(NonMonotonicTimeError, ValueError)
    assert qk.NonMonotonicTimeError is NonMonotonicTimeError


def test_defaults_and_repr() -> None:
    d = FailureDetector()
    assert d.threshold == 8.0
    assert d.max_samples == 1000
    assert d.min_std_dev == 0.1
    assert d.acceptable_pause == 3.0
    assert d.first_heartbeat_estimate == 1.0
    assert repr(d) == (
        "FailureDetector(threshold=8, max_samples=1000, min_std_dev=0.1, "
        "acceptable_pause=3, first_heartbeat_estimate=1, nodes=0)"
    )
    d2 = FailureDetector(threshold=5, max_samples=10, min_std_dev=0.2, acceptable_pause=0, first_heartbeat_estimate=0.5)
    assert (d2.threshold, d2.max_samples, d2.min_std_dev, d2.acceptable_pause, d2.first_heartbeat_estimate) == (
        5.0, 10, 0.2, 0.0, 0.5,
    )


def test_first_heartbeat_uses_the_estimate() -> None:
    d = FailureDetector()
    d.heartbeat("a", 100.0)
    # Seeds 0.75 s and 1.25 s: mean 1, std 0.25; mean' = 1 + 3 = 4 s.
    assert d.intervals("a") == [0.75, 1.25]
    assert d.phi("a", 104.0) == pytest.approx(LOG10_2, abs=1e-9)  # y = 0
    assert d.phi("a", 104.5) == pytest.approx(1.6428278854871123, abs=1e-9)  # y = 2
    assert d.phi("a", 105.0) == pytest.approx(4.736694582705181, abs=1e-9)  # y = 4
    assert d.phi("a", 100.0) == 0.0


def test_regular_series_crosses_the_threshold() -> None:
    d = FailureDetector()
    for i in range(10):
        d.heartbeat("a", float(i))
    # n = 11, mean 1 s, variance 0.125/11, std 0.1066004; mean' = 4 s.
    last = 9.0
    assert d.phi("a", last + 1.0) == 0.0
    assert d.phi("a", last + 4.2) == pytest.approx(1.5175254409299836, abs=1e-6)
    # φ = 8 at Δt = 4 + 5.2259866 · 0.1066004 = 4.5570920 s.
    assert d.is_available("a", last + 4.555)
    assert not d.is_available("a", last + 4.559)
    assert d.phi("a", last + 4.5570920) == pytest.approx(8.0, abs=1e-3)
    assert d.phi("a", 1e9) == math.inf


def test_jittery_series_and_pause() -> None:
    d = FailureDetector()
    t = 0.0
    d.heartbeat("j", t)
    for iv in (0.9, 1.2, 0.8, 1.1):
        t += iv
        d.heartbeat("j", t)
    # Window 0.75 1.25 0.9 1.2 0.8 1.1: mean 1, variance 0.225/6 = 0.0375,
    # std 0.1936492. Δt = 4.5 s: y = 2.581989, φ = 2.3210618.
    assert d.phi("j", t + 4.5) == pytest.approx(2.3210618289889147, abs=1e-6)
    before = d.intervals("j")
    # A 20 s pause: unavailable; the late heartbeat is not learned.
    assert not d.is_available("j", t + 20)
    d.heartbeat("j", t + 20)
    assert d.intervals("j") == before
    assert d.is_available("j", t + 21)


def test_window_eviction() -> None:
    d = FailureDetector(max_samples=4)
    for i in range(5):
        d.heartbeat("a", float(i))
    assert d.intervals("a") == [1.0, 1.0, 1.0, 1.0]
    # Variance 0: std = the 0.1 floor; Δt = 4.3 s: y = 3, φ = 2.9094753.
    assert d.phi("a", 4 + 4.3) == pytest.approx(2.9094753264849538, abs=1e-6)


def test_registry() -> None:
    d = FailureDetector()
    d.heartbeat("b", 0)
    d.heartbeat("a", 5)
    assert len(d) == 2
    assert list(d) == ["a", "b"] == d.nodes()
    assert "a" in d and "zz" not in d and 3 not in d
    d.remove("b")
    assert list(d) == ["a"]
    assert repr(d).endswith("nodes=1)")
    e = raises(NodeNotFoundError, KeyError, d.remove, "b")
    assert "b" in str(e)


def test_bad_inputs() -> None:
    d = FailureDetector()
    raises(NodeNotFoundError, KeyError, d.phi, "x", 0.0)
    raises(NodeNotFoundError, KeyError, d.is_available, "x", 0.0)
    raises(NodeNotFoundError, KeyError, d.intervals, "x")
    d.heartbeat("a", 10.0)
    # Out of order is not an error (concurrent callers): absorbed / phi at
    # the latest heartbeat.
    d.heartbeat("a", 9.0)
    d.heartbeat("a", 10.0)
    assert d.phi("a", 9.0) == d.phi("a", 10.0) == 0.0
    fresh = FailureDetector()
    fresh.heartbeat("a", 10.0)
    assert d.phi("a", 14.0) == fresh.phi("a", 14.0) > 0.0  # as if 9.0 never came
    assert d.is_available("a", 9.0) is True
    assert d.intervals("a") == [0.75, 1.25]
    for bad_now in (-1.0, math.nan, math.inf, 1e300):
        raises(InvalidArgumentError, ValueError, d.heartbeat, "a", bad_now)
        raises(InvalidArgumentError, ValueError, d.phi, "a", bad_now)
    for bad_type in ("1", None, True):
        with pytest.raises(TypeError):
            d.heartbeat("a", bad_type)
    with pytest.raises(TypeError):
        d.phi(b"a", 11.0)
    with pytest.raises(TypeError):
        d.remove(1)
    # Lone surrogates cannot be a node name.
    with pytest.raises(UnicodeEncodeError):
        d.heartbeat("\ud800", 1.0)


@pytest.mark.parametrize(
    "kw",
    [
        {"threshold": 0},
        {"threshold": -1.0},
        {"threshold": math.nan},
        {"threshold": math.inf},
        {"max_samples": 0},
        {"max_samples": 65537},
        {"max_samples": -1},
        {"min_std_dev": 0},
        {"min_std_dev": -0.1},
        {"acceptable_pause": -1},
        {"acceptable_pause": math.nan},
        {"first_heartbeat_estimate": 0.0},
        {"first_heartbeat_estimate": math.inf},
    ],
)
def test_bad_config(kw: dict[str, Any]) -> None:
    raises(InvalidArgumentError, ValueError, FailureDetector, **kw)


def test_bad_config_types() -> None:
    for kw in ({"threshold": "8"}, {"max_samples": 10.0}, {"min_std_dev": "0.1"}, {"acceptable_pause": True}):
        with pytest.raises(TypeError):
            FailureDetector(**kw)  # type: ignore[arg-type]


def test_many_threads_with_one_clock_never_raise() -> None:
    """Each thread reads the clock, then calls: another thread's later
    reading often lands first. Before, that raised NonMonotonicTimeError
    (203 queries and 115 of 6.9 M heartbeats in one run)."""
    import threading
    import time

    d = FailureDetector()
    errors: list[BaseException] = []
    worst = [0.0]

    def beat() -> None:
        try:
            for _ in range(5000):
                now = time.monotonic()
                d.heartbeat("peer", now)
                phi = d.phi("peer", time.monotonic() if _ % 2 else now)
                worst[0] = max(worst[0], phi)
                assert d.is_available("peer", now)
        except BaseException as e:  # noqa: BLE001 - collected and re-raised
            errors.append(e)

    threads = [threading.Thread(target=beat) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert 0.0 <= worst[0] < 1.0


def test_settings_outside_the_usable_range_are_refused_not_altered() -> None:
    day = 86400.0
    # 2**55 ns (about 417 days) is the largest interval kept exactly.
    top = 2**55 / 1e9
    FailureDetector(first_heartbeat_estimate=top)
    for bad in (top * 1.001, 418 * day):
        e = raises(InvalidArgumentError, ValueError, FailureDetector, first_heartbeat_estimate=bad)
        assert "first_heartbeat_estimate" in str(e)
    raises(InvalidArgumentError, ValueError, FailureDetector, acceptable_pause=top * 1.001)
    # A positive duration below 1 ns is refused, not rounded up to 1 ns.
    for bad in (1e-12, 4e-10):
        raises(InvalidArgumentError, ValueError, FailureDetector, min_std_dev=bad)
        raises(InvalidArgumentError, ValueError, qk.PaxosNode, 1, [1], heartbeat_interval=bad)
    # A Paxos heartbeat below 1 ms would make a driver spin.
    e = raises(InvalidArgumentError, ValueError, qk.PaxosNode, 1, [1], heartbeat_interval=0.0009)
    assert "1 ms" in str(e)
    qk.PaxosNode(1, [1], heartbeat_interval=0.001)
    d = FailureDetector(first_heartbeat_estimate=top)
    d.heartbeat("a", 0.0)
    assert d.is_available("a", top / 2)
