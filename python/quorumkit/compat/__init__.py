"""Drop-in replacements for other consistent-hashing libraries.

- :mod:`quorumkit.compat.uhashring`: ``HashRing`` with uhashring 2.5's API
  and placements (``from quorumkit.compat.uhashring import HashRing``).
"""
