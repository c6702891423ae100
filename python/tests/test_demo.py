"""`make demo` stays true: examples/demo.py runs and every invariant it
checks holds (it exits non-zero otherwise)."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

DEMO = pathlib.Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_the_demo_runs_and_every_invariant_holds():
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        pytest.skip("redis-server is not installed (make sysdeps installs it)")
    run = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "all invariants hold" in run.stdout
    assert "[FAIL]" not in run.stdout
    assert "the paused holder's late write was fenced off" in run.stdout
