"""``Paxos(n)`` as the circulating Python Paxos snippet calls it
(``add_node``, ``propose``, ``status``), run on quorumkit's simulated
Multi-Paxos cluster (``PaxosCluster``): real replicas exchanging real
messages on a simulated network, with the safety checkers watching.

Migrate by changing one import::

    from quorumkit.compat.paxos import Paxos   # was: from paxos import Paxos

What differs: the snippet's package does not exist on PyPI (or is an
unrelated one); its class decided in one function call with no messages.
Here ``propose`` runs the protocol until a majority has chosen the value
(simulated time, so it returns at once) and returns the chosen value.
Replicas may be added with ``add_node`` until the first ``propose``; after
that the membership is fixed (``RuntimeError``), because changing it safely
needs a reconfiguration protocol this shim does not run. ``status()``
returns a dict (not a printed string).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from quorumkit._errors import InvalidArgumentError
from quorumkit._native import PaxosCluster

__all__ = ["Paxos"]

Value = Union[str, bytes]


class Paxos:
    """A Paxos group of ``n`` replicas (see the module docstring)."""

    def __init__(self, n: int = 3, *, seed: int = 0) -> None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n < 1:
            raise InvalidArgumentError(f"a Paxos group needs at least 1 replica, got {n}")
        self._ids: List[Any] = list(range(n))
        self._seed = seed
        self._cluster: Optional[PaxosCluster] = None
        self._texts: Dict[bytes, bool] = {}

    def add_node(self, node_id: Any = None) -> Any:
        """Adds a replica before the first ``propose``; returns its id."""
        if self._cluster is not None:
            raise RuntimeError("the membership is fixed once proposals started")
        if node_id is None:
            node_id = len(self._ids)
        if node_id in self._ids:
            raise InvalidArgumentError(f"replica {node_id!r} is already a member")
        self._ids.append(node_id)
        return node_id

    def _started(self) -> PaxosCluster:
        if self._cluster is None:
            self._cluster = PaxosCluster(len(self._ids), seed=self._seed)
        return self._cluster

    def propose(self, value: Value) -> Value:
        """Runs Paxos until ``value`` is chosen; returns it (``TimeoutError``
        if no majority could choose it in 60 simulated seconds)."""
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"values are str or bytes, not {type(value).__name__}")
        data = value.encode() if isinstance(value, str) else value
        self._texts[data] = isinstance(value, str)
        cluster = self._started()
        cluster.propose(data)
        if not cluster.run_until_decided(data, timeout=60.0):
            raise TimeoutError(f"{value!r} was not chosen within 60 simulated seconds")
        cluster.check()
        return value

    def chosen(self) -> List[Value]:
        """The values chosen so far, in log order."""
        if self._cluster is None:
            return []
        return [v.decode() if self._texts.get(v) else v for v in self._cluster.decided()]

    def status(self) -> Dict[str, Any]:
        """The group: its replicas, the leader, and the chosen values."""
        if self._cluster is None:
            return {"replicas": list(self._ids), "leader": None, "chosen": [], "time": 0.0}
        s = self._cluster.status()
        leader = s.get("leader")
        return {
            "replicas": list(self._ids),
            "leader": None if leader is None else self._ids[leader],
            "chosen": self.chosen(),
            "time": s.get("time", 0.0),
        }

    def __repr__(self) -> str:
        return f"Paxos(replicas={len(self._ids)}, chosen={len(self.chosen())})"
