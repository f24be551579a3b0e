"""In-order admission per partition and filling of holes (faust-streaming #596)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from streaming_fakes import FakeModel, event, fake_topics, flow, message

from stream_ids.faust_fixes.offset_holes import OffsetGuard
from stream_ids.rolling import RollingStats
from stream_ids.worker.batch import BatchScorer


def _events(partition: int, offsets: range | list[int]) -> list:
    return [event(b"v", b"k", offset=o, partition=partition) for o in offsets]


def _offsets(events: list) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for e in events]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_contiguous_events_pass_and_stale_copies_are_dropped() -> None:
    guard = OffsetGuard()
    events = _events(0, range(5)) + _events(1, range(10, 13))
    assert guard.holes(events) == [] and len(guard.admit(events)[0]) == 8
    kept, stale = guard.admit(_events(0, [3, 4, 5]))  # 3 and 4 were scored already
    assert _offsets(kept) == [(0, 5)] and _offsets(stale) == [(0, 3), (0, 4)]


def test_holes_are_found_per_partition_and_from_the_committed_offset() -> None:
    guard = OffsetGuard()
    guard.admit(_events(0, range(58)))
    # the recovery race: 58..481 vanished from the queue, 482.. arrive
    events = _events(0, range(482, 490)) + _events(1, [0]) + _events(0, [495]) + _events(3, [140])
    assert guard.holes(events, committed={3: 100}) == [(0, 58, 482), (0, 490, 495), (3, 100, 140)]


def test_partitions_without_a_start_are_reported() -> None:
    guard = OffsetGuard()
    guard.admit(_events(0, range(3)))
    assert guard.unknown(_events(0, [3]) + _events(1, [7]) + _events(2, [1]), {2: 0}) == {1}


def test_a_hole_left_open_is_taken_as_a_gap() -> None:
    guard = OffsetGuard()
    guard.admit(_events(0, [0]))
    kept, _ = guard.admit(_events(0, [2, 3]))  # offset 1 is a transaction marker, say
    assert _offsets(kept) == [(0, 2), (0, 3)] and guard.gaps_accepted == 1


def test_a_partition_read_past_the_expected_offset_but_silent_is_reported() -> None:
    """Every queued record was cleared and nothing newer comes: no event shows the hole."""
    clock = Clock()
    guard = OffsetGuard(clock=clock, stall_s=15.0)
    guard.admit(_events(0, range(100)) + _events(1, range(10)))
    clock.now = 10.0
    assert guard.stalled({0: 5000, 1: 10}) == []  # not silent long enough; 1 is up to date
    clock.now = 16.0
    assert guard.stalled({0: 5000, 1: 10}) == [(0, 100, 5001)]
    assert guard.stalled({0: 5000}) == []  # reported once per stall_s
    assert guard.stalled({2: 40}, committed={2: 30}) == [(2, 30, 41)]  # never seen since start


def test_reset_forgets_positions_after_a_rebalance() -> None:
    guard = OffsetGuard()
    guard.admit(_events(0, range(10)))
    guard.reset()
    assert guard.holes(_events(0, [500])) == []  # another worker had the partition meanwhile


def _filled(obj: dict, offset: int) -> SimpleNamespace:
    key, value = message(obj)
    return SimpleNamespace(
        message=SimpleNamespace(
            key=key, value=value, topic="flows", partition=0, offset=offset, acked=False
        ),
        filled=True,
    )


def test_the_agent_reads_a_hole_from_kafka_and_scores_it_first() -> None:
    topics = fake_topics()
    good = [flow(f"g{i}", src_ip="10.0.0.1", duration=10.0 * (i + 1)) for i in range(6)]
    asked: list[tuple[int, int, int]] = []
    acked: list[int] = []

    async def fill(partition: int, start: int, end: int) -> list:
        asked.append((partition, start, end))
        return [_filled(good[o], o) for o in range(start, end)]

    def ack_filled(messages: list) -> None:
        acked.extend(m.offset for m in messages)

    scorer = BatchScorer(
        FakeModel(), {}, topics, RollingStats("w"), fill=fill, ack_filled=ack_filled
    )
    events = [event(*reversed(message(obj)), offset=i) for i, obj in enumerate(good)]
    for item in events:
        item.message.acked = False
    asyncio.run(scorer.process(events[:2] + events[4:]))  # 2 and 3 never reached the agent
    assert asked == [(0, 2, 4)] and acked == [2, 3]
    assert [v["flow_id"] for _, v in topics.verdicts.sent] == [f"g{i}" for i in range(6)]
    assert [v["window_length"] for _, v in topics.verdicts.sent] == [1, 2, 3, 4, 4, 4]
    assert not any(item.message.acked for item in events)  # released: take_events acks them


def test_a_cancelled_batch_is_held_back_from_the_commit() -> None:
    """Stopped mid-batch (SIGTERM): none of the batch's messages may be acked."""
    topics = fake_topics()

    async def fill(partition: int, start: int, end: int) -> list:
        return []

    scorer = BatchScorer(FakeModel(), {}, topics, RollingStats("w"), fill=fill)
    events = [event(*reversed(message(flow(f"c{i}"))), offset=i) for i in range(3)]
    for item in events:
        item.message.acked = False

    async def cancelled(_events: list, _overlap: bool = False) -> None:
        raise asyncio.CancelledError

    scorer.score_chunks = cancelled  # type: ignore[method-assign]  # the stop arrives mid-batch
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scorer.process(events))
    assert all(item.message.acked for item in events)  # marked: take_events' ack is a no-op
    assert scorer.guard is not None and scorer.guard.expected == {}  # from committed again


def test_a_commit_gap_wider_than_one_below_the_expected_offset_is_blocked() -> None:
    guard = OffsetGuard()
    guard.admit(_events(0, range(20102, 20200)) + _events(1, range(5, 9)) + _events(2, [40]))
    # Faust's view 20102 (read before the first commit landed); acked from 20149 on
    committed = {0: 20102, 1: 7, 2: 30, 3: 0}
    lowest = {0: 20149, 1: 8, 2: 60, 3: 12}
    # 1: a gap of one Faust commits past itself; 2: acked past the expected offset, only
    # what the guard has seen is done; 3: nothing seen since the (re)start
    assert guard.blocked_commits(committed, lowest) == [(0, 20102, 20149), (2, 30, 41)]
    guard.reset()
    assert guard.blocked_commits(committed, lowest) == []


def test_faust_commits_again_once_the_blocked_offsets_are_acked() -> None:
    """The recovery race, on a real Faust consumer: commits held until the timer's repair."""
    from faust.types import TP

    from stream_ids.agents import build_worker
    from stream_ids.faust_fixes import done_message, lowest_acked_of
    from stream_ids.settings import Settings

    parts = build_worker(Settings(app_id="unit-commit-race"), FakeModel())
    app, scorer = parts.app, parts.scorer
    topic = parts.topics.flows.get_topic_name()
    app.topics.add(parts.topics.flows)
    asyncio.run(app.topics._update_indices())  # what the agent's start does: acks on
    consumer, tp = app.consumer, TP(topic, 3)
    # scored and committed 20102..20148, then perform_seek stored the earlier 20102
    consumer._committed_offset[tp] = 20102
    assert scorer.guard is not None
    scorer.guard.admit(_events(3, range(20102, 20200)))
    for offset in range(20149, 20200):
        consumer.ack(done_message(topic, 3, offset))
    assert consumer._new_offset(tp) is None  # held: "a gap at the head of the acked queue"
    asyncio.run(scorer.unblock_commits(lowest_acked_of(app, topic)))
    assert scorer.guard.unblocked == 47
    assert consumer._new_offset(tp) == 20200


def _overlap_scorer(acked: list[int]) -> tuple[BatchScorer, object]:
    topics = fake_topics()

    async def fill(partition: int, start: int, end: int) -> list:
        return []

    def ack(messages: list) -> None:
        for item in messages:
            item.acked = True  # what Faust's consumer.ack does
        acked.extend(item.offset for item in messages)

    return BatchScorer(
        FakeModel(), {}, topics, RollingStats("w"), fill=fill, ack_filled=ack
    ), topics


def _host_events(count: int) -> list:
    flows = [flow(f"o{i}", src_ip="10.0.0.1", duration=10.0 * (i + 1)) for i in range(count)]
    events = [event(*reversed(message(obj)), offset=i) for i, obj in enumerate(flows)]
    for item in events:
        item.message.acked = False
    return events


def test_overlapped_batches_are_acked_only_once_published_and_keep_host_order() -> None:
    """The agent's cross-batch pipeline: a batch returns while its last chunk is scored."""
    acked: list[int] = []
    scorer, topics = _overlap_scorer(acked)
    events = _host_events(9)

    async def run() -> None:
        await scorer.process(events[:3], overlap=True)
        assert scorer.tail is not None and topics.verdicts.sent == [] and acked == []
        assert all(item.message.acked for item in events[:3])  # held back from take_events
        await scorer.process(events[3:6], overlap=True)  # publishes the first batch first
        assert acked == [0, 1, 2] and len(topics.verdicts.sent) == 3
        await scorer.process(events[6:], overlap=True)
        assert scorer.tail_task is not None
        await scorer.tail_task  # no next batch: published as soon as it is scored
        assert scorer.tail is None and acked == list(range(9))

    asyncio.run(run())
    plain_acked: list[int] = []
    plain, plain_topics = _overlap_scorer(plain_acked)
    asyncio.run(plain.process(_host_events(9)))
    overlapped = [(v["flow_id"], v["window_length"], v["score"]) for _, v in topics.verdicts.sent]
    assert overlapped == [
        (v["flow_id"], v["window_length"], v["score"]) for _, v in plain_topics.verdicts.sent
    ]
    assert [length for _, length, _ in overlapped] == [1, 2, 3, 4, 4, 4, 4, 4, 4]


def test_a_stopping_agent_leaves_the_batch_still_scored_unacked() -> None:
    acked: list[int] = []
    scorer, topics = _overlap_scorer(acked)
    events = _host_events(6)

    async def run() -> None:
        await scorer.process(events[:3], overlap=True)
        scorer.abandon_tail()  # Faust stops the agent
        await asyncio.sleep(0.05)

    asyncio.run(run())
    assert topics.verdicts.sent == [] and acked == [] and scorer.table == {}
    assert all(item.message.acked for item in events[:3])  # never acked: the next owner scores
    assert scorer.guard is not None and scorer.guard.expected == {}
