"""stream_ids.faust_fixes.revoked_commits: a commit in a rebalance's window is skipped.

The window is real aiokafka state: a consumer subscribed with no assignment yet, which is
where aiokafka is between a revocation and the next assignment. No broker is needed: aiokafka
raises before it sends anything.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from stream_ids.faust_fixes.revoked_commits import METHOD, only_assigned, skip_revoked_commits

FLOWS_0 = TP("flows", 0)


@pytest.fixture
async def between_assignments() -> AsyncIterator[Any]:
    """A Faust consumer thread over an aiokafka consumer that has no assignment."""
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="revoked-commits")
    consumer.subscribe(topics=["flows"])
    # the thread's own start needs a Faust app; _commit reads only these attributes
    thread = AIOKafkaConsumerThread.__new__(AIOKafkaConsumerThread)
    thread._consumer = consumer
    thread.tp_last_committed_at = {}
    thread.log = logging.getLogger("test_revoked_commits")
    thread.crashes = []

    async def crash(error: BaseException) -> None:
        thread.crashes.append(error)

    thread.crash = crash
    yield thread
    await consumer.stop()


async def test_faust_crashes_the_worker_on_a_commit_between_assignments(
    between_assignments: Any,
) -> None:
    """The upstream bug (faust-streaming/faust#94 after #95). If this fails, Faust no longer
    crashes here: delete stream_ids/faust_fixes/revoked_commits.py."""
    original = AIOKafkaConsumerThread.__dict__[METHOD]
    original = getattr(original, "__wrapped__", original)
    committed = await original(between_assignments, {FLOWS_0: 5})
    assert committed is False
    assert [type(error).__name__ for error in between_assignments.crashes] == [
        "IllegalStateError"
    ]
    assert "No partitions assigned" in str(between_assignments.crashes[0])


async def test_the_guarded_commit_skips_it_without_a_crash(between_assignments: Any) -> None:
    skip_revoked_commits()
    skip_revoked_commits()  # idempotent: wrapped once
    wrapped = AIOKafkaConsumerThread.__dict__[METHOD]
    assert wrapped.__wrapped__.__name__ == METHOD
    assert not hasattr(wrapped.__wrapped__, "__wrapped__")
    committed = await AIOKafkaConsumerThread._commit(between_assignments, {FLOWS_0: 5})
    assert committed is False
    assert between_assignments.crashes == []


async def test_only_partitions_assigned_now_are_committed() -> None:
    sent: list[dict[TP, int]] = []

    class Thread:
        def assignment(self) -> set[TP]:
            return {TP("flows", 1), TP("flows", 2)}

    async def commit(thread: Any, offsets: dict[TP, int]) -> bool:
        sent.append(dict(offsets))
        return True

    guarded = only_assigned(commit)
    assert await guarded(Thread(), {TP("flows", 0): 7, TP("flows", 1): 9}) is True
    assert await guarded(Thread(), {TP("flows", 3): 4}) is False  # revoked: nothing sent
    assert sent == [{TP("flows", 1): 9}]
