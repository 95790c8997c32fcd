"""``sealagent auth``: tokens for the manager's API (Lotus' ``auth api-info``).

``api-info`` prints the line an agent on another host needs.  When the manager listens on
every address (``[API] ListenAddress = "/ip4/0.0.0.0/tcp/2345/http"``) the line holds this
host's main address (the source of its default route) instead of the wildcard, which no
other host can dial, and a note on stderr says so; without any such address it holds
127.0.0.1 with a warning that only this host can use it.  Every ``auth`` command also
works from another host with only ``$MINER_API_INFO`` set.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.miner import (
    add_command_group,
    add_manager_command,
    manager_call,
    remote_api_info,
    repo_of,
)
from sealagent.errors import ConfigError
from sealagent.manager.config import parse_duration
from sealagent.rpc.netaddr import is_wildcard, loopback_for, primary_address
from sealagent.web.auth import PERMISSIONS, VERIFY_CACHE_S, permissions_up_to, token_id


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``auth api-info``, ``auth create-token`` and ``auth revoke``."""
    sub = add_command_group(subparsers, "auth", help=COMMANDS["auth"],
                            description="Create and revoke tokens for the manager's API.")
    for name, handler, text in (
            ("api-info", run_api_info, "print MINER_API_INFO=<token>:<multiaddr>"),
            ("create-token", run_create_token, "print a new token (its id on stderr)")):
        parser = add_manager_command(sub, name, handler, help=text)
        parser.add_argument("--perm", required=True, choices=PERMISSIONS,
                            help="the token gets this permission and every weaker one")
        parser.add_argument("--expires", metavar="DURATION", type=_duration,
                            help="the token stops working after this long (e.g. 24h, 30m)")
    revoke = add_manager_command(
        sub, "revoke", run_revoke, help="revoke a token",
        description="Revoke a token by its id (as `auth create-token` prints it) or by the "
                    "token itself.  The manager refuses it at once; agents within "
                    f"{VERIFY_CACHE_S:g} seconds.")
    revoke.add_argument("token", metavar="ID", help="the token's id, or the token")


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a token's lifetime must be positive")
    return seconds


def _new_token(args: argparse.Namespace) -> str:
    return str(manager_call(args, "Auth.New", [permissions_up_to(args.perm), args.expires]))


def run_api_info(args: argparse.Namespace) -> int:
    """Print ``MINER_API_INFO=<token>:<multiaddr>`` for an agent.

    From another host (``$MINER_API_INFO`` set, no ``--repo``) the address is the one that
    variable names: the manager was reached there.
    """
    remote = remote_api_info(args)
    info = remote if remote is not None else repo_of(args).listen_info()
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
    """Print a new token (and its id, for ``auth revoke``, on stderr)."""
    token = _new_token(args)
    print(f"token id: {token_id(token)}", file=sys.stderr)
    print(token)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by id (or given whole)."""
    target = args.token.strip()
    ident = token_id(target) if target.count(".") == 2 else target
    if ident is None:
        raise ConfigError("that token has no id (it was made before tokens had ids); it "
                          "cannot be revoked alone: replace the repo's JWT secret to void "
                          "every token")
    if manager_call(args, "Auth.Revoke", [ident]):
        print(f"Revoked token {ident}")
    else:
        print(f"Token {ident} was already revoked")
    return 0
