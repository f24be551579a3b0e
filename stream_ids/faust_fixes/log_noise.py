"""Log filters for two messages of Faust's stack that are noise for this worker.

Upstream: mode's commit timer warns each time a commit outlasts its interval (the worker's 0.05 s
``broker_commit_interval`` is on purpose), and aiokafka logs a fresh topic's transient
``NotLeaderForPartitionError`` at ERROR although it retries and succeeds (faust-streaming/faust
sees the same on every new changelog; no upstream issue asks for a lower level). Delete a filter
when its message goes (the filters match the exact message templates of mode 0.4 and aiokafka
0.14: a changed template only lets the message through again).
"""

from __future__ import annotations

import logging


class CommitOverlapFilter(logging.Filter):
    """Drops mode's "Timer commit is overlapping" warnings.

    The commit timer runs every 0.05 s on purpose (a crash repeats about that much); a commit
    round trip longer than that only means the next one starts at once. Logged at WARNING
    several times a second under load, they hid the warnings that need an operator.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "Timer %s is overlapping (interval=%r runtime=%r)"
            and bool(record.args)
            and isinstance(record.args, tuple)
            and record.args[0] == "commit"
        )


class TransientLeaderFilter(logging.Filter):
    """Drops aiokafka's "Failed fetch offsets from N: [Error 6] NotLeaderForPartitionError".

    A topic Faust has just created (the host-window changelog at a first start) has no
    partition leaders for a moment; aiokafka logs this at ERROR and retries after its backoff,
    and the next request succeeds. Other offset-fetch failures still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "Failed fetch offsets from %s: %s"
            and isinstance(record.args, tuple)
            and len(record.args) == 2
            and type(record.args[1]).__name__ == "NotLeaderForPartitionError"
        )


def install_log_filters() -> None:
    """Add both filters to their loggers (once)."""
    timers_log = logging.getLogger("mode.timers")
    if not any(isinstance(f, CommitOverlapFilter) for f in timers_log.filters):
        timers_log.addFilter(CommitOverlapFilter())
    fetcher_log = logging.getLogger("aiokafka.consumer.fetcher")
    if not any(isinstance(f, TransientLeaderFilter) for f in fetcher_log.filters):
        fetcher_log.addFilter(TransientLeaderFilter())
