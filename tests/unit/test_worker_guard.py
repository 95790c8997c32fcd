"""The guard process: it exits like its command, and kills it when the agent vanishes."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

GUARD = [sys.executable, "-m", "sealagent.worker.guard"]


def _gone(pid: int) -> bool:
    """True when ``pid`` exited (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Wait until ``pid`` exits (woken by its pidfd, no polling); True when it did."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return _gone(pid)


def _first_line(stream: IO[bytes] | None) -> str:
    """The first line the guarded command printed (its pid)."""
    assert stream is not None
    return stream.readline().decode().strip()


@pytest.mark.parametrize(("script", "expected"), [("exit 0", 0), ("exit 3", 3),
                                                  ("kill -TERM $$", -15)])
def test_guard_exits_like_its_command(script: str, expected: int) -> None:
    read, write = os.pipe()
    try:
        done = subprocess.run([*GUARD, "sh", "-c", script], stdin=read, timeout=30,
                              check=False)
    finally:
        os.close(read)
        os.close(write)
    assert done.returncode == expected


def test_guard_kills_its_command_when_the_lifeline_closes() -> None:
    read, write = os.pipe()
    guard = subprocess.Popen([*GUARD, "sh", "-c", "echo $$; exec sleep 60"],
                             stdin=read, stdout=subprocess.PIPE, start_new_session=True)
    os.close(read)
    child = int(_first_line(guard.stdout))
    assert not _gone(child)
    os.close(write)  # what the agent's death does
    assert guard.wait(timeout=10) == -9
    assert guard.stdout is not None
    guard.stdout.close()
    assert _wait_gone(child)


def test_guard_never_kills_its_caller() -> None:
    # Started without a group of its own and without a lifeline (stdin at EOF at once):
    # the guard kills its command and itself, and only them.
    done = subprocess.run([*GUARD, "sh", "-c", "echo $$; exec sleep 30"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=30,
                          check=False)
    assert done.returncode == -9
    if done.stdout.strip():  # the command may be killed before it prints
        assert _wait_gone(int(done.stdout))


def test_guard_without_a_command_is_a_usage_error() -> None:
    done = subprocess.run(GUARD, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                          check=False)
    assert done.returncode == 2
    assert b"usage" in done.stderr
