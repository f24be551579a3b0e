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


def fixpoint(new_offset: Any, state: Any, limit: int = 1_000) -> int | None:
    """The committed offset after commits until nothing more commits (as Faust's
    ``_filter_committable_offsets`` + ``_should_commit`` do, one call per commit)."""
    for _ in range(limit):
        offset = new_offset(state, TOPIC_PARTITION)
        if offset is None:
            break
        committed = state._committed_offset[TOPIC_PARTITION]
        if committed is None or (offset and offset > committed):
            state._committed_offset[TOPIC_PARTITION] = offset
    committed_offset: int | None = state._committed_offset[TOPIC_PARTITION]
    return committed_offset


def test_faust_alone_commits_a_run_of_gap_offsets_acked_again_one_offset_at_a_time() -> None:
    # offsets 100..399 scored and acked; 120..299 were also a fetch gap (the scale test's crawl)
    acked, gaps = list(range(100, 400)), [(120, 300)]
    assert commits_until(faust_original(), consumer(100, acked, gaps), 400) == 181
    assert commits_until(Wrapped._new_offset, consumer(100, acked, gaps), 400) == 1


def test_gap_offsets_below_the_highest_ack_count_and_an_unacked_pair_holds_the_commit() -> None:
    # 100..109 acked, 110..119 a gap (acked for Faust), 120-121 not acked, 122..130 acked
    state = consumer(100, [*range(100, 110), *range(122, 131)], [(110, 120)])
    assert Wrapped._new_offset(state, TOPIC_PARTITION) == 120
    state._committed_offset[TOPIC_PARTITION] = 120
    assert Wrapped._new_offset(state, TOPIC_PARTITION) is None  # 120 and 121 still missing
    assert state._acked[TOPIC_PARTITION] == list(range(122, 131))


def test_the_rest_of_a_gap_past_the_highest_ack_waits_for_its_acks() -> None:
    # a fetch gap 3701..3850 ends with the message being delivered; only 3700..3760 are acked
    faust_state = consumer(3700, list(range(3700, 3761)), [(3701, 3851)])
    assert fixpoint(faust_original(), faust_state) == 3851  # Faust: past 3761..3850, unscored
    state = consumer(3700, list(range(3700, 3761)), [(3701, 3851)])
    assert Wrapped._new_offset(state, TOPIC_PARTITION) == 3761
    assert sorted((i.begin, i.end) for i in state._gap[TOPIC_PARTITION]) == [(3761, 3851)]
    # the rest, once acked, commits in one call
    state._committed_offset[TOPIC_PARTITION] = 3761
    for offset in range(3761, 3851):
        state._acked[TOPIC_PARTITION].append(offset)
        state._acked_index[TOPIC_PARTITION].add(offset)
    assert Wrapped._new_offset(state, TOPIC_PARTITION) == 3851


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
def test_the_fix_commits_the_first_run_of_acked_and_gap_offsets_up_to_the_highest_ack(
    committed: int | None, acked: list[int], gaps: list[tuple[int, int]]
) -> None:
    state = consumer(committed, acked, gaps)
    really_acked = set(state._acked[TOPIC_PARTITION])
    highest = max(really_acked) if really_acked else None
    gap_offsets = {o for begin, end in gaps for o in range(begin, end)}
    counted = set(really_acked)
    if highest is not None:
        counted |= {o for o in gap_offsets if o <= highest}
    counted = {o for o in counted if committed is None or o >= committed}
    result = Wrapped._new_offset(state, TOPIC_PARTITION)
    if not counted or (committed and min(counted) - committed > 1):
        assert result is None
    else:
        run_end = min(counted)
        while run_end in counted:
            run_end += 1
        assert result == run_end
        # what is left is every counted offset past the run, once, and the index says the same
        left = state._acked[TOPIC_PARTITION]
        assert left == sorted(o for o in counted if o > run_end)
        assert state._acked_index[TOPIC_PARTITION] == set(left)
    if highest is not None:  # the gap tree keeps exactly the gap offsets above the highest ack
        kept = {o for i in state._gap[TOPIC_PARTITION] for o in range(i.begin, i.end)}
        assert kept == {o for o in gap_offsets if o > highest}
    # committing until nothing more commits: never past Faust, and as far wherever no gap
    # reaches past the highest ack (Faust only gets there in more commits)
    ours = fixpoint(Wrapped._new_offset, consumer(committed, acked, gaps))
    faust = fixpoint(faust_original(), consumer(committed, acked, gaps))
    if ours is not None and faust is not None:
        assert ours <= faust
    if highest is None or all(o <= highest for o in gap_offsets):
        assert ours == faust


def test_install_refuses_a_new_offset_that_no_longer_reads_what_the_fix_assumes() -> None:
    class Changed:
        def _new_offset(self, tp: Any) -> int | None:
            return len(self._acked[tp])  # type: ignore[attr-defined]  # a stand-in Faust

    with pytest.raises(StreamIdsError, match=r"_new_offset no longer reads \[.*'_gap'"):
        duplicate_acks.install(Changed)


def test_install_wraps_once_and_the_worker_build_installs_it_on_faust() -> None:
    from streaming_fakes import FakeModel

    from stream_ids.agents import build_worker
    from stream_ids.settings import Settings

    wrapped = Wrapped._new_offset
    duplicate_acks.install(Wrapped)  # a second install leaves the first wrapper
    assert Wrapped._new_offset is wrapped and getattr(wrapped, duplicate_acks.MARK)
    build_worker(Settings(), FakeModel())
    assert getattr(Consumer._new_offset, duplicate_acks.MARK)
