"""Revoked API tokens: their ids, kept in the manager's database.

A token is revoked by its id (``jti``); the id is written to the database before the
revocation is acknowledged, and the in-memory set, which the manager's token verifier
consults at every request, is updated after that.
"""

from __future__ import annotations

import re
from typing import Final

from sealagent.errors import ManagerError
from sealagent.manager.db import Database, Transaction

META_KEY: Final = "revoked_tokens"
_TOKEN_ID = re.compile(r"[0-9a-f]{1,64}")


class TokenRevocations:
    """The ids of revoked tokens (a live set) and how to add to them durably."""

    def __init__(self, db: Database, ids: set[str]) -> None:
        self.db = db
        self.ids = ids

    @classmethod
    async def load(cls, db: Database) -> TokenRevocations:
        """The revocations recorded in ``db``."""
        stored = await db.transaction(lambda tx: tx.get_meta(META_KEY))
        return cls(db, set(stored or []))

    async def revoke(self, token_id: str) -> bool:
        """Revoke the token with id ``token_id``; False when it already was."""
        if not _TOKEN_ID.fullmatch(token_id):
            raise ManagerError(f"not a token id: {token_id[:80]!r} (expected hex, as "
                               "`auth create-token` prints)")
        if token_id in self.ids:
            return False

        def add(tx: Transaction) -> None:
            stored = set(tx.get_meta(META_KEY) or [])
            tx.set_meta(META_KEY, sorted(stored | {token_id}))

        await self.db.transaction(add)
        self.ids.add(token_id)
        return True
