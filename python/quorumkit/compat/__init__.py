"""Drop-in replacements for other consistent-hashing libraries.

- :mod:`quorumkit.compat.uhashring`: ``HashRing`` with uhashring 2.5's API
  and placements (``from quorumkit.compat.uhashring import HashRing``).
- :mod:`quorumkit.compat.consistent_hash`: ``ConsistentHash(replicas, *nodes)``
  (``add``/``remove``/``get``) and the ``consistent_hash`` package's
  ``ConsistentHash(nodes)`` (``add_nodes``/``del_nodes``/``get_node``).
- :mod:`quorumkit.compat.consistent_hashing`: ``ConsistentHash(hash_function)``
  with ``add_item``, ``get_hash_values``, ``get_item_to_node_map``.
- :mod:`quorumkit.compat.paxos`: ``Paxos(n)`` with ``add_node``, ``propose``,
  ``status``, on a real (simulated) Multi-Paxos cluster.

Each module's docstring says what differs from the original and why.
"""
