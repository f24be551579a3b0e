"""Stage timing probe for a benchmark worker (never loaded by the product itself).

Put this folder first on the worker's ``PYTHONPATH`` and Python imports it at start-up::

    python bench/run.py ... --env PYTHONPATH=bench/stage_probe:. \
        STREAM_IDS_PROBE_OUT=/tmp/probe.json
    python bench/stage_probe_summary.py /tmp/probe.json

It wraps the worker's steps and records (stage, start, end, flows) for each call: the
scoring thread's ``ScoringPipeline.compute``, and on the event loop ``BatchScorer``'s
``process`` (a batch), ``validate``,
``start_scoring``, ``publish`` and ``write_state``; the list is written as JSON when the
worker exits (``STREAM_IDS_PROBE_OUT``, default ``/tmp/stream-ids-probe-<pid>.json``).
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any

import orjson

from stream_ids.worker.batch import BatchScorer
from stream_ids.worker.score import ScoringPipeline

RECORDS: list[tuple[str, float, float, int]] = []
_clock = time.perf_counter


def _timed(name: str, size: Any, asynchronous: bool, owner: type = BatchScorer) -> None:
    original = getattr(owner, name)

    if asynchronous:

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = _clock()
            result = await original(self, *args, **kwargs)
            RECORDS.append((name, started, _clock(), size(args, result)))
            return result

    else:

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = _clock()
            result = original(self, *args, **kwargs)
            RECORDS.append((name, started, _clock(), size(args, result)))
            return result

    setattr(owner, name, wrapper)


_timed("compute", lambda args, _result: len(args[0].valid.keys), False, ScoringPipeline)
_timed("process", lambda args, _result: len(args[0]), asynchronous=True)
_timed("validate", lambda _args, result: 0 if result is None else len(result.valid.flows), True)
_timed("start_scoring", lambda args, _result: len(args[0].valid.keys), asynchronous=False)
_timed("publish", lambda args, _result: len(args[0].keys), asynchronous=True)
_timed("write_state", lambda _args, _result: 0, asynchronous=True)


@atexit.register
def _write() -> None:
    path = os.environ.get("STREAM_IDS_PROBE_OUT", f"/tmp/stream-ids-probe-{os.getpid()}.json")  # noqa: S108  (a benchmark's scratch file)
    with open(path, "wb") as out:
        out.write(orjson.dumps(RECORDS))
