"""The recovery watch: a changelog partition whose records never reach Faust's recovery."""

from __future__ import annotations

import asyncio

from faust.types import TP
from streaming_fakes import FakeModel

from stream_ids.faust_fixes.recovery_stall import STALL_S, TRANSACTIONAL_STALL_S, find_stalls

CHANGELOG = "app-host-windows-changelog"


def _tp(partition: int) -> TP:
    return TP(CHANGELOG, partition)


def test_only_silent_partitions_with_records_left_are_stalls() -> None:
    offsets = {_tp(0): 97, _tp(1): -1, _tp(2): -1, _tp(3): 40, _tp(4): -1}
    highwaters = {_tp(0): 97, _tp(1): 398, _tp(2): 342, _tp(3): 1048, _tp(4): -1}
    # 0: recovered; 1: nothing since the start 30 s ago; 2: an event 12 s ago;
    # 3: an event 1 s ago (reading); 4: an empty changelog partition
    events = {_tp(2): 88.0, _tp(3): 99.0}
    stalls = find_stalls(offsets, offsets, highwaters, events, started_at=70.0, now=100.0)
    assert [(s.tp.partition, s.have, s.need, s.resume_at) for s in stalls] == [
        (1, -1, 398, 0),
        (2, -1, 342, 0),
    ]
    assert stalls[0].idle_s == 30.0 and stalls[1].idle_s == 12.0
    # a recovery only 5 s old has no stalls yet, whatever its partitions got
    assert find_stalls(offsets, offsets, highwaters, {}, started_at=95.0, now=100.0) == []


def test_the_watch_reads_a_real_faust_recovery_and_rewinds_once_per_stall() -> None:
    from stream_ids.agents import build_worker
    from stream_ids.settings import Settings

    parts = build_worker(Settings(app_id="unit-recovery-watch"), FakeModel())
    app, watch = parts.app, parts.recovery_watch
    now = [1000.0]
    rewound: list[dict[TP, int]] = []

    async def rewind(offsets: dict[TP, int]) -> None:
        rewound.append(dict(offsets))

    watch.clock, watch.rewind = (lambda: now[0]), rewind
    recovery = app.tables.recovery
    # what Faust's recovery holds after a rebalance moved partitions 4-7 here (the CI log)
    recovery.active_tps.update(_tp(p) for p in (4, 5, 6, 7))
    recovery.active_highwaters.update({_tp(4): 398, _tp(5): 342, _tp(6): 1, _tp(7): 1048})
    recovery.active_offsets.update({_tp(4): -1, _tp(5): 120, _tp(6): -1, _tp(7): 1048})
    recovery._set_recovery_started()
    recovery._recovery_started_at = now[0] - 31.0
    recovery._active_events_received_at[_tp(5)] = now[0] - 1.0  # partition 5 is reading

    assert asyncio.run(watch.check()) != []
    assert rewound == [{_tp(4): 0, _tp(6): 0}] and watch.rewinds == 2
    now[0] += STALL_S - 2  # a rewound partition gets STALL_S to deliver again
    assert asyncio.run(watch.check()) == []
    now[0] += 2
    stalls = asyncio.run(watch.check())
    assert {s.tp.partition for s in stalls} == {4, 5, 6} and rewound[-1][_tp(5)] == 121
    recovery._set_recovery_ended()
    assert asyncio.run(watch.check()) == [] and watch.rewound_at == {}


def test_under_exactly_once_faust_settles_marker_offsets_first() -> None:
    from stream_ids.agents import build_worker
    from stream_ids.settings import Settings

    plain = build_worker(Settings(app_id="unit-watch-alo"), FakeModel()).recovery_watch
    exactly_once = build_worker(
        Settings(app_id="unit-watch-eos", processing_guarantee="exactly_once"), FakeModel()
    ).recovery_watch
    assert (plain.stall_s, exactly_once.stall_s) == (STALL_S, TRANSACTIONAL_STALL_S)
