"""The ``sealagent`` entry point: exit statuses, and a reader that goes away (``| head``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sealagent.cli import EXIT_BROKEN_PIPE, main

ENTRY = "import sys; from sealagent.cli import main; sys.exit(main(sys.argv[1:]))"


def test_closed_stdout_ends_the_command_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as closed:
        monkeypatch.setattr(sys, "stdout", closed)
        assert main(["resources", "--default"]) == EXIT_BROKEN_PIPE == 141
        print("later output goes nowhere, without an error")
        closed.flush()


def test_piping_into_a_reader_that_quits_leaves_no_traceback() -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        child = subprocess.run([sys.executable, "-c", ENTRY, "resources", "--default"],
                               stdout=write,
                               stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert (child.returncode, child.stderr) == (EXIT_BROKEN_PIPE, "")


def test_usage_and_config_errors_exit_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["no-such-command"])
    assert usage.value.code == 2
