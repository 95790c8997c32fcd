"""Trio nurseries raise groups of errors; operators and callers want the one error.

A nursery whose child failed raises an :class:`ExceptionGroup` holding that error next to
the cancellations of its siblings.  These helpers give back the error itself when it is
the only real one, so the command line can print it in one line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import trio

from sealagent.errors import SealAgentError


@contextlib.contextmanager
def lone_error_unwrapped() -> Iterator[None]:
    """Raise a group that holds one :class:`SealAgentError` (besides cancellations) as that
    error itself; any other group is raised unchanged."""
    try:
        yield
    except BaseExceptionGroup as group:
        raise_lone_error(group)


def raise_lone_error(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise ``group``'s lone :class:`SealAgentError` (see :func:`single_error`), else the
    group itself."""
    error = single_error(group)
    if error is None:
        raise group
    raise error from None


def single_error(group: BaseExceptionGroup[BaseException]) -> SealAgentError | None:
    """The one :class:`SealAgentError` a group holds besides cancellations, if that is all
    it holds (so callers see the error itself, not a nursery's group)."""
    errors, rest = group.split(SealAgentError)
    if rest is not None and not all(isinstance(e, trio.Cancelled) for e in _leaves(rest)):
        return None
    leaves = [] if errors is None else list(_leaves(errors))
    return leaves[0] if len(leaves) == 1 and isinstance(leaves[0], SealAgentError) else None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
