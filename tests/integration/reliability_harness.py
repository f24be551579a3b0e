"""Helpers of the reliability tests: a verdict tracker, background replay, worker kills."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from streaming_harness import Stream, excerpt

from producers.replay import replay
from stream_ids.settings import Settings


class ReliabilityStream(Stream):
    """A :class:`Stream` whose workers can be killed, stopped and replaced by name."""

    def __init__(self, bootstrap: str, tmp: Path, partitions: int = 8, **env: str) -> None:
        super().__init__(bootstrap, tmp, partitions)
        self.env.update(env)
        self.by_name: dict[str, subprocess.Popen] = {}
        self.events: list[tuple[float, str]] = []

    def start_worker(self, name: str, runner: Path | None = None) -> subprocess.Popen:
        process = super().start_worker(name, runner)
        self.by_name[name] = process
        self.events.append((time.monotonic(), f"start {name}"))
        return process

    def signal_worker(self, name: str, signum: int, wait_s: float = 60.0) -> int:
        process = self.by_name.pop(name)
        process.send_signal(signum)
        code = process.wait(wait_s)
        self.workers = [(p, log) for p, log in self.workers if p is not process]
        self.events.append((time.monotonic(), f"{signal.Signals(signum).name} {name}"))
        return code

    @contextlib.contextmanager
    def running(self, worker: str) -> Iterator[Tracker]:
        """Topics, worker ``worker`` (ready) and a verdict tracker; on exit the tracker and
        every worker stop (the tracker's records stay readable)."""
        self.create_topics()
        self.start_worker(worker)
        tracker = Tracker(self.settings, self.settings.topic_verdicts)
        tracker.start()
        try:
            self.wait_ready()
            yield tracker
        finally:
            tracker.stop()
            self.stop()

    def check_alive(self) -> None:
        """Raise if a named worker died (the tracker's ``alive`` callback)."""
        for name, process in self.by_name.items():
            assert process.poll() is None, f"{name} died:\n{excerpt(self.tmp / f'{name}.log')}"

    def wait_log(self, name: str, text: bytes, timeout: float = 180.0) -> None:
        log = self.tmp / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.by_name[name]
            assert process.poll() is None, f"{name} died:\n{excerpt(log)}"
            if text in log.read_bytes():
                return
            time.sleep(0.3)
        raise AssertionError(f"{name}: no {text!r} within {timeout} s:\n{excerpt(log)}")


class Tracker(threading.Thread):
    """Reads a topic (read_committed) in the background and keeps every record it sees."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        config = settings.confluent_config()
        config.update(
            {
                "group.id": f"rel-tracker-{uuid.uuid4().hex[:10]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        self.consumer = Consumer(config)
        self.consumer.subscribe([topic])
        self.records: list[dict[str, Any]] = []
        self.ids: set[str] = set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                for message in self.consumer.consume(num_messages=2000, timeout=0.3):
                    if message.error() is not None or not message.value():
                        continue
                    record = orjson.loads(message.value())
                    with self.lock:
                        self.records.append(record)
                        if "flow_id" in record:
                            self.ids.add(record["flow_id"])
        finally:
            self.consumer.close()

    @property
    def unique(self) -> int:
        return len(self.ids)

    def wait_unique(self, count: int, timeout: float, alive: Any = None) -> None:
        deadline = time.monotonic() + timeout
        while self.unique < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.unique} of {count} distinct flows after {timeout} s")
            if alive is not None:
                alive()
            time.sleep(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


class BackgroundReplay(threading.Thread):
    """``replay(...)`` in a thread; ``result`` once it has finished."""

    def __init__(self, settings: Settings, frame: Any, id_prefix: str, **options: Any) -> None:
        super().__init__(daemon=True)
        self.args = (settings, frame, id_prefix, options)
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        settings, frame, prefix, options = self.args
        try:
            self.result = replay([], settings, frame=frame, id_prefix=prefix, progress=False,
                                 **options)
        except BaseException as error:  # reported by the test
            self.error = error


def row_of(flow_id: str) -> int:
    return int(flow_id.rsplit("-", 1)[1])


def summarise(verdicts: list[dict[str, Any]], n: int, expected: np.ndarray | None = None,
              tolerance: float = 1e-5) -> dict[str, Any]:
    """flows in, verdicts out, lost, duplicated; score mismatches against ``expected``."""
    counts = Counter(v["flow_id"] for v in verdicts)
    rows = {row_of(i) for i in counts}
    summary: dict[str, Any] = {
        "flows_in": n,
        "verdicts_out": len(verdicts),
        "distinct": len(counts),
        "lost": len(set(range(n)) - rows),
        "duplicated": sum(c - 1 for c in counts.values()),
    }
    summary["duplicate_fraction"] = summary["duplicated"] / n
    if expected is not None:
        first: dict[int, float] = {}
        bad_any = set()
        for v in verdicts:
            row = row_of(v["flow_id"])
            first.setdefault(row, v["score"])
            if abs(v["score"] - float(expected[row])) > tolerance:
                bad_any.add(row)
        bad_first = [r for r, s in first.items() if abs(s - float(expected[r])) > tolerance]
        summary["score_mismatch_first"] = len(bad_first)
        summary["score_mismatch_any"] = len(bad_any)
        summary["mismatch_examples"] = sorted(bad_any)[:10]
    return summary
