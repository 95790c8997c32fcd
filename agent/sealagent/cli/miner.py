"""``sealagent miner init|run``: create a manager repo, run the manager.

Also the helpers every manager-facing command shares: ``--repo`` and ``--timeout``, and
:func:`manager_call`, which never waits longer than that timeout.  The manager is found
as ``lotus-miner`` finds it: ``--repo`` when given, else ``$MINER_API_INFO``
(``TOKEN:/ip4/HOST/tcp/PORT/http``, as ``sealagent auth api-info`` prints it; no local repo
needed, so the admin commands work from another host), else the repo at
``$SEALAGENT_MINER_PATH`` or ``~/.sealagent-miner``.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sealagent.cli.commands import COMMANDS
from sealagent.errors import ConfigError, RPCTransportError, SealAgentError
from sealagent.manager.config import (
    APIConfig,
    ManagerConfig,
    MinerConfig,
    ProvingConfig,
    SealingConfig,
    parse_duration,
)
from sealagent.manager.repo import DEFAULT_REPO, REPO_ENV, MinerRepo, resolve_repo
from sealagent.vocab.registry import parse_sector_size
from sealagent.web.auth import APIInfo, api_info_from_env

if TYPE_CHECKING:
    from sealagent.rpc.client import Params

DEFAULT_TIMEOUT = 10.0

API_INFO_ENV = "MINER_API_INFO"
"""Environment variable naming a (possibly remote) manager's API and a token."""


def add_repo_arguments(parser: argparse.ArgumentParser, *,
                       timeout: float = DEFAULT_TIMEOUT) -> None:
    """Add ``--repo`` and ``--timeout`` to a manager-facing command."""
    parser.add_argument("--repo", metavar="DIR",
                        help=f"manager repo (default ${API_INFO_ENV} when set, else "
                             f"${REPO_ENV} or {DEFAULT_REPO})")
    parser.add_argument("--timeout", type=float, default=timeout, metavar="SECONDS",
                        help=f"give up on the manager after this long (default {timeout:g})")


def add_command_group(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                      name: str,
                      **kwargs: Any) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add command ``name`` (``help``, ``description`` in ``kwargs``); its subcommands go
    into the returned action, one of them required."""
    group = subparsers.add_parser(name, **kwargs)
    return group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)


def add_manager_command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                        handler: Callable[[argparse.Namespace], int], *,
                        timeout: float = DEFAULT_TIMEOUT,
                        **kwargs: Any) -> argparse.ArgumentParser:
    """Add subcommand ``name``, which talks to the manager: ``--repo``, ``--timeout`` and
    ``handler``; returns its parser for its own arguments."""
    parser = sub.add_parser(name, **kwargs)
    add_repo_arguments(parser, timeout=timeout)
    parser.set_defaults(handler=handler)
    return parser


def repo_of(args: argparse.Namespace) -> MinerRepo:
    """The repo named by ``--repo`` / ``$SEALAGENT_MINER_PATH``."""
    return MinerRepo(resolve_repo(args.repo))


def remote_api_info(args: argparse.Namespace) -> APIInfo | None:
    """``$MINER_API_INFO`` when the command should use it (no ``--repo`` given), else None.

    :raises ConfigError: the variable is set but malformed.
    """
    if args.repo is not None or not os.environ.get(API_INFO_ENV, "").strip():
        return None
    return api_info_from_env(API_INFO_ENV)


def manager_api_info(args: argparse.Namespace) -> APIInfo:
    """The manager's address and token: ``$MINER_API_INFO`` when it applies
    (:func:`remote_api_info`), else the repo's."""
    remote = remote_api_info(args)
    return remote if remote is not None else repo_of(args).require().api_info()


def manager_call(args: argparse.Namespace, method: str, params: Params = None) -> Any:
    """Call the manager (``--repo``, ``$MINER_API_INFO`` or the default repo); fails
    clearly within ``--timeout``."""
    from sealagent.rpc.client import call_sync

    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    remote = remote_api_info(args)
    try:
        return call_sync(manager_api_info(args), method, params, timeout=args.timeout)
    except RPCTransportError as exc:
        where = (f"at {remote.multiaddr} (from ${API_INFO_ENV})" if remote is not None
                 else f"for {repo_of(args).root}")
        raise RPCTransportError(f"{exc} (is `sealagent miner run` running {where}?)") from None


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``miner init`` and ``miner run``."""
    sub = add_command_group(subparsers, "miner", help=COMMANDS["miner"],
                            description="Create and run the sealing manager.")
    init = add_manager_command(
        sub, "init", run_init, help="create a manager repo",
        description="Create the manager repo: config.toml, the JWT secret, an admin token, "
                    "and a local storage path.")
    init.add_argument("--actor", type=int, default=MinerConfig.actor_id,
                      help="miner actor id (f0<id>; default %(default)s)")
    init.add_argument("--sector-size", default="2KiB",
                      help="sector size: 2KiB, 8MiB, 512MiB, 32GiB, 64GiB (default 2KiB)")
    init.add_argument("--listen", default=APIConfig.listen_address,
                      help="API listen multiaddr (default %(default)s)")
    init.add_argument("--epoch-duration", default="4s",
                      help="devnet epoch duration (default %(default)s)")
    init.add_argument("--no-snark", action="store_true",
                      help="check C1's vanilla proofs instead of running C2 ([Proving] Snark)")
    init.add_argument("--no-local-storage", action="store_true",
                      help="do not make the repo a storage path")

    run = add_manager_command(
        sub, "run", run_manager, help="run the manager",
        description="Run the sealing manager: the API on /rpc/v0, the sector pipeline, the "
                    "scheduler.  Stops on SIGINT/SIGTERM.")
    run.add_argument("--listen", help="override [API] ListenAddress (multiaddr or HOST:PORT)")
    run.add_argument("--log-level", default="info",
                     choices=["debug", "info", "warning", "error"],
                     help="least important log lines shown (default %(default)s)")


def run_init(args: argparse.Namespace) -> int:
    """Create the repo."""
    config = ManagerConfig(
        api=APIConfig(listen_address=args.listen),
        miner=MinerConfig(actor_id=args.actor, sector_size=parse_sector_size(args.sector_size)),
        proving=ProvingConfig(snark=not args.no_snark),
        sealing=SealingConfig(epoch_duration=parse_duration(args.epoch_duration)),
    )
    repo = repo_of(args)
    repo.init(config, local_storage=not args.no_local_storage)
    print(f"Initialized manager repo {repo.root} (miner f0{args.actor}, "
          f"{args.sector_size} sectors)")
    return 0


def run_manager(args: argparse.Namespace) -> int:
    """Run until a signal arrives; start-up errors are one line (exit status 1)."""
    repo = repo_of(args).require()
    try:
        _serve(repo, args)
    except SealAgentError as exc:
        print(f"sealagent: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve(repo: MinerRepo, args: argparse.Namespace) -> None:
    """Check the config, take the repo lock and serve; a nursery's lone error is raised
    as itself."""
    import trio

    from sealagent.manager.logs import configure_logging
    from sealagent.nurseries import lone_error_unwrapped

    repo.config()
    if not repo.config_file.read_bytes().strip():
        print(f"sealagent: warning: {repo.config_file} is empty; running on the defaults",
              file=sys.stderr)
    lock = repo.lock()
    configure_logging(args.log_level)
    try:
        with lone_error_unwrapped():
            trio.run(_serve_until_signal, repo, args.listen)
    finally:
        lock.close()


async def _serve_until_signal(repo: MinerRepo, listen: str | None) -> None:
    import trio

    from sealagent.manager.dashboard import login_hint
    from sealagent.manager.server import serve_manager

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(functools.partial(serve_manager, repo,
                                                            listen=listen))
            print(f"manager listening on {running.url}", file=sys.stderr, flush=True)
            print(login_hint(running.url), file=sys.stderr, flush=True)
            async for _ in signals:
                running.stop()
                nursery.cancel_scope.cancel()
                break
