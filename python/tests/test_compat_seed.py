"""The seed posts' snippets, each run as written except for its import line,
on quorumkit.compat.consistent_hash / consistent_hashing / paxos; then the
properties the snippets meant to show, and bad input."""

import subprocess
import sys
import textwrap

import pytest

import quorumkit as qk
from quorumkit.compat.consistent_hash import ConsistentHash as CH
from quorumkit.compat.consistent_hashing import ConsistentHash as CHF
from quorumkit.compat.paxos import Paxos


def run_snippet(code: str) -> str:
    """Runs a snippet in a fresh interpreter (as a reader would paste it)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


# The blog-post class: ConsistentHash(replicas, *nodes), add, get.
SEED_CONSISTENT_HASH = """
from quorumkit.compat.consistent_hash import ConsistentHash   # was: from consistent_hash import ConsistentHash

ch = ConsistentHash(100, "cache-1", "cache-2", "cache-3")
keys = ["user:%d" % i for i in range(10000)]
before = {k: ch.get(k) for k in keys}
ch.add("cache-4")
after = {k: ch.get(k) for k in keys}
moved = sum(before[k] != after[k] for k in keys)
print("moved", moved)
print("to-new", sum(after[k] == "cache-4" for k in keys if before[k] != after[k]))
"""

# The consistent_hash package's README style.
SEED_CONSISTENT_HASH_PACKAGE = """
from quorumkit.compat.consistent_hash import ConsistentHash   # was: from consistent_hash import ConsistentHash

con_hash = ConsistentHash({'192.168.0.101:11212': 1, '192.168.0.102:11212': 2, '192.168.0.103:11212': 1})
con_hash.add_nodes({'192.168.0.104:11212': 1})
server = con_hash.get_node('my_key')
print(server)
con_hash.del_nodes(['192.168.0.102:11212', '192.168.0.104:11212'])
print(con_hash.get_node('my_key'))
"""

# ConsistentHash(hash_function) with the unsound `% 1000` hash of the posts.
SEED_CONSISTENT_HASHING = """
import hashlib
from quorumkit.compat.consistent_hashing import ConsistentHash   # was: from consistent_hashing import ConsistentHash

def hash_function(key):
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % 1000

ch = ConsistentHash(hash_function)
for server in ["server1", "server2", "server3"]:
    ch.add_item(server)
print(ch.get_hash_values())
mapping = ch.get_item_to_node_map(["item%d" % i for i in range(3000)])
counts = {}
for node in mapping.values():
    counts[node] = counts.get(node, 0) + 1
print(sorted(counts.values()))
"""

SEED_PAXOS = """
from quorumkit.compat.paxos import Paxos   # was: from paxos import Paxos

paxos = Paxos(3)
paxos.add_node()
result = paxos.propose('value1')
print(result)
print(paxos.status())
"""


def test_seed_consistent_hash_moves_only_about_a_quarter():
    out = dict(line.split() for line in run_snippet(SEED_CONSISTENT_HASH).splitlines())
    moved, to_new = int(out["moved"]), int(out["to-new"])
    # 3 -> 4 nodes: about 1/4 of the keys move, all of them to the new node.
    assert 1800 < moved < 3200, moved
    assert to_new == moved


def test_seed_consistent_hash_package_style():
    first, second = run_snippet(SEED_CONSISTENT_HASH_PACKAGE).split()
    assert first.startswith("192.168.0.10")
    assert second in ("192.168.0.101:11212", "192.168.0.103:11212")


def test_seed_consistent_hashing_balances_despite_the_modulo_hash():
    lines = run_snippet(SEED_CONSISTENT_HASHING).splitlines()
    values = eval(lines[0])  # the dict the snippet prints
    assert set(values) == {"server1", "server2", "server3"} and all(0 <= v < 1000 for v in values.values())
    counts = eval(lines[1])
    assert sum(counts) == 3000 and min(counts) > 700, counts  # each near 1000


def test_seed_paxos_chooses_the_value():
    lines = run_snippet(SEED_PAXOS).splitlines()
    assert lines[0] == "value1"
    status = eval(lines[1])
    assert status["chosen"] == ["value1"] and status["replicas"] == [0, 1, 2, 3]
    assert status["leader"] in status["replicas"]


def test_placement_is_the_same_in_every_process():
    code = ("from quorumkit.compat.consistent_hashing import ConsistentHash as C\n"
            "c = C(lambda k: hash(k) % 1000)\n"
            "[c.add_item(n) for n in ('a', 'b', 'c')]\n"
            "print(sorted(c.get_item_to_node_map(['k%d' % i for i in range(50)]).items()))\n")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3)}
    assert len(outs) == 1


def test_consistent_hash_api_details():
    ch = CH(50)
    assert ch.get("k") is None  # empty ring
    with pytest.raises(qk.EmptyRingError):
        ch.get_node("k")
    ch.add("a")
    ch.add("b", 3)
    assert ch.nodes == ["a", "b"] and len(ch) == 2 and "a" in ch
    assert ch.get(12345) == ch.get("12345")  # non-str keys by str()
    share_b = sum(ch.get(f"k{i}") == "b" for i in range(4000)) / 4000
    assert 0.65 < share_b < 0.85, share_b  # weight 3 of 4
    ch.remove("b")
    assert {ch.get(f"k{i}") for i in range(100)} == {"a"}
    with pytest.raises(qk.NodeNotFoundError):
        ch.remove("nope")
    with pytest.raises(qk.InvalidArgumentError):
        CH(0)
    with pytest.raises(TypeError):
        CH(True)
    with pytest.raises(TypeError):
        ch.add(7)
    with pytest.raises(TypeError):
        CH({"a": 1}, "b")


def test_consistent_hashing_api_details():
    c = CHF()
    with pytest.raises(qk.EmptyRingError):
        c.get_item_to_node_map(["x"])
    assert c.get_item_to_node_map([]) == {}
    c.add_item("n1")
    c.add_item("n1")  # again: no-op
    c.add_item("n2")
    assert c.get_items() == ["n1", "n2"]
    hv = c.get_hash_values()
    assert set(hv) == {"n1", "n2"} and all(0 <= v < 2**64 for v in hv.values())
    c.remove_item("n1")
    assert set(c.get_item_to_node_map(range(20)).values()) == {"n2"}
    with pytest.raises(TypeError):
        CHF(hash_function=42)
    with pytest.raises(TypeError):
        c.add_item(3)


def test_paxos_api_details():
    p = Paxos(3, seed=4)
    assert p.status() == {"replicas": [0, 1, 2], "leader": None, "chosen": [], "time": 0.0}
    assert p.add_node("d") == "d"
    with pytest.raises(qk.InvalidArgumentError):
        p.add_node("d")
    assert p.propose(b"raw") == b"raw"
    assert p.propose("text") == "text"
    assert p.chosen() == [b"raw", "text"]
    with pytest.raises(RuntimeError):
        p.add_node()
    with pytest.raises(TypeError):
        p.propose(42)
    with pytest.raises(qk.InvalidArgumentError):
        Paxos(0)
    with pytest.raises(TypeError):
        Paxos("3")
