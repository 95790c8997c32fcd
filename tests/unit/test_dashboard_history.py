"""Finished tasks by time bucket, and the charts drawn from them."""

from __future__ import annotations

import re

from sealagent.manager.dashboard.charts import phase_time_chart, throughput_chart
from sealagent.manager.history import TaskHistory

PC1, PC2 = "seal/v0/precommit/1", "seal/v0/precommit/2"


def test_tasks_fall_into_buckets_and_old_buckets_are_dropped() -> None:
    history = TaskHistory(bucket=60, keep=600)
    history.observe(PC1, 30, finished_at=1000)
    history.observe(PC1, 50, finished_at=1019)
    history.observe(PC2, 10, finished_at=1100)
    series = history.series(now=1100, span=180)
    assert [start for start, _ in series] == [960, 1020, 1080]
    first, middle, last = (buckets for _, buckets in series)
    assert first[PC1].count == 2 and first[PC1].mean == 40
    assert middle == {} and last[PC2].seconds == 10
    history.observe(PC1, 1, finished_at=1100 + 700)      # 1000 is now older than keep
    assert all(PC1 not in b for _, b in history.series(now=1800, span=900)[:3])
    assert history.series(now=1800, span=900)[-1][1][PC1].count == 1


def test_charts_draw_one_bar_per_phase_and_bucket_and_say_when_empty() -> None:
    history = TaskHistory(bucket=60)
    for at, task_type in ((0, PC1), (10, PC2), (70, PC1), (65, "seal/v0/fetch")):
        history.observe(task_type, 5.0, finished_at=at)
    series = history.series(now=70, span=120)
    bars = throughput_chart(series)
    assert len(re.findall(r"<rect [^>]*><title>", bars)) == 4
    assert "PC1" in bars and "PC2" in bars and "GET" in bars  # the move to storage
    assert "seal/v0/fetch" not in bars
    lines = phase_time_chart(series)
    assert lines.count("<polyline") == 1 and lines.count("<circle") == 4
    empty = throughput_chart(TaskHistory().series(now=0, span=600))
    assert "no task finished in this period" in empty
