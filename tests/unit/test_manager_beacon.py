"""The local randomness beacon and epoch clock."""

from __future__ import annotations

import pytest

from sealagent.errors import ConfigError, ManagerError
from sealagent.manager.beacon import ChainMessage, LocalBeacon, RandomnessTag, miner_entropy

SECRET = b"s" * 32


class FakeClock:
    """A settable wall clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_epochs_count_from_genesis() -> None:
    clock = FakeClock(1000.0)
    beacon = LocalBeacon(1000.0, 0.5, SECRET, clock)
    assert beacon.head() == 0
    clock.now = 1001.24
    assert beacon.head() == 2
    clock.now = 900.0
    assert beacon.head() == 0
    assert beacon.time_of(4) == 1002.0


def test_randomness_is_deterministic_separated_and_not_early() -> None:
    clock = FakeClock(10.0)
    beacon = LocalBeacon(0.0, 1.0, SECRET, clock)
    entropy = miner_entropy(1000)
    ticket = beacon.draw(RandomnessTag.SEAL_RANDOMNESS, 5, entropy)
    assert len(ticket) == 32
    # same inputs, same secret: same value (survives a restart)
    restarted = LocalBeacon(0.0, 1.0, SECRET, clock)
    assert restarted.draw(RandomnessTag.SEAL_RANDOMNESS, 5, entropy) == ticket
    assert beacon.draw(RandomnessTag.INTERACTIVE_SEAL_CHALLENGE_SEED, 5, entropy) != ticket
    assert beacon.draw(RandomnessTag.SEAL_RANDOMNESS, 6, entropy) != ticket
    assert beacon.draw(RandomnessTag.SEAL_RANDOMNESS, 5, miner_entropy(1001)) != ticket
    assert LocalBeacon(0.0, 1.0, b"t" * 32, clock).draw(
        RandomnessTag.SEAL_RANDOMNESS, 5, entropy) != ticket
    with pytest.raises(ManagerError, match="not available yet"):
        beacon.draw(RandomnessTag.SEAL_RANDOMNESS, 11, entropy)
    with pytest.raises(ManagerError, match="negative"):
        beacon.draw(RandomnessTag.SEAL_RANDOMNESS, -1, entropy)


async def test_submitted_messages_land_at_head() -> None:
    clock = FakeClock(7.5)
    beacon = LocalBeacon(0.0, 1.0, SECRET, clock)
    landed = await beacon.submit(ChainMessage("precommit", 1000, 3, {"comm_r": "x"}))
    assert landed == 7
    assert beacon.messages == [(7, ChainMessage("precommit", 1000, 3, {"comm_r": "x"}))]


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError):
        LocalBeacon(0.0, 0.0, SECRET)
    with pytest.raises(ConfigError):
        LocalBeacon(0.0, 1.0, b"short")
