"""A nursery's lone error is raised as itself; anything else stays a group."""

from __future__ import annotations

import pytest
import trio

from sealagent.errors import ConfigError, StorageError
from sealagent.nurseries import lone_error_unwrapped, single_error


async def _fail(error: BaseException) -> None:
    raise error


async def _sleep_forever() -> None:
    await trio.sleep_forever()


async def test_a_lone_error_beside_cancelled_siblings_is_raised_as_itself() -> None:
    with pytest.raises(ConfigError, match="bad address") as caught, lone_error_unwrapped():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sleep_forever)
            nursery.start_soon(_fail, ConfigError("bad address"))
    assert caught.value.__suppress_context__


async def test_two_errors_stay_a_group() -> None:
    with pytest.raises(ExceptionGroup) as caught, lone_error_unwrapped():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_fail, ConfigError("one"))
            nursery.start_soon(_fail, StorageError("two"))
    assert len(caught.value.exceptions) == 2


def test_a_foreign_error_keeps_its_group() -> None:
    group = ExceptionGroup("x", [ConfigError("ours"), ValueError("a bug")])
    assert single_error(group) is None
    nested = BaseExceptionGroup("outer", [ExceptionGroup("inner", [StorageError("disk")])])
    assert isinstance(single_error(nested), StorageError)
