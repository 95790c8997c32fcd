"""JWT tokens, permissions and API-info strings, in Lotus' conventions.

A token is an HS256 JWT whose payload lists what it may do: ``{"Allow": ["read", "write",
"sign", "admin"]}`` (any subset), with an id (``jti``), an issue time (``iat``) and
optionally an expiry (``exp``).  A token is revoked by its id: the manager keeps the
revoked ids and refuses those tokens; agents ask the manager (``Auth.Verify``) about the
tokens presented to them, so a revocation reaches them within :data:`VERIFY_CACHE_S`.
The signing secret is 32 random bytes kept in a file of mode 0600 in the repo
directory.  Permissions do not
imply each other: a method that needs ``admin`` accepts only tokens whose ``Allow`` list
contains ``admin``; :func:`permissions_up_to` gives the list ``auth api-info --perm P``
puts in a token.

An API-info string is ``<token>:<multiaddr>``, e.g.
``eyJ...:/ip4/127.0.0.1/tcp/2345/http``; the multiaddr may also be ``/ip6/...`` or
``/dns/...`` (``/dns4``, ``/dns6``), end in ``/http``, ``/https``, ``/ws`` or ``/wss``, or
be a plain URL (``<token>:http://host:port``).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jwt

from sealagent.errors import AuthError, ConfigError, SealAgentError

PERMISSIONS: Final = ("read", "write", "sign", "admin")
"""Every permission a token can carry, from least to most powerful."""

MIN_SECRET_BYTES: Final = 32
"""HS256 keys shorter than this are refused (RFC 7518 §3.2)."""

_ALGORITHM: Final = "HS256"

TOKEN_ID_BYTES: Final = 8
"""Random bytes in a token's id (printed as hex)."""

VERIFY_CACHE_S: Final = 10.0
"""How long an agent trusts the manager's answer about a token."""

_VERIFY_CACHE_ENTRIES: Final = 256

TokenVerifier = Callable[[str], Awaitable[frozenset[str]]]
"""An async function that checks a bearer token and returns the permissions it grants,
raising :class:`~sealagent.errors.AuthError` when it is not acceptable."""


def check_permission(perm: str) -> str:
    """Return ``perm`` if it is a known permission; ConfigError otherwise."""
    if perm not in PERMISSIONS:
        raise ConfigError(f"unknown permission {perm!r}; expected one of {', '.join(PERMISSIONS)}")
    return perm


def permissions_up_to(perm: str) -> list[str]:
    """The permissions a token for ``perm`` carries: ``perm`` and every weaker one."""
    check_permission(perm)
    return list(PERMISSIONS[: PERMISSIONS.index(perm) + 1])


def _check_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"JWT secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are required"
        )
    return secret


def create_token(secret: bytes, allow: Iterable[str], *, expires_in: float | None = None) -> str:
    """Sign a token granting ``allow``, with a fresh id and its issue time; with
    ``expires_in`` seconds it carries an ``exp``."""
    now = int(time.time())
    payload: dict[str, object] = {"Allow": [check_permission(p) for p in allow], "iat": now,
                                  "jti": secrets.token_hex(TOKEN_ID_BYTES)}
    if expires_in is not None:
        payload["exp"] = now + round(expires_in)
    return jwt.encode(payload, _check_secret(secret), algorithm=_ALGORITHM)


def token_id(token: str) -> str | None:
    """The id (``jti``) a token carries, read without checking its signature; None for a
    token without one.  ConfigError when ``token`` is not a JWT at all."""
    value = _claims(token).get("jti")
    return value if isinstance(value, str) else None


def _allowed(payload: Mapping[str, object]) -> frozenset[str]:
    allow = payload.get("Allow")
    if not isinstance(allow, list) or not all(isinstance(p, str) for p in allow):
        raise AuthError("token has no valid Allow list")
    unknown = sorted(set(allow) - set(PERMISSIONS))
    if unknown:
        raise AuthError(f"token grants unknown permissions: {', '.join(unknown)}")
    return frozenset(allow)


def _claims(token: str) -> dict[str, object]:
    """The payload of ``token``, signature unchecked (ConfigError if it is not a JWT)."""
    try:
        payload: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise ConfigError(f"not a token: {exc}") from None
    return payload


def verify_token(secret: bytes, token: str,
                 revoked: Container[str] = frozenset()) -> frozenset[str]:
    """Check the signature, expiry and revocation of ``token``; return what it grants."""
    if not token:
        raise AuthError("missing token")
    try:
        payload = jwt.decode(token, _check_secret(secret), algorithms=[_ALGORITHM])
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    if payload.get("jti") in revoked:
        raise AuthError(f"token {payload['jti']} was revoked")
    return _allowed(payload)


def jwt_verifier(secret: bytes, revoked: Container[str] = frozenset()) -> TokenVerifier:
    """A verifier that checks tokens signed with ``secret`` (the manager's own tokens);
    ``revoked`` is consulted at every call, so ids added to it later are refused."""
    _check_secret(secret)

    async def verify(token: str) -> frozenset[str]:
        return verify_token(secret, token, revoked)

    return verify


def delegated_verifier(ask: Callable[[str], Awaitable[list[str]]], *, own: str = "",
                       cache_s: float = VERIFY_CACHE_S,
                       clock: Callable[[], float] = time.monotonic) -> TokenVerifier:
    """A verifier for a host without the signing secret (an agent): ``ask`` the manager
    (``Auth.Verify``), which knows the revoked tokens, and keep its answer ``cache_s``.

    ``ask`` raises AuthError for a refused token; any other error (the manager cannot be
    reached) falls back on the last answer about that token.  A token never checked
    before is then refused, except ``own`` (the token this host was given, so that its
    operator can still reach it while the manager is down), which grants what it says.
    """
    answers: dict[str, tuple[float, frozenset[str] | AuthError]] = {
        own: (-math.inf, _allowed(_claims(own)))} if own else {}

    async def verify(token: str) -> frozenset[str]:
        if not token:
            raise AuthError("missing token")
        cached = answers.get(token)
        if cached is None or clock() - cached[0] >= cache_s:
            try:
                answer: frozenset[str] | AuthError = frozenset(await ask(token))
            except AuthError as exc:
                answer = AuthError(str(exc))
            except SealAgentError as exc:
                if cached is None:
                    raise AuthError(f"cannot check the token with the manager: {exc}") from None
                answer = cached[1]
            if len(answers) >= _VERIFY_CACHE_ENTRIES:
                answers.pop(next(iter(answers)))
            answers[token] = cached = (clock(), answer)
        if isinstance(cached[1], AuthError):
            raise cached[1]
        return cached[1]

    return verify


def load_or_create_secret(path: str | Path) -> bytes:
    """Read the JWT secret at ``path``, creating 32 random bytes (mode 0600) if absent.

    The file holds the secret in hex.  A file readable by group or others, or one that is
    not a valid secret, is refused with ConfigError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise ConfigError(f"cannot create JWT secret {path}: {exc}") from None
    secret = secrets.token_bytes(MIN_SECRET_BYTES)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return secret


def _read_secret(path: Path) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read JWT secret {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(
            f"JWT secret {path} has mode {mode:04o}; it must not be readable by others "
            f"(chmod 600 {path})"
        )
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"JWT secret {path} is not hex") from None
    return _check_secret(secret)


# ---------------------------------------------------------------------------- API info

_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_URL = re.compile(r"^(?P<scheme>https?|wss?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[\]]+)"
                  r":(?P<port>[0-9]+)/?$")
_SECURE: Final = {"http": "http", "ws": "http", "https": "https", "wss": "https"}


@dataclass(frozen=True)
class APIInfo:
    """A parsed API-info string: the token and where to reach the API."""

    token: str
    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:2345`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def rpc_url(self) -> str:
        """The JSON-RPC endpoint, ``<url>/rpc/v0``."""
        return f"{self.url}/rpc/v0"

    @property
    def multiaddr(self) -> str:
        """The address as a multiaddr, e.g. ``/ip4/127.0.0.1/tcp/2345/http``."""
        return f"/{_host_protocol(self.host)}/{self.host}/tcp/{self.port}/{self.scheme}"

    def __str__(self) -> str:
        return f"{self.token}:{self.multiaddr}"


def _host_protocol(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _DNS_NAME.match(host):
            raise ConfigError(f"not a valid host name or IP address: {host!r}") from None
        return "dns"
    return "ip4" if address.version == 4 else "ip6"


def _check_port(text: str, origin: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"bad port {text!r} in API info {origin!r}")
    return int(text)


def format_api_info(token: str, host: str, port: int, *, scheme: str = "http") -> str:
    """``TOKEN:/ip4/127.0.0.1/tcp/2345/http`` (``/ip6/`` or ``/dns/`` as the host needs)."""
    if scheme not in ("http", "https"):
        raise ConfigError(f"unsupported scheme {scheme!r}; expected http or https")
    _check_port(str(port), f"{host}:{port}")
    return str(APIInfo(token, host, port, scheme))


def parse_api_info(text: str) -> APIInfo:
    """Parse ``<token>:<multiaddr or URL>``; ConfigError says what is wrong."""
    text = text.strip()
    if not text:
        raise ConfigError("empty API info")
    if "," in text:
        raise ConfigError(f"API info {text!r} lists several endpoints; give exactly one")
    if text.startswith("/") or text.split(":", 1)[-1].startswith("//"):
        token, address = "", text
    elif ":" in text:
        token, address = text.split(":", 1)
    else:
        raise ConfigError(
            f"API info {text!r} has no address; expected TOKEN:/ip4/HOST/tcp/PORT/http"
        )
    if address.startswith("/"):
        host, port, scheme = _parse_multiaddr(address, text)
    else:
        match = _URL.match(address)
        if match is None:
            raise ConfigError(f"API info {text!r}: {address!r} is neither a multiaddr nor a URL")
        host = match["host"].strip("[]")
        port = _check_port(match["port"], text)
        scheme = _SECURE[match["scheme"]]
        _host_protocol(host)
    return APIInfo(token, host, port, scheme)


def _parse_multiaddr(address: str, origin: str) -> tuple[str, int, str]:
    parts = address.split("/")[1:]
    if len(parts) < 4 or parts[2] != "tcp":
        raise ConfigError(
            f"API info {origin!r}: expected /ip4|ip6|dns/HOST/tcp/PORT[/http], got {address!r}"
        )
    proto, host, _, port_text, *rest = parts
    if proto not in ("ip4", "ip6", "dns", "dns4", "dns6"):
        raise ConfigError(f"API info {origin!r}: unsupported address protocol /{proto}")
    expected = _host_protocol(host)
    if proto in ("ip4", "ip6") and expected != proto:
        raise ConfigError(f"API info {origin!r}: {host!r} is not a valid /{proto} address")
    port = _check_port(port_text, origin)
    suffix = "/".join(rest)
    schemes = {"": "http", "http": "http", "ws": "http", "https": "https", "wss": "https",
               "tls/http": "https", "tls/ws": "https"}
    if suffix not in schemes:
        raise ConfigError(f"API info {origin!r}: unsupported transport /{suffix}")
    return host, port, schemes[suffix]


def api_info_from_env(name: str = "MINER_API_INFO",
                      environ: Mapping[str, str] | None = None) -> APIInfo:
    """Parse the API info in environment variable ``name`` (ConfigError if unset or bad)."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; expected TOKEN:/ip4/HOST/tcp/PORT/http")
    try:
        return parse_api_info(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
