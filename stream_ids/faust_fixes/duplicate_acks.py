"""Offsets counted twice in Faust's acked list, which held commits back (a crawl of one offset
per commit).

Faust's consumer commits, per partition, up to the end of the first run of consecutive offsets in
its ``_acked`` list (``Consumer._new_offset``: ``consecutive_numbers`` over the sorted list). A
duplicate ends that run: ``[3767, 3768, 3768, 3769]`` commits 3769, leaves ``[3768, 3769]``,
and the next commit gets one offset further. Faust adds duplicates itself: the offsets of a gap
its fetcher saw (``_gap``: a jump in the offsets it fetched, normally compaction or transaction
markers, plus the offset of the message after the jump) are appended to ``_acked`` at each
commit without consulting ``_acked_index``, so an offset both in a gap and acked is there twice
(and Faust's cut of the gap tree leaves the last merged offset in it, merged again next time).
Here gaps come after a rebalance, over offsets that this worker then reads from Kafka and acks
itself (:mod:`.hole_filling`), that Faust delivers again after its seek to the committed
offsets, or that it delivers and the agent acks as usual.

Seen in the scale test (docs/reliability.md, "A stalled commit"): after the scale-out the first
worker's commits of one partition went 17 offsets a second (one per commit, the 0.05 s commit
interval) while 1,331 acked offsets waited; the SIGTERM then left ~1,450 flows to be scored
again by the next owner, more than a host's kept rows cover.

:func:`install` wraps ``Consumer._new_offset``: before Faust's own code runs it merges the gaps
into the acked list once, and only up to the highest offset really acked (Faust also counts
the rest of a gap interval, whose end is the message it is delivering, not yet scored), and
drops the offsets below the committed one (committed already), so Faust's code sees each offset
once and commits the whole run. Upstream: robinhood/faust#625 ("Offsets not committed due to
duplicate in _acked", open; faust-streaming/faust inherited the same ``_new_offset``). Delete
this module once ``_new_offset`` ignores duplicates.

Private attributes read and written (checked at start-up): Faust's consumer's ``_acked``,
``_acked_index``, ``_gap`` and ``_committed_offset``; :func:`install` also checks that
``_new_offset`` still reads them and ``consecutive_numbers``, and refuses to wrap it otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from typing import Any

from stream_ids.errors import StreamIdsError

log = logging.getLogger(__name__)

# what Faust's _new_offset must still read for this fix to describe it
EXPECTED_NAMES = frozenset(
    {"_acked", "_acked_index", "_gap", "_committed_offset", "consecutive_numbers"}
)
MARK = "__stream_ids_duplicate_acks__"


def merge_once(consumer: Any, tp: Any) -> int:
    """Faust's gap merge for ``tp``, without duplicates; returns the offsets removed (repeats,
    and offsets below the committed one).

    As in ``Consumer._new_offset``, gap offsets count as acked, but only up to the highest
    offset really acked: Faust merges each whole gap interval that starts below it, and a gap
    interval ends with the message being delivered (``_add_gap`` adds ``r_offset + 1 ..
    offset`` before the message is processed), so Faust could count an offset acked before
    its flow was scored. The gap tree keeps what is above. Then each offset is kept once, and
    those below the committed offset (committed already; ``Consumer.ack`` refuses them too) go.
    """
    acked: list[int] = consumer._acked[tp]
    if not acked:
        return 0
    gap = consumer._gap[tp]
    extra: list[int] = []
    if gap:
        highest = max(acked)
        candidates = gap.overlap(0, highest + 1)  # intervals starting at or below it
        if candidates:
            extra = [
                offset
                for entry in candidates
                for offset in range(entry.begin, min(entry.end, highest + 1))
            ]
            gap.chop(0, highest + 1)  # Faust's own merge then finds nothing below
    committed = consumer._committed_offset[tp]
    merged = acked + extra
    kept = {offset for offset in merged if committed is None or offset >= committed}
    removed = len(merged) - len(kept)
    if extra or removed:  # else the list stands as it is (each commit: no sort here)
        acked[:] = sorted(kept)
        # the index too (Faust leaves gap offsets out of it): a later ack of one is no duplicate
        index = consumer._acked_index[tp]
        index.clear()
        index.update(kept)
    return removed


def check_new_offset(new_offset: Any) -> None:
    """Raise :class:`StreamIdsError` unless ``new_offset`` still reads what this fix assumes."""
    code = getattr(new_offset, "__code__", None)
    names = set(code.co_names) if code is not None else set()
    missing = sorted(EXPECTED_NAMES - names)
    if missing:
        raise StreamIdsError(
            f"faust.transport.consumer.Consumer._new_offset no longer reads {missing}: "
            "stream_ids.faust_fixes.duplicate_acks wraps it for robinhood/faust#625. This "
            "release of stream-ids supports faust-streaming>=0.15,<0.16; install that, or "
            "update the fix (pyproject.toml pins the range)."
        )


def install(consumer_class: Any = None) -> None:
    """Wrap ``consumer_class._new_offset`` (Faust's consumer by default) once per process."""
    if consumer_class is None:
        from faust.transport.consumer import Consumer

        consumer_class = Consumer
    original = consumer_class._new_offset
    if getattr(original, MARK, False):
        return
    check_new_offset(original)

    # Faust 0.15.3 serialises acks from other threads with this lock: the merge and Faust's
    # own list surgery run under it too (an older Faust without it: no other thread acks)
    lock = getattr(importlib.import_module("faust.types.tuples"), "ack_lock", None)
    guard = lock if lock is not None else contextlib.nullcontext()

    @functools.wraps(original)
    def _new_offset(self: Any, tp: Any) -> int | None:
        with guard:
            removed = merge_once(self, tp)
            result: int | None = original(self, tp)
        if removed:
            log.info(
                "%s: %d offsets in Faust's acked list twice (a fetch gap and a delivery) or "
                "committed already; each kept once so the commit is not held back",
                tp,
                removed,
            )
        return result

    setattr(_new_offset, MARK, True)
    consumer_class._new_offset = _new_offset
