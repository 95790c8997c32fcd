"""The ``sealagent`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser(s) and sets ``handler`` to a function
``(args) -> int``.  A call imports only its own command's module (the others are listed
from :data:`~sealagent.cli.commands.COMMANDS`), and the modules import the manager, the
agent and the proofs inside the handlers that need them, so a command starts quickly.
Errors of the :class:`~sealagent.errors.SealAgentError` tree are
printed as one clear line and exit with status 1; usage errors exit with status 2; a
closed standard output (``| head``) ends the command quietly with status 141.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Collection, Sequence

from sealagent import __version__
from sealagent.cli.commands import COMMANDS
from sealagent.errors import ConfigError, SealAgentError

COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS)
"""Modules under ``sealagent.cli`` that register subcommands, in help order."""

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
"""Exit status when standard output's reader is gone (as if killed by SIGPIPE)."""


def build_parser(only: Collection[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    :param only: the commands whose modules are imported and whose parsers are built in
        full; the others are listed with their help line only (None: every command).
    """
    parser = argparse.ArgumentParser(
        prog="sealagent",
        description="Filecoin sealing cluster: manager, worker agents and PoRep backends.",
    )
    parser.add_argument("--version", action="version", version=f"sealagent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMANDS.items():
        if only is None or name in only:
            module = importlib.import_module(f"sealagent.cli.{name}")
            module.register(sub)
        else:
            sub.add_parser(name, help=text)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list runs: its first word not an option (None: none)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sealagent`` command line; returns the process exit status.

    When the reader of standard output goes away (``sealagent ... | head``), the command
    stops quietly with status 141 (128 + SIGPIPE), as a Unix tool killed by SIGPIPE does.
    """
    try:
        status = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return status


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _unwrapped(handler: Callable[[argparse.Namespace], int | None],
               args: argparse.Namespace) -> int:
    """Run a command's handler, a Trio nursery's lone error raised as itself, so that it
    is reported in one line like any other error."""
    try:
        return handler(args) or 0
    except BaseExceptionGroup as group:
        from sealagent.nurseries import raise_lone_error  # loads trio: only when needed

        raise_lone_error(group)


def _run(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only={command_of(words) or ""})
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(_unwrapped(handler, args))
    except ConfigError as exc:
        print(f"sealagent: error: {exc}", file=sys.stderr)
        return 2
    except SealAgentError as exc:
        print(f"sealagent: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sealagent: interrupted", file=sys.stderr)
        return 130
