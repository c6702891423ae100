"""Every ```python block of docs/migrating.md and docs/migrating.zh-CN.md runs.

Markers on the line right before a fence (the doc-test runner's conventions):
``<!-- doc: skip -->`` -- not run (broken originals, shell lines);
``<!-- doc: redis -->`` -- needs Redis: a redis-server is started on a free
loopback port in a temp dir (the ``server`` fixture of conftest.py, stopped by
PID) and its URL is passed in the environment as ``QK_REDIS_URL``.
Every other python block must exit 0 on its own. The Chinese guide is a twin:
the same code blocks, with the same markers, in the same order.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REDIS

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "docs" / "migrating.md", ROOT / "docs" / "migrating.zh-CN.md"]
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")
MARKER = re.compile(r"^<!-- doc: (skip|redis) -->\s*$")
BLOCK_TIMEOUT = 30.0  # seconds per block; each should finish in well under 3


def blocks(path: pathlib.Path) -> list[tuple[str, str | None, str, int]]:
    """(language, marker, code, line number of the opening fence) per fenced block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        prev = MARKER.match(lines[i - 1]) if i > 0 else None
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{path.name}:{start + 1}: unclosed code fence"
        out.append((m.group(1), prev.group(1) if prev else None, "\n".join(body) + "\n", start + 1))
        i += 1
    return out


def python_cases():
    for path in GUIDES:
        if not path.exists():
            continue
        for lang, marker, code, line in blocks(path):
            if lang == "python" and marker != "skip":
                yield pytest.param(path, line, marker, code, id=f"{path.name}:{line}")


def test_both_guides_exist_and_have_python_blocks():
    for path in GUIDES:
        assert path.exists(), f"{path} is missing"
        runnable = [b for b in blocks(path) if b[0] == "python" and b[1] != "skip"]
        assert len(runnable) >= 6, f"{path.name}: only {len(runnable)} runnable python blocks"


def test_chinese_twin_has_the_same_code_blocks():
    en, zh = (blocks(p) for p in GUIDES)
    assert [(b[0], b[1], b[2]) for b in en] == [(b[0], b[1], b[2]) for b in zh], (
        "docs/migrating.zh-CN.md must carry exactly the code blocks (and markers) of docs/migrating.md"
    )


def test_markers_sit_on_a_fence():
    # A marker that is not directly followed by a fence would silently do nothing.
    for path in GUIDES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if line.startswith("<!-- doc:"):
                assert MARKER.match(line), f"{path.name}:{n + 1}: unknown marker {line!r}"
                assert n + 1 < len(lines) and FENCE.match(lines[n + 1]), f"{path.name}:{n + 1}: marker not before a fence"
                if line.strip() == "<!-- doc: redis -->":
                    assert lines[n + 1].strip() == "```python", f"{path.name}:{n + 1}: redis marker on a non-python block"


def run_block(code: str, where: str, tmp_path: pathlib.Path, env_extra: dict[str, str]) -> None:
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "QK_REDIS_URL"}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"{where} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )


@pytest.mark.parametrize(("path", "line", "marker", "code"), list(python_cases()))
def test_python_block_runs(path, line, marker, code, tmp_path, request):
    where = f"{path.relative_to(ROOT)}:{line}"
    if marker == "redis":
        if not os.path.exists(REDIS):
            pytest.skip("redis-server is not installed (make sysdeps installs it)")
        server = request.getfixturevalue("server")
        run_block(code, where, tmp_path, {"QK_REDIS_URL": server.url})
    else:
        run_block(code, where, tmp_path, {})


def c_cases():
    for path in GUIDES[:1]:  # the twin test keeps the Chinese guide's blocks identical
        for lang, marker, code, line in blocks(path):
            if lang == "c" and marker != "skip":
                yield pytest.param(line, code, id=f"{path.name}:{line}")


@pytest.mark.parametrize(("line", "code"), list(c_cases()))
def test_c_block_compiles_against_the_header(line, code, tmp_path):
    # Compiled (not linked: that needs a built library) against this checkout's header.
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "block.c"
    src.write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "include"), "-c", str(src), "-o", str(tmp_path / "block.o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"docs/migrating.md:{line} does not compile\n{proc.stderr}"
