"""A drop-in ``HashRing`` for uhashring 2.5: same constructor, methods,
attributes, errors and placements; lookups run in quorumkit's Rust core.

Migrate by changing one import::

    from quorumkit.compat.uhashring import HashRing   # was: from uhashring import HashRing

Placement, as uhashring's (read from its ``ring.py``, ``ring_meta.py`` and
``ring_ketama.py``; checked against uhashring itself in the tests):

- default: node ``n`` has ``vnodes * weight`` points at
  ``int(md5(f"{n}-{i}").hexdigest(), 16)``; a key goes to the first point
  greater than ``int(md5(str(key)).hexdigest(), 16)``, wrapping around.
  Runs on the core's ``Md5Ring``.
- ``hash_fn="ketama"``: ``(vnodes * len(nodes) * weight) // sum(weights)``
  md5 digests per node (vnodes 40), ``replicas`` (4) little-endian u32
  points per digest. Runs on the core's ``KetamaRing(compat="uhashring")``
  when every node has 40 vnodes, weights are positive and ``replicas`` is 4
  (uhashring's defaults); otherwise on the pure-Python path below.
- a callable ``hash_fn``: pure Python, as uhashring (the hash is the
  caller's Python code, so there is nothing to gain in Rust).

Differences: node keys whose ``f"{key}"`` strings are equal (``1`` and
``"1"``) raise ``ValueError`` in the native modes (uhashring lets their
points collide); ``vnodes * weight`` is capped at 2**24 points per node;
``runtime`` (uhashring's internal ring object) does not exist, while its
``_ring``, ``_nodes`` and ``_keys`` views do.
"""

from __future__ import annotations

from bisect import bisect
from collections import Counter
from hashlib import md5
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Tuple

from quorumkit import _native
from quorumkit._errors import InvalidArgumentError

__all__ = ["HashRing", "__version__"]

# The uhashring release whose API and placements this module reproduces.
__version__ = "2.5"

_CONF_KEYS = ("hostname", "instance", "nodename", "port", "vnodes", "weight")


def _md5_int(text: str) -> int:
    return int(md5(text.encode("utf-8")).hexdigest(), 16)


def _ketama_point(digest: bytes, replica: int) -> int:
    # Little-endian u32 at 4 * replica; IndexError past 4 replicas, as uhashring.
    rd = replica * 4
    return (digest[3 + rd] << 24) | (digest[2 + rd] << 16) | (digest[1 + rd] << 8) | digest[rd]


class _Views:
    """The sorted points (``keys``), point -> node (``ring``) and the point
    count per node (``distribution``) that uhashring keeps."""

    def __init__(self, keys: List[Any], ring: Dict[Any, Any], distribution: Counter) -> None:
        self.keys = keys
        self.ring = ring
        self.distribution = distribution


class _Labels:
    """Native rings name nodes by ``f"{node}"``; this maps back to the
    node objects when some are not plain ``str``."""

    def __init__(self) -> None:
        self.to_node: Dict[str, Any] = {}
        self.plain = True  # every node is an exact str

    def label(self, node: Any) -> str:
        label = f"{node}"
        seen = self.to_node.get(label, node)
        if seen is not node and seen != node:
            raise ValueError(
                f"nodes {seen!r} and {node!r} have the same name {label!r}: their points would collide"
            )
        self.to_node[label] = node
        if type(node) is not str:
            self.plain = False
        return label

    def forget(self, node: Any) -> None:
        self.to_node.pop(f"{node}", None)
        self.plain = all(type(n) is str for n in self.to_node.values())

    def node(self, label: Optional[str]) -> Any:
        return None if label is None else self.to_node[label]


class _Md5Backend:
    """Default mode on the core's ``Md5Ring``."""

    def __init__(self) -> None:
        self.core = _native.Md5Ring(vnodes=0)
        self.labels = _Labels()
        self.distribution: Counter = Counter()
        self._views: Optional[_Views] = None

    def hashi(self, key: Any) -> int:
        return self.core.key_hash(key if type(key) is str else str(key))

    def create(self, items: Any, nodes: Dict[Any, Dict[str, Any]]) -> None:
        items = list(items)
        counts = [len(range(0, c["vnodes"] * c["weight"])) for _, c in items]  # TypeError as uhashring
        if len(self.core) == 0 and len(set(counts)) == 1 and counts[0]:
            # A fresh ring of equal nodes (the usual constructor): one bulk build.
            labels = [self.labels.label(name) for name, _ in items]
            if len(set(labels)) == len(labels):
                self.core = _native.Md5Ring(labels, vnodes=counts[0])
                for (name, _), count in zip(items, counts):
                    self.distribution.pop(name, None)
                    self.distribution[name] = count
                self._views = None
                return
        for (name, conf), count in zip(items, counts):
            label = self.labels.label(name)
            # Point i is md5("{name}-{i}") whatever vnodes and weight are:
            # only their product matters.
            weight, vnodes = (1, count) if count else (0, 0)
            if label in self.core:
                self.core.set_node(label, weight, vnodes=vnodes)
            else:
                self.core.add_node(label, weight, vnodes=vnodes)
            self.distribution.pop(name, None)
            if count:
                self.distribution[name] = count
        self._views = None

    def remove(self, name: Any) -> None:
        self.core.remove_node(f"{name}")
        self.labels.forget(name)
        self._views = None
        self.distribution.pop(name)  # KeyError for a node without points, as uhashring

    def lookup(self, key: Any) -> Any:
        return self.labels.node(self.core.locate_str(key))

    def fast_lookup(self) -> Optional[Callable[[Any], Any]]:
        return self.core.locate_str if self.labels.plain else None

    @property
    def size(self) -> int:
        return self.core.point_count

    def pos(self, key: Any) -> int:
        return self.core.point_index(self.hashi(key))

    def views(self) -> _Views:
        if self._views is None:
            # uhashring's dict holds points in the order nodes were last
            # (re)created, which the distribution Counter also keeps.
            ring = {_md5_int(f"{n}-{i}"): n for n, c in self.distribution.items() for i in range(c)}
            self._views = _Views(sorted(ring), ring, self.distribution)
        return self._views


class _MetaBackend:
    """Default mode with a caller's ``hash_fn``: pure Python, as uhashring."""

    def __init__(self, hash_fn: Callable[[Any], Any]) -> None:
        self.hashi = hash_fn
        self.distribution: Counter = Counter()
        self.ring: Dict[Any, Any] = {}
        self.node_points: Dict[Any, List[Any]] = {}
        self.keys: List[Any] = []

    def create(self, items: Any, nodes: Dict[Any, Dict[str, Any]]) -> None:
        for name, conf in items:
            for point in self.node_points.pop(name, None) or ():
                if self.ring.get(point) == name:
                    del self.ring[point]
            self.distribution.pop(name, None)
            points = [self.hashi(f"{name}-{i}") for i in range(0, conf["vnodes"] * conf["weight"])]
            for point in points:
                self.ring[point] = name
            if points:
                self.distribution[name] = len(points)
            self.node_points[name] = points
        self.keys = sorted(self.ring)

    def remove(self, name: Any) -> None:
        points = self.node_points.pop(name)
        self.distribution.pop(name)  # KeyError for a node without points, as uhashring
        for point in points:
            if self.ring.get(point) == name:
                del self.ring[point]
        self.keys = sorted(self.ring)

    def lookup(self, key: Any) -> Any:
        if not self.ring:
            return None
        return self.ring[self.keys[self.pos(key)]]

    def fast_lookup(self) -> Optional[Callable[[Any], Any]]:
        return None

    @property
    def size(self) -> int:
        return len(self.ring)

    def pos(self, key: Any) -> int:
        p = bisect(self.keys, self.hashi(key))
        return 0 if p == len(self.keys) else p

    def views(self) -> _Views:
        return _Views(self.keys, self.ring, self.distribution)


class _KetamaBackend:
    """``hash_fn="ketama"``: the core's ``KetamaRing(compat="uhashring")``
    for uhashring's defaults, the Python continuum otherwise (and for the
    introspection views, built on first use)."""

    def __init__(self, replicas: Any) -> None:
        self.replicas = replicas
        self.core: Optional[_native.KetamaRing] = None
        self.labels = _Labels()
        self._nodes: Dict[Any, Dict[str, Any]] = {}
        self._views: Optional[_Views] = None

    @staticmethod
    def hashi(key: Any, replica: int = 0) -> int:
        return _ketama_point(md5(str(key).encode("utf-8")).digest(), replica)

    def create(self, items: Any, nodes: Dict[Any, Dict[str, Any]]) -> None:
        # uhashring rebuilds the whole continuum from every node.
        self._nodes = nodes
        self._views = None
        self.core = None
        total = sum(c["weight"] for c in nodes.values())
        counts = [len(range(0, (c["vnodes"] * len(nodes) * c["weight"]) // total)) for c in nodes.values()]
        native = self.replicas == 4 and all(
            type(c["weight"]) is int and c["weight"] >= 1 and c["vnodes"] == 40 and type(c["vnodes"]) is int
            for c in nodes.values()
        )
        labels = _Labels()
        if native:
            try:
                specs = {labels.label(n): c["weight"] for n, c in nodes.items()}
                self.core = _native.KetamaRing(specs, compat="uhashring") if specs else None
            except (InvalidArgumentError, ValueError):
                self.core = None  # a name the core cannot take: the Python path
        if self.core is None and any(counts):
            self.views()  # errors (replicas > 4) surface now, as in uhashring
        self.labels = labels

    def remove(self, name: Any) -> None:
        self.create((), self._nodes)

    def lookup(self, key: Any) -> Any:
        if self.core is not None:
            return self.labels.node(self.core.locate_str(key))
        v = self.views()
        return v.ring[v.keys[self.pos(key)]] if v.ring else None

    def fast_lookup(self) -> Optional[Callable[[Any], Any]]:
        return self.core.locate_str if self.core is not None and self.labels.plain else None

    @property
    def size(self) -> int:
        return self.core.point_count if self.core is not None else len(self.views().ring)

    def pos(self, key: Any) -> int:
        keys = self.views().keys
        p = bisect(keys, self.hashi(key))
        return 0 if p == len(keys) else p

    @property
    def distribution(self) -> Counter:
        return self.views().distribution

    def views(self) -> _Views:
        if self._views is None:
            nodes = self._nodes
            total = sum(c["weight"] for c in nodes.values())
            ring: Dict[int, Any] = {}
            keys: List[int] = []
            dist: Counter = Counter()
            for name, conf in nodes.items():
                for w in range(0, (conf["vnodes"] * len(nodes) * conf["weight"]) // total):
                    digest = md5(f"{name}-{w}".encode("utf-8")).digest()
                    for i in range(0, self.replicas):
                        h = _ketama_point(digest, i)
                        ring[h] = name
                        keys.append(h)
                        dist[name] += 1
            keys.sort()
            self._views = _Views(keys, ring, dist)
        return self._views


class HashRing:
    """uhashring 2.5's ``HashRing``, placement for placement.

    Thread safety: lookups may run from many threads at once; a membership
    change must not overlap any other call (as in uhashring itself)."""

    def __init__(self, nodes: Any = [], **kwargs: Any) -> None:  # noqa: B006 (uhashring's signature)
        hash_fn = kwargs.get("hash_fn", None)
        vnodes = kwargs.get("vnodes", None)
        weight_fn = kwargs.get("weight_fn", None)
        self._backend: Any
        if hash_fn == "ketama":
            self._backend = _KetamaBackend(kwargs.get("replicas", 4))
            vnodes = 40 if vnodes is None else vnodes
        else:
            if hash_fn and not callable(hash_fn):
                raise TypeError("hash_fn should be a callable function")
            self._backend = _MetaBackend(hash_fn) if hash_fn else _Md5Backend()
            vnodes = 160 if vnodes is None else vnodes
        self._default_vnodes = vnodes
        # What pickle and copy need to rebuild the ring (see __reduce__).
        self._init_kwargs = dict(kwargs)
        self.hashi = self._backend.hashi
        if weight_fn and not callable(weight_fn):
            raise TypeError("weight_fn should be a callable function")
        self._weight_fn = weight_fn
        self._conf: Dict[Any, Dict[str, Any]] = {}
        self._fast_instance: Optional[Callable[[Any], Any]] = None
        if self._configure_nodes(nodes):
            self._create(self._conf.items())

    # ------------------------------------------------------------ membership
    def _configure_nodes(self, nodes: Any) -> bool:
        if isinstance(nodes, str):
            nodes = [nodes]
        elif not isinstance(nodes, (dict, list)):
            raise ValueError(f"nodes configuration should be a list or a dict, got {type(nodes)}")
        changed = False
        for node in nodes:
            conf: Dict[str, Any] = {
                "hostname": node,
                "instance": None,
                "nodename": node,
                "port": None,
                "vnodes": self._default_vnodes,
                "weight": 1,
            }
            current = self._conf.get(node, {})
            if not current:
                changed = True
            if isinstance(nodes, dict):
                node_conf = nodes[node]
                if isinstance(node_conf, int):
                    conf["weight"] = node_conf
                elif isinstance(node_conf, dict):
                    for k, v in node_conf.items():
                        if k in conf:
                            conf[k] = v
                            if k in ("nodename", "vnodes", "weight") and current.get(k) != v:
                                changed = True
                else:
                    raise ValueError(f"node configuration should be a dict or an int, got {type(node_conf)}")
            if self._weight_fn:
                conf["weight"] = self._weight_fn(**conf)
            if current.get("weight") != conf["weight"]:
                changed = True
            self._conf[node] = conf
        return changed

    def _create(self, items: Any) -> None:
        self._backend.create(items, self._conf)
        self._bind_fast()

    def _bind_fast(self) -> None:
        # The hot lookups go straight to the core when the node names are
        # plain str and the method is not overridden: get_node and get with
        # no Python frame (get_node_instance too), ring[key] with one.
        fast = self._backend.fast_lookup()
        cls = type(self)
        for name in ("get_node", "get", "get_node_instance"):
            self.__dict__.pop(name, None)
        self._fast_instance = None
        if fast is None:
            return
        bind = self._backend.core.bind_lookup
        if cls.get_node is HashRing.get_node:
            self.get_node = fast  # type: ignore[method-assign]
        if cls.get is HashRing.get:
            self.get = bind(self._conf).lookup  # type: ignore[method-assign]
        if cls.get_node_instance is HashRing.get_node_instance:
            instances = {name: conf["instance"] for name, conf in self._conf.items()}
            self._fast_instance = bind(instances).lookup
            self.get_node_instance = self._fast_instance  # type: ignore[method-assign]

    def _changing(self, change: Callable[[], None]) -> None:
        """Runs a membership change; if it raises (a float weight, a total
        weight of 0, ketama ``replicas`` > 4, ...), the ring is put back as
        it was, so later calls see the ring from before the failed one."""
        saved = {name: dict(conf) for name, conf in self._conf.items()}
        try:
            change()
            # A change of an `instance` alone rebuilds nothing, but the
            # fast ring[key] path must see it.
            self._bind_fast()
        except BaseException:
            self._conf = saved
            backend = type(self._backend)
            fresh = backend(self._backend.replicas) if backend is _KetamaBackend else (
                backend(self.hashi) if backend is _MetaBackend else backend())
            self._backend = fresh
            self.hashi = fresh.hashi
            if saved:
                fresh.create(list(saved.items()), self._conf)
            self._bind_fast()
            raise

    def __setitem__(self, nodename: Any, conf: Any = {"weight": 1}) -> None:  # noqa: B006
        """Adds (or reconfigures) the node ``nodename`` with ``conf``."""

        def change() -> None:
            if self._configure_nodes({nodename: conf}):
                self._create([(nodename, self._conf[nodename])])

        self._changing(change)

    add_node = __setitem__

    def __delitem__(self, nodename: Any) -> None:
        """Removes the node ``nodename``; ``KeyError`` when absent."""
        if nodename not in self._conf:
            raise KeyError(f"node '{nodename}' not found, available nodes: {self._conf.keys()}")
        del self._conf[nodename]
        try:
            self._backend.remove(nodename)
        finally:
            self._bind_fast()

    remove_node = __delitem__

    def regenerate(self) -> None:
        """Re-reads every node's configuration (re-running ``weight_fn``) and rebuilds."""

        def change() -> None:
            self._configure_nodes(dict(self._conf))
            self._create(self._conf.items())

        self._changing(change)

    # ------------------------------------------------------------ pickle / copy
    def __reduce__(self) -> Tuple[Any, ...]:
        # The native rings do not pickle; the configuration rebuilds them
        # (same placement). A lambda hash_fn / weight_fn pickles no better
        # than in uhashring, but copy.deepcopy keeps it.
        nodes = {name: {k: v for k, v in conf.items() if k in ("hostname", "instance", "nodename", "port",
                                                               "vnodes", "weight")}
                 for name, conf in self._conf.items()}
        return (_rebuild, (type(self), nodes, self._init_kwargs))

    # ------------------------------------------------------------ lookups
    def _get(self, key: Any, what: str) -> Any:
        b = self._backend
        if not b.size:
            return None
        if what == "pos":
            return b.pos(key)
        if what == "tuple":
            v = b.views()
            point = v.keys[b.pos(key)]
            return (point, v.ring[point])
        nodename = b.lookup(key)
        if what in ("hostname", "instance", "port", "weight"):
            return self._conf[nodename][what]
        if what == "dict":
            return self._conf[nodename]
        return nodename

    def get_node(self, key: Any) -> Any:
        """The name of the node that owns ``key`` (None on an empty ring)."""
        return self._backend.lookup(key)

    def get(self, key: Any) -> Any:
        """The configuration dict of the node that owns ``key``."""
        return self._get(key, "dict")

    def get_node_instance(self, key: Any) -> Any:
        """The ``instance`` of the node that owns ``key``."""
        return self._get(key, "instance")

    def _getitem(self, key: Any) -> Any:
        """The ``instance`` of the node that owns ``key``."""
        return self.get_node_instance(key)

    # ring[key]: the instance's native fast path when it has one (set by
    # _bind_fast), else _getitem; no Python frame on the fast path.
    __getitem__ = _native.InstanceCall("_fast_instance", _getitem)

    def get_node_hostname(self, key: Any) -> Any:
        return self._get(key, "hostname")

    def get_node_port(self, key: Any) -> Any:
        return self._get(key, "port")

    def get_node_pos(self, key: Any) -> Any:
        return self._get(key, "pos")

    def get_node_weight(self, key: Any) -> Any:
        return self._get(key, "weight")

    def get_server(self, key: Any) -> Any:
        """ketama's ``(point, nodename)`` for ``key``."""
        return self._get(key, "tuple")

    def get_key(self, key: Any) -> Any:
        """The hash of ``key`` (hash_ring compatibility)."""
        return self.hashi(key)

    def get_instances(self) -> List[Any]:
        return [c.get("instance") for c in self._conf.values() if c.get("instance")]

    def get_nodes(self) -> Any:
        """The names of all the configured nodes (a dict view)."""
        return self._conf.keys()

    def get_points(self) -> List[Tuple[Any, Any]]:
        """ketama's list of ``(point, nodename)``, ascending."""
        v = self._backend.views()
        return [(k, v.ring[k]) for k in v.keys]

    def iterate_nodes(self, key: Any, distinct: bool = True) -> Iterator[Any]:
        """hash_ring compatibility: the nodes from ``key`` around the ring."""
        if not self._backend.size:
            yield None
        else:
            for node in self.range(key, unique=distinct):
                yield node["nodename"]

    def range(self, key: Any, size: Optional[int] = None, unique: bool = True) -> Iterator[Dict[str, Any]]:
        """The configurations of the nodes from ``key`` around the ring."""
        b = self._backend
        v = b.views()
        seen: Any
        if unique:
            size = size or len(self._conf)
            seen = set()
        else:
            seen = []
        pos = b.pos(key) if v.keys else 0
        for point in v.keys[pos:] + v.keys[:pos]:
            nodename = v.ring[point]
            if unique:
                if nodename in seen:
                    continue
                seen.add(nodename)
            else:
                seen.append(nodename)
            yield self._conf[nodename]
            if len(seen) == size:
                break

    def print_continuum(self) -> None:
        """Prints ketama's continuum report."""
        points = self.get_points()
        print(f"Numpoints in continuum: {len(points)}" if points else "Continuum empty")
        for point, node in points:
            print(f"{node} ({point})")

    # ------------------------------------------------------------ views
    @property
    def conf(self) -> Dict[Any, Dict[str, Any]]:
        return self._conf

    nodes = conf

    @property
    def distribution(self) -> Counter:
        return self._backend.distribution

    @property
    def ring(self) -> Dict[Any, Any]:
        return self._backend.views().ring

    continuum = ring

    @property
    def size(self) -> int:
        return self._backend.size

    @property
    def _ring(self) -> Dict[Any, Any]:
        return self.ring

    @property
    def _nodes(self) -> Dict[Any, Dict[str, Any]]:
        return self._conf

    @property
    def _keys(self) -> List[Any]:
        return self._backend.views().keys


def _rebuild(cls: Any, nodes: Dict[Any, Dict[str, Any]], kwargs: Dict[str, Any]) -> "HashRing":
    """Unpickles a ``HashRing``: the same nodes and options, the same placement."""
    ring = cls([], **kwargs)
    if nodes:
        # weight_fn already ran for these weights: set them without it.
        weight_fn, ring._weight_fn = ring._weight_fn, None
        try:
            if ring._configure_nodes(nodes):
                ring._create(ring._conf.items())
        finally:
            ring._weight_fn = weight_fn
    return ring
