"""Shared helpers for the quorumkit Python tests."""

from __future__ import annotations

import os
import random

import pytest

# Every randomized test derives its seeds from this base; override with
# QK_TEST_SEED=<int> to replay a failure (the seed is in every assert message).
BASE_SEED = int(os.environ.get("QK_TEST_SEED", "20261124"))


@pytest.fixture
def rng() -> random.Random:
    return random.Random(BASE_SEED)


def random_keys(r: random.Random, n: int) -> list[str]:
    """A mix of short, long, unicode and numeric keys."""
    out = []
    for i in range(n):
        kind = r.randrange(4)
        if kind == 0:
            out.append(f"key-{r.getrandbits(32)}")
        elif kind == 1:
            out.append(str(r.getrandbits(64)))
        elif kind == 2:
            out.append("".join(chr(r.choice([r.randrange(32, 127), r.randrange(0xA0, 0x3000)])) for _ in range(r.randrange(1, 12))))
        else:
            out.append(f"user:{i}:" + "x" * r.randrange(0, 80))
    return out
