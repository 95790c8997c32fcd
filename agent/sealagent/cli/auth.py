"""``sealagent auth``: tokens for the manager's API (Lotus' ``auth api-info``)."""

from __future__ import annotations

import argparse
from typing import Any

from sealagent.cli.miner import add_repo_arguments, manager_call, repo_of
from sealagent.rpc.auth import PERMISSIONS, permissions_up_to


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``auth api-info`` and ``auth create-token``."""
    auth = subparsers.add_parser("auth", help="API tokens",
                                 description="Create tokens for the manager's API.")
    sub = auth.add_subparsers(dest="auth_command", metavar="COMMAND", required=True)
    for name, handler, text in (
            ("api-info", run_api_info, "print MINER_API_INFO=<token>:<multiaddr>"),
            ("create-token", run_create_token, "print a new token")):
        parser = sub.add_parser(name, help=text)
        add_repo_arguments(parser)
        parser.add_argument("--perm", required=True, choices=PERMISSIONS,
                            help="the token gets this permission and every weaker one")
        parser.set_defaults(handler=handler)


def _new_token(args: argparse.Namespace) -> str:
    return str(manager_call(args, "Auth.New", [permissions_up_to(args.perm)]))


def run_api_info(args: argparse.Namespace) -> int:
    """Print ``MINER_API_INFO=<token>:<multiaddr>`` for an agent."""
    address = repo_of(args).api_info().multiaddr
    print(f"MINER_API_INFO={_new_token(args)}:{address}")
    return 0


def run_create_token(args: argparse.Namespace) -> int:
    """Print a new token."""
    print(_new_token(args))
    return 0
