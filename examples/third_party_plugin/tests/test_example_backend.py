"""The example backend must behave exactly like the reference on the same inputs."""

from __future__ import annotations

from pathlib import Path

import sealagent_example

from sealagent.phases import (
    Phase,
    PreCommit2Request,
    PreCommit2Result,
    SectorPaths,
    SectorRef,
)
from sealagent.plugins import PluginSet
from sealagent.testing import SectorInputs, assert_backend_matches_reference


def test_precommit2_matches_the_reference(sector_inputs: SectorInputs, tmp_path: Path) -> None:
    (result,) = assert_backend_matches_reference(sealagent_example, Phase.PRECOMMIT2,
                                                 sector_inputs, tmp_path)
    assert isinstance(result, PreCommit2Result)
    assert result.comm_r.startswith("bagboea4b5abc")


def test_large_sectors_are_declined() -> None:
    sector = SectorRef(miner=1000, number=1, proof="StackedDrg32GiBV1_1")
    request = PreCommit2Request(sector, SectorPaths("/u", "/s", "/c"), "{}")
    assert sealagent_example.sealagent_precommit2(request) is None


def test_plugin_only_takes_precommit2() -> None:
    plugins = PluginSet.load(autoload=False, extra={"example": sealagent_example})
    selection = plugins.select(["example"])
    assert selection.backend_for(Phase.PRECOMMIT2) == "example"
    assert selection.backend_for(Phase.PRECOMMIT1) == "cpu"
