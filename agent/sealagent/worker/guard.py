"""A small process between the agent and a phase's child: the child dies with the agent.

The agent starts ``python -m sealagent.worker.guard CMD...`` with a pipe on its stdin
whose other end only the agent holds; the guard leads a process group of its own (it
makes one if it was not started as a group leader).  The guard
starts ``CMD`` in the same group and waits for whichever comes first:

* the command exits → the guard exits the same way (same status, or the same signal);
* the pipe reaches end-of-file, i.e. the agent is gone (even by ``kill -9``) → the guard
  kills the whole group, so no orphaned phase keeps writing the sector's files while a
  restarted agent resumes the task.

Killing the group (``os.killpg(guard_pid, SIGKILL)``) stops both, which is how the agent
aborts a phase.  Only the standard library is used, to keep the start fast.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence


def _exit_like(returncode: int) -> int:
    """Exit with ``returncode``; a negative one means "killed by that signal"."""
    if returncode < 0:
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    return returncode if returncode >= 0 else 128 - returncode


def main(argv: Sequence[str]) -> int:
    """Run ``argv`` and watch stdin (the agent's lifeline); returns the exit status."""
    if not argv:
        print("usage: python -m sealagent.worker.guard CMD [ARG...]", file=sys.stderr)
        return 2
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)  # a group of its own: the kill below never reaches the caller
    child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL)
    pidfd = os.pidfd_open(child.pid)
    lifeline = sys.stdin.fileno()
    watched = [pidfd, lifeline]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if pidfd in ready:
            return _exit_like(child.wait())
        if lifeline in ready and not os.read(lifeline, 4096):
            os.killpg(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
