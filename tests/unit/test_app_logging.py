"""The worker app keeps mode's commit-timer overlap warnings out of the log, and only those."""

from __future__ import annotations

import logging

import pytest

from stream_ids.app import create_app
from stream_ids.settings import Settings

MESSAGE = "Timer %s is overlapping (interval=%r runtime=%r)"


def test_commit_overlap_warnings_are_dropped_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    create_app(Settings(app_id="unit-log-app"))
    timers = logging.getLogger("mode.timers")
    with caplog.at_level(logging.WARNING, logger="mode.timers"):
        timers.warning(MESSAGE, "commit", 0.05, 0.12)
        timers.warning(MESSAGE, "stats", 2.0, 2.5)
        timers.warning("Timer %s woke up too late", "commit")
    kept = [record.getMessage() for record in caplog.records]
    assert kept == [
        "Timer stats is overlapping (interval=2.0 runtime=2.5)",
        "Timer commit woke up too late",
    ]
