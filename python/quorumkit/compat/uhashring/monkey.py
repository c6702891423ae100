"""uhashring's python-memcached patch: ``patch_memcache()`` makes every
``memcache.Client`` created afterwards choose servers on a consistent ring
(this package's ``HashRing``, uhashring's placement) instead of
python-memcached's modulo hashing, so adding a server moves only its share
of the keys.

    from quorumkit.compat.uhashring import monkey   # was: from uhashring import monkey
    monkey.patch_memcache()

As uhashring's patch: a client gets a ``uhashring`` attribute, the ring of
its servers named by IP (with ``hostname``, ``port``, ``weight`` and the
server object as ``instance``); a key goes to the first server along the
ring, from the key's point, that accepts a connection, trying the whole
ring up to ``Client._SERVER_RETRIES`` times, else ``(None, None)``; a
``(hash, key)`` tuple key keeps python-memcached's own choice. Patching
twice is harmless.
"""

from __future__ import annotations

from typing import Any, Tuple

from . import HashRing

__all__ = ["patch_memcache"]


def _ring_of(client: Any) -> HashRing:
    return HashRing(
        {
            server.ip: {"hostname": server.ip, "instance": server, "port": server.port, "weight": server.weight}
            for server in client.servers
        }
    )


def patch_memcache() -> None:
    """Patches ``memcache.Client`` (python-memcached) in place."""
    import memcache

    client = memcache.Client
    if getattr(client, "_qk_patched", False):
        return
    original_init = client.__init__
    original_get_server = client._get_server

    def __init__(self: Any, servers: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, servers, *args, **kwargs)
        self.uhashring = _ring_of(self)

    def _get_server(self: Any, key: Any) -> Tuple[Any, Any]:
        if isinstance(key, tuple):
            return original_get_server(self, key)
        for _ in range(self._SERVER_RETRIES):
            for node in self.uhashring.range(key):
                if node["instance"].connect():
                    return node["instance"], key
        return None, None

    client._old_init = original_init
    client._old_get_server = original_get_server
    client.__init__ = __init__
    client._get_server = _get_server
    client._qk_patched = True
