"""Who may see and do what on the dashboard: the login cookie, permissions and CSRF.

The login form takes an API token (``sealagent auth create-token --perm read``); once it
verifies, the browser keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie scoped to the
dashboard's path.  Every request checks the token again with the API's own verifier, so a
token that expires or is revoked stops working at once, and no session state lives on the
manager.

- ``read`` sees every page; ``admin`` may act (abort a task).
- Every POST must carry the CSRF token of the logged-in token (an HMAC of it under a key
  drawn when the manager starts, sent in a form field) and an ``Origin`` header naming this
  very site.  Both are checked before anything else is read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

from sealagent.errors import AuthError
from sealagent.web.auth import TokenVerifier

COOKIE: Final = "sealagent_dashboard"
"""The name of the cookie that holds the API token."""


@dataclass(frozen=True)
class Viewer:
    """A logged-in browser: what its token allows and the CSRF token its forms carry."""

    permissions: frozenset[str]
    csrf: str

    @property
    def is_admin(self) -> bool:
        """True when the token may act (abort tasks)."""
        return "admin" in self.permissions


class Guard:
    """Checks the cookie, the permissions and the CSRF token of dashboard requests."""

    def __init__(self, verify: TokenVerifier, csrf_key: bytes | None = None) -> None:
        self._verify = verify
        self._key = csrf_key or secrets.token_bytes(32)

    def csrf_for(self, token: str) -> str:
        """The CSRF token that forms of the browser holding ``token`` carry."""
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def login(self, token: str) -> Viewer:
        """Check a token typed into the login form; it must grant at least ``read``."""
        permissions = await self._verify(token.strip())
        if "read" not in permissions:
            raise AuthError("this token does not grant read permission")
        return Viewer(permissions, self.csrf_for(token.strip()))

    async def viewer(self, request: Request) -> Viewer:
        """The viewer of ``request``'s cookie; AuthError when there is none or it is refused."""
        token = request.cookies.get(COOKIE, "")
        if not token:
            raise AuthError("not logged in")
        return await self.login(token)

    @staticmethod
    def check_origin(request: Request) -> None:
        """Refuse a POST whose ``Origin`` is missing or another site (AuthError)."""
        origin = request.headers.get("origin")
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin is None or origin != expected:
            raise AuthError(f"cross-site request refused (Origin {origin or 'missing'}, "
                            f"expected {expected})")

    def check_csrf(self, request: Request, viewer: Viewer, submitted: str) -> None:
        """Refuse a form whose CSRF token is not the viewer's (AuthError)."""
        if not hmac.compare_digest(submitted.encode(), viewer.csrf.encode()):
            raise AuthError("the form's CSRF token is missing or stale; reload the page")
        self.check_origin(request)


def cookie_header(request: Request, token: str, *, max_age: int | None = None) -> str:
    """The ``Set-Cookie`` value that stores ``token`` (or clears it with ``max_age=0``)."""
    path = request.scope.get("root_path", "") + "/"
    parts = [f"{COOKIE}={token}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if request.url.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)
