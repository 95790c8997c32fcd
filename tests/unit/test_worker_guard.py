"""The guard process: it exits like its command, and kills it when the agent vanishes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

GUARD = [sys.executable, "-m", "sealagent.worker.guard"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


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


def test_guard_kills_its_command_when_the_lifeline_closes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    read, write = os.pipe()
    guard = subprocess.Popen([*GUARD, "sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
                             stdin=read, start_new_session=True)
    os.close(read)
    child = int(_wait_for(pid_file))
    assert _alive(child)
    os.close(write)  # what the agent's death does
    assert guard.wait(timeout=10) == -9
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_guard_never_kills_its_caller(tmp_path: Path) -> None:
    # Started without a group of its own and without a lifeline (stdin at EOF at once):
    # the guard kills its command and itself, and only them.
    pid_file = tmp_path / "pid"
    done = subprocess.run([*GUARD, "sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"],
                          stdin=subprocess.DEVNULL, timeout=30, check=False)
    assert done.returncode == -9
    if pid_file.exists() and pid_file.read_text().strip():
        child = int(pid_file.read_text())
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child)


def test_guard_without_a_command_is_a_usage_error() -> None:
    done = subprocess.run(GUARD, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                          check=False)
    assert done.returncode == 2
    assert b"usage" in done.stderr
