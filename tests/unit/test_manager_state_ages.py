"""Sectors per state and the oldest in each, kept as sectors change."""

from __future__ import annotations

from sealagent.manager.state_ages import StateAges


def test_counts_and_oldest_follow_changes() -> None:
    ages = StateAges()
    ages.load([(2, "PreCommit1", 50.0), (1, "PreCommit1", 10.0), (3, "Proving", 30.0)])
    assert ages.counts() == {"PreCommit1": 2, "Proving": 1}
    assert ages.oldest(100.0) == {"PreCommit1": 90.0, "Proving": 70.0}
    ages.enter(1, "PreCommit1", 60.0)  # still there: keeps its entry time
    assert ages.oldest(100.0)["PreCommit1"] == 90.0
    ages.enter(1, "PreCommit2", 70.0)  # the oldest leaves: the next one is the oldest
    assert ages.oldest(100.0) == {"PreCommit1": 50.0, "PreCommit2": 30.0, "Proving": 70.0}
    ages.enter(2, "PreCommit2", 80.0)  # the last one leaves: the state is gone
    assert ages.counts() == {"PreCommit2": 2, "Proving": 1}
    assert ages.oldest(100.0) == {"PreCommit2": 30.0, "Proving": 70.0}
    ages.enter(9, "WaitSeed", 120.0)  # a clock behind the entry never gives a negative age
    assert ages.oldest(100.0)["WaitSeed"] == 0.0


def test_ten_thousand_sectors_in_two_states() -> None:
    ages = StateAges()
    ages.load((n, "Proving" if n % 10 else "PreCommit1", float(n)) for n in range(10_000))
    assert ages.counts() == {"Proving": 9_000, "PreCommit1": 1_000}
    assert ages.oldest(20_000.0) == {"PreCommit1": 20_000.0, "Proving": 19_999.0}
