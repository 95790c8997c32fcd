"""JWT tokens, the secret file and API-info strings."""

from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path

import jwt
import pytest

from sealagent.errors import AuthError, ConfigError, RPCTransportError
from sealagent.web.auth import (
    PERMISSIONS,
    APIInfo,
    api_info_from_env,
    create_token,
    delegated_verifier,
    format_api_info,
    jwt_verifier,
    load_or_create_secret,
    parse_api_info,
    permissions_up_to,
    token_id,
    verify_token,
)

SECRET = bytes(range(32))


def test_token_round_trip_and_payload_is_lotus_shaped() -> None:
    token = create_token(SECRET, ["read", "admin"])
    assert verify_token(SECRET, token) == {"read", "admin"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(claims) == {"Allow", "iat", "jti"} and claims["Allow"] == ["read", "admin"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_wrong_key_expired_and_garbage_tokens_are_refused() -> None:
    token = create_token(SECRET, ["admin"])
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(secrets.token_bytes(32), token)
    expired = create_token(SECRET, ["admin"], expires_in=-10)
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, expired)
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(SECRET, "not.a.token")
    with pytest.raises(AuthError, match="missing"):
        verify_token(SECRET, "")


def test_token_claims_are_checked() -> None:
    no_allow = jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="Allow"):
        verify_token(SECRET, no_allow)
    bogus = jwt.encode({"Allow": ["read", "root"]}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="root"):
        verify_token(SECRET, bogus)
    with pytest.raises(ConfigError, match="unknown permission"):
        create_token(SECRET, ["superuser"])


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        create_token(b"short", ["read"])


def test_permissions_up_to() -> None:
    assert permissions_up_to("read") == ["read"]
    assert permissions_up_to("admin") == list(PERMISSIONS)
    with pytest.raises(ConfigError):
        permissions_up_to("everything")


async def test_verifiers() -> None:
    token = create_token(SECRET, ["read", "write"])
    assert await jwt_verifier(SECRET)(token) == {"read", "write"}
    revoked: set[str] = set()
    verify = jwt_verifier(SECRET, revoked)
    ident = token_id(token)
    assert ident is not None and len(ident) == 16
    revoked.add(ident)
    with pytest.raises(AuthError, match=f"token {ident} was revoked"):
        await verify(token)
    with pytest.raises(ConfigError):
        token_id("nonsense")


def test_tokens_have_an_id_and_an_issue_time() -> None:
    before = int(time.time())
    first, second = (create_token(SECRET, ["admin"]) for _ in range(2))
    assert first != second and token_id(first) != token_id(second)
    claims = jwt.decode(first, SECRET, algorithms=["HS256"])
    assert before <= claims["iat"] <= time.time() and "exp" not in claims
    expiring = jwt.decode(create_token(SECRET, ["read"], expires_in=90), SECRET,
                          algorithms=["HS256"])
    assert expiring["exp"] - expiring["iat"] == 90


async def test_a_delegated_verifier_asks_and_caches_and_survives_an_outage() -> None:
    now = [0.0]
    asked: list[str] = []
    answers: dict[str, list[str] | Exception] = {"good": ["admin"],
                                                 "bad": AuthError("token t1 was revoked")}

    async def ask(token: str) -> list[str]:
        asked.append(token)
        answer = answers[token]
        if isinstance(answer, Exception):
            raise answer
        return answer

    verify = delegated_verifier(ask, cache_s=10, clock=lambda: now[0])
    assert await verify("good") == {"admin"}
    assert await verify("good") == {"admin"} and asked == ["good"]
    with pytest.raises(AuthError, match="revoked"):
        await verify("bad")
    answers["good"] = AuthError("token t0 was revoked")
    now[0] = 11
    with pytest.raises(AuthError, match="revoked"):
        await verify("good")
    answers["new"] = RPCTransportError("manager unreachable")
    with pytest.raises(AuthError, match="cannot check the token"):
        await verify("new")
    with pytest.raises(AuthError, match="missing"):
        await verify("")


def test_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "repo" / "keystore" / "jwt-secret"
    secret = load_or_create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret


def test_secret_file_too_open_or_corrupt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_secret(path)
    os.chmod(path, 0o600)
    path.write_text("zz")
    with pytest.raises(ConfigError, match="not hex"):
        load_or_create_secret(path)
    path.write_text("00" * 8)
    with pytest.raises(ConfigError, match="at least 32"):
        load_or_create_secret(path)


def test_format_and_parse_api_info() -> None:
    text = format_api_info("TOK", "127.0.0.1", 2345)
    assert text == "TOK:/ip4/127.0.0.1/tcp/2345/http"
    info = parse_api_info(text)
    assert info == APIInfo("TOK", "127.0.0.1", 2345, "http")
    assert info.rpc_url == "http://127.0.0.1:2345/rpc/v0"
    assert str(info) == text
    assert format_api_info("T", "::1", 80) == "T:/ip6/::1/tcp/80/http"
    assert parse_api_info("T:/ip6/::1/tcp/80/http").url == "http://[::1]:80"
    assert format_api_info("T", "miner.example", 1) == "T:/dns/miner.example/tcp/1/http"


@pytest.mark.parametrize(("text", "url"), [
    ("T:/dns/miner.local/tcp/2345/http", "http://miner.local:2345"),
    ("T:/dns4/miner.local/tcp/2345", "http://miner.local:2345"),
    ("T:/ip4/10.0.0.5/tcp/443/https", "https://10.0.0.5:443"),
    ("T:/ip4/10.0.0.5/tcp/2345/ws", "http://10.0.0.5:2345"),
    ("T:/ip4/10.0.0.5/tcp/2345/tls/http", "https://10.0.0.5:2345"),
    ("T:http://10.0.0.5:2345", "http://10.0.0.5:2345"),
    ("T:wss://[fe80::1]:2345/", "https://[fe80::1]:2345"),
    ("/ip4/10.0.0.5/tcp/2345/http", "http://10.0.0.5:2345"),
    ("http://10.0.0.5:2345", "http://10.0.0.5:2345"),
])
def test_parse_api_info_forms(text: str, url: str) -> None:
    assert parse_api_info(text).url == url


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("TOKENONLY", "no address"),
    ("T:/ip4/10.0.0.5/udp/2345/http", "expected"),
    ("T:/ip4/10.0.0.500/tcp/2345/http", "not a valid /ip4"),
    ("T:/dns/bad_host!/tcp/2345/http", "not a valid host"),
    ("T:/ip4/::1/tcp/2345/http", "not a valid /ip4"),
    ("T:/ip4/10.0.0.5/tcp/99999/http", "bad port"),
    ("T:/ip4/10.0.0.5/tcp/80/quic", "unsupported transport"),
    ("T:/onion/abc/tcp/80/http", "unsupported address protocol"),
    ("T:ftp://host:21", "neither a multiaddr nor a URL"),
    ("A:/ip4/1.2.3.4/tcp/1/http,B:/ip4/1.2.3.4/tcp/2/http", "several endpoints"),
])
def test_malformed_api_info_is_a_clear_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_api_info(text)


def test_api_info_from_env() -> None:
    env = {"MINER_API_INFO": "TOK:/ip4/127.0.0.1/tcp/2345/http"}
    assert api_info_from_env("MINER_API_INFO", env).token == "TOK"
    with pytest.raises(ConfigError, match="MINER_API_INFO is not set"):
        api_info_from_env("MINER_API_INFO", {})
    with pytest.raises(ConfigError, match="WORKER_API_INFO: "):
        api_info_from_env("WORKER_API_INFO", {"WORKER_API_INFO": "junk"})


async def test_a_delegated_verifier_accepts_its_own_token_while_the_manager_is_down() -> None:
    own = create_token(SECRET, ["read", "admin"])
    down = [True]

    async def ask(token: str) -> list[str]:
        if down[0]:
            raise RPCTransportError("manager unreachable")
        raise AuthError(f"token {token_id(token)} was revoked")

    verify = delegated_verifier(ask, own=own, cache_s=0)
    assert await verify(own) == {"read", "admin"}
    with pytest.raises(AuthError, match="cannot check"):
        await verify(create_token(SECRET, ["admin"]))
    down[0] = False
    with pytest.raises(AuthError, match="revoked"):
        await verify(own)
    down[0] = True
    with pytest.raises(AuthError, match="revoked"):
        await verify(own)
