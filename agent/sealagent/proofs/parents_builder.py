"""The contract of a parent cache builder, importable without numpy (the plugin contract
names it).  The cache file itself is :mod:`sealagent.proofs.parent_cache`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sealagent.proofs.graph import ParentsArray, StackedGraph


class ParentsBuilder(Protocol):
    """Compute the parents of a range of nodes of an SDR graph (the parent cache's contents).

    :param graph: the graph (its DRG seed, Feistel keys and round tables, API version).
    :param start: the first node; ``0 <= start <= stop <= graph.nodes`` (else
        :class:`~sealagent.errors.InvalidInputError`).
    :param stop: one past the last node.
    :returns: ``(stop − start, 14)`` uint32, row ``i`` the parents of node ``start + i``
        exactly as :meth:`StackedGraph.all_parents` gives them.

    May use the threads it was built with; returns when every one is done.
    """

    def __call__(self, graph: StackedGraph, start: int, stop: int) -> ParentsArray:
        """Parents of nodes ``[start, stop)``."""
