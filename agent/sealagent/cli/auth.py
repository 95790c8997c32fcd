"""``sealagent auth``: tokens for the manager's API (Lotus' ``auth api-info``).

``api-info`` prints the line an agent on another host needs.  When the manager listens on
every address (``[API] ListenAddress = "/ip4/0.0.0.0/tcp/2345/http"``) the line holds this
host's main address (the source of its default route) instead of the wildcard, which no
other host can dial, and a note on stderr says so; without any such address it holds
127.0.0.1 with a warning that only this host can use it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from sealagent.cli.miner import add_command_group, add_manager_command, manager_call, repo_of
from sealagent.rpc.netaddr import is_wildcard, loopback_for, primary_address
from sealagent.web.auth import PERMISSIONS, permissions_up_to


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``auth api-info`` and ``auth create-token``."""
    sub = add_command_group(subparsers, "auth", help="API tokens",
                            description="Create tokens for the manager's API.")
    for name, handler, text in (
            ("api-info", run_api_info, "print MINER_API_INFO=<token>:<multiaddr>"),
            ("create-token", run_create_token, "print a new token")):
        parser = add_manager_command(sub, name, handler, help=text)
        parser.add_argument("--perm", required=True, choices=PERMISSIONS,
                            help="the token gets this permission and every weaker one")


def _new_token(args: argparse.Namespace) -> str:
    return str(manager_call(args, "Auth.New", [permissions_up_to(args.perm)]))


def run_api_info(args: argparse.Namespace) -> int:
    """Print ``MINER_API_INFO=<token>:<multiaddr>`` for an agent."""
    info = repo_of(args).listen_info()
    if is_wildcard(info.host):
        listen = info.multiaddr
        host = primary_address(ipv6=":" in info.host)
        if host is None:
            host = loopback_for(info.host)
            print(f"sealagent: warning: the manager listens on {listen} but this host has no "
                  f"address besides loopback; {host} works only on this host",
                  file=sys.stderr)
        else:
            print(f"sealagent: note: the manager listens on {listen}; printing this host's "
                  f"address {host} (replace it if agents reach the manager at another one)",
                  file=sys.stderr)
        info = replace(info, host=host)
    print(f"MINER_API_INFO={_new_token(args)}:{info.multiaddr}")
    return 0


def run_create_token(args: argparse.Namespace) -> int:
    """Print a new token."""
    print(_new_token(args))
    return 0
