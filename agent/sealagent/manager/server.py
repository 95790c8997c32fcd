"""``sealagent miner run``: open the repo, serve the API, run the service.

:func:`serve_manager` wires the pieces: the database, the beacon (its genesis and secret
persist in the database so epochs and randomness survive restarts), the service, the
JSON-RPC app with ``/remote`` (the manager's storage paths and staged pieces) and
``/debug/metrics`` mounted, and hypercorn.  It writes ``<repo>/api`` once listening.
"""

from __future__ import annotations

import functools
import gc
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import trio

from sealagent.errors import ConfigError
from sealagent.manager.api import build_registry
from sealagent.manager.beacon import LocalBeacon
from sealagent.manager.dashboard import PREFIX as DASHBOARD
from sealagent.manager.dashboard import Dashboard
from sealagent.manager.db import Database, Transaction
from sealagent.manager.driver import ProofChecker
from sealagent.manager.local_agent import local_agent_config
from sealagent.manager.piece_route import PIECE_ROUTE, PieceHandler
from sealagent.manager.proof_check import check_proof
from sealagent.manager.repo import MinerRepo
from sealagent.manager.revocations import TokenRevocations
from sealagent.manager.service import ManagerService
from sealagent.manager.staging import staging_path
from sealagent.rpc.asgi import RPCApp
from sealagent.rpc.jsonrpc import Dispatcher
from sealagent.rpc.netaddr import is_wildcard
from sealagent.rpc.server import check_bind, start_server
from sealagent.storage.remote import RemoteHandler
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.web.auth import APIInfo, jwt_verifier
from sealagent.worker.agent import run_agent

_LISTEN = re.compile(r"^/(?P<proto>ip4|ip6|dns|dns4|dns6)/(?P<host>[^/]+)/tcp/(?P<port>[0-9]+)"
                     r"(?:/http)?/?$")
_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>[0-9]+)$")
_log = structlog.get_logger("sealagent.manager")


def parse_listen(address: str) -> tuple[str, int]:
    """``/ip4/HOST/tcp/PORT/http`` or ``HOST:PORT`` (port 0 = any free port)."""
    text = address.strip()
    match = _LISTEN.match(text) or _HOST_PORT.match(text)
    if match is None:
        raise ConfigError(f"bad listen address {address!r}; expected /ip4/HOST/tcp/PORT/http "
                          "or HOST:PORT")
    port = int(match["port"])
    if port > 65535:
        raise ConfigError(f"bad port in listen address {address!r}")
    return match["host"].strip("[]"), port


@dataclass
class RunningManager:
    """A manager started by :func:`serve_manager`."""

    service: ManagerService
    url: str
    stop: Callable[[], None]


async def _beacon_state(db: Database, clock: Callable[[], float]) -> tuple[float, bytes]:
    """The beacon's genesis time and secret, created on the first run."""
    def read_or_create(tx: Transaction) -> tuple[float, bytes]:
        genesis, secret = tx.get_meta("beacon_genesis"), tx.get_meta("beacon_secret")
        if genesis is None or secret is None:
            genesis, secret = clock(), secrets.token_hex(32)
            tx.set_meta("beacon_genesis", genesis)
            tx.set_meta("beacon_secret", secret)
        return float(genesis), bytes.fromhex(secret)

    return await db.transaction(read_or_create)


def _has_groth16_parameters(proof: RegisteredSealProof) -> bool:
    """Whether this host has the sector size's Groth16 parameters (loads the SNARK code)."""
    from sealagent.snark.parameters import parameters_exist

    return parameters_exist(proof)


async def serve_manager(repo: MinerRepo, *, listen: str | None = None,
                        proof_checker: ProofChecker = check_proof,
                        clock: Callable[[], float] | None = None,
                        task_status: trio.TaskStatus[RunningManager] = trio.TASK_STATUS_IGNORED
                        ) -> None:
    """Run a manager from ``repo`` until cancelled (or until its ``stop`` is called)."""
    now = clock or time.time
    config = repo.require().config()
    host, port = parse_listen(listen or config.api.listen_address)
    bind = f"{host}:{port}"
    check_bind(bind)
    secret = repo.secret()
    db = await Database.open(repo.db_file)
    try:
        genesis, beacon_secret = await _beacon_state(db, now)
        beacon = LocalBeacon(genesis, config.sealing.epoch_duration, beacon_secret, now)
        local_paths = await trio.to_thread.run_sync(repo.storage.open_all)
        staging = await trio.to_thread.run_sync(staging_path, repo.staging)
        service = ManagerService(config, db, beacon, token=repo.token(),
                                 proof_checker=proof_checker, local_paths=local_paths,
                                 staging=staging, clock=now)
        await service.load()
        # The loaded state lives as long as the manager: keep full collections from
        # walking it again and again (100–300 ms pauses with a million live objects).
        gc.freeze()
        revocations = await TokenRevocations.load(db)
        verify = jwt_verifier(secret, revocations.ids)
        app = RPCApp(Dispatcher(build_registry(service, secret, revocations, repo.storage)),
                     verify)
        app.mount("/remote", RemoteHandler(lambda: [*service.files.local_paths, staging], verify))
        app.mount(PIECE_ROUTE, PieceHandler(service.unseals, verify))
        app.mount("/debug/metrics", service.metrics)
        app.mount(DASHBOARD, Dashboard(service, verify))
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery, app, bind)
            bound = server.url.rsplit(":", 1)
            bound_port = int(bound[1])
            public_host = socket.getfqdn() if is_wildcard(host) else host
            public = f"http://{public_host}:{bound_port}"
            service.set_public_url(public)
            repo.write_api(APIInfo(repo.token(), host, bound_port).multiaddr)
            await nursery.start(service.run)
            if config.storage.local_worker:
                local_agent = await nursery.start(functools.partial(
                    run_agent, local_agent_config(config, repo, repo.api_info(), public)))
                service.local_agent = local_agent
            _log.info("manager listening", url=public, api=str(repo.api_file),
                      dashboard=f"{public}{DASHBOARD}/",
                      miner=config.miner.actor_id, proof=service.proof.name)
            if config.proving.snark and not _has_groth16_parameters(service.proof):
                _log.warning("[Proving] Snark = true but this host has no Groth16 parameters "
                             "for the sector size: Commit2 proofs cannot be verified here "
                             "(run 'sealagent params generate --sector-size SIZE')",
                             proof=service.proof.name)

            def stop() -> None:
                server.stop()
                nursery.cancel_scope.cancel()

            task_status.started(RunningManager(service, public, stop))
    finally:
        with trio.CancelScope(shield=True):
            await db.aclose()
