"""A commit that meets a rebalance is skipped instead of crashing the worker.

Upstream: faust-streaming/faust#94 ("IllegalStateError causes consumer crash when commit is
pending and a rebalance happens"). Its fix (#95) filters the offsets by the current assignment
inside the consumer thread's ``_commit``, but then calls aiokafka's ``commit`` even when nothing
is left. Between a revocation and the next assignment aiokafka has no assignment at all, and its
``commit`` raises ``IllegalStateError("No partitions assigned")`` for any offsets, an empty map
included; Faust logs "Got exception" and crashes the worker. The commit is queued to the consumer
thread after Faust's own assignment check, so a commit taken just before a rebalance runs into
that window; with the worker's 50 ms commit interval (``stream_ids.app``) the window was hit:
CI on 574ed9b lost the first worker of the scale-out test the moment a second one joined.

:func:`skip_revoked_commits` wraps the thread's ``_commit`` so that offsets of partitions not
assigned *now* are dropped and nothing is sent when none is left: the same outcome Faust gives a
commit that fails with "already rebalanced" (``False``: not committed). Those flows are scored
again by the partition's next owner, as at-least-once allows, and the next owner's host state
cuts back to them (docs/reliability.md, fix 3). Delete this module once Faust skips an empty
commit.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from stream_ids.errors import StreamIdsError

# The method wrapped; checked at install time, so a Faust release that renames it fails loudly.
OWNER = "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread"
METHOD = "_commit"
MARK = "__stream_ids_revoked_commits__"

Commit = Callable[[Any, Mapping[Any, int]], Awaitable[bool]]


def only_assigned(commit: Commit) -> Commit:
    """``commit`` called with the offsets of partitions assigned now; ``False`` if none is."""

    @functools.wraps(commit)
    async def guarded(thread: Any, offsets: Mapping[Any, int]) -> bool:
        assigned = thread.assignment()
        kept = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not kept:
            return False  # revoked meanwhile (or no assignment yet): the next owner reads them
        # no await between this check and aiokafka's own: the assignment cannot change between
        return await commit(thread, kept)

    setattr(guarded, MARK, True)
    return guarded


def skip_revoked_commits() -> None:
    """Wrap ``AIOKafkaConsumerThread._commit`` once (idempotent)."""
    from faust.transport.drivers import aiokafka as driver

    owner = getattr(driver, OWNER.rsplit(".", 1)[1], None)
    commit = getattr(owner, METHOD, None)
    if owner is None or commit is None:
        raise StreamIdsError(
            f"{OWNER}.{METHOD} is missing: stream_ids.faust_fixes.revoked_commits wraps it. "
            "This release of stream-ids supports faust-streaming>=0.15,<0.16."
        )
    if getattr(commit, MARK, False):
        return
    setattr(owner, METHOD, only_assigned(commit))
