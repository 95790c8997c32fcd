"""Every command and argument of ``sealagent`` says what it is, in plain text."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator

from sealagent.cli import build_parser

MARKUP = re.compile(r"``|:[a-z]+:`")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
             ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """Every (sub)command: its words, its parser and the help its parent lists for it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, listed.get(name)
                yield from commands(sub, (*path, name))


def test_every_command_and_argument_is_described() -> None:
    missing, marked = [], []
    every = list(commands(build_parser()))
    assert len(every) > 30
    for path, parser, listed in every:
        name = " ".join(path)
        if not (listed or parser.description):
            missing.append(name)
        for text in (listed, parser.description):
            if text and MARKUP.search(text):
                marked.append(name)
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(label)
            elif MARKUP.search(action.help):
                marked.append(label)
    assert not missing, f"no description: {missing}"
    assert not marked, f"reST markup in help: {marked}"


def test_rendered_help_has_no_markup() -> None:
    for path, parser, _ in commands(build_parser()):
        text = parser.format_help()
        assert not MARKUP.search(text), " ".join(path)


def test_a_call_lists_every_command_but_builds_only_its_own() -> None:
    full = build_parser()
    lazy = build_parser(only={"sectors"})
    assert full.format_help() == lazy.format_help()
    lazy_commands = {" ".join(path) for path, _, _ in commands(lazy)}
    assert "sectors list" in lazy_commands and "sealing jobs" not in lazy_commands


def test_an_admin_command_imports_no_manager_agent_or_numpy() -> None:
    code = ("import sys\nfrom sealagent.cli import main\n"
            "try:\n    main(['sectors', 'list', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'numpy' or m.startswith("
            "('sealagent.manager.server', 'sealagent.worker.agent', 'sealagent.proofs.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
