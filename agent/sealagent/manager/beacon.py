"""The chain as the sealing pipeline sees it: an epoch clock, randomness, messages.

There is no chain here.  :class:`LocalBeacon` counts epochs from a genesis time (seconds
per epoch in a devnet), derives each epoch's randomness from a persisted secret, and
records precommit/commit "messages" instead of sending them.  The pipeline only uses the
:class:`Beacon` interface, so a real chain client can take its place.

Randomness is drawn as Lotus draws it: a domain-separation tag, an epoch and an entropy
(the miner's address), mixed with the epoch's beacon value by BLAKE2b-256.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from sealagent.errors import ConfigError, ManagerError


class RandomnessTag(enum.IntEnum):
    """Filecoin's domain-separation tags (``crypto.DomainSeparationTag``) used for sealing."""

    SEAL_RANDOMNESS = 5
    INTERACTIVE_SEAL_CHALLENGE_SEED = 7


@dataclass(frozen=True)
class ChainMessage:
    """A precommit or commit message, as it would be sent to the chain."""

    kind: str
    miner: int
    sector: int
    payload: dict[str, Any] = field(default_factory=dict)


class Beacon(Protocol):
    """What the sealing pipeline needs from a chain."""

    def head(self) -> int:
        """The current epoch."""
        ...

    def time_of(self, epoch: int) -> float:
        """Wall-clock time (``time.time()`` scale) at which ``epoch`` begins."""
        ...

    def draw(self, tag: RandomnessTag, epoch: int, entropy: bytes) -> bytes:
        """32 bytes of randomness for ``epoch``; refused for epochs after :meth:`head`."""
        ...

    async def submit(self, message: ChainMessage) -> int:
        """Send a message and wait until it lands; returns the epoch it landed in."""
        ...


def miner_entropy(miner: int) -> bytes:
    """The entropy Lotus mixes into sealing randomness: the miner's ID address."""
    return f"t0{miner}".encode()


class LocalBeacon:
    """A devnet chain: ``head = floor((now - genesis) / epoch_duration)``.

    ``secret`` makes the randomness unpredictable and, persisted with ``genesis``, keeps
    every ticket and seed the same across manager restarts.  Submitted messages land at
    the current head and are kept in :attr:`messages`.
    """

    def __init__(self, genesis: float, epoch_duration: float, secret: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        if epoch_duration <= 0:
            raise ConfigError("the epoch duration must be positive")
        if len(secret) < 16:
            raise ConfigError("the beacon secret must be at least 16 bytes")
        self.genesis = genesis
        self.epoch_duration = epoch_duration
        self._secret = secret
        self._clock = clock
        self.messages: list[tuple[int, ChainMessage]] = []

    def head(self) -> int:
        """The current epoch (0 before and at genesis)."""
        return max(0, int((self._clock() - self.genesis) // self.epoch_duration))

    def time_of(self, epoch: int) -> float:
        """Wall-clock time at which ``epoch`` begins."""
        return self.genesis + epoch * self.epoch_duration

    def beacon_value(self, epoch: int) -> bytes:
        """The epoch's beacon entry (what drand would give a real chain)."""
        return hashlib.sha256(self._secret + epoch.to_bytes(8, "big", signed=True)).digest()

    def draw(self, tag: RandomnessTag, epoch: int, entropy: bytes) -> bytes:
        """``BLAKE2b-256(tag ‖ beacon(epoch) ‖ epoch ‖ entropy)``, once ``epoch`` is reached."""
        if epoch < 0:
            raise ManagerError(f"no randomness for negative epoch {epoch}")
        head = self.head()
        if epoch > head:
            raise ManagerError(f"randomness for epoch {epoch} is not available yet "
                               f"(head is {head})")
        h = hashlib.blake2b(digest_size=32)
        h.update(int(tag).to_bytes(8, "big", signed=True))
        h.update(self.beacon_value(epoch))
        h.update(epoch.to_bytes(8, "big", signed=True))
        h.update(entropy)
        return h.digest()

    async def submit(self, message: ChainMessage) -> int:
        """Record the message; it lands at the current head."""
        await trio.lowlevel.checkpoint()
        landed = self.head()
        self.messages.append((landed, message))
        return landed

