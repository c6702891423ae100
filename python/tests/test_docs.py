"""Every code block of the front pages and the guides in docs/ runs: Python
blocks as programs of their own, C blocks compiled against include/ and the
built library and run; Rust blocks run as doc tests (src/lib.rs includes
the READMEs under cfg(doctest)). docs/migrating*.md have their own runner
(test_migrating_docs.py), with the same markers.

Markers, on the line right before a fence:
  <!-- doc: skip -->   not run (install commands, event-loop fragments whose calls a named
                       test runs end to end)
  <!-- doc: redis -->  a Python block that needs Redis: it gets a fresh server's URL in
                       the environment variable QK_REDIS_URL
A fence in another language with no marker fails the test, so nothing slips through."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FILES = ["README.md", "README.zh-CN.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md") if not p.name.startswith("migrating")
)
RUN = {"python", "c", "rust", "text"}  # rust: doc tests; text: listings, nothing to run

# A block right after `<!-- snippet: PATH ... -->` or `<!-- redis-lock-rewrite -->` is run
# by its own test (scripts/ffi_snippets_test.sh, python/tests/test_readme_redis.py).
FENCE = re.compile(
    r"(?:<!-- (?:doc: (\w+)|(snippet: [^>]*|redis-lock-rewrite)) -->\n)?```(\w*)\n(.*?)^```", re.S | re.M
)


def blocks(name):
    text = (ROOT / name).read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        marker = "elsewhere" if m.group(2) else m.group(1)
        out.append((f"{name}:{line}", marker, m.group(3), m.group(4)))
    return out


ALL = [b for f in FILES for b in blocks(f)]


def test_every_block_is_run_or_marked():
    assert ALL, "no code blocks found"
    for where, marker, lang, _ in ALL:
        assert marker in (None, "skip", "redis", "elsewhere"), f"{where}: unknown marker {marker!r}"
        if marker is None:
            assert lang in RUN, f"{where}: a ```{lang} block with no marker is never run"


def test_every_rust_block_is_a_doc_test():
    # rustdoc runs the Rust blocks of the files src/lib.rs includes under cfg(doctest).
    lib = (ROOT / "src" / "lib.rs").read_text()
    for path in FILES + ["docs/migrating.md", "docs/migrating.zh-CN.md"]:
        if any(lang == "rust" and marker is None for _, marker, lang, _ in blocks(path)):
            assert f'include_str!("../{path}")' in lib, f"{path} has Rust blocks that src/lib.rs does not run"


def test_the_chinese_front_page_has_the_same_code():
    en = [(m, lang, code) for _, m, lang, code in blocks("README.md")]
    zh = [(m, lang, code) for _, m, lang, code in blocks("README.zh-CN.md")]
    assert en == zh


@pytest.mark.parametrize("where, marker, code", [(w, m, c) for w, m, lang, c in ALL if lang == "python" and m in (None, "redis")])
def test_python_block_runs(where, marker, code, request):
    env = dict(os.environ)
    if marker == "redis":
        env["QK_REDIS_URL"] = request.getfixturevalue("server").url
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=env)
    assert run.returncode == 0, f"{where}:\n{run.stderr[-3000:]}"


@pytest.mark.parametrize("where, code", [(w, c) for w, m, lang, c in ALL if lang == "c" and m is None])
def test_c_block_compiles_and_runs(where, code, tmp_path):
    lib = ROOT / "target" / "release"
    if not (lib / "libquorumkit.so").exists():
        if os.environ.get("CI"):
            pytest.fail("target/release/libquorumkit.so is missing (cargo build --release --lib)")
        pytest.skip("the C library is not built (cargo build --release --lib)")
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "block.c"
    src.write_text(code)
    exe = tmp_path / "block"
    build = subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "include"), str(src), "-o", str(exe),
                            "-L", str(lib), "-lquorumkit", f"-Wl,-rpath,{tmp_path}"], capture_output=True, text=True)
    assert build.returncode == 0, f"{where} does not compile:\n{build.stderr}"
    # The program needs the library by its SONAME: link that name to the built
    # library here (what ldconfig does in an install), whatever ran before.
    soname = re.search(r"Library soname: \[(.*?)\]",
                       subprocess.run(["readelf", "-d", str(lib / "libquorumkit.so")], capture_output=True,
                                      text=True, check=True).stdout).group(1)
    (tmp_path / soname).symlink_to(lib / "libquorumkit.so")
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, f"{where}: {run.stdout}{run.stderr}"
