"""``ConsistentHash`` as the circulating ``consistent_hashing`` snippets call
it (``ConsistentHash(hash_function)``, ``add_item``, ``get_hash_values``,
``get_item_to_node_map``), on quorumkit's ``HashRing``.

Migrate by changing one import::

    from quorumkit.compat.consistent_hashing import ConsistentHash   # was: from consistent_hashing import ConsistentHash

In the snippets, ``add_item`` puts a node (a server) on the ring and
``get_item_to_node_map(keys)`` says which node each key goes to.

What differs, and why: the snippets pass their own ``hash_function``,
often ``lambda key: hash(key) % 1000`` or an md5 reduced modulo a small
number. Placing nodes and keys with it makes a ring of a few hundred
positions where nodes collide and one node takes most keys, and
``hash()`` of a ``str`` changes with every process (``PYTHONHASHSEED``), so
two processes disagree. Here placement is always quorumkit's: 160 virtual
points per node on xxh3-64, the same in every process, about 1/n of the
keys moving when a node joins or leaves. The ``hash_function`` is kept only
for ``get_hash_values()``, which reports what it gives for each node, as
the snippets print; ``None`` reports quorumkit's 64-bit position instead.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Dict, Hashable, Iterable, Optional, Union

from quorumkit._errors import EmptyRingError
from quorumkit._native import HashRing

__all__ = ["ConsistentHash"]


def _key(key: Hashable) -> Union[str, bytes]:
    return key if isinstance(key, (str, bytes)) else str(key)


def _stable_position(node: str) -> int:
    # A 64-bit position that every process agrees on (unlike hash()).
    return int.from_bytes(hashlib.blake2b(node.encode(), digest_size=8).digest(), "big")


class ConsistentHash:
    """Nodes on a consistent-hash ring (see the module docstring)."""

    def __init__(self, hash_function: Optional[Callable[[str], int]] = None, replicas: int = 160) -> None:
        if hash_function is not None and not callable(hash_function):
            raise TypeError(f"hash_function must be callable or None, not {type(hash_function).__name__}")
        self.hash_function = hash_function
        self._ring = HashRing(vnodes=replicas)

    def add_item(self, node: str) -> None:
        """Puts ``node`` on the ring (a no-op if it is there already)."""
        if not isinstance(node, str):
            raise TypeError(f"node names must be str, not {type(node).__name__}")
        if node not in self._ring.nodes:
            self._ring.add_node(node)

    def remove_item(self, node: str) -> None:
        """Takes ``node`` off the ring (``NodeNotFoundError`` if absent)."""
        self._ring.remove_node(node)

    def get_items(self) -> list[str]:
        """The nodes on the ring, sorted."""
        return sorted(self._ring.nodes)

    def get_hash_values(self) -> Dict[str, int]:
        """``{node: hash_function(node)}`` (quorumkit's 64-bit position of the
        name without one); informational: placement does not use it."""
        f = self.hash_function or _stable_position
        return {node: f(node) for node in self.get_items()}

    def get_node(self, key: Hashable) -> str:
        """The node for ``key`` (``EmptyRingError`` on an empty ring)."""
        return self._ring.get_node(_key(key))

    def get_item_to_node_map(self, keys: Iterable[Hashable]) -> Dict[Hashable, str]:
        """``{key: node}`` for every key (``EmptyRingError`` on an empty ring)."""
        keys = list(keys)
        if keys and not self._ring.nodes:
            raise EmptyRingError("no nodes on the ring: add_item() first")
        return {k: self._ring.get_node(_key(k)) for k in keys}

    def __len__(self) -> int:
        return len(self._ring.nodes)

    def __repr__(self) -> str:
        return f"ConsistentHash(nodes={self.get_items()!r})"
