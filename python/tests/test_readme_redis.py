"""docs/leases.md's rewrite of the circulating SETNX lock runs as printed,
against a redis-server the `server` fixture starts."""

import pathlib
import re

import pytest

import quorumkit as qk

README = pathlib.Path(__file__).resolve().parents[2] / "docs" / "leases.md"


def snippet() -> str:
    m = re.search(r"<!-- redis-lock-rewrite -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert m, "the redis-lock-rewrite block is missing from docs/leases.md"
    return m.group(1)


def test_the_rewritten_setnx_lock_runs_and_is_safe(server):
    env = {"REDIS_URL": server.url}
    exec(compile(snippet(), "docs/leases.md:redis-lock-rewrite", "exec"), env)
    assert env["store"] == {"orders": "v1"}
    acquire, release, write = env["acquire_lock"], env["release_lock"], env["write"]
    table = env["table"]
    first = acquire("orders", "a", ttl=0.2)
    # The stalled holder's lease expires; the next holder writes...
    second = acquire("orders", "b", ttl=5, wait=5)
    assert second.token > first.token
    write(second, "orders", "v2", env["store"])
    # ...and the stalled one's late write and release are refused.
    with pytest.raises(qk.StaleTokenError):
        write(first, "orders", "stale", env["store"])
    with pytest.raises(qk.NotHolderError):
        release(first)
    assert env["store"]["orders"] == "v2"
    release(second)
    assert table.holders("orders") == []
