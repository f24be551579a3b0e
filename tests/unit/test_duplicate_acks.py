"""stream_ids.faust_fixes.duplicate_acks: offsets acked twice no longer hold Faust's commits back.

The consumer here is a plain namespace with the four attributes ``Consumer._new_offset`` reads,
and the function is Faust's own (unwrapped, and wrapped by the fix).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st
from intervaltree import IntervalTree

from stream_ids.errors import StreamIdsError
from stream_ids.faust_fixes import duplicate_acks

TOPIC_PARTITION = TP("flows", 7)


def faust_original() -> Any:
    new_offset = Consumer._new_offset
    return getattr(new_offset, "__wrapped__", new_offset)


class Wrapped:
    """A class with Faust's original ``_new_offset``, wrapped by the fix (not Faust's class)."""

    _new_offset = faust_original()


duplicate_acks.install(Wrapped)


def consumer(committed: int | None, acked: list[int], gaps: list[tuple[int, int]]) -> Any:
    state = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None),
    )
    state._committed_offset[TOPIC_PARTITION] = committed
    for offset in acked:  # as Consumer.ack does: an offset once, none below the committed one
        if (committed is None or offset >= committed) and offset not in state._acked_index[
            TOPIC_PARTITION
        ]:
            state._acked[TOPIC_PARTITION].append(offset)
            state._acked_index[TOPIC_PARTITION].add(offset)
    for begin, end in gaps:
        state._gap[TOPIC_PARTITION].addi(begin, end)
    return state


def commits_until(new_offset: Any, state: Any, target: int, limit: int = 10_000) -> int:
    """How many commits (calls) it takes to commit up to ``target``, each committing its result."""
    for calls in range(1, limit + 1):
        offset = new_offset(state, TOPIC_PARTITION)
        if offset is None:
            raise AssertionError(f"commit held at {state._committed_offset[TOPIC_PARTITION]}")
        state._committed_offset[TOPIC_PARTITION] = offset
        if offset >= target:
            return calls
    raise AssertionError(f"not committed to {target} in {limit} calls")


def test_faust_alone_commits_a_run_of_gap_offsets_acked_again_one_offset_at_a_time() -> None:
    # offsets 100..399 scored and acked; 120..299 were also a fetch gap (the scale test's crawl)
    acked, gaps = list(range(100, 400)), [(120, 300)]
    assert commits_until(faust_original(), consumer(100, acked, gaps), 400) == 181
    assert commits_until(Wrapped._new_offset, consumer(100, acked, gaps), 400) == 1


def test_gap_offsets_still_count_as_acked_and_an_unacked_offset_still_holds_the_commit() -> None:
    # 100..109 acked, 110..119 a gap (as Faust: acked), 120 not acked, 121..130 acked
    state = consumer(100, [*range(100, 110), *range(121, 131)], [(110, 120)])
    assert Wrapped._new_offset(state, TOPIC_PARTITION) == 120
    state._committed_offset[TOPIC_PARTITION] = 120
    # the head is 121, one past the committed 120: Faust's rule lets a single missing offset go
    # (faust-streaming/faust#312); the fix does not change which offsets count as acked
    assert Wrapped._new_offset(state, TOPIC_PARTITION) == faust_original()(
        consumer(120, list(range(121, 131)), []), TOPIC_PARTITION
    )


def test_a_head_gap_of_more_than_one_offset_holds_the_commit_as_before() -> None:
    state = consumer(100, list(range(105, 120)), [])
    assert Wrapped._new_offset(state, TOPIC_PARTITION) is None
    assert faust_original()(consumer(100, list(range(105, 120)), []), TOPIC_PARTITION) is None


offsets = st.lists(st.integers(0, 60), max_size=40)
gap_lists = st.lists(
    st.tuples(st.integers(0, 60), st.integers(1, 8)).map(lambda g: (g[0], g[0] + g[1])),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(committed=st.one_of(st.none(), st.integers(0, 30)), acked=offsets, gaps=gap_lists)
def test_the_fix_commits_the_first_run_of_what_faust_counts_as_acked(
    committed: int | None, acked: list[int], gaps: list[tuple[int, int]]
) -> None:
    state = consumer(committed, acked, gaps)
    counted = set(state._acked[TOPIC_PARTITION])
    if counted:  # Faust's merge: gap offsets below the highest acked offset count as acked
        counted |= {o for begin, end in gaps for o in range(begin, end) if begin < max(counted)}
    counted = {o for o in counted if committed is None or o >= committed}
    result = Wrapped._new_offset(state, TOPIC_PARTITION)
    if not counted or (committed and min(counted) - committed > 1):
        assert result is None
        return
    run_end = min(counted)
    while run_end in counted:
        run_end += 1
    assert result == run_end
    # what is left is what Faust's own code keeps: every counted offset past the run, once
    left = state._acked[TOPIC_PARTITION]
    assert left == sorted(o for o in counted if o > run_end)
    assert state._acked_index[TOPIC_PARTITION] == set(left)
    if not gaps:  # no gap, no duplicate: the same answer as Faust's own code
        assert result == faust_original()(consumer(committed, acked, []), TOPIC_PARTITION)


def test_install_refuses_a_new_offset_that_no_longer_reads_what_the_fix_assumes() -> None:
    class Changed:
        def _new_offset(self, tp: Any) -> int | None:
            return len(self._acked[tp])  # type: ignore[attr-defined]  # a stand-in Faust

    with pytest.raises(StreamIdsError, match=r"_new_offset no longer reads \['_committed_off"):
        duplicate_acks.install(Changed)


def test_install_wraps_once_and_the_worker_build_installs_it_on_faust() -> None:
    from streaming_fakes import FakeModel

    from stream_ids.agents import build_worker
    from stream_ids.settings import Settings

    duplicate_acks.install(Wrapped)
    assert Wrapped._new_offset.__wrapped__ is faust_original()
    build_worker(Settings(), FakeModel())
    assert getattr(Consumer._new_offset, duplicate_acks.MARK)
    assert Consumer._new_offset.__wrapped__ is faust_original()
