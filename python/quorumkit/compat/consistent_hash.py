"""``ConsistentHash`` as the circulating ``consistent_hash`` snippets call it,
on quorumkit's ``HashRing`` (xxh3-64, weighted virtual nodes).

Migrate by changing one import::

    from quorumkit.compat.consistent_hash import ConsistentHash   # was: from consistent_hash import ConsistentHash

Both call styles that circulate work:

- ``ConsistentHash(replicas, *nodes)`` with ``add(node)``, ``remove(node)``
  and ``get(key)`` (the blog-post class: ``replicas`` virtual points per
  node);
- ``ConsistentHash(nodes)`` where ``nodes`` is a dict of weights, a list or
  one name, with ``add_nodes``, ``del_nodes`` and ``get_node`` (the
  ``consistent_hash`` package's ketama-style API).

What differs: placement is quorumkit's (xxh3-64 points, not md5), so keys
land on other nodes than in the original, but the same key always lands on
the same node, and adding or removing a node moves only about 1/n of the
keys. ``get`` on an empty ring returns ``None`` (as the snippets expect);
``get_node`` raises ``EmptyRingError``. Keys that are not ``str`` or
``bytes`` are placed by ``str(key)``. Node names must be strings.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping, Optional, Union

from quorumkit._errors import EmptyRingError, InvalidArgumentError
from quorumkit._native import HashRing

__all__ = ["ConsistentHash"]

Nodes = Union[Mapping[str, int], Iterable[str], str, None]


def _key(key: Hashable) -> Union[str, bytes]:
    return key if isinstance(key, (str, bytes)) else str(key)


def _name(node: object) -> str:
    if not isinstance(node, str):
        raise TypeError(f"node names must be str, not {type(node).__name__}")
    return node


class ConsistentHash:
    """A consistent-hash ring of named nodes (see the module docstring)."""

    def __init__(self, replicas: Union[int, Nodes] = 160, *nodes: str) -> None:
        if isinstance(replicas, bool):
            raise TypeError("replicas must be an int (virtual points per node), not bool")
        if isinstance(replicas, int):
            if replicas < 1:
                raise InvalidArgumentError(f"replicas must be at least 1, got {replicas}")
            self.replicas = replicas
            initial: Nodes = list(nodes)
        else:
            if nodes:
                raise TypeError("ConsistentHash(nodes) takes one dict, list or name")
            self.replicas = 160
            initial = replicas
        self._ring = HashRing(vnodes=self.replicas)
        self.add_nodes(initial)

    # -- the blog-post class: add / remove / get ---------------------------
    def add(self, node: str, weight: int = 1) -> None:
        """Adds ``node`` (again: its weight changes to ``weight``)."""
        node = _name(node)
        if node in self._ring.nodes:
            self._ring.set_weight(node, weight)
        else:
            self._ring.add_node(node, weight)

    def remove(self, node: str) -> None:
        """Removes ``node`` (``NodeNotFoundError`` if it is not there)."""
        self._ring.remove_node(_name(node))

    def get(self, key: Hashable) -> Optional[str]:
        """The node for ``key``, or ``None`` when the ring is empty."""
        try:
            return self._ring.get_node(_key(key))
        except EmptyRingError:
            return None

    # -- the consistent_hash package: add_nodes / del_nodes / get_node ----
    def add_nodes(self, nodes: Nodes) -> None:
        """Adds a dict of ``{name: weight}``, a list of names, or one name."""
        if nodes is None:
            return
        if isinstance(nodes, str):
            self.add(nodes)
        elif isinstance(nodes, Mapping):
            for name, weight in nodes.items():
                self.add(name, weight)
        else:
            for name in nodes:
                self.add(name)

    def del_nodes(self, nodes: Union[Iterable[str], str]) -> None:
        """Removes each named node."""
        for name in [nodes] if isinstance(nodes, str) else list(nodes):
            self.remove(name)

    def get_node(self, key: Hashable) -> str:
        """The node for ``key`` (``EmptyRingError`` when the ring is empty)."""
        return self._ring.get_node(_key(key))

    @property
    def nodes(self) -> list[str]:
        """The nodes, sorted."""
        return sorted(self._ring.nodes)

    def __len__(self) -> int:
        return len(self._ring.nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._ring.nodes

    def __repr__(self) -> str:
        return f"ConsistentHash(replicas={self.replicas}, nodes={self.nodes!r})"
