"""Type stubs for quorumkit.ring (placement quality report)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ALGORITHMS", "RingReport", "main", "plot", "register", "report"]

Builder = Callable[[list[str]], Any]
ALGORITHMS: dict[str, Builder]

def register(name: str, build: Builder) -> None: ...
@dataclass
class RingReport:
    algorithm: str
    nodes: list[str]
    keys: int
    shares: dict[str, float]
    exact: bool
    measured: dict[str, float]
    max_over_mean: float
    min_over_mean: float
    moved_on_add: float
    ideal_add: float
    only_to_new: bool
    moved_on_remove: float
    ideal_remove: float
    only_from_removed: bool
    def format(self) -> str: ...

def sample_keys(count: int, seed: int) -> list[str]: ...
def report(nodes: int | Sequence[str], algorithm: str = "hash", *, keys: int = 100000, seed: int = 20261101) -> RingReport: ...
def plot(reports: Sequence[RingReport], path: str) -> None: ...
def main(argv: Sequence[str] | None = None) -> int: ...
