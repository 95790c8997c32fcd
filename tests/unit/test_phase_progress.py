"""Phase progress: rate limiting, the process' sink, the file between child and parent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealagent.errors import InvalidInputError
from sealagent.phase_progress import (
    ProgressDescriber,
    ProgressEvent,
    RateLimited,
    phase_progress,
    progress_sink,
    report_progress,
)
from sealagent.plugins.progress_file import ProgressFileReader, ProgressFileWriter


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limited_passes_new_stages_ends_and_one_report_per_interval() -> None:
    clock, seen = Clock(), list[ProgressEvent]()
    limited = RateLimited(seen.append, interval_s=2.0, clock=clock)
    limited("layer-1", 10, 100)  # a new stage passes
    clock.now += 1
    limited("layer-1", 20, 100)  # too soon
    clock.now += 1.5
    limited("layer-1", 30, 100)  # 2.5 s after the last one passed
    limited("layer-1", 100, 100)  # the end always passes
    limited("layer-2", 5, 100)  # so does a new stage, at once
    limited("layer-2", 6, 100)
    assert [(e.stage, e.done) for e in seen] == [("layer-1", 10), ("layer-1", 30),
                                                 ("layer-1", 100), ("layer-2", 5)]
    assert [e.elapsed_s for e in seen] == [0.0, 2.5, 2.5, 2.5]


def test_reports_go_to_the_installed_sink_only_while_it_is_installed() -> None:
    seen: list[tuple[str, int, int]] = []
    report_progress("tree-c", 1, 2)  # nobody listens: nothing happens
    assert phase_progress() is None
    with progress_sink(lambda *report: seen.append(report)):
        assert phase_progress() is not None
        report_progress("tree-c", 2, 2)
        with pytest.raises(InvalidInputError, match="already installed"), \
                progress_sink(lambda *report: None):
            pass
    report_progress("tree-c", 3, 3)
    assert seen == [("tree-c", 2, 2)]
    assert phase_progress() is None


def test_the_file_carries_complete_lines_and_skips_garbage(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    reader = ProgressFileReader(path)
    assert reader.read() == []  # no file yet
    write = ProgressFileWriter(path)
    first = ProgressEvent("parents", 65536, 262144, 0.25)
    write(first)
    with path.open("a") as f:
        f.write("not json\n" + json.dumps({"stage": "x"}) + "\n")
        f.write('{"stage": "layer-1", "done": 3')  # a line still being written
    assert reader.read() == [first]
    with path.open("a") as f:
        f.write(', "total": 4, "elapsed_s": 1.5}\n')
    assert reader.read() == [ProgressEvent("layer-1", 3, 4, 1.5)]
    assert reader.read() == []


@pytest.mark.parametrize("data", [{"stage": 1, "done": 1, "total": 2, "elapsed_s": 0},
                                  {"stage": "a", "done": True, "total": 2, "elapsed_s": 0},
                                  {"stage": "a", "done": 1, "total": 2, "elapsed_s": "x"},
                                  {"stage": "a", "done": 1, "total": 2}])
def test_malformed_events_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match="not a progress event"):
        ProgressEvent.from_json(data)


def test_describer_gives_share_and_the_rate_within_a_stage() -> None:
    describe = ProgressDescriber().describe
    assert describe(ProgressEvent("layer-1", 1000, 4000, 1.0)) == "layer-1 1000/4000 (25 %)"
    assert describe(ProgressEvent("layer-1", 3000, 4000, 2.0)) == (
        "layer-1 3000/4000 (75 %), 2,000 /s")
    assert describe(ProgressEvent("layer-2", 1000, 4000, 9.0)) == "layer-2 1000/4000 (25 %)"
    assert describe(ProgressEvent("tree-d", 0, 1, 9.5)) == "tree-d started"
    assert describe(ProgressEvent("tree-d", 1, 1, 9.6)) == "tree-d done"
